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

from . import config, contract, store
from .ingest import STATUS_LABELS, SourceResult, ingest_period, unrecognised_files
from .inbox import PeriodError, check_period
from .read import FileRejected

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

# Known failures become one line; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    PeriodError,
    FileRejected,
    contract.ContractError,
    store.DatabaseBusy,
    FileNotFoundError,
)


class UserError(Exception):
    """A problem the user can fix; its message is the one line we print."""


def one_line_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, *EXPECTED_ERRORS) as exc:
            err.print(f"[bold red]错误 error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="期次 the month, YYYY-MM")]
InboxOpt = Annotated[
    Path | None,
    typer.Option(help="收件箱 inbox folder with one sub-folder per period [default: sample data]"),
]
DbOpt = Annotated[
    Path | None, typer.Option(help="DuckDB 数据库文件 [default: ./screening.duckdb]")
]
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
        console.print(f"[yellow]未识别的文件 files not belonging to any source:[/] {', '.join(stray)}")


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


def main() -> None:  # pragma: no cover - console script entry
    app()
