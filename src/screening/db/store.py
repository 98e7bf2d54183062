"""DuckDB storage: staging tables per source, the run's outputs, and as-of-period reads.

`stg_<source>` keeps every accepted row of every delivery, so that any period can be
re-screened as it was: the rules read the roster snapshot and the newest version of each
event key delivered at or before the period. The analyst-facing views named after the
sources show the current state.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from screening import tables
from screening.contract import SourceSpec
from screening.db import dictionary
from screening.vocab import TYPES

# ingest_log statuses of a period whose delivery is stored (rows in stg_<source>); the
# others (missing, rejected, held, withdrawn) mean nothing of that period is stored.
STORED = ("loaded", "empty")
VIEWS_DDL = {
    "current_verifications": (
        "CREATE OR REPLACE VIEW current_verifications AS "
        "SELECT * EXCLUDE (is_current) FROM verifications WHERE is_current"
    ),
    # One row per household per screened period, listed or not, with the decision the
    # township made on that period's list.
    "household_history": (
        "CREATE OR REPLACE VIEW household_history AS "
        "SELECT h.period, h.township, h.village, h.household_id, h.monitoring_status, "
        "h.colour, h.risk_codes, h.risk_labels, h.listed, h.listing_status, "
        "v.result AS verification_result, v.verification_date, v.note AS verification_note, "
        "h.run_id FROM screened_households h LEFT JOIN current_verifications v "
        "ON v.period = h.period AND v.household_id = h.household_id"
    ),
}


class DatabaseBusy(RuntimeError):
    """Another process holds the database file."""


log = logging.getLogger(__name__)
# How often a busy database is tried again while waiting for it.
BUSY_POLL_SECONDS = 0.5
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


def connect(
    path: Path | str, *, read_only: bool = False, wait: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """A connection to the database at `path`. While another process has the file open in
    a way that excludes us (DuckDB: one writer, or readers but no writer), try again for
    up to `wait` seconds, saying once that we wait, then raise DatabaseBusy."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    creating = not path.exists()
    deadline: float | None = None
    while True:
        try:
            con = duckdb.connect(
                str(path),
                read_only=read_only,
                # No extension downloads: these machines are offline.
                config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
            )
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            found = _HOLDER_PID.search(str(exc))
            holder = f" (PID {found.group(1)})" if found else ""
            now = time.monotonic()
            zh, en = _duration(wait)
            if deadline is None:
                deadline = now + wait
                if wait > 0:
                    log.warning(
                        "数据库 %s 正被另一程序%s打开（可能是分析人员的会话），最多等待%s "
                        "database is open in another process%s (an analyst's session?); "
                        "waiting up to %s for it to close",
                        path, holder, zh, holder, en,
                    )  # fmt: skip
            if now >= deadline:
                still = (
                    (f"，等待{zh}后仍未释放", f", still after waiting {en}") if wait else ("", "")
                )
                raise DatabaseBusy(
                    f"数据库 {path} 正被另一程序使用{still[0]} database is in use by another "
                    f"process{holder} (a run or an open session){still[1]}; wait for it to "
                    "finish or close it"
                ) from None
            time.sleep(min(BUSY_POLL_SECONDS, max(deadline - now, 0.01)))
    # No progress bar in cron's logs (a session setting, not a global one).
    con.execute("SET enable_progress_bar = false")
    if creating and not read_only:
        # Personal data: the database is readable by its owner only.
        os.chmod(path, 0o600)
    return con


def _duration(seconds: float) -> tuple[str, str]:
    """(Chinese, English) for a wait: ' 10 分钟', '10 min'."""
    if seconds >= 120:
        return f" {seconds / 60:g} 分钟", f"{seconds / 60:g} min"
    return f" {seconds:g} 秒", f"{seconds:g} s"


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def staging_ddl(spec: SourceSpec) -> str:
    cols = ["period VARCHAR NOT NULL", "file VARCHAR NOT NULL", "row_number BIGINT"]
    cols += [f'"{key}" {TYPES[col.type][1]}' for key, col in spec.columns.items()]
    cols.append("extra JSON")
    return f"CREATE TABLE IF NOT EXISTS stg_{spec.source} ({', '.join(cols)})"


def current_view_sql(spec: SourceSpec) -> str:
    if spec.kind == "snapshot":
        return f"CREATE OR REPLACE VIEW {spec.source} AS SELECT * FROM stg_{spec.source}"
    key = ", ".join(f'"{k}"' for k in spec.natural_key)
    return (
        f"CREATE OR REPLACE VIEW {spec.source} AS SELECT * FROM stg_{spec.source} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY period DESC) = 1"
    )


def ensure_schema(con: duckdb.DuckDBPyConnection, specs: dict[str, SourceSpec]) -> None:
    with transaction(con):
        for spec in specs.values():
            con.execute(staging_ddl(spec))
            con.execute(current_view_sql(spec))
        for table in tables.stored():
            con.execute(table.ddl())
        _migrate(con)
        for view in VIEWS_DDL.values():
            con.execute(view)
        dictionary.apply_comments(con, specs)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """A database made by an earlier version gains the columns described since (empty for
    earlier rows), and its sums of money, once DECIMAL(18,2), are widened to what they are
    now (vocab.SUM), so that a sum over absurd but accepted amounts can always be stored."""
    present = dict(
        ((t, c), kind)
        for t, c, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns()"
        ).fetchall()
    )
    for table in tables.stored():
        for column in table.columns.values():
            kind = present.get((table.name, column.name))
            if kind is None:
                con.execute(
                    f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {column.sql_type}'
                )
            elif column.type == "sum" and kind != column.sql_type:
                con.execute(
                    f'ALTER TABLE {table.name} ALTER COLUMN "{column.name}" '
                    f"SET DATA TYPE {column.sql_type}"
                )


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height == 0:
        return
    con.register("__incoming", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __incoming")
    finally:
        con.unregister("__incoming")


def replace_delivery(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    period: str,
    good: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    duplicates: pl.DataFrame | None = None,
) -> None:
    """The period's delivery of a source becomes exactly what was just read (or nothing).
    Call inside a transaction."""
    remove_delivery(con, spec, period)
    if good is not None:
        insert_frame(con, f"stg_{spec.source}", good.with_columns(pl.lit(period).alias("period")))
    if quarantine is not None:
        insert_frame(con, "quarantine", quarantine)
    if duplicates is not None:
        insert_frame(con, "duplicate_copies", duplicates)


def remove_delivery(con: duckdb.DuckDBPyConnection, spec: SourceSpec, period: str) -> int:
    """Delete the period's stored delivery of a source (rows, quarantine, duplicate copies);
    returns the rows removed from stg_<source>. Only `replace_delivery` and a deliberate
    withdrawal call this: a run never removes a delivery otherwise."""
    removed = con.execute(
        f"DELETE FROM stg_{spec.source} WHERE period = ? RETURNING 1", [period]
    ).fetchall()
    for table in ("quarantine", "duplicate_copies"):
        con.execute(f"DELETE FROM {table} WHERE period = ? AND source = ?", [period, spec.source])
    return len(removed)


def record_event(con: duckdb.DuckDBPyConnection, row: dict[str, object]) -> None:
    """One row of `delivery_events` (kept, held, accepted, withdrawn)."""
    cols = list(row)
    marks = ", ".join("?" for _ in cols)
    con.execute(
        f"INSERT INTO delivery_events ({', '.join(cols)}) VALUES ({marks})", [row[c] for c in cols]
    )


def hold_delivery(
    con: duckdb.DuckDBPyConnection,
    gates: pl.DataFrame,
    good: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    stamp: dict[str, str],
) -> None:
    """A held delivery: its gates in `held_deliveries` (an earlier acceptance of the same
    file and gate is kept) and every row it brought in `held_rows`, the accepted rows as
    JSON records and the quarantined cells as they are. `stamp`: period, source, file,
    sha256. Call inside a transaction."""
    con.register("__gates", gates.to_arrow())
    try:
        con.execute(
            "INSERT INTO held_deliveries BY NAME SELECT * FROM __gates "
            "ON CONFLICT (period, source, sha256, gate) DO UPDATE SET "
            "file = excluded.file, measured = excluded.measured, "
            "threshold = excluded.threshold, rows_read = excluded.rows_read, "
            "rows_accepted = excluded.rows_accepted, rows_rejected = excluded.rows_rejected, "
            "held_at = excluded.held_at, run_id = excluded.run_id"
        )
    finally:
        con.unregister("__gates")
    where = [stamp["period"], stamp["source"], stamp["sha256"]]
    con.execute("DELETE FROM held_rows WHERE period = ? AND source = ? AND sha256 = ?", where)
    names = ", ".join(f"${k}" for k in ("period", "source", "file", "sha256"))
    if good is not None and good.height:
        con.register("__held", good.to_arrow())
        try:
            con.execute(
                "INSERT INTO held_rows (period, source, file, sha256, row_number, record) "
                f"SELECT {names}, row_number, to_json(h) FROM __held h",
                stamp,
            )
        finally:
            con.unregister("__held")
    if quarantine is not None and quarantine.height:
        cells = quarantine.select("row_number", "column", "check", "raw_value")
        con.register("__held", cells.to_arrow())
        try:
            con.execute(
                'INSERT INTO held_rows (period, source, file, sha256, row_number, "column", '
                f'"check", raw_value) SELECT {names}, row_number, "column", "check", raw_value '
                "FROM __held",
                stamp,
            )
        finally:
            con.unregister("__held")


def accept_held(
    con: duckdb.DuckDBPyConnection,
    period: str,
    source: str,
    sha256: str,
    gates: Sequence[str],
    by: str,
    at: dt.datetime,
) -> None:
    """The officer accepted a held delivery: its gates are marked accepted (first acceptance
    kept) and its held rows go, since the delivery is now stored. Inside a transaction."""
    con.execute(
        "UPDATE held_deliveries SET accepted_by = coalesce(accepted_by, ?), "
        "accepted_at = coalesce(accepted_at, ?) "
        "WHERE period = ? AND source = ? AND sha256 = ? AND list_contains(?, gate)",
        [by, at, period, source, sha256, list(gates)],
    )
    con.execute(
        "DELETE FROM held_rows WHERE period = ? AND source = ? AND sha256 = ?",
        [period, source, sha256],
    )


def accepted_gates(
    con: duckdb.DuckDBPyConnection, period: str, source: str, sha256: str | None
) -> dict[str, str]:
    """Gates of this very file that an officer accepted before: gate → who."""
    rows = con.execute(
        "SELECT gate, accepted_by FROM held_deliveries WHERE period = ? AND source = ? "
        "AND sha256 = ? AND accepted_by IS NOT NULL",
        [period, source, sha256],
    ).fetchall()
    return dict(rows)


def snapshot_persons(con: duckdb.DuckDBPyConnection, source: str, period: str) -> int:
    """Persons in the snapshot of `source` in force at `period` (0 when none)."""
    rows = con.execute(
        f"SELECT count(*) FROM stg_{source} WHERE period = "
        f"(SELECT max(period) FROM stg_{source} WHERE period <= ?)",
        [period],
    ).fetchall()
    return int(rows[0][0])


def roster_ids(con: duckdb.DuckDBPyConnection, period: str) -> pl.Series:
    """The ID numbers of the roster snapshot in force at `period`."""
    return con.sql(
        "SELECT id_number FROM stg_roster WHERE period = "
        "(SELECT max(period) FROM stg_roster WHERE period <= $period)",
        params={"period": period},
    ).pl()["id_number"]


def same_bytes_elsewhere(
    con: duckdb.DuckDBPyConnection, sha256: str, period: str
) -> list[tuple[str, str, str]]:
    """(period, source, file) of the deliveries of other periods with exactly these bytes."""
    return [
        (str(p), str(s), str(f))
        for p, s, f in con.execute(
            "SELECT period, source, file FROM ingest_log WHERE sha256 = ? AND period <> ? "
            "ORDER BY period, source",
            [sha256, period],
        ).fetchall()
    ]


def upsert_log(con: duckdb.DuckDBPyConnection, row: dict[str, object]) -> None:
    con.execute(
        "DELETE FROM ingest_log WHERE period = ? AND source = ?", [row["period"], row["source"]]
    )
    cols = list(row)
    marks = ", ".join("?" for _ in cols)
    con.execute(
        f"INSERT INTO ingest_log ({', '.join(cols)}) VALUES ({marks})", [row[c] for c in cols]
    )


def log_entry(con: duckdb.DuckDBPyConnection, period: str, source: str) -> dict | None:
    rel = con.sql(
        "SELECT * FROM ingest_log WHERE period = $period AND source = $source",
        params={"period": period, "source": source},
    )
    rows = rel.fetchall()
    return dict(zip(rel.columns, rows[0], strict=True)) if rows else None


# ---------------------------------------------------------------- before a run


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name])
    return bool(found.fetchall()[0][0])


def roster_townships(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    """The townships of the roster snapshot in force at `period` ([] before any roster)."""
    if not has_table(con, "stg_roster"):
        return []
    rows = con.execute(
        "SELECT DISTINCT township FROM stg_roster WHERE township IS NOT NULL AND period = "
        "(SELECT max(period) FROM stg_roster WHERE period <= ?) ORDER BY 1",
        [period],
    ).fetchall()
    return [r[0] for r in rows]


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


# ---------------------------------------------------------------- the run report's reads


def _present(con: duckdb.DuckDBPyConnection, table: str, column: str | None = None) -> bool:
    """Whether a table (and column) exists: a database made by an earlier version and
    opened read-only (`screening report`) has not gained them yet."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? "
        "AND (? IS NULL OR column_name = ?)",
        [table, column, column],
    ).fetchall()
    return bool(rows[0][0])


def files_read(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's `ingest_log` rows, as the run report lists them."""
    warning = "warning" if _present(con, "ingest_log", "warning") else "NULL::VARCHAR AS warning"
    duplicate = (
        "rows_duplicate"
        if _present(con, "ingest_log", "rows_duplicate")
        else "NULL::BIGINT AS rows_duplicate"
    )
    return con.sql(
        "SELECT source, file, status, rows_read, rows_accepted, rows_rejected, "
        f"{duplicate}, message, {warning} FROM ingest_log WHERE period = $p ORDER BY source",
        params={"p": period},
    ).pl()


def run_events(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """What a run did with deliveries beyond reading them (`delivery_events`): stored
    deliveries kept in force, held files, held files accepted."""
    if not _present(con, "delivery_events"):
        return pl.DataFrame(
            schema={"source": pl.String, "event": pl.String, "file": pl.String,
                    "stored_file": pl.String, "stored_ingested_at": pl.Datetime,
                    "message": pl.String}
        )  # fmt: skip
    return con.sql(
        "SELECT source, event, file, stored_file, stored_ingested_at, message "
        "FROM delivery_events WHERE run_id = $run ORDER BY source, recorded_at, event",
        params={"run": run_id},
    ).pl()


def held_of_period(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's `held_deliveries` rows, oldest first."""
    if not _present(con, "held_deliveries"):
        return con.sql(
            "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS file, NULL::VARCHAR AS gate, "
            "NULL::DOUBLE AS measured, NULL::DOUBLE AS threshold, NULL::TIMESTAMP AS held_at, "
            "NULL::VARCHAR AS accepted_by, NULL::TIMESTAMP AS accepted_at LIMIT 0"
        ).pl()
    return con.sql(
        "SELECT source, file, gate, measured, threshold, held_at, accepted_by, accepted_at "
        "FROM held_deliveries WHERE period = $p ORDER BY held_at, source, gate",
        params={"p": period},
    ).pl()


_SNAPSHOT = (
    "WITH snap AS (SELECT * FROM stg_roster WHERE period = "
    "(SELECT max(period) FROM stg_roster WHERE period <= $p)) "
)
ROSTER_QUALITY_SQL = {
    # Households whose members name more than one township, and the township the
    # screening placed them in (screened_households, written by the run before its report).
    "split_townships": _SNAPSHOT
    + "SELECT s.household_id, string_agg(DISTINCT s.township, '、' ORDER BY s.township) "
    "AS townships, any_value(h.township) AS township_used FROM snap s "
    "LEFT JOIN screened_households h ON h.period = $p AND h.household_id = s.household_id "
    "GROUP BY s.household_id HAVING count(DISTINCT s.township) > 1 ORDER BY s.household_id",
    "several_heads": _SNAPSHOT
    + "SELECT household_id, count(*) AS heads FROM snap WHERE relation = $head "
    "GROUP BY household_id HAVING count(*) > 1 ORDER BY household_id",
    "no_head": _SNAPSHOT + "SELECT household_id FROM snap GROUP BY household_id "
    "HAVING NOT bool_or(coalesce(relation = $head, false)) ORDER BY household_id",
    # A person on two households' rows of the snapshot: every copy was quarantined
    # (duplicate_key), so the person counts in neither household.
    "two_households": "SELECT id_number, string_agg(DISTINCT household_id, '、' "
    "ORDER BY household_id) AS households FROM duplicate_copies WHERE source = 'roster' "
    "AND period = (SELECT max(period) FROM stg_roster WHERE period <= $p) "
    "AND id_number IS NOT NULL GROUP BY id_number HAVING count(DISTINCT household_id) > 1 "
    "ORDER BY id_number",
    # Department records delivered this period in copies that differ (all quarantined),
    # and the households of the persons they are about.
    "duplicates_touch": _SNAPSHOT
    + "SELECT DISTINCT d.source, d.source_key, s.household_id FROM duplicate_copies d "
    "JOIN snap s ON s.id_number = d.id_number WHERE d.period = $p AND d.source <> 'roster' "
    "ORDER BY s.household_id, d.source, d.source_key",
}


def roster_quality(
    con: duckdb.DuckDBPyConnection, period: str, head: str
) -> dict[str, pl.DataFrame]:
    """What the run report's data-quality section names: each of ROSTER_QUALITY_SQL for
    the roster snapshot in force at `period` (`head`: the relation marking the head)."""
    found: dict[str, pl.DataFrame] = {}
    if not (_present(con, "duplicate_copies") and _present(con, "screened_households")):
        return found
    for name, sql in ROSTER_QUALITY_SQL.items():
        values: dict[str, object] = {"p": period}
        if "$head" in sql:
            values["head"] = head
        found[name] = con.sql(sql, params=values).pl()
    return found


def rejected_counts(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Quarantined rows per (source, column, check) for the period."""
    return con.sql(
        'SELECT source, "column", "check", count(DISTINCT row_number)::BIGINT AS rows '
        "FROM quarantine WHERE period = $p GROUP BY ALL ORDER BY ALL",
        params={"p": period},
    ).pl()


# ---------------------------------------------------------------- as-of reads for the rules


POPULATION_SQL = (
    "SELECT * EXCLUDE (extra) FROM stg_roster WHERE period = "
    "(SELECT max(period) FROM stg_roster WHERE period <= $period) ORDER BY row_number"
)


def population(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The latest roster snapshot received at or before the period ($period in
    POPULATION_SQL)."""
    return con.sql(POPULATION_SQL, params={"period": period}).pl()


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
    re-sent record may correct the ID or the date it carries."""
    sql, values = events_as_of_sql(spec, period, id_numbers, columns, since, until)
    return con.sql(sql, params=values).pl()


def events_as_of_sql(
    spec: SourceSpec,
    period: str,
    id_numbers: list[str] | None = None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> tuple[str, dict[str, object]]:
    """The query of `events_as_of` and its parameters (batches.py exports it to parquet)."""
    key = ", ".join(f'"{k}"' for k in spec.natural_key)
    newest = (
        f"SELECT * EXCLUDE (extra) FROM stg_{spec.source} WHERE period <= $period "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY period DESC) = 1"
    )
    values: dict[str, object] = {"period": period}
    where = []
    if id_numbers is not None:
        where.append("list_contains($ids, id_number)")
        values["ids"] = id_numbers
    for name, bound, op in (("since", since, ">="), ("until", until, "<=")):
        if bound is not None:
            assert spec.rule_date is not None, f"{spec.source} has no rule date"
            where.append(f'"{spec.rule_date}" {op} ${name}')
            values[name] = bound
    selected = "*" if columns is None else ", ".join(f'"{c}"' for c in columns)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {selected} FROM ({newest}){condition}", values
