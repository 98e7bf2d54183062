"""Read one department file into an all-text frame with the contract's column keys.

Every cell arrives as text (IDs must never pass through an integer or float sniffer), with
`row_number` = the spreadsheet row an officer would look at (the header is row 1). Columns
the contract does not know are kept as one JSON text column, `extra`. Anything that makes
the whole file unusable raises `FileRejected` with a one-line reason.

A few damaged cells do not make a file unusable: a row holding a cell that is not text
(bytes that are invalid in the file's encoding, a NUL character) or that is longer than a
spreadsheet cell can be is set aside whole, and `RawFile.bad_cells` says which cell and
why, for the quarantine. See docs/reliability.md for every bad input and what it gives.
"""

from __future__ import annotations

import codecs
import csv
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .contract import SourceSpec, fold_header

CHUNK = 1 << 20
HEAD_BYTES = 1 << 16
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls (and .doc) format

# Excel refuses longer cells, so a longer value was not typed by anyone and could not be
# published back into a township's workbook.
CELL_MAX = 32_767
# A header cell this long is data or garbage, and would be repeated as a JSON key on every
# row of `extra`.
HEADER_MAX = 1_000
SHOWN_MAX = 200  # characters of a too-long cell kept in the quarantine

# A damaged file is read in the encoding whose reading loses least, if the header row
# decodes cleanly and undecodable byte sequences are at most 1 in 1000 bytes (at least
# DAMAGE_MIN of them are always allowed, for small files). More than that is not damage
# but the wrong encoding or not text at all.
DAMAGE_MIN = 100
DAMAGE_PER_BYTES = 1_000
# Valid multi-byte UTF-8 characters outnumbering invalid sequences this many times is a
# UTF-8 file with damage, not a GBK file: GBK text decodes as UTF-8 only by accident,
# about as often as it fails.
UTF8_EVIDENCE = 10

# Python's surrogateescape turns each undecodable byte into U+DC80..U+DCFF; the transcoded
# copy carries it on as this marker (a noncharacter, never in real data) and its hex.
DAMAGE_MARK = "\ufffe"
_ESCAPED = re.compile("[\udc80-\udcff]")

QUARANTINE_CHECKS = ("too_long", "invalid_encoding", "invalid_character", "too_many_fields")
# The CSV column that catches fields beyond the header's (see _read_csv_cells).
OVERFLOW = "__overflow"
OVERFLOW_LABEL = "(多余字段 extra fields)"
BAD_CELLS_SCHEMA = {
    "row_number": pl.Int64,
    "column": pl.String,
    "check": pl.String,
    "raw_value": pl.String,
}


class FileRejected(Exception):
    """The file cannot be used at all; str(exc) is the one-line reason."""


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

    @property
    def rows_read(self) -> int:
        return self.frame.height + self.bad_rows


# ---------------------------------------------------------------- other formats


def refuse_other_formats(head: bytes, suffix: str) -> None:
    """Name the format of a file that is plainly something else than its suffix says."""
    if suffix != ".xlsx" and head.startswith(ZIP_MAGIC):
        raise FileRejected(f"this is a zip/xlsx file with a {suffix} name; save it as .xlsx")
    if head.startswith(OLE2_MAGIC):
        raise FileRejected("this is an old-format Excel .xls file; save it as .xlsx or CSV")
    if suffix != ".parquet" and head.startswith(PARQUET_MAGIC):
        raise FileRejected(f"this is a parquet file with a {suffix} name; name it .parquet")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRejected("this is UTF-16 text ('Unicode text'); save it as CSV UTF-8")
    if head.startswith(b"%PDF"):
        raise FileRejected("this is a PDF document, not a data file")


# ---------------------------------------------------------------- encoding


@dataclass(frozen=True)
class TextEncoding:
    name: str  # utf-8, utf-8-sig or gb18030
    damaged: int = 0  # undecodable byte sequences; their rows go to the quarantine


@dataclass(frozen=True)
class _Scan:
    encoding: str
    errors: int  # undecodable bytes; counting stops once past the cap ("too many")
    non_ascii: int  # characters above ASCII that decoded cleanly
    header_ok: bool
    header_non_ascii: bool
    cap: int

    @property
    def usable(self) -> bool:
        return self.header_ok and self.errors <= self.cap


def sniff_encoding(path: Path) -> TextEncoding:
    """utf-8-sig, utf-8 or gb18030, decided by decoding the whole file in chunks, and how
    many byte sequences in it are undecodable in that encoding (normally none).

    Decoding every byte (rather than a sample) is what makes the choice safe: a GBK export
    is often pure ASCII for megabytes before the first Chinese name.
    """
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    refuse_other_formats(head, ".csv")
    if b"\x00" in head.split(b"\n", 1)[0]:
        raise FileRejected("binary content (NUL bytes in the header row), not a CSV text file")
    bom = head.startswith(codecs.BOM_UTF8)
    utf8 = _scan(path, "utf-8-sig" if bom else "utf-8")
    if utf8.errors == 0:
        return TextEncoding(utf8.encoding)
    # A BOM, a Chinese header that is valid UTF-8 or mostly valid UTF-8 text: the
    # department meant UTF-8, and a GB18030 reading would turn every name into mojibake.
    if utf8.usable and (
        bom or utf8.header_non_ascii or utf8.non_ascii >= UTF8_EVIDENCE * utf8.errors
    ):
        return TextEncoding(utf8.encoding, utf8.errors)
    gb = _scan(path, "gb18030")
    if gb.errors == 0:
        return TextEncoding(gb.encoding)
    usable = [scan for scan in (utf8, gb) if scan.usable]
    if not usable:
        raise FileRejected("text is neither UTF-8 nor GBK/GB18030 (mixed or damaged encoding)")
    best = min(usable, key=lambda scan: scan.errors)
    return TextEncoding(best.encoding, best.errors)


def _scan(path: Path, encoding: str) -> _Scan:
    cap = max(DAMAGE_MIN, path.stat().st_size // DAMAGE_PER_BYTES)
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    errors = non_ascii = 0
    header: str | None = None
    pending = ""
    with open(path, "rb") as fh:
        while errors <= cap:
            chunk = fh.read(CHUNK)
            text = decoder.decode(chunk, final=not chunk)
            if header is None:
                pending += text
                if "\n" in pending or not chunk or len(pending) >= HEAD_BYTES:
                    header = pending.split("\n", 1)[0]
            bad = len(_ESCAPED.findall(text))
            errors += bad
            non_ascii += len(text) - len(text.encode("ascii", "ignore")) - bad
            if not chunk:
                break
    header = header or ""
    return _Scan(
        encoding=encoding,
        errors=errors,
        non_ascii=non_ascii,
        header_ok=_ESCAPED.search(header) is None,
        header_non_ascii=not header.isascii(),
        cap=cap,
    )


def _mark_damage(text: str) -> str:
    return _ESCAPED.sub(lambda m: f"{DAMAGE_MARK}\\x{ord(m.group()) - 0xDC00:02x}", text)


@contextmanager
def utf8_copy(path: Path, encoding: TextEncoding) -> Iterator[Path]:
    """The file itself when it is clean UTF-8, else a streamed UTF-8 transcode in a temp
    file, in which every undecodable byte is marked (DAMAGE_MARK + its hex)."""
    if encoding.name in ("utf-8", "utf-8-sig") and not encoding.damaged:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="screening-") as tmp:
        target = Path(tmp) / "utf8.csv"
        errors = "surrogateescape" if encoding.damaged else "strict"
        with (
            open(path, encoding=encoding.name, errors=errors, newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            if encoding.damaged:
                while text := src.read(CHUNK):
                    dst.write(_mark_damage(text))
            else:
                shutil.copyfileobj(src, dst, CHUNK)
        yield target


# ---------------------------------------------------------------- formats


def _library_failure(exc: BaseException) -> bool:
    """True for errors a reading library raises on bad input. Rust extensions (polars,
    fastexcel) turn an internal panic into PanicException, which is a BaseException."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _header_width(utf8: Path) -> int:
    with open(utf8, encoding="utf-8-sig", errors="replace", newline="") as fh:
        try:
            return len(next(csv.reader(fh)))
        except StopIteration:
            raise FileRejected("empty file (no header row)") from None
        except csv.Error:
            return 0  # polars will say what is wrong with the file


def _read_csv_cells(path: Path) -> tuple[pl.DataFrame, TextEncoding]:
    encoding = sniff_encoding(path)
    with utf8_copy(path, encoding) as utf8:
        width = _header_width(utf8)
        # One column more than the header: a row with more fields than the header (an
        # unquoted "1,234.50" is the usual cause) shows up there instead of being cut off.
        schema = {f"column_{i + 1}": pl.String for i in range(width)} | {OVERFLOW: pl.String}
        try:
            cells = pl.read_csv(
                utf8,
                has_header=False,
                schema=schema if width else None,
                infer_schema=False,
                truncate_ragged_lines=True,
                missing_columns="insert",
                quote_char='"',
            )
        except pl.exceptions.NoDataError:
            raise FileRejected("empty file (no header row)") from None
        except BaseException as exc:
            if not _library_failure(exc):
                raise
            raise FileRejected(_csv_problem(exc, utf8)) from None
    return cells, encoding


def _csv_problem(exc: BaseException, utf8: Path) -> str:
    # polars quotes the offending field in its message, which may hold personal data, so
    # the message is ours. A stray quote is the usual cause, and its line worth naming.
    line = _first_odd_quote_line(utf8)
    if line is not None:
        return (
            f'not readable as CSV: unbalanced quotes ("), the first on line {line}; '
            "quote the whole value or remove the stray quote"
        )
    return f"not readable as CSV ({type(exc).__name__})"


def _first_odd_quote_line(path: Path) -> int | None:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.count(b'"') % 2:
                return number
    return None


def _read_xlsx_cells(path: Path) -> pl.DataFrame:
    import fastexcel

    with open(path, "rb") as fh:
        head = fh.read(8)
    refuse_other_formats(head, ".xlsx")
    if not head.startswith(ZIP_MAGIC):
        raise FileRejected("not an xlsx workbook (damaged or another format)")
    try:
        reader = fastexcel.read_excel(str(path))
        if not reader.sheet_names:
            raise FileRejected("xlsx workbook has no sheet")
        sheet = reader.load_sheet(0, header_row=None, dtypes="string")
        return sheet.to_polars()
    except FileRejected:
        raise
    except BaseException as exc:  # fastexcel raises its own error family, or panics
        if not _library_failure(exc):
            raise
        raise FileRejected(f"xlsx workbook is damaged or incomplete ({_first_line(exc)})") from None


def _read_parquet(path: Path) -> pl.DataFrame:
    with open(path, "rb") as fh:
        head = fh.read(8)
    refuse_other_formats(head, ".parquet")
    if not head.startswith(PARQUET_MAGIC):
        raise FileRejected("not a parquet file (damaged or another format)")
    try:
        frame = pl.read_parquet(path)
    except BaseException as exc:  # pyarrow/polars raise many kinds for damaged files
        if not _library_failure(exc):
            raise
        raise FileRejected(f"parquet cannot be read ({_first_line(exc)})") from None
    # Dates become ISO text and floats keep their digits, as the normalisers expect.
    return pl.DataFrame([_as_text(frame.get_column(name)) for name in frame.columns])


def _as_text(column: pl.Series) -> pl.Series:
    unusable = f"parquet column {column.name!r} holds {column.dtype} values, not plain values"
    if column.dtype.is_nested() or column.dtype in (pl.Binary, pl.Object):
        raise FileRejected(unusable)
    try:
        return column.cast(pl.String)
    except pl.exceptions.PolarsError:  # durations, for one, have no text form
        raise FileRejected(unusable) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _read_cells(path: Path) -> tuple[pl.DataFrame, TextEncoding | None]:
    """Every cell as text, header row included, columns named by position."""
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise FileRejected("empty file (0 bytes, no header row)")
    encoding: TextEncoding | None = None
    if suffix == ".csv":
        cells, encoding = _read_csv_cells(path)
    elif suffix == ".xlsx":
        cells = _read_xlsx_cells(path)
    elif suffix == ".parquet":
        table = _read_parquet(path)
        if not table.columns:
            raise FileRejected("empty file (no columns)")
        header_row = pl.DataFrame([table.columns], schema=table.columns, orient="row")
        cells = pl.concat([header_row, table]) if table.height else header_row
    else:
        raise FileRejected(
            f"unsupported file type {suffix!r}: save it as .xlsx, CSV (UTF-8 or GBK) or parquet"
        )
    if cells.height == 0 or cells.width == 0:
        raise FileRejected("empty file (no header row)")
    # Positional names: a header may say anything, `row_number` included.
    cells = cells.select(
        pl.col(name).cast(pl.String).alias(OVERFLOW if name == OVERFLOW else f"c{i}")
        for i, name in enumerate(cells.columns)
    )
    return cells, encoding


# ---------------------------------------------------------------- header mapping


def map_headers(headers: list[str], spec: SourceSpec) -> dict[int, str]:
    """Position of each header the contract knows → its column key.

    Two headers that mean the same column make the file ambiguous: we cannot tell which
    one the department meant, so the file is rejected rather than guessed.
    """
    lookup = spec.header_lookup()
    mapping: dict[int, str] = {}
    taken: dict[str, str] = {}
    for position, header in enumerate(headers):
        key = lookup.get(fold_header(header))
        if key is None:
            continue
        if key in taken:
            if taken[key] == header:
                raise FileRejected(f"column {header!r} appears twice; keep only one")
            raise FileRejected(
                f"columns {taken[key]!r} and {header!r} both mean {key}; keep only one"
            )
        taken[key] = header
        mapping[position] = key
    missing = [c for c in spec.required_columns if c not in taken]
    if (
        spec.id_from_certificate
        and "id_number" not in taken
        and spec.id_from_certificate not in taken
    ):
        missing.append("id_number")
    if missing:
        raise FileRejected(_missing_message(missing, spec))
    return mapping


def _missing_message(missing: list[str], spec: SourceSpec) -> str:
    names = ", ".join(
        f"{key} ({'/'.join(spec.columns[key].aliases)})" if spec.columns[key].aliases else key
        for key in missing
    )
    return f"missing required column(s): {names}"


def _header_row(cells: pl.DataFrame) -> list[str]:
    """Row 1, trimmed. A blank header cell gets a placeholder name so its values are still
    kept (in `extra`)."""
    headers = []
    for i, value in enumerate(cells.row(0)):
        name = (value or "").strip() or f"column_{i + 1}"
        if len(name) > HEADER_MAX:
            raise FileRejected(
                f"header of column {i + 1} is {len(name)} characters long; row 1 must be the header"
            )
        headers.append(name)
    return headers


def _unique_labels(headers: list[str]) -> list[str]:
    """Header names made unique (备注, 备注#2) to be keys of the `extra` JSON object."""
    labels: list[str] = []
    used: set[str] = set()
    for name in headers:
        label, n = name, 1
        while label in used:
            n += 1
            label = f"{name}#{n}"
        used.add(label)
        labels.append(label)
    return labels


def _check_second_row_header(cells: pl.DataFrame, spec: SourceSpec, reason: str) -> str:
    """When row 1 is a title above the real header, say so instead of only 'missing'."""
    if cells.height < 2:
        return reason
    lookup = spec.header_lookup()
    row2 = [fold_header(v or "") for v in cells.row(1)]
    hits = sum(1 for v in row2 if v in lookup)
    if hits >= max(2, len(spec.required_columns) // 2):
        return (
            f"{reason}; row 2 looks like the header (a title row above it?): "
            "the header must be row 1"
        )
    return reason


# ---------------------------------------------------------------- damaged cells


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


# ---------------------------------------------------------------- entry point


def read_source(path: Path, spec: SourceSpec) -> RawFile:
    cells, encoding = _read_cells(path)
    overflow = cells.get_column(OVERFLOW) if OVERFLOW in cells.columns else None
    if overflow is not None:
        cells = cells.drop(OVERFLOW)
    headers = _header_row(cells)
    try:
        mapping = map_headers(headers, spec)
    except FileRejected as exc:
        raise FileRejected(_check_second_row_header(cells, spec, str(exc))) from None

    columns = cells.columns
    labels = _unique_labels(headers)
    extras = [i for i in range(len(columns)) if i not in mapping]
    body = cells.slice(1).with_row_index("row_number", offset=2)
    body = body.with_columns(pl.col("row_number").cast(pl.Int64))
    filled = pl.any_horizontal(
        [pl.col(c).str.strip_chars().str.len_chars() > 0 for c in columns]
    ).fill_null(False)
    if overflow is not None:
        body = body.with_columns(overflow.slice(1).alias(OVERFLOW))
        filled = filled | (pl.col(OVERFLOW).str.strip_chars().str.len_chars() > 0).fill_null(False)
    kept = body.filter(filled)
    blank_rows = body.height - kept.height
    names = {c: mapping.get(i, labels[i]) for i, c in enumerate(columns)}
    kept, ragged = _split_ragged(kept)
    kept, bad_cells = split_damaged(kept, columns, names)
    bad_cells = pl.concat([ragged, bad_cells]).sort("row_number", "column")

    # Null rather than a JSON object of nulls when the row has nothing in its extras.
    extra = (
        pl.when(pl.any_horizontal([pl.col(columns[i]).is_not_null() for i in extras]))
        .then(pl.struct([pl.col(columns[i]).alias(labels[i]) for i in extras]).struct.json_encode())
        .otherwise(None)
        if extras
        else pl.lit(None, pl.String)
    )
    frame = kept.select(
        pl.col("row_number"),
        *[pl.col(columns[i]).alias(key) for i, key in mapping.items()],
        extra.alias("extra"),
    )
    return RawFile(
        frame=frame,
        encoding=encoding.name if encoding else None,
        extras=[labels[i] for i in extras],
        blank_rows=blank_rows,
        bad_cells=bad_cells,
        bad_rows=bad_cells.get_column("row_number").n_unique(),
        damaged_bytes=encoding.damaged if encoding else 0,
    )
