"""The rows of a township's answer file: each row parsed (typed values beside the raw text
messages quote), matched to a listed household (by 户编号, as retyped, or by 核对码) and
checked; every failed check of a row is one reject with its reason.

The functions are pure: `imports.import_feedback` reads the file and the database and
passes them frames.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from screening import ids
from screening.ingest import normalise
from screening.ingest.read import RawFile
from screening.publish.columns import LIST_KEY, verification_window
from screening.vocab import DECISIONS, PENDING

RESULTS = DECISIONS

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
_READ_CHECKS = {
    "too_long": "单元格超过 32767 个字符 cell too long",
    "invalid_encoding": "单元格含无法识别的字符（编码损坏）cell has undecodable bytes",
    "invalid_character": "单元格含空字符 NUL cell holds a NUL character",
}


def parse_rows(frame: pl.DataFrame, results: Sequence[str] = RESULTS) -> pl.DataFrame:
    """Typed values beside the trimmed raw text that messages quote; `empty` marks rows
    whose three answer cells are all empty (`results`: the answers the list takes). Rows
    with no 户编号, no 核对码 and no answer are not households (a village's heading, its
    subtotal, the signature lines of a printed list) and are left out."""

    def raw(key: str) -> pl.Expr:
        return pl.col(key) if key in frame.columns else pl.lit(None, dtype=pl.String)

    cells = [raw(k) for k in ("verification_result", "verification_date", "note")]
    return frame.select(
        pl.col("row_number").cast(pl.Int64),
        normalise.text(raw("household_id")).alias("household_id"),
        normalise.text(raw("verification_result")).alias("result_raw"),
        normalise.enum(raw("verification_result"), list(results)).alias("result"),
        normalise.text(raw("verification_date")).alias("date_raw"),
        normalise.date(raw("verification_date")).alias("verification_date"),
        normalise.text(raw("note")).alias("note"),
        normalise.text(raw("township")).alias("township"),
        normalise.text(raw("period"))
        .str.normalize("NFKC")
        .map_elements(period_text, return_dtype=pl.String, skip_nulls=True)
        .alias("period"),
        normalise.text(raw(LIST_KEY)).str.normalize("NFKC").str.to_uppercase().alias(LIST_KEY),
        pl.all_horizontal([normalise.is_empty(c) for c in cells]).alias("empty"),
    ).filter(
        ~(
            pl.col("empty")
            & normalise.is_empty(raw("household_id"))
            & normalise.is_empty(raw(LIST_KEY))
        )
    )


@dataclass(frozen=True)
class Answers:
    """What a list's answer columns take: the 疑似监测对象 list's by default."""

    results: tuple[str, ...] = RESULTS
    undated: tuple[str, ...] = (PENDING,)  # answers that may leave their date blank
    headers: tuple[str, str] = ("核实结果", "核实日期")
    english: str = "verification result"
    english_date: str = "verification date"

    @property
    def missing_date(self) -> str:
        dated = " and ".join(r for r in self.results if r not in self.undated)
        needed = f" (needed for {dated})" if self.undated else ""
        return f"{self.headers[1]}为空 {self.english_date} is empty{needed}"


# ---------------------------------------------------------------- a spreadsheet's rounding

# Excel and WPS keep 15 significant digits of a number and show a long one in scientific
# notation: a 户编号 of 16 digits read from a CSV and saved again comes back rounded
# (4306241010030001 → 4306241010030000) or as 4.30624E+15.
_SCIENTIFIC = re.compile(r"^(\d)(?:\.(\d+))?[eE]\+?(\d+)$")
_SIGNIFICANT = 15


def spreadsheet_form(shown: str, true_id: str) -> bool:
    """Whether `shown` is what a spreadsheet made of the long number `true_id`: rounded to
    15 significant digits, or in scientific notation (not `true_id` itself)."""
    shown = unicodedata.normalize("NFKC", shown).strip()
    if shown == true_id or not true_id.isdigit() or len(true_id) < 12:
        return False
    found = _SCIENTIFIC.match(shown)
    if found:
        lead, rest, exponent = found.group(1), found.group(2) or "", int(found.group(3))
        if exponent != len(true_id) - 1:
            return False
        return _rounded(true_id, 1 + len(rest)) == int(lead + rest) * 10 ** (exponent - len(rest))
    if shown.isdigit() and len(shown) == len(true_id) > _SIGNIFICANT:
        return _rounded(true_id, _SIGNIFICANT) == int(shown)
    return False


_DATE_FORM = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})(?:\s*[-/.月]\s*(\d{1,2})\s*日?)?\s*月?$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_YEAR = re.compile(r"^([A-Za-z]{3})-(\d{2})$")


def period_text(text: str) -> str:
    """A 期次 cell as YYYY-MM, also where a spreadsheet turned 2026-09 into a date
    (2026/9/1, 2026-09-01, 2026年9月, Sep-26); other text is left as it is."""
    found = _DATE_FORM.match(text)
    if found and 1 <= int(found.group(2)) <= 12:
        return f"{found.group(1)}-{int(found.group(2)):02d}"
    found = _MONTH_YEAR.match(text)
    if found and found.group(1).lower() in _MONTHS:
        return f"20{found.group(2)}-{_MONTHS.index(found.group(1).lower()) + 1:02d}"
    return text


def looks_rounded(shown: str) -> bool:
    """A 户编号 only a spreadsheet writes: a number in scientific notation."""
    return bool(_SCIENTIFIC.match(unicodedata.normalize("NFKC", shown).strip()))


def _rounded(digits: str, significant: int) -> int:
    n, drop = int(digits), len(digits) - significant
    if drop <= 0:
        return n
    factor = 10**drop
    return (n + factor // 2) // factor * factor


def repair_rounded(rows: pl.DataFrame, listed: pl.DataFrame) -> pl.DataFrame:
    """Rows whose 户编号 a spreadsheet rounded but whose 核对码 names a listed household
    that the rounded number agrees with get that household's 户编号 back."""
    if LIST_KEY not in listed.columns or rows[LIST_KEY].null_count() == rows.height:
        return rows
    known = set(listed["household_id"].to_list())
    by_code = dict(zip(listed[LIST_KEY].to_list(), listed["household_id"].to_list(), strict=True))
    fixed = [
        by_code[code]
        if hid is not None
        and hid not in known
        and code in by_code
        and spreadsheet_form(hid, by_code[code])
        else hid
        for hid, code in zip(rows["household_id"].to_list(), rows[LIST_KEY].to_list(), strict=True)
    ]
    return rows.with_columns(pl.Series("household_id", fixed, pl.String))


def rounded_example(rows: pl.DataFrame, listed: pl.DataFrame) -> str | None:
    """A 户编号 of the file that a spreadsheet rounded (after `repair_rounded`), if any:
    one in scientific notation, or one of more than 15 digits on no list that a listed
    household's 户编号 rounds to."""
    known = set(listed["household_id"].to_list())
    rounded = {
        str(_rounded(h, _SIGNIFICANT)) for h in known if h.isdigit() and len(h) > _SIGNIFICANT
    }
    for hid in rows.filter(~pl.col("empty"))["household_id"].drop_nulls().to_list():
        if hid in known:
            continue
        folded = unicodedata.normalize("NFKC", hid).strip()
        if looks_rounded(folded) or folded in rounded:
            return hid
    return None


def household_key(expr: pl.Expr) -> pl.Expr:
    """户编号 as a township may have retyped it: full-width digits, Excel's leading
    apostrophe or a number cell's '.0' are the same household."""
    folded = expr.str.normalize("NFKC").str.strip_chars(ids.BLANKS).str.strip_prefix("'")
    return folded.str.replace(r"^([0-9]+)\.0+$", "${1}")


def check_rows(
    rows: pl.DataFrame,
    listed: pl.DataFrame,
    period: str,
    township: str,
    published: dt.date | None = None,
    answers: Answers | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted decisions: DECISIONS_SCHEMA, rejects: REJECTS_SCHEMA) of the decision rows
    of `rows` (parse_rows), against the period's `listed` households (household_id,
    township) and the day the list was `published`; `answers`: what the list's answer
    columns take (the 疑似监测对象 list's by default). Every failed check of a row is
    reported, not only the first."""
    answers = answers or Answers()
    result_header, date_header = answers.headers
    decisions = _with_duplicates(_match(rows.filter(~pl.col("empty")), listed))
    first, last = verification_window(period)
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
            _msg(f"{result_header}为空 {answers.english} is empty"),
        ),
        (
            result.is_not_null() & pl.col("result").is_null(),
            "verification_result",
            "invalid_result",
            result,
            pl.format(
                f"{result_header}「{{}}」应为 {{}} unknown {answers.english}",
                result,
                pl.lit(" / ".join(answers.results)),
            ),
        ),
        (
            # 待核实 is "not decided yet": a township often leaves its date blank.
            date.is_null() & ~pl.col("result").is_in(list(answers.undated)).fill_null(False),
            "verification_date",
            "missing_date",
            date,
            _msg(answers.missing_date),
        ),
        (
            date.is_not_null() & pl.col("verification_date").is_null(),
            "verification_date",
            "invalid_date",
            date,
            pl.format(f"{date_header}「{{}}」无法识别 date not readable", date),
        ),
        (
            ~pl.col("verification_date").is_between(first, last),
            "verification_date",
            "date_out_of_range",
            date,
            pl.format(
                f"{date_header} {{}} 不在 {{}} 至 {{}} 之间 date outside the period's month and "
                "the next two",
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
                f"{date_header} {{}} 早于名单发布日期 {{}} date before the list was published",
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
