"""The output tables are described once (schemas/tables/): DDL, schemas and headers agree."""

from __future__ import annotations

from pathlib import Path

import duckdb

from screening import contract, tables
from screening.db import schema as db_schema
from screening.db.connect import connect
from screening.rules import screen
from tests.support.common import query


def test_every_stored_table_is_created_as_described(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    con = connect(db)
    try:
        db_schema.ensure_schema(con, contract.load())
    finally:
        con.close()
    for table in tables.stored():
        got = query(db, f"SELECT * FROM {table.name} LIMIT 0")
        assert got.schema == table.schema, table.name


def test_the_screening_frames_are_the_described_ones() -> None:
    assert tables.schema("suspects") == screen.SUSPECTS_SCHEMA
    assert list(tables.table("suspects").headers)[:4] == [
        "period",
        "township",
        "village",
        "household_id",
    ]
    assert tables.table("suspects").headers["head_id_number"] == "户主身份证号"


def test_a_database_made_before_a_column_was_described_gains_it(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    raw = duckdb.connect(str(db))
    raw.execute("CREATE TABLE scale_checks (period VARCHAR NOT NULL, township VARCHAR)")
    raw.execute("INSERT INTO scale_checks VALUES ('2026-07', '城关镇')")
    raw.close()
    con = connect(db)
    try:
        db_schema.ensure_schema(con, contract.load())
    finally:
        con.close()
    got = query(db, "SELECT * FROM scale_checks")
    assert got.columns == list(tables.table("scale_checks").columns)
    assert got.row(0) == ("2026-07", "城关镇", None, None, None, None, None)


def test_the_columns_a_file_must_carry_are_columns_the_rules_read() -> None:
    """`column_required` in the input contract (a file without the column is refused) and a
    department's `reads` in the rules agree: every column an events file must carry is
    one its rules read."""
    from screening.rules import EVENT_SOURCES, rule_columns

    specs = contract.load()
    for source in EVENT_SOURCES:
        must = {k for k, c in specs[source].columns.items() if c.column_required or c.required}
        assert must <= set(rule_columns(source)), (source, must - set(rule_columns(source)))
