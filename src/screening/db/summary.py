"""What `screening summary` reads: the stored lists counted per period."""

from __future__ import annotations

from typing import Any

import duckdb

from screening import vocab
from screening.db.connect import Query, rows


def listed_per_period(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Per period, oldest first: (period, households listed, red, yellow, blue, new,
    continuing, already monitored, confirmed awaiting entry, township answers, risk-removal
    candidates)."""
    # The colours and statuses are parameters: their words are written once, in vocab.
    query = Query(
        "SELECT period, count(*) AS households, "
        "count(*) FILTER (colour = $red) AS red, count(*) FILTER (colour = $yellow) AS yellow, "
        "count(*) FILTER (colour = $blue) AS blue, "
        "count(*) FILTER (listing_status = $new) AS new, "
        "count(*) FILTER (listing_status = $continuing) AS continuing, "
        "count(*) FILTER (listing_status = $monitored) AS monitored, "
        "count(*) FILTER (listing_status = $confirmed) AS confirmed, "
        "(SELECT count(*) FROM current_verifications v WHERE v.period = s.period) AS answers, "
        "(SELECT count(*) FROM removal_candidates c WHERE c.period = s.period) AS removal "
        "FROM suspects s GROUP BY period ORDER BY period",
        {
            "red": vocab.RED,
            "yellow": vocab.YELLOW,
            "blue": vocab.BLUE,
            "new": vocab.STATUS_NEW,
            "continuing": vocab.STATUS_CONTINUING,
            "monitored": vocab.STATUS_MONITORED,
            "confirmed": vocab.STATUS_CONFIRMED,
        },
    )
    return rows(con, query)
