"""`screening` command line (typer). Errors are one line on stderr and a non-zero exit:
2 for a problem the user can fix, 1 for a bug, 3 when a completeness gate held a delivery
(`--accept-held SOURCE` uses it anyway).

Every command takes its folders from the settings (`config.load`: flags, then the
environment, then `screening.toml` in the working folder); the inbox is never guessed, and
the bundled synthetic county is screened only with `--demo`. Commands that only read
(explain, quarantine, report, summary) open the database read-only, so an analyst's
session does not block them, and never write a file.

On a terminal the output is rich's; elsewhere (cron's log, make, a pipe) it is plain lines,
each led by the time, never wrapped (a file name stays whole). Heavy libraries (polars,
duckdb, pandera, prefect) are imported by the commands that use them, so `--help` is
quick.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer
from rich.console import Console, ConsoleDimensions, Group
from rich.table import Table
from rich.text import Text

from screening import config
from screening.periods import check_period

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from screening import contract
    from screening.feedback import imports as feedback
    from screening.ingest.deliveries import SourceResult
    from screening.inspect import explain as why

app = typer.Typer(
    help="防返贫监测 部门数据筛查 — screen department data for households at risk of "
    "(re)falling into poverty, and publish per-township lists of 疑似监测对象.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

# Wide enough that no table row or line is ever wrapped in a log file.
PLAIN_WIDTH = 1000


class _Stamped:
    """A text stream whose every line starts with the local time (a log line)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S ")
        # rich pads lines to the table's width: a log line ends with its last character.
        lines = [line.rstrip() for line in text.splitlines()]
        ended = text.endswith("\n")
        body = "\n".join(stamp + line if line else line for line in lines)
        self._stream.write(body + ("\n" if ended else ""))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False


class LineConsole(Console):
    """rich's console on a terminal; elsewhere plain, unwrapped, timestamped lines. The
    stream is looked up at each print (a test runner swaps it)."""

    @staticmethod
    def _tty(stream: IO[str]) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def file(self) -> IO[str]:
        stream = self._file or (sys.stderr if self.stderr else sys.stdout)
        return stream if self._tty(stream) else _Stamped(stream)  # type: ignore[return-value]

    @file.setter
    def file(self, new_file: IO[str]) -> None:
        self._file = new_file

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PLAIN_WIDTH, self._height or 25)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = LineConsole()
err = LineConsole(stderr=True)


class _ToConsole(logging.Handler):
    """The package's warnings meant for the person waiting (a busy database, a stale lock
    cleared) as lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from screening.ids import mask_text

        err.print(Text(mask_text(record.getMessage()), style="yellow"), soft_wrap=True)


_HANDLER = _ToConsole(logging.WARNING)
for _name in ("screening.db.connect", "screening.db.lock"):
    if _HANDLER not in logging.getLogger(_name).handlers:
        logging.getLogger(_name).addHandler(_HANDLER)

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; its message is the one line we print."""


# Known failures become one line; anything else is a bug and keeps its traceback. Named by
# module, so that catching them imports nothing: a module not imported raised nothing. A
# message that does not start in Chinese is led by its kind's Chinese name.
EXPECTED_ERRORS = (
    ("screening.config", "SettingsError", "设置有误"),
    ("screening.periods", "PeriodError", "期次有误"),
    ("screening.ingest.read", "FileRejected", "文件无法使用"),
    ("screening.contract", "ContractError", "数据约定或表头别名有误"),
    ("screening.db.connect", "DatabaseBusy", "数据库正被占用"),
    ("screening.pipeline.errors", "RunError", "无法完成筛查"),
    ("screening.params", "ParameterError", "参数有误"),
    ("screening.inspect.base", "ExplainError", "无法说明"),
    ("screening.feedback.imports", "FeedbackError", "无法导入核实结果"),
    ("screening.ingest.inbox", "TwoFilesForOneSource", "同一数据源有两个文件"),
    ("screening.ingest.deliveries", "NothingToWithdraw", "没有可撤回的数据"),
)


def expected_errors() -> dict[type[BaseException], str]:
    """The known failures raised by the modules loaded so far, with their Chinese names."""
    found: dict[type[BaseException], str] = {UserError: "", FileNotFoundError: "文件不存在"}
    for module, name, chinese in EXPECTED_ERRORS:
        if module in sys.modules:
            found[getattr(sys.modules[module], name)] = chinese
    return found


def chinese_first(exc: BaseException, line: str) -> str:
    """`line`, led by the Chinese name of the error's kind unless it starts in Chinese."""
    if line[:1] >= "\u2e80":  # CJK and full-width punctuation
        return line
    kinds = expected_errors()
    chinese = next((kinds[k] for k in type(exc).__mro__ if k in kinds), "")
    return f"{chinese} {line}" if chinese else line


def one_line_errors(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            from screening.ids import mask_text

            held = sys.modules.get("screening.ingest.gates")
            if held is not None and isinstance(exc, held.DeliveryHeld):
                _held(exc)
            if isinstance(exc, tuple(expected_errors())):
                # Messages may quote data: never read as markup, never an ID number in full.
                line = chinese_first(exc, mask_text(" ".join(str(exc).split())))
                err.print(Text.assemble(("错误 error: ", "bold red"), line), soft_wrap=True)
                raise typer.Exit(2) from None
            # A bug or an environment failure (disk full, permissions): still one line for
            # the officer and for cron's log, the masked traceback kept in a file for us.
            first = " ".join(str(exc).split())[:300]
            line = mask_text(f"{type(exc).__name__}: {first}")
            kept = _keep_traceback(exc)
            err.print(
                Text.assemble(
                    ("内部错误 internal error: ", "bold red"), line, f" (详情 details: {kept})"
                ),
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _held(exc: Any) -> None:
    """A delivery held by a completeness gate: not a failure of the program, the officer
    decides. The ingest table and each gate on stdout, one line on stderr, exit status 3
    (output contract)."""
    from screening.ids import mask_text

    if exc.results:
        console.print(ingest_table(exc.period, exc.results))
    for gate in exc.held:
        console.print(
            Text(f"! 暂扣 held: {_source(gate.source)} {mask_text(gate.file)}: {gate.describe()}"),
            style="bold yellow",
        )
    line = mask_text(" ".join(str(exc).split()))
    err.print(Text.assemble(("暂扣 held: ", "bold yellow"), line), soft_wrap=True)
    raise typer.Exit(exc.exit_code) from None


def _keep_traceback(exc: BaseException) -> Path:
    """The traceback, ID numbers masked, in a private file under the temp folder."""
    from screening.ids import mask_text

    text = mask_text("".join(traceback.format_exception(exc)))
    fd, name = tempfile.mkstemp(prefix="screening-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
        fh.write(text)
    return Path(name)


PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="期次 the month, YYYY-MM")]
InboxOpt = Annotated[
    Path | None,
    typer.Option(
        help="收件箱 inbox folder with one sub-folder per period (or $SCREENING_INBOX, or "
        "inbox in screening.toml; never guessed)",
        show_default=False,
    ),
]
DemoOpt = Annotated[
    bool,
    typer.Option(
        "--demo",
        help="示例数据 use the bundled synthetic county (database and lists in demo/); "
        "every output says it is a synthetic sample",
    ),
]
# Square brackets in help text would be read as rich markup: defaults go in show_default.
DbOpt = Annotated[
    Path | None,
    typer.Option(
        help="DuckDB 数据库文件 database file ($SCREENING_DB, db in screening.toml)",
        show_default=config.DEFAULT_DB,
    ),
]
AliasesOpt = Annotated[
    Path | None,
    typer.Option(help="表头别名 extra header aliases (YAML: source → column → list of names)"),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        help="输出目录 where lists are written ($SCREENING_OUT, out in screening.toml)",
        show_default="out/ beside the database",
    ),
]
ParamsOpt = Annotated[
    Path | None,
    typer.Option(
        "--params", help="参数文件 county parameters (YAML, effective-dated) over the defaults"
    ),
]
MaskOpt = Annotated[
    bool | None,
    typer.Option(
        "--mask-ids/--no-mask-ids",
        help="脱敏 mask ID numbers in the published xlsx/csv (mask_ids in screening.toml)",
        show_default=False,
    ),
]
BusyOpt = Annotated[
    float | None,
    typer.Option(
        "--busy-timeout",
        min=0,
        help="等待 seconds to wait for a database another process has open",
        show_default=f"{config.DEFAULT_BUSY_TIMEOUT:g}",
    ),
]


def _inbox(settings: config.Settings, period: str) -> Path:
    folder = settings.require_inbox()
    origin = settings.origin.get("inbox", "")
    named = f" ({origin})" if origin.startswith(("$", config.SETTINGS_FILE)) else ""
    if not folder.is_dir():
        raise UserError(f"收件箱不存在 inbox folder not found: {folder}{named}")
    if not (folder / period).is_dir():
        raise UserError(f"收件箱中没有 {period} 文件夹 no folder for period {period} in {folder}")
    return folder


def _demo_banner(demo: bool) -> None:
    if demo:
        from screening.publish.report import DEMO_SENTENCE

        console.print(Text(f"{config.DEMO_LABEL}: {DEMO_SENTENCE}", style="bold magenta"))


@contextmanager
def _read_db(settings: config.Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The database opened read-only; a missing or unreadable file is one line. A database
    of the synthetic sample says so first."""
    import duckdb

    from screening.db import runs as db_runs
    from screening.db.connect import connect

    path = settings.db
    if not path.is_file():
        raise UserError(f"数据库不存在 database not found: {path} (run `screening run` first)")
    try:
        con = connect(path, read_only=True, wait=settings.busy_timeout)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"无法打开数据库 cannot open database {path}: {first}") from None
    try:
        _demo_banner(db_runs.demo_runs(con)[0] > 0)
        yield con
    finally:
        con.close()


@contextmanager
def _progress(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner on an interactive stderr only: elsewhere (a scheduled run, a pipe) it
    would leave an empty line before the one-line error."""
    if not err.is_terminal:
        yield lambda _source: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as progress:
        task = progress.add_task(label)
        yield lambda source: progress.update(task, description=f"{label}: {source}")


def _table(title: str, headers: Sequence[str], right: Sequence[str] = ()) -> Table:
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left", overflow="fold")
    return table


def _cells(*values: object) -> list[Text]:
    """Data as plain text: a name or file with [brackets] is not rich markup."""
    return [Text("—" if v is None or v == "" else str(v)) for v in values]


def _source(source: str | None) -> str:
    from screening import contract

    return f"{contract.label(source)} {source}" if source else "—"


def _risk(code: str) -> str:
    from screening.rules import RISK_LABELS

    return f"{RISK_LABELS.get(code, code)} {code}"


# ---------------------------------------------------------------- ingest, sample, run


def ingest_table(period: str, results: list[SourceResult]) -> Table:
    from screening.ids import mask_text
    from screening.ingest.deliveries import STATUS_LABELS

    table = Table(title=f"入库 ingest {period}", title_justify="left")
    numbers = ("读入 read", "接收 accepted", "拒收 rejected", "重复 duplicate")
    for col in ("数据源 source", "文件 file", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    table.add_column("状态 status")
    table.add_column("说明 message", overflow="fold")
    styles = {"loaded": "green", "unchanged": "green", "empty": "yellow", "missing": "yellow"}
    for r in results:
        style = styles.get(r.status, "red")
        table.add_row(
            # A source kept in force names the stored file when this period brought none.
            *_cells(
                r.source,
                mask_text(r.file or r.kept_file),
                r.rows_read,
                r.rows_accepted,
                r.rows_rejected,
                r.rows_duplicate,
            ),
            Text(f"{STATUS_LABELS[r.status]} {r.status}", style=style),
            Text(mask_text(r.message)),
        )
    return table


def delivery_lines(results: Sequence[SourceResult]) -> list[Text]:
    """Loud lines for what the table alone would not make plain: a stored delivery used
    instead of this period's file, and warnings about a file."""
    lines = []
    for r in results:
        if r.status == "kept":
            lines.append(Text(f"! 沿用已入库 kept: {_source(r.source)}: {r.message}"))
        for warning in r.warnings:
            lines.append(Text(f"! 提示 warning: {_source(r.source)} {r.file}: {warning}"))
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


@app.command()
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
    folder = _inbox(settings, period)
    parameters = params.load(settings.params_file)
    limits = parameters.ingest_limits(period)
    gates = parameters.at(period).gates
    accepted = {_source_key(name, specs, "--accept-held") for name in accept_held or []}
    _demo_banner(settings.demo)
    with lock.hold(settings.db):
        con = connect(settings.db, wait=settings.busy_timeout)
        try:
            with _progress(f"入库 {period}") as tick:
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
            f"已撤回 withdrawn: {period} {_source(source)} {done.file}, {done.rows:,} 行 rows "
            f"removed (by {done.by} at {done.at:%Y-%m-%d %H:%M}, recorded in ingest_log); "
            "收件箱中若仍有该期文件，下次运行会重新读入 (the next run reads the period's file "
            "again if it is still in the inbox)"
        ),
        soft_wrap=True,
    )


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
    from screening.publish.report import render_console

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
    _inbox(settings, period)
    req = runs.request(settings, period, township, tuple(accept_held or ()))
    _demo_banner(settings.demo)
    with _progress(f"筛查 {period}") as tick:
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


# ---------------------------------------------------------------- read-only commands


@app.command()
@one_line_errors
def summary(
    db: DbOpt = None, out: OutOpt = None, demo: DemoOpt = False, busy_timeout: BusyOpt = None
) -> None:
    """汇总: listed households per period by colour and status, the townships' answers on
    each list, the risk-removal candidates, and where the lists are."""
    from screening.inspect.base import require_tables

    settings = config.load(db=db, out=out, busy_timeout=busy_timeout, demo=demo)
    with _read_db(settings) as con:
        require_tables(con)
        rows = con.sql(
            "SELECT period, count(*) AS households, "
            "count(*) FILTER (colour = '红') AS red, count(*) FILTER (colour = '黄') AS yellow, "
            "count(*) FILTER (colour = '蓝') AS blue, "
            "count(*) FILTER (listing_status = '新增') AS new, "
            "count(*) FILTER (listing_status = '持续') AS continuing, "
            "count(*) FILTER (listing_status = '已在监测') AS monitored, "
            "count(*) FILTER (listing_status = '已确认待录入') AS confirmed, "
            "(SELECT count(*) FROM current_verifications v WHERE v.period = s.period) AS answers, "
            "(SELECT count(*) FROM removal_candidates c WHERE c.period = s.period) AS removal "
            "FROM suspects s GROUP BY period ORDER BY period"
        ).fetchall()
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
            f"{settings.out / last / 'run-report.md'}  ·  数据库 database: {settings.db}",
            highlight=False,
            markup=False,
        )


@app.command()
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
    from screening.publish.report import REPORT_FILE, render_console

    check_period(period)
    settings = config.load(db=db, out=out, busy_timeout=busy_timeout, demo=demo)
    with _read_db(settings) as con:
        rep = run_report(con, period)
    render_console(rep, console)
    stored = settings.out / period / REPORT_FILE
    where = str(stored) if stored.is_file() else f"{stored} 不存在 not found (re-run to rewrite it)"
    console.print(Text.assemble(("报告文件 report file: ", "bold"), where))


@app.command()
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
    with _read_db(settings) as con:
        rejected = rejected_rows(con, period, key, limit)
    scope = f" {_source(key)}" if key else ""
    if rejected.total_rows == 0:
        console.print(f"{period}{scope}: 无拒收行 no rows were rejected.", highlight=False)
        return
    counts = _table(
        f"拒收统计 rejected rows {period}{scope}",
        ["来源 source", "检查 check", "行数 rows", "单元格 cells"],
        right=["行数 rows", "单元格 cells"],
    )
    for row in rejected.counts.iter_rows(named=True):
        counts.add_row(
            *_cells(_source(row["source"]), row["check_label"], row["rows"], row["cells"])
        )
    console.print(counts)
    rows = _table(
        "拒收明细 rejected cells",
        ["来源 source", "文件 file", "行 row", "列 column", "检查 check", "原值 raw value"],
        right=["行 row"],
    )
    for row in rejected.rows.iter_rows(named=True):
        rows.add_row(
            *_cells(
                _source(row["source"]),
                mask_text(row["file"]),
                row["row_number"],
                f"{row['column_label']} {row['column']}",
                row["check_label"],
                row["raw_value"],
            )
        )
    console.print(rows)
    cells = int(rejected.counts["cells"].sum())
    shown = rejected.rows.height
    more = (
        f"；列出其中 {shown} 个单元格 showing {shown} of {cells} cells (--limit 0 for all)"
        if shown < cells
        else ""
    )
    console.print(
        f"共 {rejected.total_rows} 行被拒收 {rejected.total_rows} rows rejected{more}",
        highlight=False,
        markup=False,
    )


@app.command(name="explain")
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
    with _read_db(settings) as con:
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


def people_table(name: str, period: str, people: pl.DataFrame, *, show_ids: bool) -> Table:
    """The roster's members called `name`, to choose a household from (IDs masked)."""
    from screening.ids import mask, mask_text

    shown: Callable[[str | None], str] = (lambda s: s or "") if show_ids else mask_text
    an_id: Callable[[str | None], str] = (lambda s: s or "") if show_ids else mask
    table = _table(
        f"人口库中名为「{name}」的成员 people named {name!r} on the {period} roster",
        ["姓名 name", "关系 relation", "身份证号 ID", "户编号 household", "户主 head",
         "乡镇 township", "村 village"],
    )  # fmt: skip
    for row in people.iter_rows(named=True):
        table.add_row(
            *_cells(
                row["name"],
                row["relation"],
                an_id(row["id_number"]),
                shown(row["household_id"]),
                row["head_name"],
                row["township"],
                row["village"],
            )
        )
    return table


# ---------------------------------------------------------------- explain: rendering


COLOUR_STYLES = {"红": "bold red", "黄": "bold yellow", "蓝": "bold blue"}
# explain.BEFORE / IN / AFTER
POSITION_LABELS = {
    "before": "早于窗口 before W",
    "in": "窗口内 in W",
    "after": "晚于本期 after P",
}


def render_explanation(exp: why.Explanation, out: Console, *, show_ids: bool = False) -> None:
    """The answer, top down: the verdict first, then each rule, the evidence, every record
    of the members, the members and the parameters."""
    from screening import ids

    shown: Callable[[str | None], str] = (lambda s: s or "") if show_ids else ids.mask_text
    an_id: Callable[[str | None], str] = (lambda s: s or "") if show_ids else ids.mask
    for part in (
        _household_part(exp, an_id, shown),
        _verdict_part(exp),
        _rules_table(exp),
        _evidence_table(exp, shown, an_id),
        _records_part(exp, shown, an_id),
        _members_table(exp, an_id),
        _history_table(exp),
        _parameters_table(exp),
    ):
        out.print(part)


def _history_table(exp: why.Explanation) -> Table:
    from screening import ids

    table = _table(
        "历史 history (household_history)",
        ["期次", "预警等级", "风险点", "纳入状态", "核实结果", "核实日期", "备注"],
    )
    for row in exp.history.iter_rows(named=True):
        status = row["listing_status"] or (
            "未列入（已核实不予纳入）" if row["colour"] else "未列入"
        )
        table.add_row(
            *_cells(
                row["period"],
                row["colour"],
                row["risk_labels"] or "无",
                status,
                row["verification_result"] or ("未反馈" if row["listed"] else None),
                row["verification_date"],
                ids.mask_text(row["verification_note"] or ""),
            )
        )
    return table


def _household_part(
    exp: why.Explanation, an_id: Callable[[str | None], str], shown: Callable[[str | None], str]
) -> Group:
    from screening import vocab
    from screening.rules.base import yuan

    hh = exp.household
    # A county may number its households with the head's ID number: masked like one.
    household = shown(exp.found.household_id)
    title = Text(f"户 household {household} · 期次 {exp.period}", style="bold")
    if exp.found.by == "id_number":
        title.append(f" · 按身份证号 {an_id(exp.found.id_number)} 找到 found by member ID")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    w = exp.window
    for label, value in (
        ("乡镇 / 村 township / village", f"{hh['township'] or '—'} / {hh['village'] or '—'}"),
        ("户主 head", f"{hh['head_name'] or '—'}  {an_id(hh['head_id_number'])}"),
        ("户类型 type", hh["household_type"] or f"— (按{vocab.DEFAULT_HOUSEHOLD_TYPE})"),
        ("家庭人口 size", f"{hh['household_size']} 人"),
        ("人均纯收入 income", f"{yuan(hh['per_capita_income'])} 元/人·年"),
        ("家庭年收入 household income", f"{yuan(hh['household_income'])} 元"),
        ("监测状态 monitoring", hh["monitoring_status"] or "—"),
        ("劳动力状况 labour", hh["labour_capacity"] or "—"),
        ("时间窗口 window W", f"{w.start} – {w.end}（{exp.params.window_months} 个月）"),
        ("户籍表 roster", f"{exp.roster_period} 期人口库 snapshot in force"),
    ):
        grid.add_row(label, Text(str(value)))
    return Group(title, grid)


def _verdict_part(exp: why.Explanation) -> Text:
    hh = exp.household
    lines = Text()
    if exp.listed:
        lines.append("结论 result: 列入 listed — ", style="bold")
        lines.append(f"{hh['colour']}", style=COLOUR_STYLES.get(hh["colour"], "bold"))
        lines.append(f" · {hh['listing_status']}\n", style="bold")
    else:
        lines.append("结论 result: 未列入 not listed\n", style="bold green")
    lines.append(f"  预警等级 colour: {exp.colour_reason}\n")
    if exp.listed or exp.household["risk_codes"]:
        lines.append(f"  纳入状态 status: {exp.status_reason}\n")
    if exp.removal_candidate:
        lines.append("  风险消除候选 proposed for risk removal this period\n", style="bold")
    stored = exp.stored
    if stored:
        lines.append(
            f"  数据库名单 stored list: {stored['colour']} {stored['listing_status']} "
            f"(run {stored['run_id']})\n"
        )
    else:
        lines.append(f"  数据库名单 stored list: 本期名单中无此户 not on the {exp.period} list\n")
    for note in exp.notes:
        lines.append(f"  ! {note}\n", style="yellow")
    lines.rstrip()
    return lines


def _rules_table(exp: why.Explanation) -> Table:
    table = _table(
        "逐条规则 each rule (screening-rules.md)",
        ["风险点 risk", "成立 applies", "看到的事实 what the rule saw", "条件 rule (parameters)"],
    )
    for rule in exp.rules:
        mark = Text("✔ 是 yes", style="bold red") if rule.fired else Text("✘ 否 no", style="green")
        table.add_row(Text(_risk(rule.code)), mark, Text(rule.saw), Text(rule.test))
    return table


def _evidence_table(
    exp: why.Explanation, shown: Callable[[str | None], str], an_id: Callable[[str | None], str]
) -> Table | Text:
    from screening.rules.base import yuan

    if exp.evidence.height == 0:
        return Text("依据 evidence: 无 none (no risk point applies)")
    table = _table(
        "依据 evidence (records behind each risk point)",
        ["风险点 risk", "成员 member", "身份证号 ID", "来源 source", "记录 key", "日期 date",
         "金额 amount", "说明 detail"],
        right=["金额 amount"],
    )  # fmt: skip
    for row in exp.evidence.iter_rows(named=True):
        table.add_row(
            *_cells(
                _risk(row["risk_code"]),
                row["name"],
                an_id(row["id_number"]),
                _source(row["source"]),
                shown(row["source_key"]),
                row["rule_date"],
                yuan(row["amount"]) if row["amount"] is not None else None,
                shown(row["detail"]),
            )
        )
    return table


def _records_part(
    exp: why.Explanation, shown: Callable[[str | None], str], an_id: Callable[[str | None], str]
) -> Table | Text:
    from screening.inspect import explain as why
    from screening.rules.base import yuan

    if exp.records.height == 0:
        return Text(
            f"部门记录 department records: 截至 {exp.period} 没有成员的记录 "
            "(no department record of any member delivered by this period)"
        )
    table = _table(
        "成员的全部部门记录 every department record of the members (as delivered by P)",
        ["来源 source", "成员 member", "身份证号 ID", "记录 key", "日期 date", "金额 amount",
         "说明 detail", "窗口 window", "用作依据 evidence for"],
        right=["金额 amount"],
    )  # fmt: skip
    for row in exp.records.iter_rows(named=True):
        supports = row["supports"]
        used = (
            "、".join(_risk(c) for c in supports.split(";"))
            if supports
            else (
                "计入但未达条件 counted, rule not met"
                if row["position"] == why.IN
                else "不计 not counted"
            )
        )
        table.add_row(
            *_cells(
                _source(row["source"]),
                row["name"],
                an_id(row["id_number"]),
                shown(row["source_key"]),
                row["rule_date"],
                yuan(row["amount"]) if row["amount"] is not None else None,
                shown(row["detail"]),
                POSITION_LABELS.get(row["position"], row["position"]),
                used,
            )
        )
    return table


def _members_table(exp: why.Explanation, an_id: Callable[[str | None], str]) -> Table:
    from screening.rules.base import yuan

    table = _table(
        "家庭成员 members",
        ["姓名 name", "关系 relation", "身份证号 ID", "年龄 age", "年龄段 age class",
         "残疾等级 disability", "医疗自付 medical", "教育净支出 education", "意外净损失 accident"],
        right=["年龄 age", "医疗自付 medical", "教育净支出 education", "意外净损失 accident"],
    )  # fmt: skip
    for m in exp.members.iter_rows(named=True):
        classes = [
            label
            for flag, label in (("compulsory_age", "义务教育"), ("working_age", "劳动年龄"))
            if m[flag]
        ]
        grade = m["disability_grade"]
        table.add_row(
            *_cells(
                m["name"],
                m["relation"],
                an_id(m["id_number"]),
                m["age"],
                "、".join(classes),
                f"{grade} 级" if grade is not None else None,
                yuan(m["medical_oop"]),
                yuan(m["education_cost"]),
                yuan(m["accident_loss"]),
            )
        )
    return table


def _parameters_table(exp: why.Explanation) -> Table:

    table = _table(f"参数 parameters used · {exp.params_origin}", ["参数 parameter", "取值 value"])
    for name, label, text in exp.params.lines():
        table.add_row(*_cells(f"{label} ({name})", text))
    for warning in exp.params.warnings:
        table.add_row(Text("提示 warning", style="yellow"), Text(warning, style="yellow"))
    return table


@app.command()
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
    settings.require_inbox()
    if print_cron:
        typer.echo(schedule.crontab_line(settings))  # plain echo: never wrapped nor stamped
        return
    _demo_banner(settings.demo)
    schedule.serve(settings)


# ---------------------------------------------------------------- feedback

feedback_app = typer.Typer(
    help="核实反馈: the townships' verification results for a period's list.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("import")
@one_line_errors
def feedback_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="反馈文件 the township's list (xlsx or csv), 核实结果/核实日期/备注 filled in"
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
    """导入核实结果: store each row's decision (确认纳入 / 不予纳入 / 待核实) for the period's
    listed household; rows that cannot be used are listed with the reason, the others are
    kept. Importing the same file again changes nothing. Lists published with --mask-ids
    are matched by their 核对码 column."""
    from screening.feedback import imports as feedback

    settings = config.load(db=db, busy_timeout=busy_timeout, demo=demo)
    _demo_banner(settings.demo)
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
    table = _table(
        f"核实反馈 feedback {result.period} · {township}",
        ["文件 file", *FEEDBACK_COUNTS],
        right=FEEDBACK_COUNTS,
    )
    table.add_row(
        *_cells(
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

    table = _table(
        "拒收的行 rejected rows", ["行 row", "户编号 household", "原因 reason"], right=["行 row"]
    )
    for row in messages.iter_rows(named=True):
        table.add_row(
            *_cells(
                row["row_number"], ids.mask_text(row["household_id"]), ids.mask_text(row["message"])
            )
        )
    return table


def main() -> None:  # pragma: no cover - console script entry
    app()
