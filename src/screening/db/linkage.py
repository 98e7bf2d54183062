"""Linkage in the database (screening.linkage): the records a run tries to link (quarantined
for their ID number alone, or valid but of nobody on the roster), the roster people they
are linked against, the suggestions a run stores, the answers a returned 身份核对 list
brings (`confirmed_links`, `rejected_links`), and the as-of read of a source with its
confirmed links applied, which is how a linked record reaches the rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import polars as pl

from screening.contract import SourceSpec
from screening.db.connect import Query, execute, frame, insert_frame, present, scalar
from screening.vocab import TYPES

# A quarantined row is linkable when its ID number is the only thing wrong with it: every
# other cell passed, so once a person names whose record it is, the rules can count it.
LINKABLE_ROWS = (
    "SELECT q.* FROM quarantined_rows q WHERE q.source = $source AND q.period <= $period "
    "AND EXISTS (SELECT 1 FROM quarantine x WHERE x.period = q.period AND x.source = q.source "
    "AND x.row_number = q.row_number AND x.\"check\" = 'invalid_id' "
    "AND x.\"column\" = 'id_number') "
    "AND NOT EXISTS (SELECT 1 FROM quarantine x WHERE x.period = q.period "
    "AND x.source = q.source AND x.row_number = q.row_number "
    "AND NOT (x.\"check\" = 'invalid_id' AND x.\"column\" = 'id_number'))"
)


def key_sql(spec: SourceSpec, alias: str) -> str:
    """The natural key as text, parts joined with '|': what `rules.facts.source_key` and
    `quarantined_rows.source_key` hold."""
    return (
        "concat_ws('|', "
        + ", ".join(f"coalesce(CAST({alias}.\"{k}\" AS VARCHAR), '')" for k in spec.natural_key)
        + ")"
    )


def typed_record_sql(spec: SourceSpec, alias: str, skip: Sequence[str] = ()) -> str:
    """The contract columns of a quarantined row, typed as in stg_<source>, from its JSON."""
    return ", ".join(
        f"CAST(json_extract_string({alias}.record, '$.\"{key}\"') AS {TYPES[col.type][1]}) "
        f'AS "{key}"'
        for key, col in spec.columns.items()
        if key not in skip
    )


def has_links(con: duckdb.DuckDBPyConnection, source: str) -> bool:
    """Whether any record of `source` has a confirmed link (a database made before linkage
    has none)."""
    if not present(con, "confirmed_links"):
        return False
    found = scalar(
        con, Query("SELECT count(*) FROM confirmed_links WHERE source = $s", {"s": source})
    )
    return bool(found)


def linked_rows_sql(spec: SourceSpec) -> str:
    """Every delivered row of `spec`'s source up to $period as stg_<source> holds it (without
    `extra`), plus the linkable quarantined rows; a row that is the very record a person
    linked (its natural key, and the ID number it was delivered with) carries the linked
    person's number and `linked`. The as-of read (db.roster.events_as_of_sql) then keeps the
    newest version of each natural key: a record the department re-sends later with another
    number (corrected, or someone else's) is counted once, as the department now sends it."""
    source = spec.source
    links = (
        "SELECT source_key, record_id_number, id_number FROM confirmed_links "
        f"WHERE source = '{source}'"
    )
    stored = (
        f"SELECT s.* EXCLUDE (extra) REPLACE (coalesce(l.id_number, s.id_number) AS id_number), "
        f"l.id_number IS NOT NULL AS linked FROM stg_{source} s "
        f"LEFT JOIN ({links}) l ON l.source_key = {key_sql(spec, 's')} "
        "AND l.record_id_number = s.id_number WHERE s.period <= $period"
    )
    quarantined = (
        f"SELECT q.period, q.file, q.row_number, {typed_record_sql(spec, 'q', ['id_number'])}, "
        f"l.id_number AS id_number, true AS linked FROM ({_linkable(source)}) q "
        "JOIN quarantine x ON x.period = q.period AND x.source = q.source "
        "AND x.row_number = q.row_number AND x.\"check\" = 'invalid_id' "
        f"JOIN ({links}) l ON l.source_key = q.source_key AND l.record_id_number = x.raw_value"
    )
    return f"{stored} UNION ALL BY NAME {quarantined}"


def _linkable(source: str) -> str:
    return LINKABLE_ROWS.replace("$source", f"'{source}'")


# ---------------------------------------------------------------- what a run links


def quarantined_candidates(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    period: str,
    since: dt.date | None,
    until: dt.date,
) -> pl.DataFrame:
    """The linkable quarantined rows of the source delivered up to `period` (the newest
    copy of each natural key), whose rule date lies in [since, until], not re-sent since
    under the same key, and without a confirmed link: record_period, file, row_number,
    source_key, record_id_number (the raw ID), and the contract columns typed (id_number
    null)."""
    assert spec.rule_date is not None, f"{spec.source} has no rule date"
    if not present(con, "quarantined_rows"):
        return pl.DataFrame()
    day = f'"{spec.rule_date}"'
    bound = f"{day} <= $until" + (f" AND {day} >= $since" if since is not None else "")
    sql = (
        f"WITH q AS ({_linkable(spec.source)} "
        "QUALIFY row_number() OVER (PARTITION BY q.source_key ORDER BY q.period DESC) = 1), "
        f"typed AS (SELECT q.period AS record_period, q.file, q.row_number, q.source_key, "
        f"q.extra, {typed_record_sql(spec, 'q')} FROM q) "
        "SELECT t.* EXCLUDE (id_number), x.raw_value AS record_id_number FROM typed t "
        "JOIN quarantine x ON x.period = t.record_period AND x.source = $source "
        "AND x.row_number = t.row_number AND x.\"check\" = 'invalid_id' "
        f"WHERE {bound} "
        f"AND NOT EXISTS (SELECT 1 FROM stg_{spec.source} s WHERE s.period >= t.record_period "
        f"AND s.period <= $period AND {key_sql(spec, 's')} = t.source_key) "
        "AND NOT EXISTS (SELECT 1 FROM confirmed_links c WHERE c.source = $source "
        "AND c.source_key = t.source_key AND c.record_id_number = x.raw_value) "
        "ORDER BY t.source_key"
    )
    values: dict[str, object] = {"source": spec.source, "period": period, "until": until}
    if since is not None:
        values["since"] = since
    return frame(con, Query(sql, values))


def extras(con: duckdb.DuckDBPyConnection, source: str, rows: pl.DataFrame) -> pl.DataFrame:
    """period, row_number, extra of the stored rows of `source` named in `rows` (period,
    row_number): the columns the contract does not know, which may say where a person
    lives."""
    con.register("__rows", rows.select("period", "row_number").to_arrow())
    try:
        return frame(
            con,
            Query(
                f"SELECT s.period, s.row_number, s.extra::VARCHAR AS extra FROM stg_{source} s "
                "JOIN __rows r ON r.period = s.period AND r.row_number = s.row_number"
            ),
        )
    finally:
        con.unregister("__rows")


def roster_people(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The roster in force at `period`, as linkage reads it."""
    from screening.db.roster import ROSTER_IN_FORCE  # roster.py reads this module

    return frame(
        con,
        Query(
            "SELECT id_number, name, household_id, township, village FROM stg_roster "
            f"WHERE period = {ROSTER_IN_FORCE} ORDER BY id_number",
            {"period": period},
        ),
    )


def rejected_pairs(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """source, source_key, id_number of every pair answered 不是."""
    if not present(con, "rejected_links"):
        return pl.DataFrame(schema={"source": pl.String, "source_key": pl.String,
                                    "id_number": pl.String})  # fmt: skip
    return frame(con, Query("SELECT source, source_key, id_number FROM rejected_links"))


# ---------------------------------------------------------------- what a run stores


def store_suggestions(
    con: duckdb.DuckDBPyConnection, period: str, township: str | None, suggestions: pl.DataFrame
) -> None:
    """The period's suggestions become these (a township run: that township's). Call inside
    a transaction."""
    where, values = "period = $period", {"period": period}
    if township is not None:
        where, values = f"{where} AND township = $township", {**values, "township": township}
    execute(con, Query(f"DELETE FROM link_suggestions WHERE {where}", values))
    insert_frame(con, "link_suggestions", suggestions)


_OPEN = (
    "NOT EXISTS (SELECT 1 FROM confirmed_links c WHERE c.source = s.source "
    "AND c.source_key = s.source_key) AND NOT EXISTS (SELECT 1 FROM rejected_links r "
    "WHERE r.source = s.source AND r.source_key = s.source_key AND r.id_number = s.id_number)"
)


def waiting(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Per source, the period's suggested records still unanswered (no link confirmed for
    the record, the pair not rejected): source, records, pairs."""
    if not (present(con, "link_suggestions") and present(con, "rejected_links")):
        return pl.DataFrame(schema={"source": pl.String, "records": pl.Int64, "pairs": pl.Int64})
    return frame(
        con,
        Query(
            "SELECT source, count(DISTINCT source_key)::BIGINT AS records, "
            f"count(*)::BIGINT AS pairs FROM link_suggestions s WHERE period = $period AND {_OPEN} "
            "GROUP BY source ORDER BY source",
            {"period": period},
        ),
    )


REPORT_SCHEMA = pl.Schema(
    {
        "source": pl.String(),
        "records_in_window": pl.Int64(),
        "matched_by_id": pl.Int64(),
        "matched": pl.Int64(),
        "waiting": pl.Int64(),
    }
)


def report_rows(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """What the run report says of linkage (REPORT_SCHEMA): per source of the period's
    match rates, records in the window, matched by their own ID number, matched with the
    confirmed links, and records on the period's 身份核对 lists still unanswered."""
    if not present(con, "match_rates", "matched_by_link"):
        return pl.DataFrame(schema=REPORT_SCHEMA)
    waits = waiting(con, period).select("source", "records")
    rates = frame(
        con,
        Query(
            "SELECT source, records_in_window, "
            "matched - coalesce(matched_by_link, 0) AS matched_by_id, matched "
            "FROM match_rates WHERE period = $period",
            {"period": period},
        ),
    )
    return (
        rates.join(waits, on="source", how="left", maintain_order="left")
        .with_columns(waiting=pl.col("records").fill_null(0))
        .select(REPORT_SCHEMA.names())
        .cast(REPORT_SCHEMA)
    )


def suggestions(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's stored suggestions, every column."""
    return frame(
        con,
        Query(
            "SELECT * FROM link_suggestions WHERE period = $period "
            "ORDER BY township, source, source_key, rank",
            {"period": period},
        ),
    )


# ---------------------------------------------------------------- answers


def store_answers(
    con: duckdb.DuckDBPyConnection, confirmed: pl.DataFrame, rejected: pl.DataFrame
) -> None:
    """Confirmed links replace the record's earlier link and any rejection of the same pair;
    rejected pairs replace an earlier rejection and withdraw the record's link to that
    person. Call inside a transaction."""
    for row in confirmed.select("source", "source_key", "id_number").iter_rows():
        execute(
            con,
            Query("DELETE FROM confirmed_links WHERE source = ? AND source_key = ?", list(row[:2])),
        )
        execute(
            con,
            Query(
                "DELETE FROM rejected_links WHERE source = ? AND source_key = ? AND id_number = ?",
                list(row),
            ),
        )
    for row in rejected.select("source", "source_key", "id_number").iter_rows():
        for table in ("rejected_links", "confirmed_links"):
            execute(
                con,
                Query(
                    f"DELETE FROM {table} WHERE source = ? AND source_key = ? AND id_number = ?",
                    list(row),
                ),
            )
    insert_frame(con, "confirmed_links", confirmed)
    insert_frame(con, "rejected_links", rejected)


def answered(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every current answer: source, source_key, id_number, answer (是同一人 / 不是), checked_by,
    note: what an import compares a file's answers with."""
    return frame(
        con,
        Query(
            "SELECT source, source_key, id_number, '是同一人' AS answer, checked_by, note "
            "FROM confirmed_links UNION ALL SELECT source, source_key, id_number, '不是', "
            "checked_by, note FROM rejected_links"
        ),
    )


def confirmed_of(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> pl.DataFrame:
    """The confirmed links of the records in `keys` (source, source_key)."""
    if keys.height == 0:
        return pl.DataFrame(schema={"source": pl.String, "source_key": pl.String,
                                    "id_number": pl.String})  # fmt: skip
    con.register("__keys", keys.select("source", "source_key").to_arrow())
    try:
        return frame(
            con,
            Query(
                "SELECT c.source, c.source_key, c.id_number FROM confirmed_links c "
                "JOIN __keys k USING (source, source_key)"
            ),
        )
    finally:
        con.unregister("__keys")


# ---------------------------------------------------------------- explain


def links_of(con: duckdb.DuckDBPyConnection, id_numbers: list[str]) -> pl.DataFrame:
    """The confirmed links to these people: source, source_key, id_number, record_name,
    record_id_number, period, checked_by, confirmed_at, confirmed_by."""
    if not present(con, "confirmed_links"):
        return pl.DataFrame()
    return frame(
        con,
        Query(
            "SELECT source, source_key, id_number, name, record_name, record_id_number, period, "
            "checked_by, confirmed_at, confirmed_by FROM confirmed_links "
            "WHERE list_contains($ids, id_number) ORDER BY confirmed_at, source, source_key",
            {"ids": id_numbers},
        ),
    )


def open_suggestions_of(
    con: duckdb.DuckDBPyConnection, period: str, id_numbers: list[str]
) -> pl.DataFrame:
    """The period's unanswered suggestions naming these people as the candidate."""
    if not present(con, "link_suggestions"):
        return pl.DataFrame()
    return frame(
        con,
        Query(
            "SELECT * FROM link_suggestions s WHERE period = $period "
            f"AND list_contains($ids, id_number) AND {_OPEN} "
            "ORDER BY source, source_key, rank",
            {"period": period, "ids": id_numbers},
        ),
    )
