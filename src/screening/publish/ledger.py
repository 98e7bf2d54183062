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
from typing import Any

import polars as pl

from screening.publish.columns import FORMULA_START
from screening.publish.fastsheet import DATE, NUMBER, TEXT, PlainSheet
from screening.publish.layout import (
    LINE_HEIGHT,
    MIN_ROW_HEIGHT,
    Col,
    Formats,
    fit_widths,
    lines_needed,
    lines_of,
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


def write_ledger(sheet: PlainSheet, ledger: Ledger, formats: Formats) -> None:
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
    sheet.set_row(1, LINE_HEIGHT * lines_of(ledger.info, sum(widths)) + 4)
    header_row = TITLE_ROWS
    for c, col in enumerate(cols):
        role = "answer_header" if col.answer else "header"
        sheet.write_string(header_row, c, col.header, formats.get(role))
    header_lines = max(
        sum(lines_of(part, w) for part in col.header.split("\n"))
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
    counts = [_line_counts(shown[c.key], w) for c, w in zip(cols, widths, strict=True)]
    heights = _row_heights(counts, ledger.rows.height, ledger.min_row_height)
    wraps = [bool((found > 1).any()) for found in counts]
    cells = _prepared_cells(ledger, cols, wraps, formats)
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
        r = _write_rows(sheet, cells, part["_i"].to_list(), heights, r)
        for col in cols:
            if col.answer:
                answer_ranges.setdefault(col.key, []).append((first, r - 1))
        if ledger.subtotal is not None:
            text = ledger.subtotal(name, part)
            sheet.merge_range(r, 0, r, last, text, _text_format(formats, "subtotal", text))
            sheet.set_row(r, LINE_HEIGHT * lines_of(text, sum(widths)) + 6)
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


# A prepared column: how its non-blank cells are written (fastsheet.TEXT, NUMBER or DATE),
# and each row's value (None: a blank cell) and format, in row order.
_Cells = tuple[str, list[Any], list[Any]]
_TOP, _SHADED, _QUOTED = 1, 2, 4  # the flags a cell's format depends on, as bits


def _write_rows(
    sheet: PlainSheet, cells: Sequence[_Cells], rows: Sequence[int], heights: list[float], r: int
) -> int:
    """Write the ledger's rows `rows` (indices into its frame) from sheet row `r` on, a row
    at a time from the prepared columns; returns the next free sheet row."""
    kinds = [kind for kind, _, _ in cells]
    values = [column for _, column, _ in cells]
    formats = [column for _, _, column in cells]
    for i in rows:
        sheet.write_prepared(r, [v[i] for v in values], [f[i] for f in formats], kinds)
        sheet.set_row(r, heights[i])
        r += 1
    return r


class _Variants(dict[int, Any]):
    """The formats of one kind of cell by its flags, each made when first asked for."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, flags: int) -> Any:
        found = self[flags] = self._make(flags)
        return found


def _row_flags(ledger: Ledger) -> list[int]:
    """Each row's _TOP and _SHADED bits. On a sheet of households (`ledger.household`), a
    row whose household differs from the row before it in its group starts a household:
    the group's first household has no line above it, and every second one is shaded."""
    rows = ledger.rows
    if ledger.household is None:
        return [0] * rows.height
    h = pl.col(ledger.household)
    starts = (h.ne_missing(h.shift(1)) | (pl.int_range(pl.len()) == 0)).over(GROUP)
    ordinal = starts.cast(pl.Int64).cum_sum().over(GROUP) - 1
    flags = pl.when(starts & (ordinal > 0)).then(_TOP).otherwise(0) + pl.when(
        ordinal % 2 == 1
    ).then(_SHADED).otherwise(0)
    return rows.select(flags.cast(pl.Int64)).to_series().to_list()


def _prepared_cells(
    ledger: Ledger, cols: Sequence[Col], wraps: Sequence[bool], formats: Formats
) -> list[_Cells]:
    """Every cell's value and format, a list per column computed over the whole sheet at
    once: a format depends on a few flags of its row and value, so each is looked up once
    per combination of flags rather than per cell."""
    rows = ledger.rows
    flags = _row_flags(ledger)

    def blank_format(f: int) -> Any:
        return formats.get("text", fill=_fill(f), top=bool(f & _TOP))

    blanks = _Variants(blank_format)
    cells: list[_Cells] = []
    for col, wrap in zip(cols, wraps, strict=True):
        if col.answer:
            role = "date" if col.kind == "date" else "text"
            answer = [formats.get(role, wrap=True, unlocked=True, top=top) for top in (False, True)]
            cells.append((TEXT, [None] * rows.height, [answer[f & _TOP] for f in flags]))
        elif col.key not in rows.columns:
            cells.append((TEXT, [None] * rows.height, [blanks[f] for f in flags]))
        elif col.kind in _NUMBERS:
            cells.append(_number_cells(col, rows[col.key], flags, formats, blanks))
        else:
            cells.append(_text_cells(col, wrap, rows[col.key], flags, formats, blanks))
    return cells


_NUMBERS = {"seq": NUMBER, "int": NUMBER, "money": NUMBER, "date": DATE}


def _number_cells(
    col: Col,
    series: pl.Series,
    flags: list[int],
    formats: Formats,
    blanks: _Variants,
) -> _Cells:
    if col.kind == "money":
        series = series.cast(pl.Float64)  # as float(Decimal): the nearest double
    values = series.to_list()
    own = _Variants(lambda f: formats.get(col.kind, fill=_fill(f), top=bool(f & _TOP)))
    chosen = [blanks[f] if v is None else own[f] for v, f in zip(values, flags, strict=True)]
    return (_NUMBERS[col.kind], values, chosen)


def _text_cells(
    col: Col,
    wrap: bool,
    series: pl.Series,
    flags: list[int],
    formats: Formats,
    blanks: _Variants,
) -> _Cells:
    text = series.cast(pl.String)
    frame = text.to_frame("v")
    values = frame.select(pl.when(pl.col("v") != "").then(pl.col("v"))).to_series().to_list()
    if col.kind == "colour":
        chosen = [
            blanks[f] if v is None else _colour_format(formats, v, f)
            for v, f in zip(values, flags, strict=True)
        ]
        return (TEXT, values, chosen)
    role = "center" if col.kind == "center" else "text"
    quoted = pl.any_horizontal(pl.col("v").str.starts_with(s) for s in FORMULA_START)
    codes = frame.select(pl.when(quoted).then(_QUOTED).otherwise(0)).to_series().to_list()
    own = _Variants(
        lambda f: formats.get(
            role, wrap=wrap, fill=_fill(f), top=bool(f & _TOP), quoted=bool(f & _QUOTED)
        )
    )
    chosen = [
        blanks[f] if v is None else own[f | q] for v, f, q in zip(values, flags, codes, strict=True)
    ]
    return (TEXT, values, chosen)


def _fill(flags: int) -> str | None:
    return SHADE if flags & _SHADED else None


def _colour_format(formats: Formats, text: str, flags: int) -> Any:
    return formats.get(
        "colour",
        fill=COLOUR_FILLS.get(text, _fill(flags)),
        font_color=COLOUR_FONTS.get(text),
        top=bool(flags & _TOP),
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


def _row_heights(counts: Sequence[pl.Series], n: int, least: float) -> list[float]:
    """Each row's height: its tallest cell's lines, at least `least`. Neither Excel nor
    LibreOffice grows a row for wrapped text on opening, so the height is set."""
    found = [pl.Series("_one", [1] * n, pl.Int64)]
    found += [lines.alias(f"_c{i}") for i, lines in enumerate(counts) if lines.len() == n]
    lines = pl.DataFrame(found).select(pl.max_horizontal(pl.all())).to_series()
    return [max(least, k * LINE_HEIGHT + 6) for k in lines.to_list()]


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
