"""What the follow-up of the lists reads (rules/followup.py): the townships' decisions on
earlier lists, the earlier screened periods of each household, and the households still
waiting for an answer after a list's time limit."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from screening.db.connect import Query, frame, has_table, rows, scalar
from screening.vocab import AWAITING_ANSWER


def latest_decisions(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Each household's latest current decision on a list before `period`: the latest
    verification date (an undated one: its import date), then the latest list, then the
    latest import. household_id, decision, decision_date, decision_period, and
    decision_codes: the risk codes the household had on that list (screened_households;
    null when that period's outcome is not stored)."""
    return frame(
        con,
        Query(
            "WITH latest AS (SELECT household_id, result AS decision, "
            "verification_date AS decision_date, period AS decision_period "
            "FROM current_verifications WHERE period < $period "
            # An undated 待核实 counts as made when it was imported.
            "QUALIFY row_number() OVER (PARTITION BY household_id ORDER BY "
            "coalesce(verification_date, imported_at::DATE) DESC, period DESC, "
            "imported_at DESC, row_number DESC) = 1) "
            "SELECT l.*, s.risk_codes AS decision_codes FROM latest l "
            "LEFT JOIN screened_households s ON s.period = l.decision_period "
            "AND s.household_id = l.household_id",
            {"period": period},
        ),
    )


def latest_removal_decisions(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Each household's latest current answer on a 风险消除候选 list before `period`:
    household_id, last_removal_decision, last_removal_decision_date (none in a database
    made before the lists could be answered)."""
    if not has_table(con, "removal_decisions"):
        return pl.DataFrame(
            schema={
                "household_id": pl.String,
                "last_removal_decision": pl.String,
                "last_removal_decision_date": pl.Date,
            }
        )
    return frame(
        con,
        Query(
            "SELECT household_id, decision AS last_removal_decision, "
            "decision_date AS last_removal_decision_date FROM current_removal_decisions "
            "WHERE period < $period QUALIFY row_number() OVER (PARTITION BY household_id "
            "ORDER BY decision_date DESC, period DESC, imported_at DESC, row_number DESC) = 1",
            {"period": period},
        ),
    )


def screened_before(con: duckdb.DuckDBPyConnection, period: str, count: int) -> list[str]:
    """The latest `count` screened periods before `period`, oldest first."""
    if count <= 0:
        return []
    found = rows(
        con,
        Query(
            "SELECT DISTINCT period FROM screened_households WHERE period < $period "
            "ORDER BY period DESC LIMIT $count",
            {"period": period, "count": count},
        ),
    )
    return sorted(r[0] for r in found)


def prior_outcomes(con: duckdb.DuckDBPyConnection, period: str, periods: list[str]) -> pl.DataFrame:
    """Per household screened before `period`: of `periods`, how many it came out of
    without any risk (clear_periods), and its latest earlier period with a risk
    (last_risk_period, last_risk_codes, last_risk_labels)."""
    return frame(
        con,
        Query(
            "SELECT household_id, "
            "count(*) FILTER (WHERE list_contains($periods, period) AND len(risk_codes) = 0) "
            "  AS clear_periods, "
            "max(period) FILTER (WHERE len(risk_codes) > 0) AS last_risk_period, "
            "arg_max(risk_codes, period) FILTER (WHERE len(risk_codes) > 0) "
            "  AS last_risk_codes, "
            "arg_max(risk_labels, period) FILTER (WHERE len(risk_codes) > 0) "
            "  AS last_risk_labels "
            "FROM screened_households WHERE period < $period GROUP BY household_id",
            {"period": period, "periods": periods},
        ),
    )


def county_list_published(con: duckdb.DuckDBPyConnection, period: str) -> dt.date | None:
    """The day the period's county list was last published (its latest successful whole
    run ended); None when it never was."""
    return scalar(
        con,
        Query(
            "SELECT max(finished_at)::DATE FROM runs WHERE period = $period "
            "AND status = 'success' AND township IS NULL",
            {"period": period},
        ),
    )


def unanswered(con: duckdb.DuckDBPyConnection, period: str, due: dt.date) -> pl.DataFrame:
    """Per township, the households of the period's list waiting for an answer that have
    none (township, overdue), with `due` beside them."""
    return frame(
        con,
        Query(
            "SELECT s.township, count(*)::BIGINT AS overdue, $due::DATE AS due FROM suspects s "
            "WHERE s.period = $period AND list_contains($awaiting, s.listing_status) "
            "AND NOT EXISTS (SELECT 1 FROM verifications v WHERE v.period = s.period "
            "  AND v.household_id = s.household_id) "
            "GROUP BY s.township ORDER BY s.township",
            {"period": period, "due": due, "awaiting": list(AWAITING_ANSWER)},
        ),
    )
