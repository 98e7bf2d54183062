"""Ingest one period: discover → read → normalise → validate → gates → store, `ingest_log`.

What a run may and may not do with the deliveries (data contract, "Deliveries"):

- A file read and used becomes the period's delivery of its source, replacing the one
  stored before (a corrected file re-sent).
- **A run never removes a stored delivery.** When this period's file of a source is missing
  or rejected and a delivery of the period is stored, that delivery stays in force: the
  result says `kept`, `delivery_events` records it, and the console, the run report and
  the lists' 说明 sheet say which stored file was used instead. `ingest_log` keeps the
  stored delivery's row. Only `withdraw` (`screening ingest --withdraw`) removes one.
- Two files of one source stop the ingest before anything is read or written
  (`inbox.TwoFilesForOneSource`).
- With `gates`, a delivery that fails a completeness gate is held (`gates.py`): not used,
  its rows kept in `held_rows`, `held_deliveries` saying why, unless its source is in
  `accept_held` (or the same file was accepted before).
- A file is read again unless its bytes, its source's contract with the aliases in force,
  and the program's version are all unchanged (`results.read_key`).

Each file is read, normalised and validated on its own into a `SourceResult`
(results.py); this module makes the period's decisions with them. All sources of the
period are written in one transaction, after every file was read, so a failure leaves the
database as it was.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from screening import params
from screening.contract import SourceSpec
from screening.db import deliveries as db_deliveries
from screening.db import roster as db_roster
from screening.db import schema as db_schema
from screening.db.connect import transaction
from screening.ingest import gates as gating
from screening.ingest.inbox import (
    Found,
    check_one_file_per_source,
    discover,
    files_in_subfolders,
    unrecognised,
)
from screening.ingest.results import SourceResult, read_guarded, read_key, sha_or_none
from screening.params import Gates
from screening.periods import check_period, periods_named
from screening.version import code_version


def ingest_period(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    period: str,
    specs: dict[str, SourceSpec],
    *,
    on_source: Callable[[str], None] | None = None,
    limits: params.IngestLimits | None = None,
    gates: Gates | None = None,
    accept_held: Collection[str] = (),
    run_id: str | None = None,
) -> list[SourceResult]:
    """Ingest every source of `period` from `inbox` into the database. `limits`: the
    `ingest_limits` parameters in force for the period (default: the shipped ones). With
    `gates`, a delivery failing a completeness gate is held unless its source is in
    `accept_held` (the caller stops the run: see `held`). `run_id` marks the events it
    records."""
    limits = limits or params.ingest_limits(period)
    found = discover(inbox, period, specs)
    check_one_file_per_source(found, Path(inbox) / period)
    db_schema.ensure_schema(con, specs)
    logged = {source: db_deliveries.log_entry(con, period, source) for source in specs}
    program = code_version()
    results: list[SourceResult] = []
    for source, spec in specs.items():
        if on_source:
            on_source(source)
        result = _ingest_source(found[source], spec, period, logged[source], program, limits)
        if result.status in ("loaded", "empty", "rejected"):
            result.warnings += _other_period_warnings(con, result, period)
        if result.status == "missing":
            result.warnings += _subfolder_warnings(Path(inbox) / period, spec)
        results.append(result)
    if gates is not None:
        _apply_gates(con, results, specs, period, gates, set(accept_held))
        for result in results:
            if result.source in accept_held and not any(g.held for g in result.gates):
                result.warnings.append(
                    "--accept-held：本期该数据源没有被暂扣的文件，无需接受 (nothing of this "
                    "source was held this period)"
                )

    now = dt.datetime.now().replace(microsecond=0)
    with transaction(con):
        for result in results:
            _settle(result, logged[result.source])
            _store(con, specs[result.source], period, result, logged[result.source], now, run_id)
    return results


def held(results: list[SourceResult]) -> list[gating.GateResult]:
    """The gates holding deliveries of this ingest, not accepted."""
    return [g for r in results for g in r.held]


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor the password file
        return "unknown"


def _ingest_source(
    item: Found,
    spec: SourceSpec,
    period: str,
    previous: dict | None,
    program: str,
    limits: params.IngestLimits | None = None,
) -> SourceResult:
    if item.problem == "missing":
        return SourceResult(spec.source, None, "missing", message=item.message)
    assert item.path is not None
    sha = sha_or_none(item.path)
    key = read_key(sha, spec, program, limits) if sha else None
    if (
        previous is not None
        and key is not None
        and previous["file"] == item.path.name
        and previous["status"] in db_deliveries.STORED
        and previous.get("read_key") == key
    ):
        # Same file, same bytes, read the same way: reading it again could only reproduce
        # the same rows, so re-runs skip it (and leave every table identical).
        return _unchanged_result(previous)
    result = read_guarded(item.path, spec, period, limits)
    if result.sha256:
        result.read_key = (
            key if result.sha256 == sha else read_key(result.sha256, spec, program, limits)
        )
    return result


def _other_period_warnings(
    con: duckdb.DuckDBPyConnection, result: SourceResult, period: str
) -> list[str]:
    """A file named for another month, or with the very bytes of another month's delivery:
    read, but probably not this month's data."""
    warnings = []
    named = periods_named(result.file or "")
    if named and period not in named:
        warnings.append(
            f"文件名中的期次是 {'、'.join(named)}，而文件在 {period} 文件夹中，请确认是本期数据 "
            f"(the file name names {', '.join(named)}, the folder is {period})"
        )
    if result.sha256:
        for other, source, file in db_deliveries.same_bytes_elsewhere(con, result.sha256, period):
            warnings.append(
                f"与 {other} 期已入库的 {file} 内容完全相同，请确认不是重复报送 "
                f"(byte-identical to the {other} delivery of {source}, {file})"
            )
    return warnings


def _subfolder_warnings(folder: Path, spec: SourceSpec) -> list[str]:
    """A source missing this month whose file sits in a subfolder (not read): said, since
    an officer may have filed this month's file away by mistake."""
    return [
        f"子文件夹中有 {path.relative_to(folder)}（子文件夹不读取：如是本期数据，请移到 "
        f"{folder.name} 文件夹）(a {spec.source} file in a subfolder is not read: "
        f"{path.relative_to(folder)}; move it up if it is this month's)"
        for path in files_in_subfolders(folder, spec)
    ]


def _apply_gates(
    con: duckdb.DuckDBPyConnection,
    results: list[SourceResult],
    specs: dict[str, SourceSpec],
    period: str,
    gates: Gates,
    accept: set[str],
) -> None:
    """Every delivery read just now goes through the gates; the roster first, since the
    events are matched to the roster that will be in force (this one, unless held)."""
    roster: pl.Series | None = None
    for result in sorted(results, key=lambda r: r.source != "roster"):
        spec = specs[result.source]
        stored = _stored(con, period, result.source)
        if result.status == "rejected" and stored is None:
            # Nothing of the period would be in force: the file cannot shorten a list unasked.
            found = [gating.rejected(result.source, result.file, result.message)]
            _decide(con, period, result, found, accept)
            continue
        if result.status not in ("loaded", "empty"):
            continue
        good_ids = result.good["id_number"] if result.good is not None else None
        if spec.kind == "events" and roster is None:
            roster = db_roster.roster_ids(con, period)
        found = gating.check(
            result.source,
            result.file,
            spec.kind,
            rows_read=result.rows_read,
            rows_rejected=result.rows_rejected,
            good_ids=good_ids,
            gates=gates,
            previous_persons=(
                db_deliveries.snapshot_persons(con, result.source, period)
                if spec.kind == "snapshot"
                else 0
            ),
            roster=roster,
        )
        if stored is not None and spec.kind == "events":
            found += gating.shrank(
                result.source, result.file, result.rows_accepted, stored["rows_accepted"], gates
            )
        _decide(con, period, result, found, accept)
        if result.source == "roster" and not result.held and good_ids is not None:
            roster = good_ids


def _stored(con: duckdb.DuckDBPyConnection, period: str, source: str) -> dict | None:
    """The period's stored delivery of `source` (its ingest_log row), or None."""
    entry = db_deliveries.log_entry(con, period, source)
    return entry if entry is not None and entry["status"] in db_deliveries.STORED else None


def _decide(
    con: duckdb.DuckDBPyConnection,
    period: str,
    result: SourceResult,
    found: list[gating.GateResult],
    accept: set[str],
) -> None:
    """The gates of a result: held ones accepted by the officer now or before (the same
    file and gate), the others warned about."""
    before = db_deliveries.accepted_gates(con, period, result.source, result.sha256)
    user = os_user()
    result.gates = [
        dataclasses.replace(
            g, accepted_by=before.get(g.gate) or (user if result.source in accept else None)
        )
        if g.held
        else g
        for g in found
    ]
    result.warnings += [f"{g.describe()}" for g in found if not g.held]


def _settle(result: SourceResult, previous: dict | None) -> None:
    """What the period's decision makes of a result: a missing or rejected file keeps the
    stored delivery (kept), a held one is held."""
    stored = (
        previous if previous is not None and previous["status"] in db_deliveries.STORED else None
    )
    if result.held:
        result.problem = "held"
        reasons = "; ".join(g.describe() for g in result.held)
        result.message = "; ".join(m for m in (f"暂扣 held: {reasons}", result.message) if m)
        result.status = "held"
    elif result.status in ("missing", "rejected") and stored is not None:
        result.problem = result.status
        what = (
            "本期收件箱中没有文件 no file in the inbox"
            if result.status == "missing"
            else f"文件被拒收 rejected: {result.file}: {result.message}"
        )
        result.message = (
            f"{what}; 沿用 {_when(stored['ingested_at'])} 入库的 {stored['file']} "
            "(the stored delivery stays in force)"
        )
        result.status = "kept"
    else:
        return
    if stored is not None:
        result.kept_file, result.kept_at = stored["file"], stored["ingested_at"]
        if result.status == "kept":
            result.rows_read = stored["rows_read"]
            result.rows_accepted = stored["rows_accepted"]
            result.rows_rejected = stored["rows_rejected"]


def _when(at: dt.datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "（时间不详）"


def _store(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    period: str,
    result: SourceResult,
    previous: dict | None,
    now: dt.datetime,
    run_id: str | None,
) -> None:
    user = os_user()
    event = {
        "period": period,
        "source": spec.source,
        "file": result.file if result.problem != "missing" else None,
        "stored_file": result.kept_file,
        "stored_ingested_at": result.kept_at,
        "message": result.message,
        "recorded_at": now,
        "recorded_by": user,
        "run_id": run_id,
    }
    if result.status == "kept":
        db_deliveries.record_event(con, {**event, "event": "kept"})
        return
    if result.status == "held":
        stamp = {
            "period": period,
            "source": spec.source,
            "file": result.file or "",
            "sha256": result.sha256 or "",
        }
        gates = pl.DataFrame(
            [
                {
                    **stamp,
                    "gate": g.gate,
                    "measured": g.measured,
                    "threshold": g.threshold,
                    "rows_read": result.rows_read,
                    "rows_accepted": result.rows_accepted,
                    "rows_rejected": result.rows_rejected,
                    "held_at": now,
                    "run_id": run_id,
                }
                for g in result.held
            ]
        )
        db_deliveries.hold_delivery(con, gates, result.good, result.quarantine, stamp)
        db_deliveries.record_event(con, {**event, "event": "held"})
        if result.kept_file is None:  # nothing of the period stored: the log says held
            db_deliveries.upsert_log(con, result.log_row(period, now))
        return
    if _as_logged(result, previous):
        return
    db_deliveries.replace_delivery(
        con, spec, period, result.good, result.quarantine, result.duplicates, result.rejected_rows
    )
    db_deliveries.upsert_log(con, result.log_row(period, now))
    accepted = [g for g in result.gates if g.held]
    if accepted and result.sha256:
        db_deliveries.accept_held(
            con, period, spec.source, result.sha256, [g.gate for g in accepted], user, now
        )
        who = ", ".join(sorted({g.accepted_by or user for g in accepted}))
        reasons = "; ".join(g.describe() for g in accepted)
        db_deliveries.record_event(
            con, {**event, "event": "accepted", "message": f"接受 accepted by {who}: {reasons}"}
        )


def _as_logged(result: SourceResult, previous: dict | None) -> bool:
    # Nothing to write: rewriting the same log row would only move its timestamp, and a
    # re-run must leave every table as it was.
    if result.status == "unchanged":
        return True
    return (
        result.status == "missing"
        and previous is not None
        and previous["status"] in ("missing", "withdrawn")
    )


def _unchanged_result(previous: dict) -> SourceResult:
    return SourceResult(
        source=previous["source"],
        file=previous["file"],
        status="unchanged",
        rows_read=previous["rows_read"],
        rows_accepted=previous["rows_accepted"],
        rows_rejected=previous["rows_rejected"],
        rows_duplicate=previous.get("rows_duplicate") or 0,
        message="与上次相同的文件，未重新读取 same file as last time, not read again",
        sha256=previous["sha256"],
        encoding=previous["encoding"],
        read_key=previous.get("read_key"),
    )


@dataclass(frozen=True)
class Withdrawn:
    period: str
    source: str
    file: str | None
    rows: int  # rows removed from stg_<source>
    by: str
    at: dt.datetime


def withdraw(
    con: duckdb.DuckDBPyConnection, specs: dict[str, SourceSpec], source: str, period: str
) -> Withdrawn:
    """Remove the stored delivery of `source` for `period` on purpose: its rows, quarantine
    rows and duplicate copies go; `ingest_log` says withdrawn (who, when) and
    `delivery_events` records it. Raises `NothingToWithdraw` when none is stored."""
    check_period(period)
    db_schema.ensure_schema(con, specs)
    entry = db_deliveries.log_entry(con, period, source)
    withdrawable = (*db_deliveries.STORED, "held")
    if entry is None or entry["status"] not in withdrawable:
        state = "无记录 nothing recorded" if entry is None else entry["status"]
        raise NothingToWithdraw(
            f"{period} 期没有已入库或被暂扣的 {source} 数据可撤回 no stored or held {source} "
            f"delivery for {period} to withdraw ({state})"
        )
    now = dt.datetime.now().replace(microsecond=0)
    user = os_user()
    with transaction(con):
        if entry["status"] == "held":
            # Nothing of it is stored: withdrawing decides that the held file is not used
            # (its rows stay in held_rows, nothing is lost), so later runs go on without it.
            rows = 0
            message = (
                f"撤回 withdrawn by {user} at {_when(now)}: 暂扣的 {entry['file']} 不予使用 "
                "the held file is not used"
            )
        else:
            rows = db_deliveries.remove_delivery(con, specs[source], period)
            message = (
                f"撤回 withdrawn by {user} at {_when(now)}: {rows} 行 rows of {entry['file']} "
                f"(ingested {_when(entry['ingested_at'])}) removed"
            )
        db_deliveries.upsert_log(
            con,
            {
                **entry,
                "rows_read": 0,
                "rows_accepted": 0,
                "rows_rejected": 0,
                "status": "withdrawn",
                "message": message,
                "ingested_at": now,
                "read_key": None,
                "warning": None,
            },
        )
        db_deliveries.record_event(
            con,
            {
                "period": period,
                "source": source,
                "event": "withdrawn",
                "file": None,
                "stored_file": entry["file"],
                "stored_ingested_at": entry["ingested_at"],
                "message": message,
                "recorded_at": now,
                "recorded_by": user,
                "run_id": None,
            },
        )
    return Withdrawn(period, source, entry["file"], rows, user, now)


class NothingToWithdraw(ValueError):
    """`withdraw` found no stored delivery; the message says what the log holds."""


def unrecognised_files(inbox: Path, period: str, specs: dict[str, SourceSpec]) -> list[str]:
    return [p.name for p in unrecognised(inbox, period, specs)]
