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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from screening import contract, ids
from screening.db import lock
from screening.db import runs as db_runs
from screening.db import schema as db_schema
from screening.db.connect import connect, insert_frame, transaction
from screening.ingest import normalise
from screening.ingest.cells import FileRejected
from screening.ingest.deliveries import os_user
from screening.ingest.read import RawFile, read_source
from screening.ingest.results import file_sha256
from screening.periods import check_period, periods_named
from screening.publish.columns import LIST_KEY, list_key
from screening.publish.files import township_folders
from screening.publish.workbook import SHEET_ABOUT
from screening.vocab import DECISIONS, PENDING

RESULTS = DECISIONS
# A verification is dated in the listed month or within the two months after it: the
# county's deadline for 入户核实, 评议, 公示 and 审核 (about 20 working days) with room.
WINDOW_MONTHS = 3
CURRENT_VIEW = "current_verifications"
FEEDBACK_SPEC = contract.feedback()

REJECTS_SCHEMA = pl.Schema(
    {
        "row_number": pl.Int64,
        "household_id": pl.String,
        "column": pl.String,
        "check": pl.String,
        "raw_value": pl.String,
        "message": pl.String,
    }
)
DECISIONS_SCHEMA = pl.Schema(
    {
        "row_number": pl.Int64,
        "household_id": pl.String,
        "township": pl.String,
        "result": pl.String,
        "verification_date": pl.Date,
        "note": pl.String,
    }
)
# What makes two decisions the same decision.
DECISION_CONTENT = ["household_id", "result", "verification_date", "note"]
# What makes two rejects the same reject, whenever they were recorded.
REJECT_CONTENT = ["township", "file", "row_number", "household_id", "column", "check"]
REJECT_CONTENT += ["raw_value", "message"]

_READ_CHECKS = {
    "too_long": "单元格超过 32767 个字符 cell too long",
    "invalid_encoding": "单元格含无法识别的字符（编码损坏）cell has undecodable bytes",
    "invalid_character": "单元格含空字符 NUL cell holds a NUL character",
}


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
    rejects: pl.DataFrame = field(repr=False)  # REJECTS_SCHEMA, one row per failed check

    @property
    def rejected(self) -> int:
        return self.rejects["row_number"].n_unique()


# ---------------------------------------------------------------- read and parse


def read_feedback(path: Path) -> RawFile:
    """The feedback file as text with FEEDBACK_SPEC's keys; one-line errors name the file."""
    if not path.is_file():
        raise FeedbackError(f"文件不存在 file not found: {path}")
    try:
        return read_source(path, FEEDBACK_SPEC)
    except FileRejected as exc:
        raise FileRejected(f"无法读取 cannot read {path.name}: {ids.mask_text(str(exc))}") from None
    except OSError as exc:
        raise FeedbackError(f"无法读取 cannot read {path}: {exc.strerror or exc}") from None


def parse_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed values beside the trimmed raw text that messages quote; `empty` marks rows
    whose three verification cells are all empty."""

    def raw(key: str) -> pl.Expr:
        return pl.col(key) if key in frame.columns else pl.lit(None, dtype=pl.String)

    cells = [raw(k) for k in ("verification_result", "verification_date", "note")]
    return frame.select(
        pl.col("row_number").cast(pl.Int64),
        normalise.text(raw("household_id")).alias("household_id"),
        normalise.text(raw("verification_result")).alias("result_raw"),
        normalise.enum(raw("verification_result"), RESULTS).alias("result"),
        normalise.text(raw("verification_date")).alias("date_raw"),
        normalise.date(raw("verification_date")).alias("verification_date"),
        normalise.text(raw("note")).alias("note"),
        normalise.text(raw("township")).alias("township"),
        normalise.text(raw("period")).str.normalize("NFKC").alias("period"),
        normalise.text(raw(LIST_KEY)).str.normalize("NFKC").str.to_uppercase().alias(LIST_KEY),
        pl.all_horizontal([normalise.is_empty(c) for c in cells]).alias("empty"),
    )


def household_key(expr: pl.Expr) -> pl.Expr:
    """户编号 as a township may have retyped it: full-width digits, Excel's leading
    apostrophe or a number cell's '.0' are the same household."""
    folded = expr.str.normalize("NFKC").str.strip_chars(ids.BLANKS).str.strip_prefix("'")
    return folded.str.replace(r"^([0-9]+)\.0+$", "${1}")


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


def published_on(
    con: duckdb.DuckDBPyConnection, period: str, township: str, run_id: str | None
) -> dt.date | None:
    """The day the list was published: the end of the successful run named on its 说明
    sheet, else of the period's first successful run that covered the township."""
    if run_id:
        named = con.execute(
            "SELECT finished_at FROM runs WHERE run_id = ? AND period = ? AND status = 'success'",
            [run_id, period],
        ).fetchall()
        if named and named[0][0] is not None:
            return named[0][0].date()
    first = con.execute(
        "SELECT min(finished_at) FROM runs WHERE period = ? AND status = 'success' "
        "AND (township IS NULL OR township = ?)",
        [period, township],
    ).fetchall()
    return first[0][0].date() if first and first[0][0] is not None else None


# ---------------------------------------------------------------- per-row checks


def date_window(period: str) -> tuple[dt.date, dt.date]:
    """First day of the period and last day of the second month after it."""
    year, month = (int(x) for x in period.split("-"))
    first = dt.date(year, month, 1)
    after = month - 1 + WINDOW_MONTHS
    end = dt.date(year + after // 12, after % 12 + 1, 1) - dt.timedelta(days=1)
    return first, end


def check_rows(
    rows: pl.DataFrame,
    listed: pl.DataFrame,
    period: str,
    township: str,
    published: dt.date | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted decisions: DECISIONS_SCHEMA, rejects: REJECTS_SCHEMA) of the decision rows
    of `rows` (parse_rows), against the period's `listed` households (household_id,
    township) and the day the list was `published`. Every failed check of a row is
    reported, not only the first."""
    decisions = _with_duplicates(_match(rows.filter(~pl.col("empty")), listed))
    first, last = date_window(period)
    # Only a list published inside its window can be held to its publication date.
    after = published if published is not None and published <= last else None
    hid, result, date = pl.col("household_id"), pl.col("result_raw"), pl.col("date_raw")
    key = pl.col(LIST_KEY)
    listed_id, listed_township = pl.col("listed_id"), pl.col("listed_township")
    checks: list[tuple[pl.Expr, str, str, pl.Expr, pl.Expr]] = [
        (
            hid.is_null() & key.is_null(),
            "household_id",
            "missing_household",
            hid,
            _msg("户编号为空 household id is empty"),
        ),
        (
            hid.is_not_null() & listed_id.is_null() & pl.col("key_problem").is_null(),
            "household_id",
            "unknown_household",
            hid,
            _msg(f"不在 {period} 期名单中 household is not on the list of {period}"),
        ),
        (
            pl.col("key_problem") == "unknown",
            LIST_KEY,
            "unknown_list_key",
            key,
            pl.format(
                "核对码「{}」不在 {} 期名单中 check code is not on the list of {}",
                key,
                pl.lit(period),
                pl.lit(period),
            ),
        ),
        (
            pl.col("key_problem") == "conflict",
            LIST_KEY,
            "list_key_mismatch",
            key,
            _msg(
                "户编号与核对码不是同一户（是否单独排序或改动了某一列？）"
                "household id and check code name different households"
            ),
        ),
        (
            listed_id.is_not_null() & (listed_township != township),
            "household_id",
            "other_township",
            hid,
            pl.format(
                "该户在「{}」的名单中，不属于「{}」 household is on the list of {}, not {}",
                listed_township,
                pl.lit(township),
                listed_township,
                pl.lit(township),
            ),
        ),
        (
            pl.col("duplicate_rows").is_not_null(),
            "household_id",
            "duplicate_household",
            hid,
            pl.format(
                "同一户在本文件第 {} 行重复出现 household appears on rows {}",
                pl.col("duplicate_rows"),
                pl.col("duplicate_rows"),
            ),
        ),
        (
            result.is_null(),
            "verification_result",
            "missing_result",
            result,
            _msg("核实结果为空 verification result is empty"),
        ),
        (
            result.is_not_null() & pl.col("result").is_null(),
            "verification_result",
            "invalid_result",
            result,
            pl.format(
                "核实结果「{}」应为 {} unknown verification result",
                result,
                pl.lit(" / ".join(RESULTS)),
            ),
        ),
        (
            # 待核实 is "not decided yet": a township often leaves its date blank.
            date.is_null() & (pl.col("result") != PENDING).fill_null(True),
            "verification_date",
            "missing_date",
            date,
            _msg("核实日期为空 verification date is empty (needed for 确认纳入 and 不予纳入)"),
        ),
        (
            date.is_not_null() & pl.col("verification_date").is_null(),
            "verification_date",
            "invalid_date",
            date,
            pl.format("核实日期「{}」无法识别 date not readable", date),
        ),
        (
            ~pl.col("verification_date").is_between(first, last),
            "verification_date",
            "date_out_of_range",
            date,
            pl.format(
                "核实日期 {} 不在 {} 至 {} 之间 date outside the period's month and the next two",
                pl.col("verification_date"),
                pl.lit(str(first)),
                pl.lit(str(last)),
            ),
        ),
        (
            (pl.col("verification_date") < after).fill_null(False)
            if after is not None
            else pl.lit(False),
            "verification_date",
            "before_publication",
            date,
            pl.format(
                "核实日期 {} 早于名单发布日期 {} date before the list was published",
                pl.col("verification_date"),
                pl.lit(str(after)),
            ),
        ),
    ]
    rejects = pl.concat(
        [
            decisions.filter(failed).select(
                pl.col("row_number"),
                hid,
                pl.lit(column).alias("column"),
                pl.lit(check).alias("check"),
                raw.alias("raw_value"),
                message.alias("message"),
            )
            for failed, column, check, raw, message in checks
        ]
    ).cast(REJECTS_SCHEMA)
    accepted = decisions.join(rejects, on="row_number", how="anti").select(
        pl.col("row_number"),
        listed_id.alias("household_id"),
        listed_township.alias("township"),
        pl.col("result"),
        pl.col("verification_date"),
        pl.col("note"),
    )
    # Stable: a row's reasons stay in the order of `checks`, the order of the columns.
    return accepted.sort("row_number"), rejects.sort("row_number", maintain_order=True)


def _msg(text: str) -> pl.Expr:
    return pl.lit(text, dtype=pl.String)


def _match(rows: pl.DataFrame, listed: pl.DataFrame) -> pl.DataFrame:
    """`listed_id` and `listed_township` of each row's household: the 户编号 as written,
    else as folded by `household_key` when that names exactly one listed household, else
    the row's 核对码 (a list published with --mask-ids shows the 户编号 masked).
    `key_problem`: 'unknown' for a 核对码 on no listed household, 'conflict' when the
    户编号 and the 核对码 name different households; `listed_id` is then null."""
    if LIST_KEY not in listed.columns:
        listed = listed.with_columns(pl.lit(None, pl.String).alias(LIST_KEY))
    if LIST_KEY not in rows.columns:
        rows = rows.with_columns(pl.lit(None, pl.String).alias(LIST_KEY))
    exact = listed.select(
        pl.col("household_id").alias("_exact"),
        pl.col("household_id").alias("_id1"),
        pl.col("township").alias("_t1"),
    )
    folded = listed.select(
        household_key(pl.col("household_id")).alias("_key"),
        pl.col("household_id").alias("_id2"),
        pl.col("township").alias("_t2"),
    ).unique("_key", keep="none")
    keyed = listed.select(
        pl.col(LIST_KEY).alias("_code"),
        pl.col("household_id").alias("_id3"),
        pl.col("township").alias("_t3"),
        ids.mask_text_expr(pl.col("household_id")).alias("_masked3"),
    ).unique("_code", keep="none")
    by_id = pl.coalesce("_id1", "_id2")
    hid, code = pl.col("household_id"), pl.col(LIST_KEY)
    # A 户编号 that names no listed household and is not the masked one the key's list shows.
    stray_id = by_id.is_null() & hid.is_not_null() & (hid != pl.col("_masked3")).fill_null(True)
    problem = (
        pl.when(code.is_null())
        .then(None)
        .when(pl.col("_id3").is_null())
        .then(pl.lit("unknown"))
        .when(by_id.is_not_null() & (by_id != pl.col("_id3")))
        .then(pl.lit("conflict"))
        .when(stray_id & hid.str.contains("*", literal=True))
        .then(pl.lit("conflict"))
        .otherwise(None)
    )
    found = pl.col("_id1").is_not_null()
    township = pl.when(found).then(pl.col("_t1")).otherwise(pl.coalesce("_t2", "_t3"))
    usable = pl.col("key_problem").is_null() & ~(stray_id & code.is_not_null())
    return (
        rows.with_columns(household_key(pl.col("household_id")).alias("_key"))
        .join(exact, left_on="household_id", right_on="_exact", how="left")
        .join(folded, on="_key", how="left")
        .join(keyed, left_on=LIST_KEY, right_on="_code", how="left")
        .with_columns(problem.cast(pl.String).alias("key_problem"))
        .with_columns(
            pl.when(usable).then(pl.coalesce(by_id, "_id3")).alias("listed_id"),
            pl.when(usable).then(township).alias("listed_township"),
        )
        .drop("_id1", "_t1", "_id2", "_t2", "_id3", "_t3", "_masked3")
    )


def _with_duplicates(rows: pl.DataFrame) -> pl.DataFrame:
    """`duplicate_rows`: '5, 9' when the row's household has decisions on several rows of
    the file (every copy is rejected: we cannot tell which one the township meant)."""
    key = pl.coalesce(pl.col("listed_id"), pl.col("_key")).alias("_dup")
    keyed = rows.with_columns(key)
    repeated = (
        keyed.drop_nulls("_dup")
        .group_by("_dup")
        .agg(pl.col("row_number").sort().cast(pl.String).str.join(", ").alias("duplicate_rows"))
        .filter(pl.col("duplicate_rows").str.contains(",", literal=True))
    )
    return keyed.join(repeated, on="_dup", how="left").drop("_dup", "_key")


def damaged_rejects(raw: RawFile) -> pl.DataFrame:
    """Rows the reader set aside for a damaged cell, as rejects (their 户编号 unread)."""
    bad = raw.bad_cells
    message = pl.col("check").replace_strict(_READ_CHECKS, default=pl.col("check"))
    return bad.select(
        pl.col("row_number").cast(pl.Int64),
        pl.lit(None, dtype=pl.String).alias("household_id"),
        pl.col("column"),
        pl.col("check"),
        pl.col("raw_value"),
        pl.format("第 {} 列：{}", pl.col("column"), message).alias("message"),
    )


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


def was_screened(con: duckdb.DuckDBPyConnection, period: str) -> bool:
    """A run of the period finished: only then is there a list to verify."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not {"runs", "suspects"} <= tables:
        return False
    found = con.sql(
        "SELECT count(*) FROM runs WHERE period = $period AND status = 'success'",
        params={"period": period},
    ).fetchall()
    return bool(found[0][0])


def listed_households(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    return con.sql(
        "SELECT household_id, township FROM suspects WHERE period = $period",
        params={"period": period},
    ).pl()


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
    done = con.sql(
        "SELECT row_number FROM verifications WHERE period = $period AND file_sha256 = $sha",
        params={"period": period, "sha": sha256},
    ).pl()
    current = con.sql(
        f"SELECT {', '.join(DECISION_CONTENT)} FROM verifications "
        "WHERE period = $period AND is_current",
        params={"period": period},
    ).pl()
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
    period, sha = stamp["period"], stamp["file_sha256"]
    stamped = [pl.lit(v).alias(k) for k, v in stamp.items()]
    rows = decisions.with_columns(*stamped, pl.lit(True).alias("is_current"))
    new_rejects = rejects.with_columns(*stamped, pl.lit(township).alias("township"))
    old_rejects = con.sql(
        "SELECT * FROM verification_rejects WHERE period = $period AND file_sha256 = $sha",
        params={"period": period, "sha": sha},
    ).pl()
    # Rejects seen before keep their first import time, so a repeated import changes nothing.
    kept = old_rejects.join(new_rejects, on=REJECT_CONTENT, how="semi", nulls_equal=True)
    added = new_rejects.join(old_rejects, on=REJECT_CONTENT, how="anti", nulls_equal=True)
    with transaction(con):
        if rows.height:
            con.register("__decided", rows.select("period", "household_id").to_arrow())
            try:
                con.execute(
                    "UPDATE verifications v SET is_current = false FROM __decided d "
                    "WHERE v.period = d.period AND v.household_id = d.household_id "
                    "AND v.is_current"
                )
            finally:
                con.unregister("__decided")
        insert_frame(con, "verifications", rows)
        con.execute(
            "DELETE FROM verification_rejects WHERE period = ? AND file_sha256 = ?", [period, sha]
        )
        insert_frame(con, "verification_rejects", pl.concat([kept, added], how="diagonal"))


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
            if not was_screened(con, period):
                raise FeedbackError(
                    f"期次 {period} 尚未筛查 period {period} was never screened "
                    f"(run `screening run --period {period}` first)"
                )
            ensure_feedback_schema(con)
            listed = with_list_keys(listed_households(con, period), period, con)
            found = file_township(
                rows, path, sorted(set(listed["township"].drop_nulls())), township
            )
            published = published_on(con, period, found.name, about.get("批次号"))
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
