"""The director's page (run-report.html) and the departments' feedback files, after real
runs of the sample county with one township's answers imported between its periods.

The page must be whole and self-contained: the sections in order, three charts drawn as
SVG with their text kept as text, a row per township, and nothing that a browser would
fetch (no script, stylesheet, font, image or URL of any kind). Chromium, when installed
(`make check-report` installs it), renders it offline and finds nothing loaded but the page.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from dev import check_report

from screening import contract, ids
from screening.db.connect import connect
from screening.inspect.run_report import run_report
from screening.pipeline import run
from screening.publish import departments
from screening.publish.departments import (
    NO_ANSWER,
    SHEET_ABOUT,
    SHEET_ANSWERS,
    SHEET_LISTED,
    SHEET_QUARANTINED,
    SHEET_UNMATCHED,
)
from screening.publish.files import department_path
from screening.publish.history import precision_rows
from screening.rules import EVENT_SOURCES
from tests.support.common import SAMPLE_PERIODS, query
from tests.support.pages import parse, self_contained_problems

FIRST, SECOND, LAST = SAMPLE_PERIODS
ID18 = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
SECTIONS = [
    "summary",
    "charts",
    "townships",
    "precision",
    "deliveries",
    "warnings",
    "parameters",
]


@pytest.fixture(scope="module")
def answered(
    sample_inbox: Path, sample_manifest: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The sample county screened period by period, the sample township's answers on the
    first list imported before the second period is screened. Read-only for tests."""
    from screening.feedback import imports as feedback

    work = tmp_path_factory.mktemp("answered")
    db, out = work / "screening.duckdb", work / "out"
    entry = sample_manifest["feedback"]
    for period in SAMPLE_PERIODS:
        run.run_period(db=db, inbox=sample_inbox, out=out, period=period)
        if period == entry["period"]:
            feedback.import_feedback(db, sample_inbox / entry["file"], period)
    return {"db": db, "out": out, "entry": entry, "inbox": sample_inbox}


# ---------------------------------------------------------------- the page, as a file


def page_of(out: Path, period: str) -> str:
    return (out / period / "run-report.html").read_text(encoding="utf-8")


def test_every_period_has_a_whole_self_contained_page(answered: dict[str, Any]) -> None:
    out, db = answered["out"], answered["db"]
    for period in SAMPLE_PERIODS:
        text = page_of(out, period)
        assert self_contained_problems(text) == [], period
        assert not ID18.search(text), "an ID number in full on the page"
        page = parse(text)
        assert page.sections == SECTIONS, period
        summary = [t for t in page.text["summary"] if t != "摘要"]
        assert len(summary) == 2 and "列出疑似监测户" in summary[0], summary
        # Three charts, each one SVG whose words are text elements the browser draws.
        figures = text.split('<section id="charts">')[1].split("</section>")[0]
        assert figures.count("<figure") == 3 and figures.count("<svg") == 3
        assert "svg.fonttype" not in figures and "<text" in figures
        townships = query(
            db, f"SELECT DISTINCT township FROM screened_households WHERE period = '{period}'"
        )["township"].to_list()
        table = text.split('<section id="townships">')[1].split("</section>")[0]
        assert table.count('<tr class="total">') == 1
        assert table.count("<tr") == len(townships) + 1 + 2  # two header rows
        for town in townships:
            assert f'<td class="name">{town}</td>' in table
        # The charts say the townships' names as text.
        assert all(f">{t}</text>" in figures for t in townships)


def test_the_summary_compares_with_the_month_before(answered: dict[str, Any]) -> None:
    out, db = answered["out"], answered["db"]
    listed = query(db, "SELECT period, count(*) AS n FROM suspects GROUP BY ALL ORDER BY 1")
    counts = dict(listed.rows())
    first = " ".join(parse(page_of(out, FIRST)).text["summary"])
    assert f"列出疑似监测户 {counts[FIRST]} 户" in first and "没有筛查名单，无从比较" in first
    second = " ".join(parse(page_of(out, SECOND)).text["summary"])
    statuses = query(
        db,
        f"SELECT listing_status, count(*) FROM suspects WHERE period = '{SECOND}' GROUP BY ALL",
    )
    by_status = dict(statuses.rows())
    assert f"（{counts[FIRST]} 户）相比" in second
    assert f"新增 {by_status.get('新增', 0)} 户" in second
    assert f"持续 {by_status.get('持续', 0)} 户" in second
    dropped = query(
        db,
        f"SELECT count(*) FROM suspects a WHERE a.period = '{FIRST}' AND a.household_id NOT IN "
        f"(SELECT household_id FROM suspects WHERE period = '{SECOND}')",
    ).item()
    assert (f"{dropped} 户本期不再列出" if dropped else "都仍列出") in second


def test_answers_and_precision_follow_the_townships_answers(answered: dict[str, Any]) -> None:
    db, entry = answered["db"], answered["entry"]
    answers = entry["answers"]
    con = connect(db, read_only=True)
    try:
        report = run_report(con, SECOND)
    finally:
        con.close()
    town = report.history.answers.filter(pl.col("township") == entry["township"]).row(0, named=True)
    results = [a["result"] for a in answers.values()]
    assert town["answered"] == len(answers)
    assert (town["confirmed"], town["declined"], town["pending"]) == (
        results.count("确认纳入"),
        results.count("不予纳入"),
        results.count("待核实"),
    )
    awaiting = query(
        db,
        f"SELECT count(*) FROM suspects WHERE period = '{FIRST}' AND township = "
        f"'{entry['township']}' AND listing_status IN ('新增', '持续')",
    ).item()
    assert town["awaiting"] == awaiting
    # Precision by risk point: each answered household counts for each of its risk points.
    risks = query(
        db, f"SELECT household_id, risk_codes FROM suspects WHERE period = '{FIRST}'"
    ).rows()
    expected: dict[str, dict[str, int]] = {}
    for household, codes in risks:
        result = answers.get(household, {}).get("result")
        for code in codes:
            mine = expected.setdefault(code, {"listed": 0, "confirmed": 0, "declined": 0})
            mine["listed"] += 1
            mine["confirmed"] += result == "确认纳入"
            mine["declined"] += result == "不予纳入"
    rows = {r["key"]: r for r in precision_rows(report.history, "risk_code").iter_rows(named=True)}
    for code, want in expected.items():
        got = rows[code]
        assert (got["listed"], got["confirmed"], got["declined"]) == tuple(want.values()), code
        decided = want["confirmed"] + want["declined"]
        assert got["share"] == (want["confirmed"] / decided if decided else None)
    assert report.history.has_answers
    page = page_of(answered["out"], SECOND)
    assert "确认率" in page.split('<section id="precision">')[1].split("</section>")[0]
    first = page_of(answered["out"], FIRST).split('<section id="precision">')[1]
    assert "尚无乡镇的确认纳入或不予纳入结果" in first.split("</section>")[0]


def test_scale_is_one_table_not_a_warning_per_township(answered: dict[str, Any]) -> None:
    text = (answered["out"] / LAST / "run-report.md").read_text(encoding="utf-8")
    warnings = text.split("## 提示 Warnings")[1].split("\n## ")[0]
    assert warnings.count("规模偏大") <= 1 and warnings.count("规模偏小") <= 1
    assert "法定节假日（不计工作日）" in text and re.search(r"\| \d+ 天 \|", text)
    assert "| invalid\\_id |" not in text  # checks are named in Chinese
    assert "摘要 Summary" in text


# ---------------------------------------------------------------- the departments' files


def _sheet(path: Path, name: str) -> list[dict[str, Any]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(workbook[name].iter_rows(values_only=True))
    finally:
        workbook.close()
    header, body = rows[0], rows[1:]
    return [dict(zip(header, r, strict=True)) for r in body if r[0] != "无"]


def _all_text(path: Path) -> str:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return "\n".join(
            str(v)
            for sheet in workbook.worksheets
            for row in sheet.iter_rows(values_only=True)
            for v in row
            if v is not None
        )
    finally:
        workbook.close()


def test_each_department_hears_what_came_of_its_records(answered: dict[str, Any]) -> None:
    db, out, entry = answered["db"], answered["out"], answered["entry"]
    for period in (FIRST, SECOND):
        folder = out / period
        written = sorted(p.name for p in (folder / "departments").iterdir())
        expected = sorted(
            department_path(folder, contract.label(s), period).name for s in EVENT_SOURCES
        )
        assert written == expected, period
        for source in EVENT_SOURCES:
            path = department_path(folder, contract.label(source), period)
            assert not ID18.search(_all_text(path)), f"{path.name}: an ID number in full"
            listed = _sheet(path, SHEET_LISTED)
            evidence = query(
                db,
                f"SELECT source_key FROM evidence WHERE period = '{period}' AND source = "
                f"'{source}' ORDER BY ALL",
            )["source_key"].to_list()
            assert sorted(ids.mask_text(k) for k in evidence) == sorted(
                r["记录编号"] for r in listed
            ), (period, source)
            rate = query(
                db,
                f"SELECT unmatched FROM match_rates WHERE period = '{period}' AND source = "
                f"'{source}'",
            ).item()
            assert len(_sheet(path, SHEET_UNMATCHED)) == rate, (period, source)
            quarantined = query(
                db,
                f"SELECT count(*) FROM quarantine WHERE period = '{period}' AND source = "
                f"'{source}'",
            ).item()
            assert len(_sheet(path, SHEET_QUARANTINED)) == quarantined, (period, source)
            assert all(r["原因"] and "_" not in r["原因"] for r in _sheet(path, SHEET_QUARANTINED))
            about = dict(
                (r[0], r[1])
                for r in openpyxl.load_workbook(path, read_only=True)[SHEET_ABOUT].iter_rows(
                    values_only=True
                )
                if r[0]
            )
            assert about["部门"] == contract.long_name(source)
    # The second month's files carry the township's answers on the first list.
    answers = entry["answers"]
    for source in EVENT_SOURCES:
        path = department_path(out / SECOND, contract.label(source), SECOND)
        rows = _sheet(path, SHEET_ANSWERS)
        behind = query(
            db,
            f"SELECT DISTINCT e.source_key, e.household_id FROM evidence e WHERE e.period = "
            f"'{FIRST}' AND e.source = '{source}'",
        )
        household_of = {ids.mask_text(k): h for k, h in behind.rows()}
        assert (
            len(rows)
            == query(
                db,
                f"SELECT count(*) FROM evidence WHERE period = '{FIRST}' AND source = '{source}'",
            ).item()
        )
        for row in rows:
            answer = answers.get(household_of[row["记录编号"]])
            assert row["核实结果"] == (answer["result"] if answer else NO_ANSWER)


def test_a_failed_publication_leaves_the_report_and_departments_as_they_were(
    screened: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "county"
    shutil.copytree(screened["db"].parent, work)
    out = work / "out"
    before = {p: p.read_bytes() for p in (out / LAST).rglob("*") if p.is_file()}
    assert any(p.name == "run-report.html" for p in before)
    assert any(p.parent.name == "departments" for p in before)

    def broken(path: Path, *_: Any) -> None:
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(departments, "write_department_workbook", broken)
    with pytest.raises(OSError, match="disk full"):
        run.run_period(db=work / "screening.duckdb", inbox=screened["inbox"], out=out, period=LAST)
    after = {p: p.read_bytes() for p in (out / LAST).rglob("*") if p.is_file()}
    assert after == before


# ---------------------------------------------------------------- rendered by Chromium


@pytest.mark.slow
def test_chromium_renders_the_page_offline(answered: dict[str, Any], tmp_path: Path) -> None:
    binary = check_report.chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (make check-report installs it)")
    page = answered["out"] / SECOND / "run-report.html"
    result = check_report.check_page(page, tmp_path / "page.png", binary)
    assert result.problems == []
    assert result.requests == [page.resolve().as_uri()]
    assert len(result.dom["charts"]) == 3
    assert (tmp_path / "page.png").stat().st_size > 20_000
