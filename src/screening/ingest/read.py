"""Read one department file into an all-text frame with the contract's column keys.

Every cell arrives as text (IDs must never pass through an integer or float sniffer), with
`row_number` = the spreadsheet row an officer would look at. Columns the contract does not
know are kept as one JSON text column, `extra`. Anything that makes the whole file
unusable raises `FileRejected` with a one-line reason.

Government exports are rarely a clean table (data-contract.md, "Spreadsheet shapes
accepted"): the header is the first of the first 10 rows holding every required column
(title rows above it are skipped), an xlsx is read from the sheet holding that header, a
CSV may be comma-, tab- or semicolon-separated with CR, LF or CRLF line ends, a value
merged over several rows of an xlsx is filled into each of them, and a formula cell with
no saved value sets its row aside (`formula_not_calculated`). Every such decision is in
`RawFile.notes`, which the ingest log records.

A few damaged cells do not make a file unusable: a row holding a cell that is not text
(bytes that are invalid in the file's encoding, a NUL character) or that is longer than a
spreadsheet cell can be is set aside whole, and `RawFile.bad_cells` says which cell and
why, for the quarantine. See docs/reliability.md for every bad input and what it gives.

The format readers are text.py (CSV) and sheets.py (xlsx, parquet); headers.py finds and
maps the header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from screening import params
from screening.contract import SourceSpec
from screening.ingest import workbook
from screening.ingest.cells import OVERFLOW, Cells, FileRejected
from screening.ingest.headers import (
    Header,
    find_header,
    head_rows,
    header_names,
    map_headers,
    unique_labels,
)
from screening.ingest.sheets import fill_merges, listed, read_parquet_cells, read_xlsx_cells
from screening.ingest.text import DAMAGE_MARK, read_csv_cells

# Excel refuses longer cells, so a longer value was not typed by anyone and could not be
# published back into a township's workbook.
CELL_MAX = 32_767
SHOWN_MAX = 200  # characters of a too-long cell kept in the quarantine

QUARANTINE_CHECKS = (
    "too_long",
    "invalid_encoding",
    "invalid_character",
    "too_many_fields",
    "formula_not_calculated",
)
OVERFLOW_LABEL = "(多余字段 extra fields)"
BAD_CELLS_SCHEMA = {
    "row_number": pl.Int64,
    "column": pl.String,
    "check": pl.String,
    "raw_value": pl.String,
}


def _no_bad_cells() -> pl.DataFrame:
    return pl.DataFrame(schema=BAD_CELLS_SCHEMA)


@dataclass
class RawFile:
    frame: pl.DataFrame  # column keys (String) + row_number (Int64) + extra (String)
    encoding: str | None  # for CSV: utf-8, utf-8-sig or gb18030
    extras: list[str]  # headers the contract does not know, kept in `extra`
    blank_rows: int  # rows with no value at all, not counted as rows
    # One row per damaged cell (BAD_CELLS_SCHEMA); its rows are not in `frame`.
    bad_cells: pl.DataFrame = field(default_factory=_no_bad_cells)
    bad_rows: int = 0
    damaged_bytes: int = 0  # undecodable byte sequences in a CSV read despite them
    # What was done to read the file's shape (title rows, sheet, delimiter, merged cells…),
    # one short English phrase each, for the ingest log.
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.frame.height + self.bad_rows


def read_source(path: Path, spec: SourceSpec, limits: params.IngestLimits | None = None) -> RawFile:
    """The file as text with the contract's column keys. `limits` (the `ingest_limits`
    parameters in force) default to those in force this month."""
    cells = _read_cells(path, spec, limits or params.ingest_limits())
    frame = cells.frame
    overflow = frame.get_column(OVERFLOW) if OVERFLOW in frame.columns else None
    if overflow is not None:
        frame = frame.drop(OVERFLOW)
    header = find_header(head_rows(frame, cells.search_rows), spec)
    headers = header_names(frame.row(header.index), header.index + 1)
    try:
        mapping = map_headers(headers, spec)
    except FileRejected as exc:
        raise FileRejected(_where_looked(str(exc), header, cells)) from None

    columns = frame.columns
    labels = unique_labels(headers)
    notes = list(cells.notes)
    if header.index:
        notes.append(
            f"表头在第 {header.index + 1} 行，跳过上方 {header.index} 行 "
            f"header on row {header.index + 1}, the {header.index} row(s) above skipped"
        )
    extras = [i for i in range(len(columns)) if i not in mapping]
    unsaved, unsaved_extra = _unsaved_formulas(cells.formulas, header.index, columns, mapping)
    body = frame.slice(header.index + 1).with_row_index("row_number", offset=header.index + 2)
    body = body.with_columns(pl.col("row_number").cast(pl.Int64))
    filled = pl.any_horizontal(
        [pl.col(c).str.strip_chars().str.len_chars() > 0 for c in columns]
    ).fill_null(False)
    if overflow is not None:
        body = body.with_columns(overflow.slice(header.index + 1).alias(OVERFLOW))
        filled = filled | (pl.col(OVERFLOW).str.strip_chars().str.len_chars() > 0).fill_null(False)
    # A formula cell without a value is empty, but its row is a record.
    filled = filled | pl.col("row_number").is_in(unsaved.get_column("row_number").implode())
    body = body.with_columns(filled.alias("__filled"))
    body, merged = fill_merges(body, cells.merges, header.index, columns)
    if merged:
        notes.append(
            "合并单元格已向下填充 "
            f"merged cells filled down in {', '.join(labels[i] for i in merged)} "
            f"({len([m for m in cells.merges if m.last_row > m.first_row])} range(s))"
        )
    kept = body.filter(pl.col("__filled")).drop("__filled")
    blank_rows = body.height - kept.height
    names = {c: mapping.get(i, labels[i]) for i, c in enumerate(columns)}
    kept, ragged = _split_ragged(kept)
    kept, bad_cells = split_damaged(kept, columns, names)
    if unsaved.height:
        kept = kept.filter(~pl.col("row_number").is_in(unsaved.get_column("row_number").implode()))
        notes.append(
            f"{unsaved.height} 个公式单元格没有保存的值，所在行已拒收，"
            "请用 Excel 或 WPS 打开后保存 "
            f"{unsaved.height} formula cell(s) without a saved value, their rows set aside: "
            "open and save the file in Excel or WPS"
        )
    if unsaved_extra:
        notes.append(
            f"额外列中 {unsaved_extra} 个公式单元格没有保存的值 "
            f"{unsaved_extra} formula cell(s) without a saved value in extra columns"
        )
    bad_cells = pl.concat([ragged, bad_cells, unsaved]).sort("row_number", "column")

    # Null rather than a JSON object of nulls when the row has nothing in its extras.
    extra = (
        pl.when(pl.any_horizontal([pl.col(columns[i]).is_not_null() for i in extras]))
        .then(pl.struct([pl.col(columns[i]).alias(labels[i]) for i in extras]).struct.json_encode())
        .otherwise(None)
        if extras
        else pl.lit(None, pl.String)
    )
    out = kept.select(
        pl.col("row_number"),
        *[pl.col(columns[i]).alias(key) for i, key in mapping.items()],
        extra.alias("extra"),
    )
    return RawFile(
        frame=out,
        encoding=cells.encoding.name if cells.encoding else None,
        extras=[labels[i] for i in extras],
        blank_rows=blank_rows,
        bad_cells=bad_cells,
        bad_rows=bad_cells.get_column("row_number").n_unique(),
        damaged_bytes=cells.encoding.damaged if cells.encoding else 0,
        notes=notes,
    )


def _where_looked(reason: str, header: Header, cells: Cells) -> str:
    """A missing-column message with where the header was looked for."""
    if header.hits == 0 and cells.search_rows > 1:
        reason += (
            f"；前 {cells.search_rows} 行中没有表头 "
            f"no row among the first {cells.search_rows} holds the header"
        )
    elif header.index:
        reason += f"（表头取第 {header.index + 1} 行 header taken to be row {header.index + 1})"
    if cells.sheets:
        reason += f"；查看过的工作表 sheets looked at: {listed(cells.sheets)}"
    return reason


def _read_cells(path: Path, spec: SourceSpec, limits: params.IngestLimits) -> Cells:
    """Every cell as text, header row included, columns named by position."""
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise FileRejected("空文件（0 字节，没有表头行） empty file (0 bytes, no header row)")
    if suffix == ".csv":
        cells = read_csv_cells(path, spec)
    elif suffix == ".xlsx":
        cells = read_xlsx_cells(path, spec, limits)
    elif suffix == ".parquet":
        cells = read_parquet_cells(path)
    else:
        raise FileRejected(
            f"不支持的文件类型 {suffix!r}，请另存为 .xlsx、CSV（UTF-8 或 GBK）或 parquet "
            f"unsupported file type {suffix!r}: save it as .xlsx, CSV (UTF-8 or GBK) or parquet"
        )
    if cells.frame.height == 0 or cells.frame.width == 0:
        raise FileRejected("空文件（没有表头行） empty file (no header row)")
    # Positional names: a header may say anything, `row_number` included.
    cells.frame = cells.frame.select(
        pl.col(name).cast(pl.String).alias(OVERFLOW if name == OVERFLOW else f"c{i}")
        for i, name in enumerate(cells.frame.columns)
    )
    return cells


def _cell_problem(column: str) -> pl.Expr:
    cell = pl.col(column)
    return (
        pl.when(cell.str.len_chars() > CELL_MAX)
        .then(pl.lit("too_long"))
        .when(cell.str.contains(DAMAGE_MARK, literal=True))
        .then(pl.lit("invalid_encoding"))
        .when(cell.str.contains("\x00", literal=True))
        .then(pl.lit("invalid_character"))
    )


def _shown(raw: pl.Expr) -> pl.Expr:
    """The raw cell as the quarantine shows it: undecodable bytes and NULs escaped (\\xb3,
    \\x00), a too-long cell cut to its start and its length."""
    length = raw.str.len_chars()
    escaped = raw.str.replace_all(DAMAGE_MARK, "", literal=True).str.replace_all(
        "\x00", "\\x00", literal=True
    )
    cut = pl.concat_str(
        escaped.str.slice(0, SHOWN_MAX),
        pl.lit("… ("),
        length.cast(pl.String),
        pl.lit(" characters)"),
    )
    return pl.when(length > CELL_MAX).then(cut).otherwise(escaped)


def split_damaged(
    body: pl.DataFrame, columns: list[str], labels: dict[str, str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows without a damaged cell, one BAD_CELLS_SCHEMA row per damaged cell).

    `columns` are the cell columns of `body`; `labels` names them for the quarantine.
    A damaged row is set aside whole: the rest of it may be garbled too.
    """
    problems = body.select("row_number", *[_cell_problem(c).alias(c) for c in columns])
    damaged = pl.any_horizontal([pl.col(c).is_not_null() for c in columns])
    flags = problems.select(damaged.alias("damaged")).to_series()
    if not flags.any():
        return body, _no_bad_cells()
    checks = (
        problems.filter(flags)
        .unpivot(index="row_number", on=columns, variable_name="cell", value_name="check")
        .drop_nulls("check")
    )
    values = body.filter(flags).unpivot(
        index="row_number", on=columns, variable_name="cell", value_name="raw"
    )
    bad = checks.join(values, on=["row_number", "cell"], how="left").select(
        pl.col("row_number").cast(pl.Int64),
        pl.col("cell").replace_strict(labels, return_dtype=pl.String).alias("column"),
        pl.col("check"),
        _shown(pl.col("raw")).alias("raw_value"),
    )
    return body.filter(~flags), bad.sort("row_number", "column")


def _split_ragged(body: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows with more fields than the header are set aside whole: which field belongs to
    which column can no longer be told."""
    if OVERFLOW not in body.columns:
        return body, _no_bad_cells()
    ragged = (pl.col(OVERFLOW).str.strip_chars().str.len_chars() > 0).fill_null(False)
    bad = body.filter(ragged).select(
        pl.col("row_number").cast(pl.Int64),
        pl.lit(OVERFLOW_LABEL).alias("column"),
        pl.lit("too_many_fields").alias("check"),
        _shown(pl.col(OVERFLOW)).alias("raw_value"),
    )
    return body.filter(~ragged).drop(OVERFLOW), bad


def _unsaved_formulas(
    formulas: list[workbook.Formula],
    header: int,
    columns: list[str],
    mapping: dict[int, str],
) -> tuple[pl.DataFrame, int]:
    """One BAD_CELLS_SCHEMA row per formula cell without a saved value in a contract
    column below the header, and how many more there are in extra columns (left empty:
    no rule reads them)."""
    rows, extra = [], 0
    for f in formulas:
        if f.row <= header or not 0 <= f.col < len(columns):
            continue
        if f.col in mapping:
            rows.append((f.row + 1, mapping[f.col], "formula_not_calculated", f.text[:SHOWN_MAX]))
        else:
            extra += 1
    bad = pl.DataFrame(rows, schema=BAD_CELLS_SCHEMA, orient="row")
    return bad, extra
