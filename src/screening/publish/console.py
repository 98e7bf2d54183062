"""The run report on the console: the same `RunReport` as run-report.md, as rich tables.

Data text is never read as rich markup, and every cell has its ID numbers masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from screening import contract
from screening.ids import mask_text
from screening.ingest import gates
from screening.publish.about import source_status
from screening.publish.report import (
    TOTAL,
    FileRead,
    MatchRate,
    RunReport,
    all_warnings,
    number,
    quality_counts,
    rate,
    risk_counts,
    summary_lines,
    township_colour_counts,
)
from screening.vocab import COLOURS


def render_console(report: RunReport, console: Console) -> None:
    """The same report as rich tables; data text is never read as rich markup."""
    scope = f"（{report.township}）" if report.township else ""
    console.print(Text(f"筛查运行 {report.period}{scope}  批次号 {report.run_id}", style="bold"))
    for line in summary_lines(report):
        console.print(Text(line))
    for warning in all_warnings(report):
        console.print(Text(f"! {warning}", style="yellow"))
    for line in quality_counts(report):
        console.print(Text(f"! 数据质量 data quality: {line}", style="yellow"))
    for r in report.held.iter_rows(named=True):
        outcome = (
            f"已接受 accepted by {r['accepted_by']}" if r["accepted_by"] else "暂扣未用 not used"
        )
        console.print(
            Text(
                f"! 暂扣 held: {contract.label(r['source'])} {r['source']} "
                f"{r['file']}: {gates.GATE_LABELS.get(r['gate'], r['gate'])} "
                f"{gates.percent(r['measured'])} / {gates.percent(r['threshold'])}: {outcome}",
                style="yellow",
            )
        )
    console.print(_files_table(report.files))
    if report.match_rates:
        console.print(_matches_table(report.match_rates))
    console.print(_towns_table(report))
    console.print(_risks_table(report.suspects))
    if report.candidates.height:
        console.print(Text(f"风险消除候选 risk-removal candidates: {report.candidates.height} 户"))
    waiting = int(report.linkage["waiting"].sum()) if report.linkage.height else 0
    if waiting:
        console.print(Text(f"身份核对 records to check (身份核对名单): {waiting} 条"))


def _table(title: str, headers: Sequence[str], right_from: int) -> Table:
    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if i >= right_from else "left")
    return table


def _cells(values: Iterable[object]) -> list[Text]:
    return [Text(mask_text("" if v is None else str(v))) for v in values]


def _files_table(files: Sequence[FileRead]) -> Table:
    table = _table("读入文件 files", ["来源", "文件", "状态", "读入", "接收", "拒收", "重复"], 3)
    for f in files:
        table.add_row(
            *_cells(
                [
                    contract.label(f["source"]),
                    f["file"] or "—",
                    source_status(f["status"]),
                    number(f["rows_read"]),
                    number(f["rows_accepted"]),
                    number(f["rows_rejected"]),
                    number(f.get("rows_duplicate")),
                ]
            )
        )
    return table


def _matches_table(rates: Sequence[MatchRate]) -> Table:
    table = _table(
        "与人口库匹配 match rates", ["来源", "窗口内记录", "匹配", "未匹配", "匹配率"], 1
    )
    for m in rates:
        table.add_row(
            *_cells(
                [
                    contract.label(m["source"]),
                    number(m["records_in_window"]),
                    number(m["matched"]),
                    number(m["unmatched"]),
                    rate(m["matched"], m["records_in_window"]),
                ]
            )
        )
    return table


def _towns_table(report: RunReport) -> Table:
    table = _table("疑似监测户 listed households", ["乡镇", *COLOURS, TOTAL], 1)
    counts = township_colour_counts(report.suspects, report.all_townships)
    last = counts.height - 1  # the total row, set off by a rule
    for i, row in enumerate(counts.iter_rows(named=True)):
        table.add_row(
            *_cells([row["township"], *(number(row[c]) for c in (*COLOURS, TOTAL))]),
            style="bold" if i == last else None,
            end_section=i == last - 1,
        )
    return table


def _risks_table(suspects: pl.DataFrame) -> Table:
    table = _table("按风险点 by risk point", ["风险点", "代码", "户数"], 2)
    for row in risk_counts(suspects).iter_rows(named=True):
        table.add_row(*_cells([row["label"], row["risk_code"], number(row["households"])]))
    return table
