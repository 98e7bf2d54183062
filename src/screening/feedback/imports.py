"""Import a township's answers on a period's list: 核实结果 on its 疑似监测对象 list, 消除意见
on its 风险消除候选 list.

A township sends back its published list — the xlsx (its first sheet) or the csv — with
three columns filled in: on the 疑似监测对象 list 核实结果 (确认纳入 / 不予纳入 / 待核实),
核实日期 and 备注; on the 风险消除候选 list 消除意见 (同意消除 / 暂不消除), 意见日期 and 备注.
Which list a file is comes from its 说明 sheet's title, its name or its answer column
(feedback/kinds.py). Rows are matched by 户编号 (or 核对码) to the period's households on
that list (`suspects`, `removal_candidates`). Each answer row is either stored (in
`verifications`, `removal_decisions`) or rejected with a per-row reason in
`verification_rejects`; rows with all three cells empty are not answers and are only
counted, and rows with no household and no answer (a printed list's village headings,
subtotals and signature lines) are not rows of the list at all.

The file must be the period's list: the period its name names (…_202607.xlsx), its 期次
column and its 说明 sheet must all agree with `--period`, else it is refused in one line.
An answer dated before the list was published (the finished run named by the file's
批次号, else the period's first successful run) is rejected row by row; a list published
after its verification window had closed (a month screened late, as in the demo) is
checked against the window only, since no date could then satisfy both. A csv that a
spreadsheet program saved with its long numbers rounded (户编号 4306241010030001 →
4306241010030000 or 4.30624E+15) is matched by its 核对码 where the rounded number agrees;
otherwise it is refused in one line asking for the xlsx.

Importing is idempotent. A row already imported from the same file (same sha256 and row)
is not stored again, and neither is an answer identical to the household's current one
(same answer, date and note), so a township re-sending its whole list with one answer
changed adds one row. A new answer becomes the current one (`is_current`, and the views
`current_verifications`, `current_removal_decisions`); the earlier ones stay as history.
The rejects of a file are those of its latest import.

The rows are parsed, matched and checked in `feedback.rows`; this module reads the file,
tells its list, township and period, and stores the outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from screening import contract, ids
from screening.contract import SourceSpec
from screening.db import answers as db_answers
from screening.db import lock
from screening.db import runs as db_runs
from screening.db import schema as db_schema
from screening.db.connect import connect
from screening.feedback.kinds import SUSPECTS, ListKind, kind_of
from screening.feedback.rows import (
    Answers,
    check_rows,
    damaged_rejects,
    parse_rows,
    repair_rounded,
    rounded_example,
)
from screening.ingest.cells import FileRejected
from screening.ingest.deliveries import os_user
from screening.ingest.read import RawFile, read_source
from screening.ingest.results import file_sha256
from screening.periods import check_period, periods_named
from screening.publish.columns import LIST_KEY, SHEET_ABOUT, list_key
from screening.publish.files import township_folders

CURRENT_VIEW = "current_verifications"
FEEDBACK_SPEC = contract.feedback()

# What makes two decisions the same decision (the checked rows' names).
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
    kind: ListKind = SUSPECTS  # the list the file is

    @property
    def rejected(self) -> int:
        return self.rejects["row_number"].n_unique()


# ---------------------------------------------------------------- the file


def read_feedback(path: Path, spec: SourceSpec = FEEDBACK_SPEC) -> RawFile:
    """The feedback file as text with the list's keys (`spec`: FEEDBACK_SPEC, the
    疑似监测对象 list's); one-line errors name the file."""
    if not path.is_file():
        raise FeedbackError(f"文件不存在 file not found: {path}")
    try:
        return read_source(path, spec)
    except FileRejected as exc:
        raise FileRejected(f"无法读取 cannot read {path.name}: {ids.mask_text(str(exc))}") from None
    except OSError as exc:
        raise FeedbackError(f"无法读取 cannot read {path}: {exc.strerror or exc}") from None


def list_kind(path: Path, title: str | None) -> ListKind:
    """The list the file is (feedback/kinds.py): by its 说明 sheet's title, its name, or
    the answer column it carries."""

    def readable(kind: ListKind) -> bool:
        try:
            read_source(path, kind.spec)
        except (FileRejected, OSError):
            return False
        return True

    return kind_of(path, title, readable)


# ---------------------------------------------------------------- the file's township


def file_township(
    rows: pl.DataFrame,
    path: Path,
    townships: list[str],
    given: str | None,
    about: dict[str, str] | None = None,
) -> FileTownship:
    """--township, else the 乡镇 most rows carry (csv), else the 乡镇 of its 说明 sheet
    (`about`), else a township named in the file name; it must have households on the
    period's list."""
    found = (
        _given(given)
        or _from_column(rows)
        or _from_about(about or {})
        or _from_file_name(path, townships)
    )
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


def _from_about(about: dict[str, str]) -> FileTownship | None:
    name = about.get("乡镇", "").strip(ids.BLANKS)
    return FileTownship(name, "说明页 说明 sheet") if name else None


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
    return read_about(path)[1]


def read_about(path: Path) -> tuple[str | None, dict[str, str]]:
    """A published list's 说明 sheet: its title (which list it is) and label → text (期次,
    乡镇, 批次号 …); (None, {}) for a csv or a workbook without one."""
    if path.suffix.lower() != ".xlsx":
        return None, {}
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        if SHEET_ABOUT not in reader.sheet_names:
            return None, {}
        sheet = reader.load_sheet_by_name(SHEET_ABOUT, header_row=None, dtypes="string").to_polars()
    except BaseException as exc:  # fastexcel's own errors, or a panic; the reader says more
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        return None, {}
    if sheet.width < 1 or not sheet.height:
        return None, {}
    title = sheet[0, 0]
    if sheet.width < 2:
        return title, {}
    found: dict[str, str] = {}
    for label, text in sheet.select(sheet.columns[:2]).iter_rows():
        if label and text and str(label).strip() not in found:
            found[str(label).strip()] = str(text).strip()
    return title, found


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
    con: duckdb.DuckDBPyConnection,
    accepted: pl.DataFrame,
    period: str,
    sha256: str,
    kind: ListKind = SUSPECTS,
) -> pl.DataFrame:
    """The accepted decisions not stored yet: not a row of this file already imported, and
    not the same as the household's current decision on the `kind` list."""
    done = db_answers.imported_rows(con, period, sha256, kind.table)
    stored = kind.stored(DECISION_CONTENT)
    current = db_answers.current_decisions(con, period, stored, kind.table).rename(
        dict(zip(stored, DECISION_CONTENT, strict=True))
    )
    fresh = accepted.join(done, on="row_number", how="anti")
    return fresh.join(current, on=DECISION_CONTENT, how="anti", nulls_equal=True)


def store_import(
    con: duckdb.DuckDBPyConnection,
    decisions: pl.DataFrame,
    rejects: pl.DataFrame,
    township: str,
    stamp: dict[str, object],
    kind: ListKind = SUSPECTS,
) -> None:
    """Store new decisions as current and make the file's rejects those of this import,
    in one transaction. `stamp`: period, file, file_sha256, imported_at, imported_by."""
    period, sha = str(stamp["period"]), str(stamp["file_sha256"])
    stamped = [pl.lit(v).alias(k) for k, v in stamp.items()]
    rows = decisions.with_columns(*stamped, pl.lit(True).alias("is_current"))
    rows = rows.rename(dict(kind.renames), strict=False)
    new_rejects = rejects.with_columns(
        *stamped, pl.lit(township).alias("township"), pl.lit(kind.name).alias("list_kind")
    )
    old_rejects = db_answers.file_rejects(con, period, sha)
    # Rejects seen before keep their first import time, so a repeated import changes nothing.
    kept = old_rejects.join(new_rejects, on=REJECT_CONTENT, how="semi", nulls_equal=True)
    added = new_rejects.join(old_rejects, on=REJECT_CONTENT, how="anti", nulls_equal=True)
    db_answers.store_answers(
        con, period, sha, rows, pl.concat([kept, added], how="diagonal"), kind.table
    )


# ---------------------------------------------------------------- entry point


def import_feedback(
    db: Path, path: Path, period: str, township: str | None = None, *, wait: float = 0.0
) -> ImportResult:
    """Import one township's answers on its `period` list (疑似监测对象 or 风险消除候选)
    into the database `db` (waiting up to `wait` seconds for it while another process has
    it open)."""
    check_period(period)
    if not path.is_file():
        raise FeedbackError(f"文件不存在 file not found: {path}")
    title, about = read_about(path)
    kind = list_kind(path, title)
    raw = read_feedback(path, kind.spec)
    rows = parse_rows(raw.frame, kind.results)
    check_file_period(rows, period, path, about)
    if rows.height and rows["empty"].all():
        # The list as published, sent back before anyone filled it in.
        result, date, note = (kind.spec.columns[k].aliases[0] for k in _ANSWER_KEYS)
        raise FeedbackError(
            f"{path.name}: {result}、{date}、{note}三列都未填写 no answer filled in"
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
            listed = with_list_keys(kind.listed(con, period), period, con)
            rows = repair_rounded(rows, listed)
            _refuse_rounded(path, rows, listed)
            found = file_township(
                rows, path, sorted(set(listed["township"].drop_nulls())), township, about
            )
            published = db_answers.published_on(con, period, found.name, about.get("批次号"))
            accepted, rejects = check_rows(
                rows, listed, period, found.name, published, _answers(kind)
            )
            rejects = pl.concat([damaged_rejects(raw), rejects]).sort(
                "row_number", maintain_order=True
            )
            decisions = new_decisions(con, accepted, period, sha, kind)
            stamp: dict[str, object] = {
                "period": period,
                "file": path.name,
                "file_sha256": sha,
                "imported_at": dt.datetime.now(),
                "imported_by": os_user(),
            }
            store_import(con, decisions, rejects, found.name, stamp, kind)
        finally:
            con.close()
    return ImportResult(
        period=period,
        file=path.name,
        sha256=sha,
        township=found,
        rows_read=rows.height + raw.bad_rows,
        empty_rows=int(rows["empty"].sum()),
        accepted=decisions.height,
        unchanged=accepted.height - decisions.height,
        rejects=rejects,
        kind=kind,
    )


_ANSWER_KEYS = ("verification_result", "verification_date", "note")


def _answers(kind: ListKind) -> Answers:
    result, date, _ = (kind.spec.columns[k].aliases[0] for k in _ANSWER_KEYS)
    if kind is SUSPECTS:
        return Answers(kind.results, kind.undated, (result, date))
    return Answers(kind.results, kind.undated, (result, date), "answer", "date")


def _refuse_rounded(path: Path, rows: pl.DataFrame, listed: pl.DataFrame) -> None:
    """A csv whose long numbers a spreadsheet rounded, beyond what the 核对码 mends."""
    example = rounded_example(rows, listed)
    if example is not None:
        raise FeedbackError(
            f"{path.name} 的户编号被电子表格软件改写了（如 {ids.mask_text(example)}），"
            "无法对应农户：请让乡镇发回原样的 xlsx 文件 send back the xlsx: the CSV was saved by a "
            "spreadsheet that rounds long numbers"
        )
