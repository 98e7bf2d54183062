"""Ingest one period: discover → read → normalise → validate → store, and `ingest_log`.

The database reflects the inbox: after ingesting period P, each source's delivery for P
is exactly what the inbox holds now (a missing or rejected file leaves no rows for P).
All sources of the period are written in one transaction, after every file was read, so a
failure leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from . import ids, store
from .contract import SourceSpec
from .inbox import Found, discover, unrecognised
from .normalise import normalise_frame
from .read import FileRejected, RawFile, read_source
from .validate import QUARANTINE_SCHEMA, validate

log = logging.getLogger(__name__)
# A library does not print: the application decides where tracebacks go. Without this,
# Python's last-resort handler would put them on the officer's console.
log.addHandler(logging.NullHandler())

# Anything that may be an ID number (15 or 18 characters) in a message or a traceback.

STATUS_LABELS = {
    "loaded": "已入库",
    "empty": "只有表头",
    "missing": "缺失",
    "rejected": "整表拒收",
    "unchanged": "未变化",
}


@dataclass
class SourceResult:
    source: str
    file: str | None
    status: str  # loaded | empty | missing | rejected | unchanged
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    message: str = ""
    sha256: str | None = None
    encoding: str | None = None
    good: pl.DataFrame | None = field(default=None, repr=False)
    quarantine: pl.DataFrame | None = field(default=None, repr=False)

    def log_row(self, period: str, now: dt.datetime) -> dict[str, object]:
        return {
            "period": period,
            "source": self.source,
            "file": self.file,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "status": self.status,
            "message": self.message,
            "encoding": self.encoding,
            "ingested_at": now,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_one(path: Path, spec: SourceSpec, period: str) -> SourceResult:
    """Read, normalise and validate one file. Never raises for bad data: a file that
    cannot be used comes back as status 'rejected' with a one-line message."""
    try:
        sha = file_sha256(path)
    except OSError as exc:
        return _rejected(spec, path, _unreadable(exc), None)
    try:
        raw = read_source(path, spec)
    except FileRejected as exc:
        return _rejected(spec, path, redact(str(exc)), sha)
    except OSError as exc:
        return _rejected(spec, path, _unreadable(exc), sha)
    normalised = normalise_frame(raw.frame, spec)
    checked = validate(normalised, spec, period=period, file=path.name)
    quarantine = pl.concat([_damaged_rows(raw, spec, period, path.name), checked.quarantine])
    rows = raw.rows_read
    good = checked.good.with_columns(pl.lit(path.name).alias("file"))
    notes = _notes(raw)
    if not rows:
        notes.insert(0, "只有表头，没有数据行 header only, no rows")
    return SourceResult(
        source=spec.source,
        file=path.name,
        status="loaded" if rows else "empty",
        rows_read=rows,
        rows_accepted=good.height,
        rows_rejected=checked.rows_rejected + raw.bad_rows,
        message=redact("; ".join(notes)),
        sha256=sha,
        encoding=raw.encoding,
        good=good,
        quarantine=quarantine.sort("row_number", "column", "check"),
    )


def _notes(raw: RawFile) -> list[str]:
    notes = []
    if raw.encoding and raw.encoding != "utf-8":
        notes.append({"gb18030": "GBK/GB18030", "utf-8-sig": "UTF-8 BOM"}[raw.encoding])
    if raw.damaged_bytes:
        notes.append(f"{raw.damaged_bytes} undecodable byte(s), their rows set aside")
    if raw.bad_rows:
        notes.append(f"{raw.bad_rows} row(s) with a damaged cell set aside")
    if raw.blank_rows:
        notes.append(f"{raw.blank_rows} blank row(s) ignored")
    if raw.extras:
        notes.append(f"extra column(s) kept: {', '.join(raw.extras)}")
    return notes


def _damaged_rows(raw: RawFile, spec: SourceSpec, period: str, file: str) -> pl.DataFrame:
    return raw.bad_cells.select(
        pl.lit(period).alias("period"),
        pl.lit(spec.source).alias("source"),
        pl.lit(file).alias("file"),
        pl.col("row_number"),
        pl.col("column"),
        pl.col("check"),
        pl.col("raw_value"),
    ).cast(pl.Schema(QUARANTINE_SCHEMA))


def _unreadable(exc: OSError) -> str:
    # Vanished, locked by another program, no permission: the file, not a bug.
    return f"cannot read the file ({exc.strerror or type(exc).__name__})"


def _rejected(spec: SourceSpec, path: Path, message: str, sha: str | None) -> SourceResult:
    return SourceResult(spec.source, path.name, "rejected", message=message, sha256=sha)


def _sha_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def redact(text: str) -> str:
    """The text with every ID number in it masked (430624********1234)."""
    return ids.mask_text(text)


def read_guarded(path: Path, spec: SourceSpec, period: str) -> SourceResult:
    """`read_one`, except that a failure it does not expect (a bug, a library error)
    rejects this source only: one line for the officer, the traceback for the log."""
    try:
        return read_one(path, spec, period)
    except BaseException as exc:
        # Rust extensions raise PanicException, a BaseException; Ctrl-C must still stop us.
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        log.error(
            "internal error reading %s for %s %s:\n%s",
            path.name,
            spec.source,
            period,
            redact("".join(traceback.format_exception(exc))),
        )
        first = str(exc).strip().splitlines()
        detail = first[0][:200] if first else ""
        message = redact(f"internal error: {type(exc).__name__}: {detail}")
        return _rejected(spec, path, message, _sha_or_none(path))


def ingest_period(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    period: str,
    specs: dict[str, SourceSpec],
    *,
    on_source: Callable[[str], None] | None = None,
) -> list[SourceResult]:
    """Ingest every source of `period` from `inbox` into the database."""
    store.ensure_schema(con, specs)
    found = discover(inbox, period, specs)
    logged = {source: store.log_entry(con, period, source) for source in specs}
    results: list[SourceResult] = []
    for source, spec in specs.items():
        if on_source:
            on_source(source)
        results.append(_ingest_source(found[source], spec, period, logged[source]))

    now = dt.datetime.now().replace(microsecond=0)
    with store.transaction(con):
        for result in results:
            if _as_logged(result, logged[result.source]):
                continue
            store.replace_delivery(
                con, specs[result.source], period, result.good, result.quarantine
            )
            store.upsert_log(con, result.log_row(period, now))
    return results


def _as_logged(result: SourceResult, previous: dict | None) -> bool:
    # Nothing to write: rewriting the same log row would only move its timestamp, and a
    # re-run must leave every table as it was.
    if result.status == "unchanged":
        return True
    return (
        result.status == "missing"
        and previous is not None
        and previous["status"] == "missing"
        and previous["file"] is None
    )


def _ingest_source(
    item: Found, spec: SourceSpec, period: str, previous: dict | None
) -> SourceResult:
    if item.problem == "missing":
        return SourceResult(spec.source, None, "missing", message=item.message)
    if item.problem == "ambiguous":
        names = ", ".join(p.name for p in item.candidates)
        return SourceResult(spec.source, names, "rejected", message=item.message)
    assert item.path is not None
    if previous is not None and _unchanged(previous, item.path):
        return _unchanged_result(previous)
    return read_guarded(item.path, spec, period)


def _unchanged(previous: dict | None, path: Path) -> bool:
    # Same file, same bytes, read successfully before: reading it again could only
    # reproduce the same rows, so re-runs skip it (and leave every table identical).
    try:
        return (
            previous is not None
            and previous["file"] == path.name
            and previous["status"] in ("loaded", "empty")
            and previous["sha256"] == file_sha256(path)
        )
    except OSError:
        return False  # reading it again will say what is wrong with it


def _unchanged_result(previous: dict) -> SourceResult:
    return SourceResult(
        source=previous["source"],
        file=previous["file"],
        status="unchanged",
        rows_read=previous["rows_read"],
        rows_accepted=previous["rows_accepted"],
        rows_rejected=previous["rows_rejected"],
        message="与上次相同的文件，未重新读取 same file as last time, not read again",
        sha256=previous["sha256"],
        encoding=previous["encoding"],
    )


def unrecognised_files(inbox: Path, period: str, specs: dict[str, SourceSpec]) -> list[str]:
    return [p.name for p in unrecognised(inbox, period, specs)]
