"""Reading a published list's first sheet the way a test needs it: a printed list has title
rows above its header and, between its households, each village's heading, subtotal and
signature lines; these helpers find the header and the rows that are households."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

ID_HEADER = "户编号"


def header_row(sheet: Any) -> int:
    """The sheet row (1-based) of the list's header: title rows are above it."""
    for r, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if ID_HEADER in values:
            return r
    raise AssertionError(f"no header row with {ID_HEADER} in {sheet.title}")


def headers_of(sheet: Any) -> list[Any]:
    return [c.value for c in sheet[header_row(sheet)]]


def household_rows(source: Path | Any) -> list[int]:
    """The sheet rows (1-based) that hold a household, in order: of the first sheet of the
    workbook at `source`, or of the sheet `source`."""
    sheet = openpyxl.load_workbook(source).worksheets[0] if isinstance(source, Path) else source
    at = headers_of(sheet).index(ID_HEADER) + 1
    first = header_row(sheet) + 1
    return [r for r in range(first, sheet.max_row + 1) if sheet.cell(r, at).value]


def household_records(sheet: Any) -> list[dict[str, Any]]:
    """Each household row of the sheet as header → value."""
    headers = headers_of(sheet)
    return [
        dict(zip(headers, (c.value for c in sheet[r]), strict=False)) for r in household_rows(sheet)
    ]


def household_at(path: Path, row: int) -> str:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    return str(sheet.cell(row, headers_of(sheet).index(ID_HEADER) + 1).value)
