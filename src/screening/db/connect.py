"""The database file: connecting (waiting for a busy file), transactions, and the small
helpers every part of the database layer uses.

Every SQL statement of the program lives in this package (`screening.db`): named
functions that build a `Query` (the SQL and its parameters) and run it. Nothing outside
it writes SQL.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import polars as pl


class Query(NamedTuple):
    """One SQL statement and its parameters ($name placeholders)."""

    sql: str
    params: Mapping[str, object] | Sequence[object] = {}


def frame(con: duckdb.DuckDBPyConnection, query: Query) -> pl.DataFrame:
    """The query's result as a polars frame (named parameters only)."""
    assert isinstance(query.params, Mapping), "a frame query takes named parameters"
    return con.sql(query.sql, params=dict(query.params) or None).pl()


def rows(con: duckdb.DuckDBPyConnection, query: Query) -> list[tuple[Any, ...]]:
    """The query's rows. fetchall, not fetchone: DuckDB 2 refuses further queries on a
    connection whose last result was not read to the end."""
    return con.execute(query.sql, query.params or []).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, query: Query) -> Any:
    """The first value of the query's first row, or None."""
    found = rows(con, query)
    return found[0][0] if found else None


def execute(con: duckdb.DuckDBPyConnection, query: Query) -> None:
    con.execute(query.sql, query.params or [])


class DatabaseBusy(RuntimeError):
    """Another process holds the database file."""


log = logging.getLogger(__name__)


# How often a busy database is tried again while waiting for it.
BUSY_POLL_SECONDS = 0.5


_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


def connect(
    path: Path | str, *, read_only: bool = False, wait: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """A connection to the database at `path`. While another process has the file open in
    a way that excludes us (DuckDB: one writer, or readers but no writer), try again for
    up to `wait` seconds, saying once that we wait, then raise DatabaseBusy."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    creating = not path.exists()
    deadline: float | None = None
    while True:
        try:
            con = duckdb.connect(
                str(path),
                read_only=read_only,
                # No extension downloads: these machines are offline.
                config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
            )
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            found = _HOLDER_PID.search(str(exc))
            holder = f" (PID {found.group(1)})" if found else ""
            now = time.monotonic()
            zh, en = _duration(wait)
            if deadline is None:
                deadline = now + wait
                if wait > 0:
                    log.warning(
                        "数据库 %s 正被另一程序%s打开（可能是分析人员的会话），最多等待%s "
                        "database is open in another process%s (an analyst's session?); "
                        "waiting up to %s for it to close",
                        path, holder, zh, holder, en,
                    )  # fmt: skip
            if now >= deadline:
                still = (
                    (f"，等待{zh}后仍未释放", f", still after waiting {en}") if wait else ("", "")
                )
                raise DatabaseBusy(
                    f"数据库 {path} 正被另一程序使用{still[0]} database is in use by another "
                    f"process{holder} (a run or an open session){still[1]}; wait for it to "
                    "finish or close it"
                ) from None
            time.sleep(min(BUSY_POLL_SECONDS, max(deadline - now, 0.01)))
    # No progress bar in cron's logs (a session setting, not a global one).
    con.execute("SET enable_progress_bar = false")
    if creating and not read_only:
        # Personal data: the database is readable by its owner only.
        os.chmod(path, 0o600)
    return con


def _duration(seconds: float) -> tuple[str, str]:
    """(Chinese, English) for a wait: ' 10 分钟', '10 min'."""
    if seconds >= 120:
        return f" {seconds / 60:g} 分钟", f"{seconds / 60:g} min"
    return f" {seconds:g} 秒", f"{seconds:g} s"


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height == 0:
        return
    con.register("__incoming", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __incoming")
    finally:
        con.unregister("__incoming")


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        scalar(
            con, Query("SELECT count(*) FROM duckdb_tables() WHERE table_name = $t", {"t": name})
        )
    )


def present(con: duckdb.DuckDBPyConnection, table: str, column: str | None = None) -> bool:
    """Whether a table (and column) exists: a database made by an earlier version and
    opened read-only (`screening report`) has not gained them yet."""
    return bool(
        scalar(
            con,
            Query(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = $t "
                "AND ($c IS NULL OR column_name = $c)",
                {"t": table, "c": column},
            ),
        )
    )
