"""One screening run of a period: ingest → screen → store → publish → report, in `runs`.

The run is cut into plain stage functions that take small arguments (a `RunRequest` of
paths and names, the run id) so that the Prefect flow (flow.py) can call each one as a
task; `RUN_STAGES` is their one order, which the flow and `run_period` both iterate:

    prepare → start_run → ingest_inputs → screen_period → publish_run → finish_run
                                   (on any failure: fail_run)

`prepare` refuses two files of one source before anything is recorded; `ingest_inputs`
raises `DeliveryHeld` when a completeness gate held a delivery that `--accept-held` does
not accept: the run is recorded `held` and nothing is screened or published.


`start_run` refuses, before anything is recorded, what can only be checked against the
database: a `--township` no roster names, real data into the synthetic sample's database
or the other way round. Each stage opens the database and closes it before it returns, so
an analyst can open the file between runs (a stage that finds it open waits for it, up to
`busy_timeout` seconds); the one-writer lock (`lock.hold`), held by `run_period` and the
flow for the whole run, keeps a second run off the same database meanwhile. The
screen stage hands its frames to the publish stage through a private work folder
(`<out>/.work/<run_id>/`), removed when the run ends either way. A run that fails is
recorded as failed with its reason, and leaves the published lists and the stored lists as
they were: the publish stage writes the outputs, the files and the run's success in one
transaction, the files staged and renamed only when all of them are complete.

A run that dies without recording its end (killed, power cut) stays 'running' until the
next run takes the lock: `start_run` then records it as interrupted and removes what it
left behind (its work folder, files staged under temporary names). `after_stage` is a
test hook for crashing a run between stages (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import duckdb
import polars as pl

from screening import config, contract, ids, params
from screening.db import deliveries as db_deliveries
from screening.db import lock
from screening.db import roster as db_roster
from screening.db import runs as db_runs
from screening.db import schema as db_schema
from screening.db.connect import connect, insert_frame, transaction
from screening.ingest.deliveries import held, ingest_period, unrecognised_files
from screening.ingest.gates import DeliveryHeld
from screening.ingest.inbox import check_one_file_per_source, discover
from screening.ingest.results import SourceResult, read_guarded
from screening.periods import check_period, previous_period
from screening.publish import lists as publish
from screening.publish import report
from screening.publish.about import delivery_notes
from screening.publish.columns import PublishMeta
from screening.publish.files import ensure_dir
from screening.rules import EVENT_SOURCES, batches, facts, followup
from screening.rules.screen import ScreenInputs, ScreenResult, screen
from screening.version import code_version

WORK_FOLDER = ".work"
_WORK_FRAMES = (
    "households",
    "suspects",
    "evidence",
    "members",
    "match_rates",
    "candidates",
    "scale",
)
_WORK_META = "meta.json"
# publish.files.StagedFiles writes ".<final name>.<8 random characters>.tmp" (mkstemp)
# beside each final file; a process killed while staging leaves them behind.
_STAGED_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")

# The points at which `after_stage` is called, in order. "store" lies inside the publish
# stage: the lists are written to the database but not committed, and no file is written.
STAGES = ("prepare", "start", "ingest", "screen", "store", "publish", "finish")
PAUSE_AFTER_ENV = "SCREENING_TEST_PAUSE_AFTER"
PAUSE_MARKER_ENV = "SCREENING_TEST_PAUSE_MARKER"
PAUSE_SECONDS = 600.0


class RunError(Exception):
    """The run could not produce lists; the message is the one line the user sees."""


class Redacted(RunError):
    """A failure whose message named an ID number, raised again with the number masked
    (see `redacted`); its message is already the one line to record."""


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked to do: only paths and names, cheap to pass to a flow task."""

    db: Path
    inbox: Path
    out: Path
    period: str
    params_file: Path | None = None
    aliases_file: Path | None = None
    township: str | None = None  # None: every township
    mask_ids: bool = False
    accept_held: tuple[str, ...] = ()  # sources whose held delivery the officer accepts
    demo: bool = False  # the inbox is the bundled synthetic sample: every output says so
    busy_timeout: float = 0.0  # seconds to wait for a database another process has open


@dataclass
class Published:
    """What the publish stage wrote."""

    result: ScreenResult
    suspects: pl.DataFrame  # the published rows (one township's rows for a township run)
    report: report.RunReport
    written: list[Path]


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


def new_run_id(period: str, now: dt.datetime) -> str:
    return f"{period}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def nearest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.3)
    return "、".join(close) if close else "、".join(names[:5])


def mentions_id(exc: BaseException) -> bool:
    """Whether the exception or any exception it chains to names an ID number."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if ids.names_id(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def redacted(exc: BaseException) -> BaseException:
    """`exc`, or when it (or an exception it chains to) names an ID number, a `Redacted`
    error saying the same with the number masked: for logs that print messages and
    tracebacks. Raise the result `from None` so the original is not printed with it."""
    return Redacted(one_line(exc)) if mentions_id(exc) else exc


def one_line(exc: BaseException) -> str:
    """The reason recorded for a failed run: type and first line, ID numbers masked."""
    if isinstance(exc, Redacted):
        return str(exc)[:500]
    text = str(exc).strip().splitlines()
    return ids.mask_text(f"{type(exc).__name__}: {text[0] if text else ''}")[:500]


# ---------------------------------------------------------------- inputs


def load_inputs(
    con: duckdb.DuckDBPyConnection,
    specs: dict[str, contract.SourceSpec],
    period: str,
    window_months: int | None = None,
) -> ScreenInputs:
    """The roster snapshot in force at `period` and, per events source, the newest version
    of each record as of it, holding only what the rules read (`rules.rule_columns`) and
    within their reach (`facts.reach`): rule dates up to end(P), and with `window_months`
    none before the window's first day, but for certificates. (explain loads whole records
    with their provenance, `db_roster.events_as_of`.)"""
    population = db_roster.population(con, period)
    if population.height == 0:
        raise RunError(
            f"截至 {period} 没有收到人口库文件 no roster (人口/roster file) received at or "
            f"before {period}"
        )
    events = {
        source: db_roster.events_as_of(
            con, specs[source], period, **facts.rule_reads(source, period, window_months)
        ).lazy()
        for source in EVENT_SOURCES
    }
    return ScreenInputs(population=population.lazy(), events=events)


def previously_listed(con: duckdb.DuckDBPyConnection, period: str) -> frozenset[str]:
    rows = con.execute(
        "SELECT DISTINCT household_id FROM suspects WHERE period = ?", [previous_period(period)]
    ).fetchall()
    return frozenset(r[0] for r in rows)


# ---------------------------------------------------------------- records


def _record_start(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    req: RunRequest,
    started: dt.datetime,
    resolved: params.ResolvedParams,
) -> None:
    con.execute(
        "INSERT INTO runs (run_id, period, township, started_at, status, parameters, "
        "code_version, demo) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
        [
            run_id,
            req.period,
            req.township,
            started,
            json.dumps(resolved.provenance(), ensure_ascii=False, default=str),
            code_version(),
            req.demo,
        ],
    )


def _check_demo(con: duckdb.DuckDBPyConnection, req: RunRequest) -> None:
    """The synthetic sample and real data never share a database: listing statuses and
    the follow-up would mix fake people with real ones."""
    demo, other = db_runs.demo_runs(con)
    if req.demo and other:
        raise RunError(
            f"数据库 {req.db} 中已有真实数据的筛查，示例数据不能写入 the database holds runs of "
            "real data: the synthetic sample goes to its own database (--demo without --db "
            "uses demo/screening.duckdb)"
        )
    if not req.demo and demo:
        raise RunError(
            f"数据库 {req.db} 是示例数据（{config.DEMO_LABEL}）的数据库，真实数据请用另一个数据库 "
            "the database holds the synthetic sample: screen real data into another --db"
        )


def _check_township(
    con: duckdb.DuckDBPyConnection, req: RunRequest, specs: dict[str, contract.SourceSpec]
) -> None:
    """A --township that no roster in force at the period names is refused. The stored
    roster answers at once; only a name it lacks makes us read the period's roster file,
    which may bring a new township."""
    if req.township is None:
        return
    known = db_roster.roster_townships(con, req.period)
    if req.township in known:
        return
    known = sorted(set(known) | set(_inbox_townships(req, specs)))
    if req.township not in known:
        raise RunError(
            f"未知的乡镇 unknown township {req.township!r}; "
            f"最接近的 nearest: {nearest(req.township, known) or '—'}"
        )


def _inbox_townships(req: RunRequest, specs: dict[str, contract.SourceSpec]) -> list[str]:
    found = discover(req.inbox, req.period, {"roster": specs["roster"]})["roster"]
    if found.path is None:
        return []
    good = read_guarded(found.path, specs["roster"], req.period).good
    if good is None or "township" not in good.columns:
        return []
    return good["township"].drop_nulls().unique().to_list()


def _record_inputs(con: duckdb.DuckDBPyConnection, run_id: str, inputs: list[SourceResult]) -> None:
    files = [
        {
            "source": r.source,
            "file": r.file,
            "sha256": r.sha256,
            "status": r.status,
            "kept_file": r.kept_file,
        }
        for r in inputs
    ]
    con.execute(
        "UPDATE runs SET input_files = ? WHERE run_id = ?",
        [json.dumps(files, ensure_ascii=False), run_id],
    )


def _record_end(con: duckdb.DuckDBPyConnection, run_id: str, status: str, message: str) -> bool:
    # Only a running run ends: a failure reported after the run's success was committed
    # must not rewrite it.
    rows = con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, message = ? "
        "WHERE run_id = ? AND status = 'running' RETURNING run_id",
        [dt.datetime.now().replace(microsecond=0), status, message, run_id],
    ).fetchall()
    return bool(rows)


def _close_interrupted(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs still 'running' while we hold the one-writer lock died without recording an
    end. Returns their periods."""
    rows = con.execute(
        "UPDATE runs SET finished_at = ?, status = 'failed', "
        "message = 'interrupted: the run ended before it could record its outcome' "
        "WHERE status = 'running' RETURNING period",
        [dt.datetime.now().replace(microsecond=0)],
    ).fetchall()
    return [r[0] for r in rows]


def _ended_work(con: duckdb.DuckDBPyConnection, out: Path) -> list[str]:
    """Run ids of the work folders left by runs that have ended: a run killed before it
    could remove its folder, even one killed just after its success was committed."""
    folder = Path(out) / WORK_FOLDER
    names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    if not names:
        return []
    # Only this database's runs: a folder of a run unknown here is not ours to judge.
    rows = con.execute(
        "SELECT run_id FROM runs WHERE status <> 'running' AND list_contains(?, run_id)",
        [names],
    ).fetchall()
    return [r[0] for r in rows]


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
        insert_frame(con, "match_rates", match_rates)
    else:
        con.execute(
            "DELETE FROM evidence WHERE period = ? AND household_id IN "
            "(SELECT household_id FROM suspects WHERE period = ? AND township = ?)",
            [period, period, township],
        )
        con.execute("DELETE FROM suspects WHERE period = ? AND township = ?", [period, township])
    insert_frame(con, "suspects", suspects)
    insert_frame(con, "evidence", evidence)


def screened_households(result: ScreenResult, run_id: str) -> pl.DataFrame:
    return result.households.select(
        "period", "township", "village", "household_id", "household_type",
        "monitoring_status", "per_capita_income", "monitoring_line", "labour_capacity",
        "colour", "risk_codes", "risk_labels", "listed", "listing_status", "last_decision",
        "last_decision_date", run_id=pl.lit(run_id),
    )  # fmt: skip


def _township_rows(township: str | None) -> pl.Expr:
    return pl.lit(True) if township is None else pl.col("township") == township


def _store_followup(
    con: duckdb.DuckDBPyConnection,
    period: str,
    township: str | None,
    result: ScreenResult,
    run_id: str,
) -> None:
    """Every household's outcome (the history), the risk-removal candidates and the scale
    check of the period become this run's; a township run replaces that township's rows
    (the county's scale row is a full run's). Call inside a transaction."""
    mine = _township_rows(township)
    where, args = ("period = ?", [period])
    if township is not None:
        where, args = ("period = ? AND township = ?", [period, township])
    for table in ("screened_households", "removal_candidates", "scale_checks"):
        con.execute(f"DELETE FROM {table} WHERE {where}", args)
    insert_frame(con, "screened_households", screened_households(result, run_id).filter(mine))
    insert_frame(con, "removal_candidates", result.candidates.filter(mine))
    insert_frame(con, "scale_checks", result.scale.filter(mine))


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
    *,
    demo: bool = False,
) -> report.RunReport:
    """The run's report. Reads the run's screened households: call after storing them."""
    files = db_deliveries.files_read(con, period)
    rejected = db_deliveries.rejected_counts(con, period)
    overdue = followup.load_overdue(con, period, started.date(), resolved)
    warnings = [
        *resolved.warnings,
        *report.file_warnings(files),
        *report.headless_warning(result.households_without_head),
        *followup.scale_warnings(result.scale, resolved),
        *report.overdue_warning(overdue),
    ]
    if stray_files:
        # A scan named after its holder's ID number is a file name a person reads.
        names = ids.mask_text(", ".join(stray_files))
        warnings.append(f"收件箱中有未识别的文件 unrecognised files in the inbox: {names}")
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
        params=resolved,
        all_townships=all_townships,
        township=township,
        started_at=started,
        finished_at=dt.datetime.now().replace(microsecond=0),
        scale=result.scale,
        overdue=overdue,
        candidates=result.candidates,
        **report.stored_parts(con, period, run_id, all_townships),
        demo=demo,
    )


# ---------------------------------------------------------------- the work folder


def work_dir(out: Path, run_id: str) -> Path:
    """Where the screen stage leaves its frames for the publish stage: private, per run."""
    return Path(out) / WORK_FOLDER / run_id


def write_work(folder: Path, result: ScreenResult, all_townships: list[str]) -> Path:
    out = folder.parent.parent
    if not out.exists():
        ensure_dir(out)  # as publishing would make it; an existing one is left as is
    ensure_dir(folder.parent)  # 0700: the frames hold personal data
    ensure_dir(folder)
    for name in _WORK_FRAMES:
        getattr(result, name).write_parquet(folder / f"{name}.parquet")
    meta = {
        "all_townships": all_townships,
        "households_without_head": result.households_without_head,
        "households": result.households.height,
        "listed": result.suspects.height,
        "colours": dict(result.suspects["colour"].value_counts().rows()),
    }
    (folder / _WORK_META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return folder


def work_meta(folder: Path) -> dict:
    """Counts and township names the screen stage left (nothing personal: safe to log)."""
    return cast(dict, json.loads((folder / _WORK_META).read_text(encoding="utf-8")))


def read_work(folder: Path) -> tuple[ScreenResult, list[str]]:
    """The screen stage's result and every township in the roster."""
    meta = work_meta(folder)
    frames = {name: pl.read_parquet(folder / f"{name}.parquet") for name in _WORK_FRAMES}
    result = ScreenResult(households_without_head=meta["households_without_head"], **frames)
    return result, list(meta["all_townships"])


def remove_staged_temps(out: Path, period: str) -> list[Path]:
    """The temporary files a run killed while publishing left in `<out>/<period>/` and
    its township folders (never under a published file's own name), and a township folder
    that only they were in. Returns the files removed. Only while holding the lock: they
    could be another live run's."""
    top = Path(out) / period
    if not top.is_dir():
        return []
    removed: list[Path] = []
    for folder in [top, *sorted(p for p in top.iterdir() if p.is_dir() and not p.is_symlink())]:
        temps = [f for f in folder.iterdir() if _STAGED_TEMP.match(f.name) and f.is_file()]
        for temp in temps:
            temp.unlink()
        removed += temps
        if temps and folder != top:
            with contextlib.suppress(OSError):  # only when nothing else is in it
                folder.rmdir()
    return removed


def remove_work(out: Path, run_id: str) -> None:
    shutil.rmtree(work_dir(out, run_id), ignore_errors=True)
    with contextlib.suppress(OSError):  # only when no other run's folder is left
        (Path(out) / WORK_FOLDER).rmdir()


# ---------------------------------------------------------------- test hook


def after_stage(name: str) -> None:
    """Test hook, called with a name from `STAGES` after each stage of `run_period` (and
    at "store" inside `publish_run`); it does nothing in production.

    Crash tests replace it with a function that raises. To kill a real process at a known
    point, a test sets $SCREENING_TEST_PAUSE_AFTER to a stage name and
    $SCREENING_TEST_PAUSE_MARKER to a path: after that stage the process writes the path
    and sleeps until it is killed."""
    if os.environ.get(PAUSE_AFTER_ENV) != name:
        return
    marker = os.environ.get(PAUSE_MARKER_ENV)
    if marker:
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(PAUSE_SECONDS)


# ---------------------------------------------------------------- the stages


def prepare(req: RunRequest) -> None:
    """Everything that can be checked before a run is recorded: a wrong period, a bad
    parameters or aliases file, a missing inbox folder stop here and leave no trace."""
    check_period(req.period)
    specs = contract.load(req.aliases_file)
    parameters = params.load(req.params_file)
    parameters.at(req.period)
    parameters.ingest_limits(req.period)
    accepted_sources(req, specs)
    folder = Path(req.inbox) / req.period
    if not folder.is_dir():
        raise RunError(
            f"收件箱中没有 {req.period} 文件夹 no folder for period {req.period} in inbox "
            f"{req.inbox}"
        )
    check_one_file_per_source(discover(req.inbox, req.period, specs), folder)


def accepted_sources(req: RunRequest, specs: dict[str, contract.SourceSpec]) -> set[str]:
    """The source keys of `--accept-held`, given as keys or department names."""
    try:
        return {contract.source_key(name, specs) for name in req.accept_held}
    except contract.UnknownSource as exc:
        raise RunError(f"--accept-held: {exc}") from None


def start_run(req: RunRequest) -> str:
    """Record the run in `runs` as running, with its parameters and code version.
    Returns the run id."""
    specs = contract.load(req.aliases_file)
    resolved = params.load(req.params_file).at(req.period)
    con = connect(req.db, wait=req.busy_timeout)
    try:
        db_schema.ensure_schema(con, specs)
        # Refusals come before the run is recorded: a typo is not a failed run.
        _check_demo(con, req)
        _check_township(con, req, specs)
        with transaction(con):
            interrupted = _close_interrupted(con)
            started = dt.datetime.now().replace(microsecond=0)
            run_id = new_run_id(req.period, started)
            _record_start(con, run_id, req, started, resolved)
        leftovers = _ended_work(con, req.out)
    finally:
        con.close()
    for old in leftovers:
        remove_work(req.out, old)
    for period in sorted(set(interrupted)):
        remove_staged_temps(req.out, period)
    return run_id


def ingest_inputs(req: RunRequest, run_id: str) -> list[SourceResult]:
    """Discover, read, normalise, validate, gate and store the period's files; the files and
    their hashes go into the run's row. The results come back without their frames.
    Raises `DeliveryHeld` (after storing the rest) when a completeness gate held a delivery
    that `req.accept_held` does not accept: the run must publish nothing new."""
    specs = contract.load(req.aliases_file)
    parameters = params.load(req.params_file)
    resolved = parameters.at(req.period)
    con = connect(req.db, wait=req.busy_timeout)
    try:
        results = ingest_period(
            con,
            req.inbox,
            req.period,
            specs,
            limits=parameters.ingest_limits(req.period),
            gates=resolved.gates,
            accept_held=accepted_sources(req, specs),
            run_id=run_id,
        )
        _record_inputs(con, run_id, results)
    finally:
        con.close()
    light = [replace(r, good=None, quarantine=None, duplicates=None) for r in results]
    holding = held(results)
    if holding:
        raise DeliveryHeld(req.period, holding, light)
    return light


def screen_period(req: RunRequest, run_id: str) -> Path:
    """Screen the period as of its inputs and leave the result in the run's work folder
    (returned). The database is only read, and closed before the rules run."""
    specs = contract.load(req.aliases_file)
    resolved = params.load(req.params_file).at(req.period)
    con = connect(req.db, read_only=True, wait=req.busy_timeout)
    try:
        if batches.needs_batches(con, req.period):  # exported, then screened by townships
            folder = work_dir(req.out, run_id) / batches.INPUTS_FOLDER
            inputs = batches.export_inputs(con, specs, req.period, folder, resolved.window_months)
        else:
            inputs = load_inputs(con, specs, req.period, resolved.window_months)
        previous = previously_listed(con, req.period)
        earlier = followup.load(con, req.period, resolved)
    finally:
        con.close()
    all_townships = sorted(
        inputs.population.select(pl.col("township").unique()).collect().to_series()
    )
    if req.township is not None and req.township not in all_townships:
        raise RunError(
            f"未知的乡镇 unknown township {req.township!r}; "
            f"最接近的 nearest: {nearest(req.township, all_townships)}"
        )
    result = batches.screen_in_batches(
        inputs,
        req.period,
        resolved,
        lambda part: screen(part, req.period, resolved, previous, run_id, earlier),
    )
    return write_work(work_dir(req.out, run_id), result, all_townships)


def publish_run(req: RunRequest, run_id: str, work: Path | None = None) -> Published:
    """Store the lists, evidence and match rates, publish the files and the run report and
    record the run's success: all in one transaction, so that either all of it happens or
    the lists (in the database and on disk) stay as they were. `work`: the screen stage's
    folder (by default the run's)."""
    specs = contract.load(req.aliases_file)
    resolved = params.load(req.params_file).at(req.period)
    result, all_townships = read_work(work or work_dir(req.out, run_id))
    suspects, evidence, members = _for_township(result, req.township)
    mine = _township_rows(req.township)
    con = connect(req.db, wait=req.busy_timeout)
    try:
        meta = PublishMeta(
            period=req.period,
            run_id=run_id,
            params=resolved,
            sources=_source_statuses(con, req.period, specs, run_id),
            mask_ids=req.mask_ids,
            all_townships=all_townships,
            delivery_notes=delivery_notes(db_deliveries.run_events(con, run_id)),
            demo=req.demo,
        )
        with transaction(con):
            meta.list_key_secret = db_runs.list_key_secret(con)
            _store_outputs(con, req.period, req.township, suspects, evidence, result.match_rates)
            _store_followup(con, req.period, req.township, result, run_id)
            rep = build_report(
                con,
                req.period,
                run_id,
                result,
                suspects,
                resolved,
                all_townships,
                req.township,
                unrecognised_files(req.inbox, req.period, specs),
                _started_at(con, run_id),
                demo=req.demo,
            )
            _record_end(con, run_id, "success", "")
            after_stage("store")
            # The files come last: once they are renamed into place only the commit is left.
            written = publish.publish(
                req.out,
                suspects,
                evidence,
                members,
                meta,
                townships=[req.township] if req.township else None,
                candidates=result.candidates.filter(mine),
            )
            if req.township is None:
                written.append(report.write_report(req.out, rep))
    finally:
        con.close()
    return Published(result, suspects, rep, written)


def finish_run(req: RunRequest, run_id: str) -> None:
    """After a successful run: its work folder goes."""
    remove_work(req.out, run_id)


def fail_run(req: RunRequest, run_id: str, reason: str, status: str = "failed") -> bool:
    """Record the run as failed (or `held`: a completeness gate held a delivery) with its
    one-line reason and remove its work folder. Never raises (the caller is already
    handling the real failure). False when nothing was recorded: the run had already
    ended, or the database could not be written (the next run to start then closes this
    one as interrupted)."""
    remove_work(req.out, run_id)
    try:
        con = connect(req.db, wait=req.busy_timeout)
    except Exception:
        return False
    try:
        return _record_end(con, run_id, status, ids.mask_text(reason)[:500])
    except Exception:
        return False
    finally:
        con.close()


@dataclass(frozen=True)
class Stage:
    """One stage of a run after `start_run`: `call(req, run_id)` opens the database and
    closes it before it returns, and hands on only what it wrote (the work folder). `retry`:
    whether waiting can fix its failures (reading the inbox, a busy database)."""

    name: str
    label: str  # for the console's progress line
    function: str  # a function of this module, looked up at each call (tests replace it)
    retry: bool = False

    def call(self, req: RunRequest, run_id: str) -> object:
        function: Callable[[RunRequest, str], object] = globals()[self.function]
        return function(req, run_id)


# The one order of a run's stages: `run_period` and the Prefect flow (flow.py) iterate it.
RUN_STAGES = (
    Stage("ingest", "入库 ingest", "ingest_inputs", retry=True),
    Stage("screen", "筛查 screen", "screen_period"),
    Stage("publish", "发布 publish", "publish_run"),
    Stage("finish", "收尾 finish", "finish_run"),
)


def request(
    settings: config.Settings,
    period: str,
    township: str | None = None,
    accept_held: tuple[str, ...] = (),
) -> RunRequest:
    """The run the settings describe for `period` (one township's, or all), accepting the
    held deliveries of `accept_held`."""
    return RunRequest(
        db=settings.db,
        inbox=settings.require_inbox(),
        out=settings.out,
        period=period,
        params_file=settings.params_file,
        aliases_file=settings.aliases_file,
        township=township,
        mask_ids=settings.mask_ids,
        accept_held=tuple(accept_held),
        demo=settings.demo,
        busy_timeout=settings.busy_timeout,
    )


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
    accept_held: tuple[str, ...] = (),
    demo: bool = False,
    busy_timeout: float = 0.0,
) -> RunOutcome:
    """Screen one period (or re-screen one township of it) and publish the lists. Raises
    `DeliveryHeld` when a completeness gate held a delivery that `accept_held` does not
    accept (the run is recorded `held`, nothing new is published)."""
    req = RunRequest(
        db=Path(db),
        inbox=Path(inbox),
        out=Path(out),
        period=period,
        params_file=params_file,
        aliases_file=aliases_file,
        township=township,
        mask_ids=mask_ids,
        accept_held=tuple(accept_held),
        demo=demo,
        busy_timeout=busy_timeout,
    )
    return run_request(req, on_stage=on_stage)


def run_request(req: RunRequest, on_stage: Callable[[str], None] | None = None) -> RunOutcome:
    """`run_period` for a prepared request: every stage of `RUN_STAGES` in order under the
    one-writer lock, a failure recorded with its reason."""
    stage_started = on_stage or (lambda _label: None)
    prepare(req)
    after_stage("prepare")
    results: dict[str, object] = {}
    with lock.hold(req.db):
        run_id = start_run(req)
        try:
            after_stage("start")
            for stage in RUN_STAGES:
                stage_started(stage.label)
                results[stage.name] = stage.call(req, run_id)
                after_stage(stage.name)
        except BaseException as exc:
            fail_run(req, run_id, one_line(exc), run_status(exc))
            raise
    done = cast(Published, results["publish"])
    ingested = cast(list[SourceResult], results["ingest"])
    return RunOutcome(
        run_id,
        req.period,
        req.township,
        done.result,
        done.suspects,
        ingested,
        done.report,
        done.written,
    )


# ---------------------------------------------------------------- helpers


def run_status(exc: BaseException) -> str:
    """How `runs` records a run that ended with `exc`: held, or failed."""
    return "held" if isinstance(exc, DeliveryHeld) else "failed"


def _started_at(con: duckdb.DuckDBPyConnection, run_id: str) -> dt.datetime:
    rows = con.execute("SELECT started_at FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        raise RunError(f"数据库中没有批次 {run_id} run is not recorded in the database")
    return cast(dt.datetime, rows[0][0])


def _source_statuses(
    con: duckdb.DuckDBPyConnection,
    period: str,
    specs: dict[str, contract.SourceSpec],
    run_id: str,
) -> dict[str, str]:
    """Each source's delivery this period as the lists describe it: loaded, empty, missing,
    rejected, held or withdrawn (a file skipped as unchanged keeps the status of its first
    reading), or kept: this run could not use the period's file and the delivery stored
    before stayed in force."""
    rows = con.execute(
        "SELECT source, status FROM ingest_log WHERE period = ?", [period]
    ).fetchall()
    status = dict(rows)
    events = db_deliveries.run_events(con, run_id)
    for source in events.filter(pl.col("event") == "kept")["source"]:
        status[source] = "kept"
    return {source: status[source] for source in specs if source in status}


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
