"""`screening feedback import`: the townships' verification results (核实结果) for a
period's list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from screening import config
from screening.cli.console import cells, console, demo_banner, table_of
from screening.cli.errors import one_line_errors
from screening.cli.options import BusyOpt, DbOpt, DemoOpt, PeriodOpt

if TYPE_CHECKING:
    import polars as pl

    from screening.feedback import imports as feedback
    from screening.feedback import links

# Registered on the `screening` app as `screening feedback` by screening.cli.main.
commands = typer.Typer(
    help="核实反馈: the townships' verification results for a period's list.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@commands.command("import")
@one_line_errors
def feedback_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="反馈文件 the township's list (xlsx or csv) with its answer columns filled in"
        ),
    ],
    period: PeriodOpt,
    db: DbOpt = None,
    township: Annotated[
        str | None,
        typer.Option(help="乡镇 the file's township, when its 乡镇 column or name does not say"),
    ] = None,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """导入核实结果: store each row's answer for the period's listed household — 核实结果
    (确认纳入 / 不予纳入 / 待核实) on a 疑似监测对象 list, 消除意见 (同意消除 / 暂不消除) on a
    风险消除候选 list (told apart by the file's 说明 sheet, name or columns); rows that cannot
    be used are listed with the reason, the others are kept. Importing the same file again
    changes nothing. Lists published with --mask-ids are matched by their 核对码 column.
    A returned 身份核对 list stores each answer (是同一人 / 不是) on a suggested link instead."""
    from screening.feedback import imports as feedback
    from screening.feedback import links

    settings = config.load(db=db, busy_timeout=busy_timeout, demo=demo)
    demo_banner(settings.demo)
    if links.is_identity_list(file):  # a 身份核对 list: answers on suggested links
        answers = links.import_links(settings.db, file, period, wait=settings.busy_timeout)
        console.print(link_counts_table(answers))
        if answers.refused:
            console.print(link_rejects_table(answers.rejects))
        return
    result = feedback.import_feedback(
        settings.db, file, period, township, wait=settings.busy_timeout
    )
    console.print(feedback_counts_table(result))
    if result.rejected:
        console.print(feedback_rejects_table(feedback.reject_messages(result.rejects)))


FEEDBACK_COUNTS = (
    "读入 rows",
    "未填写 no decision",
    "接收 accepted",
    "未变化 unchanged",
    "拒收 rejected",
)


def feedback_counts_table(result: feedback.ImportResult) -> Table:
    from screening import ids

    township = f"{result.township.name} (from {result.township.origin})"
    table = table_of(
        f"{result.kind.name} {result.kind.what} {result.period} · {township}",
        ["文件 file", *FEEDBACK_COUNTS],
        right=FEEDBACK_COUNTS,
    )
    table.add_row(
        *cells(
            ids.mask_text(result.file),
            result.rows_read,
            result.empty_rows,
            result.accepted,
            result.unchanged,
        ),
        Text(str(result.rejected), style="red" if result.rejected else ""),
    )
    return table


def feedback_rejects_table(messages: pl.DataFrame) -> Table:
    from screening import ids

    table = table_of(
        "拒收的行 rejected rows", ["行 row", "户编号 household", "原因 reason"], right=["行 row"]
    )
    for row in messages.iter_rows(named=True):
        table.add_row(
            *cells(
                row["row_number"], ids.mask_text(row["household_id"]), ids.mask_text(row["message"])
            )
        )
    return table


LINK_COUNTS = (
    "读入 rows",
    "未填写 no answer",
    "是同一人 confirmed",
    "不是 rejected",
    "未变化 unchanged",
    "拒收 refused",
)


def link_counts_table(result: links.LinkImportResult) -> Table:
    from screening import ids

    table = table_of(
        f"身份核对反馈 identity answers {result.period}", ["文件 file", *LINK_COUNTS],
        right=LINK_COUNTS,
    )  # fmt: skip
    table.add_row(
        *cells(
            ids.mask_text(result.file), result.rows_read, result.empty_rows, result.confirmed,
            result.rejected_pairs, result.unchanged,
        ),
        Text(str(result.refused), style="red" if result.refused else ""),
    )  # fmt: skip
    return table


def link_rejects_table(rejects: pl.DataFrame) -> Table:
    from screening import ids

    table = table_of(
        "拒收的行 refused rows", ["行 row", "核对码 key", "原因 reason"], right=["行 row"]
    )
    for row in rejects.iter_rows(named=True):
        table.add_row(*cells(row["row_number"], row["list_key"], ids.mask_text(row["message"])))
    return table
