"""What every read-only inspection (explain, quarantine, the run report again) shares: the
one-line error for a question the database cannot answer, the check that it holds
screening results at all, and a period's runs with the parameters they recorded."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from screening import params
from screening.db import inspect as db_inspect
from screening.db.connect import has_table


class ExplainError(Exception):
    """A question the database cannot answer (unknown household, a period never screened);
    the message is the one line the user sees, with ID numbers masked."""


OUTPUT_TABLES = ("runs", "suspects", "evidence", "quarantine", "ingest_log", "match_rates")


def require_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A database some other program made (or an empty file) says so in one line."""
    missing = [t for t in OUTPUT_TABLES if not has_table(con, t)]
    if missing:
        raise ExplainError(
            f"数据库中还没有筛查结果 the database has no screening results (no table "
            f"{sorted(missing)[0]}); run `screening run` first"
        )


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    period: str
    township: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    parameters: str | None  # the JSON the run recorded


def successful_runs(con: duckdb.DuckDBPyConnection, period: str) -> list[RunRecord]:
    """The period's successful runs, latest first."""
    return [RunRecord(*row) for row in db_inspect.successful_runs(con, period)]


def latest_run(con: duckdb.DuckDBPyConnection, period: str) -> RunRecord:
    """The latest successful run of the period; a period never screened is an error."""
    runs = successful_runs(con, period)
    if not runs:
        done = db_inspect.screened_periods(con)
        listed = f"screened periods: {', '.join(done)}" if done else "no period screened yet"
        raise ExplainError(
            f"{period} 期尚未在此数据库中筛查 period {period} was never screened in this "
            f"database ({listed}); run `screening run --period {period}` first"
        )
    return runs[0]


def run_parameters(period: str, run: RunRecord | None) -> tuple[params.ResolvedParams, str]:
    """The parameter values the run recorded, resolved again for the period (so the stale
    line warning comes back too), and where they came from. Without a usable record: the
    shipped defaults."""
    recorded = _recorded_values(run.parameters if run else None)
    if run is not None and recorded:
        origin = f"run {run.run_id}"
        try:
            return params.load().override(recorded, origin=origin).at(period), origin
        except params.ParameterError:
            pass  # a record this version cannot read: say so through the origin below
    defaults = "parameters/default.yaml (默认参数; no usable parameters recorded by a run)"
    return params.load().at(period), defaults


def _recorded_values(text: str | None) -> dict[str, Any]:
    """runs.parameters ({name: {value, effective}}) → override form {name: {date: value}}."""
    if not text:
        return {}
    try:
        recorded = json.loads(text)
    except json.JSONDecodeError:
        return {}
    if not isinstance(recorded, dict):
        return {}
    values: dict[str, Any] = {}
    for name, entry in recorded.items():
        if isinstance(entry, Mapping) and "value" in entry and "effective" in entry:
            value = entry["value"]
            if entry.get("reference"):
                value = {"value": value, "reference": entry["reference"]}
            values[name] = {entry["effective"]: value}
        else:
            values[name] = entry  # a bare value: in force throughout
    return values
