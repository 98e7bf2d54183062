"""The options the commands share, and what they resolve to: the inbox of a period and
the database opened read-only.

Every command takes its folders from the settings (`config.load`: flags, then the
environment, then `screening.toml` in the working folder); the inbox is never guessed, and
the bundled synthetic county is screened only with `--demo`. Commands that only read
(explain, quarantine, report, summary) open the database read-only, so an analyst's
session does not block them, and never write a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from screening import config
from screening.cli.console import demo_banner
from screening.cli.errors import UserError

if TYPE_CHECKING:
    import duckdb

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


def inbox_folder(settings: config.Settings, period: str) -> Path:
    """The settings' inbox, which must hold a folder for the period."""
    folder = settings.require_inbox()
    origin = settings.origin.get("inbox", "")
    named = f" ({origin})" if origin.startswith(("$", config.SETTINGS_FILE)) else ""
    if not folder.is_dir():
        raise UserError(f"收件箱不存在 inbox folder not found: {folder}{named}")
    if not (folder / period).is_dir():
        raise UserError(f"收件箱中没有 {period} 文件夹 no folder for period {period} in {folder}")
    return folder


@contextmanager
def read_db(settings: config.Settings) -> Iterator[duckdb.DuckDBPyConnection]:
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
        demo_banner(db_runs.demo_runs(con)[0] > 0)
        yield con
    finally:
        con.close()
