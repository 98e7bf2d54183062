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

from . import dictionary
from .contract import SourceSpec

SQL_TYPES = {
    "text": "VARCHAR",
    "id": "VARCHAR",
    "enum": "VARCHAR",
    "date": "DATE",
    "money": "DECIMAL(18,2)",
    "grade": "TINYINT",
}

OUTPUT_DDL = {
    "quarantine": """
        period VARCHAR NOT NULL, source VARCHAR NOT NULL, file VARCHAR, row_number BIGINT,
        "column" VARCHAR, "check" VARCHAR, raw_value VARCHAR""",
    "ingest_log": """
        period VARCHAR NOT NULL, source VARCHAR NOT NULL, file VARCHAR, sha256 VARCHAR,
        rows_read BIGINT, rows_accepted BIGINT, rows_rejected BIGINT, status VARCHAR NOT NULL,
        message VARCHAR, encoding VARCHAR, ingested_at TIMESTAMP,
        PRIMARY KEY (period, source)""",
    "runs": """
        run_id VARCHAR PRIMARY KEY, period VARCHAR NOT NULL, township VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR NOT NULL,
        parameters JSON, code_version VARCHAR, input_files JSON, message VARCHAR,
        demo BOOLEAN""",
    "suspects": """
        period VARCHAR NOT NULL, township VARCHAR, village VARCHAR, household_id VARCHAR NOT NULL,
        head_name VARCHAR, head_id_number VARCHAR, household_type VARCHAR,
        household_size BIGINT, per_capita_income DECIMAL(18,2), monitoring_line DECIMAL(18,2),
        colour VARCHAR, risk_codes VARCHAR[], risk_labels VARCHAR, medical_oop DECIMAL(18,2),
        education_cost DECIMAL(18,2), accident_loss DECIMAL(18,2),
        rigid_expenditure DECIMAL(18,2), labour_capacity VARCHAR, listing_status VARCHAR,
        run_id VARCHAR, last_decision VARCHAR, last_decision_date DATE""",
    "evidence": """
        period VARCHAR NOT NULL, household_id VARCHAR NOT NULL, id_number VARCHAR,
        name VARCHAR, risk_code VARCHAR, source VARCHAR, source_key VARCHAR, rule_date DATE,
        amount DECIMAL(18,2), detail VARCHAR""",
    "match_rates": """
        period VARCHAR NOT NULL, source VARCHAR NOT NULL, records_in_window BIGINT,
        matched BIGINT, unmatched BIGINT""",
    "screened_households": """
        period VARCHAR NOT NULL, township VARCHAR, village VARCHAR,
        household_id VARCHAR NOT NULL, household_type VARCHAR, monitoring_status VARCHAR,
        per_capita_income DECIMAL(18,2), monitoring_line DECIMAL(18,2),
        labour_capacity VARCHAR, colour VARCHAR, risk_codes VARCHAR[], risk_labels VARCHAR,
        listed BOOLEAN, listing_status VARCHAR, last_decision VARCHAR,
        last_decision_date DATE, run_id VARCHAR""",
    "removal_candidates": """
        period VARCHAR NOT NULL, township VARCHAR, village VARCHAR,
        household_id VARCHAR NOT NULL, head_name VARCHAR, head_id_number VARCHAR,
        household_type VARCHAR, household_size BIGINT, per_capita_income DECIMAL(18,2),
        monitoring_line DECIMAL(18,2), labour_capacity VARCHAR, periods_checked VARCHAR,
        last_risk_period VARCHAR, last_risk_labels VARCHAR, run_id VARCHAR""",
    "scale_checks": """
        period VARCHAR NOT NULL, township VARCHAR, roster_households BIGINT,
        base_households BIGINT, listed BIGINT, share_of_roster DOUBLE, share_of_base DOUBLE""",
    "verifications": """
        period VARCHAR NOT NULL, township VARCHAR, household_id VARCHAR NOT NULL,
        result VARCHAR NOT NULL, verification_date DATE, note VARCHAR, file VARCHAR NOT NULL,
        file_sha256 VARCHAR NOT NULL, row_number BIGINT NOT NULL, imported_at TIMESTAMP NOT NULL,
        imported_by VARCHAR, is_current BOOLEAN NOT NULL,
        PRIMARY KEY (period, file_sha256, row_number)""",
    "verification_rejects": """
        period VARCHAR NOT NULL, township VARCHAR, file VARCHAR NOT NULL,
        file_sha256 VARCHAR NOT NULL, row_number BIGINT, household_id VARCHAR, "column" VARCHAR,
        "check" VARCHAR NOT NULL, raw_value VARCHAR, message VARCHAR NOT NULL,
        imported_at TIMESTAMP NOT NULL, imported_by VARCHAR""",
}

OUTPUT_DDL["secrets"] = "name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL"

ADDED_COLUMNS = (
    ("runs", "demo", "BOOLEAN"),
    ("suspects", "last_decision", "VARCHAR"),
    ("suspects", "last_decision_date", "DATE"),
)
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
    cols += [f'"{key}" {SQL_TYPES[col.type]}' for key, col in spec.columns.items()]
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
        for name, cols in OUTPUT_DDL.items():
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
        # Databases made before the columns existed gain them (empty for earlier runs).
        for table, column, sql_type in ADDED_COLUMNS:
            con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
        for view in VIEWS_DDL.values():
            con.execute(view)
        dictionary.apply_comments(con, specs)


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
) -> None:
    """The period's delivery of a source becomes exactly what was just read (or nothing).
    Call inside a transaction."""
    con.execute(f"DELETE FROM stg_{spec.source} WHERE period = ?", [period])
    con.execute("DELETE FROM quarantine WHERE period = ? AND source = ?", [period, spec.source])
    if good is not None:
        insert_frame(con, f"stg_{spec.source}", good.with_columns(pl.lit(period).alias("period")))
    if quarantine is not None:
        insert_frame(con, "quarantine", quarantine)


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


def files_read(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The period's `ingest_log` rows, as the run report lists them."""
    return con.sql(
        "SELECT source, file, status, rows_read, rows_accepted, rows_rejected, message "
        "FROM ingest_log WHERE period = $p ORDER BY source",
        params={"p": period},
    ).pl()


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
