"""What linkage compares, computed once per record and per roster person, and the ID
difference of a suggested pair in words.

An ID number (GB 11643) is cut into parts that fail independently, so that Fellegi–Sunter's
independence assumption roughly holds: the birth date digits (7–14), the region and the
first two sequence digits (1–6, 15–16) and the sex digit (17, odd for men: compared as a
digit, then by its parity); the check digit is computed from the others and says nothing
of its own. A whole-number edit
distance would count a shared birth date twice (two people born on one day share 14 of
18 characters). The birth date digits are compared as digits, parsed or not: a mistyped
date is often no date at all.

A name is compared as written, by its pinyin (homophones: 李娜 and 李纳 read alike) and by
its surname (compound surnames such as 欧阳 kept whole). Pinyin comes from pypinyin, one
reading per character, the same on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from screening import contract, ids
from screening.ingest import normalise

COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文",
    "司徒", "夏侯", "令狐", "端木", "西门", "南宫", "独孤", "轩辕", "万俟", "申屠", "钟离",
    "闻人", "澹台", "呼延", "太史", "赫连", "上官", "百里", "第五",
)  # fmt: skip
# The ID number's positions (0-based slices) and what they are, for the reasons in words.
ID_PARTS = ((0, 6, "地区码"), (6, 14, "出生日期"), (14, 17, "顺序码"), (17, 18, "校验码"))
COMPARED = ("name", "surname", "pinyin", "birth", "birth6", "id_rest", "sex_digit", "sex",
            "township", "village")  # fmt: skip


def id_text(raw: pl.Expr) -> pl.Expr:
    """An ID number as compared: cleaned of blanks, full-width digits, apostrophes and
    Excel's float forms (`ids.clean`), upper case; a 15-digit first-generation number
    widened to its first 17 digits (19 inserted), its check digit unknown."""
    s = ids.clean_expr(raw).str.to_uppercase()
    widened = pl.concat_str([s.str.slice(0, 6), pl.lit("19"), s.str.slice(6, 9)])
    return pl.when(s.str.contains(r"^[0-9]{15}$")).then(widened).otherwise(s)


def name_text(raw: pl.Expr) -> pl.Expr:
    """A name as compared: trimmed, without inner blanks (a name typed with spaces)."""
    return normalise.text(ids.fold_width_expr(raw.cast(pl.String))).str.replace_all(r"\s", "")


def surname(name: pl.Expr) -> pl.Expr:
    two = name.str.slice(0, 2)
    return pl.when(two.is_in(list(COMPOUND_SURNAMES))).then(two).otherwise(name.str.slice(0, 1))


def pinyin_table(names: Iterable[pl.Series]) -> tuple[list[str], list[str]]:
    """(characters, their readings followed by a blank) for every character of `names`."""
    from pypinyin import lazy_pinyin

    # The distinct characters found by polars: a million names hold a few thousand.
    every = pl.concat([s.cast(pl.String) for s in names]).drop_nulls()
    chars = sorted(every.str.split("").explode().drop_nulls().unique().to_list())
    chars = [ch for ch in chars if ch]
    return chars, [f"{lazy_pinyin(ch)[0]} " for ch in chars]


def compared(
    frame: pl.DataFrame,
    name: str,
    id_number: str,
    table: tuple[list[str], list[str]],
    township: str | None = None,
    village: str | None = None,
) -> pl.DataFrame:
    """`frame` with the COMPARED columns, from its `name` and `id_number` columns (and the
    township and village when it has them)."""
    # The cleaned name and number first, as columns: each is read by several features,
    # and an expression repeated in them would be computed again for each.
    frame = frame.with_columns(__name=name_text(pl.col(name)), __id=id_text(pl.col(id_number)))
    n, s = pl.col("__name"), pl.col("__id")
    digits = s.str.slice(6, 8)
    sex_digit = s.str.slice(16, 1).cast(pl.Int32, strict=False)
    rest = pl.concat_str([s.str.slice(0, 6), s.str.slice(14, 2)])
    place = {
        "township": pl.col(township) if township else pl.lit(None, pl.String),
        "village": pl.col(village) if village else pl.lit(None, pl.String),
    }
    return frame.with_columns(
        name=n,
        surname=surname(n),
        pinyin=n.str.replace_many(*table).str.strip_chars(),
        birth=pl.when(digits.str.contains(r"^[0-9]{8}$")).then(digits),
        birth6=pl.when(digits.str.contains(r"^[0-9]{8}$")).then(digits.str.slice(2, 6)),
        id_rest=pl.when(rest.str.contains(r"^[0-9]{8}$")).then(rest),
        sex_digit=sex_digit.cast(pl.String),
        sex=(sex_digit % 2).cast(pl.String),
        **{k: normalise.text(v) for k, v in place.items()},
    ).drop("__name", "__id")


# Headers of a department file's extra columns that say where the person lives: the
# roster's own names for its township and village columns.
def place_headers() -> dict[str, tuple[str, ...]]:
    roster = contract.load()["roster"]
    return {k: (k, *roster.columns[k].aliases) for k in ("township", "village")}


def place_from_extra(extra: pl.Expr) -> dict[str, pl.Expr]:
    """township and village from a record's extra columns (JSON), when the department's
    file carries them under the roster's header names."""
    found = {}
    for key, headers in place_headers().items():
        found[key] = pl.coalesce(
            [normalise.text(extra.str.json_path_match(f'$["{h}"]')) for h in headers]
        )
    return found


# ---------------------------------------------------------------- the difference in words


def _part(position: int) -> str:
    return next(label for start, end, label in ID_PARTS if start <= position < end)


def id_difference(raw: str | None, candidate: str) -> str:
    """How the record's ID number differs from the candidate's, in words (a sentence of
    the 身份核对 list's 依据)."""
    given = ids.clean(raw or "").upper()
    if not given:
        return "记录没有身份证号"
    if len(given) == 15 and given == candidate[:6] + candidate[8:17]:
        return "身份证号为15位老号码，与人口库号码相同（升为18位时出错）"
    if len(given) == 17 and given == candidate[:17]:
        return "身份证号少了最后一位校验码"
    if len(given) == 18 and given[:17] == candidate[:17]:
        return "身份证号仅最后一位校验码不同"
    if (
        len(given) == 18
        and given[:6] + given[8:17] == candidate[:6] + candidate[8:17]
        and given[6:8] in ("19", "20")
        and given[:17].isdigit()
        and ids.check_digit(given[:17]) == given[17]
    ):
        # A valid number but for the century: the converter's, not a typist's, mistake.
        return "身份证号由15位老号码升为18位时出错（出生年份的世纪位不同）"
    if len(given) == len(candidate):
        differ = [i for i, (a, b) in enumerate(zip(given, candidate, strict=True)) if a != b]
        if len(differ) == 1:
            i = differ[0]
            return f"身份证号第 {i + 1} 位（{_part(i)}）数字不同"
        if (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and given[differ[0]] == candidate[differ[1]]
            and given[differ[1]] == candidate[differ[0]]
        ):
            i = differ[0]
            return f"身份证号第 {i + 1}、{i + 2} 位数字前后颠倒"
        return f"身份证号有 {len(differ)} 位数字不同"
    if len(given) + 1 == len(candidate):
        return "身份证号少了一位数字"
    if len(given) == len(candidate) + 1:
        return "身份证号多了一位数字"
    return f"身份证号为 {len(given)} 位"


NAME_WORDS = {
    "exact": "姓名相同",
    "pinyin": "姓名读音相同（同音字）",
    "similar": "姓名读音相近",
    "surname": "同姓，名字不同",
    "else": "姓名不同",
    "null": "记录没有姓名",
}
PLACE_WORDS = {"village": "同村", "township": "同乡镇", "else": "乡镇不同"}
