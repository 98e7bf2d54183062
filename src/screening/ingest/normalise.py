"""Normalise: raw cell text → typed values, as vectorised polars expressions.

Each normaliser takes an expression of raw text and returns the typed value, or null when
the text is empty or cannot be read as that type. None of them rejects anything: deciding
what is wrong is validate.py's job, and it needs to see both sides. So `normalise_frame`
keeps, for every column `<key>`, the typed `<key>` and the raw text `__raw_<key>`, with
this contract:

    typed `<key>` is null  ⇔  the raw cell is empty (see `is_empty`) and the column has no
                              `empty` default, or the raw cell is not empty and unparseable.

A non-empty raw cell beside a null typed value is therefore a parse failure (invalid_id,
invalid_date, invalid_money, invalid_value); an empty one is a missing value. Range
checks (negative money, birth dates) are validation's too: `money("-5")` is -5.00.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import polars as pl

from screening import ids
from screening.contract import ColumnSpec, SourceSpec

MONEY = pl.Decimal(18, 2)
RAW_PREFIX = "__raw_"

# Excel's 1900 date system counts days from 1899-12-30 (serial 0). A bare number is read
# as a serial only when it lands between 1950-01-01 and 2099-12-31, the dates department
# records carry: wider, and a year ("2026" → 1905) or a month ("202610" → 2454) would pass
# as a date and silently fall out of every window instead of being quarantined.
EXCEL_EPOCH = dt.date(1899, 12, 30)
EXCEL_SERIAL_MIN = 18_264  # 1950-01-01
EXCEL_SERIAL_MAX = 73_050  # 2099-12-31
_EPOCH_OFFSET = (dt.date(1970, 1, 1) - EXCEL_EPOCH).days  # polars Date counts from 1970

# A time of day after a date, as Excel date cells and parquet timestamps arrive as text.
_TIME = r"(?:(?:\s+|T)[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?"
# One pass over the text for every form; the group names say which form matched.
_DATE = (
    "^(?:"
    + "|".join(
        [
            rf"(?<y1>[0-9]{{4}})(?<s1>[-/.])(?<m1>[0-9]{{1,2}})(?<s2>[-/.])(?<d1>[0-9]{{1,2}}){_TIME}",
            rf"(?<y2>[0-9]{{4}})\s*年\s*(?<m2>[0-9]{{1,2}})\s*月\s*(?<d2>[0-9]{{1,2}})\s*日?{_TIME}",
            # Eight digits are always YYYYMMDD (an Excel number cell may add ".0").
            r"(?<y3>[0-9]{4})(?<m3>[0-9]{2})(?<d3>[0-9]{2})(?:\.0+)?",
            # A fraction is the time of day of an Excel date-time serial.
            r"(?<serial>[0-9]{1,7})(?:\.[0-9]+)?",
        ]
    )
    + ")$"
)

# Signs may stand before or after the currency sign (-¥5, ¥-5), but only once. Thousands
# separators must group by three: "1,2,3" or "1,234,5" could be anything.
_MONEY = (
    r"^(?<s1>[-+]?)\s*¥?\s*(?<s2>[-+]?)\s*"
    r"(?<num>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"\s*元?$"
)
# Wide enough for any cell that fits Decimal(18, 2) with float noise behind it; the extra
# places are cut (not rounded) by the cast, which cannot move a value across a .xx5 edge.
_MONEY_WORK = pl.Decimal(38, 10)

_GRADES = {
    **{str(g): g for g in range(1, 5)},
    **dict.fromkeys(("一", "壹"), 1),
    **dict.fromkeys(("二", "贰", "貳"), 2),
    **dict.fromkeys(("三", "叁", "參"), 3),
    **dict.fromkeys(("四", "肆"), 4),
    # Roman numerals: NFKC has already turned Ⅰ Ⅱ Ⅲ Ⅳ into ASCII letters.
    "I": 1,
    "II": 2,
    "III": 3,
    "IV": 4,
}

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def raw_name(key: str) -> str:
    return f"{RAW_PREFIX}{key}"


# ---------------------------------------------------------------- value normalisers


def text(expr: pl.Expr) -> pl.Expr:
    """Trimmed text, null when empty. No NFKC: names must stay as written."""
    s = expr.cast(pl.String).str.strip_chars(ids.BLANKS)
    return pl.when(s != "").then(s)


def is_empty(expr: pl.Expr) -> pl.Expr:
    """A raw cell that says nothing: null, or blanks only (full-width and NBSP included)."""
    return text(expr).is_null()


def _folded(expr: pl.Expr) -> pl.Expr:
    # For values whose spelling carries no meaning: full-width digits and signs → ASCII.
    return expr.cast(pl.String).str.normalize("NFKC").str.strip_chars(ids.BLANKS)


def date(expr: pl.Expr) -> pl.Expr:
    """A Date from 2026-10-03, 2026/10/3, 2026.10.3, 20261003, 2026年10月3日, the same with
    a time of day, or an Excel serial number; null for anything else or an impossible day.

    Day-first and two-digit-year forms are refused: 03/10/26 has no single reading.
    """
    f = pl.field

    def part(name: str) -> pl.Expr:
        # Only one form matches, so at most one of the three is set.
        separated = pl.when(f("s1") == f("s2")).then(f(f"{name}1"))
        return pl.coalesce(separated, f(f"{name}2"), f(f"{name}3")).cast(pl.Int32, strict=False)

    serial = f("serial").cast(pl.Int32, strict=False)
    from_serial = pl.when(serial.is_between(EXCEL_SERIAL_MIN, EXCEL_SERIAL_MAX)).then(
        (serial - _EPOCH_OFFSET).cast(pl.Date)
    )
    # Struct fields, read with pl.field, keep the regex from running once per reference.
    return (
        _folded(expr)
        .str.extract_groups(_DATE)
        .struct.with_fields(y=part("y"), m=part("m"), d=part("d"))
        .struct.with_fields(
            date=pl.coalesce(ids.date_from_parts(f("y"), f("m"), f("d")), from_serial)
        )
        .struct.field("date")
    )


def money(expr: pl.Expr) -> pl.Expr:
    """Decimal(18, 2) from 1,234.50, 1234.5元, ￥1234.5, ¥1234.5, full-width digits or
    float noise (1234.5000000001), rounded half away from zero; negatives kept."""
    # NFKC makes ￥ ¥ and full-width digits ASCII-like, but leaves the minus sign U+2212.
    sign1, sign2 = pl.field("s1"), pl.field("s2")
    digits = pl.field("num").str.replace_all(",", "", literal=True)
    value = (
        pl.when((sign1 == "") | (sign2 == ""))
        .then(pl.concat_str([sign1, sign2, digits]))
        .cast(_MONEY_WORK, strict=False)
        .round(2, mode="half_away_from_zero")
        .cast(MONEY, strict=False)
    )
    return (
        _folded(expr)
        .str.replace_all("\u2212", "-", literal=True)
        .str.extract_groups(_MONEY)
        .struct.with_fields(value=value)
        .struct.field("value")
    )


def enum(
    expr: pl.Expr, values: Sequence[str], synonyms: Mapping[str, str] | None = None
) -> pl.Expr:
    """The canonical value when the trimmed, NFKC-folded text is one of `values` or a key
    of `synonyms` (which maps to a value); else null."""
    lookup = {_fold_scalar(v): v for v in values}
    for spelling, value in (synonyms or {}).items():
        if value not in values:
            raise ValueError(f"synonym {spelling!r} maps to {value!r}, which is not a value")
        lookup[_fold_scalar(spelling)] = value
    return _folded(expr).replace_strict(lookup, default=None, return_dtype=pl.String)


def _fold_scalar(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip(ids.BLANKS)


def grade(expr: pl.Expr) -> pl.Expr:
    """Disability grade 1–4 (Int8) from 1, 1.0, １, 1级, 一级, 一, 壹级, Ⅰ级…; else null."""
    token = (
        _folded(expr)
        .str.to_uppercase()
        .str.replace(r"\s*[级級]$", "")
        .str.replace(r"^([1-4])\.0+$", "${1}")
    )
    return token.replace_strict(_GRADES, default=None, return_dtype=pl.Int8)


# ---------------------------------------------------------------- frames


def normalise_frame(raw: FrameT, spec: SourceSpec, *, today: dt.date | None = None) -> FrameT:
    """Typed columns plus `__raw_<key>` text for every column of `spec`.

    `raw` holds the source's column keys as text (absent optional ones become null),
    `row_number` and perhaps `extra`; columns the spec does not know pass through.
    Output order: row_number, typed columns, raw columns, the rest. `today` bounds ID
    birth dates (default: the real today). A DataFrame gives a DataFrame, a LazyFrame a
    LazyFrame.
    """
    lazy = raw.lazy()
    names = lazy.collect_schema().names()
    raws = {key: _raw_text(key, names) for key in spec.columns}
    if spec.id_from_certificate and "id_number" in raws:
        raws["id_number"] = id_from_certificate(
            raws["id_number"], raws[spec.id_from_certificate], today
        )
    typed = [_typed(col, raws[col.key], today).alias(col.key) for col in spec.columns.values()]
    kept = [raws[key].alias(raw_name(key)) for key in spec.columns]
    others = [pl.col(n) for n in names if n not in spec.columns and n != "row_number"]
    lead = [pl.col("row_number")] if "row_number" in names else []
    out = lazy.select(*lead, *typed, *kept, *others)
    return out.collect() if isinstance(raw, pl.DataFrame) else out


def id_from_certificate(
    id_raw: pl.Expr, certificate_raw: pl.Expr, today: dt.date | None = None
) -> pl.Expr:
    """The ID text to use: as given, or, when empty, the first 18 characters of a
    20-character certificate number (ID + category digit + grade digit) if they are a
    valid ID as they stand."""
    cert = _folded(certificate_raw).str.to_uppercase()
    head = pl.when(cert.str.len_chars() == 20).then(cert.str.slice(0, 18))
    usable = ids.normalise_expr(head, today) == head
    return pl.when(is_empty(id_raw) & usable).then(head).otherwise(id_raw)


def _raw_text(key: str, present: Sequence[str]) -> pl.Expr:
    if key in present:
        return pl.col(key).cast(pl.String)
    return pl.lit(None, dtype=pl.String)


def _parser(col: ColumnSpec, today: dt.date | None) -> Callable[[pl.Expr], pl.Expr]:
    parsers: dict[str, Callable[[pl.Expr], pl.Expr]] = {
        "text": text,
        "id": lambda e: ids.normalise_expr(e, today),
        "date": date,
        "money": money,
        "enum": lambda e: enum(e, col.values),
        "grade": grade,
    }
    return parsers[col.type]


def _typed(col: ColumnSpec, raw_text: pl.Expr, today: dt.date | None) -> pl.Expr:
    parse = _parser(col, today)
    if col.empty is None:
        return parse(raw_text)
    default = str(col.empty)
    # A default the parser cannot read would turn every empty cell into a silent null.
    if pl.select(parse(pl.lit(default))).item() is None:
        raise ValueError(f"column {col.key}: empty default {col.empty!r} is not a {col.type}")
    return parse(pl.when(is_empty(raw_text)).then(pl.lit(default)).otherwise(raw_text))
