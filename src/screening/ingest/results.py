"""One delivered file read, normalised and validated into a `SourceResult`: its good rows,
its quarantine, its counts and one line of notes for the ingest log (`read_one`), a
failure nobody expected turned into a rejection of that source only (`read_guarded`),
and `read_key`, what reading a file depends on.

What the period's ingest then decides with the results (kept, held, stored) is in
deliveries.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from screening import ids, params
from screening.contract import SourceSpec
from screening.ingest import gates as gating
from screening.ingest.cells import FileRejected
from screening.ingest.normalise import normalise_frame
from screening.ingest.read import RawFile, read_source
from screening.ingest.validate import QUARANTINE_SCHEMA, validate

log = logging.getLogger(__name__)
# A library does not print: the application decides where tracebacks go. Without this,
# Python's last-resort handler would put them on the officer's console.
log.addHandler(logging.NullHandler())

STATUS_LABELS = {
    "loaded": "已入库",
    "empty": "只有表头",
    "missing": "缺失",
    "rejected": "整表拒收",
    "unchanged": "未变化",
    "kept": "沿用已入库",
    "held": "暂扣",
    "withdrawn": "已撤回",
}
DUPLICATES_SCHEMA = pl.Schema(
    {
        "period": pl.String,
        "source": pl.String,
        "file": pl.String,
        "row_number": pl.Int64,
        "source_key": pl.String,
        "id_number": pl.String,
        "household_id": pl.String,
    }
)


@dataclass
class SourceResult:
    source: str
    file: str | None
    # loaded | empty | missing | rejected | unchanged, and after the period's decisions:
    # kept (this period's file missing or rejected, the stored delivery stays in force) |
    # held (read, but a completeness gate holds it; `kept_file` says what stays in force)
    status: str
    # rows_read = rows_accepted + rows_rejected (quarantined) + rows_duplicate (rows
    # identical to an earlier row of the file, the same record sent twice).
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    message: str = ""
    sha256: str | None = None
    encoding: str | None = None
    good: pl.DataFrame | None = field(default=None, repr=False)
    quarantine: pl.DataFrame | None = field(default=None, repr=False)
    rows_duplicate: int = 0
    # Row numbers of the rows counted as copies of an earlier row (not stored).
    identical_rows: pl.Series | None = field(default=None, repr=False)
    # Quarantined copies of a natural key (DUPLICATES_SCHEMA): whose records they were.
    duplicates: pl.DataFrame | None = field(default=None, repr=False)
    # The quarantined rows' cells (validate.rejected_rows), stored in `quarantined_rows`.
    rejected_rows: pl.DataFrame | None = field(default=None, repr=False)
    read_key: str | None = None
    warnings: list[str] = field(default_factory=list)
    gates: list[gating.GateResult] = field(default_factory=list)
    # The stored delivery used instead of this period's file (kept, held).
    kept_file: str | None = None
    kept_at: dt.datetime | None = None
    problem: str | None = None  # why the file was not used: missing | rejected | held

    def log_row(self, period: str, now: dt.datetime) -> dict[str, object]:
        return {
            "period": period,
            "source": self.source,
            "file": self.file,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate": self.rows_duplicate,
            "status": self.status,
            "message": self.message,
            "encoding": self.encoding,
            "ingested_at": now,
            "read_key": self.read_key,
            "warning": "; ".join(self.warnings) or None,
        }

    @property
    def held(self) -> list[gating.GateResult]:
        """The gates that hold this delivery and were not accepted."""
        return [g for g in self.gates if g.held and g.accepted_by is None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_one(
    path: Path, spec: SourceSpec, period: str, limits: params.IngestLimits | None = None
) -> SourceResult:
    """Read, normalise and validate one file. Never raises for bad data: a file that
    cannot be used comes back as status 'rejected' with a one-line message. `limits`
    default to the `ingest_limits` parameters in force for the period."""
    limits = limits or params.ingest_limits(period)
    try:
        sha = file_sha256(path)
    except OSError as exc:
        return _rejected(spec, path, _unreadable(exc), None)
    try:
        raw = read_source(path, spec, limits)
    except FileRejected as exc:
        return _rejected(spec, path, ids.mask_text(str(exc)), sha)
    except OSError as exc:
        return _rejected(spec, path, _unreadable(exc), sha)
    normalised = normalise_frame(raw.frame, spec)
    checked = validate(normalised, spec, period=period, file=path.name, limits=limits)
    quarantine = pl.concat([_damaged_rows(raw, spec, period, path.name), checked.quarantine])
    duplicates = duplicate_copies(normalised, checked.quarantine, spec, period, path.name)
    rows = raw.rows_read
    good = checked.good.with_columns(pl.lit(path.name).alias("file"))
    notes = _notes(raw)
    if checked.rows_duplicate:
        notes.append(_duplicates_note(checked.duplicates))
    if not rows:
        notes.insert(0, "只有表头，没有数据行 header only, no rows")
    return SourceResult(
        source=spec.source,
        file=path.name,
        status="loaded" if rows else "empty",
        rows_read=rows,
        rows_accepted=good.height,
        rows_rejected=checked.rows_rejected + raw.bad_rows,
        rows_duplicate=checked.rows_duplicate,
        identical_rows=checked.duplicates,
        message=ids.mask_text("; ".join(notes)),
        sha256=sha,
        encoding=raw.encoding,
        good=good,
        quarantine=quarantine.sort("row_number", "column", "check"),
        duplicates=duplicates,
        rejected_rows=None
        if checked.rejected_rows is None
        else checked.rejected_rows.with_columns(
            period=pl.lit(period), source=pl.lit(spec.source), file=pl.lit(path.name)
        ),
    )


def duplicate_copies(
    normalised: pl.DataFrame, quarantine: pl.DataFrame, spec: SourceSpec, period: str, file: str
) -> pl.DataFrame:
    """The quarantined copies of a natural key (check `duplicate_key`): whose record each
    was (ID number, and 户编号 for the roster), so that the run report can name the
    households the copies touch. DUPLICATES_SCHEMA."""
    rows = quarantine.filter(pl.col("check") == "duplicate_key").select("row_number").unique()
    household = (
        pl.col("household_id") if "household_id" in spec.columns else pl.lit(None, pl.String)
    )
    key = pl.concat_str([pl.col(k).cast(pl.String) for k in spec.natural_key], separator="|")
    return (
        normalised.join(rows, on="row_number", how="semi")
        .select(
            pl.lit(period).alias("period"),
            pl.lit(spec.source).alias("source"),
            pl.lit(file).alias("file"),
            pl.col("row_number"),
            key.alias("source_key"),
            pl.col("id_number"),
            household.alias("household_id"),
        )
        .cast(DUPLICATES_SCHEMA)
        .sort("row_number")
    )


DUPLICATE_ROWS_NAMED = 5


def _duplicates_note(rows: pl.Series) -> str:
    named = ", ".join(str(r) for r in rows.head(DUPLICATE_ROWS_NAMED))
    more = " …" if rows.len() > DUPLICATE_ROWS_NAMED else ""
    return (
        f"{rows.len()} 行与前面某行完全相同，只计一次（第 {named}{more} 行） "
        f"{rows.len()} row(s) identical to an earlier row counted once (rows {named}{more})"
    )


def _notes(raw: RawFile) -> list[str]:
    notes = list(raw.notes)
    if raw.encoding and raw.encoding != "utf-8":
        notes.append(
            "编码 encoding " + {"gb18030": "GBK/GB18030", "utf-8-sig": "UTF-8 BOM"}[raw.encoding]
        )
    if raw.damaged_bytes:
        notes.append(
            f"{raw.damaged_bytes} 个无法解码的字节，所在行已拒收 "
            f"{raw.damaged_bytes} undecodable byte(s), their rows set aside"
        )
    if raw.bad_rows:
        notes.append(
            f"{raw.bad_rows} 行有损坏的单元格，已拒收 "
            f"{raw.bad_rows} row(s) with a damaged cell set aside"
        )
    if raw.blank_rows:
        notes.append(f"{raw.blank_rows} 个空行已忽略 {raw.blank_rows} blank row(s) ignored")
    if raw.extras:
        notes.append(f"额外列已保留 extra column(s) kept: {', '.join(raw.extras)}")
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
    return (
        "无法读取文件，请确认文件未被占用且有读取权限 "
        f"cannot read the file ({exc.strerror or type(exc).__name__})"
    )


def _rejected(spec: SourceSpec, path: Path, message: str, sha: str | None) -> SourceResult:
    return SourceResult(spec.source, path.name, "rejected", message=message, sha256=sha)


def sha_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def read_guarded(
    path: Path, spec: SourceSpec, period: str, limits: params.IngestLimits | None = None
) -> SourceResult:
    """`read_one`, except that a failure it does not expect (a bug, a library error)
    rejects this source only: one line for the officer, the traceback for the log."""
    try:
        return read_one(path, spec, period, limits)
    except BaseException as exc:
        # Rust extensions raise PanicException, a BaseException; Ctrl-C must still stop us.
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        log.error(
            "internal error reading %s for %s %s:\n%s",
            path.name,
            spec.source,
            period,
            ids.mask_text("".join(traceback.format_exception(exc))),
        )
        first = str(exc).strip().splitlines()
        detail = first[0][:200] if first else ""
        message = ids.mask_text(
            "程序内部错误，该来源未读入，请将日志发给维护人员 "
            f"internal error: {type(exc).__name__}: {detail}"
        )
        return _rejected(spec, path, message, sha_or_none(path))


def read_key(
    sha256: str, spec: SourceSpec, program: str, limits: params.IngestLimits | None = None
) -> str:
    """What reading a file depends on: its bytes, its source's contract as loaded (the
    aliases in force included), the ingest limits in force and the program's version. A
    file is read again when any of them changed."""
    contract = json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)
    bounds = json.dumps(dataclasses.asdict(limits), sort_keys=True, default=str) if limits else ""
    return hashlib.sha256(f"{sha256}\n{contract}\n{bounds}\n{program}".encode()).hexdigest()
