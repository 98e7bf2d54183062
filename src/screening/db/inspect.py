"""What the read-only inspections read (screening explain, quarantine, report): the
periods' successful runs, one household's stored rows and history, the quarantine of a
period, and the stored outputs a run report is rebuilt from."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from screening.db.connect import Query, frame, present, rows, scalar
from screening.db.roster import ROSTER_QUALITY_SQL

# ---------------------------------------------------------------- runs


def successful_runs(con: duckdb.DuckDBPyConnection, period: str) -> list[tuple[Any, ...]]:
    """The period's successful runs, latest first: run_id, period, township, started_at,
    finished_at, parameters (the JSON text it recorded)."""
    return rows(
        con,
        Query(
            "SELECT run_id, period, township, started_at, finished_at, parameters::VARCHAR "
            "FROM runs WHERE period = $period AND status = 'success' "
            "ORDER BY finished_at DESC NULLS LAST, started_at DESC, run_id DESC",
            {"period": period},
        ),
    )


def screened_periods(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The periods with a successful run, in order."""
    found = rows(
        con, Query("SELECT DISTINCT period FROM runs WHERE status = 'success' ORDER BY period")
    )
    return [r[0] for r in found]


def held_runs_since(
    con: duckdb.DuckDBPyConnection, period: str, since: dt.datetime | None
) -> list[str]:
    """The period's runs started at or after `since` that a completeness gate held."""
    found = rows(
        con,
        Query(
            "SELECT run_id FROM runs WHERE period = $period AND status = 'held' "
            "AND started_at >= $since ORDER BY started_at, run_id",
            {"period": period, "since": since},
        ),
    )
    return [r[0] for r in found]


# ---------------------------------------------------------------- one household


def roster_appearances(
    con: duckdb.DuckDBPyConnection, household_id: str, id_number: str | None, limit: int = 3
) -> list[tuple[str, str]]:
    """(period, household_id) of the roster snapshots, latest first, on which the household
    id or the ID number appears."""
    found = rows(
        con,
        Query(
            "SELECT period, household_id FROM stg_roster "
            "WHERE household_id = $household OR id_number = $id_number GROUP BY ALL "
            "ORDER BY period DESC LIMIT $limit",
            {"household": household_id, "id_number": id_number, "limit": limit},
        ),
    )
    return [(str(p), str(h)) for p, h in found]


def stored_suspect(
    con: duckdb.DuckDBPyConnection, period: str, household_id: str
) -> dict[str, Any] | None:
    """The household's row in the period's stored list; None when it is not listed."""
    found = frame(
        con,
        Query(
            "SELECT * FROM suspects WHERE period = $period AND household_id = $household",
            {"period": period, "household": household_id},
        ),
    )
    return found.row(0, named=True) if found.height else None


def history(con: duckdb.DuckDBPyConnection, household_id: str) -> pl.DataFrame:
    """The household's timeline (the `household_history` view), oldest period first."""
    # A database made before the 风险消除候选 lists could be answered, opened read-only,
    # has the view without them.
    removals = (
        "removal_decision, removal_decision_date, removal_note"
        if present(con, "household_history", "removal_decision")
        else "NULL::VARCHAR AS removal_decision, NULL::DATE AS removal_decision_date, "
        "NULL::VARCHAR AS removal_note"
    )
    return frame(
        con,
        Query(
            "SELECT period, colour, risk_labels, listed, listing_status, verification_result, "
            f"verification_date, verification_note, {removals} FROM household_history "
            "WHERE household_id = $household ORDER BY period",
            {"household": household_id},
        ),
    )


# ---------------------------------------------------------------- quarantine


def ingested_periods(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The periods with an `ingest_log` row, in order."""
    found = rows(con, Query("SELECT DISTINCT period FROM ingest_log ORDER BY period"))
    return [r[0] for r in found]


def _quarantine_of(period: str, source: str | None) -> tuple[str, dict[str, object]]:
    """The WHERE condition on `quarantine` for the period (and source) and its values."""
    if source is None:
        return "period = $period", {"period": period}
    return "period = $period AND source = $source", {"period": period, "source": source}


def quarantined(
    con: duckdb.DuckDBPyConnection, period: str, source: str | None = None, limit: int = 0
) -> pl.DataFrame:
    """The period's quarantined cells (of one source), as stored: source, file,
    row_number, column, check, raw_value; at most `limit` of them (0: all)."""
    where, values = _quarantine_of(period, source)
    capped = f" LIMIT {int(limit)}" if limit > 0 else ""
    return frame(
        con,
        Query(
            'SELECT source, file, row_number, "column", "check", raw_value FROM quarantine '
            f'WHERE {where} ORDER BY source, file, row_number, "column", "check"{capped}',
            values,
        ),
    )


def quarantine_counts(
    con: duckdb.DuckDBPyConnection, period: str, source: str | None = None
) -> pl.DataFrame:
    """Per source and check: the rows and the cells quarantined in the period."""
    where, values = _quarantine_of(period, source)
    return frame(
        con,
        Query(
            'SELECT source, "check", count(DISTINCT (file, row_number))::BIGINT AS rows, '
            f"count(*)::BIGINT AS cells FROM quarantine WHERE {where} GROUP BY ALL "
            'ORDER BY source, rows DESC, "check"',
            values,
        ),
    )


def quarantined_rows(con: duckdb.DuckDBPyConnection, period: str, source: str | None = None) -> int:
    """Rows quarantined in the period (a row failing several checks counts once)."""
    where, values = _quarantine_of(period, source)
    return int(
        scalar(
            con,
            Query(
                f"SELECT count(DISTINCT (source, file, row_number)) FROM quarantine WHERE {where}",
                values,
            ),
        )
    )


# ---------------------------------------------------------------- stored outputs


def suspects(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's stored lists."""
    return frame(con, Query("SELECT * FROM suspects WHERE period = $period", {"period": period}))


def match_rates(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's stored match rates: source, records_in_window, matched, unmatched."""
    return frame(
        con,
        Query(
            "SELECT source, records_in_window, matched, unmatched FROM match_rates "
            "WHERE period = $period",
            {"period": period},
        ),
    )


def scale_checks(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's stored scale check, the townships first, then the county."""
    return frame(
        con,
        Query(
            "SELECT * FROM scale_checks WHERE period = $period ORDER BY township NULLS LAST",
            {"period": period},
        ),
    )


def removal_candidates(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's stored risk-removal candidates."""
    return frame(
        con,
        Query(
            "SELECT * FROM removal_candidates WHERE period = $period "
            "ORDER BY township, village, household_id",
            {"period": period},
        ),
    )


def households_without_head(con: duckdb.DuckDBPyConnection, period: str, head: str) -> int:
    """Households of the roster snapshot in force at `period` with no member whose
    relation is `head` (the households the run report's data-quality section names)."""
    found = scalar(
        con,
        Query(
            f"SELECT count(*) FROM ({ROSTER_QUALITY_SQL['no_head']})",
            {"period": period, "head": head},
        ),
    )
    return int(found or 0)
