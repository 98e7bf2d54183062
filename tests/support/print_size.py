"""The type size a sheet prints at, worked out from the written file alone.

A spreadsheet program fits a sheet set to "1 page wide" on the page by scaling it down: the
scale is the page's printable width (paper less the left and right margins) over the
columns' width, at most 100 % and rounded down to a whole percent as Excel does. The body
prints at its cells' font size times that scale. A column's width is the stored width in
digits of the default font, read the wider way of Excel's (7 pixels a digit, a pixel 0.75
point) and LibreOffice's (the digit's own width, 5.58 points).

This is computed from what openpyxl reads back, not from the writer's own arithmetic
(publish/layout.py), so that a writer that got its sums wrong is caught.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter

PAPER_INCHES = {9: (8.27, 11.69)}  # A4: (width, height) portrait
DEFAULT_WIDTH = 8.43  # a column without a width of its own
DEFAULT_FONT_SIZE = 11.0  # Calibri 11, the default style


@dataclass(frozen=True)
class SheetPrint:
    sheet: str
    paper: int | None
    landscape: bool
    scale: float  # 0–1
    body_points: float  # the smallest font size of a non-empty cell
    columns: int

    @property
    def effective_points(self) -> float:
        return self.body_points * self.scale


def column_points(width: float) -> float:
    """The wider of Excel's reading (whole pixels, 7 a digit, 0.75 point each) and
    LibreOffice's (the width in digits of the default font, Calibri or its metric twin
    Carlito 11: 0.507 em a digit)."""
    return max(round(width * 7) * 0.75, width * 0.507 * 11)


def sheet_print(sheet: Any) -> SheetPrint:
    setup = sheet.page_setup
    paper = int(setup.paperSize) if setup.paperSize is not None else None
    landscape = setup.orientation == "landscape"
    width_in, height_in = PAPER_INCHES.get(paper or 9, PAPER_INCHES[9])
    paper_width = (height_in if landscape else width_in) * 72
    margins = sheet.page_margins
    printable = paper_width - 72 * (margins.left + margins.right)
    used = sheet.max_column
    total = 0.0
    for c in range(1, used + 1):
        dim = sheet.column_dimensions.get(get_column_letter(c))
        width = dim.width if dim is not None and dim.width else DEFAULT_WIDTH
        hidden = dim is not None and dim.hidden
        total += 0.0 if hidden else column_points(width)
    fit = bool(sheet.sheet_properties.pageSetUpPr and sheet.sheet_properties.pageSetUpPr.fitToPage)
    # fitToWidth absent means 1 (the OOXML default): one page wide.
    if fit and (1 if setup.fitToWidth is None else setup.fitToWidth) == 1:
        scale = min(100, math.floor(100 * printable / total)) / 100 if total else 1.0
    else:
        scale = (setup.scale or 100) / 100
    sizes = [
        float(cell.font.sz or DEFAULT_FONT_SIZE)
        for row in sheet.iter_rows()
        for cell in row
        if cell.value not in (None, "")
    ]
    return SheetPrint(
        sheet=sheet.title,
        paper=paper,
        landscape=landscape,
        scale=scale,
        body_points=min(sizes) if sizes else DEFAULT_FONT_SIZE,
        columns=used,
    )


def workbook_prints(path: Path) -> list[SheetPrint]:
    """Every sheet of the workbook at `path`."""
    book = openpyxl.load_workbook(path)
    return [sheet_print(sheet) for sheet in book.worksheets]
