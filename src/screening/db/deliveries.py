"""Deliveries in the database: the staged rows of each period's delivery, `ingest_log`,
the quarantine, held deliveries and the events of what a run did with deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import polars as pl

from screening.contract import SourceSpec
from screening.db.connect import insert_frame, present

# ingest_log statuses of a period whose delivery is stored (rows in stg_<source>); the
# others (missing, rejected, held, withdrawn) mean nothing of that period is stored.
STORED = ("loaded", "empty")


def replace_delivery(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    period: str,
    good: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    duplicates: pl.DataFrame | None = None,
    rejected_rows: pl.DataFrame | None = None,
) -> None:
    """The period's delivery of a source becomes exactly what was just read (or nothing):
    its accepted rows, its quarantine, its differing copies and the quarantined rows'
    cells (`quarantined_rows`). Call inside a transaction."""
    remove_delivery(con, spec, period)
    if good is not None:
        insert_frame(con, f"stg_{spec.source}", good.with_columns(pl.lit(period).alias("period")))
    if quarantine is not None:
        insert_frame(con, "quarantine", quarantine)
    if duplicates is not None:
        insert_frame(con, "duplicate_copies", duplicates)
    if rejected_rows is not None:
        insert_frame(con, "quarantined_rows", rejected_rows)


def remove_delivery(con: duckdb.DuckDBPyConnection, spec: SourceSpec, period: str) -> int:
    """Delete the period's stored delivery of a source (rows, quarantine, duplicate copies);
    returns the rows removed from stg_<source>. Only `replace_delivery` and a deliberate
    withdrawal call this: a run never removes a delivery otherwise."""
    removed = con.execute(
        f"DELETE FROM stg_{spec.source} WHERE period = ? RETURNING 1", [period]
    ).fetchall()
    for table in ("quarantine", "duplicate_copies", "quarantined_rows"):
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


def held_earlier(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Deliveries of periods before `period` that a gate held and nobody decided on: the
    period's ingest_log still says held (no file of it stored since, none accepted, none
    withdrawn). One row per (period, source, gate), oldest first."""
    if not present(con, "held_deliveries"):
        return pl.DataFrame(
            schema={"period": pl.String, "source": pl.String, "file": pl.String,
                    "gate": pl.String, "measured": pl.Float64, "threshold": pl.Float64}
        )  # fmt: skip
    return con.sql(
        "SELECT h.period, h.source, h.file, h.gate, h.measured, h.threshold "
        "FROM held_deliveries h JOIN ingest_log l ON l.period = h.period "
        "AND l.source = h.source AND l.sha256 = h.sha256 "
        "WHERE h.period < $period AND l.status = 'held' AND h.accepted_by IS NULL "
        "ORDER BY h.period, h.source, h.gate",
        params={"period": period},
    ).pl()


def stored_any(con: duckdb.DuckDBPyConnection, period: str) -> bool:
    """Whether any source's delivery of `period` is stored."""
    if not present(con, "ingest_log"):
        return False
    found = con.execute(
        "SELECT count(*) FROM ingest_log WHERE period = ? AND list_contains(?, status)",
        [period, list(STORED)],
    ).fetchall()
    return bool(found[0][0])


def log_entry(con: duckdb.DuckDBPyConnection, period: str, source: str) -> dict | None:
    rel = con.sql(
        "SELECT * FROM ingest_log WHERE period = $period AND source = $source",
        params={"period": period, "source": source},
    )
    rows = rel.fetchall()
    return dict(zip(rel.columns, rows[0], strict=True)) if rows else None


def files_read(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's `ingest_log` rows, as the run report lists them."""
    warning = "warning" if present(con, "ingest_log", "warning") else "NULL::VARCHAR AS warning"
    duplicate = (
        "rows_duplicate"
        if present(con, "ingest_log", "rows_duplicate")
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
    if not present(con, "delivery_events"):
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
    if not present(con, "held_deliveries"):
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


def rejected_counts(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Quarantined rows per (source, column, check) for the period."""
    return con.sql(
        'SELECT source, "column", "check", count(DISTINCT row_number)::BIGINT AS rows '
        "FROM quarantine WHERE period = $p GROUP BY ALL ORDER BY ALL",
        params={"p": period},
    ).pl()
