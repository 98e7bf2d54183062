"""Validation: a pandera schema per source, built from `schemas/<source>.yaml`.

Input is the normalised frame (typed columns plus `__raw_<key>` text, see normalise.py).
A row identical in every contract column to an earlier one is the same record sent twice:
it is counted as a duplicate, not validated again. Every failing cell becomes one
quarantine row; a row with any failure is kept out of the good rows. Validation is lazy:
all failures of a delivery are collected in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.errors import SchemaErrors

from screening import ids, params, tables
from screening.contract import ColumnSpec, CrossCheck, SourceSpec
from screening.ingest import normalise
from screening.ingest.normalise import is_empty, raw_name
from screening.vocab import SUM, TYPES

# Wide enough for any limit a parameters file may set, compared with any stored amount.
_LIMIT_TYPE = SUM
_LIMIT_MAX = Decimal("9" * 36 + ".99")

PARSE_CHECK = {
    "id": "invalid_id",
    "date": "invalid_date",
    "money": "invalid_money",
    "enum": "invalid_value",
    "grade": "invalid_value",
}

QUARANTINE_SCHEMA = tables.schema("quarantine")


def _raw_empty(key: str) -> pl.Expr:
    return is_empty(pl.col(raw_name(key)))


def _parse_check(col: ColumnSpec) -> pa.Check:
    # A non-empty raw cell that normalised to null could not be understood.
    def parsed(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_raw_empty(data.key) | pl.col(data.key).is_not_null())

    return pa.Check(parsed, name=PARSE_CHECK[col.type])


def _required_check() -> pa.Check:
    # Only for empty cells: an unreadable one is already reported by its parse check.
    def present(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~_raw_empty(data.key) | pl.col(data.key).is_not_null())

    return pa.Check(present, name="required")


def _enum_check(col: ColumnSpec) -> pa.Check:
    allowed = list(col.values)

    def member(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_null() | pl.col(data.key).is_in(allowed))

    return pa.Check(member, name="invalid_value")


def _min_check(col: ColumnSpec) -> pa.Check:
    floor = col.min

    def at_least(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_null() | (pl.col(data.key) >= floor))

    return pa.Check(at_least, name="min")


def _plausible_check(limit: Decimal) -> pa.Check:
    # A 16-digit 户编号 in an income cell parses as money; the limit keeps it out of sums.
    bound = pl.lit(min(limit, _LIMIT_MAX), dtype=_LIMIT_TYPE)

    def plausible(data: PolarsData) -> pl.LazyFrame:
        value = pl.col(data.key)
        return data.lazyframe.select(value.is_null() | (value.cast(_LIMIT_TYPE) <= bound))

    return pa.Check(plausible, name="implausible")


def money_limit(col: ColumnSpec, limits: params.IngestLimits) -> Decimal:
    """The largest plausible value of a money column: per-capita income has its own."""
    if col.key == "per_capita_income":
        return limits.max_per_capita_income
    return limits.max_amount


def _cross_check(check: CrossCheck) -> pa.Check:
    def compare(data: PolarsData) -> pl.LazyFrame:
        a, b = pl.col(check.column), pl.col(check.other)
        holds = a >= b if check.op == "ge" else a <= b
        return data.lazyframe.select(a.is_null() | b.is_null() | holds)

    return pa.Check(compare, name=check.name)


def _grade_range(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).is_null() | pl.col(data.key).is_between(1, 4))


@cache
def _schema_cached(spec: SourceSpec, limits: params.IngestLimits) -> pa.DataFrameSchema:
    return build_schema(spec, limits)


def build_schema(spec: SourceSpec, limits: params.IngestLimits) -> pa.DataFrameSchema:
    cross_by_column: dict[str, list[pa.Check]] = {}
    for check in spec.checks:
        cross_by_column.setdefault(check.column, []).append(_cross_check(check))
    columns = {}
    for key, col in spec.columns.items():
        checks: list[pa.Check] = []
        if col.type in PARSE_CHECK:
            checks.append(_parse_check(col))
        if col.required:
            checks.append(_required_check())
        if col.type == "enum" and col.values:
            checks.append(_enum_check(col))
        if col.type == "grade":
            checks.append(pa.Check(_grade_range, name="invalid_value"))
        if col.min is not None:
            checks.append(_min_check(col))
        if col.type == "money":
            checks.append(_plausible_check(money_limit(col, limits)))
        checks.extend(cross_by_column.get(key, []))
        columns[key] = pa.Column(TYPES[col.type][0], nullable=True, checks=checks)
    return pa.DataFrameSchema(
        columns,
        name=spec.source,
        strict=False,
        unique=list(spec.natural_key),
        report_duplicates="all",
    )


@dataclass
class Validated:
    good: pl.DataFrame  # typed columns + row_number + extra, no __raw_ columns
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA
    rows_rejected: int
    # Row numbers of the rows identical to an earlier row, counted once (not in good).
    duplicates: pl.Series = field(default_factory=lambda: pl.Series("row_number", [], pl.Int64))
    # The quarantined rows' cells (QUARANTINED_ROWS_SCHEMA but period, source, file), so
    # that nothing of a row set aside is lost: a record with a mistyped ID number can
    # still reach its household through a confirmed link (screening.linkage).
    rejected_rows: pl.DataFrame | None = None

    @property
    def rows_duplicate(self) -> int:
        return self.duplicates.len()


def validate(
    frame: pl.DataFrame,
    spec: SourceSpec,
    *,
    period: str,
    file: str,
    limits: params.IngestLimits | None = None,
) -> Validated:
    """Split a normalised delivery into good rows, quarantine rows and identical copies.
    `limits` (the `ingest_limits` parameters) default to those in force for `period`."""
    limits = limits or params.ingest_limits(period)
    copies = identical_copies(frame, spec)
    duplicates = frame.filter(copies).get_column("row_number").cast(pl.Int64)
    frame = frame.filter(~copies)
    failures = _failures(frame, spec, limits)
    quarantine = _quarantine_rows(frame, failures, spec, period=period, file=file)
    bad_index = failures.get_column("index").unique()
    good = (
        frame.with_row_index("__index")
        .filter(~pl.col("__index").is_in(bad_index.implode()))
        .drop("__index")
    )
    good = good.drop([c for c in good.columns if c.startswith("__raw_")])
    return Validated(
        good=good,
        quarantine=quarantine,
        rows_rejected=bad_index.len(),
        duplicates=duplicates,
        rejected_rows=rejected_rows(frame, bad_index, spec),
    )


QUARANTINED_ROWS_SCHEMA = tables.schema("quarantined_rows")


def rejected_rows(frame: pl.DataFrame, bad_index: pl.Series, spec: SourceSpec) -> pl.DataFrame:
    """row_number, source_key, record, extra of each quarantined row: `record` holds the
    typed value of every contract column as JSON (null where the cell failed: its text is
    in the quarantine), `source_key` the natural key as `rules.facts.source_key` writes it,
    the delivered text (an ID number cleaned by `ids.clean`) standing in for a value that
    did not parse."""
    bad = frame.with_row_index("__index").filter(pl.col("__index").is_in(bad_index.implode()))
    parts = []
    for k in spec.natural_key:
        raw = pl.col(raw_name(k))
        raw = ids.clean_expr(raw) if spec.columns[k].type == "id" else normalise.text(raw)
        parts.append(pl.coalesce(pl.col(k).cast(pl.String), raw, pl.lit("")))
    extra = pl.col("extra") if "extra" in frame.columns else pl.lit(None, pl.String)
    return bad.select(
        pl.col("row_number").cast(pl.Int64),
        pl.concat_str(parts, separator="|").alias("source_key"),
        pl.struct([pl.col(k) for k in spec.columns]).struct.json_encode().alias("record"),
        extra.cast(pl.String).alias("extra"),
    )


def _as_read(key: str) -> pl.Expr:
    """A cell as identical rows compare it: the value it normalised to, else its raw text
    (so two different unreadable cells stay different)."""
    typed = pl.col(key)
    return (
        pl.when(typed.is_not_null())
        .then(typed.cast(pl.String))
        .otherwise(pl.lit("\x00") + pl.col(raw_name(key)).fill_null(""))
    )


def identical_copies(frame: pl.DataFrame, spec: SourceSpec) -> pl.Series:
    """True for each row identical in every contract column to an earlier row (the first
    copy is kept). Only rows sharing their natural key with another are compared whole."""
    no_copies = pl.Series("copy", [False] * frame.height, dtype=pl.Boolean)
    if frame.height < 2:
        return no_copies
    shared_key = frame.select(
        pl.struct([_as_read(k) for k in spec.natural_key]).is_duplicated().alias("shared")
    ).get_column("shared")
    if not shared_key.any():
        return no_copies
    indexed = frame.with_row_index("__index").filter(shared_key)
    later = indexed.filter(
        ~pl.struct([_as_read(k) for k in spec.columns]).is_first_distinct()
    ).get_column("__index")
    return (
        pl.Series("copy", range(frame.height), dtype=pl.UInt32).is_in(later.implode()).alias("copy")
    )


def _failures(frame: pl.DataFrame, spec: SourceSpec, limits: params.IngestLimits) -> pl.DataFrame:
    """(index, column, check) for every failing cell."""
    empty = pl.DataFrame(schema={"index": pl.UInt32, "column": pl.String, "check": pl.String})
    try:
        _schema_cached(spec, limits).validate(frame, lazy=True)
        return empty
    except SchemaErrors as errors:
        cases = errors.failure_cases
    if cases.filter(pl.col("index").is_null()).height:
        # A schema-level failure (wrong dtype, missing column) is a bug in normalise, not
        # bad data: refusing loudly beats quarantining every row.
        detail = cases.filter(pl.col("index").is_null()).select("column", "check").rows()
        raise RuntimeError(f"{spec.source}: normalised frame does not fit its schema: {detail}")
    key_label = "+".join(spec.natural_key)
    cases = cases.select(
        pl.col("index").cast(pl.UInt32),
        pl.when(pl.col("check") == "multiple_fields_uniqueness")
        .then(pl.lit(key_label))
        .otherwise(pl.col("column"))
        .alias("column"),
        pl.when(pl.col("check").str.contains("uniqueness|unique"))
        .then(pl.lit("duplicate_key"))
        .otherwise(pl.col("check"))
        .alias("check"),
    )
    # Rows whose key is incomplete already fail `required`; calling them duplicates of each
    # other would only add noise.
    incomplete = frame.select(
        pl.any_horizontal([pl.col(k).is_null() for k in spec.natural_key]).alias("x")
    ).get_column("x")
    incomplete_idx = pl.Series(range(frame.height), dtype=pl.UInt32).filter(incomplete)
    cases = cases.filter(
        ~((pl.col("check") == "duplicate_key") & pl.col("index").is_in(incomplete_idx.implode()))
    )
    return cases.unique(maintain_order=True)


def _quarantine_rows(
    frame: pl.DataFrame, failures: pl.DataFrame, spec: SourceSpec, *, period: str, file: str
) -> pl.DataFrame:
    if failures.height == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    raw_cols = [raw_name(k) for k in spec.columns]
    raws = frame.select("row_number", *raw_cols).with_row_index("index")
    key_raw = pl.concat_str(
        [pl.col(raw_name(k)).fill_null("") for k in spec.natural_key], separator="|"
    )
    raws = raws.with_columns(key_raw.alias("__key_raw"))
    joined = failures.join(raws, on="index", how="left")
    key_label = "+".join(spec.natural_key)
    value: Any = pl.when(pl.col("column") == key_label).then(pl.col("__key_raw"))
    for key in spec.columns:
        value = value.when(pl.col("column") == key).then(pl.col(raw_name(key)))
    return joined.select(
        pl.lit(period).alias("period"),
        pl.lit(spec.source).alias("source"),
        pl.lit(file).alias("file"),
        pl.col("row_number").cast(pl.Int64),
        pl.col("column"),
        pl.col("check"),
        value.otherwise(None).cast(pl.String).alias("raw_value"),
    ).sort("row_number", "column", "check")
