"""The township's workbooks, as printed and sent back.

A 疑似监测对象 workbook has four sheets: 疑似监测户 (the 台账 the township fills in),
家庭成员及风险依据 (members and the records behind each risk), 填报说明 (one page on how to
fill it in and send it back) and 说明 (what the list is, over the parameters in force). A
风险消除候选 workbook has two: 风险消除候选 and 说明. What each sheet shows is in
sheets.py, how a printed sheet is laid out in ledger.py and layout.py, the words of the
说明 and 填报说明 sheets in about.py and guide.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from screening.publish.about import about_lines, candidate_about_lines
from screening.publish.columns import FORMULA_START, SHEET_ABOUT, PublishMeta
from screening.publish.fastsheet import FastSheet, PlainSheet
from screening.publish.files import CANDIDATES_PREFIX, LIST_PREFIX
from screening.publish.guide import guide_lines
from screening.publish.layout import (
    LINE_HEIGHT,
    Formats,
    lines_of,
    print_setup,
    protect,
)
from screening.publish.ledger import COLOUR_FILLS, write_ledger
from screening.publish.sheets import (
    SHEET_CANDIDATES,
    SHEET_DETAILS,
    SHEET_HOUSEHOLDS,
    candidates_ledger,
    demo_mark,
    details_ledger,
    households_ledger,
)

SHEET_GUIDE = "填报说明"
ABOUT_TITLES = {
    LIST_PREFIX: f"{LIST_PREFIX}名单说明",
    CANDIDATES_PREFIX: f"{CANDIDATES_PREFIX}名单说明",
}
_ABOUT_WIDTHS = (12, 84)  # label, text: a portrait A4 page at 10 points
# The 台账 sheets' class: FastSheet; PlainSheet writes the same bytes through xlsxwriter's
# public API (a test compares the two).
SHEET_CLASS: type[PlainSheet] = FastSheet

__all__ = [
    "COLOUR_FILLS",
    "SHEET_ABOUT",
    "SHEET_CANDIDATES",
    "SHEET_DETAILS",
    "SHEET_GUIDE",
    "SHEET_HOUSEHOLDS",
    "file_properties",
    "ledger_sheet",
    "new_workbook",
    "workbook_properties",
    "write_candidates_workbook",
    "write_list_workbook",
    "write_text_sheet",
]


def new_workbook(path: Path) -> Workbook:
    # Never let xlsxwriter guess: data text that looks like a formula, URL or number stays text.
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    return Workbook(str(path), options)


def write_list_workbook(
    path: Path,
    township: str,
    households: pl.DataFrame,
    details: pl.DataFrame,
    meta: PublishMeta,
    candidates: int = 0,
    folders: Mapping[str, str] | None = None,
    contacts: pl.DataFrame | None = None,
) -> None:
    workbook = new_workbook(path)
    try:
        workbook.set_properties(workbook_properties(LIST_PREFIX, township, meta))
        formats = Formats(workbook)
        ledger, order = households_ledger(township, households, meta, contacts)
        write_ledger(ledger_sheet(workbook, SHEET_HOUSEHOLDS), ledger, formats)
        members = details_ledger(township, details, order, meta)
        write_ledger(ledger_sheet(workbook, SHEET_DETAILS), members, formats)
        guide = workbook.add_worksheet(SHEET_GUIDE)
        write_text_sheet(guide, SHEET_GUIDE, guide_lines(township, meta), formats, meta)
        about = workbook.add_worksheet(SHEET_ABOUT)
        lines = about_lines(township, households, meta, candidates, folders)
        write_text_sheet(about, ABOUT_TITLES[LIST_PREFIX], lines, formats, meta)
        if not households.height:
            about.activate()  # an empty list opens on the sheet that says "none this month"
    finally:
        workbook.close()


def write_candidates_workbook(
    path: Path,
    township: str,
    candidates: pl.DataFrame,
    meta: PublishMeta,
    contacts: pl.DataFrame | None = None,
) -> None:
    workbook = new_workbook(path)
    try:
        workbook.set_properties(workbook_properties(CANDIDATES_PREFIX, township, meta))
        formats = Formats(workbook)
        ledger = candidates_ledger(township, candidates, meta, contacts)
        write_ledger(ledger_sheet(workbook, SHEET_CANDIDATES), ledger, formats)
        about = workbook.add_worksheet(SHEET_ABOUT)
        lines = candidate_about_lines(township, candidates, meta)
        write_text_sheet(about, ABOUT_TITLES[CANDIDATES_PREFIX], lines, formats, meta)
    finally:
        workbook.close()


def ledger_sheet(workbook: Workbook, name: str) -> PlainSheet:
    """A worksheet for a 台账 (write_ledger): the fast writer's class."""
    sheet: PlainSheet = workbook.add_worksheet(name, worksheet_class=SHEET_CLASS)
    return sheet


def workbook_properties(prefix: str, township: str, meta: PublishMeta) -> dict[str, Any]:
    return file_properties(f"{prefix}名单 {township} {meta.period}", meta.period, meta.run_id)


def file_properties(title: str, period: str, run_id: str) -> dict[str, Any]:
    """A published workbook's document properties. The creation date is fixed (the day
    after the period ends, when lists are made) instead of the clock, so re-publishing the
    same run gives the same bytes."""
    year, month = (int(x) for x in period.split("-"))
    made = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return {
        "title": title,
        "subject": "防返贫监测 部门数据筛查",
        "author": "screening",
        "comments": f"批次号 {run_id}",
        "created": made,
    }


def write_text_sheet(
    sheet: Worksheet,
    title: str,
    lines: Sequence[tuple[str, str]],
    formats: Formats,
    meta: PublishMeta,
) -> None:
    """A sheet of (label, text) lines under a title (the 说明 and 填报说明 sheets): portrait
    A4, the text wrapped, protected."""
    label_width, text_width = _ABOUT_WIDTHS
    sheet.set_column(0, 0, label_width)
    sheet.set_column(1, 1, text_width)
    sheet.write_string(0, 0, f"{demo_mark(meta)}{title}", formats.get("about_title"))
    sheet.set_row(0, 2 * LINE_HEIGHT)
    for r, (label, text) in enumerate(lines, start=2):
        sheet.write_string(r, 0, label, formats.get("label"))
        quoted = text.startswith(FORMULA_START)
        sheet.write_string(r, 1, text, formats.get("note", quoted=quoted))
        lines_needed = max(lines_of(text, text_width), lines_of(label, label_width), 1)
        if lines_needed > 1:
            sheet.set_row(r, lines_needed * LINE_HEIGHT + 2)
    print_setup(sheet, landscape=False, header=demo_mark(meta))
    protect(sheet)
