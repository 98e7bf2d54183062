"""Compare two published output folders: the same files, the csv and parquet files equal,
the xlsx workbooks equal in their cells, formats and sheet settings.

    python -m dev.compare_lists BEFORE AFTER

What a run makes differently each time is set aside: the run id (批次号), the 核对码 (an
HMAC under each database's own secret) and the day the lists were made (生成日期, the run's
date). Everything else must match: every cell's value and type, font, fill, border,
alignment, number format and protection, merged ranges, column widths and row heights,
page setup, margins, print titles, page breaks, header and footer, data validations,
sheet protection and the frozen panes. A writer rewritten for speed is checked with it
against the writer it replaces (docs/benchmarks.md).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl

RUN_ID = re.compile(r"\d{4}-\d{2}-\d{8}T\d{6}-[0-9a-f]{6}")
MADE = re.compile(r"生成日期：\d{4}-\d{2}-\d{2}")
DUE = re.compile(r"即 \d{4}-\d{2}-\d{2} 前")
LIST_KEY_HEADER = "核对码"


def _text(value: Any) -> Any:
    if isinstance(value, str):
        value = RUN_ID.sub("RUN", value)
        value = MADE.sub("生成日期：DAY", value)
        return DUE.sub("即 DAY 前", value)
    return value


def _style(cell: Any) -> tuple[Any, ...]:
    f, b, a, p = cell.font, cell.border, cell.alignment, cell.protection

    def side(s: Any) -> tuple[Any, ...]:
        return (s.style, s.color.rgb if s.color is not None else None)

    return (
        (f.name, f.sz, f.b, f.i, f.color.rgb if f.color is not None else None),
        (cell.fill.fill_type, cell.fill.fgColor.rgb),
        tuple(side(s) for s in (b.left, b.right, b.top, b.bottom)),
        (a.horizontal, a.vertical, a.wrap_text),
        cell.number_format,
        (p.locked, p.hidden),
        cell.quotePrefix,
    )


def sheet_facts(sheet: Any) -> Iterator[tuple[str, Any]]:
    """Everything compared of one sheet, as (what, value) pairs."""
    keys = set()
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value == LIST_KEY_HEADER:
                keys.add(cell.column)
    for row in sheet.iter_rows():
        for cell in row:
            value = (
                "KEY"
                if cell.column in keys and cell.value not in (None, LIST_KEY_HEADER)
                else cell.value
            )
            yield f"{cell.coordinate} value", (_text(value), cell.data_type)
            yield f"{cell.coordinate} style", _style(cell)
    yield "merged", sorted(str(r) for r in sheet.merged_cells.ranges)
    yield "columns", {k: (d.width, d.hidden) for k, d in sorted(sheet.column_dimensions.items())}
    yield "rows", {k: (d.height, d.hidden) for k, d in sorted(sheet.row_dimensions.items())}
    s = sheet.page_setup
    yield "page", (s.orientation, s.paperSize, s.fitToWidth, s.fitToHeight, s.scale)
    yield (
        "fit",
        sheet.sheet_properties.pageSetUpPr.fitToPage
        if sheet.sheet_properties.pageSetUpPr
        else None,
    )
    m = sheet.page_margins
    yield "margins", (m.left, m.right, m.top, m.bottom, m.header, m.footer)
    yield "centred", (sheet.print_options.horizontalCentered, sheet.print_options.verticalCentered)
    yield "print titles", (sheet.print_title_rows, sheet.print_title_cols)
    yield "breaks", [b.id for b in sheet.row_breaks.brk]
    yield "header", (sheet.oddHeader.center.text, sheet.oddFooter.center.text)
    yield (
        "validations",
        sorted(
            (str(v.sqref), v.type, v.operator, v.formula1, v.formula2, v.error, v.prompt)
            for v in sheet.data_validations.dataValidation
        ),
    )
    p = sheet.protection
    yield "protection", (p.sheet, p.password, p.formatColumns, p.formatRows, p.selectLockedCells)
    yield "panes", sheet.freeze_panes
    yield "state", sheet.sheet_state


def workbook_differences(a: Path, b: Path, limit: int = 5) -> list[str]:
    book_a, book_b = openpyxl.load_workbook(a), openpyxl.load_workbook(b)
    if book_a.sheetnames != book_b.sheetnames:
        return [f"sheets {book_a.sheetnames} ≠ {book_b.sheetnames}"]
    found = []
    if book_a.active.title != book_b.active.title:
        found.append("the active sheet differs")
    for name in book_a.sheetnames:
        facts_a = dict(sheet_facts(book_a[name]))
        facts_b = dict(sheet_facts(book_b[name]))
        for key in sorted(set(facts_a) | set(facts_b)):
            if facts_a.get(key) != facts_b.get(key):
                found.append(f"{name} {key}: {facts_a.get(key)!r} ≠ {facts_b.get(key)!r}")
                if len(found) >= limit:
                    return found
    return found


def csv_text(path: Path) -> str:
    text = RUN_ID.sub("RUN", path.read_text(encoding="utf-8-sig"))
    frame = pl.read_csv(text.encode(), infer_schema=False)
    if LIST_KEY_HEADER in frame.columns:
        frame = frame.with_columns(pl.lit("KEY").alias(LIST_KEY_HEADER))
    return frame.write_csv()


def parquet_frame(path: Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    return frame.drop([c for c in ("run_id", "list_key") if c in frame.columns])


def compare(before: Path, after: Path) -> list[str]:
    """Each difference between the two output folders, one line each."""
    files_a = sorted(p.relative_to(before) for p in before.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(after) for p in after.rglob("*") if p.is_file())
    problems = []
    if files_a != files_b:
        problems.append(f"files differ: {sorted(set(files_a) ^ set(files_b))}")
    for rel in sorted(set(files_a) & set(files_b)):
        a, b = before / rel, after / rel
        if rel.suffix == ".xlsx":
            problems += [f"{rel}: {d}" for d in workbook_differences(a, b)]
        elif rel.suffix == ".csv":
            if csv_text(a) != csv_text(b):
                problems.append(f"{rel}: csv differs")
        elif rel.suffix == ".parquet" and not parquet_frame(a).equals(parquet_frame(b)):
            problems.append(f"{rel}: parquet differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    before, after = Path(args[0]), Path(args[1])
    problems = compare(before, after)
    files = sum(1 for p in before.rglob("*") if p.suffix in (".xlsx", ".csv", ".parquet"))
    for line in problems:
        print(line)
    print(f"{files} files compared, {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
