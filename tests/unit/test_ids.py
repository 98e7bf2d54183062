"""GB 11643 IDs: check digits, 15→18, messy forms, and scalar/vectorised agreement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screening import ids

TODAY = dt.date(2026, 10, 31)
PROPERTY = settings(deadline=None, derandomize=True, max_examples=200)
STANDARD_EXAMPLE = "11010519491231002X"  # the worked example in GB 11643-1999
FIRST_GENERATION = "430624800101123"  # born 1980-01-01
FIRST_GENERATION_18 = "430624198001011239"


def make_id(region: str, born: dt.date, sequence: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + ids.check_digit(first17)


def _ending_in_000() -> str:
    # Found, not written down, so the test shows how it was chosen.
    return next(
        candidate
        for day in range(1, 32)
        for first in range(10)
        if (candidate := make_id("430624", dt.date(1990, 1, day), first * 100)).endswith("000")
    )


# Its 15-digit mantissa expands back to itself, so only the rule, not luck with the check
# digit, can refuse the scientific form of an 18-digit ID.
ENDS_IN_000 = _ending_in_000()


def vectorised(values: Sequence[str | None], today: dt.date = TODAY) -> list[str | None]:
    frame = pl.DataFrame({"raw": values}, schema={"raw": pl.String})
    return frame.select(ids.normalise_expr(pl.col("raw"), today)).to_series().to_list()


def masked(values: Sequence[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"raw": values}, schema={"raw": pl.String})
    return frame.select(ids.mask_expr(pl.col("raw"))).to_series().to_list()


def both(raw: str | None) -> str | None:
    """The scalar result, after checking that the vectorised one is the same."""
    scalar = ids.normalise(raw, TODAY)
    assert vectorised([raw]) == [scalar]
    return scalar


# ---------------------------------------------------------------- check digits, 15 → 18


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),  # the standard's second example
        ("43062419800101123", "9"),
    ],
)
def test_check_digit_known_examples(first17: str, check: str) -> None:
    assert ids.check_digit(first17) == check


@pytest.mark.parametrize("bad", ["", "1101051949123100", "110105194912310021", "1101051949123100X"])
def test_check_digit_needs_17_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        ids.check_digit(bad)


def arabic_indic(digits: str) -> str:
    return "".join(chr(0x0660 + int(c)) for c in digits)


def test_check_digit_refuses_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        ids.check_digit(arabic_indic("11010519491231002"))


def test_standard_example_is_valid() -> None:
    assert ids.is_valid(STANDARD_EXAMPLE, TODAY)
    assert ids.birth_date(STANDARD_EXAMPLE) == dt.date(1949, 12, 31)


@pytest.mark.parametrize(
    "invalid",
    [
        "110105194912310021",  # wrong check digit
        "11010519491231002x",  # is_valid wants the normalised upper-case X
        "440524188001010014",  # right check digit, born before 1900
        make_id("430624", dt.date(2026, 11, 1), 1),  # born after TODAY
        "430624202602300000",  # 30 February
        "11010519491231002",
        "",
    ],
)
def test_is_valid_rejects(invalid: str) -> None:
    assert not ids.is_valid(invalid, TODAY)


def test_from_15_inserts_century_and_check_digit() -> None:
    assert ids.from_15("110105491231002") == STANDARD_EXAMPLE
    assert ids.from_15(FIRST_GENERATION) == FIRST_GENERATION_18
    with pytest.raises(ValueError):
        ids.from_15("11010549123100")


# ---------------------------------------------------------------- messy forms


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (STANDARD_EXAMPLE, STANDARD_EXAMPLE),
        ("  11010519491231002X\t", STANDARD_EXAMPLE),
        ("\u300011010519491231002X\u3000", STANDARD_EXAMPLE),
        ("\xa011010519491231002X\ufeff", STANDARD_EXAMPLE),
        ("11010519491231002x", STANDARD_EXAMPLE),
        ("'11010519491231002X", STANDARD_EXAMPLE),
        (" '11010519491231002x ", STANDARD_EXAMPLE),
        (full_width(STANDARD_EXAMPLE), STANDARD_EXAMPLE),
        (full_width("11010519491231002x"), STANDARD_EXAMPLE),
        ("110105491231002", STANDARD_EXAMPLE),
        (FIRST_GENERATION, FIRST_GENERATION_18),
        (FIRST_GENERATION + ".0", FIRST_GENERATION_18),
        ("'" + FIRST_GENERATION, FIRST_GENERATION_18),
        ("4.30624800101123E+14", FIRST_GENERATION_18),
        ("4.30624800101123e+14", FIRST_GENERATION_18),  # how polars prints a float
        ("4.30624800101123E14", FIRST_GENERATION_18),
        (full_width("4.30624800101123E+14"), FIRST_GENERATION_18),
        ("4.3062480010112E+14", "430624198001011204"),  # Excel drops a trailing zero
        (f"{ENDS_IN_000[0]}.{ENDS_IN_000[1:]}E+17", ENDS_IN_000),  # every digit written
        (f"{ENDS_IN_000}.0", ENDS_IN_000),
    ],
)
def test_normalise_accepts_messy_forms(raw: str, expected: str) -> None:
    assert both(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "4.30624E+17",  # digits lost to a float
        "4.30624E+14",
        "4.3E+1",
        "1E+99",
        "1" + "0" * 5000 + "E+1",
        "110105194912310021",
        "110105 19491231002X",
        "11010519491231002X.0",
        "1101051949123100",
        "11010519491231002XX",
        "''",
        "11010519491231002X'",
        arabic_indic(STANDARD_EXAMPLE[:17]) + "X",
        "\u1369" * 15,  # Ethiopic digit one: isdigit() but not a decimal digit
        "1E+9999999999999",
        "\x1c11010519491231002X",  # a separator Python's strip() removes but polars' does not
        # Outlined digits (Unicode 16) fold to ASCII in polars' NFKC but not in Python's.
        "".join(chr(0x1CCF0 + int(c)) for c in FIRST_GENERATION),
    ],
)
def test_normalise_rejects(raw: str | None) -> None:
    assert both(raw) is None


def test_scientific_notation_of_an_18_digit_id_is_refused() -> None:
    assert both(ENDS_IN_000) == ENDS_IN_000
    assert both(f"{ENDS_IN_000[0]}.{ENDS_IN_000[1:15]}E+17") is None
    assert both(f"{ENDS_IN_000[0]}.{ENDS_IN_000[1:15]}E+17".lower()) is None


def test_today_bounds_the_birth_date() -> None:
    born_today = make_id("430624", TODAY, 7)
    assert both(born_today) == born_today
    assert ids.normalise(born_today, TODAY - dt.timedelta(days=1)) is None
    assert vectorised([born_today], TODAY - dt.timedelta(days=1)) == [None]


def test_clean_keeps_text_it_does_not_understand() -> None:
    assert ids.clean(" 'abc x ") == "abc X"
    assert ids.clean("4.30624E+17") == "4.30624E+17"


# ---------------------------------------------------------------- properties


birth_dates = st.dates(min_value=ids.EARLIEST_BIRTH, max_value=TODAY)
regions = st.from_regex(r"[1-9][0-9]{5}", fullmatch=True)
sequences = st.integers(min_value=0, max_value=999)


@PROPERTY
@given(regions, birth_dates, sequences)
def test_any_well_built_id_is_valid(region: str, born: dt.date, sequence: int) -> None:
    id18 = make_id(region, born, sequence)
    assert ids.is_valid(id18, TODAY)
    assert ids.birth_date(id18) == born
    assert both(id18) == id18
    assert both(id18.lower()) == id18


@PROPERTY
@given(regions, st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)), sequences)
def test_any_first_generation_id_converts(region: str, born: dt.date, sequence: int) -> None:
    id15 = f"{region}{born:%y%m%d}{sequence:03d}"
    assert both(id15) == make_id(region, born, sequence)
    assert both(f"{id15[0]}.{id15[1:]}E+14") == make_id(region, born, sequence)


@PROPERTY
@given(st.lists(st.text(), max_size=40))
def test_vectorised_agrees_with_scalar_on_any_text(texts: list[str]) -> None:
    assert vectorised(texts) == [ids.normalise(t, TODAY) for t in texts]


# Characters that a messy extract puts into or around an ID.
NOISE = st.sampled_from(
    list("0123456789xX'.eE+- \t\u3000\xa0\ufeff\u200b")
    + [full_width(c) for c in "0123456789xX'.E+"]
    + ["\u0663", chr(0x1CCF3), "\u00b3", "\u2163"]  # Arabic-Indic 3, outlined 3, ³, Ⅳ
)


@st.composite
def mutated_ids(draw: st.DrawFn) -> str:
    """A valid ID (or its 15-digit form, or sci notation) with a few random edits."""
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)))
    region, sequence = draw(regions), draw(sequences)
    id15 = f"{region}{born:%y%m%d}{sequence:03d}"
    text = draw(
        st.sampled_from(
            [
                make_id(region, born, sequence),
                id15,
                f"{id15[0]}.{id15[1:]}E+14",
                f"{id15}.0",
                full_width(make_id(region, born, sequence)),
            ]
        )
    )
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(NOISE)
        if action == "insert":
            text = text[:at] + char + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


@PROPERTY
@given(st.lists(mutated_ids(), min_size=1, max_size=40))
def test_vectorised_agrees_with_scalar_on_mutated_ids(texts: list[str]) -> None:
    expected = [ids.normalise(t, TODAY) for t in texts]
    assert vectorised(texts) == expected
    assert all(e is None or ids.is_valid(e, TODAY) for e in expected)


@PROPERTY
@given(st.text())
def test_normalise_never_raises(text: str) -> None:
    result = ids.normalise(text, TODAY)
    assert result is None or ids.is_valid(result, TODAY)


# ---------------------------------------------------------------- masking


def test_mask_examples() -> None:
    assert ids.mask(STANDARD_EXAMPLE) == "110105********002X"
    assert ids.mask("1234567890") == "**********"
    assert ids.mask("") == ""
    assert ids.mask(None) == ""
    assert masked([STANDARD_EXAMPLE, "12345", None]) == ["110105********002X", "*****", None]


@PROPERTY
@given(st.lists(st.text(min_size=1), max_size=30))
def test_mask_never_shows_more_than_six_plus_four(texts: list[str]) -> None:
    scalar = [ids.mask(t) for t in texts]
    assert masked(texts) == scalar
    for original, hidden in zip(texts, scalar, strict=True):
        assert len(hidden) == len(original)
        shown = [i for i, c in enumerate(hidden) if c != "*"]
        assert len(shown) <= 10
        assert all(i < 6 or i >= len(original) - 4 for i in shown)
        assert all(hidden[i] == original[i] for i in shown)


def test_expressions_stay_small() -> None:
    # Reusing a sub-expression copies it into the plan; the first version of
    # normalise_expr grew to 30 million characters and took seconds to plan per call.
    assert len(str(ids.normalise_expr(pl.col("raw"), TODAY))) < 50_000
    assert len(str(ids.mask_expr(pl.col("raw")))) < 5_000


def test_expressions_broadcast_a_literal() -> None:
    # normalise_frame feeds absent optional columns in as null literals.
    frame = pl.DataFrame({"n": [1, 2, 3]})
    out = frame.select(
        pl.col("n"),
        ids.normalise_expr(pl.lit(" 11010519491231002x"), TODAY).alias("id"),
        ids.normalise_expr(pl.lit(None, dtype=pl.String), TODAY).alias("none"),
    )
    assert out["id"].to_list() == [STANDARD_EXAMPLE] * 3
    assert out["none"].to_list() == [None] * 3


def test_one_pattern_masks_ids_in_any_text_valid_or_not() -> None:
    """Messages, file names and published text share one masker: a valid ID, a mistyped
    one of ID length standing alone, and a certificate number are masked; a household id
    (16 digits), a settlement number and a date are not."""
    valid = "43062419900101123" + ids.check_digit("43062419900101123")
    mistyped = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    text = f"{valid}_王福_身份证.pdf; {mistyped}; cert {valid}12; 4306241010030017 2026-06-04"
    masked = ids.mask_text(text)
    assert valid not in masked and mistyped not in masked
    assert "4306241010030017 2026-06-04" in masked
    assert ids.names_id(text) and not ids.names_id("4306241010030017 JS20260604000104")
    frame = pl.DataFrame({"t": [f"key {valid}|临时救助", None]})
    assert frame.select(ids.mask_text_expr(pl.col("t")))["t"].to_list() == [
        f"key {ids.mask(valid)}|临时救助",
        None,
    ]
