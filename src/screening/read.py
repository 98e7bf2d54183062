"""Read one department file into an all-text frame with the contract's column keys.

Every cell arrives as text (IDs must never pass through an integer or float sniffer), with
`row_number` = the spreadsheet row an officer would look at (the header is row 1). Columns
the contract does not know are kept as one JSON text column, `extra`. Anything that makes
the whole file unusable raises `FileRejected` with a one-line reason.
"""

from __future__ import annotations

import codecs
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .contract import SourceSpec, fold_header

CHUNK = 1 << 20
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"


class FileRejected(Exception):
    """The file cannot be used at all; str(exc) is the one-line reason."""


@dataclass
class RawFile:
    frame: pl.DataFrame  # column keys (String) + row_number (Int64) + extra (String)
    encoding: str | None  # for CSV: utf-8, utf-8-sig or gb18030
    mapping: dict[str, str]  # original header → column key
    extras: list[str]  # headers the contract does not know, kept in `extra`
    blank_rows: int  # rows with no value at all, not counted as rows


# ---------------------------------------------------------------- encoding


def sniff_encoding(path: Path) -> str:
    """utf-8-sig, utf-8 or gb18030, decided by decoding the whole file in chunks.

    Decoding every byte (rather than a sample) is what makes the choice safe: a GBK export
    is often pure ASCII for megabytes before the first Chinese name.
    """
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        raise FileRejected("binary content (NUL bytes), not a CSV text file")
    if head.startswith(ZIP_MAGIC):
        raise FileRejected("this is a zip/xlsx file with a .csv name; save it as CSV or .xlsx")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig" if _decodes(path, "utf-8-sig") else _gb_or_reject(path)
    if _decodes(path, "utf-8"):
        return "utf-8"
    return _gb_or_reject(path)


def _gb_or_reject(path: Path) -> str:
    if _decodes(path, "gb18030"):
        return "gb18030"
    raise FileRejected("text is neither UTF-8 nor GBK/GB18030 (mixed or damaged encoding)")


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                if b"\x00" in chunk:
                    raise FileRejected("binary content (NUL bytes), not a CSV text file")
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@contextmanager
def utf8_copy(path: Path, encoding: str) -> Iterator[Path]:
    """The file itself when it is UTF-8, else a streamed UTF-8 transcode in a temp file."""
    if encoding in ("utf-8", "utf-8-sig"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="screening-") as tmp:
        target = Path(tmp) / "utf8.csv"
        with (
            open(path, encoding=encoding, newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            shutil.copyfileobj(src, dst, CHUNK)
        yield target


# ---------------------------------------------------------------- formats


def _read_csv_cells(path: Path) -> tuple[pl.DataFrame, str]:
    encoding = sniff_encoding(path)
    with utf8_copy(path, encoding) as utf8:
        try:
            cells = pl.read_csv(
                utf8,
                has_header=False,
                infer_schema=False,
                truncate_ragged_lines=True,
                quote_char='"',
            )
        except pl.exceptions.NoDataError:
            raise FileRejected("empty file (no header row)") from None
        except pl.exceptions.PolarsError as exc:
            raise FileRejected(f"not readable as CSV ({_first_line(exc)})") from None
    return cells, encoding


def _read_xlsx_cells(path: Path) -> pl.DataFrame:
    import fastexcel

    with open(path, "rb") as fh:
        if fh.read(4) != ZIP_MAGIC:
            raise FileRejected("not an xlsx workbook (damaged or another format)")
    try:
        reader = fastexcel.read_excel(str(path))
        sheet = reader.load_sheet(0, header_row=None, dtypes="string")
        return sheet.to_polars()
    except (zipfile.BadZipFile, Exception) as exc:  # fastexcel raises its own error family
        if isinstance(exc, FileRejected):
            raise
        raise FileRejected(f"xlsx cannot be opened ({_first_line(exc)})") from None


def _read_parquet(path: Path) -> pl.DataFrame:
    with open(path, "rb") as fh:
        if fh.read(4) != PARQUET_MAGIC:
            raise FileRejected("not a parquet file (damaged or another format)")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # pyarrow/polars raise many kinds for damaged files
        raise FileRejected(f"parquet cannot be read ({_first_line(exc)})") from None
    # Dates become ISO text and floats keep their digits, as the normalisers expect.
    return frame.select(pl.all().cast(pl.String))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# ---------------------------------------------------------------- header mapping


def map_headers(headers: list[str], spec: SourceSpec) -> dict[str, str]:
    """Original header → column key for the headers the contract knows.

    Two headers that mean the same column make the file ambiguous: we cannot tell which
    one the department meant, so the file is rejected rather than guessed.
    """
    lookup = spec.header_lookup()
    mapping: dict[str, str] = {}
    taken: dict[str, str] = {}
    for header in headers:
        key = lookup.get(fold_header(header))
        if key is None:
            continue
        if key in taken:
            raise FileRejected(
                f"columns {taken[key]!r} and {header!r} both mean {key}; keep only one"
            )
        taken[key] = header
        mapping[header] = key
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


def _headers_from_first_row(cells: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    """Row 1 is the header. Blank header cells get a placeholder name so their values are
    still kept (in `extra`), and repeated names are numbered so nothing collides."""
    if cells.height == 0:
        raise FileRejected("empty file (no header row)")
    first = cells.row(0)
    headers: list[str] = []
    seen: dict[str, int] = {}
    for i, value in enumerate(first):
        name = (value or "").strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        headers.append(name)
    body = cells.slice(1).rename(dict(zip(cells.columns, headers, strict=True)))
    return headers, body.with_row_index("row_number", offset=2).with_columns(
        pl.col("row_number").cast(pl.Int64)
    )


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


# ---------------------------------------------------------------- entry point


def read_source(path: Path, spec: SourceSpec) -> RawFile:
    suffix = path.suffix.lower()
    encoding: str | None = None
    if suffix == ".csv":
        cells, encoding = _read_csv_cells(path)
    elif suffix == ".xlsx":
        cells = _read_xlsx_cells(path)
    elif suffix == ".parquet":
        table = _read_parquet(path)
        header_row = pl.DataFrame([table.columns], schema=table.columns, orient="row")
        cells = pl.concat([header_row, table]) if table.height else header_row
    else:
        raise FileRejected(f"unsupported file type {suffix!r} (use .csv, .xlsx or .parquet)")

    headers, body = _headers_from_first_row(cells)
    try:
        mapping = map_headers(headers, spec)
    except FileRejected as exc:
        raise FileRejected(_check_second_row_header(cells, spec, str(exc))) from None

    extras = [h for h in headers if h not in mapping]
    body = body.with_columns(pl.col(h).cast(pl.String) for h in headers)
    filled = pl.any_horizontal(
        [pl.col(h).str.strip_chars().str.len_chars() > 0 for h in headers]
    ).fill_null(False)
    blank_rows = body.height - body.filter(filled).height
    body = body.filter(filled)

    # Null rather than a JSON object of nulls when the row has nothing in its extras.
    extra = (
        pl.when(pl.any_horizontal([pl.col(h).is_not_null() for h in extras]))
        .then(pl.struct([pl.col(h) for h in extras]).struct.json_encode())
        .otherwise(None)
        if extras
        else pl.lit(None, pl.String)
    )
    frame = body.select(
        pl.col("row_number"),
        *[pl.col(h).alias(key) for h, key in mapping.items()],
        extra.alias("extra"),
    )
    return RawFile(
        frame=frame, encoding=encoding, mapping=mapping, extras=extras, blank_rows=blank_rows
    )
