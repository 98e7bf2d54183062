"""The xlsx writer of the lists: which columns each sheet shows, and how it looks.

A 疑似监测对象 workbook has three sheets (疑似监测户, 家庭成员及风险依据, 说明), a
风险消除候选 workbook two (风险消除候选, 说明). Here are their column specs (header, key,
kind, widest width), the cell formats (colours, money, dates, the quote prefix that keeps
formula-like text as text), column widths and row heights sized to the text (CJK
characters count double), and the A4 print setup. The 说明 sheet's words are in about.py.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from screening import contract
from screening.periods import period_words
from screening.publish.about import about_lines, candidate_about_lines
from screening.publish.columns import (
    CANDIDATE_HEADERS,
    CANDIDATES_SCHEMA,
    FEEDBACK_HEADERS,
    FEEDBACK_RESULTS,
    FORMULA_START,
    LIST_KEY,
    LIST_KEY_HEADER,
    SUSPECT_HEADERS,
    SUSPECTS_SCHEMA,
    PublishMeta,
    mask_frame,
    with_list_keys,
)
from screening.publish.files import CANDIDATES_PREFIX, LIST_PREFIX
from screening.rules import RISK_LABELS
from screening.vocab import COLOURS

# Soft fills that stay readable in black-and-white print (the cell text names the colour too).
COLOUR_FILLS: dict[str, str] = {"红": "#FFC7CE", "黄": "#FFEB9C", "蓝": "#BDD7EE"}
COLOUR_FONTS: dict[str, str] = {"红": "#9C0006", "黄": "#7F4F00", "蓝": "#1F4E79"}
GRADE_LABELS: dict[int, str] = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}

SHEET_HOUSEHOLDS = "疑似监测户"
SHEET_DETAILS = "家庭成员及风险依据"
SHEET_ABOUT = "说明"
SHEET_CANDIDATES = "风险消除候选"


# ---------------------------------------------------------------- the sheets' columns


@dataclass(frozen=True)
class _Col:
    header: str
    key: str
    kind: str  # text | enum | int | money | date | colour | seq
    wrap_at: int = 30  # widest a column gets; longer text wraps onto more lines


_ENUM_KEYS = (
    "household_type",
    "labour_capacity",
    "listing_status",
    "relation",
    "source",
    "last_decision",
)


def _kind_of(key: str, dtype: pl.DataType) -> str:
    if key == "colour":
        return "colour"
    if key in _ENUM_KEYS:
        return "enum"  # short category words, centred so they stand apart from the numbers
    if isinstance(dtype, pl.Decimal):  # amounts and sums of amounts
        return "money"
    if dtype == pl.Date():
        return "date"
    if dtype.is_integer():
        return "int"
    return "text"


# The sheet people print: the columns that are the same on every row (period, township,
# run) are in the page header and the 说明 sheet instead, and 风险点 says what 风险代码 says.
_SAME_ON_EVERY_ROW = ("period", "township", "run_id", "risk_codes")
_HOUSEHOLD_COLS = (
    [_Col("序号", "_seq", "seq")]
    + [
        _Col(
            SUSPECT_HEADERS[key],
            key,
            _kind_of(key, dtype),
            wrap_at=40 if key == "risk_labels" else 30,
        )
        for key, dtype in SUSPECTS_SCHEMA.items()
        if key not in _SAME_ON_EVERY_ROW
    ]
    + [_Col(header, f"_feedback_{i}", "text") for i, header in enumerate(FEEDBACK_HEADERS)]
)


def _household_cols(with_key: bool) -> list[_Col]:
    """The first sheet's columns: the 核对码 after the 户编号 when the list has one."""
    if not with_key:
        return list(_HOUSEHOLD_COLS)
    at = next(i for i, col in enumerate(_HOUSEHOLD_COLS) if col.key == "household_id") + 1
    key = _Col(LIST_KEY_HEADER, LIST_KEY, "text")
    return [*_HOUSEHOLD_COLS[:at], key, *_HOUSEHOLD_COLS[at:]]


_CANDIDATE_COLS = [_Col("序号", "_seq", "seq")] + [
    _Col(header, key, _kind_of(key, CANDIDATES_SCHEMA[key]))
    for key, header in CANDIDATE_HEADERS.items()
    if key not in ("period", "township", "run_id")
]
_DETAIL_COLS = [
    _Col("户编号", "household_id", "text"),
    _Col("姓名", "name", "text"),
    _Col("与户主关系", "relation", "enum"),
    _Col("年龄", "age", "int"),
    _Col("残疾等级", "disability_grade", "enum"),
    _Col("身份证号", "id_number", "text"),
    _Col("风险点", "risk_code", "text"),
    _Col("数据来源", "source", "enum"),
    _Col("记录编号", "source_key", "text"),
    _Col("日期", "rule_date", "date"),
    _Col("金额", "amount", "money"),
    _Col("说明", "detail", "text", wrap_at=44),
]
_MONEY_FORMAT = "#,##0.00"
_DATE_FORMAT = "yyyy-mm-dd"
_LINE_HEIGHT = 14.0  # points per line of 10-point text
_ABOUT_WIDTH = 110


# ---------------------------------------------------------------- the workbooks


def write_list_workbook(
    path: Path,
    township: str,
    households: pl.DataFrame,
    details: pl.DataFrame,
    meta: PublishMeta,
    candidates: int = 0,
    folders: Mapping[str, str] | None = None,
) -> None:
    # Never let xlsxwriter guess: data text that looks like a formula, URL or number stays text.
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = Workbook(str(path), options)
    try:
        workbook.set_properties(_properties(township, meta))
        formats = _Formats(workbook)
        header = _page_header(LIST_PREFIX, township, meta)
        rows = _household_cells(with_list_keys(households, meta), meta.mask_ids)
        cols = _household_cols(meta.list_key_secret is not None)
        sheet = workbook.add_worksheet(SHEET_HOUSEHOLDS)
        _write_table(sheet, cols, rows, formats, header)
        result_col = len(cols) - len(FEEDBACK_HEADERS)
        if rows:  # a drop-down, so a typed result is one the import knows
            sheet.data_validation(
                1,
                result_col,
                len(rows),
                result_col,
                {"validate": "list", "source": list(FEEDBACK_RESULTS)},
            )
        detail = workbook.add_worksheet(SHEET_DETAILS)
        _write_table(detail, _DETAIL_COLS, _detail_cells(details, meta.mask_ids), formats, header)
        about = workbook.add_worksheet(SHEET_ABOUT)
        lines = about_lines(township, households, meta, candidates, folders)
        _write_about(about, lines, formats, header)
        if not households.height:
            about.activate()  # an empty list opens on the sheet that says "none this month"
    finally:
        workbook.close()


def write_candidates_workbook(
    path: Path, township: str, candidates: pl.DataFrame, meta: PublishMeta
) -> None:
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = Workbook(str(path), options)
    try:
        props = _properties(township, meta)
        workbook.set_properties(
            {**props, "title": props["title"].replace(LIST_PREFIX, CANDIDATES_PREFIX)}
        )
        formats = _Formats(workbook)
        header = _page_header(CANDIDATES_PREFIX, township, meta)
        frame = candidates.with_row_index("_seq", offset=1)
        rows = (mask_frame(frame, "head_id_number") if meta.mask_ids else frame).rows(named=True)
        sheet = workbook.add_worksheet(SHEET_CANDIDATES)
        _write_table(sheet, _CANDIDATE_COLS, rows, formats, header)
        about = workbook.add_worksheet(SHEET_ABOUT)
        _write_about(about, candidate_about_lines(township, candidates, meta), formats, header)
    finally:
        workbook.close()


def _properties(township: str, meta: PublishMeta) -> dict[str, Any]:
    year, month = (int(x) for x in meta.period.split("-"))
    # A fixed creation date (the day after the period ends, when lists are made) instead of
    # the clock, so re-publishing the same run gives the same bytes.
    made = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return {
        "title": f"{LIST_PREFIX}名单 {township} {meta.period}",
        "subject": "防返贫监测 部门数据筛查",
        "author": "screening",
        "comments": f"批次号 {meta.run_id}",
        "created": made,
    }


def _page_header(prefix: str, township: str, meta: PublishMeta) -> str:
    # Excel caps a page header at 255 characters; a name from data could be any length.
    demo = "【示例数据 虚构人员】" if meta.demo else ""
    return f"{demo}{prefix}名单 {township[:60]} {period_words(meta.period)}"


# ---------------------------------------------------------------- cells and print setup


class _Formats:
    """The few cell formats the lists use, plus their 'quote prefix' twins.

    Excel's quote prefix keeps a cell that starts with '=' as text even after someone
    edits it, which write_string alone does not.
    """

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._cache: dict[tuple[str, bool], Format] = {}
        border = {"border": 1, "border_color": "#808080", "valign": "vcenter", "font_size": 10}
        self._props: dict[str, dict[str, Any]] = {
            "header": {
                **border,
                "bold": True,
                "bg_color": "#D9D9D9",
                "align": "center",
                "valign": "vcenter",
                "text_wrap": True,
            },
            "text": border,
            "enum": {**border, "align": "center"},
            "wrap": {**border, "text_wrap": True},
            "int": {**border, "num_format": "0"},
            "seq": {**border, "num_format": "0", "align": "center"},
            "money": {**border, "num_format": _MONEY_FORMAT},
            "date": {**border, "num_format": _DATE_FORMAT, "align": "center"},
            "title": {"bold": True, "font_size": 14},
            "label": {"bold": True, "valign": "top", "font_size": 10},
            "note": {"text_wrap": True, "valign": "top", "font_size": 10},
        }
        for colour in COLOURS:
            self._props[f"colour:{colour}"] = {
                **border,
                "bold": True,
                "align": "center",
                "bg_color": COLOUR_FILLS[colour],
                "font_color": COLOUR_FONTS[colour],
            }

    def get(self, name: str, quoted: bool = False) -> Format:
        key = (name, quoted)
        if key not in self._cache:
            props = dict(self._props.get(name, self._props["text"]))
            if quoted:
                props["quote_prefix"] = True
            self._cache[key] = self._workbook.add_format(props)
        return self._cache[key]


def _household_cells(households: pl.DataFrame, mask_ids: bool) -> list[dict[str, Any]]:
    frame = households.with_row_index("_seq", offset=1)
    return (mask_frame(frame, "head_id_number") if mask_ids else frame).rows(named=True)


def _detail_cells(details: pl.DataFrame, mask_ids: bool) -> list[dict[str, Any]]:
    frame = details.with_columns(
        pl.col("risk_code").replace(RISK_LABELS),
        pl.col("source").replace({s: contract.label(s) for s in contract.SOURCES}),
        pl.col("disability_grade").replace_strict(
            GRADE_LABELS, default=None, return_dtype=pl.String
        ),
        pl.when(pl.col("is_head") & pl.col("relation").is_null())
        .then(pl.lit("户主"))
        .otherwise(pl.col("relation"))
        .alias("relation"),
    )
    if mask_ids:
        frame = mask_frame(frame, "id_number")
    return frame.rows(named=True)


def _write_table(
    sheet: Worksheet,
    cols: Sequence[_Col],
    rows: Sequence[Mapping[str, Any]],
    formats: _Formats,
    page_header: str,
) -> None:
    widths = [_column_width(col, rows) for col in cols]
    for c, col in enumerate(cols):
        sheet.set_column(c, c, widths[c])
        sheet.write_string(0, c, col.header, formats.get("header"))
    sheet.set_row(0, 2 * _LINE_HEIGHT)
    for r, row in enumerate(rows, start=1):
        lines = 1
        for c, col in enumerate(cols):
            value = row.get(col.key)
            _write_cell(sheet, r, c, col, value, formats, widths[c])
            lines = max(lines, _lines(_shown(col, value), widths[c]))
        if lines > 1:  # neither Excel nor LibreOffice grows a row for wrapped text on opening
            sheet.set_row(r, lines * _LINE_HEIGHT)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, len(rows), len(cols) - 1)
    _print_setup(sheet, page_header)
    sheet.repeat_rows(0)


def _column_width(col: _Col, rows: Sequence[Mapping[str, Any]]) -> int:
    shown = [display_width(_shown(col, row.get(col.key))) for row in rows]
    # A header wraps onto two lines rather than widen a column of short values.
    header = display_width(col.header)
    widest = max([min(header, max(8, -(-header // 2) + 2)), *shown])
    return min(widest + 2, col.wrap_at)


def _lines(text: str, width: int) -> int:
    """Lines a wrapped cell needs (rounded up, so the estimate errs towards room)."""
    return max(1, -(-display_width(text) // max(width - 2, 1)))


def _write_cell(
    sheet: Worksheet, r: int, c: int, col: _Col, value: Any, formats: _Formats, width: int
) -> None:
    if value is None:
        sheet.write_blank(r, c, None, formats.get("text"))
    elif col.kind in ("money", "int", "seq"):
        number = float(value) if isinstance(value, Decimal) else value
        sheet.write_number(r, c, number, formats.get(col.kind))
    elif col.kind == "date":
        sheet.write_datetime(r, c, value, formats.get("date"))
    else:
        text = str(value)
        name = col.kind if col.kind == "enum" else "text"
        if col.kind == "colour" and text in COLOUR_FILLS:
            name = f"colour:{text}"
        if _lines(text, width) > 1:
            name = "wrap"
        sheet.write_string(r, c, text, formats.get(name, quoted=text.startswith(FORMULA_START)))


def _shown(col: _Col, value: Any) -> str:
    """The text a cell shows, for sizing its column."""
    if value is None:
        return ""
    if col.kind == "money":
        return f"{value:,.2f}"
    if col.kind == "date":
        return "0000-00-00"
    return str(value)


def display_width(text: str) -> int:
    """Column width units: a CJK (wide/full-width) character takes two, others one."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _print_setup(sheet: Worksheet, page_header: str) -> None:
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    sheet.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    sheet.center_horizontally()
    # '&' starts a header code in Excel, so a name from data must have it doubled.
    sheet.set_header(f"&C{page_header.replace('&', '&&')}")
    sheet.set_footer("&C第 &P 页，共 &N 页")


def _write_about(
    sheet: Worksheet,
    lines: Sequence[tuple[str, str]],
    formats: _Formats,
    page_header: str,
    title: str = f"{LIST_PREFIX}名单说明",
) -> None:
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, 1, _ABOUT_WIDTH)
    sheet.write_string(0, 0, title, formats.get("title"))
    sheet.set_row(0, 2 * _LINE_HEIGHT)
    for r, (label, text) in enumerate(lines, start=2):
        sheet.write_string(r, 0, label, formats.get("label"))
        sheet.write_string(r, 1, text, formats.get("note", quoted=text.startswith(FORMULA_START)))
        if _lines(text, _ABOUT_WIDTH) > 1:
            sheet.set_row(r, _lines(text, _ABOUT_WIDTH) * _LINE_HEIGHT)
    _print_setup(sheet, page_header)
