"""Runs in the database: the `runs` table, what a run stores of its lists, and the
secret the lists' 核对码 are made with."""

from __future__ import annotations

import secrets

import duckdb

from screening.db.connect import has_table


def demo_runs(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(runs of the bundled synthetic sample, other runs) recorded in the database."""
    if not has_table(con, "runs"):
        return 0, 0
    demo, other = con.execute(
        "SELECT count(*) FILTER (coalesce(demo, false)), "
        "count(*) FILTER (NOT coalesce(demo, false)) FROM runs"
    ).fetchall()[0]
    return int(demo), int(other)


def list_key_secret(con: duckdb.DuckDBPyConnection) -> str:
    """The database's secret for the lists' 核对码, made on first use (write connection)."""
    rows = con.execute("SELECT value FROM secrets WHERE name = 'list_key'").fetchall()
    if rows:
        return str(rows[0][0])
    value = secrets.token_hex(32)
    con.execute("INSERT INTO secrets VALUES ('list_key', ?) ON CONFLICT DO NOTHING", [value])
    return str(con.execute("SELECT value FROM secrets WHERE name = 'list_key'").fetchall()[0][0])
