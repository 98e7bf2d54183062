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
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import itertools
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import yaml

from screening import params
from screening.contract import SOURCES, SourceSpec, fold_header
from screening.ingest import workbook

if TYPE_CHECKING:
    from fastexcel import ExcelReader

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

QUARANTINE_CHECKS = (
    "too_long",
    "invalid_encoding",
    "invalid_character",
    "too_many_fields",
    "formula_not_calculated",
)
# The header is looked for in this many rows from the top (title rows above it).
HEADER_SEARCH_ROWS = 10
# CSV field separators, tried in this order; the first that yields the header wins.
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon"}
# How alike a header must be to a column's names to be offered as "closest header".
CLOSE_HEADER = 0.5
SHEETS_NAMED_MAX = 5  # sheet names listed in a message or note
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
    # What was done to read the file's shape (title rows, sheet, delimiter, merged cells…),
    # one short English phrase each, for the ingest log.
    notes: list[str] = field(default_factory=list)

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
    if b"\x00" in _first_line_of(head):
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
                if "\n" in pending or "\r" in pending or not chunk or len(pending) >= HEAD_BYTES:
                    header = re.split("[\r\n]", pending, maxsplit=1)[0]
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


def _first_line_of(head: bytes) -> bytes:
    return re.split(rb"[\r\n]", head, maxsplit=1)[0]


def cr_line_ends(path: Path) -> bool:
    """Lines ended by CR alone (old Mac exports), which the CSV reader would take for one
    endless line. Decided on the file's start: a CRLF or LF file has an LF there."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return b"\r" in head and b"\n" not in head


def _mark_damage(text: str) -> str:
    return _ESCAPED.sub(lambda m: f"{DAMAGE_MARK}\\x{ord(m.group()) - 0xDC00:02x}", text)


@contextmanager
def utf8_copy(path: Path, encoding: TextEncoding, *, cr_only: bool = False) -> Iterator[Path]:
    """The file itself when it is clean UTF-8 with LF or CRLF line ends, else a streamed
    UTF-8 transcode in a temp file, in which every undecodable byte is marked
    (DAMAGE_MARK + its hex) and, with `cr_only`, every CR is an LF."""
    if encoding.name in ("utf-8", "utf-8-sig") and not encoding.damaged and not cr_only:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="screening-") as tmp:
        target = Path(tmp) / "utf8.csv"
        errors = "surrogateescape" if encoding.damaged else "strict"
        with (
            open(path, encoding=encoding.name, errors=errors, newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            if encoding.damaged or cr_only:
                while text := src.read(CHUNK):
                    text = _mark_damage(text) if encoding.damaged else text
                    dst.write(text.replace("\r", "\n") if cr_only else text)
            else:
                shutil.copyfileobj(src, dst, CHUNK)
        yield target


# ---------------------------------------------------------------- formats


def _library_failure(exc: BaseException) -> bool:
    """True for errors a reading library raises on bad input. Rust extensions (polars,
    fastexcel) turn an internal panic into PanicException, which is a BaseException."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


@dataclass
class _Cells:
    """Every cell of the file as text, columns named by position (c0, c1, … and perhaps
    OVERFLOW); frame row i is spreadsheet row i + 1."""

    frame: pl.DataFrame
    encoding: TextEncoding | None = None
    notes: list[str] = field(default_factory=list)
    search_rows: int = HEADER_SEARCH_ROWS  # rows the header may be in
    sheets: list[str] = field(default_factory=list)  # an xlsx's sheets, when more than one
    merges: list[workbook.Merge] = field(default_factory=list)  # frame rows/cols, 0-based
    formulas: list[workbook.Formula] = field(default_factory=list)  # frame rows/cols, 0-based


def _first_records(utf8: Path, delimiter: str) -> list[list[str]]:
    rows: list[list[str]] = []
    with (
        open(utf8, encoding="utf-8-sig", errors="replace", newline="") as fh,
        contextlib.suppress(csv.Error),  # polars will say what is wrong with the file
    ):
        for row in itertools.islice(csv.reader(fh, delimiter=delimiter), HEADER_SEARCH_ROWS):
            rows.append(row)
    return rows


def _csv_layout(utf8: Path, spec: SourceSpec) -> tuple[str, int]:
    """The delimiter (the first of DELIMITERS under which a row holds the header, else the
    one under which some row holds most of it) and the header row's width."""
    best: tuple[int, str, int] | None = None
    for delimiter in DELIMITERS:
        rows = _first_records(utf8, delimiter)
        if not rows:
            raise FileRejected("empty file (no header row)")
        header = find_header(rows, spec)
        width = len(rows[header.index])
        if header.found:
            return delimiter, width
        if best is None or header.hits > best[0]:
            best = (header.hits, delimiter, width)
    assert best is not None
    return best[1], best[2]


def _read_csv_cells(path: Path, spec: SourceSpec) -> _Cells:
    encoding = sniff_encoding(path)
    cr_only = cr_line_ends(path)
    with utf8_copy(path, encoding, cr_only=cr_only) as utf8:
        delimiter, width = _csv_layout(utf8, spec)
        # One column more than the header: a row with more fields than the header (an
        # unquoted "1,234.50" is the usual cause) shows up there instead of being cut off.
        schema = {f"column_{i + 1}": pl.String for i in range(width)} | {OVERFLOW: pl.String}
        try:
            cells = pl.read_csv(
                utf8,
                has_header=False,
                separator=delimiter,
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
    notes = []
    if delimiter != ",":
        notes.append(f"{DELIMITERS[delimiter]}-separated")
    if cr_only:
        notes.append("CR line ends")
    return _Cells(cells, encoding, notes)


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


def _names(sheets: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in sheets[:SHEETS_NAMED_MAX])
    more = len(sheets) - SHEETS_NAMED_MAX
    return shown + (f" and {more} more" if more > 0 else "")


def _read_xlsx_cells(path: Path, spec: SourceSpec, limits: params.IngestLimits) -> _Cells:
    import fastexcel

    with open(path, "rb") as fh:
        head = fh.read(8)
    refuse_other_formats(head, ".xlsx")
    if not head.startswith(ZIP_MAGIC):
        raise FileRejected("not an xlsx workbook (damaged or another format)")
    _refuse_inflated(path, limits)
    try:
        reader = fastexcel.read_excel(str(path))
        names = reader.sheet_names
        if not names:
            raise FileRejected("xlsx workbook has no sheet")
        name, cells, offset = _choose_sheet(reader, names, spec)
    except FileRejected:
        raise
    except BaseException as exc:  # fastexcel raises its own error family, or panics
        if not _library_failure(exc):
            raise
        raise FileRejected(f"xlsx workbook is damaged or incomplete ({_first_line(exc)})") from None
    notes = []
    if len(names) > 1:
        cells.sheets = list(names)
        others = [n for n in names if n != name]
        notes.append(f"sheet {name!r} read (other sheets: {_names(others)})")
    try:
        xml = workbook.read_sheet_xml(path, name)
    except workbook.WorkbookError as exc:
        raise FileRejected(f"xlsx workbook is damaged or incomplete ({exc})") from None
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
) -> tuple[str, _Cells, int]:
    """The sheet whose header matches the contract; with none, the one coming closest
    (for the missing-column message), with several, none: the file is rejected."""
    if len(names) == 1:
        frame, offset = _load_sheet(reader, 0)
        return names[0], _Cells(frame), offset
    matching: list[str] = []
    chosen: tuple[str, _Cells, int] | None = None
    closest: tuple[int, str, _Cells, int] | None = None
    for index, name in enumerate(names):
        frame, offset = _load_sheet(reader, index)
        header = find_header(_head_rows(frame, HEADER_SEARCH_ROWS), spec)
        if header.found:
            matching.append(name)
            if chosen is None:
                chosen = (name, _Cells(frame), offset)
        elif chosen is None and (closest is None or header.hits > closest[0]):
            # Only its top rows are needed, for the message.
            closest = (header.hits, name, _Cells(frame.head(HEADER_SEARCH_ROWS)), offset)
    if len(matching) > 1:
        raise FileRejected(
            f"sheets {_names(matching)} each hold a {spec.source} header; "
            "keep the data on one sheet (delete the others, or save the one to read as CSV)"
        )
    if chosen is not None:
        return chosen
    assert closest is not None
    _hits, name, cells, offset = closest
    cells.sheets = names
    return name, cells, offset


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


def _read_cells(path: Path, spec: SourceSpec, limits: params.IngestLimits) -> _Cells:
    """Every cell as text, header row included, columns named by position."""
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise FileRejected("empty file (0 bytes, no header row)")
    if suffix == ".csv":
        cells = _read_csv_cells(path, spec)
    elif suffix == ".xlsx":
        cells = _read_xlsx_cells(path, spec, limits)
    elif suffix == ".parquet":
        table = _read_parquet(path)
        if not table.columns:
            raise FileRejected("empty file (no columns)")
        header_row = pl.DataFrame([table.columns], schema=table.columns, orient="row")
        frame = pl.concat([header_row, table]) if table.height else header_row
        cells = _Cells(frame, search_rows=1)  # the column names are the header
    else:
        raise FileRejected(
            f"unsupported file type {suffix!r}: save it as .xlsx, CSV (UTF-8 or GBK) or parquet"
        )
    if cells.frame.height == 0 or cells.frame.width == 0:
        raise FileRejected("empty file (no header row)")
    # Positional names: a header may say anything, `row_number` included.
    cells.frame = cells.frame.select(
        pl.col(name).cast(pl.String).alias(OVERFLOW if name == OVERFLOW else f"c{i}")
        for i, name in enumerate(cells.frame.columns)
    )
    return cells


# ---------------------------------------------------------------- header


@dataclass(frozen=True)
class Header:
    index: int  # 0-based row of the header, or of the row coming closest to one
    found: bool  # that row holds every column the file must carry
    hits: int  # how many of the contract's columns it names


def _head_rows(frame: pl.DataFrame, n: int) -> list[tuple[str | None, ...]]:
    return frame.drop(OVERFLOW, strict=False).head(n).rows()


def _keys_named(row: Sequence[str | None], lookup: dict[str, str]) -> set[str]:
    return {lookup[f] for f in (fold_header(v) for v in row if v) if f in lookup}


def _missing_columns(named: set[str], spec: SourceSpec) -> list[str]:
    missing = [c for c in spec.required_columns if c not in named]
    if spec.id_from_certificate and not {"id_number", spec.id_from_certificate} & named:
        missing.append("id_number")
    return missing


def find_header(rows: Sequence[Sequence[str | None]], spec: SourceSpec) -> Header:
    """The first of `rows` that names every column the file must carry; else the first
    naming the most contract columns (the header the department meant, probably)."""
    lookup = spec.header_lookup()
    best = Header(0, False, 0)
    for index, row in enumerate(rows):
        named = _keys_named(row, lookup)
        if not _missing_columns(named, spec):
            return Header(index, True, len(named))
        if len(named) > best.hits:
            best = Header(index, False, len(named))
    return best


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
    missing = _missing_columns(set(taken), spec)
    if missing:
        unknown = [h for i, h in enumerate(headers) if i not in mapping]
        raise FileRejected(_missing_message(missing, spec, unknown))
    return mapping


def closest_header(key: str, spec: SourceSpec, headers: Sequence[str]) -> str | None:
    """The header in `headers` most like the column's key or one of its aliases."""
    names = [fold_header(n) for n in (key, *spec.columns[key].aliases)]
    best: tuple[float, str] | None = None
    for header in headers:
        folded = fold_header(header)
        score = max(difflib.SequenceMatcher(None, folded, n).ratio() for n in names)
        if score >= CLOSE_HEADER and (best is None or score > best[0]):
            best = (score, header)
    return best[1] if best else None


def _missing_message(missing: list[str], spec: SourceSpec, unknown: Sequence[str]) -> str:
    """Which column is missing, the header in the file most like it, and the aliases-file
    entry that maps that header to the column (a file's headers are never guessed)."""
    parts, aliases = [], {}
    for key in missing:
        names = "/".join(spec.columns[key].aliases)
        part = f"{key} ({names})" if names else key
        near = closest_header(key, spec, unknown)
        if near is not None:
            part += f", closest header in the file: {near!r}"
            aliases[key] = [near]
        parts.append(part)
    message = f"missing required column(s): {'; '.join(parts)}"
    if aliases and spec.source in SOURCES:
        entry = yaml.safe_dump(
            {spec.source: aliases}, allow_unicode=True, default_flow_style=True, width=1_000
        ).strip()
        message += f"; if that is the column, pass --aliases FILE with: {entry}"
    return message


def _header_names(values: Sequence[str | None], row: int) -> list[str]:
    """The header row, trimmed. A blank header cell gets a placeholder name so its values
    are still kept (in `extra`)."""
    headers = []
    for i, value in enumerate(values):
        name = (value or "").strip() or f"column_{i + 1}"
        if len(name) > HEADER_MAX:
            raise FileRejected(
                f"header of column {i + 1} (row {row}) is {len(name)} characters long; "
                "the header must be one of the first rows"
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


# ---------------------------------------------------------------- merged cells, formulas


def _fill_merges(
    body: pl.DataFrame, merges: list[workbook.Merge], header: int, columns: list[str]
) -> tuple[pl.DataFrame, list[int]]:
    """Each vertically merged range below the header filled down its first column, in the
    rows that hold anything else (a merge running past the data does not make rows).
    Returns the body and the positions of the columns that were filled."""
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


# ---------------------------------------------------------------- entry point


def read_source(path: Path, spec: SourceSpec, limits: params.IngestLimits | None = None) -> RawFile:
    """The file as text with the contract's column keys. `limits` (the `ingest_limits`
    parameters in force) default to those in force this month."""
    cells = _read_cells(path, spec, limits or params.ingest_limits())
    frame = cells.frame
    overflow = frame.get_column(OVERFLOW) if OVERFLOW in frame.columns else None
    if overflow is not None:
        frame = frame.drop(OVERFLOW)
    header = find_header(_head_rows(frame, cells.search_rows), spec)
    headers = _header_names(frame.row(header.index), header.index + 1)
    try:
        mapping = map_headers(headers, spec)
    except FileRejected as exc:
        raise FileRejected(_where_looked(str(exc), header, cells)) from None

    columns = frame.columns
    labels = _unique_labels(headers)
    notes = list(cells.notes)
    if header.index:
        notes.append(f"header on row {header.index + 1}, the {header.index} row(s) above skipped")
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
    body, merged = _fill_merges(body, cells.merges, header.index, columns)
    if merged:
        notes.append(
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
            f"{unsaved.height} formula cell(s) without a saved value, their rows set aside: "
            "open and save the file in Excel or WPS"
        )
    if unsaved_extra:
        notes.append(f"{unsaved_extra} formula cell(s) without a saved value in extra columns")
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


def _where_looked(reason: str, header: Header, cells: _Cells) -> str:
    """A missing-column message with where the header was looked for."""
    if header.hits == 0 and cells.search_rows > 1:
        reason += f"; no row among the first {cells.search_rows} holds the header"
    elif header.index:
        reason += f" (header taken to be row {header.index + 1})"
    if cells.sheets:
        reason += f"; sheets looked at: {_names(cells.sheets)}"
    return reason
