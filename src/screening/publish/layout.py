"""How the printed sheets of the lists are laid out: columns, cell formats, sizes, A4.

Every sheet of a published workbook prints on A4, one page wide, with its body in
FONT_SIZE-point type. A spreadsheet program fits the columns to the page width by scaling
the page down (`fit_scale`), so the type a village officer reads is FONT_SIZE × that scale:
the writers size each column to its text and narrow the columns that may wrap (`Col.wrap`)
until the body prints at TARGET_POINTS or more (`fit_widths`). tests/support/print_size.py
computes the same from a written file, independently; `make check-xlsx` measures it on the
pages LibreOffice renders.

Column widths are in Excel's unit, the width of a digit of the default font (Calibri 11:
7 pixels); a CJK (wide or full-width) character of 10-point text takes about two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

FONT_SIZE = 10
MIN_PRINT_POINTS = 9.0  # the smallest body type a sheet may print at (the floor)
TARGET_POINTS = 9.3  # what the writers aim for: room for a program's own rounding
LINE_HEIGHT = 14.0  # points per line of 10-point text, CJK fallback fonts included
MIN_ROW_HEIGHT = 24.0  # a household's row: room to write an answer by hand
PADDING = 2  # width units beside a cell's text
NARROWEST = 6  # the least a wrapping column is given: three CJK characters a line
# A4 in points, and the margins in inches (the header and footer sit in the top and bottom).
A4_WIDTH, A4_HEIGHT = 595.28, 841.89
MARGINS = {"left": 0.3, "right": 0.3, "top": 0.75, "bottom": 0.6}
_DIGIT_PIXELS = 7  # Calibri 11, xlsxwriter's default font
_CELL_PIXELS = 5  # padding Excel adds to every column
_DIGIT_POINTS = 0.507 * 11  # the advance of Calibri's (and Carlito's) '0' at 11 points

# East Asian Wide and Fullwidth characters that lists carry (CJK ideographs and
# punctuation, kana, hangul, full-width forms): two width units each. (Emoji, also wide,
# count as one: no list has them.)
WIDE = (
    "[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe10-\ufe19\ufe30-\ufe6b\uff00-\uff60\uffe0-\uffe6"
    "\U00020000-\U0003fffd]"
)
_WIDE_RE = re.compile(WIDE)
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
GREY = "#808080"


@dataclass(frozen=True)
class Col:
    """One column of a printed sheet."""

    header: str
    key: str
    kind: str = "text"  # text | center | seq | int | money | date | colour
    min_width: float = 4  # the narrowest it may get (wrapping columns shrink towards it)
    max_width: float = 30  # the widest it gets; longer text wraps
    wrap: bool = False  # may be narrowed below its text, which then wraps
    answer: bool = False  # filled in by the township: unlocked, blank when published


# ---------------------------------------------------------------- text sizes


def display_width(text: str) -> int:
    """Width units of `text` on one line: a wide (CJK) character two, others one."""
    return len(text) + len(_WIDE_RE.findall(text))


def width_expr(text: pl.Expr) -> pl.Expr:
    """`display_width` of every value of a String expression (0 for null)."""
    return (text.str.len_chars() + text.str.count_matches(WIDE)).fill_null(0)


def widest_line(text: pl.Expr) -> pl.Expr:
    """The display width of the widest line of each value (lines split at newlines)."""
    return text.str.split("\n").list.eval(width_expr(pl.element())).list.max().fill_null(0)


def lines_needed(text: pl.Expr, width: float) -> pl.Expr:
    """Lines each value takes in a column `width` units wide, every line of it wrapped
    (rounded up, so the estimate errs towards room)."""
    room = max(width - PADDING, 1.0)
    per_line = (width_expr(pl.element()) / room).ceil().clip(lower_bound=1)
    return text.str.split("\n").list.eval(per_line).list.sum().fill_null(1).cast(pl.Int64)


def lines_of(text: str, width: float) -> int:
    """`lines_needed` for one text: a title, a heading, a line of a 说明 sheet."""
    room = max(int(width) - PADDING, 1)
    return sum(max(1, -(-display_width(part) // room)) for part in text.split("\n"))


def natural_width(col: Col, shown: pl.Series) -> float:
    """The width a column takes for its text: its widest line and padding, at least what
    its header needs on two lines, within the column's bounds."""
    widest = int(shown.to_frame("v").select(widest_line(pl.col("v")).max()).item() or 0)
    header = max(display_width(part) for part in col.header.split("\n"))
    header_room = -(-header // 2) + PADDING if "\n" not in col.header else header + PADDING
    return float(min(max(widest + PADDING, header_room, col.min_width), col.max_width))


def money_text(value: pl.Expr) -> pl.Expr:
    """Amounts as the sheets show them: 12,345.60 (null stays null)."""
    text = value.cast(pl.Decimal(38, 2)).cast(pl.String)
    sign = pl.when(text.str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit(""))
    digits = text.str.strip_chars_start("-")
    whole = digits.str.extract(r"^(\d+)", 1)
    cents = digits.str.extract(r"\.(\d+)$", 1).fill_null("00")
    grouped = (
        whole.str.reverse().str.replace_all(r"(\d{3})", "${1},").str.reverse()
    ).str.strip_chars_start(",")
    return pl.concat_str([sign, grouped, pl.lit("."), cents])


# ---------------------------------------------------------------- the page


def column_points(width: float) -> float:
    """The printed width of a column `width` units wide at 100 %, the wider of two readings
    of the stored width (pixels ÷ 7): Excel's, 7 whole pixels of 0.75 point per unit; and
    LibreOffice's, the default font's digit (Calibri or Carlito 11: 0.507 em, 5.58 points)
    per unit, which prints about 6 % wider."""
    if width <= 0:
        return 0.0
    pixels = int(width * _DIGIT_PIXELS + 0.5) + _CELL_PIXELS if width >= 1 else int(width * 12)
    return max(pixels * 0.75, pixels / _DIGIT_PIXELS * _DIGIT_POINTS)


def printable_width(landscape: bool) -> float:
    paper = A4_HEIGHT if landscape else A4_WIDTH
    return paper - 72 * (MARGINS["left"] + MARGINS["right"])


def fit_scale(widths: Sequence[float], landscape: bool) -> float:
    """The scale (at most 1) that fits the columns on the page width, as a whole percent
    the way Excel rounds it down."""
    total = sum(column_points(w) for w in widths)
    if total <= 0:
        return 1.0
    return min(100, int(100 * printable_width(landscape) / total)) / 100


def fit_widths(cols: Sequence[Col], widths: list[float], landscape: bool) -> list[float]:
    """`widths`, with the wrapping columns narrowed (the one with most room first) until
    the body prints at TARGET_POINTS or more: towards their minimum, and then, if the page
    is still too narrow (a county with more columns than foreseen), towards NARROWEST, so
    that the type never gets smaller than MIN_PRINT_POINTS while a column can still give."""
    widths = list(widths)
    for floor, target in (((c.min_width for c in cols), TARGET_POINTS), (None, MIN_PRINT_POINTS)):
        floors = [NARROWEST] * len(cols) if floor is None else list(floor)
        while FONT_SIZE * fit_scale(widths, landscape) < target:
            give = [
                (w - low, i)
                for i, (c, w, low) in enumerate(zip(cols, widths, floors, strict=True))
                if c.wrap and w - low >= 1
            ]
            if not give:
                break
            _, i = max(give)
            widths[i] -= 1
    return widths


def print_setup(
    sheet: Worksheet,
    *,
    landscape: bool,
    header: str = "",
    repeat: tuple[int, int] | None = None,
) -> None:
    """A4, one page wide and as many tall as needed, centred, page numbers at the foot;
    `header` at the top of every page, rows `repeat` (first, last) printed on every page."""
    if landscape:
        sheet.set_landscape()
    else:
        sheet.set_portrait()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(**MARGINS)
    sheet.center_horizontally()
    if header:
        # '&' starts a header code in Excel, so text from data must have it doubled.
        sheet.set_header(f"&C{header.replace('&', '&&')}")
    sheet.set_footer("&C第 &P 页，共 &N 页")
    if repeat is not None:
        sheet.repeat_rows(*repeat)


def protect(sheet: Worksheet) -> None:
    """Locked against accidental edits, without a password (anyone may unprotect it from
    the menu): only cells formatted unlocked can be typed in; rows and columns may still
    be resized, e.g. to make room for a handwritten note."""
    sheet.protect(
        "",
        {
            "format_columns": True,
            "format_rows": True,
            "select_locked_cells": True,
            "select_unlocked_cells": True,
        },
    )


# ---------------------------------------------------------------- cell formats


class Formats:
    """The cell formats of one workbook, made once each.

    A format is named by its role plus variants: `wrap` (text wraps), `fill` (a
    background), `top` (a heavier line above: a new household starts), `quoted` (Excel's
    quote prefix, which keeps a cell starting with '=' as text even after an edit) and
    `unlocked` (an answer cell of a protected sheet).
    """

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._cache: dict[tuple[Any, ...], Format] = {}

    def get(
        self,
        role: str,
        *,
        wrap: bool = False,
        fill: str | None = None,
        font_color: str | None = None,
        top: bool = False,
        quoted: bool = False,
        unlocked: bool = False,
    ) -> Format:
        key = (role, wrap, fill, font_color, top, quoted, unlocked)
        found = self._cache.get(key)
        if found is None:
            props = dict(_ROLES.get(role, _ROLES["text"]))
            if wrap:
                props["text_wrap"] = True
            if fill:
                props["bg_color"] = fill
            if font_color:
                props["font_color"] = font_color
            if top:
                props["top"] = 2
                props["top_color"] = "#404040"
            if quoted:
                props["quote_prefix"] = True
            if unlocked:
                props["locked"] = False
            found = self._cache[key] = self._workbook.add_format(props)
        return found


_CELL: dict[str, Any] = {
    "font_size": FONT_SIZE,
    "border": 1,
    "border_color": GREY,
    "valign": "vcenter",
}
_ROLES: dict[str, dict[str, Any]] = {
    "text": _CELL,
    "center": {**_CELL, "align": "center"},
    "seq": {**_CELL, "num_format": "0", "align": "center"},
    "int": {**_CELL, "num_format": "0", "align": "center"},
    "money": {**_CELL, "num_format": MONEY_FORMAT},
    "date": {**_CELL, "num_format": DATE_FORMAT, "align": "center"},
    "colour": {**_CELL, "bold": True, "align": "center"},
    "header": {
        **_CELL,
        "bold": True,
        "bg_color": "#D9D9D9",
        "align": "center",
        "text_wrap": True,
    },
    "answer_header": {
        **_CELL,
        "bold": True,
        "bg_color": "#FFF2CC",
        "align": "center",
        "text_wrap": True,
    },
    "title": {"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"},
    "subtitle": {"font_size": FONT_SIZE, "valign": "vcenter"},
    "group": {
        "bold": True,
        "font_size": 11,
        "valign": "vcenter",
        "bg_color": "#EDEDED",
        "border": 1,
        "border_color": GREY,
    },
    "subtotal": {
        "font_size": FONT_SIZE,
        "valign": "vcenter",
        "italic": True,
        "border": 1,
        "border_color": GREY,
        "text_wrap": True,
    },
    "sign": {"font_size": 11, "valign": "bottom"},
    "label": {"bold": True, "valign": "top", "font_size": FONT_SIZE, "text_wrap": True},
    "note": {"text_wrap": True, "valign": "top", "font_size": FONT_SIZE},
    "about_title": {"bold": True, "font_size": 14},
}
