"""Import the townships' verification results (核实结果) for a period's list.

A township sends back its published list — the xlsx (first sheet, 疑似监测户) or the csv —
with three columns filled in: 核实结果 (确认纳入 / 不予纳入 / 待核实), 核实日期 and 备注.
Rows are matched by 户编号 to the period's `suspects`. Each decision row is either stored
in `verifications` or rejected with a per-row reason in `verification_rejects`; rows with
all three cells empty are not decisions and are only counted.

The file must be the period's list: the period its name names (…_202607.xlsx), its 期次
column and its 说明 sheet must all agree with `--period`, else it is refused in one line.
A decision dated before the list was published (the finished run named by the file's
批次号, else the period's first successful run) is rejected row by row; a list published
after its verification window had closed (a month screened late, as in the demo) is
checked against the window only, since no date could then satisfy both.

Importing is idempotent. A row already imported from the same file (same sha256 and row)
is not stored again, and neither is a decision identical to the household's current one
(same result, date and note), so a township re-sending its whole list with one decision
changed adds one row. A new decision becomes the current one (`is_current`, and the view
`current_verifications`); the earlier ones stay as history. The rejects of a file are
those of its latest import.

The rows are parsed, matched and checked in `feedback.rows`; this module reads the file,
tells its township and period, and stores the outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from screening import contract, ids
from screening.db import answers as db_answers
from screening.db import lock
from screening.db import runs as db_runs
from screening.db import schema as db_schema
from screening.db.connect import connect
from screening.feedback.rows import check_rows, damaged_rejects, parse_rows
from screening.ingest.cells import FileRejected
from screening.ingest.deliveries import os_user
from screening.ingest.read import RawFile, read_source
from screening.ingest.results import file_sha256
from screening.periods import check_period, periods_named
from screening.publish.columns import LIST_KEY, list_key
from screening.publish.files import township_folders
from screening.publish.workbook import SHEET_ABOUT

CURRENT_VIEW = "current_verifications"
FEEDBACK_SPEC = contract.feedback()

# What makes two decisions the same decision.
DECISION_CONTENT = ["household_id", "result", "verification_date", "note"]
# What makes two rejects the same reject, whenever they were recorded.
REJECT_CONTENT = ["township", "file", "row_number", "household_id", "column", "check"]
REJECT_CONTENT += ["raw_value", "message"]


class FeedbackError(Exception):
    """The import cannot go ahead; str(exc) is the one-line reason."""


@dataclass(frozen=True)
class FileTownship:
    name: str
    origin: str  # --township | 乡镇 column | file name


@dataclass
class ImportResult:
    period: str
    file: str
    sha256: str
    township: FileTownship
    rows_read: int  # data rows (blank rows not counted)
    empty_rows: int  # rows with no verification cell filled: not decisions
    accepted: int  # new decisions stored
    unchanged: int  # valid decisions already stored (same file row, or same as current)
    rejects: pl.DataFrame = field(repr=False)  # rows.REJECTS_SCHEMA, one row per failed check

    @property
    def rejected(self) -> int:
        return self.rejects["row_number"].n_unique()


# ---------------------------------------------------------------- the file


def read_feedback(path: Path, spec: contract.SourceSpec = FEEDBACK_SPEC) -> RawFile:
    """The feedback file as text with the keys of `spec` (a returned list's columns);
    one-line errors name the file."""
    if not path.is_file():
        raise FeedbackError(f"文件不存在 file not found: {path}")
    try:
        return read_source(path, spec)
    except FileRejected as exc:
        raise FileRejected(f"无法读取 cannot read {path.name}: {ids.mask_text(str(exc))}") from None
    except OSError as exc:
        raise FeedbackError(f"无法读取 cannot read {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- the file's township


def file_township(
    rows: pl.DataFrame, path: Path, townships: list[str], given: str | None
) -> FileTownship:
    """--township, else the 乡镇 most rows carry (csv), else a township named in the file
    name; it must have households on the period's list."""
    found = _given(given) or _from_column(rows) or _from_file_name(path, townships)
    if found is None:
        raise FeedbackError(
            f"无法确定 {path.name} 属于哪个乡镇 cannot tell the file's township; use --township"
        )
    if found.name not in townships:
        raise FeedbackError(
            f"乡镇「{found.name}」（{found.origin}）在本期名单中没有农户 "
            f"township {found.name!r} has no household on the period's list"
        )
    return found


def _given(given: str | None) -> FileTownship | None:
    name = (given or "").strip(ids.BLANKS)
    return FileTownship(name, "--township") if name else None


def _from_column(rows: pl.DataFrame) -> FileTownship | None:
    counts = rows["township"].drop_nulls().value_counts(sort=True, name="n")
    if counts.height == 0:
        return None
    # A tie leaves no majority to follow (a merged file of two townships).
    if counts.height > 1 and counts["n"][0] == counts["n"][1]:
        return None
    return FileTownship(counts["township"][0], "乡镇 column")


def _from_file_name(path: Path, townships: list[str]) -> FileTownship | None:
    # A published name holds the township's folder name, which is the name itself unless it
    # had to be made safe; the longest match wins so that a name inside another does not.
    stem = path.stem
    folders = township_folders(townships)
    named = [t for t in townships if t in stem or folders[t] in stem]
    if not named:
        return None
    longest = max(len(t) for t in named)
    best = [t for t in named if len(t) == longest]
    return FileTownship(best[0], "file name") if len(best) == 1 else None


def check_file_period(
    rows: pl.DataFrame, period: str, path: Path, about: dict[str, str] | None = None
) -> None:
    """The file must be the list of `period`: the period in its name, its 期次 column (a
    csv list names it on every row) and its 说明 sheet's 期次 (`about`) must agree."""
    named = periods_named(path.name)
    if named and period not in named:
        _wrong_period(path, named[0], period, "文件名 file name")
    others = sorted(set(rows["period"].drop_nulls().to_list()) - {period})
    if others:
        _wrong_period(path, others[0], period, "期次列 期次 column")
    stated = periods_named((about or {}).get("期次", ""))
    if stated and period not in stated:
        _wrong_period(path, stated[0], period, "说明页 说明 sheet")


def _wrong_period(path: Path, found: str, period: str, where: str) -> None:
    raise FeedbackError(
        f"{path.name} 是 {found} 期的名单（{where}），不是 {period} "
        f"the file is the list of {found}, not {period}; import it with --period {found}"
    )


def about_sheet(path: Path) -> dict[str, str]:
    """Label → text of a published list's 说明 sheet (期次, 批次号 …); empty for a csv or a
    workbook without one."""
    if path.suffix.lower() != ".xlsx":
        return {}
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        if SHEET_ABOUT not in reader.sheet_names:
            return {}
        sheet = reader.load_sheet_by_name(SHEET_ABOUT, header_row=None, dtypes="string").to_polars()
    except BaseException as exc:  # fastexcel's own errors, or a panic; the reader says more
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        return {}
    if sheet.width < 2:
        return {}
    found: dict[str, str] = {}
    for label, text in sheet.select(sheet.columns[:2]).iter_rows():
        if label and text and str(label).strip() not in found:
            found[str(label).strip()] = str(text).strip()
    return found


def reject_messages(rejects: pl.DataFrame) -> pl.DataFrame:
    """One line per rejected row: row_number, household_id, every reason joined by '；'."""
    return (
        rejects.group_by("row_number", maintain_order=True)
        .agg(pl.col("household_id").first(), pl.col("message").str.join("；"))
        .sort("row_number")
    )


# ---------------------------------------------------------------- database


def ensure_feedback_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The verification tables (schemas/tables/), the current-decision view and the
    data dictionary's comments on them."""
    db_schema.ensure_schema(con, contract.load())


def with_list_keys(
    listed: pl.DataFrame, period: str, con: duckdb.DuckDBPyConnection
) -> pl.DataFrame:
    """The listed households with the 核对码 their lists carry (publish.columns.list_key)."""
    secret = db_runs.list_key_secret(con)
    keys = [list_key(secret, period, h) for h in listed["household_id"]]
    return listed.with_columns(pl.Series(LIST_KEY, keys, pl.String))


def new_decisions(
    con: duckdb.DuckDBPyConnection, accepted: pl.DataFrame, period: str, sha256: str
) -> pl.DataFrame:
    """The accepted decisions not stored yet: not a row of this file already imported, and
    not the same as the household's current decision."""
    done = db_answers.imported_rows(con, period, sha256)
    current = db_answers.current_decisions(con, period, DECISION_CONTENT)
    fresh = accepted.join(done, on="row_number", how="anti")
    return fresh.join(current, on=DECISION_CONTENT, how="anti", nulls_equal=True)


def store_import(
    con: duckdb.DuckDBPyConnection,
    decisions: pl.DataFrame,
    rejects: pl.DataFrame,
    township: str,
    stamp: dict[str, object],
) -> None:
    """Store new decisions as current and make the file's rejects those of this import,
    in one transaction. `stamp`: period, file, file_sha256, imported_at, imported_by."""
    period, sha = str(stamp["period"]), str(stamp["file_sha256"])
    stamped = [pl.lit(v).alias(k) for k, v in stamp.items()]
    rows = decisions.with_columns(*stamped, pl.lit(True).alias("is_current"))
    new_rejects = rejects.with_columns(*stamped, pl.lit(township).alias("township"))
    old_rejects = db_answers.file_rejects(con, period, sha)
    # Rejects seen before keep their first import time, so a repeated import changes nothing.
    kept = old_rejects.join(new_rejects, on=REJECT_CONTENT, how="semi", nulls_equal=True)
    added = new_rejects.join(old_rejects, on=REJECT_CONTENT, how="anti", nulls_equal=True)
    db_answers.store_answers(con, period, sha, rows, pl.concat([kept, added], how="diagonal"))


# ---------------------------------------------------------------- entry point


def import_feedback(
    db: Path, path: Path, period: str, township: str | None = None, *, wait: float = 0.0
) -> ImportResult:
    """Import one township's verification results for `period` into the database `db`
    (waiting up to `wait` seconds for it while another process has it open)."""
    check_period(period)
    raw = read_feedback(path)
    rows = parse_rows(raw.frame)
    about = about_sheet(path)
    check_file_period(rows, period, path, about)
    if rows.height and rows["empty"].all():
        # The list as published, sent back before anyone filled it in.
        raise FeedbackError(
            f"{path.name}: 核实结果、核实日期、备注三列都未填写 no verification result filled in"
        )
    sha = file_sha256(path)
    if not db.is_file():
        raise FeedbackError(f"数据库不存在 database not found: {db} (run `screening run` first)")
    with lock.hold(db):
        con = connect(db, wait=wait)
        try:
            if not db_answers.was_screened(con, period):
                raise FeedbackError(
                    f"期次 {period} 尚未筛查 period {period} was never screened "
                    f"(run `screening run --period {period}` first)"
                )
            ensure_feedback_schema(con)
            listed = with_list_keys(db_runs.listed_households(con, period), period, con)
            found = file_township(
                rows, path, sorted(set(listed["township"].drop_nulls())), township
            )
            published = db_answers.published_on(con, period, found.name, about.get("批次号"))
            accepted, rejects = check_rows(rows, listed, period, found.name, published)
            rejects = pl.concat([damaged_rejects(raw), rejects]).sort(
                "row_number", maintain_order=True
            )
            decisions = new_decisions(con, accepted, period, sha)
            stamp: dict[str, object] = {
                "period": period,
                "file": path.name,
                "file_sha256": sha,
                "imported_at": dt.datetime.now(),
                "imported_by": os_user(),
            }
            store_import(con, decisions, rejects, found.name, stamp)
        finally:
            con.close()
    return ImportResult(
        period=period,
        file=path.name,
        sha256=sha,
        township=found,
        rows_read=raw.rows_read,
        empty_rows=int(rows["empty"].sum()),
        accepted=decisions.height,
        unchanged=accepted.height - decisions.height,
        rejects=rejects,
    )
