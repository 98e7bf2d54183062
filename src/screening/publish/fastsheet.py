"""xlsxwriter's worksheet, with its two per-cell paths made fast for the lists' bulk of cells.

A long list is about a million cells (28,000 households and their members). xlsxwriter spends
most of its time on two things per cell: the public write_* methods (argument parsing, a
bounds check, a tuple) and, when the workbook is closed, `_write_cell` (an attribute list,
escaping of the cell reference and the format index, a type test by class name). For the
kinds of cell the lists write — text, numbers, dates and blanks, each with a format —
`FastSheet.write_prepared` stores a whole row's cells at once, and `_write_cell` writes
their XML in one formatted string. Anything else (formulas, rich strings, a cell without a
format, constant-memory mode) goes through xlsxwriter's own code.

Both paths use xlsxwriter's internals (the cell table, the shared-string table, the cell
tuples, the XML file handle), as pinned in uv.lock: `PlainSheet` does the same through the
public API only, and tests/pipeline/test_publish.py checks that the two write the same
bytes. docs/benchmarks.md measures the difference.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import (
    CellBlankTuple,
    CellDatetimeTuple,
    CellNumberTuple,
    CellStringTuple,
    Worksheet,
)

# How a prepared cell is written (None as a value: a blank cell with its format).
TEXT, NUMBER, DATE = "string", "number", "datetime"
_SHORT = 32767 // 2  # shorter strings cannot exceed Excel's limit: no truncation check


class PlainSheet(Worksheet):
    """The reference: a prepared row written cell by cell through the public API."""

    def write_prepared(
        self,
        row: int,
        values: Sequence[Any],
        formats: Sequence[Format],
        kinds: Sequence[str],
    ) -> None:
        for col, (value, cell_format, kind) in enumerate(zip(values, formats, kinds, strict=True)):
            if value is None:
                self.write_blank(row, col, None, cell_format)
            elif kind == TEXT:
                self.write_string(row, col, value, cell_format)
            elif kind == NUMBER:
                self.write_number(row, col, value, cell_format)
            else:
                self.write_datetime(row, col, value, cell_format)


class FastSheet(PlainSheet):
    """The same cells and bytes as `PlainSheet`, without the per-cell overhead."""

    def __init__(self) -> None:
        super().__init__()
        self._columns: list[str] = []

    def write_prepared(
        self,
        row: int,
        values: Sequence[Any],
        formats: Sequence[Format],
        kinds: Sequence[str],
    ) -> None:
        # Every column of the row gets a cell with a format (blank or not), so the row's
        # first and last columns bound it as the public methods' per-cell checks would.
        last = len(values) - 1
        if (
            self.constant_memory
            or last < 0
            or self._check_dimensions(row, 0)
            or self._check_dimensions(row, last)
        ):
            super().write_prepared(row, values, formats, kinds)
            return
        cells = self.table[row]
        shared = self.str_table._get_shared_string_index
        new = tuple.__new__  # the cell tuples without their Python-level constructors
        for col, value, cell_format, kind in zip(
            range(last + 1), values, formats, kinds, strict=True
        ):
            if cell_format is None:
                super().write_prepared(row, values, formats, kinds)  # not a cell of ours
                return
            if value is None:
                cells[col] = new(CellBlankTuple, (cell_format,))
            elif kind == TEXT and len(value) <= _SHORT:
                cells[col] = new(CellStringTuple, (shared(value), cell_format))
            elif kind == NUMBER and math.isfinite(value):
                cells[col] = new(CellNumberTuple, (value, cell_format))
            else:  # dates, and the rare text or number xlsxwriter must check
                getattr(self, f"_write_{kind}")(row, col, value, cell_format)

    def _calculate_spans(self) -> None:
        # Each block of 16 rows: the first and last column holding a cell (1-based), as
        # xlsxwriter's loop over every column of every row finds them.
        if self.comments:
            super()._calculate_spans()
            return
        bounds: dict[int, tuple[int, int]] = {}
        low, high = self.dim_rowmin, self.dim_rowmax
        for row_num, cells in self.table.items():
            if cells and low <= row_num <= high:
                block = row_num // 16
                first, last = min(cells), max(cells)
                if block in bounds:
                    first, last = min(first, bounds[block][0]), max(last, bounds[block][1])
                bounds[block] = (first, last)
        self.row_spans = {b: f"{first + 1}:{last + 1}" for b, (first, last) in bounds.items()}

    def _write_rows(self) -> None:
        # xlsxwriter's loop, with the cells of a row written as one string.
        if self.comments or self.constant_memory:
            super()._write_rows()
            return
        self._calculate_spans()
        table, row_info, spans, write = self.table, self.row_info, self.row_spans, self.fh.write
        for row_num in range(self.dim_rowmin, self.dim_rowmax + 1):
            cells = table.get(row_num)
            if cells:
                self._write_row(row_num, spans.get(row_num // 16), row_info.get(row_num))
                write("".join([self._cell_xml(row_num, c, cells[c]) for c in sorted(cells)]))
                write("</row>")
            elif row_num in row_info:
                self._write_row(row_num, spans.get(row_num // 16), row_info[row_num], True)

    def _cell_xml(self, row: int, col: int, cell: Any) -> str:
        kind = cell.__class__
        cell_format = cell.format
        if cell_format is None or kind not in _FAST_KINDS:
            return self._xml_of(row, col, cell)
        while col >= len(self._columns):
            self._columns.append(xl_col_to_name(len(self._columns)))
        head = f'<c r="{self._columns[col]}{row + 1}" s="{cell_format._get_xf_index()}"'
        if kind is CellStringTuple:
            return f'{head} t="s"><v>{cell.string}</v></c>'
        if kind is CellBlankTuple:
            return f"{head}/>"
        return f"{head}><v>{cell.number:.16G}</v></c>"

    def _xml_of(self, row: int, col: int, cell: Any) -> str:
        """What xlsxwriter's own `_write_cell` writes for the cell."""
        saved: Any = self.fh  # type: ignore[has-type]
        text = io.StringIO()
        self.fh = text
        try:
            Worksheet._write_cell(self, row, col, cell)
        finally:
            self.fh = saved
        return text.getvalue()


_FAST_KINDS = (CellStringTuple, CellBlankTuple, CellNumberTuple, CellDatetimeTuple)
