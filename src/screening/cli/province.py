"""`screening province run` and `screening province serve`: many counties as one Prefect
flow on a Dask cluster (screening.province), and its monthly schedule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from screening.cli.console import cells, console, table_of
from screening.cli.errors import one_line_errors
from screening.cli.options import BusyOpt, PeriodOpt
from screening.periods import check_period

if TYPE_CHECKING:
    from screening.province.flow import ProvinceOutcome

# Registered on the `screening` app as `province` by screening.cli.main.
commands = typer.Typer(
    help="省级: a province's counties screened as one Prefect flow on a Dask cluster.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="省级配置 the province file (YAML: out, counties with name, inbox, db, out)",
    ),
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        metavar="ADDR",
        help="Dask 调度器 an existing scheduler, e.g. tcp://10.0.0.5:8786 (needs PREFECT_API_URL)",
        show_default="a local cluster of processes",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="本地集群进程数 worker processes of the local cluster",
        show_default="one per core, at most the counties",
    ),
]


@commands.command("run")
@one_line_errors
def run(
    period: PeriodOpt,
    config_file: ConfigOpt,
    dask_address: DaskOpt = None,
    county: Annotated[
        list[str] | None,
        typer.Option(
            "--county",
            metavar="NAME",
            help="只运行该县 screen only this county (repeatable); the others are read as "
            "they stand for the roll-up",
        ),
    ] = None,
    workers: WorkersOpt = None,
    busy_timeout: BusyOpt = None,
) -> None:
    """全省筛查: screen the period in every county of the province file, each as
    `screening run` would, as tasks of one Prefect flow on a Dask cluster; then write the
    province summary, province.duckdb and the province run report. One county's failure
    does not stop the others; the exit status is the gravest of the counties' (3: only
    held deliveries)."""
    from screening.province import config
    from screening.province.flow import run_province

    check_period(period)
    province = config.load(config_file, busy_timeout=busy_timeout)
    chosen = province.select(county)  # an unknown name stops here, before any work
    console.print(
        Text(
            f"省级筛查 province run {period}: {len(chosen)} 个县 counties to screen "
            f"({', '.join(c.name for c in chosen)})",
            style="bold",
        ),
        soft_wrap=True,
    )
    outcome = run_province(
        config_file, period, county, dask_address, workers, busy_timeout=busy_timeout
    )
    _print(outcome)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _print(outcome: ProvinceOutcome) -> None:
    from screening.ids import mask_text
    from screening.province.county import STATUS_WORDS
    from screening.vocab import COLOURS

    numbers = [*COLOURS, "合计 total", "用时 s"]
    table = table_of(
        f"各县 counties {outcome.period}",
        ["县 county", "状态 status", *numbers, "批次号 run", "说明 message"],
        right=numbers,
    )
    styles = {"success": "green", "held": "yellow"}
    for r in outcome.results:
        by_colour = dict.fromkeys(COLOURS, 0)
        for _township, colour, n in r.listed:
            by_colour[colour] += n
        status = f"{STATUS_WORDS.get(r.status, r.status)} {r.status}"
        if not r.ran:
            status += " (未运行 read)"
        table.add_row(
            *cells(r.county),
            Text(status, style=styles.get(r.status, "red") if r.ran else "dim"),
            *cells(
                *(by_colour[c] if r.listed else None for c in COLOURS),
                r.households if r.listed else None,
                f"{r.seconds:.1f}",
                r.run_id,
                mask_text(r.message),
            ),
        )
    console.print(table)
    console.print(
        Text.assemble(("全省汇总 roll-up: ", "bold"), str(outcome.summary)), soft_wrap=True
    )
    console.print(Text(f"  {outcome.database}"), soft_wrap=True)
    console.print(Text(f"  {outcome.report}"), soft_wrap=True)
    console.print(Text(f"  ({outcome.workers})", style="dim"), soft_wrap=True)


@commands.command("serve")
@one_line_errors
def serve(
    config_file: ConfigOpt,
    dask_address: DaskOpt = None,
    workers: WorkersOpt = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help="定时 cron schedule in Asia/Shanghai time (else cron in the province file)",
            show_default="0 3 5 * *: the 5th, 03:00",
        ),
    ] = None,
    print_cron: Annotated[
        bool,
        typer.Option("--print-cron", help="打印 print a crontab line for plain cron instead"),
    ] = False,
) -> None:
    """定时: serve the province's monthly Prefect deployment, screening the previous month
    in every county (needs a running `prefect server start` and PREFECT_API_URL), or print
    the plain-cron line."""
    from screening.province import config, schedule

    province = config.load(config_file)
    if print_cron:
        line = schedule.crontab_line(
            province, cron=cron, dask_address=dask_address, workers=workers
        )
        typer.echo(line)  # plain echo: never wrapped nor stamped
        return
    schedule.serve(province, cron=cron, dask_address=dask_address, workers=workers)
