"""xlsx and parquet: every cell read as text.

An xlsx is refused unread when it would unpack too big (parameters `ingest_limits.xlsx_*`),
read from the one sheet holding the contract's header, and its merged ranges and formula
cells without a saved value are taken from the sheet's XML (workbook.py); a value merged
over several rows is filled into each of them (`fill_merges`). A parquet file's column
names are its header and its values are cast to text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from screening import params
from screening.contract import SourceSpec
from screening.ingest import workbook
from screening.ingest.cells import (
    HEADER_SEARCH_ROWS,
    PARQUET_MAGIC,
    ZIP_MAGIC,
    Cells,
    FileRejected,
    first_line,
    library_failure,
    refuse_other_formats,
)
from screening.ingest.headers import find_header, head_rows

if TYPE_CHECKING:
    from fastexcel import ExcelReader

SHEETS_NAMED_MAX = 5  # sheet names listed in a message or note


def _refuse_inflated(path: Path, limits: params.IngestLimits) -> None:
    """Reading an xlsx takes memory in proportion to its unzipped parts (an 832 KB file
    can unpack to 300 MB of shared strings): too big a workbook is refused unread."""
    unzipped = workbook.unzipped_size(path)
    if unzipped is None:
        return  # not a readable zip: the reader says what is wrong with it
    size = max(path.stat().st_size, 1)
    ratio = unzipped / size
    if unzipped > limits.xlsx_max_unzipped_bytes or ratio > limits.xlsx_max_inflation:
        raise FileRejected(
            f"xlsx 解压后过大，未读入，请另存为 CSV 或拆分 "
            f"xlsx would unpack to {_mb(unzipped)}, {ratio:,.0f}× its {_mb(size)} (limits: "
            f"{_mb(limits.xlsx_max_unzipped_bytes)}, {limits.xlsx_max_inflation}×, "
            "parameters ingest_limits.xlsx_*); not read: save it as CSV or split it"
        )


def _mb(size: int) -> str:
    """A size as people read it: 500 MB, 20.5 MB, 25 KB, 900 bytes."""
    if size >= params.MEGABYTE:
        return f"{f'{size / params.MEGABYTE:,.1f}'.removesuffix('.0')} MB"
    if size >= 1_000:
        return f"{size / 1_000:,.0f} KB"
    return f"{size} bytes"


def listed(sheets: Sequence[str]) -> str:
    """Sheet names as a message lists them: the first few, and how many more."""
    shown = ", ".join(repr(name) for name in sheets[:SHEETS_NAMED_MAX])
    more = len(sheets) - SHEETS_NAMED_MAX
    return shown + (f" and {more} more" if more > 0 else "")


def read_xlsx_cells(path: Path, spec: SourceSpec, limits: params.IngestLimits) -> Cells:
    """Every cell of the sheet holding the header as text, with the sheet's merged ranges
    and its formula cells without a saved value."""
    import fastexcel

    with open(path, "rb") as fh:
        head = fh.read(8)
    refuse_other_formats(head, ".xlsx")
    if not head.startswith(ZIP_MAGIC):
        raise FileRejected(
            "不是 xlsx 工作簿（已损坏或是其他格式），请重新导出 "
            "not an xlsx workbook (damaged or another format)"
        )
    _refuse_inflated(path, limits)
    try:
        reader = fastexcel.read_excel(str(path))
        names = reader.sheet_names
        if not names:
            raise FileRejected("xlsx 工作簿没有工作表 xlsx workbook has no sheet")
        name, cells, offset = _choose_sheet(reader, names, spec)
    except FileRejected:
        raise
    except BaseException as exc:  # fastexcel raises its own error family, or panics
        if not library_failure(exc):
            raise
        raise FileRejected(
            f"xlsx 工作簿已损坏或不完整，请重新导出 "
            f"xlsx workbook is damaged or incomplete ({first_line(exc)})"
        ) from None
    notes = []
    if len(names) > 1:
        cells.sheets = list(names)
        others = [n for n in names if n != name]
        notes.append(f"读入工作表 sheet {name!r} read（其他工作表 other sheets: {listed(others)}）")
    try:
        xml = workbook.read_sheet_xml(path, name)
    except workbook.WorkbookError as exc:
        raise FileRejected(
            f"xlsx 工作簿已损坏或不完整，请重新导出 xlsx workbook is damaged or incomplete ({exc})"
        ) from None
    # Sheet rows are frame rows + 1; sheet columns start at the frame's first column.
    cells.merges = [
        workbook.Merge(
            m.first_row - 1, m.first_col - 1 - offset, m.last_row - 1, m.last_col - 1 - offset
        )
        for m in xml.merges
    ]
    cells.formulas = [workbook.Formula(f.row - 1, f.col - 1 - offset, f.text) for f in xml.formulas]
    cells.notes = notes
    return cells


def _load_sheet(reader: ExcelReader, index: int) -> tuple[pl.DataFrame, int]:
    """Sheet `index` as text from its row 1 on (skip_rows=0 keeps leading empty rows, so
    frame rows are sheet rows), and the sheet column of its first frame column (0-based):
    calamine starts at the first column holding a value."""
    sheet = reader.load_sheet(index, header_row=None, dtypes="string", skip_rows=0)
    columns = sheet.available_columns()
    offset = columns[0].absolute_index if columns else 0
    return sheet.to_polars(), offset


def _choose_sheet(
    reader: ExcelReader, names: list[str], spec: SourceSpec
) -> tuple[str, Cells, int]:
    """The sheet whose header matches the contract; with none, the one coming closest
    (for the missing-column message), with several, none: the file is rejected."""
    if len(names) == 1:
        frame, offset = _load_sheet(reader, 0)
        return names[0], Cells(frame), offset
    matching: list[str] = []
    chosen: tuple[str, Cells, int] | None = None
    closest: tuple[int, str, Cells, int] | None = None
    for index, name in enumerate(names):
        frame, offset = _load_sheet(reader, index)
        header = find_header(head_rows(frame, HEADER_SEARCH_ROWS), spec)
        if header.found:
            matching.append(name)
            if chosen is None:
                chosen = (name, Cells(frame), offset)
        elif chosen is None and (closest is None or header.hits > closest[0]):
            # Only its top rows are needed, for the message.
            closest = (header.hits, name, Cells(frame.head(HEADER_SEARCH_ROWS)), offset)
    if len(matching) > 1:
        raise FileRejected(
            f"多个工作表 {listed(matching)} 都有 {spec.source} 表头，请只在一个工作表中保留数据 "
            f"sheets {listed(matching)} each hold a {spec.source} header; "
            "keep the data on one sheet (delete the others, or save the one to read as CSV)"
        )
    if chosen is not None:
        return chosen
    assert closest is not None
    _hits, name, cells, offset = closest
    cells.sheets = names
    return name, cells, offset


def read_parquet_cells(path: Path) -> Cells:
    """Every value of a parquet file as text, its column names as the first row: they are
    the header."""
    table = _read_parquet(path)
    if not table.columns:
        raise FileRejected("空文件（没有列） empty file (no columns)")
    header_row = pl.DataFrame([table.columns], schema=table.columns, orient="row")
    frame = pl.concat([header_row, table]) if table.height else header_row
    return Cells(frame, search_rows=1)


def _read_parquet(path: Path) -> pl.DataFrame:
    with open(path, "rb") as fh:
        head = fh.read(8)
    refuse_other_formats(head, ".parquet")
    if not head.startswith(PARQUET_MAGIC):
        raise FileRejected(
            "不是 parquet 文件（已损坏或是其他格式），请重新导出 "
            "not a parquet file (damaged or another format)"
        )
    try:
        frame = pl.read_parquet(path)
    except BaseException as exc:  # pyarrow/polars raise many kinds for damaged files
        if not library_failure(exc):
            raise
        raise FileRejected(
            f"parquet 文件无法读取，请重新导出 parquet cannot be read ({first_line(exc)})"
        ) from None
    # Dates become ISO text and floats keep their digits, as the normalisers expect.
    return pl.DataFrame([_as_text(frame.get_column(name)) for name in frame.columns])


def _as_text(column: pl.Series) -> pl.Series:
    unusable = (
        f"parquet 列 {column.name!r} 的值不是普通值，请导出为普通文本或数字 "
        f"parquet column {column.name!r} holds {column.dtype} values, not plain values"
    )
    if column.dtype.is_nested() or column.dtype in (pl.Binary, pl.Object):
        raise FileRejected(unusable)
    try:
        return column.cast(pl.String)
    except pl.exceptions.PolarsError:  # durations, for one, have no text form
        raise FileRejected(unusable) from None


def fill_merges(
    body: pl.DataFrame, merges: list[workbook.Merge], header: int, columns: list[str]
) -> tuple[pl.DataFrame, list[int]]:
    """Each vertically merged range below the header filled down its first column, in the
    rows that hold anything else (`__filled`: a merge running past the data does not make
    rows). Returns the body and the positions of the columns that were filled."""
    spans = [
        (m.first_col, m.first_row + 1, m.last_row + 1)  # row numbers, as in `body`
        for m in merges
        if m.last_row > m.first_row and m.first_row > header and 0 <= m.first_col < len(columns)
    ]
    if not spans:
        return body, []
    frame = pl.DataFrame(spans, schema=["col", "top", "bottom"], orient="row")
    filled: list[int] = []
    for (col,), group in frame.group_by("col", maintain_order=True):
        name = columns[int(col)]
        rows = (
            group.select(
                pl.int_ranges(pl.col("top") + 1, pl.col("bottom") + 1).alias("row_number"),
                pl.col("top"),
            )
            .explode("row_number")
            .unique("row_number", keep="first")
        )
        tops = body.select(pl.col("row_number").alias("top"), pl.col(name).alias("__merged"))
        fills = rows.join(tops, on="top").select(
            pl.col("row_number").cast(pl.Int64), pl.col("__merged")
        )
        body = (
            body.join(fills, on="row_number", how="left", maintain_order="left")
            .with_columns(
                pl.when(pl.col("__merged").is_not_null() & pl.col("__filled"))
                .then(pl.col("__merged"))
                .otherwise(pl.col(name))
                .alias(name)
            )
            .drop("__merged")
        )
        filled.append(int(col))
    return body, filled
