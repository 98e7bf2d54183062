"""Ingest one period: discover → read → normalise → validate → store, and `ingest_log`.

The database reflects the inbox: after ingesting period P, each source's delivery for P
is exactly what the inbox holds now (a missing or rejected file leaves no rows for P).
All sources of the period are written in one transaction, after every file was read, so a
failure leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from . import store
from .contract import SourceSpec
from .inbox import discover, unrecognised
from .normalise import normalise_frame
from .read import FileRejected, read_source
from .validate import validate

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
    sha = file_sha256(path)
    try:
        raw = read_source(path, spec)
        normalised = normalise_frame(raw.frame, spec)
        checked = validate(normalised, spec, period=period, file=path.name)
    except FileRejected as exc:
        return SourceResult(spec.source, path.name, "rejected", message=str(exc), sha256=sha)
    notes = []
    if raw.encoding and raw.encoding != "utf-8":
        notes.append({"gb18030": "GBK/GB18030", "utf-8-sig": "UTF-8 BOM"}[raw.encoding])
    if raw.blank_rows:
        notes.append(f"{raw.blank_rows} blank row(s) ignored")
    if raw.extras:
        notes.append(f"extra column(s) kept: {', '.join(raw.extras)}")
    rows = raw.frame.height
    good = checked.good.with_columns(pl.lit(path.name).alias("file"))
    return SourceResult(
        source=spec.source,
        file=path.name,
        status="loaded" if rows else "empty",
        rows_read=rows,
        rows_accepted=good.height,
        rows_rejected=checked.rows_rejected,
        message="; ".join(notes) if notes else ("header only, no rows" if not rows else ""),
        sha256=sha,
        encoding=raw.encoding,
        good=good,
        quarantine=checked.quarantine,
    )


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
    results: list[SourceResult] = []
    for source, spec in specs.items():
        if on_source:
            on_source(source)
        item = found[source]
        if item.problem == "missing":
            results.append(SourceResult(source, None, "missing", message=item.message))
        elif item.problem == "ambiguous":
            names = ", ".join(p.name for p in item.candidates)
            results.append(SourceResult(source, names, "rejected", message=item.message))
        else:
            assert item.path is not None
            previous = store.log_entry(con, period, source)
            if _unchanged(previous, item.path):
                results.append(_unchanged_result(previous))  # type: ignore[arg-type]
                continue
            results.append(read_one(item.path, spec, period))

    now = dt.datetime.now().replace(microsecond=0)
    with store.transaction(con):
        for result in results:
            if result.status == "unchanged":
                continue
            store.replace_delivery(
                con, specs[result.source], period, result.good, result.quarantine
            )
            store.upsert_log(con, result.log_row(period, now))
    return results


def _unchanged(previous: dict | None, path: Path) -> bool:
    # Same file, same bytes, read successfully before: reading it again could only
    # reproduce the same rows, so re-runs skip it (and leave every table identical).
    return (
        previous is not None
        and previous["file"] == path.name
        and previous["status"] in ("loaded", "empty")
        and previous["sha256"] == file_sha256(path)
    )


def _unchanged_result(previous: dict) -> SourceResult:
    return SourceResult(
        source=previous["source"],
        file=previous["file"],
        status="unchanged",
        rows_read=previous["rows_read"],
        rows_accepted=previous["rows_accepted"],
        rows_rejected=previous["rows_rejected"],
        message="same file as last time, not read again",
        sha256=previous["sha256"],
        encoding=previous["encoding"],
    )


def unrecognised_files(inbox: Path, period: str, specs: dict[str, SourceSpec]) -> list[str]:
    return [p.name for p in unrecognised(inbox, period, specs)]
