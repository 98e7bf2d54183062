"""Value normalisers (text, date, money, enum, grade) and normalise_frame per source."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screening import contract, ids
from screening.contract import ColumnSpec, SourceSpec
from screening.ingest import normalise as nz

TODAY = dt.date(2026, 10, 31)
PROPERTY = settings(deadline=None, derandomize=True, max_examples=150)
SPECS = contract.load()
ID_A = "11010519491231002X"


def make_id(region: str, born: dt.date, sequence: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + ids.check_digit(first17)


ID_B = make_id("430624", dt.date(1980, 1, 1), 123)
ID_C = make_id("430624", dt.date(2012, 5, 17), 42)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def apply(fn: Callable[[pl.Expr], pl.Expr], values: Sequence[str | None]) -> list[Any]:
    frame = pl.DataFrame({"raw": values}, schema={"raw": pl.String})
    return frame.select(fn(pl.col("raw"))).to_series().to_list()


def one(fn: Callable[[pl.Expr], pl.Expr], value: str | None) -> Any:
    return apply(fn, [value])[0]


# ---------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张三", "张三"),
        ("  张三\t", "张三"),
        ("\u3000张三\u3000", "张三"),
        ("\xa0张三\xa0", "张三"),
        ("\ufeff张三", "张三"),
        ("张 三", "张 三"),  # inner blanks are content
        ("ＡＢＣ路", "ＡＢＣ路"),  # no NFKC: names stay as written
        ("", None),
        ("   ", None),
        ("\u3000\xa0", None),
        (None, None),
    ],
)
def test_text(raw: str | None, expected: str | None) -> None:
    assert one(nz.text, raw) == expected
    assert one(nz.is_empty, raw) is (expected is None)


# ---------------------------------------------------------------- dates

OCT_3 = dt.date(2026, 10, 3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-10-03", OCT_3),
        ("2026/10/3", OCT_3),
        ("2026/10/03", OCT_3),
        ("2026.10.3", OCT_3),
        ("2026-10-3", OCT_3),
        ("20261003", OCT_3),
        ("20261003.0", OCT_3),  # a YYYYMMDD number in an Excel cell
        ("2026年10月3日", OCT_3),
        ("2026 年 10 月 3 日", OCT_3),
        ("2026年10月03日", OCT_3),
        ("2026年10月3", OCT_3),
        ("２０２６－１０－０３", OCT_3),
        ("２０２６年１０月３日", OCT_3),
        ("２０２６１００３", OCT_3),
        ("2026-10-03 00:00:00", OCT_3),
        ("2026-10-03T00:00:00", OCT_3),
        ("2026-10-03 00:00:00.000000", OCT_3),
        ("2026-10-03 14:30", OCT_3),
        ("2026/10/3 8:05:00", OCT_3),
        ("  2026-10-03\u3000", OCT_3),
        ("46298", OCT_3),
        ("46298.0", OCT_3),
        ("46298.75", OCT_3),  # 18:00 that day
        ("18264", dt.date(1950, 1, 1)),
        ("73050", dt.date(2099, 12, 31)),
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2000-02-29", dt.date(2000, 2, 29)),
        ("2026-02-30", None),
        ("2026-02-29", None),
        ("1900-02-29", None),
        ("2026-13-01", None),
        ("2026-00-10", None),
        ("2026-10-00", None),
        ("2026-04-31", None),
        ("20261301", None),
        ("2026年13月1日", None),
        ("00000101", None),
        ("2026-10/03", None),  # mixed separators
        ("03/10/2026", None),  # day or month first: no single reading
        ("26-10-03", None),
        ("18263", None),  # before 1950: no department record, more likely a mistyped number
        ("73051", None),
        ("0", None),
        ("2026", None),  # a year is not a date
        ("202610", None),  # nor is a month
        ("1234567", None),
        ("-46298", None),
        ("2026-10-03 abc", None),
        ("", None),
        ("   ", None),
        ("abc", None),
        (None, None),
    ],
)
def test_date(raw: str | None, expected: dt.date | None) -> None:
    assert one(nz.date, raw) == expected


def written_dates(d: dt.date) -> list[str]:
    iso = d.isoformat()
    forms = [
        iso,
        f"{d.year}/{d.month}/{d.day}",
        f"{d:%Y/%m/%d}",
        f"{d.year}.{d.month}.{d.day}",
        f"{d:%Y%m%d}",
        f"{d:%Y%m%d}.0",
        f"{d.year}年{d.month}月{d.day}日",
        f"{d.year} 年 {d.month} 月 {d.day} 日",
        f"{d:%Y}年{d:%m}月{d:%d}日",
        full_width(iso),
        full_width(f"{d:%Y%m%d}"),
        f"{iso} 00:00:00",
        f"{iso}T00:00:00",
        f"{iso} 00:00:00.000000",
        f"\u3000{iso} ",
    ]
    serial = (d - nz.EXCEL_EPOCH).days
    if nz.EXCEL_SERIAL_MIN <= serial <= nz.EXCEL_SERIAL_MAX:
        forms += [str(serial), f"{serial}.0"]
    return forms


@PROPERTY
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_written_form_of_a_date_reads_back(d: dt.date) -> None:
    forms = written_dates(d)
    assert apply(nz.date, forms) == [d] * len(forms)


@PROPERTY
@given(st.lists(st.text(), max_size=40))
def test_normalisers_never_raise_on_any_text(texts: list[str]) -> None:
    frame = pl.DataFrame({"raw": texts}, schema={"raw": pl.String})
    raw = pl.col("raw")
    out = frame.select(
        nz.date(raw).alias("date"),
        nz.money(raw).alias("money"),
        nz.grade(raw).alias("grade"),
        nz.enum(raw, ["低保", "特困供养"]).alias("enum"),
        nz.text(raw).alias("text"),
    )
    assert out.height == len(texts)
    assert out["grade"].drop_nulls().is_between(1, 4).all()
    assert out["enum"].drop_nulls().is_in(["低保", "特困供养"]).all()


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234.5", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1,234,567.8", "1234567.80"),
        ("1234.5元", "1234.50"),
        ("1234.5 元", "1234.50"),
        ("￥1234.5", "1234.50"),
        ("¥1234.5", "1234.50"),
        ("¥ 1,234.50", "1234.50"),
        ("１２３４．５", "1234.50"),
        ("￥１，２３４．５０元", "1234.50"),
        ("1234.5000000001", "1234.50"),
        ("1234.4999999999998", "1234.50"),
        ("0.30000000000000004", "0.30"),
        ("1234.505", "1234.51"),  # half away from zero, as accounts round
        ("1234.504", "1234.50"),
        ("  88 ", "88.00"),
        ("\u300088\u3000", "88.00"),
        ("0", "0.00"),
        ("007", "7.00"),
        (".5", "0.50"),
        ("5.", "5.00"),
        ("+5", "5.00"),
        ("-5", "-5.00"),
        ("-1,234.50", "-1234.50"),
        ("－１２", "-12.00"),
        ("\u221212", "-12.00"),  # the minus sign, not a hyphen
        ("-¥5", "-5.00"),
        ("¥-5", "-5.00"),
        ("-1.005", "-1.01"),
        ("9999999999999999.99", "9999999999999999.99"),
        ("10000000000000000", None),  # does not fit Decimal(18, 2)
        ("9999999999999999.995", None),  # rounds out of range
        ("-¥-5", None),
        ("--5", None),
        ("1,2,3", None),
        ("1,234,5", None),
        ("12,34.5", None),
        ("1.2.3", None),
        ("1e3", None),
        ("abc", None),
        ("12abc", None),
        ("元", None),
        ("¥", None),
        (".", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_money(raw: str | None, expected: str | None) -> None:
    result = one(nz.money, raw)
    assert result == (None if expected is None else Decimal(expected))


def test_money_dtype() -> None:
    frame = pl.DataFrame({"raw": ["1"]})
    assert frame.select(nz.money(pl.col("raw"))).dtypes == [pl.Decimal(18, 2)]


def written_amounts(x: Decimal) -> list[str]:
    plain = f"{x:f}"
    grouped = f"{x:,f}"
    tiny = Decimal("0.0000000001")
    forms = [
        plain,
        grouped,
        f"{plain}元",
        f"{grouped} 元",
        f"¥{plain}",
        f"￥{grouped}",
        full_width(plain),
        full_width(f"{grouped}元"),
        f" {plain}\u3000",
        f"{plain}0000000001",  # float noise above
        f"{x - tiny if x >= 0 else x + tiny:f}",  # and below
        repr(float(x)),
    ]
    if x < 0:
        forms.append(f"-¥{-x:,f}")
    return forms


@PROPERTY
@given(
    st.decimals(
        min_value=Decimal("-1e13"),
        max_value=Decimal("1e13"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_every_written_form_of_an_amount_reads_back(x: Decimal) -> None:
    forms = written_amounts(x)
    assert apply(nz.money, forms) == [x] * len(forms)


# ---------------------------------------------------------------- enum and grade

ASSISTANCE = ["低保", "特困供养", "临时救助", "低收入家庭"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("低保", "低保"),
        (" 低保\u3000", "低保"),
        ("\xa0临时救助", "临时救助"),
        ("最低生活保障", "低保"),  # a synonym
        (" 特困 ", "特困供养"),
        ("低 保", None),
        ("五保", None),
        ("", None),
        (None, None),
    ],
)
def test_enum(raw: str | None, expected: str | None) -> None:
    synonyms = {"最低生活保障": "低保", "特困": "特困供养"}
    assert one(lambda e: nz.enum(e, ASSISTANCE, synonyms), raw) == expected


def test_enum_folds_full_width_forms() -> None:
    values = ["A级", "B", "C-1"]
    assert apply(lambda e: nz.enum(e, values), ["Ａ级", "ｂ", "Ｂ", "C－1"]) == [
        "A级",
        None,  # case is meaning, not form
        "B",
        "C-1",
    ]


def test_enum_refuses_a_synonym_for_an_unknown_value() -> None:
    with pytest.raises(ValueError, match="not a value"):
        nz.enum(pl.col("raw"), ASSISTANCE, {"五保": "五保供养"})


def test_enum_without_values_is_always_null() -> None:
    assert apply(lambda e: nz.enum(e, []), ["低保", None]) == [None, None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("4", 4),
        ("1.0", 1),
        ("3.00", 3),
        ("１", 1),
        ("一级", 1),
        ("二级", 2),
        ("三级", 3),
        ("四级", 4),
        ("二級", 2),
        ("1级", 1),
        ("2 级", 2),
        (" 三级\u3000", 3),
        ("一", 1),
        ("肆级", 4),
        ("Ⅰ级", 1),
        ("Ⅱ级", 2),
        ("Ⅲ", 3),
        ("Ⅳ级", 4),
        ("ⅳ级", 4),
        ("IV", 4),
        ("0", None),
        ("5", None),
        ("五级", None),
        ("1.5", None),
        ("一二级", None),
        ("级", None),
        ("", None),
        (None, None),
    ],
)
def test_grade(raw: str | None, expected: int | None) -> None:
    assert one(nz.grade, raw) == expected


def test_grade_dtype() -> None:
    assert pl.DataFrame({"raw": ["1"]}).select(nz.grade(pl.col("raw"))).dtypes == [pl.Int8]


def test_value_expressions_stay_small() -> None:
    # Reused sub-expressions are copied into the plan; keep planning cheap.
    for fn in (nz.date, nz.money, nz.grade, nz.text):
        assert len(str(fn(pl.col("raw")))) < 50_000


# ---------------------------------------------------------------- normalise_frame

DTYPES = {
    "text": pl.String,
    "id": pl.String,
    "enum": pl.String,
    "date": pl.Date,
    "money": pl.Decimal(18, 2),
    "grade": pl.Int8,
}


def raw_frame(rows: list[dict[str, str | None]], extra: bool = False) -> pl.DataFrame:
    columns = sorted({k for row in rows for k in row})
    data: dict[str, list[Any]] = {c: [row.get(c) for row in rows] for c in columns}
    data["row_number"] = list(range(2, len(rows) + 2))
    schema: dict[str, Any] = {c: pl.String for c in columns} | {"row_number": pl.Int64}
    if extra:
        data["extra"] = [f'{{"备注": "{i}"}}' for i in range(len(rows))]
        schema["extra"] = pl.String
    return pl.DataFrame(data, schema=schema)


def check_shape(out: pl.DataFrame, raw: pl.DataFrame, spec: SourceSpec) -> None:
    """Column set, dtypes, raw text kept, and the null contract validation relies on."""
    expected = [
        "row_number",
        *spec.columns,
        *(nz.raw_name(k) for k in spec.columns),
        *(["extra"] if "extra" in raw.columns else []),
    ]
    assert out.columns == expected
    assert out["row_number"].to_list() == raw["row_number"].to_list()
    for key, col in spec.columns.items():
        assert out.schema[key] == DTYPES[col.type], key
        assert out.schema[nz.raw_name(key)] == pl.String
        if key in raw.columns and not (key == "id_number" and spec.id_from_certificate):
            assert out[nz.raw_name(key)].to_list() == raw[key].to_list(), key
        empty = out.select(nz.is_empty(pl.col(nz.raw_name(key)))).to_series()
        typed_null = out[key].is_null()
        if col.empty is None:
            assert (typed_null | ~empty).all(), f"{key}: an empty cell got a value"
        else:
            assert not (typed_null & empty).any(), f"{key}: an empty cell missed its default"


def normalise(rows: list[dict[str, str | None]], source: str, **kw: bool) -> pl.DataFrame:
    raw = raw_frame(rows, **kw)
    out = nz.normalise_frame(raw, SPECS[source], today=TODAY)
    check_shape(out, raw, SPECS[source])
    return out


def test_roster() -> None:
    out = normalise(
        [
            {
                "household_id": " H001 ",
                "id_number": " 11010519491231002x",
                "name": "\u3000张三 ",
                "relation": "户主",
                "township": "城关镇",
                "village": "东村",
                "household_type": "脱贫户 ",
                "monitoring_status": "",
                "per_capita_income": "5,000元",
            },
            {
                "household_id": "H001",
                "id_number": "4.30624800101123E+14",
                "name": "李四",
                "relation": None,
                "township": "城关镇",
                "village": "东村",
                "household_type": "贫困户",
                "monitoring_status": " 监测中",
                "per_capita_income": "abc",
            },
            {
                "household_id": "H002",
                "id_number": "110105194912310021",
                "name": "",
                "relation": "户主",
                "township": "城关镇",
                "village": "西村",
                "household_type": "一般农户",
                "monitoring_status": "\u3000",
                "per_capita_income": "",
            },
        ],
        "roster",
        extra=True,
    )
    assert out["household_id"].to_list() == ["H001", "H001", "H002"]
    assert out["id_number"].to_list() == [ID_A, ID_B, None]
    assert out["name"].to_list() == ["张三", "李四", None]
    assert out["household_type"].to_list() == ["脱贫户", None, "一般农户"]
    assert out["monitoring_status"].to_list() == ["未监测", "监测中", "未监测"]
    assert out["per_capita_income"].to_list() == [Decimal("5000.00"), None, None]
    assert out[nz.raw_name("monitoring_status")].to_list() == ["", " 监测中", "\u3000"]
    assert out["extra"].to_list() == ['{"备注": "0"}', '{"备注": "1"}', '{"备注": "2"}']


def test_medical_with_absent_optional_columns() -> None:
    out = normalise(
        [
            {
                "settlement_id": "JS001",
                "id_number": ID_B,
                "admission_date": "2026/9/1",
                "discharge_date": "2026年9月10日",
                "settlement_date": "46298",
                "total_cost": "12,000.00",
                "out_of_pocket": "￥1,234.50",
            },
            {
                "settlement_id": "JS002",
                "id_number": ID_A,
                "admission_date": "2026-02-30",
                "discharge_date": "",
                "settlement_date": "2026-10-03 00:00:00",
                "total_cost": "",
                "out_of_pocket": "-5",
            },
        ],
        "medical",
    )
    assert out["admission_date"].to_list() == [dt.date(2026, 9, 1), None]
    assert out["discharge_date"].to_list() == [dt.date(2026, 9, 10), None]
    assert out["settlement_date"].to_list() == [OCT_3, OCT_3]
    assert out["total_cost"].to_list() == [Decimal("12000.00"), None]
    assert out["out_of_pocket"].to_list() == [Decimal("1234.50"), Decimal("-5.00")]
    for absent in ("name", "hospital", "fund_paid", "critical_illness_paid"):
        assert out[absent].null_count() == 2
        assert out[nz.raw_name(absent)].null_count() == 2


def test_education_fees_default_to_zero() -> None:
    out = normalise(
        [
            {
                "record_id": "R1",
                "id_number": ID_C,
                "stage": " 初中 ",
                "status": "辍学",
                "record_date": "2026.10.3",
                "tuition": "",
                "accommodation": "\u3000",
                "textbook": None,
                "aid": "1,500元",
            },
            {
                "record_id": "R2",
                "id_number": ID_C,
                "stage": "大学",
                "status": "在读",
                "record_date": "20261003",
                "tuition": "8000",
                "accommodation": "x",
                "textbook": "０",
                "aid": "",
            },
        ],
        "education",
    )
    zero = Decimal("0.00")
    assert out["stage"].to_list() == ["初中", None]
    assert out["status"].to_list() == ["辍学", "在读"]
    assert out["record_date"].to_list() == [OCT_3, OCT_3]
    assert out["tuition"].to_list() == [zero, Decimal("8000.00")]
    assert out["accommodation"].to_list() == [zero, None]  # "x" is not empty: a failure
    assert out["textbook"].to_list() == [zero, zero]
    assert out["aid"].to_list() == [Decimal("1500.00"), zero]
    assert out[nz.raw_name("tuition")].to_list() == ["", "8000"]


def test_traffic() -> None:
    out = normalise(
        [
            {
                "accident_id": "SG1",
                "id_number": f"'{ID_B}",
                "accident_date": "２０２６年１０月３日",
                "injury": "重伤",
                "direct_loss": "12000元",
                "compensation": "",
            }
        ],
        "traffic",
    )
    assert out["id_number"].to_list() == [ID_B]
    assert out["accident_date"].to_list() == [OCT_3]
    assert out["injury"].to_list() == ["重伤"]
    assert out["direct_loss"].to_list() == [Decimal("12000.00")]
    assert out["compensation"].to_list() == [None]


def test_civil_amount_defaults_to_zero() -> None:
    out = normalise(
        [
            {
                "id_number": ID_A,
                "assistance_type": "低保",
                "event": "新增",
                "event_date": "2026-10-03",
                "amount": "",
            },
            {
                "id_number": ID_A,
                "assistance_type": "低保",
                "event": "取消",
                "event_date": "2026-13-03",
                "amount": "¥650",
            },
        ],
        "civil",
    )
    assert out["amount"].to_list() == [Decimal("0.00"), Decimal("650.00")]
    assert out["event"].to_list() == ["新增", None]
    assert out["event_date"].to_list() == [OCT_3, None]


def test_disability_takes_the_id_from_the_certificate() -> None:
    rows: list[dict[str, str | None]] = [
        {"certificate_no": f"{ID_A}11", "id_number": ""},  # taken from the certificate
        {"certificate_no": f" {ID_B}62 ", "id_number": None},
        {"certificate_no": full_width(f"{ID_A.lower()}24"), "id_number": "\u3000"},
        {"certificate_no": f"{ID_C}11", "id_number": "garbage"},  # given: not replaced
        {"certificate_no": f"{ID_C}11", "id_number": ID_B},
        {"certificate_no": f"{ID_A[:17]}111", "id_number": ""},  # bad check digit
        {"certificate_no": f"{ID_A}1", "id_number": ""},  # 19 characters
        {"certificate_no": ID_A, "id_number": ""},  # first generation of certificates
        {"certificate_no": "", "id_number": ""},
    ]
    for row in rows:
        row |= {"grade": "二级", "disability_type": "肢体", "issue_date": "2026-10-03"}
    out = normalise(rows, "disability")
    assert out["id_number"].to_list() == [ID_A, ID_B, ID_A, None, ID_B, None, None, None, None]
    assert out[nz.raw_name("id_number")].to_list() == [
        ID_A,
        ID_B,
        ID_A,
        "garbage",
        ID_B,
        "",
        "",
        "",
        "",
    ]
    assert out["certificate_no"].to_list()[1] == f"{ID_B}62"
    assert out["grade"].to_list() == [2] * len(rows)
    assert out["disability_type"].to_list() == ["肢体"] * len(rows)


def test_disability_without_an_id_column() -> None:
    out = normalise([{"certificate_no": f"{ID_C}23", "issue_date": "46298"}], "disability")
    assert out["id_number"].to_list() == [ID_C]
    assert out[nz.raw_name("id_number")].to_list() == [ID_C]


def test_lazy_in_lazy_out() -> None:
    raw = raw_frame([{"id_number": ID_A, "event_date": "2026/10/3", "amount": " "}])
    eager = nz.normalise_frame(raw, SPECS["civil"], today=TODAY)
    lazy = nz.normalise_frame(raw.lazy(), SPECS["civil"], today=TODAY)
    assert isinstance(eager, pl.DataFrame)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(eager)


def test_ids_born_after_today_are_not_accepted() -> None:
    born_later = make_id("430624", TODAY + dt.timedelta(days=1), 5)
    raw = raw_frame([{"id_number": born_later, "event_date": "2026-10-03"}])
    out = nz.normalise_frame(raw, SPECS["civil"], today=TODAY)
    assert out["id_number"].to_list() == [None]
    later = nz.normalise_frame(raw, SPECS["civil"], today=TODAY + dt.timedelta(days=1))
    assert later["id_number"].to_list() == [born_later]


def test_a_default_that_does_not_parse_is_a_contract_error() -> None:
    spec = SourceSpec(
        source="fees",
        title="fees",
        file_prefixes=("fees",),
        kind="events",
        natural_key=("fee",),
        rule_date=None,
        columns={"fee": ColumnSpec(key="fee", type="money", empty="free")},
    )
    with pytest.raises(ValueError, match="fee"):
        nz.normalise_frame(raw_frame([{"fee": ""}]), spec)


CELL = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\u3000", "abc", "46298", "2026年10月3日", "1,234.5元", "二级"]),
    st.sampled_from([ID_A, ID_B.lower(), "低保", "监测中", "一般农户"]),
    st.text(max_size=12),
)


@PROPERTY
@given(st.sampled_from(contract.SOURCES), st.data())
def test_any_cells_keep_the_contract(source: str, data: st.DataObject) -> None:
    spec = SPECS[source]
    height = data.draw(st.integers(min_value=1, max_value=8))
    keys = data.draw(st.lists(st.sampled_from(list(spec.columns)), unique=True, min_size=1))
    rows = [{k: data.draw(CELL) for k in keys} for _ in range(height)]
    raw = raw_frame(rows, extra=True)
    check_shape(nz.normalise_frame(raw, spec, today=TODAY), raw, spec)
