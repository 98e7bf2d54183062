"""What the run report reads beyond the run itself: the lists of the periods screened so far
(listed, new, continuing, dropped off), the match rates over those periods, the
townships' answers on a list, and how often the townships confirmed what each risk point
and each department listed (precision)."""

from __future__ import annotations

import duckdb
import polars as pl

from screening import vocab
from screening.db.connect import Query, frame, present
from screening.db.followup import AWAITING_ANSWER

# The month after a period, in SQL (periods are YYYY-MM text).
_NEXT = "strftime(CAST({0} || '-01' AS DATE) + INTERVAL 1 MONTH, '%Y-%m')"
_ANSWER_COUNTS = (
    "count(v.result)::BIGINT AS answered, "
    "count(*) FILTER (v.result = $confirmed)::BIGINT AS confirmed, "
    "count(*) FILTER (v.result = $declined)::BIGINT AS declined, "
    "count(*) FILTER (v.result = $pending)::BIGINT AS pending"
)
_DECISIONS = {"confirmed": vocab.CONFIRMED, "declined": vocab.DECLINED, "pending": vocab.PENDING}
ANSWERS_SCHEMA = {
    "township": pl.String,
    "awaiting": pl.Int64,
    "answered": pl.Int64,
    "confirmed": pl.Int64,
    "declined": pl.Int64,
    "pending": pl.Int64,
}


def _answers_ready(con: duckdb.DuckDBPyConnection) -> bool:
    # A database made before the follow-up (opened read-only) has no answers to read.
    return present(con, "verifications") and present(con, "suspects")


def lists_by_period(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Per period screened up to `period` (a successful run, or `period` itself), oldest
    first: period, listed, red, yellow, blue, new, continuing, monitored, confirmed (listing
    statuses) and dropped (households on the month before's list that this one no longer
    lists; 0 when that month has no list)."""
    return frame(
        con,
        Query(
            # The period itself counts while its run is still running (the report is made
            # before the run is recorded a success).
            "WITH screened AS (SELECT DISTINCT period FROM runs WHERE period <= $period "
            "  AND (status = 'success' OR period = $period)), "
            "counts AS (SELECT period, count(*)::BIGINT AS listed, "
            "  count(*) FILTER (colour = $red)::BIGINT AS red, "
            "  count(*) FILTER (colour = $yellow)::BIGINT AS yellow, "
            "  count(*) FILTER (colour = $blue)::BIGINT AS blue, "
            "  count(*) FILTER (listing_status = $new)::BIGINT AS new, "
            "  count(*) FILTER (listing_status = $continuing)::BIGINT AS continuing, "
            "  count(*) FILTER (listing_status = $monitored)::BIGINT AS monitored, "
            "  count(*) FILTER (listing_status = $status_confirmed)::BIGINT AS confirmed "
            "  FROM suspects WHERE period <= $period GROUP BY period), "
            f"dropped AS (SELECT {_NEXT.format('prev.period')} AS period, "
            "  count(*)::BIGINT AS dropped FROM suspects prev "
            "  WHERE NOT EXISTS (SELECT 1 FROM suspects cur WHERE cur.household_id = "
            f"    prev.household_id AND cur.period = {_NEXT.format('prev.period')}) "
            "  GROUP BY 1) "
            "SELECT s.period, coalesce(c.listed, 0) AS listed, coalesce(c.red, 0) AS red, "
            "coalesce(c.yellow, 0) AS yellow, coalesce(c.blue, 0) AS blue, "
            "coalesce(c.new, 0) AS new, coalesce(c.continuing, 0) AS continuing, "
            "coalesce(c.monitored, 0) AS monitored, coalesce(c.confirmed, 0) AS confirmed, "
            "coalesce(d.dropped, 0) AS dropped "
            "FROM screened s LEFT JOIN counts c USING (period) LEFT JOIN dropped d USING (period) "
            "ORDER BY s.period",
            {
                "period": period,
                "red": vocab.RED,
                "yellow": vocab.YELLOW,
                "blue": vocab.BLUE,
                "new": vocab.STATUS_NEW,
                "continuing": vocab.STATUS_CONTINUING,
                "monitored": vocab.STATUS_MONITORED,
                "status_confirmed": vocab.STATUS_CONFIRMED,
            },
        ),
    )


def match_rates_by_period(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The stored match rates of every period up to `period`: period, source,
    records_in_window, matched."""
    return frame(
        con,
        Query(
            "SELECT period, source, records_in_window, matched FROM match_rates "
            "WHERE period <= $period ORDER BY period, source",
            {"period": period},
        ),
    )


def answers_by_township(con: duckdb.DuckDBPyConnection, listed_period: str) -> pl.DataFrame:
    """Per township, the households of `listed_period`'s list the township was asked to
    verify (新增 / 持续: awaiting) and, of those, how many it answered and how: answered,
    confirmed, declined, pending (the current answer of each)."""
    if not _answers_ready(con):
        return pl.DataFrame(schema=ANSWERS_SCHEMA)
    found = frame(
        con,
        Query(
            "SELECT s.township, count(*)::BIGINT AS awaiting, "
            f"{_ANSWER_COUNTS} FROM suspects s LEFT JOIN current_verifications v "
            "ON v.period = s.period AND v.household_id = s.household_id "
            "WHERE s.period = $listed AND list_contains($awaiting, s.listing_status) "
            "GROUP BY s.township ORDER BY s.township",
            {"listed": listed_period, "awaiting": AWAITING_ANSWER, **_DECISIONS},
        ),
    )
    return found.select(pl.col(k).cast(t) for k, t in ANSWERS_SCHEMA.items())


def precision_by_risk(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Per risk point, over the lists before `period`: the listings (household × period)
    it was among the reasons for, and the townships' current answers on them: risk_code,
    listed, answered, confirmed, declined, pending."""
    if not _answers_ready(con):
        return _no_precision("risk_code")
    return frame(
        con,
        Query(
            "WITH listed AS (SELECT DISTINCT period, household_id, unnest(risk_codes) AS "
            "  risk_code FROM suspects WHERE period < $period) "
            f"SELECT l.risk_code, count(*)::BIGINT AS listed, {_ANSWER_COUNTS} FROM listed l "
            "LEFT JOIN current_verifications v ON v.period = l.period "
            "AND v.household_id = l.household_id GROUP BY l.risk_code ORDER BY l.risk_code",
            {"period": period, **_DECISIONS},
        ),
    )


def precision_by_source(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Per department (source of the evidence), over the lists before `period`: the
    listings its records were evidence for, and the townships' current answers on them:
    source, listed, answered, confirmed, declined, pending."""
    if not _answers_ready(con):
        return _no_precision("source")
    return frame(
        con,
        Query(
            "WITH listed AS (SELECT DISTINCT period, household_id, source FROM evidence "
            "  WHERE period < $period) "
            f"SELECT l.source, count(*)::BIGINT AS listed, {_ANSWER_COUNTS} FROM listed l "
            "LEFT JOIN current_verifications v ON v.period = l.period "
            "AND v.household_id = l.household_id GROUP BY l.source ORDER BY l.source",
            {"period": period, **_DECISIONS},
        ),
    )


def _no_precision(key: str) -> pl.DataFrame:
    counts = ("listed", "answered", "confirmed", "declined", "pending")
    return pl.DataFrame(schema={key: pl.String, **dict.fromkeys(counts, pl.Int64)})
