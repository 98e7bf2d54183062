"""What the screen stage reads from the database: the inputs as of the period, holding only
what the rules read, and the households listed the period before."""

from __future__ import annotations

import duckdb

from screening import contract
from screening.db import deliveries as db_deliveries
from screening.db import roster as db_roster
from screening.db import runs as db_runs
from screening.periods import previous_period
from screening.pipeline.errors import RunError
from screening.rules import EVENT_SOURCES, facts
from screening.rules.screen import ScreenInputs


def load_inputs(
    con: duckdb.DuckDBPyConnection,
    specs: dict[str, contract.SourceSpec],
    period: str,
    window_months: int | None = None,
) -> ScreenInputs:
    """The roster snapshot in force at `period` and, per events source, the newest version
    of each record as of it, holding only what the rules read (`rules.rule_columns`) and
    within their reach (`facts.reach`): rule dates up to end(P), and with `window_months`
    none before the window's first day, but for certificates; and the earlier roster
    snapshots the rules compare with (`facts.earlier_periods`), those that are stored.
    (explain loads whole records with their provenance, `db_roster.events_as_of`.)"""
    population = db_roster.population(con, period)
    if population.height == 0:
        raise RunError(no_roster(con, period))
    events = {
        source: db_roster.events_as_of(
            con, specs[source], period, **facts.rule_reads(source, period, window_months)
        ).lazy()
        for source in EVENT_SOURCES
    }
    earlier = db_roster.earlier_rosters(con, facts.earlier_periods(period))
    return ScreenInputs(
        population=population.lazy(),
        events=events,
        earlier_rosters={months: frame.lazy() for months, frame in earlier.items()},
    )


def no_roster(con: duckdb.DuckDBPyConnection, period: str) -> str:
    """Why there is no roster to screen: none received, or this period's file refused (its
    reason and fix, e.g. the header to map with --aliases)."""
    entry = db_deliveries.log_entry(con, period, "roster")
    if entry is not None and entry["status"] in ("rejected", "held"):
        what = "被拒收 rejected" if entry["status"] == "rejected" else "被暂扣 held"
        return (
            f"截至 {period} 没有可用的人口库：本期人口库文件 {entry['file']} {what}: "
            f"{entry['message']} (no usable roster at or before {period})"
        )
    return (
        f"截至 {period} 没有收到人口库文件 no roster (人口/roster file) received at or "
        f"before {period}"
    )


def previously_listed(con: duckdb.DuckDBPyConnection, period: str) -> frozenset[str]:
    """The households on the lists of the period before `period`."""
    return frozenset(db_runs.listed_households(con, previous_period(period))["household_id"])
