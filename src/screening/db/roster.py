"""What the rules read "as of period P": the roster snapshot in force (the latest received
at or before P) and, per natural key, the newest version of each department record
delivered at or before P; and what the run report says of the roster."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import polars as pl

from screening.contract import SourceSpec
from screening.db import linkage as db_linkage
from screening.db.connect import Query, has_table, present

# The period of the roster snapshot in force at $period: the one every as-of read uses.
ROSTER_IN_FORCE = "(SELECT max(period) FROM stg_roster WHERE period <= $period)"
POPULATION_SQL = (
    f"SELECT * EXCLUDE (extra) FROM stg_roster WHERE period = {ROSTER_IN_FORCE} ORDER BY row_number"
)


def population(
    con: duckdb.DuckDBPyConnection, period: str, keys: list[str] | None = None
) -> pl.DataFrame:
    """The latest roster snapshot received at or before the period ($period in
    POPULATION_SQL); with `keys`, only the households having one of them as household id
    or as a member's ID number (`explain` looks up one household: a county's million
    persons took it most of a second)."""
    if keys is None:
        return con.sql(POPULATION_SQL, params={"period": period}).pl()
    # The snapshot's period looked up first and passed as a value: with the subquery
    # written twice, DuckDB read every stored snapshot (0.2 s at county size, not 0.01).
    sql = (
        "SELECT * EXCLUDE (extra) FROM stg_roster WHERE period = $snapshot "
        "AND household_id IN (SELECT household_id FROM stg_roster WHERE period = $snapshot "
        "AND (list_contains($keys, household_id) OR list_contains($keys, id_number))) "
        "ORDER BY row_number"
    )
    snapshot = roster_period(con, period)
    return con.sql(sql, params={"snapshot": snapshot, "keys": keys}).pl()


# What the rules read of an earlier roster snapshot (Department.earlier_rosters): enough to
# find each household's head and its per-capita income then.
EARLIER_COLUMNS = ("household_id", "id_number", "relation", "per_capita_income", "row_number")


def earlier_roster_sql(period: str, household_ids: list[str] | None = None) -> Query:
    """The roster snapshot in force at `period` (an earlier one: P − months), only
    EARLIER_COLUMNS and the snapshot's period; with `household_ids`, only those households.
    No rows when none is stored."""
    columns = ", ".join(f'"{c}"' for c in EARLIER_COLUMNS)
    values: dict[str, object] = {"period": period}
    mine = ""
    if household_ids is not None:
        mine = " AND list_contains($households, household_id)"
        values["households"] = household_ids
    return Query(
        f"SELECT {columns}, period FROM stg_roster WHERE period = {ROSTER_IN_FORCE}{mine} "
        "ORDER BY row_number",
        values,
    )


def earlier_rosters(
    con: duckdb.DuckDBPyConnection,
    periods: Mapping[int, str],
    household_ids: list[str] | None = None,
) -> dict[int, pl.DataFrame]:
    """Per key of `periods` (months before P → that period), the roster snapshot in force
    at the period (`earlier_roster_sql`); a key whose period has none stored is left out."""
    found = {}
    for months, period in periods.items():
        if roster_period(con, period) is not None:
            sql, values = earlier_roster_sql(period, household_ids)
            found[months] = con.sql(sql, params=values).pl()
    return found


def earlier_coverage(
    con: duckdb.DuckDBPyConnection, period: str, earlier: str
) -> tuple[str | None, int]:
    """The period of the roster snapshot in force at `earlier` (None: none stored), and how
    many households of the snapshot in force at `period` are not in it."""
    found = roster_period(con, earlier)
    if found is None:
        return None, 0
    missing = con.execute(
        f"SELECT count(DISTINCT household_id) FROM stg_roster WHERE period = {ROSTER_IN_FORCE} "
        "AND household_id NOT IN (SELECT household_id FROM stg_roster WHERE period = $found)",
        {"period": period, "found": found},
    ).fetchall()[0][0]
    return found, int(missing)


def persons_as_of(con: duckdb.DuckDBPyConnection, period: str) -> int:
    """Persons on the roster snapshot in force at `period`."""
    found = con.execute(f"SELECT count(*) FROM ({POPULATION_SQL})", {"period": period})
    return int(found.fetchall()[0][0])


def roster_period(con: duckdb.DuckDBPyConnection, period: str) -> str | None:
    """The period of the roster snapshot in force at `period`, or None before any."""
    if not has_table(con, "stg_roster"):
        return None
    found = con.execute(f"SELECT {ROSTER_IN_FORCE}", {"period": period}).fetchall()
    return found[0][0] if found else None


def roster_ids(con: duckdb.DuckDBPyConnection, period: str) -> pl.Series:
    """The ID numbers of the roster snapshot in force at `period`."""
    return con.sql(
        f"SELECT id_number FROM stg_roster WHERE period = {ROSTER_IN_FORCE}",
        params={"period": period},
    ).pl()["id_number"]


def roster_townships(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    """The townships of the roster snapshot in force at `period` ([] before any roster)."""
    if not has_table(con, "stg_roster"):
        return []
    found = con.execute(
        "SELECT DISTINCT township FROM stg_roster WHERE township IS NOT NULL AND period = "
        f"{ROSTER_IN_FORCE} ORDER BY 1",
        {"period": period},
    ).fetchall()
    return [r[0] for r in found]


# The roster's optional columns the lists show (data contract: shown when present).
CONTACT_COLUMNS = ("group", "address", "phone", "helper")
# The head's row first (its first 户主 row), then the others by row: rules/facts.py's order.
_HEAD_FIRST = "(CASE WHEN relation = '户主' THEN 0 ELSE 1 END, row_number)"


def household_contacts(
    con: duckdb.DuckDBPyConnection, period: str, household_ids: Sequence[str]
) -> pl.DataFrame:
    """Per household of `household_ids`, the roster's optional columns in the snapshot in
    force at `period`: each the head's value, else the first member's that has one (by row);
    null where the roster has none. household_id, group, address, phone, helper."""
    schema = {"household_id": pl.String, **dict.fromkeys(CONTACT_COLUMNS, pl.String)}
    if not household_ids or not has_table(con, "stg_roster"):
        return pl.DataFrame(schema=schema)
    picks = [
        f'arg_min("{c}", {_HEAD_FIRST}) FILTER (WHERE "{c}" IS NOT NULL) AS "{c}"'
        if present(con, "stg_roster", c)
        else f'NULL::VARCHAR AS "{c}"'
        for c in CONTACT_COLUMNS
    ]
    wanted = pl.DataFrame({"household_id": list(household_ids)}, schema={"household_id": pl.String})
    con.register("__listed", wanted.to_arrow())
    try:
        return con.sql(
            f"SELECT household_id, {', '.join(picks)} FROM stg_roster "
            f"WHERE period = {ROSTER_IN_FORCE} "
            "AND household_id IN (SELECT household_id FROM __listed) GROUP BY household_id",
            params={"period": period},
        ).pl()
    finally:
        con.unregister("__listed")


def events_as_of(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    period: str,
    id_numbers: list[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pl.DataFrame:
    """Per natural key, the newest version delivered at or before the period: every column
    with period, file and row_number, or only `columns`. With `id_numbers`, only those
    people's records; with `since` / `until`, only the records whose rule date lies on or
    after / on or before them. Both filter after choosing the newest version, since a
    re-sent record may correct the ID or the date it carries (with `id_numbers`, the
    versions ranked are only those of records some version of which carries one). A
    record with a confirmed link (`confirmed_links`) carries the ID number of the person
    it was linked to, and `linked` says so (db.linkage.linked_rows_sql)."""
    links = db_linkage.has_links(con, spec.source)
    sql, values = events_as_of_sql(spec, period, id_numbers, columns, since, until, links)
    return con.sql(sql, params=values).pl()


def events_as_of_sql(
    spec: SourceSpec,
    period: str,
    id_numbers: list[str] | None = None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    links: bool = False,
) -> tuple[str, dict[str, object]]:
    """The query of `events_as_of` and its parameters (batches.py exports it to parquet).
    `links`: the source has confirmed links to apply (db.linkage.has_links)."""
    key = ", ".join(f'"{k}"' for k in spec.natural_key)
    rows = (
        db_linkage.linked_rows_sql(spec)
        if links
        else f"SELECT * EXCLUDE (extra), false AS linked FROM stg_{spec.source} "
        "WHERE period <= $period"
    )
    values: dict[str, object] = {"period": period}
    where = []
    if id_numbers is not None:
        # Only the records some version of which carries one of the numbers: the newest
        # version of any other record cannot carry one. Narrowing first spares `explain`
        # ranking every version of a department's records (0.7 s at county size).
        match = " AND ".join(f'r."{k}" IS NOT DISTINCT FROM m."{k}"' for k in spec.natural_key)
        rows = (
            f"SELECT r.* FROM ({rows}) r SEMI JOIN (SELECT DISTINCT {key} FROM ({rows}) "
            f"WHERE list_contains($ids, id_number)) m ON {match}"
        )
        where.append("list_contains($ids, id_number)")
        values["ids"] = id_numbers
    newest = (
        f"SELECT * FROM ({rows}) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY period DESC) = 1"
    )
    for name, bound, op in (("since", since, ">="), ("until", until, "<=")):
        if bound is not None:
            assert spec.rule_date is not None, f"{spec.source} has no rule date"
            where.append(f'"{spec.rule_date}" {op} ${name}')
            values[name] = bound
    selected = "*" if columns is None else ", ".join(f'"{c}"' for c in [*columns, "linked"])
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {selected} FROM ({newest}){condition}", values


def export_parquet(
    con: duckdb.DuckDBPyConnection,
    queries: Mapping[str, Query],
    folder: Path,
    memory_limit: str,
) -> dict[str, Path]:
    """Each query's result written by DuckDB to `<folder>/<name>.parquet`, within
    `memory_limit` (spilling to disk if it must, so nothing holds a whole result); the
    connection's own limit is set back after. Returns the files by name."""
    written = {}
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{memory_limit}'")
    try:
        for name, (sql, values) in queries.items():
            path = folder / f"{name}.parquet"
            con.execute(f"COPY ({sql}) TO '{_quoted(path)}' (FORMAT parquet)", values).fetchall()
            written[name] = path
    finally:
        con.execute(f"SET memory_limit = '{limit}'")
    return written


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


_SNAPSHOT = f"WITH snap AS (SELECT * FROM stg_roster WHERE period = {ROSTER_IN_FORCE}) "
ROSTER_QUALITY_SQL = {
    # Households whose members name more than one township, and the township the
    # screening placed them in (screened_households, written by the run before its report).
    # The split households are found first: joining the screened households and the
    # townships' names for every household of a county took most of `screening report`.
    "split_townships": _SNAPSHOT
    + ", split AS (SELECT household_id FROM snap GROUP BY household_id "
    "HAVING count(DISTINCT township) > 1) "
    "SELECT s.household_id, string_agg(DISTINCT s.township, '、' ORDER BY s.township) "
    "AS townships, any_value(h.township) AS township_used FROM snap s "
    "JOIN split USING (household_id) "
    "LEFT JOIN screened_households h ON h.period = $period AND h.household_id = s.household_id "
    "GROUP BY s.household_id ORDER BY s.household_id",
    "several_heads": _SNAPSHOT
    + "SELECT household_id, count(*) AS heads FROM snap WHERE relation = $head "
    "GROUP BY household_id HAVING count(*) > 1 ORDER BY household_id",
    "no_head": _SNAPSHOT + "SELECT household_id FROM snap GROUP BY household_id "
    "HAVING NOT bool_or(coalesce(relation = $head, false)) ORDER BY household_id",
    # A person on two households' rows of the snapshot: every copy was quarantined
    # (duplicate_key), so the person counts in neither household.
    "two_households": "SELECT id_number, string_agg(DISTINCT household_id, '、' "
    "ORDER BY household_id) AS households FROM duplicate_copies WHERE source = 'roster' "
    f"AND period = {ROSTER_IN_FORCE} "
    "AND id_number IS NOT NULL GROUP BY id_number HAVING count(DISTINCT household_id) > 1 "
    "ORDER BY id_number",
    # A person whose rows in the snapshot differ (every copy quarantined, duplicate_key)
    # within one household: the household lacks that member, and lacks everyone when all
    # its rows were such copies.
    "roster_copies": "SELECT id_number, any_value(household_id) AS household_id, "
    "count(*) AS copies FROM duplicate_copies WHERE source = 'roster' "
    f"AND period = {ROSTER_IN_FORCE} AND id_number IS NOT NULL GROUP BY id_number "
    "HAVING count(DISTINCT household_id) <= 1 ORDER BY household_id, id_number",
    # Townships of the snapshot before that this one lacks: their lists are gone.
    "vanished_townships": _SNAPSHOT
    + "SELECT b.township, count(DISTINCT b.household_id) AS households FROM stg_roster b "
    "WHERE b.period = (SELECT max(period) FROM stg_roster WHERE period < "
    f"{ROSTER_IN_FORCE}) AND b.township IS NOT NULL "
    "AND b.township NOT IN (SELECT township FROM snap WHERE township IS NOT NULL) "
    "GROUP BY b.township ORDER BY b.township",
    # Department records delivered this period in copies that differ (all quarantined),
    # and the households of the persons they are about.
    "duplicates_touch": _SNAPSHOT
    + "SELECT DISTINCT d.source, d.source_key, s.household_id FROM duplicate_copies d "
    "JOIN snap s ON s.id_number = d.id_number WHERE d.period = $period AND d.source <> 'roster' "
    "ORDER BY s.household_id, d.source, d.source_key",
}


def roster_quality(
    con: duckdb.DuckDBPyConnection, period: str, head: str
) -> dict[str, pl.DataFrame]:
    """What the run report's data-quality section names: each of ROSTER_QUALITY_SQL for
    the roster snapshot in force at `period` (`head`: the relation marking the head)."""
    found: dict[str, pl.DataFrame] = {}
    if not (present(con, "duplicate_copies") and present(con, "screened_households")):
        return found
    for name, sql in ROSTER_QUALITY_SQL.items():
        values: dict[str, object] = {"period": period}
        if "$head" in sql:
            values["head"] = head
        found[name] = con.sql(sql, params=values).pl()
    return found
