"""CSV: the encoding (UTF-8, UTF-8 with BOM or GBK/GB18030, decided on the whole file),
a UTF-8 copy with every undecodable byte marked (DAMAGE_MARK) for the quarantine, the
delimiter (comma, tab or semicolon) and CR-only line ends, and every cell read as text.

A damaged file is still read when the damage is small (see DAMAGE_MIN): the rows holding a
marked byte are set aside by read.split_damaged, the rest is used.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import itertools
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from screening.contract import SourceSpec
from screening.ingest.cells import (
    HEADER_SEARCH_ROWS,
    OVERFLOW,
    Cells,
    FileRejected,
    library_failure,
    refuse_other_formats,
)
from screening.ingest.headers import find_header

CHUNK = 1 << 20
HEAD_BYTES = 1 << 16

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

# CSV field separators, tried in this order; the first that yields the header wins.
DELIMITERS = {",": "逗号 comma", "\t": "制表符 tab", ";": "分号 semicolon"}


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
        raise FileRejected(
            "二进制内容（表头行有 NUL 字节），不是 CSV 文本文件 "
            "binary content (NUL bytes in the header row), not a CSV text file"
        )
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
        raise FileRejected(
            "文本既不是 UTF-8 也不是 GBK/GB18030（编码混杂或损坏），请另存为 CSV UTF-8 "
            "text is neither UTF-8 nor GBK/GB18030 (mixed or damaged encoding)"
        )
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
            raise FileRejected("空文件（没有表头行） empty file (no header row)")
        header = find_header(rows, spec)
        width = len(rows[header.index])
        if header.found:
            return delimiter, width
        if best is None or header.hits > best[0]:
            best = (header.hits, delimiter, width)
    assert best is not None
    return best[1], best[2]


def read_csv_cells(path: Path, spec: SourceSpec) -> Cells:
    """Every cell of a CSV file as text; the notes say how it was read (delimiter, line
    ends), the encoding is in `Cells.encoding`."""
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
            raise FileRejected("空文件（没有表头行） empty file (no header row)") from None
        except BaseException as exc:
            if not library_failure(exc):
                raise
            raise FileRejected(_csv_problem(exc, utf8)) from None
    notes = []
    if delimiter != ",":
        notes.append(f"分隔符 {DELIMITERS[delimiter]}-separated")
    if cr_only:
        notes.append("旧式 Mac 行尾 CR line ends")
    return Cells(cells, encoding, notes)


def _csv_problem(exc: BaseException, utf8: Path) -> str:
    # polars quotes the offending field in its message, which may hold personal data, so
    # the message is ours. A stray quote is the usual cause, and its line worth naming.
    line = _first_odd_quote_line(utf8)
    if line is not None:
        return (
            f'无法按 CSV 读取：引号（"）不成对，第一个在第 {line} 行，'
            "请给整个值加引号或删去多余的引号 "
            f'not readable as CSV: unbalanced quotes ("), the first on line {line}; '
            "quote the whole value or remove the stray quote"
        )
    return f"无法按 CSV 读取，请重新导出 not readable as CSV ({type(exc).__name__})"


def _first_odd_quote_line(path: Path) -> int | None:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.count(b'"') % 2:
                return number
    return None
