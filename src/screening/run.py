"""One screening run of a period: ingest → screen → store → publish → report, in `runs`.

Plain functions: the CLI and the Prefect flow both call `run_period`. A run that fails is
recorded as failed with its reason, and leaves the published lists and the stored lists
as they were (the outputs are written in one transaction, the files staged and renamed
only when all of them are complete).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import duckdb
import polars as pl

from . import __version__, contract, params, publish, report, store
from .inbox import check_period
from .ingest import SourceResult, ingest_period, unrecognised_files
from .screen import ScreenInputs, ScreenResult, screen

SOURCE_LABELS = {
    "roster": "人口",
    "medical": "医保",
    "education": "教育",
    "traffic": "交警",
    "civil": "民政",
    "disability": "残联",
}


class RunError(Exception):
    """The run could not produce lists; the message is the one line the user sees."""


@dataclass
class RunOutcome:
    run_id: str
    period: str
    township: str | None
    result: ScreenResult
    suspects: pl.DataFrame  # what was published (one township's rows for a township run)
    ingest: list[SourceResult]
    report: report.RunReport
    written: list[Path] = field(default_factory=list)


def previous_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


def new_run_id(period: str, now: dt.datetime) -> str:
    return f"{period}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def code_version() -> str:
    """The package version, with the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def nearest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.3)
    return "、".join(close) if close else "、".join(names[:5])


# ---------------------------------------------------------------- inputs


def load_inputs(
    con: duckdb.DuckDBPyConnection, specs: dict[str, contract.SourceSpec], period: str
) -> ScreenInputs:
    population = store.population(con, period)
    if population.height == 0:
        raise RunError(f"no roster (人口/roster file) received at or before {period}")
    events = {
        source: store.events_as_of(con, spec, period).lazy()
        for source, spec in specs.items()
        if source != "roster"
    }
    return ScreenInputs(population=population.lazy(), **events)


def previously_listed(con: duckdb.DuckDBPyConnection, period: str) -> frozenset[str]:
    rows = con.execute(
        "SELECT DISTINCT household_id FROM suspects WHERE period = ?", [previous_period(period)]
    ).fetchall()
    return frozenset(r[0] for r in rows)


# ---------------------------------------------------------------- records


def _record_start(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    period: str,
    township: str | None,
    started: dt.datetime,
    resolved: params.ResolvedParams,
) -> None:
    con.execute(
        "INSERT INTO runs (run_id, period, township, started_at, status, parameters, "
        "code_version) VALUES (?, ?, ?, ?, 'running', ?, ?)",
        [
            run_id,
            period,
            township,
            started,
            json.dumps(resolved.provenance(), ensure_ascii=False, default=str),
            code_version(),
        ],
    )


def _record_end(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    message: str,
    inputs: list[SourceResult] | None,
) -> None:
    files = [
        {"source": r.source, "file": r.file, "sha256": r.sha256, "status": r.status}
        for r in inputs or []
    ]
    con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, message = ?, input_files = ? "
        "WHERE run_id = ?",
        [
            dt.datetime.now().replace(microsecond=0),
            status,
            message,
            json.dumps(files, ensure_ascii=False),
            run_id,
        ],
    )


def _store_outputs(
    con: duckdb.DuckDBPyConnection,
    period: str,
    township: str | None,
    suspects: pl.DataFrame,
    evidence: pl.DataFrame,
    match_rates: pl.DataFrame,
) -> None:
    """The period's lists in the database become this run's (one township's, for a
    township run). Call inside a transaction."""
    if township is None:
        con.execute("DELETE FROM evidence WHERE period = ?", [period])
        con.execute("DELETE FROM suspects WHERE period = ?", [period])
        con.execute("DELETE FROM match_rates WHERE period = ?", [period])
        store.insert_frame(con, "match_rates", match_rates)
    else:
        con.execute(
            "DELETE FROM evidence WHERE period = ? AND household_id IN "
            "(SELECT household_id FROM suspects WHERE period = ? AND township = ?)",
            [period, period, township],
        )
        con.execute("DELETE FROM suspects WHERE period = ? AND township = ?", [period, township])
    store.insert_frame(con, "suspects", suspects)
    store.insert_frame(con, "evidence", evidence)


# ---------------------------------------------------------------- report


def build_report(
    con: duckdb.DuckDBPyConnection,
    period: str,
    run_id: str,
    result: ScreenResult,
    suspects: pl.DataFrame,
    resolved: params.ResolvedParams,
    all_townships: list[str],
    township: str | None,
    stray_files: list[str],
    started: dt.datetime,
) -> report.RunReport:
    files = con.sql(
        "SELECT source, file, status, rows_read, rows_accepted, rows_rejected, message "
        "FROM ingest_log WHERE period = $p ORDER BY source",
        params={"p": period},
    ).pl()
    rejected = con.sql(
        'SELECT source, "column", "check", count(DISTINCT row_number)::BIGINT AS rows '
        "FROM quarantine WHERE period = $p GROUP BY ALL ORDER BY ALL",
        params={"p": period},
    ).pl()
    warnings = list(resolved.warnings)
    for row in files.iter_rows(named=True):
        label = SOURCE_LABELS.get(row["source"], row["source"])
        if row["status"] == "missing":
            warnings.append(f"本期缺少{label}数据 ({row['source']} missing): 名单未使用该来源")
        elif row["status"] == "rejected":
            warnings.append(
                f"{label}文件整表拒收 ({row['source']} rejected): {row['file']}: {row['message']}"
            )
    if result.households_without_head:
        warnings.append(
            f"{result.households_without_head} 户没有户主, 以第一位成员代替 "
            "(households without a 户主; the first member stands in)"
        )
    if stray_files:
        warnings.append(f"未识别的文件 unrecognised files in the inbox: {', '.join(stray_files)}")
    return report.RunReport(
        period=period,
        run_id=run_id,
        files=cast(list[report.FileRead], files.to_dicts()),
        rejected=cast(list[report.RejectedCount], rejected.to_dicts()),
        match_rates=cast(
            list[report.MatchRate],
            result.match_rates.select(
                "source", "records_in_window", "matched", "unmatched"
            ).to_dicts(),
        ),
        suspects=suspects,
        warnings=warnings,
        parameters=dict(resolved.as_dict()),
        all_townships=all_townships,
        township=township,
        started_at=started,
        finished_at=dt.datetime.now().replace(microsecond=0),
    )


# ---------------------------------------------------------------- the run


def run_period(
    *,
    db: Path,
    inbox: Path,
    out: Path,
    period: str,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    township: str | None = None,
    mask_ids: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Screen one period (or re-screen one township of it) and publish the lists."""
    check_period(period)
    stage = on_stage or (lambda _name: None)
    specs = contract.load(aliases_file)
    resolved = params.load(params_file).at(period)  # a bad parameters file stops us here
    if not (Path(inbox) / period).is_dir():
        raise RunError(f"no folder for period {period} in inbox {inbox}")

    con = store.connect(db)
    try:
        store.ensure_schema(con, specs)
        started = dt.datetime.now().replace(microsecond=0)
        run_id = new_run_id(period, started)
        _record_start(con, run_id, period, township, started, resolved)
        ingested: list[SourceResult] | None = None
        try:
            stage("ingest")
            ingested = ingest_period(con, inbox, period, specs)
            stage("screen")
            inputs = load_inputs(con, specs, period)
            all_townships = sorted(
                inputs.population.select(pl.col("township").unique()).collect().to_series()
            )
            if township is not None and township not in all_townships:
                raise RunError(
                    f"unknown township {township!r}; nearest: {nearest(township, all_townships)}"
                )
            result = screen(inputs, period, resolved, previously_listed(con, period), run_id)
            suspects, evidence, members = _for_township(result, township)
            stage("publish")
            rep = build_report(
                con,
                period,
                run_id,
                result,
                suspects,
                resolved,
                all_townships,
                township,
                unrecognised_files(inbox, period, specs),
                started,
            )
            meta = publish.PublishMeta(
                period=period,
                run_id=run_id,
                parameters=dict(resolved.as_dict()),
                parameter_warnings=list(resolved.warnings),
                sources={r.source: _source_status(r) for r in ingested},
                mask_ids=mask_ids,
                all_townships=all_townships,
            )
            with store.transaction(con):
                _store_outputs(con, period, township, suspects, evidence, result.match_rates)
                written = publish.publish(
                    out,
                    suspects,
                    evidence,
                    members,
                    meta,
                    townships=[township] if township else None,
                )
                if township is None:
                    written.append(report.write_report(out, rep))
                _record_end(con, run_id, "success", "", ingested)
        except BaseException as exc:
            _record_end(con, run_id, "failed", _one_line(exc), ingested)
            raise
    finally:
        con.close()
    return RunOutcome(run_id, period, township, result, suspects, ingested, rep, written)


def _source_status(result: SourceResult) -> str:
    if result.status == "unchanged":
        return "loaded" if result.rows_read else "empty"
    return result.status


def _for_township(
    result: ScreenResult, township: str | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    if township is None:
        return result.suspects, result.evidence, result.members
    suspects = result.suspects.filter(pl.col("township") == township)
    ids = suspects.select("household_id")
    return (
        suspects,
        result.evidence.join(ids, on="household_id", how="semi"),
        result.members.join(ids, on="household_id", how="semi"),
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
