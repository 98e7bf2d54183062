"""Resident ID numbers (GB 11643-1999): check digit, 15→18 conversion, normalisation, masking.

Two faces of the same rules: scalar functions for the generator, tests and messages, and
polars expressions for the pipeline, which must never loop over rows in Python. The two
must agree exactly on any text, so the clean-up uses only what both can do identically:
an explicit blank set (not each library's idea of white space), the full-width ASCII fold
(not NFKC, whose tables differ between Python's and polars' Unicode versions) and ASCII
digit classes (a Unicode ``\\d`` would let Arabic-Indic digits through).
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
EARLIEST_BIRTH = dt.date(1900, 1, 1)

# Blanks trimmed from the ends of a cell: ASCII white space, NBSP, the Unicode spaces,
# the ideographic (full-width) space, and the zero-width characters exports leave behind.
BLANKS = (
    " \t\n\r\v\f\x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200C))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# U+FF01…U+FF5E are the full-width forms of ASCII ! … ~, at a fixed offset.
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)) + " "
_FOLD_TABLE = str.maketrans(FULL_WIDTH, HALF_WIDTH)

# A float keeps 15 significant digits, so a number of up to 15 digits (a first-generation
# ID) survives scientific notation and the zeros dropped from its mantissa are real; an
# 18-digit number loses its last three digits, so its zeros are guesses unless the
# mantissa writes every digit.
_MAX_EXACT_EXPONENT = 14
_SCI = re.compile(r"([0-9])(?:\.([0-9]+))?[eE]\+?([0-9]{1,2})")
_ID18 = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS15 = re.compile(r"[0-9]{15}")
_FLOAT_SUFFIX = re.compile(r"[0-9]+\.0")


def check_digit(first17: str) -> str:
    """The 18th character for the first 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
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
    if not _ID18.fullmatch(id18) or check_digit(id18[:17]) != id18[17]:
        return False
    born = birth_date(id18)
    return born is not None and EARLIEST_BIRTH <= born <= (today or dt.date.today())


def from_15(id15: str) -> str:
    """First-generation 15-digit number → 18 digits (century 19 inserted, check digit added)."""
    if not _DIGITS15.fullmatch(id15):
        raise ValueError("need 15 digits")
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_digit(first17)


def fold_width(text: str) -> str:
    """Full-width ASCII forms (４３０１, Ｘ, the ideographic space) → their ASCII forms."""
    return text.translate(_FOLD_TABLE)


def normalise(raw: str | None, today: dt.date | None = None) -> str | None:
    """One raw ID text → the valid 18-character ID, or None when it cannot be one."""
    if raw is None:
        return None
    s = clean(raw)
    if _DIGITS15.fullmatch(s):
        s = from_15(s)
    return s if is_valid(s, today) else None


def clean(raw: str) -> str:
    """Textual clean-up only: full-width, blanks, apostrophe, case, Excel float forms."""
    s = fold_width(raw).strip(BLANKS).lstrip("'").strip(BLANKS).replace("x", "X")
    m = _SCI.fullmatch(s)
    if m:
        s = _expand_scientific(s, m.group(1), m.group(2) or "", int(m.group(3)))
    if _FLOAT_SUFFIX.fullmatch(s):
        s = s[:-2]
    return s


def _expand_scientific(text: str, lead: str, frac: str, exp: int) -> str:
    if len(frac) == exp or len(frac) < exp <= _MAX_EXACT_EXPONENT:
        return lead + frac + "0" * (exp - len(frac))
    return text


# An ID number inside other text: 18 characters with a plausible birth date, or 15 digits
# with one; or any run of 18 (the last may be X) or 15 digits standing alone, valid or not
# (a mistyped ID is still someone's). Household IDs (16 digits) and dates do not match. A
# certificate number (ID + 2 digits) matches on its first 18 characters, so no trailing
# guard on that form. The one pattern for ID numbers in text: messages, logs, file names,
# published text.
_EMBEDDED_ID = re.compile(
    r"(?<![0-9])[0-9]{6}(?:"
    r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
    r"|[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}(?![0-9]))"
    r"|(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])"
)


def mask_text(text: str | None) -> str:
    """`text` with every ID number in it masked (full-width digits included)."""
    if not text:
        return text or ""
    # fold_width maps character for character, so spans found in the folded text are
    # the spans of the original.
    folded = fold_width(text)
    parts, last = [], 0
    for m in _EMBEDDED_ID.finditer(folded):
        parts += [text[last : m.start()], mask(m.group(0).upper())]
        last = m.end()
    return "".join([*parts, text[last:]])


def names_id(text: str | None) -> bool:
    """Whether `text` holds something `mask_text` would mask."""
    return bool(text) and _EMBEDDED_ID.search(fold_width(str(text))) is not None


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
    # Indexing the string, not replace_strict: polars 2.1 fails ("zip node received
    # non-equal length inputs") on replace_strict inside struct fields of a literal.
    return pl.lit(CHECK_CHARS).str.slice(total % 11, 1)


def fold_width_expr(text: pl.Expr) -> pl.Expr:
    """Vectorised `fold_width`."""
    return text.str.replace_many(list(FULL_WIDTH), list(HALF_WIDTH))


def date_from_parts(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """The Date for integer parts, or null when they name no day (2026-02-30, month 13).

    Checked by arithmetic because `pl.date` raises on impossible parts and the string
    parsers are lenient (they read "1990011" as a date).
    """
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = (
        pl.when(month == 2)
        .then(pl.lit(28) + leap.cast(pl.Int32))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    # Python's date range, so every value converts to `datetime.date` downstream.
    ok = year.is_between(1, 9999) & month.is_between(1, 12) & day.is_between(1, month_days)
    # Parts are nulled before `pl.date` sees them: when/then evaluates both branches.
    return pl.date(pl.when(ok).then(year), pl.when(ok).then(month), pl.when(ok).then(day))


def clean_expr(raw: pl.Expr) -> pl.Expr:
    """Vectorised `clean`."""
    s = (
        fold_width_expr(raw.cast(pl.String))
        .str.strip_chars(BLANKS)
        .str.strip_chars_start("'")
        .str.strip_chars(BLANKS)
        .str.replace_all("x", "X", literal=True)
    )
    lead, frac, exp, digits = (pl.field(n) for n in ("lead", "frac", "exp", "digits"))
    expandable = (digits == exp) | ((digits < exp) & (exp <= _MAX_EXACT_EXPONENT))
    # At most 17 zeros are ever needed: an expandable exponent without every digit is <= 14.
    expanded = pl.concat_str([lead, frac, pl.lit("0" * 17)]).str.slice(0, exp + 1)
    return (
        _let("s", s)
        .struct.with_fields(
            sci=pl.field("s").str.extract_groups(r"^([0-9])(?:\.([0-9]+))?[eE]\+?([0-9]{1,2})$")
        )
        .struct.with_fields(
            lead=pl.field("sci").struct.field("1"),
            frac=pl.field("sci").struct.field("2").fill_null(""),
            exp=pl.field("sci").struct.field("3").cast(pl.Int32, strict=False),
        )
        .struct.with_fields(digits=frac.str.len_chars().cast(pl.Int32))
        .struct.with_fields(
            s=pl.coalesce(pl.when(lead.is_not_null() & expandable).then(expanded), pl.field("s"))
        )
        .struct.field("s")
        .str.replace(r"^([0-9]+)\.0$", "${1}")
    )


def _let(name: str, value: pl.Expr) -> pl.Expr:
    """A struct whose fields later steps read with `pl.field`.

    An expression used twice is copied twice into the plan, so chains of reuse grow the
    plan exponentially (seconds to plan a one-row frame); fields are read, not copied.
    """
    return pl.struct(value.alias(name))


def normalise_expr(raw: pl.Expr, today: dt.date | None = None) -> pl.Expr:
    """Vectorised `normalise`: the valid 18-character ID or null."""
    s, first17, given, check = (pl.field(n) for n in ("s", "first17", "given", "check"))
    latest = today or dt.date.today()
    return (
        _let("s", clean_expr(raw))
        .struct.with_fields(
            first17=pl.when(s.str.contains(r"^[0-9]{15}$"))
            .then(pl.concat_str([s.str.slice(0, 6), pl.lit("19"), s.str.slice(6, 9)]))
            .when(s.str.contains(r"^[0-9]{17}[0-9X]$"))
            .then(s.str.slice(0, 17)),
            given=pl.when(s.str.len_chars() == 18).then(s.str.slice(17, 1)),
        )
        .struct.with_fields(check=_check_char_expr(first17))
        .struct.with_fields(id18=pl.concat_str([first17, pl.coalesce(given, check)]))
        .struct.with_fields(born=birth_date_expr(pl.field("id18")))
        .struct.with_fields(
            id=pl.when(
                first17.is_not_null()
                & (pl.coalesce(given, check) == check)
                & pl.field("born").is_between(pl.lit(EARLIEST_BIRTH), pl.lit(latest))
            ).then(pl.field("id18"))
        )
        .struct.field("id")
    )


def birth_date_expr(id18: pl.Expr) -> pl.Expr:
    def part(start: int, length: int) -> pl.Expr:
        return id18.str.slice(start, length).cast(pl.Int32, strict=False)

    return date_from_parts(part(6, 4), part(10, 2), part(12, 2))


def mask_text_expr(text: pl.Expr) -> pl.Expr:
    """Vectorised `mask_text` (null stays null), for text columns of published files."""
    return text.map_elements(mask_text, return_dtype=pl.String, skip_nulls=True)


def mask_expr(id_number: pl.Expr) -> pl.Expr:
    """Vectorised `mask` (null stays null): never more than 6 + 4 characters shown."""
    n = id_number.str.len_chars().cast(pl.Int64)  # unsigned: n - 10 would wrap
    hidden = id_number.str.slice(6, n - 10).str.replace_all(r"(?s).", "*")
    return (
        pl.when(n <= 10)
        .then(id_number.str.replace_all(r"(?s).", "*"))
        .otherwise(pl.concat_str([id_number.str.slice(0, 6), hidden, id_number.str.slice(-4)]))
    )
