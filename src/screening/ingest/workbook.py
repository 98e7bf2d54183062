"""What fastexcel does not tell about an xlsx workbook, read from the zip itself.

fastexcel (calamine) gives each cell's saved value, but not whether a range of cells is
merged (Excel keeps the value in the range's first cell only) nor whether an empty cell
is a formula that was never calculated (written by a program, not saved by Excel or WPS).
Both are in the sheet's XML part; so are the sizes of the zip's parts, which say how much
memory reading the workbook would take before anything is unpacked.

The sheet XML is streamed in chunks and only searched for the two markers; it is parsed
cell by cell (`iterparse`, one row in memory at a time) only when it holds a formula.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

CHUNK = 1 << 20
# Enough bytes kept from the previous chunk for a tag cut in two by the chunk boundary.
OVERLAP = 256
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
# A formula element, with or without a namespace prefix (<f>, <f t="shared" …/>, <x:f>).
# A false alarm only costs the exact parse.
_FORMULA_MARKS = (b"<f>", b"<f ", b"<f/", b":f>", b":f ", b":f/")
_MERGE_MARK = b"mergeCell"
_MERGE_REF = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?mergeCell\b[^>]*?\bref=\"([A-Z]+[0-9]+:[A-Z]+[0-9]+)\""
)
_CELL_REF = re.compile(r"^([A-Z]+)([0-9]+)$")


class WorkbookError(Exception):
    """The workbook's own structure cannot be followed; str(exc) says where."""


@dataclass(frozen=True)
class Merge:
    """A merged range, 1-based sheet rows and columns, both ends included."""

    first_row: int
    first_col: int
    last_row: int
    last_col: int


@dataclass(frozen=True)
class Formula:
    """A formula cell with no saved value (1-based sheet row and column)."""

    row: int
    col: int
    text: str  # as a spreadsheet shows it, with the leading '='


@dataclass
class SheetXml:
    merges: list[Merge] = field(default_factory=list)
    formulas: list[Formula] = field(default_factory=list)


def unzipped_size(path: Path) -> int | None:
    """The sum of the parts' sizes as the zip's central directory declares them, or None
    when the file is not a readable zip (the reader will say what is wrong with it)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return sum(info.file_size for info in zf.infolist())
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        RuntimeError,  # zipfile: an unsupported version or compression (damage)
    ):
        return None


def column_number(letters: str) -> int:
    """A → 1, Z → 26, AA → 27."""
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


def _cell(ref: str) -> tuple[int, int]:
    m = _CELL_REF.match(ref)
    if not m:
        raise WorkbookError(f"cell reference {ref!r} is not like A1")
    return int(m.group(2)), column_number(m.group(1))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → the zip part holding its XML, as the workbook's relationships say."""
    try:
        root_rels = ET.fromstring(zf.read("_rels/.rels"))
        book = next(
            r.get("Target", "") for r in root_rels if r.get("Type", "").endswith("/officeDocument")
        ).lstrip("/")
        folder, name = posixpath.split(book)
        rels = ET.fromstring(zf.read(posixpath.join(folder, "_rels", f"{name}.rels")))
        targets = {r.get("Id"): r.get("Target", "") for r in rels}
        parts = {}
        for element in ET.fromstring(zf.read(book)).iter():
            if _local(element.tag) != "sheet":
                continue
            target = targets[element.get(f"{{{_REL_NS}}}id")]
            part = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            parts[element.get("name", "")] = posixpath.normpath(part)
        return parts
    except (KeyError, StopIteration, ET.ParseError) as exc:
        raise WorkbookError(f"the workbook's sheet list cannot be followed ({exc})") from None


def read_sheet_xml(path: Path, sheet: str) -> SheetXml:
    """The merged ranges of `sheet` and its formula cells without a saved value."""
    try:
        with zipfile.ZipFile(path) as zf:
            part = sheet_parts(zf).get(sheet)
            if part is None:
                raise WorkbookError(f"sheet {sheet!r} is not in the workbook's sheet list")
            found = SheetXml()
            has_formula = False
            for chunk in _chunks(zf, part):
                if _MERGE_MARK in chunk:
                    found.merges.extend(_merge(m.group(1)) for m in _MERGE_REF.finditer(chunk))
                has_formula = has_formula or any(mark in chunk for mark in _FORMULA_MARKS)
            # A range cut by a chunk boundary is found twice (once in the overlap).
            found.merges = sorted(set(found.merges), key=lambda m: (m.first_col, m.first_row))
            if has_formula:
                found.formulas = list(_unsaved_formulas(zf, part))
            return found
    except (
        zipfile.BadZipFile,
        KeyError,
        ET.ParseError,
        EOFError,
        OSError,
        RuntimeError,  # zipfile: an unsupported version or compression (damage)
    ) as exc:
        raise WorkbookError(f"sheet {sheet!r} cannot be read ({type(exc).__name__})") from None


def _chunks(zf: zipfile.ZipFile, part: str) -> Iterator[bytes]:
    tail = b""
    with zf.open(part) as fh:
        while chunk := fh.read(CHUNK):
            yield tail + chunk
            tail = chunk[-OVERLAP:]


def _merge(ref: bytes) -> Merge:
    first, last = ref.decode("ascii").split(":")
    (r1, c1), (r2, c2) = _cell(first), _cell(last)
    return Merge(min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2))


def _unsaved_formulas(zf: zipfile.ZipFile, part: str) -> Iterator[Formula]:
    """Formula cells whose saved value is missing. An empty value of a text-typed cell
    (t="str") is a formula that calculated to "", which is a saved value."""
    row = col = 0
    sheet_data = None
    with zf.open(part) as fh:
        for event, element in ET.iterparse(fh, events=("start", "end")):
            tag = _local(element.tag)
            if event == "start":
                if tag == "sheetData":
                    sheet_data = element
                elif tag == "row":
                    ref = element.get("r")
                    row, col = (int(ref) if ref else row + 1), 0
                continue
            if tag == "c":
                ref = element.get("r")
                col = _cell(ref)[1] if ref else col + 1
                formula = value = None
                for child in element:
                    name = _local(child.tag)
                    if name == "f":
                        formula = child
                    elif name == "v":
                        value = child
                if formula is not None and (
                    value is None or (not value.text and element.get("t") != "str")
                ):
                    yield Formula(row, col, "=" + (formula.text or "").strip())
                element.clear()
            elif tag == "row":
                element.clear()
                if sheet_data is not None:
                    # Only the current row is ever a child: memory stays one row deep.
                    sheet_data.remove(element)
