"""`screening` command line (typer). Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from . import config, contract, params, store
from .inbox import PeriodError, check_period
from .ingest import STATUS_LABELS, SourceResult, ingest_period, unrecognised_files
from .read import FileRejected
from .run import RunError, run_period

app = typer.Typer(
    help="防返贫监测 部门数据筛查 — screen department data for households at risk of "
    "(re)falling into poverty, and publish per-township lists of 疑似监测对象.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; its message is the one line we print."""


# Known failures become one line; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    PeriodError,
    FileRejected,
    contract.ContractError,
    store.DatabaseBusy,
    RunError,
    params.ParameterError,
    FileNotFoundError,
)


def one_line_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EXPECTED_ERRORS as exc:
            err.print(f"[bold red]错误 error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="期次 the month, YYYY-MM")]
InboxOpt = Annotated[
    Path | None,
    typer.Option(help="收件箱 inbox folder with one sub-folder per period [default: sample data]"),
]
DbOpt = Annotated[Path | None, typer.Option(help="DuckDB 数据库文件 [default: ./screening.duckdb]")]
AliasesOpt = Annotated[
    Path | None,
    typer.Option(help="表头别名 extra header aliases (YAML: source → column → [names])"),
]


def _inbox(inbox: Path | None, period: str) -> Path:
    folder = inbox or config.default_inbox()
    if not folder.is_dir():
        raise UserError(f"inbox folder not found: {folder}")
    if not (folder / period).is_dir():
        raise UserError(f"no folder for period {period} in inbox {folder}")
    return folder


@contextmanager
def _progress(label: str) -> Iterator[Callable[[str], None]]:
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as progress:
        task = progress.add_task(label)
        yield lambda source: progress.update(task, description=f"{label}: {source}")


def ingest_table(period: str, results: list[SourceResult]) -> Table:
    table = Table(title=f"入库 ingest {period}", title_justify="left")
    for col in ("数据源 source", "文件 file", "读入 read", "接收 accepted", "拒收 rejected"):
        table.add_column(col, justify="right" if col[0] in "读接拒" else "left")
    table.add_column("状态 status")
    table.add_column("说明 message", overflow="fold")
    styles = {"loaded": "green", "unchanged": "green", "empty": "yellow", "missing": "yellow"}
    for r in results:
        style = styles.get(r.status, "red")
        table.add_row(
            r.source,
            r.file or "—",
            str(r.rows_read),
            str(r.rows_accepted),
            str(r.rows_rejected),
            f"[{style}]{STATUS_LABELS[r.status]} {r.status}[/]",
            r.message,
        )
    return table


@app.command()
@one_line_errors
def ingest(
    period: PeriodOpt,
    inbox: InboxOpt = None,
    db: DbOpt = None,
    aliases: AliasesOpt = None,
) -> None:
    """入库: read one period's department files into the database; bad rows go to quarantine."""
    check_period(period)
    folder = _inbox(inbox, period)
    specs = contract.load(aliases)
    con = store.connect(db or config.default_db())
    try:
        with _progress(f"入库 {period}") as tick:
            results = ingest_period(con, folder, period, specs, on_source=tick)
    finally:
        con.close()
    console.print(ingest_table(period, results))
    stray = unrecognised_files(folder, period, specs)
    if stray:
        console.print(
            f"[yellow]未识别的文件 files not belonging to any source:[/] {', '.join(stray)}"
        )


@app.command()
@one_line_errors
def sample(
    out: Annotated[Path, typer.Option(help="输出目录 where to write the inbox")],
    households: Annotated[int, typer.Option(min=1, help="户数 number of households")] = 500,
    periods: Annotated[
        str, typer.Option(help="期次 comma-separated periods")
    ] = "2026-07,2026-08,2026-09",
    seed: Annotated[int, typer.Option(help="随机种子 seed (same seed, same files)")] = 1,
) -> None:
    """生成样例: write a synthetic county inbox (all messy forms) and its manifest."""
    from .sample import generate

    plist = [check_period(p.strip()) for p in periods.split(",") if p.strip()]
    if plist != sorted(set(plist)):
        raise UserError("periods must be distinct and in order, e.g. 2026-07,2026-08")
    manifest = generate(out, households, plist, seed)
    console.print(
        f"样例已生成 wrote {len(plist)} period(s) for {households} households to {out} "
        f"(manifest: {out / 'manifest.json'}, {len(manifest.get('planted', []))} planted cases)"
    )


OutOpt = Annotated[
    Path | None, typer.Option(help="输出目录 where lists are written [default: out/ beside the db]")
]


@app.command()
@one_line_errors
def run(
    period: PeriodOpt,
    township: Annotated[
        str | None, typer.Option(help="乡镇 re-screen and re-publish this township only")
    ] = None,
    inbox: InboxOpt = None,
    db: DbOpt = None,
    out: OutOpt = None,
    params_file: Annotated[
        Path | None,
        typer.Option(
            "--params", help="参数文件 county parameters (YAML, effective-dated) over the defaults"
        ),
    ] = None,
    aliases: AliasesOpt = None,
    mask_ids: Annotated[
        bool, typer.Option(help="脱敏 mask ID numbers in the published xlsx/csv")
    ] = False,
) -> None:
    """筛查: ingest the period, apply the rules, publish each township's list and the report."""
    from .report import render_console

    check_period(period)
    dbpath = db or config.default_db()
    folder = _inbox(inbox, period)
    outdir = out or config.default_out(dbpath)
    with _progress(f"筛查 {period}") as tick:
        outcome = run_period(
            db=dbpath,
            inbox=folder,
            out=outdir,
            period=period,
            params_file=params_file,
            aliases_file=aliases,
            township=township,
            mask_ids=mask_ids,
            on_stage=tick,
        )
    console.print(ingest_table(period, outcome.ingest))
    render_console(outcome.report, console)
    where = outdir / period
    console.print(
        f"[bold]名单 lists:[/] {where}  ({outcome.suspects.height} 户 households"
        f"{' in ' + township if township else ''}; run {outcome.run_id})"
    )


@app.command()
@one_line_errors
def summary(db: DbOpt = None, out: OutOpt = None) -> None:
    """汇总: listed households per period by colour and status, and where the lists are."""
    dbpath = db or config.default_db()
    if not dbpath.exists():
        raise UserError(f"database not found: {dbpath} (run `screening run` first)")
    outdir = out or config.default_out(dbpath)
    con = store.connect(dbpath, read_only=True)
    try:
        rows = con.sql(
            "SELECT period, count(*) AS households, "
            "count(*) FILTER (colour = '红') AS red, count(*) FILTER (colour = '黄') AS yellow, "
            "count(*) FILTER (colour = '蓝') AS blue, "
            "count(*) FILTER (listing_status = '新增') AS new, "
            "count(*) FILTER (listing_status = '持续') AS continuing, "
            "count(*) FILTER (listing_status = '已在监测') AS monitored, "
            "count(DISTINCT township) AS townships FROM suspects GROUP BY period ORDER BY period"
        ).fetchall()
    finally:
        con.close()
    table = Table(title="疑似监测对象 suspected households", title_justify="left")
    for col in ("期次", "户数", "红", "黄", "蓝", "新增", "持续", "已在监测", "乡镇数"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    if rows:
        last = rows[-1][0]
        console.print(
            f"名单 township lists: {outdir / last}/<乡镇>/  ·  报告 report: "
            f"{outdir / last / 'run-report.md'}  ·  数据库 database: {dbpath}"
        )


def main() -> None:  # pragma: no cover - console script entry
    app()
