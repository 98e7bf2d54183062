"""Runs in the database: the `runs` table (a run's start, inputs and end, runs that died
without recording theirs), what a run stores of its outcome (the lists, evidence, match
rates, every household's outcome, the risk-removal candidates and the scale check), and
the secret the lists' 核对码 are made with."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping

import duckdb
import polars as pl

from screening.db.connect import Query, execute, has_table, insert_frame, rows, scalar

# The message of a run that died without recording its end (tests and the docs quote it).
INTERRUPTED = "运行中断，未能记录结果 interrupted: the run ended before it could record its outcome"


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


# ---------------------------------------------------------------- a run's record


def record_start(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    period: str,
    township: str | None,
    started: dt.datetime,
    parameters: Mapping[str, object],
    code_version: str,
    demo: bool,
) -> None:
    """The run as running, with the parameter values it uses (`ResolvedParams.provenance`)."""
    execute(
        con,
        Query(
            "INSERT INTO runs (run_id, period, township, started_at, status, parameters, "
            "code_version, demo) VALUES ($run_id, $period, $township, $started, 'running', "
            "$parameters, $code_version, $demo)",
            {
                "run_id": run_id,
                "period": period,
                "township": township,
                "started": started,
                "parameters": json.dumps(parameters, ensure_ascii=False, default=str),
                "code_version": code_version,
                "demo": demo,
            },
        ),
    )


def record_inputs(
    con: duckdb.DuckDBPyConnection, run_id: str, files: list[dict[str, object]]
) -> None:
    """The run's input files (source, file, sha256, status, kept_file of each)."""
    execute(
        con,
        Query(
            "UPDATE runs SET input_files = $files WHERE run_id = $run_id",
            {"files": json.dumps(files, ensure_ascii=False), "run_id": run_id},
        ),
    )


def record_end(con: duckdb.DuckDBPyConnection, run_id: str, status: str, message: str) -> bool:
    """The run's end, now, with its status and one-line message. False when the run was no
    longer running: a failure reported after the run's success was committed must not
    rewrite it."""
    ended = rows(
        con,
        Query(
            "UPDATE runs SET finished_at = $now, status = $status, message = $message "
            "WHERE run_id = $run_id AND status = 'running' RETURNING run_id",
            {"now": _now(), "status": status, "message": message, "run_id": run_id},
        ),
    )
    return bool(ended)


def close_interrupted(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Record every run still 'running' as failed, interrupted; returns their periods. Only
    while holding the one-writer lock: such a run then died without recording its end."""
    closed = rows(
        con,
        Query(
            "UPDATE runs SET finished_at = $now, status = 'failed', message = $message "
            "WHERE status = 'running' RETURNING period",
            {"now": _now(), "message": INTERRUPTED},
        ),
    )
    return [r[0] for r in closed]


def ended(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[str]:
    """Those of `run_ids` that are runs of this database and have ended."""
    if not run_ids:
        return []
    found = rows(
        con,
        Query(
            "SELECT run_id FROM runs WHERE status <> 'running' AND list_contains($ids, run_id)",
            {"ids": run_ids},
        ),
    )
    return [r[0] for r in found]


def started_at(con: duckdb.DuckDBPyConnection, run_id: str) -> dt.datetime | None:
    """When the run started; None for a run not recorded."""
    return scalar(
        con, Query("SELECT started_at FROM runs WHERE run_id = $run_id", {"run_id": run_id})
    )


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


# ---------------------------------------------------------------- a run's outcome


def listed_households(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The households on the period's stored lists: household_id, township."""
    return con.sql(
        "SELECT household_id, township FROM suspects WHERE period = $period",
        params={"period": period},
    ).pl()


def store_outputs(
    con: duckdb.DuckDBPyConnection,
    period: str,
    township: str | None,
    suspects: pl.DataFrame,
    evidence: pl.DataFrame,
    match_rates: pl.DataFrame,
) -> None:
    """The period's lists in the database become these (one township's, for a township
    run, whose match rates are not stored: they are the county's). Call inside a
    transaction."""
    if township is None:
        for table in ("evidence", "suspects", "match_rates"):
            execute(con, Query(f"DELETE FROM {table} WHERE period = $period", {"period": period}))
        insert_frame(con, "match_rates", match_rates)
    else:
        mine = {"period": period, "township": township}
        execute(
            con,
            Query(
                "DELETE FROM evidence WHERE period = $period AND household_id IN "
                "(SELECT household_id FROM suspects WHERE period = $period "
                "AND township = $township)",
                mine,
            ),
        )
        execute(
            con, Query("DELETE FROM suspects WHERE period = $period AND township = $township", mine)
        )
    insert_frame(con, "suspects", suspects)
    insert_frame(con, "evidence", evidence)


def store_followup(
    con: duckdb.DuckDBPyConnection,
    period: str,
    township: str | None,
    households: pl.DataFrame,
    candidates: pl.DataFrame,
    scale: pl.DataFrame,
) -> None:
    """The period's screened households (every household's outcome), risk-removal
    candidates and scale check become these; a township run replaces that township's rows
    (pass only its rows). Call inside a transaction."""
    where, values = "period = $period", {"period": period}
    if township is not None:
        where, values = (
            "period = $period AND township = $township",
            {**values, "township": township},
        )
    for table in ("screened_households", "removal_candidates", "scale_checks"):
        execute(con, Query(f"DELETE FROM {table} WHERE {where}", values))
    insert_frame(con, "screened_households", households)
    insert_frame(con, "removal_candidates", candidates)
    insert_frame(con, "scale_checks", scale)
