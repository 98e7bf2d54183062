"""Publishing: parquet per contract, per-township xlsx/csv, safe names, atomic writes."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from openpyxl.utils import get_column_letter

from screening import ids, params
from screening.contract import resource_dir
from screening.publish import lists as publish
from screening.publish.about import about_lines, delivery_note
from screening.publish.columns import (
    CANDIDATE_HEADERS,
    CANDIDATES_SCHEMA,
    EVIDENCE_SCHEMA,
    FEEDBACK_HEADERS,
    MEMBERS_SCHEMA,
    SUSPECT_HEADERS,
    SUSPECTS_SCHEMA,
    PublishMeta,
)
from screening.publish.files import (
    CANDIDATES_FILE,
    CANDIDATES_PREFIX,
    candidate_paths,
    folder_key,
    safe_name,
    township_folders,
    township_paths,
)
from screening.publish.workbook import COLOUR_FILLS, SHEET_CANDIDATES
from screening.rules import RISK_LABELS, screen
from screening.vocab import SUM
from tests.support.lists import header_row, headers_of, household_records, household_rows

PERIOD = "2026-10"
RUN = "run-20261105-1"


def person_id(n: int) -> str:
    """A valid synthetic ID number (region 430624, born 1960-1999)."""
    first17 = f"430624{1960 + n % 40}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + ids.check_digit(first17)


def household(
    township: str,
    hid: str,
    colour: str = "蓝",
    codes: tuple[str, ...] = ("MEDICAL",),
    head: str = "张三",
    village: str = "东风村",
    rigid: str = "0",
    status: str = "新增",
) -> dict[str, Any]:
    labels = ";".join(RISK_LABELS[c] for c in codes)
    n = int("".join(ch for ch in hid if ch.isdigit()) or 0)
    return {
        "period": PERIOD,
        "township": township,
        "village": village,
        "household_id": hid,
        "head_name": head,
        "head_id_number": person_id(n * 10),
        "household_type": "脱贫户",
        "household_size": 3,
        "per_capita_income": Decimal("5400.50"),
        "monitoring_line": Decimal("6000"),
        "colour": colour,
        "risk_codes": list(codes),
        "risk_labels": labels,
        "medical_oop": Decimal(rigid),
        "education_cost": Decimal("0"),
        "accident_loss": Decimal("0"),
        "rigid_expenditure": Decimal(rigid),
        "labour_capacity": "有劳动力",
        "listing_status": status,
        "run_id": RUN,
    }


def suspects_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SUSPECTS_SCHEMA)


def evidence_for(suspects: pl.DataFrame) -> pl.DataFrame:
    """One medical record for the head of each listed household, not in list order (the
    rules sort evidence by household ID)."""
    rows = [
        {
            "period": PERIOD,
            "household_id": s["household_id"],
            "id_number": s["head_id_number"],
            "name": s["head_name"],
            "risk_code": "MEDICAL",
            "source": "medical",
            "source_key": f"JS-{s['household_id']}",
            "rule_date": dt.date(2026, 9, 3),
            "amount": Decimal("12345.60"),
            "detail": f"住院 {s['household_id']}",
        }
        for s in suspects.iter_rows(named=True)
    ]
    return pl.DataFrame(rows[::-1], schema=EVIDENCE_SCHEMA)


def members_for(suspects: pl.DataFrame) -> pl.DataFrame:
    """The head and a spouse for each listed household."""
    rows = []
    for s in suspects.iter_rows(named=True):
        spouse = person_id(int(s["head_id_number"][14:17]) + 1)
        for id_number, name, relation, age, head, grade in [
            (s["head_id_number"], s["head_name"], "户主", 58, True, None),
            (spouse, "配偶" + s["household_id"], "配偶", 55, False, 3),
        ]:
            rows.append(
                {
                    "period": PERIOD,
                    "household_id": s["household_id"],
                    "id_number": id_number,
                    "name": name,
                    "relation": relation,
                    "age": age,
                    "is_head": head,
                    "disability_grade": grade,
                }
            )
    return pl.DataFrame(rows, schema=MEMBERS_SCHEMA)


def meta(**changes: Any) -> PublishMeta:
    base = PublishMeta(
        period=PERIOD,
        run_id=RUN,
        params=params.load().at(PERIOD),
        sources={"roster": "loaded", "medical": "loaded", "traffic": "missing"},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def county() -> pl.DataFrame:
    """Two townships in list order."""
    return suspects_frame(
        [
            household("城关镇", "H001", "红", ("MEDICAL", "LOW_INCOME"), rigid="26800.50"),
            household("城关镇", "H002", "黄", ("LOW_INCOME",), village="西湖村"),
            household("城关镇", "H003", "蓝", ("EDUCATION",), village="南山村"),
            household("石羊塘镇", "H004", "红", ("ACCIDENT", "SPENDING"), rigid="150000"),
        ]
    )


def run_publish(
    out: Path,
    suspects: pl.DataFrame,
    townships: list[str] | None = None,
    **meta_changes: Any,
) -> list[Path]:
    return publish.publish(
        out,
        suspects,
        evidence_for(suspects),
        members_for(suspects),
        meta(**meta_changes),
        townships=townships,
    )


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def headers_of_details(sheet: Any) -> list[Any]:
    """The members sheet's header (its title rows above it)."""
    for row in sheet.iter_rows(values_only=True):
        if "身份证号" in row:
            return list(row)
    raise AssertionError("no header")


def detail_records(sheet: Any) -> list[dict[str, Any]]:
    """The members sheet's member rows (those with a 姓名) as header → value."""
    headers = headers_of_details(sheet)
    found = False
    rows = []
    for row in sheet.iter_rows(values_only=True):
        if found and row[headers.index("姓名")]:
            rows.append(dict(zip(headers, row, strict=False)))
        found = found or list(row) == headers
    return rows


def _cells(rng: Any) -> list[Any]:
    from openpyxl.utils.cell import range_boundaries

    min_col, min_row, max_col, max_row = range_boundaries(str(rng))
    return [
        type("Cell", (), {"row": r, "column": c})()
        for r in range(min_row, max_row + 1)
        for c in range(min_col, max_col + 1)
    ]


# ---------------------------------------------------------------- parquet


def test_headers_cover_the_contract_columns() -> None:
    assert list(SUSPECT_HEADERS) == list(screen.SUSPECTS_SCHEMA)


def test_parquet_files_follow_the_contract(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    suspects = pl.read_parquet(tmp_path / PERIOD / "suspects.parquet")
    evidence = pl.read_parquet(tmp_path / PERIOD / "evidence.parquet")
    assert suspects.schema == SUSPECTS_SCHEMA
    assert evidence.schema == EVIDENCE_SCHEMA
    assert suspects["household_id"].to_list() == ["H001", "H002", "H003", "H004"]
    assert suspects["head_id_number"].to_list() == county()["head_id_number"].to_list()
    assert evidence["household_id"].to_list() == ["H001", "H002", "H003", "H004"]


def test_unsorted_suspects_are_refused(tmp_path: Path) -> None:
    shuffled = county().reverse()
    with pytest.raises(ValueError, match="list order"):
        run_publish(tmp_path, shuffled)


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "../2026-10", "2026-10/x"])
def test_a_bad_period_never_becomes_a_path(tmp_path: Path, period: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        run_publish(tmp_path, county(), period=period)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- township files


def test_each_township_gets_its_own_households_only(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    xlsx, csv = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    assert xlsx.name == "疑似监测对象_城关镇_202610.xlsx"
    assert csv.name == "疑似监测对象_城关镇_202610.csv"
    table = pl.read_csv(csv, infer_schema=False)
    assert table["户编号"].to_list() == ["H001", "H002", "H003"]
    book = openpyxl.load_workbook(xlsx)
    households = household_records(book["疑似监测户"])
    assert sorted(r["户编号"] for r in households) == ["H001", "H002", "H003"]
    details = book["家庭成员及风险依据"]
    heads = {r["户主"] for r in detail_records(details) if r["户主"]}
    assert heads == {"张三"}
    assert [r["序号"] for r in detail_records(details) if r["序号"]] == [1, 2, 3]


def test_csv_has_a_bom_chinese_headers_and_round_trips(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    _, csv = township_paths(tmp_path / PERIOD, "石羊塘镇", PERIOD)
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pl.read_csv(csv, infer_schema=False)
    # Every contract column but the run id, which would make reruns differ byte for byte,
    # and the relief estimate, which is off by default.
    assert table.columns == [
        *(h for k, h in SUSPECT_HEADERS.items() if k not in ("run_id", "relief_estimate")),
        *FEEDBACK_HEADERS,
    ]
    expected = county().filter(pl.col("township") == "石羊塘镇").row(0, named=True)
    row = table.row(0, named=True)
    assert row["户主身份证号"] == expected["head_id_number"]
    assert row["风险代码"] == "ACCIDENT;SPENDING"
    assert row["风险点"] == "因意外;刚性支出超收入"
    assert Decimal(row["刚性支出合计"]) == Decimal("150000")
    assert row["家庭人口"] == "3"


RELIEF_HEADER = "防贫保预估（元）"  # on the printed sheet, which names its unit


def test_the_relief_column_is_on_the_lists_only_while_the_estimate_is_on(tmp_path: Path) -> None:
    header = SUSPECT_HEADERS["relief_estimate"]
    assert header == "防贫保预估"
    frame = county().with_columns(
        relief_estimate=pl.Series([Decimal("17100.00"), Decimal("0"), None, Decimal("3800.5")])
    )
    on = params.load(resource_dir("parameters") / "examples" / "liling.yaml").at(PERIOD)
    for folder, resolved, shown in ((tmp_path / "on", on, True), (tmp_path / "off", None, False)):
        kept = frame if shown else frame.with_columns(relief_estimate=pl.lit(None, SUM))
        run_publish(folder, kept, **({"params": resolved} if resolved else {}))
        xlsx, csv = township_paths(folder / PERIOD, "城关镇", PERIOD)
        sheet = openpyxl.load_workbook(xlsx)["疑似监测户"]
        headers = headers_of(sheet)
        table = pl.read_csv(csv, infer_schema=False)
        about = " ".join(
            str(c) for row in openpyxl.load_workbook(xlsx)["说明"].iter_rows(values_only=True)
            for c in row if c
        )  # fmt: skip
        assert (RELIEF_HEADER in headers) is shown and (header in table.columns) is shown
        assert ("防贫保预估" in about) is shown
        # The parquet file keeps the contract's column either way.
        stored = pl.read_parquet(folder / PERIOD / "suspects.parquet")
        assert stored.schema["relief_estimate"] == SUM
        if shown:
            records = {r["户编号"]: r[RELIEF_HEADER] for r in household_records(sheet)}
            mine = frame.filter(pl.col("township") == "城关镇")
            expected = dict(mine.select("household_id", "relief_estimate").iter_rows())
            assert {h: records[h] for h in expected} == {
                h: None if v is None else float(v) for h, v in expected.items()
            }
            assert table[header].to_list() == ["17100.00", "0.00", None]
            assert "醴陵" not in about and "20,000–50,000 元 35%" in about


def test_csv_is_byte_identical_when_only_the_run_differs(tmp_path: Path) -> None:
    run_publish(tmp_path / "a", county())
    run_publish(tmp_path / "b", county().with_columns(pl.lit("another-run").alias("run_id")))
    _, first = township_paths(tmp_path / "a" / PERIOD, "石羊塘镇", PERIOD)
    _, second = township_paths(tmp_path / "b" / PERIOD, "石羊塘镇", PERIOD)
    assert first.read_bytes() == second.read_bytes()


def test_xlsx_layout(tmp_path: Path) -> None:
    run_publish(tmp_path, county(), made=dt.date(2026, 11, 5))
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["疑似监测户", "家庭成员及风险依据", "填报说明", "说明"]
    sheet = book["疑似监测户"]
    # A 台账's frame: the title and the township, period and date in the sheet itself.
    assert sheet["A1"].value == "疑似监测对象核实台账"
    info = str(sheet["A2"].value)
    assert "乡镇：城关镇" in info and "2026年10月" in info and "生成日期：2026-11-05" in info
    assert "共 3 户" in info and "监测标准：6,000.00 元/人·年" in info
    top = header_row(sheet)
    headers = headers_of(sheet)
    assert headers[0] == "序号"
    assert {"户编号", "户主姓名", "户主身份证号", "家庭情况", "风险点及金额", "纳入状态"} <= set(
        headers
    )
    assert headers[-3:] == list(FEEDBACK_HEADERS)
    # What a village needs on paper: the amounts are in the 风险点 cell, not columns of their own.
    assert not {"风险代码", "刚性支出合计", "医疗自付合计", "监测标准", "村"} & set(headers)
    assert sheet.freeze_panes == f"A{top + 1}"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.paperSize == 9
    assert sheet.print_title_rows == f"$1:${top}"
    rows = household_records(sheet)
    colour = next(h for h in headers if str(h).startswith("预警"))
    for r in household_rows(sheet):
        cell = sheet.cell(r, headers.index(colour) + 1)
        assert cell.fill.fgColor.rgb == "FF" + COLOUR_FILLS[cell.value].lstrip("#")
    first = next(r for r in rows if r["户编号"] == "H001")
    assert first["风险点及金额"] == (
        "因病：住院自付 26,800.50 元\n收入低于监测线：人均 5,400.50 元"
    )
    assert first["家庭情况"] == "脱贫户 · 3人\n有劳动力\n人均 5,400.50 元"

    def width(header: str) -> float:
        letter = sheet.cell(top, headers.index(header) + 1).column_letter
        return sheet.column_dimensions[letter].width

    assert width("风险点及金额") > width("户编号")
    assert width("户主身份证号") >= 18


def test_households_are_grouped_by_village_each_on_its_own_pages(tmp_path: Path) -> None:
    rows = [
        household("城关镇", "H002", "蓝", ("EDUCATION",), village="西湖村"),
        household("城关镇", "H001", "红", ("MEDICAL", "LOW_INCOME"), village="东风村"),
        household("城关镇", "H004", "黄", ("LOW_INCOME",), village="西湖村"),
        household("城关镇", "H003", "蓝", ("MEDICAL",), village="东风村", status="已在监测"),
        household("城关镇", "H005", "红", ("MEDICAL", "SPENDING"), village="西湖村"),
    ]
    run_publish(tmp_path, suspects_frame(rows))
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    sheet = openpyxl.load_workbook(xlsx)["疑似监测户"]
    records = household_records(sheet)
    # Villages in the order of their first 户编号, red, yellow, blue within each; 序号 runs on.
    assert [r["户编号"] for r in records] == ["H001", "H003", "H005", "H004", "H002"]
    assert [r["序号"] for r in records] == [1, 2, 3, 4, 5]
    lines = [str(r[0]) for r in sheet.iter_rows(values_only=True) if r[0] is not None]
    assert "东风村（2 户）" in lines and "西湖村（3 户）" in lines
    subtotals = [line for line in lines if "小计" in line]
    assert subtotals == [
        "东风村小计：共 2 户：红色 1 户，黄色 0 户，蓝色 1 户。需填写核实结果 1 户；"
        "另有 1 户已在监测或已确认待录入，可不填。",
        "西湖村小计：共 3 户：红色 1 户，黄色 1 户，蓝色 1 户。需填写核实结果 3 户。",
    ]
    signed = [line for line in lines if line.startswith(("核实人", "填报单位"))]
    assert len(signed) == 4  # two lines at the foot of each village
    assert all("审核人" in s and "乡镇负责人" in s for s in signed if s.startswith("核实人"))
    # A page break before the second village: each village is handed its own pages.
    west = next(
        i for i, r in enumerate(sheet.iter_rows(values_only=True), 1) if r[0] == "西湖村（3 户）"
    )
    assert [b.id for b in sheet.row_breaks.brk] == [west - 1]


def test_the_list_is_safe_to_fill_in(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    book = openpyxl.load_workbook(xlsx)
    sheet = book["疑似监测户"]
    assert sheet.protection.sheet and not sheet.protection.password
    headers = headers_of(sheet)
    answers = {headers.index(h) + 1 for h in FEEDBACK_HEADERS}
    for r in household_rows(sheet):
        for c in range(1, len(headers) + 1):
            assert sheet.cell(r, c).protection.locked == (c not in answers), (r, c)
    validations = {str(v.sqref).split(":")[0][:1]: v for v in sheet.data_validations.dataValidation}
    result_col = get_column_letter(headers.index("核实结果") + 1)
    date_col = get_column_letter(headers.index("核实日期") + 1)
    assert validations[result_col].type == "list"
    assert validations[result_col].formula1 == '"确认纳入,不予纳入,待核实"'
    dates = validations[date_col]
    assert dates.type == "date" and dates.operator in (None, "between")  # the default
    assert "2026-10-01" in str(dates.error) and "2026-12-31" in str(dates.error)
    # Every household row is covered by both validations.
    for v in (validations[result_col], dates):
        covered = {c.row for rng in v.sqref.ranges for c in _cells(rng)}
        assert set(household_rows(sheet)) <= covered
    for other in ("家庭成员及风险依据", "填报说明", "说明"):
        assert book[other].protection.sheet
    guide = "\n".join(str(r[1]) for r in book["填报说明"].iter_rows(values_only=True) if r[1])
    assert "下拉列表" in guide and "2026-10-01" in guide and "不要另存为 CSV" in guide


def test_details_sheet_lists_members_with_their_evidence(tmp_path: Path) -> None:
    suspects = county()
    run_publish(tmp_path, suspects)
    xlsx, _ = township_paths(tmp_path / PERIOD, "石羊塘镇", PERIOD)
    sheet = openpyxl.load_workbook(xlsx)["家庭成员及风险依据"]
    headers = headers_of_details(sheet)
    assert headers[:4] == ["序号", "户主", "姓名", "与户主\n关系"]
    assert {"身份证号", "风险点", "数据\n来源", "记录编号", "日期", "金额（元）", "说明"} <= set(
        headers
    )
    rows = detail_records(sheet)
    assert [r["与户主\n关系"] for r in rows] == ["户主", "配偶"]
    head, spouse = rows
    # 序号 and 户主 link the household to the first sheet, on its first row.
    assert (head["序号"], head["户主"]) == (1, "张三") and spouse["序号"] is None
    assert (head["风险点"], head["数据\n来源"], head["记录编号"]) == ("因病", "医保", "JS-H004")
    assert head["日期"] == dt.datetime(2026, 9, 3)
    assert head["金额（元）"] == pytest.approx(12345.60)
    assert spouse["风险点"] is None and spouse["残疾\n等级"] == "三级"


def test_record_references_are_readable_and_masked_where_they_embed_an_id(
    tmp_path: Path,
) -> None:
    suspects = county().filter(pl.col("household_id") == "H001")
    head = suspects["head_id_number"][0]
    evidence = pl.DataFrame(
        [
            {
                **evidence_for(suspects).row(0, named=True),
                "risk_code": code,
                "source": source,
                "source_key": key,
            }
            for code, source, key in [
                ("ASSISTANCE", "civil", f"{head}|临时救助|发放|2026-05-18"),
                ("ACCIDENT", "traffic", f"SG2026030800011|{head}"),
                ("DISABILITY", "disability", f"{head}42"),
            ]
        ],
        schema=EVIDENCE_SCHEMA,
    )
    publish.publish(tmp_path, suspects, evidence, members_for(suspects), meta())
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    rows = detail_records(openpyxl.load_workbook(xlsx)["家庭成员及风险依据"])
    references = [r["记录编号"] for r in rows if r["记录编号"]]
    assert sorted(references) == sorted(
        [
            "临时救助 · 发放 · 2026-05-18",
            "SG2026030800011",
            head[:6] + "********" + head[-4:] + "42",
        ]
    )


def test_about_sheet_tells_the_officer_what_the_list_is(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    sheet = openpyxl.load_workbook(xlsx)["说明"]
    text = "\n".join(str(c) for row in sheet.iter_rows(values_only=True) for c in row if c)
    assert "共 3 户：红色 1 户，黄色 1 户，蓝色 1 户" in text
    assert RUN in text and "2026年10月" in text
    assert "监测标准（元/人·年）：6,000" in text and "劳动年龄（周岁）：16–59" in text
    assert "沿用" in text  # the stale-line warning
    assert "交警（交通事故伤亡）：本期未收到" in text
    assert "名单只用到此前各期报送的记录" in text and "因意外" in text
    assert "入户核实" in text and "已确认待录入" in text


def test_a_file_named_after_a_person_shows_the_id_masked_on_the_lists(tmp_path: Path) -> None:
    """A department's file named by a person's ID number (a late claim) is named on every
    list's 说明 sheet when the stored delivery stands in for it: never with the full ID."""
    named = "医保_430624197601021372补报.csv"
    note = delivery_note(
        "medical", "kept", named, named, dt.datetime(2026, 10, 3, 9, 0), None, english=True
    )
    assert "430624197601021372" not in note and "430624********1372" in note
    run_publish(tmp_path, county(), delivery_notes={"medical": delivery_note(
        "medical", "held", named, named, dt.datetime(2026, 10, 3, 9, 0))})  # fmt: skip
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    text = "\n".join(
        str(c)
        for row in openpyxl.load_workbook(xlsx)["说明"].iter_rows(values_only=True)
        for c in row
    )
    assert "数据提示" in text and "430624********1372" in text
    assert "430624197601021372" not in text


def test_officer_facing_text_is_chinese_only(tmp_path: Path) -> None:
    """The stale-line warning the console gives in both languages is Chinese on the lists."""
    run_publish(tmp_path, county(), demo=True)
    xlsx, _ = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    book = openpyxl.load_workbook(xlsx)
    text = "\n".join(
        str(c) for ws in book for row in ws.iter_rows(values_only=True) for c in row if c
    )
    assert "监测标准沿用" in text
    assert "stale" not in text and "synthetic" not in text and "yuan" not in text
    about = dict((r[0], r[1]) for r in book["说明"].iter_rows(values_only=True) if r[0] is not None)
    # 批次号 at the foot, said to be the county's, not the township's business.
    labels = [r[0] for r in book["说明"].iter_rows(values_only=True) if r[0]]
    assert labels.index("批次号") > labels.index("个人信息")
    assert about["批次号"] == RUN
    # What each colour asks, and that blue needs an answer as the overdue count has it.
    assert "填写核实结果" in about["蓝色"]


def test_a_township_with_no_household_gets_an_empty_list(tmp_path: Path) -> None:
    run_publish(tmp_path, county(), all_townships=["城关镇", "石羊塘镇", "白兔潭镇"])
    xlsx, csv = township_paths(tmp_path / PERIOD, "白兔潭镇", PERIOD)
    assert pl.read_csv(csv, infer_schema=False).height == 0
    book = openpyxl.load_workbook(xlsx)
    assert household_rows(book["疑似监测户"]) == []
    assert any("无需填报" in str(r[0]) for r in book["疑似监测户"].iter_rows(values_only=True))
    assert book.active is not None and book.active.title == "说明"
    about = [c for row in book["说明"].iter_rows(values_only=True) for c in row if c]
    assert any("0 户" in str(c) for c in about)


def test_formula_like_text_stays_text(tmp_path: Path) -> None:
    rows = [
        household("城关镇", "H001", head='=HYPERLINK("http://x","y")', village="+1"),
        household("城关镇", "H002", head="@SUM(A1)", village="-2"),
    ]
    run_publish(tmp_path, suspects_frame(rows))
    xlsx, csv = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    sheet = openpyxl.load_workbook(xlsx)["疑似监测户"]
    headers = headers_of(sheet)
    names = {sheet.cell(r, headers.index("户主姓名") + 1) for r in household_rows(sheet)}
    assert {c.value for c in names} == {row["head_name"] for row in rows}
    # The villages head their groups: '+1（1 户）', '+1小计：…'.
    villages = [
        sheet.cell(r, 1)
        for r in range(1, sheet.max_row + 1)
        if str(sheet.cell(r, 1).value or "").startswith(("+1", "-2"))
    ]
    assert len(villages) == 4
    for cell in [*names, *villages]:
        assert cell.data_type == "s"
        assert cell.quotePrefix
    table = pl.read_csv(csv, infer_schema=False)
    assert table["户主姓名"].to_list() == ['\'=HYPERLINK("http://x","y")', "'@SUM(A1)"]
    assert table["村"].to_list() == ["'+1", "'-2"]


def test_mask_ids_masks_every_id_in_the_files_for_people(tmp_path: Path) -> None:
    # Some counties number households by the head's ID number.
    first = pl.col("household_id") == "H001"
    suspects = county().with_columns(
        pl.when(first)
        .then(pl.col("head_id_number"))
        .otherwise(pl.col("household_id"))
        .alias("household_id")
    )
    evidence = evidence_for(suspects).with_columns(
        pl.concat_str([pl.col("id_number"), pl.lit("12")]).alias("source_key")  # certificate
    )
    publish.publish(tmp_path, suspects, evidence, members_for(suspects), meta(mask_ids=True))
    xlsx, csv = township_paths(tmp_path / PERIOD, "城关镇", PERIOD)
    full_ids = set(members_for(suspects)["id_number"].to_list())
    text = csv.read_text(encoding="utf-8-sig")
    book = openpyxl.load_workbook(xlsx)
    cells = [str(c) for ws in book for row in ws.iter_rows(values_only=True) for c in row if c]
    for id_number in full_ids:
        assert id_number not in text
        assert not any(id_number in c for c in cells)
    head = suspects["head_id_number"][0]
    assert ids.mask(head) in text
    assert head[:6] + "********" + head[-4:] + "12" in cells
    # The parquet files are for analysts joining on IDs: never masked.
    published = pl.read_parquet(tmp_path / PERIOD / "suspects.parquet")
    assert published["head_id_number"].to_list() == suspects["head_id_number"].to_list()


# ---------------------------------------------------------------- names and paths


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "c:d", "\x07", "..", "CON", "nul.txt", "a\\b", " ", "x\u202egpj.exe"]
)
def test_township_names_from_data_stay_inside_the_output_folder(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    run_publish(out, suspects_frame([household(name, "H001")]))
    written = files_under(tmp_path)
    assert len(written) == 5  # suspects, evidence and candidates parquet, xlsx, csv
    for path in written:
        assert path.resolve().is_relative_to((out / PERIOD).resolve())
        part = path.relative_to(out / PERIOD).parts[0]
        assert part not in ("..", ".", "") and part.upper() not in ("CON", "NUL.TXT")
        assert not any(ch in part for ch in "/\\:\x07\u202e")
    xlsx, csv = township_paths(out / PERIOD, name, PERIOD)
    about = openpyxl.load_workbook(xlsx)["说明"]
    # The real name stays inside the file (XML carries a control character as _xHHHH_,
    # which Excel shows as the character and openpyxl leaves as it is).
    assert about["B3"].value == re.sub(r"[\x00-\x1f]", lambda m: f"_x{ord(m[0]):04X}_", name)
    assert pl.read_csv(csv, infer_schema=False)["乡镇"][0] == name


def test_safe_names_are_stable_and_distinct() -> None:
    assert safe_name("城关镇") == "城关镇"
    assert safe_name("a/b") == safe_name("a/b")
    assert safe_name("a/b") != safe_name("a:b")
    assert len(safe_name("镇" * 300)) < 60


def test_a_name_equal_to_another_names_cleaned_folder_gets_its_own(tmp_path: Path) -> None:
    collide = safe_name("a/b")  # a safe name that happens to be the folder of "a/b"
    rows = sorted(
        [household(collide, "H001"), household("a/b", "H002")], key=lambda r: r["township"]
    )
    run_publish(tmp_path, suspects_frame(rows))
    folders = township_folders([collide, "a/b"])
    assert len({folder_key(f) for f in folders.values()}) == 2
    for name, folder in folders.items():
        xlsx, _ = township_paths(tmp_path / PERIOD, name, PERIOD, folder)
        about = openpyxl.load_workbook(xlsx)["说明"]
        assert about["B3"].value == name


# Situation 9 of issue 12: the same township name in other letter case or width.
TWINS = ["Chengguan", "CHENGGUAN", "Ｃｈｅｎｇｇｕａｎ"]


def test_townships_differing_only_in_case_or_width_get_distinct_folders(tmp_path: Path) -> None:
    rows = [household(t, f"H00{i}") for i, t in enumerate(sorted(TWINS), start=1)]
    rows.append(household("城关镇", "H009"))
    suspects = suspects_frame(sorted(rows, key=lambda r: r["township"]))
    written = run_publish(tmp_path, suspects)
    folders = township_folders([*TWINS, "城关镇"])
    assert folders["城关镇"] == "城关镇"  # a name without a twin keeps its plain folder
    twin_folders = [folders[t] for t in TWINS]
    assert len({folder_key(f) for f in twin_folders}) == 3
    assert all(f.startswith(safe_name(t) + "_") for t, f in zip(TWINS, twin_folders, strict=True))
    # Deterministic: the same names in another order give the same folders.
    assert township_folders([*reversed(TWINS), "城关镇"]) == folders
    listed = {p.parent.name for p in written if p.suffix == ".xlsx"}
    assert set(twin_folders) <= listed
    for township, folder in zip(TWINS, twin_folders, strict=True):
        xlsx, csv = township_paths(tmp_path / PERIOD, township, PERIOD, folder)
        assert pl.read_csv(csv, infer_schema=False)["乡镇"].to_list() == [township]
        about = {
            r[0]: r[1] for r in openpyxl.load_workbook(xlsx)["说明"].iter_rows(values_only=True)
        }
        assert f"文件夹：{folder}" in about["文件夹"]
        for other, other_folder in zip(TWINS, twin_folders, strict=True):
            if other != township:
                assert f"「{other}」在文件夹 {other_folder}" in about["文件夹"]
    # A one-township re-run finds the same folder.
    again = run_publish(
        tmp_path, suspects, townships=["CHENGGUAN"], all_townships=[*TWINS, "城关镇"]
    )
    assert {p.parent.name for p in again if p.suffix == ".xlsx"} == {folders["CHENGGUAN"]}


# ---------------------------------------------------------------- safety of the files


def test_files_are_private(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_publish(out, county())
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_a_failed_publish_leaves_the_previous_files_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_publish(tmp_path, county())
    before = {p: p.read_bytes() for p in files_under(tmp_path)}

    def half_written(path: Path, *args: Any) -> None:
        path.write_bytes(b"PK\x03\x04 half a workbook")
        raise OSError("disk full")

    monkeypatch.setattr(publish, "write_list_workbook", half_written)
    changed = county().with_columns(pl.lit("李四").alias("head_name"))
    with pytest.raises(OSError, match="disk full"):
        run_publish(tmp_path, changed)
    assert {p: p.read_bytes() for p in files_under(tmp_path)} == before


def test_publishing_leaves_no_temporary_files(tmp_path: Path) -> None:
    written = run_publish(tmp_path, county())
    assert sorted(written) == files_under(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_republishing_the_same_run_gives_the_same_bytes(tmp_path: Path) -> None:
    run_publish(tmp_path / "a", county())
    run_publish(tmp_path / "b", county())
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in files_under(tmp_path / "a")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in files_under(tmp_path / "b")}
    assert first == second


# ---------------------------------------------------------------- re-runs


def test_one_township_rerun_replaces_only_its_rows(tmp_path: Path) -> None:
    run_publish(tmp_path / "rerun", county())
    corrected = suspects_frame(
        [
            household("城关镇", "H001", "红", ("MEDICAL", "LOW_INCOME"), rigid="26800.50"),
            household("城关镇", "H003", "蓝", ("EDUCATION",), village="南山村"),
            household("城关镇", "H005", "蓝", ("DROPOUT",)),
            household("石羊塘镇", "H004", "红", ("ACCIDENT", "SPENDING"), head="改名"),
        ]
    )
    # The CLI screens the whole county and re-publishes one township from the result.
    written = publish.publish(
        tmp_path / "rerun",
        corrected,
        evidence_for(corrected),
        members_for(corrected),
        meta(),
        townships=["城关镇"],
    )
    assert {p.parent.name for p in written} == {PERIOD, "城关镇"}
    rerun = pl.read_parquet(tmp_path / "rerun" / PERIOD / "suspects.parquet")
    assert rerun["household_id"].to_list() == ["H001", "H003", "H005", "H004"]
    assert rerun.filter(pl.col("household_id") == "H004")["head_name"][0] == "张三"

    # Same rows, same order as a full run with the 城关镇 correction alone.
    only = corrected.filter(pl.col("township") == "城关镇")
    expected = pl.concat([only, county().filter(pl.col("township") == "石羊塘镇")])
    run_publish(tmp_path / "full", expected)
    for name in ("suspects.parquet", "evidence.parquet"):
        full = pl.read_parquet(tmp_path / "full" / PERIOD / name)
        assert pl.read_parquet(tmp_path / "rerun" / PERIOD / name).equals(full)


def test_a_township_rerun_over_a_file_published_before_the_relief_column(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    stored = tmp_path / PERIOD / "suspects.parquet"
    pl.read_parquet(stored).drop("relief_estimate").write_parquet(stored)  # an older version's
    run_publish(tmp_path, county().filter(pl.col("township") == "城关镇"), townships=["城关镇"])
    merged = pl.read_parquet(stored)
    assert merged.schema == SUSPECTS_SCHEMA and merged["relief_estimate"].null_count() == 4
    assert merged["household_id"].to_list() == ["H001", "H002", "H003", "H004"]


def test_rerun_of_an_unknown_township_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown township"):
        run_publish(tmp_path, county(), townships=["城关真"], all_townships=["城关镇", "石羊塘镇"])
    assert not (tmp_path / PERIOD / "城关真").exists()


def test_rerun_of_a_township_inserts_it_in_list_order(tmp_path: Path) -> None:
    base = county().filter(pl.col("township") != "城关镇")
    run_publish(tmp_path, base)
    run_publish(tmp_path, county().filter(pl.col("township") == "城关镇"), townships=["城关镇"])
    published = pl.read_parquet(tmp_path / PERIOD / "suspects.parquet")
    assert published["household_id"].to_list() == ["H001", "H002", "H003", "H004"]


def test_a_full_rerun_removes_lists_of_townships_no_longer_listed(tmp_path: Path) -> None:
    run_publish(tmp_path, county())
    stale_dir = township_paths(tmp_path / PERIOD, "石羊塘镇", PERIOD)[0].parent
    (stale_dir / "核实记录.docx").write_bytes(b"kept: not ours")
    run_publish(tmp_path, county().filter(pl.col("township") == "城关镇"))
    assert [p.name for p in stale_dir.iterdir()] == ["核实记录.docx"]
    shutil.rmtree(stale_dir)
    run_publish(tmp_path, county())
    run_publish(tmp_path, county().filter(pl.col("township") == "城关镇"))
    assert not stale_dir.exists()
    assert township_paths(tmp_path / PERIOD, "城关镇", PERIOD)[0].exists()


# ---------------------------------------------------------------- risk-removal candidates


def candidates_frame(*rows: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "period": PERIOD,
                "township": township,
                "village": "东风村",
                "household_id": hid,
                "head_name": "李四",
                "head_id_number": "430624198001011234",
                "household_type": "监测户",
                "household_size": 3,
                "per_capita_income": Decimal("9000.00"),
                "monitoring_line": Decimal("6000.00"),
                "labour_capacity": "有劳动力",
                "periods_checked": "2026-05、2026-06、2026-07、2026-08、2026-09、2026-10",
                "last_risk_period": "2026-03",
                "last_risk_labels": "=因病",
                "run_id": "R-1",
            }
            for township, hid in rows
        ],
        schema=CANDIDATES_SCHEMA,
    )


def test_candidates_are_a_second_list_only_where_a_township_has_some(tmp_path: Path) -> None:
    out = tmp_path / "out"
    suspects = suspects_frame([household("城关镇", "H001"), household("白马乡", "H002")])
    candidates = candidates_frame(("城关镇", "H101"), ("城关镇", "H102"))
    publish.publish(
        out,
        suspects,
        evidence_for(suspects),
        members_for(suspects),
        meta(mask_ids=True),
        candidates=candidates,
    )
    xlsx, csv = candidate_paths(out / PERIOD, "城关镇", PERIOD)
    assert xlsx.is_file() and csv.is_file()
    assert not any((out / PERIOD / "白马乡").glob(f"{CANDIDATES_PREFIX}_*"))
    table = pl.read_csv(csv, infer_schema=False)
    assert table.columns == [
        *(h for k, h in CANDIDATE_HEADERS.items() if k != "run_id"),
        "消除意见",
        "意见日期",
        "备注",
    ]
    assert table["户编号"].to_list() == ["H101", "H102"]
    assert table["户主身份证号"].to_list() == ["430624********1234"] * 2
    assert table["最近风险点"].to_list() == ["'=因病"] * 2  # never a formula
    sheet = openpyxl.load_workbook(xlsx)[SHEET_CANDIDATES]
    assert sheet["A1"].value == "风险消除候选台账"
    headers = headers_of(sheet)
    assert headers[:2] == ["序号", "户编号"]
    assert headers[-3:] == ["消除意见", "意见日期", "备注"]
    records = household_records(sheet)
    assert [r["户编号"] for r in records] == ["H101", "H102"]
    # Empty fields are said: 无 (no earlier answer).
    assert {r["上次消除意见"] for r in records} == {"无"}
    assert records[0]["已核查无风险期次"] == "2026-05 至 2026-10\n共 6 期"
    assert records[0]["最近有风险期次\n及风险点"] == "2026-03：=因病"
    assert openpyxl.load_workbook(xlsx)["说明"]["A1"].value == "风险消除候选名单说明"
    about = openpyxl.load_workbook(township_paths(out / PERIOD, "城关镇", PERIOD)[0])
    said = [r[1] for r in about["说明"].iter_rows(values_only=True) if r[0] == "风险消除候选"]
    assert said and "2 户" in said[0]
    stored = pl.read_parquet(out / PERIOD / CANDIDATES_FILE)
    assert stored["household_id"].to_list() == ["H101", "H102"]

    # A township re-run without candidates leaves no old candidates list behind.
    publish.publish(
        out,
        suspects.filter(pl.col("township") == "城关镇"),
        evidence_for(suspects),
        members_for(suspects),
        meta(mask_ids=True),
        townships=["城关镇"],
        candidates=candidates.clear(),
    )
    assert not xlsx.exists() and not csv.exists()
    assert pl.read_parquet(out / PERIOD / CANDIDATES_FILE).height == 0


def test_the_about_sheet_words_the_rules_over_the_parameters_in_force() -> None:
    """A county with a 6-month window and grade 1 only as severe reads that on its sheet,
    as its 筛查参数 lines say (the meanings are the rules' own, not fixed text)."""
    resolved = (
        params.load().override({"window_months": 6, "severe_disability_grades": [1]}).at(PERIOD)
    )
    lines = dict(about_lines("城关镇", county(), meta(params=resolved)))
    text = "\n".join(t for _, t in about_lines("城关镇", county(), meta(params=resolved)))
    assert "近6个月家庭成员住院个人自付费用" in text and "近12个月" not in text
    assert "新发重度（1级）残疾人证" in text
    assert "筛查时间窗口（月）：6" in text
    assert lines["风险点"].startswith("因病：")
