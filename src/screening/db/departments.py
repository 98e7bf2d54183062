"""What a department's feedback file reads: its records behind a period's listings (with
the households' colour and the townships' answers), and its records of the period that
match nobody on the roster. Its quarantined rows are `db.inspect.quarantined`."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from screening.contract import SourceSpec
from screening.db.connect import Query, frame, present
from screening.db.roster import ROSTER_IN_FORCE, events_as_of_sql

LISTED_SCHEMA: dict[str, pl.DataType] = {
    "township": pl.String(),
    "village": pl.String(),
    "household_id": pl.String(),
    "colour": pl.String(),
    "listing_status": pl.String(),
    "risk_code": pl.String(),
    "source_key": pl.String(),
    "id_number": pl.String(),
    "name": pl.String(),
    "rule_date": pl.Date(),
    "amount": pl.Decimal(38, 2),
    "detail": pl.String(),
    "decision": pl.String(),
    "decision_date": pl.Date(),
}


def listed_records(
    con: duckdb.DuckDBPyConnection, period: str, source: str, *, answers_on_list: bool
) -> pl.DataFrame:
    """The source's records that were evidence for `period`'s listings (LISTED_SCHEMA),
    in list order. `decision` / `decision_date`: with `answers_on_list`, the township's
    current answer on that very list (null while none came); otherwise the latest answer
    on an earlier list that the list itself shows (上次核实结果)."""
    if answers_on_list and present(con, "verifications"):
        answer = (
            "v.result AS decision, v.verification_date AS decision_date FROM evidence e "
            "JOIN suspects s ON s.period = e.period AND s.household_id = e.household_id "
            "LEFT JOIN current_verifications v ON v.period = s.period "
            "AND v.household_id = s.household_id"
        )
    else:
        answer = (
            "s.last_decision AS decision, s.last_decision_date AS decision_date FROM evidence e "
            "JOIN suspects s ON s.period = e.period AND s.household_id = e.household_id"
        )
    found = frame(
        con,
        Query(
            "SELECT s.township, s.village, s.household_id, s.colour, s.listing_status, "
            "e.risk_code, e.source_key, e.id_number, e.name, e.rule_date, e.amount, e.detail, "
            f"{answer} WHERE e.period = $period AND e.source = $source "
            "ORDER BY s.township, s.village, s.household_id, e.risk_code, e.rule_date, "
            "e.source_key",
            {"period": period, "source": source},
        ),
    )
    return found.select(pl.col(k).cast(t) for k, t in LISTED_SCHEMA.items())


def unmatched_records(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, period: str, since: dt.date, until: dt.date
) -> pl.DataFrame:
    """The source's records as of `period` (newest version of each) whose rule date lies in
    [since, until] and whose ID number is on no row of the roster in force: the records the
    match rate counts as unmatched. source_key (the natural key, '|' between parts),
    id_number, name, rule_date, delivered (the delivery period), file, row_number."""
    assert spec.rule_date is not None, f"{spec.source} has no rule date"
    inner, values = events_as_of_sql(spec, period, since=since, until=until)
    key = ", ".join(f'"{k}"::VARCHAR' for k in spec.natural_key)
    name = '"name"' if "name" in spec.columns else "NULL::VARCHAR"
    return frame(
        con,
        Query(
            f"SELECT concat_ws('|', {key}) AS source_key, id_number, {name} AS name, "
            f'"{spec.rule_date}" AS rule_date, period AS delivered, file, row_number '
            f"FROM ({inner}) r WHERE NOT EXISTS (SELECT 1 FROM stg_roster p "
            f"WHERE p.period = {ROSTER_IN_FORCE} AND p.id_number = r.id_number) "
            f'ORDER BY "{spec.rule_date}", source_key',
            values,
        ),
    )
