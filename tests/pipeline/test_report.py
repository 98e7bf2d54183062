"""The run report: counts, markdown, console tables."""

from __future__ import annotations

import datetime as dt
import re
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from screening import ids, params
from screening.db.report import ANSWERS_SCHEMA
from screening.publish import charts
from screening.publish.columns import SUSPECTS_SCHEMA
from screening.publish.console import render_console
from screening.publish.history import LISTS_SCHEMA, MATCH_SCHEMA, History, precision_rows
from screening.publish.html import render_html
from screening.publish.markdown import render_markdown
from screening.publish.report import (
    FileRead,
    MatchRate,
    RejectedCount,
    RunReport,
    risk_counts,
    status_counts,
    summary_lines,
    township_colour_counts,
    township_table,
)
from screening.publish.report_files import write_report
from tests.support.pages import parse, self_contained_problems

PERIOD = "2026-10"


def listed(township: str, colour: str, codes: list[str], status: str = "新增") -> dict[str, object]:
    """A suspects row with only what the report counts filled in."""
    row: dict[str, object] = dict.fromkeys(SUSPECTS_SCHEMA.names())
    row.update(
        period=PERIOD,
        township=township,
        colour=colour,
        risk_codes=codes,
        listing_status=status,
    )
    return row


def suspects() -> pl.DataFrame:
    rows = [
        listed("城关镇", "红", ["MEDICAL", "LOW_INCOME"]),
        listed("城关镇", "红", ["MEDICAL", "SPENDING"], "持续"),
        listed("城关镇", "黄", ["LOW_INCOME"], "持续"),
        listed("石羊塘镇", "蓝", ["ACCIDENT"], "已在监测"),
    ]
    return pl.DataFrame(rows, schema=SUSPECTS_SCHEMA)


def report() -> RunReport:
    files: list[FileRead] = [
        {
            "source": "roster",
            "file": "人口基础信息2026年10月.csv",
            "status": "loaded",
            "rows_read": 12000,
            "rows_accepted": 11990,
            "rows_rejected": 10,
            "message": None,
        },
        {
            "source": "medical",
            "file": "医保|结算[bold].xlsx",
            "status": "loaded",
            "rows_read": 300,
            "rows_accepted": 297,
            "rows_rejected": 3,
            "message": None,
        },
        {
            "source": "traffic",
            "file": None,
            "status": "missing",
            "rows_read": None,
            "rows_accepted": None,
            "rows_rejected": None,
            "message": "本期未收到交警数据",
        },
    ]
    rejected: list[RejectedCount] = [
        {"source": "roster", "column": "id_number", "check": "invalid_id", "rows": 10},
        {"source": "medical", "column": "out_of_pocket", "check": "min", "rows": 3},
    ]
    rates: list[MatchRate] = [
        {"source": "medical", "records_in_window": 200, "matched": 150, "unmatched": 50},
        {"source": "civil", "records_in_window": 0, "matched": 0, "unmatched": 0},
    ]
    return RunReport(
        period=PERIOD,
        run_id="run-1",
        files=files,
        rejected=rejected,
        match_rates=rates,
        suspects=suspects(),
        warnings=["监测标准沿用 2021-01-01 的 6000 元", "2 户没有户主，以第一名成员代替"],
        params=params.load().at(PERIOD),
        all_townships=["城关镇", "石羊塘镇", "白兔潭镇"],
        started_at=dt.datetime(2026, 11, 5, 9, 0, 0),
    )


def test_counts_by_township_and_colour_include_empty_townships_and_a_total() -> None:
    counts = township_colour_counts(suspects(), ["白兔潭镇"])
    assert counts.rows() == [
        ("城关镇", 2, 1, 0, 3),
        ("白兔潭镇", 0, 0, 0, 0),
        ("石羊塘镇", 0, 0, 1, 1),
        ("合计", 2, 1, 1, 4),
    ]


def test_counts_by_risk_and_status() -> None:
    risks = dict(risk_counts(suspects()).select("risk_code", "households").iter_rows())
    assert risks["MEDICAL"] == 2 and risks["LOW_INCOME"] == 2
    assert risks["ACCIDENT"] == 1 and risks["SPENDING"] == 1 and risks["DISABILITY"] == 0
    assert status_counts(suspects()) == {"新增": 1, "持续": 2, "已在监测": 1, "已确认待录入": 0}


def test_counts_of_an_empty_run() -> None:
    empty = pl.DataFrame(schema=SUSPECTS_SCHEMA)
    assert township_colour_counts(empty).rows() == [("合计", 0, 0, 0, 0)]
    assert risk_counts(empty)["households"].sum() == 0


def test_markdown_report() -> None:
    text = render_markdown(report())
    assert text.startswith("# 筛查运行报告 Run report 2026-10\n")
    assert "- 开始 started_at：2026-11-05T09:00:00" in text
    assert "| 城关镇 | 2 | 1 | 0 | 3 |" in text
    assert "| 白兔潭镇 | 0 | 0 | 0 | 0 |" in text
    assert "| 合计 | 2 | 1 | 1 | 4 |" in text
    assert "| MEDICAL | 因病 | 2 |" in text
    assert "| 医保（住院结算） | 200 | 150 | 50 | 75.0% |" in text
    assert "| 民政（社会救助） | 0 | 0 | 0 | — |" in text
    assert "| 12,000 | 11,990 | 10 |" in text
    assert (
        "| 人口（农村人口基础信息） | 身份证号 (id\\_number) | 身份证号无效 invalid ID number "
        "(invalid\\_id) | 10 |" in text
    )
    assert "医保\\|结算\\[bold\\].xlsx" in text  # a pipe from data cannot break the table
    assert "交警数据未收到" in text and "2 户没有户主" in text
    assert "| 劳动年龄（周岁） (working\\_age) | 16–59 |" in text
    assert render_markdown(report()) == text


def test_every_table_row_has_as_many_cells_as_its_header() -> None:
    for block in render_markdown(report()).split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            cells = {ln.replace("\\|", "").count("|") for ln in lines}
            assert len(cells) == 1, block


def test_report_file_is_written_atomically_and_privately(tmp_path: Path) -> None:
    md, page = write_report(tmp_path, report())
    assert md == tmp_path / PERIOD / "run-report.md" and page == md.with_suffix(".html")
    assert md.read_text(encoding="utf-8") == render_markdown(report())
    assert stat.S_IMODE(md.stat().st_mode) == stat.S_IMODE(page.stat().st_mode) == 0o600
    assert sorted(p.name for p in md.parent.iterdir()) == ["run-report.html", "run-report.md"]


def test_console_report_shows_tables_and_never_reads_data_as_markup() -> None:
    console = Console(record=True, width=160, color_system=None)
    render_console(report(), console)
    text = console.export_text()
    assert "医保|结算[bold].xlsx" in text
    assert "交警数据未收到" in text
    assert "城关镇" in text and "白兔潭镇" in text and "75.0%" in text
    total = next(line for line in text.splitlines() if re.search(r"合计\W+\d", line))
    assert re.findall(r"\d+", total) == ["2", "1", "1", "4"]


def test_a_header_only_delivery_is_not_reported_as_missing() -> None:
    base = report()
    empty: FileRead = {
        "source": "disability",
        "file": "残联_202610.csv",
        "status": "empty",
        "rows_read": 0,
        "rows_accepted": 0,
        "rows_rejected": 0,
        "message": "header only, no rows",
    }
    text = render_markdown(
        RunReport(**{**base.__dict__, "files": [*base.files, empty]})  # type: ignore[arg-type]
    )
    warnings = text.split("## 提示 Warnings")[1].split("##")[0]
    assert "交警数据未收到" in warnings  # the missing source is still said, once
    assert warnings.count("交警") == 1
    assert "残联" not in warnings


# ---------------------------------------------------------------- the page and its charts


def with_history() -> RunReport:
    """The report with an earlier month: 3 of its households listed, 1 gone since, and
    answers from 城关镇 on it."""
    lists = pl.DataFrame(
        {
            "period": ["2026-09", PERIOD],
            "listed": [3, 4],
            "red": [1, 2],
            "yellow": [1, 1],
            "blue": [1, 1],
            "new": [3, 1],
            "continuing": [0, 2],
            "monitored": [0, 1],
            "confirmed": [0, 0],
            "dropped": [0, 1],
        },
        schema=LISTS_SCHEMA,
    )
    answers = pl.DataFrame(
        [("城关镇", 2, 2, 1, 1, 0), ("石羊塘镇", 1, 0, 0, 0, 0)],
        schema=ANSWERS_SCHEMA,
        orient="row",
    )
    precision = pl.DataFrame(
        [("MEDICAL", 2, 2, 1, 1, 0), ("LOW_INCOME", 1, 1, 1, 0, 0)],
        schema=["risk_code", "listed", "answered", "confirmed", "declined", "pending"],
        orient="row",
    )
    history = History(lists=lists, last_month="2026-09", answers=answers, precision_risk=precision)
    rejected = pl.DataFrame(
        [("roster", "invalid_id", 10, 10), ("medical", "min", 3, 3)],
        schema=["source", "check", "rows", "cells"],
        orient="row",
    )
    return RunReport(
        **{**report().__dict__, "history": history, "rejected_rows": rejected}  # type: ignore[arg-type]
    )


def test_summary_lines_say_the_colours_and_the_change_against_last_month() -> None:
    first, second = summary_lines(with_history())
    assert first == "2026年10月全县列出疑似监测户 4 户：红 2 户、黄 1 户、蓝 1 户。"
    assert second == (
        "与2026年9月（3 户）相比：新增 1 户，持续 2 户，已在监测 1 户，已确认待录入 0 户；"
        "上月名单中 1 户本期不再列出。"
    )
    assert summary_lines(report())[1] == "上月没有筛查名单，无从比较。"


def test_township_table_has_a_row_per_township_and_the_county() -> None:
    table = township_table(with_history())
    assert table["township"].to_list() == ["城关镇", "白兔潭镇", "石羊塘镇", "合计"]
    town = table.row(0, named=True)
    assert (town["awaiting"], town["answered"], town["confirmed"], town["declined"]) == (2, 2, 1, 1)
    assert town["answered_share"] == 1.0
    total = table.row(3, named=True)
    assert (total["合计"], total["awaiting"], total["answered"]) == (4, 3, 2)


def test_precision_is_confirmed_over_final_answers() -> None:
    table = precision_rows(with_history().history, "risk_code")
    rows = {r["key"]: r for r in table.iter_rows(named=True)}
    assert rows["MEDICAL"]["share"] == 0.5 and rows["LOW_INCOME"]["share"] == 1.0
    assert rows["ACCIDENT"]["listed"] == 0 and rows["ACCIDENT"]["share"] is None
    assert with_history().history.has_answers and not report().history.has_answers


def test_the_page_is_whole_self_contained_and_masks_ids() -> None:
    base = with_history()
    base.warnings.append("文件 430624197601021372_王福.pdf")
    page = render_html(base)
    assert self_contained_problems(page) == []
    assert "430624197601021372" not in page and ids.mask("430624197601021372") in page
    parsed = parse(page)
    assert parsed.sections == [
        "summary", "charts", "townships", "precision", "deliveries", "warnings", "parameters",
    ]  # fmt: skip
    assert page.count("<svg") == 3 and page.count("<figure") == 3
    assert "医保|结算[bold].xlsx" in page  # data text escaped, never markup
    assert "<td>身份证号无效</td>" in page  # checks in Chinese
    assert re.search(r"<td>\d+ 天</td>", page)  # the holidays as a count
    assert "确认率" in page and "50.0%" in page
    assert render_html(base) == page  # the same report gives the same page


def test_charts_keep_their_words_as_text_and_need_no_chinese_font(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = township_colour_counts(suspects()).filter(pl.col("township") != "合计")
    svg = charts.township_bars(counts)
    assert ">城关镇</text>" in svg and ">石羊塘镇</text>" in svg
    assert "http" not in svg and "<?xml" not in svg and "<metadata" not in svg
    assert charts.township_bars(counts) == svg
    # Where the report is made without any Chinese font, nothing is said and the words stay.
    monkeypatch.setattr(charts, "FONT_FAMILIES", ["No Such Font"])
    monkeypatch.setitem(charts._RC, "font.sans-serif", ["No Such Font"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = charts.listing_lines(with_history().history.lists)
    assert ">新增</text>" in plain
    assert "暂无数据" in charts.match_lines(pl.DataFrame(schema=MATCH_SCHEMA))


def test_matplotlib_is_imported_only_when_a_chart_is_drawn() -> None:
    code = (
        "import sys, screening.pipeline.run, screening.publish.html\n"
        "print('matplotlib' in sys.modules)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "False", loaded.stderr
