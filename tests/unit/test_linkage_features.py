"""What linkage compares and how it words an ID difference: each kind of mistyped number the
generator plants (dev.sample.mistyped) is described as what it is."""

from __future__ import annotations

import random

import polars as pl
import pytest
from dev.sample import TYPO_KINDS, mistyped

from screening import ids
from screening.linkage import features

ID = "430624197006297542"  # valid: 1970-06-29, sequence 754, a woman


def test_mistyped_numbers_are_what_they_say() -> None:
    rng = random.Random(1)
    for _ in range(200):
        digit, swap, short = (mistyped(ID, k, rng) for k in ("digit", "swap", "no_check"))
        # GB 11643's check digit catches every changed digit and every adjacent swap.
        assert not ids.is_valid(digit) and sum(a != b for a, b in zip(digit, ID, strict=True)) == 1
        assert not ids.is_valid(swap) and sorted(swap) == sorted(ID) and swap != ID
        assert short == ID[:17]
    wrong_century = mistyped(ID, "id15", rng)
    assert wrong_century[:6] + wrong_century[8:17] == ID[:6] + ID[8:17]
    assert wrong_century[6:8] == "20"


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("43062419700629754", "少了最后一位校验码"),
        ("430624197006297541", "仅最后一位校验码不同"),
        ("430624197006297342", "第 16 位（顺序码）数字不同"),
        ("430624197006927542", "第 13、14 位数字前后颠倒"),
        ("430624297006297542", "第 7 位（出生日期）数字不同"),
        ("430624207006297542"[:17] + ids.check_digit("43062420700629754"), "15位老号码升为18位"),
        ("430624700629754", "15位老号码，与人口库号码相同"),
        ("  ４３０６２４１９７００６２９７５４１ ", "仅最后一位校验码不同"),
        ("43062419700629542", "少了一位数字"),
        ("", "没有身份证号"),
    ],
)
def test_the_id_difference_in_words(given: str, words: str) -> None:
    assert words in features.id_difference(given, ID)


def test_each_planted_kind_is_worded() -> None:
    rng = random.Random(7)
    expected = {"digit": "位", "swap": "颠倒", "no_check": "校验码", "id15": "15位"}
    for kind in TYPO_KINDS:
        text = features.id_difference(mistyped(ID, kind, rng), ID)
        assert expected[kind] in text, (kind, text)


def test_names_compare_as_written_by_sound_and_by_surname() -> None:
    names = pl.DataFrame(
        {"name": ["李娜", "李纳", " 欧阳 修 ", "王建国"], "id": [ID, "4306241970062", "x", None]}
    )
    table = features.pinyin_table([names["name"]])
    got = features.compared(names, "name", "id", table)
    assert got["pinyin"][0] == got["pinyin"][1] == "li na"
    assert got["name"][2] == "欧阳修" and got["surname"][2] == "欧阳"
    assert got["surname"][3] == "王"
    # The ID's parts: birth date digits, region + first two sequence digits, the sex digit.
    first = got.row(0, named=True)
    assert (first["birth"], first["id_rest"], first["sex_digit"], first["sex"]) == (
        "19700629",
        "43062475",
        "4",
        "0",
    )
    assert got["birth"][1] is None and got["id_rest"][2] is None and got["sex"][3] is None


def test_a_fifteen_digit_number_is_compared_in_its_eighteen_digit_places() -> None:
    frame = pl.DataFrame({"name": ["某"], "id": ["430624700629754"]})
    got = features.compared(frame, "name", "id", features.pinyin_table([frame["name"]]))
    assert got["birth"][0] == "19700629" and got["sex_digit"][0] == "4"


def test_a_record_says_where_its_person_lives_when_its_file_does() -> None:
    cells = ['{"乡(镇)": "城关镇", "村": " 三峰村 "}', None, '{"科室": "内科"}']
    extra = pl.DataFrame({"extra": cells})
    place = extra.select(**features.place_from_extra(pl.col("extra")))
    assert place.rows() == [("城关镇", "三峰村"), (None, None), (None, None)]
