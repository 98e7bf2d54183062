"""The database's tables and views: created as described (schemas/tables/ and the input
contract), and brought up to date when an earlier version made the file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from screening import tables
from screening.contract import SourceSpec
from screening.db import dictionary
from screening.db.connect import transaction
from screening.vocab import TYPES

# The static views, one .sql file each, created in this order (one reads the other).
VIEWS = ("current_verifications", "current_removal_decisions", "household_history")
VIEW_FOLDER = Path(__file__).parent / "views"


def view_sql(name: str) -> str:
    return (VIEW_FOLDER / f"{name}.sql").read_text(encoding="utf-8")


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
        for table in tables.stored():
            con.execute(table.ddl())
        _migrate(con, specs)
        # After the migration: a view's * is expanded when it is made.
        for spec in specs.values():
            con.execute(current_view_sql(spec))
        for view in VIEWS:
            con.execute(view_sql(view))
        dictionary.apply_comments(con, specs)


def _migrate(con: duckdb.DuckDBPyConnection, specs: dict[str, SourceSpec]) -> None:
    """A database made by an earlier version gains the columns described since (empty for
    earlier rows) — in the output tables and in the staging tables of the sources (a column
    the contract added, such as the roster's optional 联系电话) — and its sums of money, once
    DECIMAL(18,2), are widened to what they are now (vocab.SUM), so that a sum over absurd
    but accepted amounts can always be stored."""
    present = dict(
        ((t, c), kind)
        for t, c, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns()"
        ).fetchall()
    )
    for spec in specs.values():
        for key, col in spec.columns.items():
            if (f"stg_{spec.source}", key) not in present:
                con.execute(
                    f'ALTER TABLE stg_{spec.source} ADD COLUMN "{key}" {TYPES[col.type][1]}'
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
