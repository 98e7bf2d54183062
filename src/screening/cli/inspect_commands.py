"""The commands that only read (the database opened read-only, no file written):
`summary`, `report`, `quarantine` and `explain` (its rendering is in explain_view)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from screening import config
from screening.cli.console import cells, console, source_name, table_of
from screening.cli.errors import UserError, one_line_errors
from screening.cli.explain_view import people_table, render_explanation
from screening.cli.options import BusyOpt, DbOpt, DemoOpt, OutOpt, PeriodOpt, read_db
from screening.periods import check_period

# Registered on the `screening` app by screening.cli.main.
commands = typer.Typer()


@commands.command()
@one_line_errors
def summary(
    db: DbOpt = None, out: OutOpt = None, demo: DemoOpt = False, busy_timeout: BusyOpt = None
) -> None:
    """汇总: listed households per period by colour and status, the townships' answers on
    each list, the risk-removal candidates, and where the lists are."""
    from screening.db import summary as db_summary
    from screening.inspect.base import require_tables

    settings = config.load(db=db, out=out, busy_timeout=busy_timeout, demo=demo)
    with read_db(settings) as con:
        require_tables(con)
        rows = db_summary.listed_per_period(con)
    table = Table(title="疑似监测对象 suspected households", title_justify="left")
    # Two-line headers keep the columns within an 80-column terminal.
    table.add_column("期次", no_wrap=True)
    for col in (
        "户数",
        "红",
        "黄",
        "蓝",
        "新增",
        "持续",
        "已在\n监测",
        "确认\n待录入",
        "乡镇\n已核实",
        "消除\n候选",
    ):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    if rows:
        last = rows[-1][0]
        console.print(
            f"名单 township lists: {settings.out / last}/<乡镇>/  ·  报告 report: "
            f"{settings.out / last / 'run-report.html'}  ·  数据库 database: {settings.db}",
            highlight=False,
            markup=False,
        )


@commands.command()
@one_line_errors
def report(
    period: PeriodOpt,
    db: DbOpt = None,
    out: OutOpt = None,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """报告: show a period's run report again, rebuilt from the database (works when the
    published files were moved or deleted): files read, rejected rows, match rates, lists."""
    from screening.inspect.run_report import run_report
    from screening.publish.console import render_console
    from screening.publish.report import HTML_FILE, REPORT_FILE

    check_period(period)
    settings = config.load(db=db, out=out, busy_timeout=busy_timeout, demo=demo)
    with read_db(settings) as con:
        rep = run_report(con, period)
    render_console(rep, console)
    for name in (HTML_FILE, REPORT_FILE):
        stored = settings.out / period / name
        where = (
            str(stored) if stored.is_file() else f"{stored} 不存在 not found (re-run to rewrite it)"
        )
        console.print(Text.assemble(("报告文件 report file: ", "bold"), where))


@commands.command()
@one_line_errors
def quarantine(
    period: PeriodOpt,
    source: Annotated[
        str | None,
        typer.Option(
            help="数据来源 only this source, in Chinese or English: 人口 roster, 医保 medical, "
            "教育 education, 交警 traffic, 民政 civil, 残联 disability"
        ),
    ] = None,
    db: DbOpt = None,
    limit: Annotated[
        int, typer.Option(min=0, help="最多列出行数 list at most N rejected cells (0: all)")
    ] = 50,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """拒收明细: the rows set aside (quarantined) in a period's department files and why —
    file, row, column, check and the raw value (ID numbers masked) — with counts."""
    from screening import contract
    from screening.ids import mask_text
    from screening.inspect.quarantine import quarantine as rejected_rows

    try:
        key = None if source is None else contract.source_key(source)
    except contract.UnknownSource as exc:
        raise UserError(str(exc)) from None
    settings = config.load(db=db, busy_timeout=busy_timeout, demo=demo)
    with read_db(settings) as con:
        rejected = rejected_rows(con, period, key, limit)
    scope = f" {source_name(key)}" if key else ""
    if rejected.total_rows == 0:
        console.print(f"{period}{scope}: 无拒收行 no rows were rejected.", highlight=False)
        return
    counts = table_of(
        f"拒收统计 rejected rows {period}{scope}",
        ["来源 source", "检查 check", "行数 rows", "单元格 cells"],
        right=["行数 rows", "单元格 cells"],
    )
    for row in rejected.counts.iter_rows(named=True):
        counts.add_row(
            *cells(source_name(row["source"]), row["check_label"], row["rows"], row["cells"])
        )
    console.print(counts)
    rows = table_of(
        "拒收明细 rejected cells",
        ["来源 source", "文件 file", "行 row", "列 column", "检查 check", "原值 raw value"],
        right=["行 row"],
    )
    for row in rejected.rows.iter_rows(named=True):
        rows.add_row(
            *cells(
                source_name(row["source"]),
                mask_text(row["file"]),
                row["row_number"],
                f"{row['column_label']} {row['column']}",
                row["check_label"],
                row["raw_value"],
            )
        )
    console.print(rows)
    cell_count = int(rejected.counts["cells"].sum())
    shown = rejected.rows.height
    more = (
        f"；列出其中 {shown} 个单元格 showing {shown} of {cell_count} cells (--limit 0 for all)"
        if shown < cell_count
        else ""
    )
    console.print(
        f"共 {rejected.total_rows} 行被拒收 {rejected.total_rows} rows rejected{more}",
        highlight=False,
        markup=False,
    )


@commands.command(name="explain")
@one_line_errors
def explain_cmd(
    key: Annotated[
        str,
        typer.Argument(
            metavar="ID_OR_HOUSEHOLD_OR_NAME",
            help="户编号 household id, a member's 身份证号 ID number (any form), or a "
            "姓名 name (lists the households to choose from)",
        ),
    ],
    period: PeriodOpt,
    db: DbOpt = None,
    show_ids: Annotated[
        bool,
        typer.Option("--show-ids", help="显示完整身份证号 show full ID numbers (personal data)"),
    ] = False,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """说明: why a household is (or is not) on the list for a period — the household, each
    rule with the facts it saw and the parameters used, the colour and status, and the
    department records behind it. For the family's question "why us?" / "why not us?"."""
    from screening.inspect import explain as why
    from screening.inspect.base import ExplainError
    from screening.inspect.finding import looks_like_name, people_named

    settings = config.load(db=db, busy_timeout=busy_timeout, demo=demo)
    with read_db(settings) as con:
        try:
            answer = why.explain(con, key, period)
        except ExplainError:
            if not looks_like_name(key):
                raise
            people = people_named(con, key, period)
            if people.height == 0:
                raise
            console.print(people_table(key, period, people, show_ids=show_ids))
            console.print(
                f"请用户编号或身份证号再查 explain one of them by its 户编号 or ID number: "
                f"screening explain <户编号> --period {period}",
                highlight=False,
                markup=False,
            )
            return
    render_explanation(answer, console, show_ids=show_ids)
