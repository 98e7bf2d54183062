"""A printed 台账 sheet: title rows, a header, the rows grouped by village with a heading,
a subtotal and the signature lines, each village on pages of its own.

The workbooks' sheets (sheets.py) describe what they show as a `Ledger`: the columns, the
rows in print order with the text of every cell prepared, and the words around them;
`write_ledger` lays it out with the print setup of layout.py. Answer columns are the only
unlocked cells of the protected sheet, each with its validation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl
from xlsxwriter.worksheet import Worksheet

from screening.publish.columns import FORMULA_START
from screening.publish.layout import (
    LINE_HEIGHT,
    MIN_ROW_HEIGHT,
    Col,
    Formats,
    display_width,
    fit_widths,
    lines_needed,
    money_text,
    natural_width,
    print_setup,
    protect,
)

# Soft fills that stay readable in black-and-white print (the cell text names the colour too).
COLOUR_FILLS: dict[str, str] = {"红": "#FFC7CE", "黄": "#FFEB9C", "蓝": "#BDD7EE"}
COLOUR_FONTS: dict[str, str] = {"红": "#9C0006", "黄": "#7F4F00", "蓝": "#1F4E79"}
GROUP = "_group"  # the rows' village (their group on paper)
SHADE = "#F2F2F2"  # every other household of the members sheet

_NOTHING = object()
TITLE_ROWS = 2  # the title and the line under it; the header follows


@dataclass
class Ledger:
    """What one printed sheet shows. `rows` holds a String column per text column (the
    cell's text, lines split by newlines), typed values for seq / int / money / date
    columns, GROUP, and whatever `subtotal` reads."""

    title: str
    info: str  # the line under the title
    cols: Sequence[Col]
    rows: pl.DataFrame
    landscape: bool = True
    page_header: str = ""
    # The group's subtotal line, from its rows; None: no subtotal.
    subtotal: Callable[[str, pl.DataFrame], str] | None = None
    sign_lines: Sequence[str] = ()  # at the foot of every group
    empty: str = ""  # said instead of the table when there are no rows
    # Answer column key → xlsxwriter data validation (its range is filled in here).
    validations: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # Rows sharing this column's value are one household (the members sheet): the first
    # row of each gets a heavier line above, and every other household a soft shade.
    household: str | None = None
    headings: bool = True  # a heading row naming the group before its rows
    unit: str = "户"  # what a row (or a `household`) is, counted in the heading
    min_row_height: float = MIN_ROW_HEIGHT  # room to write an answer by hand


def write_ledger(sheet: Worksheet, ledger: Ledger, formats: Formats) -> None:
    cols = list(ledger.cols)
    shown = {c.key: _shown(c, ledger.rows) for c in cols}
    widths = [natural_width(c, shown[c.key]) for c in cols]
    widths = fit_widths(cols, widths, ledger.landscape)
    last = len(cols) - 1
    for c, width in enumerate(widths):
        sheet.set_column(c, c, width)

    sheet.merge_range(0, 0, 0, last, ledger.title, formats.get("title"))
    sheet.set_row(0, 30)
    sheet.merge_range(1, 0, 1, last, ledger.info, formats.get("subtitle", wrap=True))
    sheet.set_row(1, LINE_HEIGHT * _lines(ledger.info, sum(widths)) + 4)
    header_row = TITLE_ROWS
    for c, col in enumerate(cols):
        role = "answer_header" if col.answer else "header"
        sheet.write_string(header_row, c, col.header, formats.get(role))
    header_lines = max(
        sum(_lines(part, w) for part in col.header.split("\n"))
        for col, w in zip(cols, widths, strict=True)
    )
    sheet.set_row(header_row, LINE_HEIGHT * max(2, header_lines) + 4)
    sheet.freeze_panes(header_row + 1, 0)
    print_setup(
        sheet,
        landscape=ledger.landscape,
        header=ledger.page_header,
        repeat=(0, header_row),
    )
    protect(sheet)

    r = header_row + 1
    if not ledger.rows.height:
        if ledger.empty:
            sheet.merge_range(r, 0, r, last, ledger.empty, formats.get("subtotal"))
            sheet.set_row(r, MIN_ROW_HEIGHT)
        return
    heights = _row_heights(cols, shown, widths, ledger.rows.height, ledger.min_row_height)
    wraps = {
        c.key: bool((lines_of > 1).any())
        for c, lines_of in zip(
            cols,
            (_line_counts(shown[c.key], w) for c, w in zip(cols, widths, strict=True)),
            strict=True,
        )
    }
    breaks: list[int] = []
    answer_ranges: dict[str, list[tuple[int, int]]] = {}
    groups = ledger.rows.with_row_index("_i").partition_by(
        GROUP, maintain_order=True, include_key=True
    )
    for g, part in enumerate(groups):
        name = part[GROUP][0] or ""
        if g:
            breaks.append(r)
        if ledger.headings:
            heading = f"{name}（{_household_count(ledger, part)} {ledger.unit}）"
            sheet.merge_range(r, 0, r, last, heading, _text_format(formats, "group", heading))
            sheet.set_row(r, LINE_HEIGHT + 8)
            r += 1
        first = r
        r = _write_rows(sheet, ledger, cols, part, heights, wraps, formats, r)
        for col in cols:
            if col.answer:
                answer_ranges.setdefault(col.key, []).append((first, r - 1))
        if ledger.subtotal is not None:
            text = ledger.subtotal(name, part)
            sheet.merge_range(r, 0, r, last, text, _text_format(formats, "subtotal", text))
            sheet.set_row(r, LINE_HEIGHT * _lines(text, sum(widths)) + 6)
            r += 1
        for line in ledger.sign_lines:
            sheet.merge_range(r, 0, r, last, line, formats.get("sign"))
            sheet.set_row(r, 30)
            r += 1
    if breaks:
        sheet.set_h_pagebreaks(breaks)
    for key, ranges in answer_ranges.items():
        c = next(i for i, col in enumerate(cols) if col.key == key)
        options = dict(ledger.validations.get(key, {}))
        if not options:
            continue
        first_row, last_row = ranges[0]
        spans = " ".join(_cell_range(a, b, c) for a, b in ranges)
        sheet.data_validation(first_row, c, last_row, c, {**options, "multi_range": spans})


def _write_rows(
    sheet: Worksheet,
    ledger: Ledger,
    cols: Sequence[Col],
    part: pl.DataFrame,
    heights: list[float],
    wraps: Mapping[str, bool],
    formats: Formats,
    r: int,
) -> int:
    keys = [c.key for c in cols]
    household = ledger.household
    previous: Any = _NOTHING
    shade = True
    for row in part.iter_rows(named=True):
        top = False
        if household is not None and row[household] != previous:
            top = previous is not _NOTHING  # a new household: a heavier line above
            shade = not shade
            previous = row[household]
        fill = SHADE if household is not None and shade else None
        for c, (col, key) in enumerate(zip(cols, keys, strict=True)):
            _write_cell(sheet, r, c, col, row.get(key), formats, wraps[key], fill, top)
        sheet.set_row(r, heights[row["_i"]])
        r += 1
    return r


def _write_cell(
    sheet: Worksheet,
    r: int,
    c: int,
    col: Col,
    value: Any,
    formats: Formats,
    wrap: bool,
    fill: str | None,
    top: bool,
) -> None:
    if col.answer:
        role = "date" if col.kind == "date" else "text"
        sheet.write_blank(r, c, None, formats.get(role, wrap=True, unlocked=True, top=top))
        return
    if value is None or value == "":
        sheet.write_blank(r, c, None, formats.get("text", fill=fill, top=top))
    elif col.kind in ("seq", "int", "money"):
        number = float(value) if isinstance(value, Decimal) else value
        sheet.write_number(r, c, number, formats.get(col.kind, fill=fill, top=top))
    elif col.kind == "date":
        sheet.write_datetime(r, c, value, formats.get("date", fill=fill, top=top))
    elif col.kind == "colour":
        text = str(value)
        style = formats.get(
            "colour",
            fill=COLOUR_FILLS.get(text, fill),
            font_color=COLOUR_FONTS.get(text),
            top=top,
        )
        sheet.write_string(r, c, text, style)
    else:
        text = str(value)
        role = "center" if col.kind == "center" else "text"
        quoted = text.startswith(FORMULA_START)
        sheet.write_string(
            r, c, text, formats.get(role, wrap=wrap, fill=fill, top=top, quoted=quoted)
        )


def _text_format(formats: Formats, role: str, text: str) -> Any:
    """A village name from data heads these lines: never let it start a formula."""
    return formats.get(role, quoted=text.startswith(FORMULA_START))


def _household_count(ledger: Ledger, part: pl.DataFrame) -> int:
    if ledger.household is None:
        return part.height
    return part[ledger.household].n_unique()


def _shown(col: Col, rows: pl.DataFrame) -> pl.Series:
    """The text each cell of the column shows, for sizing it."""
    if col.answer or col.key not in rows.columns:
        return pl.Series(col.key, [], pl.String)
    values = rows[col.key]
    if col.kind == "money":
        return rows.select(money_text(pl.col(col.key))).to_series()
    return values.cast(pl.String)


def _line_counts(shown: pl.Series, width: float) -> pl.Series:
    if not shown.len():
        return pl.Series([], dtype=pl.Int64)
    return shown.to_frame("v").select(lines_needed(pl.col("v"), width)).to_series()


def _row_heights(
    cols: Sequence[Col],
    shown: Mapping[str, pl.Series],
    widths: Sequence[float],
    n: int,
    least: float,
) -> list[float]:
    """Each row's height: its tallest cell's lines, at least `least`. Neither Excel nor
    LibreOffice grows a row for wrapped text on opening, so the height is set."""
    counts = [pl.Series("_one", [1] * n, pl.Int64)]
    for i, (col, width) in enumerate(zip(cols, widths, strict=True)):
        found = _line_counts(shown[col.key], width)
        if found.len() == n:
            counts.append(found.alias(f"_c{i}"))
    lines = pl.DataFrame(counts).select(pl.max_horizontal(pl.all())).to_series()
    return [max(least, k * LINE_HEIGHT + 6) for k in lines.to_list()]


def _lines(text: str, width: float) -> int:
    room = max(width - 2, 1.0)
    return sum(max(1, -(-display_width(part) // int(room))) for part in text.split("\n"))


def _cell_range(first: int, last: int, c: int) -> str:
    from xlsxwriter.utility import xl_range

    return xl_range(first, c, last, c)


def date_validation(first: dt.date, last: dt.date, what: str) -> dict[str, Any]:
    """A date between `first` and `last`, with the words an officer sees on error."""
    span = f"{first.isoformat()} 至 {last.isoformat()}"
    return {
        "validate": "date",
        "criteria": "between",
        "minimum": dt.datetime.combine(first, dt.time()),
        "maximum": dt.datetime.combine(last, dt.time()),
        "input_title": what,
        "input_message": f"请填写日期，如 {first.isoformat()}（{span} 之间）。",
        "error_title": "日期不对",
        "error_message": f"{what}应是 {span} 之间的日期，格式如 {first.isoformat()}。",
    }


def list_validation(values: Sequence[str], what: str) -> dict[str, Any]:
    """One of `values`, chosen from a drop-down."""
    choices = "、".join(values)
    return {
        "validate": "list",
        "source": list(values),
        "input_title": what,
        "input_message": f"请从下拉列表中选择：{choices}。",
        "error_title": f"{what}不对",
        "error_message": f"{what}只能是：{choices}。",
    }
