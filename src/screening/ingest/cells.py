"""What the format readers (text.py for CSV, sheets.py for xlsx and parquet) share: the
all-text `Cells` they return, `FileRejected` for a file that cannot be used at all, and
the magic numbers that name a file's real format whatever its suffix says.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from screening.ingest import workbook

if TYPE_CHECKING:
    from screening.ingest.text import TextEncoding

ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls (and .doc) format

# The header is looked for in this many rows from the top (title rows above it).
HEADER_SEARCH_ROWS = 10
# The CSV column that catches fields beyond the header's (see text.read_csv_cells).
OVERFLOW = "__overflow"


class FileRejected(Exception):
    """The file cannot be used at all; str(exc) is the one-line reason."""


@dataclass
class Cells:
    """Every cell of the file as text, columns named by position (c0, c1, … and perhaps
    OVERFLOW); frame row i is spreadsheet row i + 1."""

    frame: pl.DataFrame
    encoding: TextEncoding | None = None
    notes: list[str] = field(default_factory=list)
    search_rows: int = HEADER_SEARCH_ROWS  # rows the header may be in
    sheets: list[str] = field(default_factory=list)  # an xlsx's sheets, when more than one
    merges: list[workbook.Merge] = field(default_factory=list)  # frame rows/cols, 0-based
    formulas: list[workbook.Formula] = field(default_factory=list)  # frame rows/cols, 0-based


def refuse_other_formats(head: bytes, suffix: str) -> None:
    """Name the format of a file that is plainly something else than its suffix says."""
    if suffix != ".xlsx" and head.startswith(ZIP_MAGIC):
        raise FileRejected(
            f"这是 xlsx 文件却以 {suffix} 命名，请另存为 "
            f".xlsx this is a zip/xlsx file with a {suffix} name; save it as .xlsx"
        )
    if head.startswith(OLE2_MAGIC):
        raise FileRejected(
            "这是旧版 Excel .xls 文件，请另存为 .xlsx 或 "
            "CSV this is an old-format Excel .xls file; save it as .xlsx or CSV"
        )
    if suffix != ".parquet" and head.startswith(PARQUET_MAGIC):
        raise FileRejected(
            f"这是 parquet 文件却以 {suffix} 命名，请改名为 "
            f".parquet this is a parquet file with a {suffix} name; name it .parquet"
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRejected(
            "这是 UTF-16 文本（“Unicode 文本”），请另存为 "
            "CSV UTF-8 this is UTF-16 text ('Unicode text'); save it as CSV UTF-8"
        )
    if head.startswith(b"%PDF"):
        raise FileRejected(
            "这是 PDF 文档，不是数据文件，请向部门索取 xlsx 或 "
            "CSV this is a PDF document, not a data file"
        )


def library_failure(exc: BaseException) -> bool:
    """True for errors a reading library raises on bad input. Rust extensions (polars,
    fastexcel) turn an internal panic into PanicException, which is a BaseException."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
