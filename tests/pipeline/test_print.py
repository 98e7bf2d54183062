"""Every sheet of every published workbook prints on A4 with its body at 9 points or more.

The size is worked out from the files (tests/support/print_size.py) for every workbook the
demo publishes and for a township as wide as a list gets (every optional column, masked
IDs with the 核对码, long names, every risk point); `make check-xlsx` renders them with
LibreOffice and measures the type on the pages (`test_libreoffice_…`, with a 30,000-household
county's largest township too).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from screening import config, ids, params
from screening.contract import resource_dir
from screening.feedback.imports import import_feedback
from screening.pipeline.run import run_period
from screening.publish import lists as publish
from screening.publish.columns import (
    CANDIDATES_SCHEMA,
    EVIDENCE_SCHEMA,
    MEMBERS_SCHEMA,
    SUSPECTS_SCHEMA,
    PublishMeta,
)
from screening.publish.layout import MIN_PRINT_POINTS
from screening.publish.lists import DEMO_COLUMN, DEMO_VALUE
from screening.publish.sheets import CONTACTS_SCHEMA
from screening.rules import RISK_LABELS
from tests.support.common import ingest_year_before
from tests.support.print_size import SheetPrint, workbook_prints

A4 = 9


def demo_periods() -> list[str]:
    """The sample's screened months: its folders but the roster of a year before."""
    inbox = config.demo_inbox()
    year_before = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))["year_before"]
    months = (p.name for p in inbox.iterdir() if re.fullmatch(r"\d{4}-\d{2}", p.name))
    return sorted(m for m in months if m != year_before["period"])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What `make demo` does: the roster of a year before ingested, the bundled county's
    months in order, the last with Liling's 防贫保 schedule (its lists carry one more
    column), the sample township's answers imported after the first."""
    work = tmp_path_factory.mktemp("demo")
    db, out, inbox = work / "screening.duckdb", work / "out", config.demo_inbox()
    ingest_year_before(db, inbox)
    liling = resource_dir("parameters") / "examples" / "liling.yaml"
    for period in demo_periods():
        relief = {"params_file": liling} if period == demo_periods()[-1] else {}
        run_period(db=db, inbox=inbox, out=out, period=period, demo=True, **relief)
        answers = inbox / "feedback" / period
        for path in sorted(answers.iterdir()) if answers.is_dir() else []:
            import_feedback(db, path, period)
    return {"db": db, "out": out, "root": work}


@pytest.fixture(scope="module")
def demo_lists(demo_run: dict[str, Path]) -> Path:
    """The output folder of the demo."""
    return demo_run["out"]


def assert_readable(prints: list[SheetPrint], where: str) -> None:
    for p in prints:
        assert p.paper == A4, f"{where} {p.sheet}: paper {p.paper}"
        assert p.effective_points >= MIN_PRINT_POINTS, (
            f"{where} {p.sheet}: {p.body_points:g} pt × {p.scale:.0%} = "
            f"{p.effective_points:.2f} pt on paper"
        )


def test_every_sheet_of_every_demo_workbook_prints_at_9_points_or_more(demo_lists: Path) -> None:
    workbooks = sorted(demo_lists.rglob("*.xlsx"))
    assert len(workbooks) >= len(demo_periods()) * 8
    for path in workbooks:
        prints = workbook_prints(path)
        if path.parent.name != "departments":  # the departments' workbooks have their own sheets
            assert [p.sheet for p in prints][:2] == ["疑似监测户", "家庭成员及风险依据"] or (
                prints[0].sheet in ("风险消除候选", "身份核对")
            )
        assert_readable(prints, path.name)


def test_the_demos_csv_says_it_is_a_sample_and_still_comes_back(
    demo_run: dict[str, Path],
) -> None:
    period = demo_periods()[-1]
    csv = sorted((demo_run["out"] / period).rglob("疑似监测对象_*.csv"))[0]
    table = pl.read_csv(csv, infer_schema=False)
    assert table.columns[0] == DEMO_COLUMN and set(table[DEMO_COLUMN]) == {DEMO_VALUE}
    filled = table.with_columns(
        pl.lit("待核实").alias("核实结果"), pl.lit("2026-11-30").alias("核实日期")
    )
    target = demo_run["root"] / csv.name
    filled.write_csv(target, include_bom=True)
    result = import_feedback(demo_run["db"], target, period)
    assert (result.accepted + result.unchanged, result.rejected) == (table.height, 0)
    xlsx = csv.with_suffix(".xlsx")
    book = openpyxl.load_workbook(xlsx)
    for sheet in book.worksheets:  # every sheet, on screen and on every printed page
        assert "示例数据" in str(sheet["A1"].value)
        assert "示例数据" in str(sheet.oddHeader.center.text)


# ---------------------------------------------------------------- the widest list there is


PERIOD = "2026-10"


def person_id(n: int) -> str:
    first17 = f"430624{1950 + n % 50}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + ids.check_digit(first17)


def widest_township(n: int = 120) -> dict[str, pl.DataFrame]:
    """A township whose every cell is as wide as the lists' cells get: households numbered
    by the head's 18-digit ID (masked, so the 核对码 is printed), four-character names,
    every risk point with six-figure amounts, the earlier decision, long village names and
    every optional roster column."""
    rows, evidence, members, contacts, candidates = [], [], [], [], []
    codes = list(RISK_LABELS)
    for i in range(n):
        head = person_id(i)
        hid = head  # some counties number households by the head's ID number
        village = f"{'长寿坪' * (1 + i % 2)}村" if i % 3 else "十八洞村"
        rows.append(
            {
                "period": PERIOD,
                "township": "欧阳湾镇",
                "village": village,
                "household_id": hid,
                "head_name": "欧阳娜娜",
                "head_id_number": head,
                "household_type": "一般农户",
                "household_size": 12,
                "per_capita_income": Decimal("1234567.89"),
                "monitoring_line": Decimal("10000.00"),
                "colour": "红",
                "risk_codes": codes,
                "risk_labels": ";".join(RISK_LABELS.values()),
                "medical_oop": Decimal("9876543.21"),
                "education_cost": Decimal("987654.32"),
                "accident_loss": Decimal("9876543.21"),
                "rigid_expenditure": Decimal("19740740.74"),
                "labour_capacity": "无劳动力",
                "listing_status": "已确认待录入",
                "run_id": "R",
                "last_decision": "不予纳入",
                "last_decision_date": dt.date(2026, 9, 30),
            }
        )
        contacts.append(
            {
                "household_id": hid,
                "group": "第十二村民小组",
                "address": f"{village}第十二村民小组长寿坪路128号附3号",
                "phone": "13812345678",
                "helper": "欧阳建国（县乡村振兴局）",
            }
        )
        for j, code in enumerate(codes):
            evidence.append(
                {
                    "period": PERIOD,
                    "household_id": hid,
                    "id_number": head,
                    "name": "欧阳娜娜",
                    "risk_code": code,
                    "source": "civil",
                    "source_key": f"{head}|临时救助|发放|2026-05-{j + 10}",
                    "rule_date": dt.date(2026, 5, 10 + j),
                    "amount": Decimal("9876543.21"),
                    "detail": "民政: 临时救助 发放; 金额 9876543.21 元; 因病致贫，长期住院治疗",
                }
            )
        members.append(
            {
                "period": PERIOD,
                "household_id": hid,
                "id_number": head,
                "name": "欧阳娜娜",
                "relation": "户主",
                "age": 101,
                "is_head": True,
                "disability_grade": 1,
            }
        )
        candidates.append(
            {
                **{k: rows[-1][k] for k in ("period", "township", "village", "head_name")},
                "household_id": person_id(10_000 + i),
                "head_id_number": person_id(10_000 + i),
                "household_type": "监测户",
                "household_size": 12,
                "per_capita_income": Decimal("1234567.89"),
                "monitoring_line": Decimal("10000.00"),
                "labour_capacity": "弱劳动力",
                "periods_checked": "、".join(f"2026-{m:02d}" for m in range(5, 11)),
                "last_risk_period": "2026-03",
                "last_risk_labels": ";".join(RISK_LABELS.values()),
                "run_id": "R",
                "last_removal_decision": "暂不消除",
                "last_removal_decision_date": dt.date(2026, 9, 30),
            }
        )
    return {
        "suspects": pl.DataFrame(rows, schema=SUSPECTS_SCHEMA),
        "evidence": pl.DataFrame(evidence, schema=EVIDENCE_SCHEMA),
        "members": pl.DataFrame(members, schema=MEMBERS_SCHEMA),
        "contacts": pl.DataFrame(
            contacts
            + [
                {**c, "household_id": cand["household_id"]}
                for c, cand in zip(contacts, candidates, strict=True)
            ],
            schema=CONTACTS_SCHEMA,
        ),
        "candidates": pl.DataFrame(candidates, schema=CANDIDATES_SCHEMA),
    }


@pytest.fixture(scope="module")
def widest_lists(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    frames = widest_township()
    out = tmp_path_factory.mktemp("widest")
    meta = PublishMeta(
        period=PERIOD,
        run_id="R",
        params=params.load().at(PERIOD),
        sources={"roster": "loaded"},
        mask_ids=True,
        list_key_secret="s" * 32,
        demo=True,
        made=dt.date(2026, 11, 5),
    )
    written = publish.publish(
        out,
        frames["suspects"],
        frames["evidence"],
        frames["members"],
        meta,
        candidates=frames["candidates"],
        contacts=frames["contacts"],
    )
    return [p for p in written if p.suffix == ".xlsx"]


def test_the_widest_township_prints_at_9_points_or_more(widest_lists: list[Path]) -> None:
    assert len(widest_lists) == 2  # the 疑似监测对象 and the 风险消除候选 workbooks
    for path in widest_lists:
        prints = workbook_prints(path)
        assert_readable(prints, path.name)
        # Every optional column is there, and the 核对码 the masked list needs.
        first = prints[0]
        assert first.landscape and first.columns >= 13


# ---------------------------------------------------------------- LibreOffice's pages


CHECK = os.environ.get("CHECK_XLSX") == "1"
ROOT = Path(__file__).resolve().parents[2]
WIDE_CHAR = re.compile(r"^[\u3000-\u303f\u3400-\u9fff\uff01-\uff60]{2,}$")
WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)
HEADING = re.compile(r"^\s*(\S+?)（\d+ 户）\s*$")
SUBTOTAL = re.compile(r"^\s*(\S+?)小计：")


def render(xlsx: Path, folder: Path) -> Path:
    """The workbook as LibreOffice prints it (every sheet), a PDF in `folder`."""
    soffice = shutil.which("soffice")
    assert soffice is not None
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(folder)}  # a private LibreOffice profile
    subprocess.run(
        [soffice, "--headless", "--convert-to", "pdf", "--outdir", str(folder), str(xlsx)],
        check=True,
        capture_output=True,
        timeout=300,
        env=env,
    )
    pdf = folder / xlsx.with_suffix(".pdf").name
    assert pdf.is_file(), f"LibreOffice made no PDF of {xlsx.name}"
    return pdf


def pdf_pages(pdf: Path) -> list[dict[str, Any]]:
    """Each page's smallest type (a run of CJK characters is 1 em per character wide, so
    its width over its length is its size in points) and its lines of text."""
    boxes = subprocess.run(
        ["pdftotext", "-bbox-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    pages = []
    for page in boxes.split("<page ")[1:]:
        sizes = [
            (float(m[2]) - float(m[0])) / len(m[4])
            for m in WORD.findall(page)
            if WIDE_CHAR.match(m[4])
        ]
        pages.append({"points": min(sizes) if sizes else None})
    count = len(pages)
    for i in range(count):
        text = subprocess.run(
            ["pdftotext", "-layout", "-f", str(i + 1), "-l", str(i + 1), str(pdf), "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        pages[i]["lines"] = text.splitlines()
    return pages


def check_pages(pdf: Path) -> list[str]:
    """What is wrong with the rendered pages: type under 9 points, or two villages on one
    page (each village is handed its own pages)."""
    problems = []
    for n, page in enumerate(pdf_pages(pdf), start=1):
        points = page["points"]
        if points is not None and points < MIN_PRINT_POINTS - 0.05:
            problems.append(f"{pdf.name} page {n}: type {points:.2f} pt")
        headings = [m[1] for line in page["lines"] if (m := HEADING.match(line))]
        subtotals = [m[1] for line in page["lines"] if (m := SUBTOTAL.match(line))]
        if len(headings) > 1 or (headings and subtotals and subtotals[0] != headings[-1]):
            problems.append(f"{pdf.name} page {n}: villages {headings} {subtotals} share a page")
    return problems


def county_30000(cache: Path, work: Path) -> Path:
    """A generated county of 30,000 households with the roster's optional columns (its
    inbox cached in `cache`), screened for its three months into `work` by the code under
    test; the last month's output folder."""
    from dev.sample import generate

    periods = ["2026-07", "2026-08", "2026-09"]
    inbox = cache / "inbox"
    if not (inbox / "manifest.json").is_file():
        shutil.rmtree(cache, ignore_errors=True)
        generate(inbox, 30_000, periods, seed=20260930, contacts=True)
    for period in periods:
        run_period(
            db=work / "screening.duckdb",
            inbox=inbox,
            out=work / "out",
            period=period,
            accept_held=("roster", "medical", "education", "traffic", "civil", "disability"),
        )
    return work / "out" / periods[-1]


@pytest.mark.slow
@pytest.mark.skipif(not CHECK, reason="renders with LibreOffice: run `make check-xlsx`")
def test_libreoffice_renders_every_sheet_at_9_points_with_a_village_a_page(
    demo_lists: Path, widest_lists: list[Path], tmp_path: Path
) -> None:
    if shutil.which("soffice") is None or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice (soffice) or poppler-utils (pdftotext) is not installed")
    pdfs = ROOT / ".check-xlsx" / "pdf"
    shutil.rmtree(pdfs, ignore_errors=True)
    last = demo_periods()[-1]
    largest = _largest_township(county_30000(ROOT / ".check-xlsx" / "county-30000", tmp_path))
    workbooks = [
        *(("demo", p) for p in sorted((demo_lists / last).rglob("*.xlsx"))),
        *(("county-30000", p) for p in largest),
        *(("widest", p) for p in widest_lists),
    ]
    problems = []
    for where, xlsx in workbooks:
        pdf = render(xlsx, pdfs / where / xlsx.parent.name)
        problems += check_pages(pdf)
        assert_readable(workbook_prints(xlsx), xlsx.name)
    assert not problems, "\n".join(problems)


def _largest_township(out: Path) -> list[Path]:
    """The workbooks of the township with the most listed households."""
    counts = (
        pl.read_parquet(out / "suspects.parquet")
        .group_by("township")
        .len()
        .sort(["len", "township"], descending=[True, False])
    )
    name = counts["township"][0]
    return sorted(p for p in out.rglob("*.xlsx") if p.parent.name == name)
