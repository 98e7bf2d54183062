"""`screening serve`: the monthly schedule (a Prefect deployment, or the plain-cron line)."""

from __future__ import annotations

from typing import Annotated

import typer

from screening import config
from screening.cli.console import demo_banner
from screening.cli.errors import one_line_errors
from screening.cli.options import (
    AliasesOpt,
    BusyOpt,
    DbOpt,
    DemoOpt,
    InboxOpt,
    MaskOpt,
    OutOpt,
    ParamsOpt,
)

# Registered on the `screening` app by screening.cli.main.
commands = typer.Typer()


@commands.command()
@one_line_errors
def serve(
    inbox: InboxOpt = None,
    db: DbOpt = None,
    out: OutOpt = None,
    params_file: ParamsOpt = None,
    aliases: AliasesOpt = None,
    mask_ids: MaskOpt = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help="定时 cron schedule in Asia/Shanghai time ($SCREENING_CRON, cron in "
            "screening.toml)",
            show_default=f"{config.DEFAULT_CRON}: the 5th, 03:00",
        ),
    ] = None,
    print_cron: Annotated[
        bool,
        typer.Option("--print-cron", help="打印 print a crontab line for plain cron instead"),
    ] = False,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """定时: serve the monthly Prefect deployment, screening the previous month (needs a
    running `prefect server start` and PREFECT_API_URL), or print the plain-cron line.
    Refuses without an inbox: a schedule never screens a guessed folder."""
    from screening.orchestration import schedule

    settings = config.load(
        inbox=inbox,
        db=db,
        out=out,
        params_file=params_file,
        aliases_file=aliases,
        mask_ids=mask_ids,
        cron=cron,
        busy_timeout=busy_timeout,
        demo=demo,
    )
    inbox_dir = settings.require_inbox()
    if not inbox_dir.is_dir():
        # A schedule set up on a mistyped folder would fire every month and find nothing.
        raise config.SettingsError(
            f"收件箱文件夹不存在 the inbox folder does not exist: {inbox_dir}; "
            "请先建好该文件夹或改正路径 create it or correct the path"
        )
    if print_cron:
        typer.echo(schedule.crontab_line(settings))  # plain echo: never wrapped nor stamped
        return
    demo_banner(settings.demo)
    schedule.serve(settings)
