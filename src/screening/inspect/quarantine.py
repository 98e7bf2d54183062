"""The rows set aside (quarantined) in a period's deliveries and why, for `screening
quarantine`: each cell with its column's Chinese header, the check's label and the raw
value as it may be shown (ID numbers masked whatever their form), and counts."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from screening import contract, ids
from screening.db import inspect as db_inspect
from screening.inspect.base import ExplainError, require_tables
from screening.periods import check_period


def id_columns(spec: contract.SourceSpec) -> set[str]:
    """Columns holding an ID number: the `id` columns and the certificate number."""
    found = {key for key, col in spec.columns.items() if col.type == "id"}
    if spec.id_from_certificate:
        found.add(spec.id_from_certificate)
    return found


def mask_raw_value(spec: contract.SourceSpec | None, column: str, raw: str | None) -> str | None:
    """A quarantined cell as it may be shown. A raw ID cell is masked whatever its form
    (it failed to parse, so it need not look like an ID); a duplicate key's value is the
    key's columns joined with '|', masked part by part."""
    if raw is None:
        return None
    secret = id_columns(spec) if spec else set()
    columns = column.split("+")
    if len(columns) > 1:
        parts = raw.split("|")
        if len(parts) != len(columns):
            return ids.mask(raw) if secret & set(columns) else ids.mask_text(raw)
        return "|".join(
            ids.mask(p) if c in secret else ids.mask_text(p)
            for c, p in zip(columns, parts, strict=True)
        )
    return ids.mask(raw) if column in secret else ids.mask_text(raw)


# Each check's words: (Chinese, English). The console shows both; files for people
# (the run report's page, a department's feedback) the Chinese.
CHECK_LABELS: dict[str, tuple[str, str]] = {
    "invalid_id": ("身份证号无效", "invalid ID number"),
    "invalid_date": ("日期无法识别", "unreadable date"),
    "invalid_money": ("金额无法识别", "unreadable amount"),
    "invalid_value": ("取值不在允许范围", "value not allowed"),
    "required": ("必填项为空", "required value empty"),
    "min": ("低于最小值", "below the minimum"),
    "discharge_not_before_admission": ("出院日期早于入院日期", "discharge before admission"),
    "out_of_pocket_not_above_total": ("个人自付超过总费用", "out-of-pocket above total cost"),
    "duplicate_key": ("同一文件内主键重复且内容不同（各条均拒收）", "duplicate key in one file"),
    "implausible": ("数值不可信（超过入库上限）", "implausible value"),
    "formula_not_calculated": ("公式无保存值（用 Excel/WPS 打开并保存）", "unsaved formula"),
    "invalid_encoding": ("含无法识别的字符（编码损坏）", "undecodable bytes"),
    "invalid_character": ("含空字符 NUL", "NUL character"),
    "too_long": ("单元格超过 32767 个字符", "cell too long"),
    "too_many_fields": ("字段数多于表头（如未加引号的 1,234.50）", "more fields than the header"),
}


def check_label(check: str, english: bool = True) -> str:
    """The check's words, Chinese then English ('身份证号无效 invalid ID number'), or only
    the Chinese; the key itself for a check without words."""
    if check not in CHECK_LABELS:
        return check
    zh, en = CHECK_LABELS[check]
    return f"{zh} {en}" if english else zh


def column_label(spec: contract.SourceSpec | None, column: str) -> str:
    """The Chinese header of a contract column (the first alias), 'a+b' for a key."""

    def one(key: str) -> str:
        col = spec.columns.get(key) if spec else None
        return col.aliases[0] if col and col.aliases else key

    return "+".join(one(k) for k in column.split("+"))


@dataclass(frozen=True)
class Rejected:
    period: str
    rows: pl.DataFrame  # source, file, row_number, column, column_label, check, check_label, raw
    counts: pl.DataFrame  # source, check, check_label, rows, cells
    total_rows: int  # rejected rows (a row failing several checks counts once)


def quarantine(
    con: duckdb.DuckDBPyConnection, period: str, source: str | None = None, limit: int = 0
) -> Rejected:
    """The rows set aside in the period's deliveries and why, raw ID values masked.
    `limit` caps the listed rows (0: all); the counts always cover every row."""
    check_period(period)
    try:
        source = None if source is None else contract.source_key(source)
    except contract.UnknownSource as exc:
        raise ExplainError(str(exc)) from None
    require_tables(con)
    ingested = db_inspect.ingested_periods(con)
    if period not in ingested:
        done = ", ".join(ingested) or "none"
        raise ExplainError(
            f"{period} 期没有入库任何文件 nothing was ingested for period {period} "
            f"(ingested periods: {done})"
        )
    rows = db_inspect.quarantined(con, period, source, limit)
    counts = db_inspect.quarantine_counts(con, period, source)
    total = db_inspect.quarantined_rows(con, period, source)
    specs = contract.load()
    shown = [
        {
            **row,
            "column_label": column_label(specs.get(row["source"]), row["column"]),
            "check_label": check_label(row["check"]),
            "raw_value": mask_raw_value(specs.get(row["source"]), row["column"], row["raw_value"]),
        }
        for row in rows.iter_rows(named=True)
    ]
    schema = {
        "source": pl.String,
        "file": pl.String,
        "row_number": pl.Int64,
        "column": pl.String,
        "column_label": pl.String,
        "check": pl.String,
        "check_label": pl.String,
        "raw_value": pl.String,
    }
    return Rejected(
        period=period,
        rows=pl.DataFrame(shown, schema=schema).select(list(schema)),
        counts=counts.with_columns(
            check_label=pl.col("check").map_elements(check_label, return_dtype=pl.String)
        ).select("source", "check", "check_label", "rows", "cells"),
        total_rows=total,
    )
