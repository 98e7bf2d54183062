"""The commands that write: `ingest` (one period's files into the database, `--withdraw`
a stored delivery) and `run` (ingest, screen, publish)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from screening import config
from screening.cli.console import console, demo_banner, ingest_table, progress, source_name
from screening.cli.errors import UserError, one_line_errors
from screening.cli.options import (
    AliasesOpt,
    BusyOpt,
    DbOpt,
    DemoOpt,
    InboxOpt,
    MaskOpt,
    OutOpt,
    ParamsOpt,
    PeriodOpt,
    inbox_folder,
)
from screening.periods import check_period

if TYPE_CHECKING:
    from screening import contract
    from screening.ingest.results import SourceResult

# Registered on the `screening` app by screening.cli.main.
commands = typer.Typer()


def delivery_lines(results: Sequence[SourceResult]) -> list[Text]:
    """Loud lines for what the table alone would not make plain: a stored delivery used
    instead of this period's file, and warnings about a file."""
    lines = []
    for r in results:
        if r.status == "kept":
            lines.append(Text(f"! 沿用已入库 kept: {source_name(r.source)}: {r.message}"))
        for warning in r.warnings:
            lines.append(Text(f"! 提示 warning: {source_name(r.source)} {r.file}: {warning}"))
    return lines


AcceptHeldOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--accept-held",
        metavar="SOURCE",
        help="接受被暂扣的数据 use this source's held delivery anyway (key or 医保, 人口 …; "
        "repeatable; recorded in held_deliveries)",
    ),
]


@commands.command()
@one_line_errors
def ingest(
    period: PeriodOpt,
    inbox: InboxOpt = None,
    db: DbOpt = None,
    aliases: AliasesOpt = None,
    params_file: ParamsOpt = None,
    accept_held: AcceptHeldOpt = None,
    withdraw_source: Annotated[
        str | None,
        typer.Option(
            "--withdraw",
            metavar="SOURCE",
            help="撤回 remove the period's stored delivery of SOURCE on purpose (recorded)",
        ),
    ] = None,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """入库: read one period's department files into the database; bad rows go to quarantine
    (see `screening quarantine`). Does not screen or publish. The parameters file's
    ingest_limits (implausible amounts, xlsx size) apply. A missing or rejected file
    leaves the stored delivery in force; `--withdraw SOURCE` removes one on purpose."""
    from screening import contract, params
    from screening.db import lock
    from screening.db.connect import connect
    from screening.ids import mask_text
    from screening.ingest.deliveries import held, ingest_period, unrecognised_files
    from screening.ingest.gates import DeliveryHeld

    check_period(period)
    settings = config.load(
        inbox=None if withdraw_source else inbox,
        db=db,
        aliases_file=aliases,
        params_file=params_file,
        busy_timeout=busy_timeout,
        demo=demo,
    )
    specs = contract.load(settings.aliases_file)
    if withdraw_source is not None:
        _withdraw(settings, specs, withdraw_source, period)
        return
    folder = inbox_folder(settings, period)
    parameters = params.load(settings.params_file)
    limits = parameters.ingest_limits(period)
    gates = parameters.at(period).gates
    accepted = {_source_key(name, specs, "--accept-held") for name in accept_held or []}
    demo_banner(settings.demo)
    with lock.hold(settings.db):
        con = connect(settings.db, wait=settings.busy_timeout)
        try:
            with progress(f"入库 {period}") as tick:
                results = ingest_period(
                    con,
                    folder,
                    period,
                    specs,
                    on_source=tick,
                    limits=limits,
                    gates=gates,
                    accept_held=accepted,
                )
        finally:
            con.close()
    holding = held(results)
    if holding:
        raise DeliveryHeld(period, holding, results, command="screening ingest")
    console.print(ingest_table(period, results))
    for line in delivery_lines(results):
        console.print(line, style="bold yellow")
    stray = unrecognised_files(folder, period, specs)
    if stray:
        console.print(
            Text.assemble(
                ("收件箱中有未识别的文件 unrecognised files in the inbox: ", "yellow"),
                mask_text(", ".join(stray)),
            )
        )


def _source_key(name: str, specs: dict[str, contract.SourceSpec], option: str) -> str:
    from screening import contract

    try:
        return contract.source_key(name, specs)
    except contract.UnknownSource as exc:
        raise UserError(f"{option}: {exc}") from None


def _withdraw(
    settings: config.Settings, specs: dict[str, contract.SourceSpec], name: str, period: str
) -> None:
    from screening.db import lock
    from screening.db.connect import connect
    from screening.ingest.deliveries import withdraw

    source = _source_key(name, specs, "--withdraw")
    if not settings.db.is_file():
        raise UserError(f"数据库不存在 database not found: {settings.db}")
    with lock.hold(settings.db):
        con = connect(settings.db, wait=settings.busy_timeout)
        try:
            done = withdraw(con, specs, source, period)
        finally:
            con.close()
    console.print(
        Text(
            f"已撤回 withdrawn: {period} {source_name(source)} {done.file}, {done.rows:,} 行 rows "
            f"removed (by {done.by} at {done.at:%Y-%m-%d %H:%M}, recorded in ingest_log); "
            "收件箱中若仍有该期文件，下次运行会重新读入 (the next run reads the period's file "
            "again if it is still in the inbox)"
        ),
        soft_wrap=True,
    )


@commands.command()
@one_line_errors
def run(
    period: PeriodOpt,
    township: Annotated[
        str | None, typer.Option(help="乡镇 re-screen and re-publish this township only")
    ] = None,
    inbox: InboxOpt = None,
    db: DbOpt = None,
    out: OutOpt = None,
    params_file: ParamsOpt = None,
    aliases: AliasesOpt = None,
    mask_ids: MaskOpt = None,
    accept_held: AcceptHeldOpt = None,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """筛查: ingest the period, apply the rules, publish each township's list and the run
    report. On failure nothing already published is changed; a delivery held by a
    completeness gate stops the run with exit status 3 (see --accept-held)."""
    from screening.pipeline import run as runs
    from screening.publish.console import render_console

    check_period(period)
    settings = config.load(
        inbox=inbox,
        db=db,
        out=out,
        params_file=params_file,
        aliases_file=aliases,
        mask_ids=mask_ids,
        busy_timeout=busy_timeout,
        demo=demo,
    )
    inbox_folder(settings, period)
    req = runs.request(settings, period, township, tuple(accept_held or ()))
    demo_banner(settings.demo)
    with progress(f"筛查 {period}") as tick:
        outcome = runs.run_request(req, on_stage=tick)
    console.print(ingest_table(period, outcome.ingest))
    render_console(outcome.report, console)
    scope = f" in {township}" if township else ""
    console.print(
        Text.assemble(
            ("名单 lists: ", "bold"),
            f"{req.out / period}  ({outcome.suspects.height} 户 households{scope}; "
            f"批次 run {outcome.run_id})",
        )
    )
