"""Resident ID numbers (GB 11643-1999): check digit, 15→18 conversion, normalisation, masking.

Two faces of the same rules: scalar functions for the generator, tests and messages, and
polars expressions for the pipeline, which must never loop over rows in Python.
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
EARLIEST_BIRTH = dt.date(1900, 1, 1)


def check_digit(first17: str) -> str:
    """The 18th character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def birth_date(id18: str) -> dt.date | None:
    try:
        return dt.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    except ValueError:
        return None


def is_valid(id18: str, today: dt.date | None = None) -> bool:
    """18 characters, a correct check digit and a real birth date not in the future."""
    if len(id18) != 18 or not id18[:17].isdigit() or id18[17] not in "0123456789X":
        return False
    if check_digit(id18[:17]) != id18[17]:
        return False
    born = birth_date(id18)
    return born is not None and EARLIEST_BIRTH <= born <= (today or dt.date.today())


def from_15(id15: str) -> str:
    """First-generation 15-digit number → 18 digits (century 19 inserted, check digit added)."""
    if len(id15) != 15 or not id15.isdigit():
        raise ValueError("need 15 digits")
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_digit(first17)


_SCI = re.compile(r"^(\d)(?:\.(\d+))?[eE]\+?(\d+)$")


def normalise(raw: str | None, today: dt.date | None = None) -> str | None:
    """One raw ID text → the valid 18-character ID, or None when it cannot be one."""
    if raw is None:
        return None
    s = _clean_scalar(raw)
    if len(s) == 15 and s.isdigit():
        s = from_15(s)
    return s if is_valid(s, today) else None


def _clean_scalar(raw: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKC", raw).strip().lstrip("'").strip().upper()
    m = _SCI.match(s)
    if m:
        s = _expand_scientific(m.group(1), m.group(2) or "", int(m.group(3)))
    if s.endswith(".0") and s[:-2].isdigit():
        s = s[:-2]
    return s


def _expand_scientific(lead: str, frac: str, exp: int) -> str:
    # Only when every digit survived: the mantissa must not claim more digits than it has.
    if len(frac) > exp:
        return lead + "." + frac + "E" + str(exp)
    return lead + frac + "0" * (exp - len(frac))


def mask(id_number: str | None) -> str:
    """430624********1234: region kept for orientation, birth date and sequence hidden."""
    if not id_number:
        return ""
    s = str(id_number)
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


# ---------------------------------------------------------------- polars expressions


def _check_char_expr(first17: pl.Expr) -> pl.Expr:
    total = pl.sum_horizontal(
        [first17.str.slice(i, 1).cast(pl.Int32, strict=False) * w for i, w in enumerate(WEIGHTS)]
    )
    return (total % 11).replace_strict(
        list(range(11)), list(CHECK_CHARS), return_dtype=pl.String, default=None
    )


def clean_expr(raw: pl.Expr) -> pl.Expr:
    """Textual clean-up only: full-width, blanks, apostrophe, case, Excel float forms."""
    s = (
        raw.cast(pl.String)
        .str.normalize("NFKC")
        .str.strip_chars()
        .str.strip_chars_start("'")
        .str.strip_chars()
        .str.to_uppercase()
    )
    sci = s.str.extract_groups(r"^(\d)(?:\.(\d+))?E\+?(\d+)$")
    lead = sci.struct.field("1")
    frac = sci.struct.field("2").fill_null("")
    exp = sci.struct.field("3").cast(pl.Int32, strict=False)
    pad = exp - frac.str.len_chars().cast(pl.Int32)
    expanded = pl.when(lead.is_not_null() & (pad >= 0)).then(
        pl.concat_str([lead, frac, pl.lit("0").repeat_by(pad.clip(0)).list.join("")])
    )
    s = pl.coalesce(expanded, s)
    return pl.when(s.str.contains(r"^\d+\.0$")).then(s.str.strip_suffix(".0")).otherwise(s)


def normalise_expr(raw: pl.Expr, today: dt.date | None = None) -> pl.Expr:
    """Vectorised `normalise`: the valid 18-character ID or null."""
    s = clean_expr(raw)
    first17 = (
        pl.when(s.str.contains(r"^\d{15}$"))
        .then(pl.concat_str([s.str.slice(0, 6), pl.lit("19"), s.str.slice(6, 9)]))
        .when(s.str.contains(r"^\d{17}[\dX]$"))
        .then(s.str.slice(0, 17))
    )
    given = pl.when(s.str.len_chars() == 18).then(s.str.slice(17, 1))
    check = _check_char_expr(first17)
    id18 = pl.concat_str([first17, pl.coalesce(given, check)])
    born = id18.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
    ok = (
        first17.is_not_null()
        & (pl.coalesce(given, check) == check)
        & born.is_between(pl.lit(EARLIEST_BIRTH), pl.lit(today or dt.date.today()))
    )
    return pl.when(ok).then(id18).otherwise(None)


def birth_date_expr(id18: pl.Expr) -> pl.Expr:
    return id18.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)


def mask_expr(id_number: pl.Expr) -> pl.Expr:
    return pl.concat_str([id_number.str.slice(0, 6), pl.lit("********"), id_number.str.slice(-4)])
