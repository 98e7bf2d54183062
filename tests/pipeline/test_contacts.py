"""The roster's optional columns (联系电话, 村民小组, 住址, 帮扶责任人) on the printed lists."""

from __future__ import annotations

from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from screening import contract
from screening.db import roster as db_roster
from screening.db import schema as db_schema
from screening.pipeline.run import run_period
from screening.publish.files import township_paths
from tests.support.common import SAMPLE_PERIODS
from tests.support.lists import household_records

CONTACT = "村民小组、住址\n联系电话、帮扶人"


@pytest.fixture(scope="module")
def with_contacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small county whose roster carries the optional columns, screened for one month."""
    from dev.sample import generate

    work = tmp_path_factory.mktemp("contacts")
    generate(work / "inbox", households=200, periods=SAMPLE_PERIODS[:1], seed=11, contacts=True)
    db, out = work / "screening.duckdb", work / "out"
    run_period(db=db, inbox=work / "inbox", out=out, period=SAMPLE_PERIODS[0])
    return {"db": db, "out": out}


def test_the_optional_columns_are_stored_and_shown_on_the_list(
    with_contacts: dict[str, Path],
) -> None:
    period = SAMPLE_PERIODS[0]
    con = duckdb.connect(str(with_contacts["db"]), read_only=True)
    try:
        suspects = con.sql(
            f"SELECT township, household_id FROM suspects WHERE period = '{period}'"
        ).pl()
        contacts = db_roster.household_contacts(con, period, suspects["household_id"].to_list())
        heads = con.sql(
            'SELECT household_id, phone, "group", address FROM stg_roster '
            f"WHERE period = '{period}' AND relation = '户主'"
        ).pl()
    finally:
        con.close()
    assert contacts.height == suspects.height
    assert contacts["phone"].null_count() < contacts.height
    # The head's phone, and the household's 村民小组 and 住址.
    joined = contacts.join(heads, on="household_id", suffix="_head")
    assert (
        joined.filter(pl.col("phone_head").is_not_null())
        .select((pl.col("phone") == pl.col("phone_head")).all())
        .item()
    )
    township = suspects["township"][0]
    xlsx, csv = township_paths(with_contacts["out"] / period, township, period)
    records = household_records(openpyxl.load_workbook(xlsx).worksheets[0])
    by_id = {r["户编号"]: r for r in records}
    for row in contacts.filter(pl.col("household_id").is_in(list(by_id))).iter_rows(named=True):
        cell = by_id[row["household_id"]][CONTACT]
        for key in ("group", "address", "phone"):
            if row[key]:
                assert row[key] in cell
        if row["helper"]:
            assert f"帮扶：{row['helper']}" in cell
    # The csv keeps the output contract's columns.
    assert "联系电话" not in pl.read_csv(csv, infer_schema=False).columns


def test_a_list_without_them_has_no_such_column(screened: dict[str, Path]) -> None:
    period = SAMPLE_PERIODS[-1]
    xlsx = next((screened["out"] / period).rglob("疑似监测对象_*.xlsx"))
    records = household_records(openpyxl.load_workbook(xlsx).worksheets[0])
    assert records and CONTACT not in records[0]


def test_a_database_made_before_the_columns_gains_them(tmp_path: Path) -> None:
    specs = contract.load()
    roster = specs["roster"]
    older = {k: c for k, c in roster.columns.items() if k not in db_roster.CONTACT_COLUMNS}
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    try:
        con.execute(db_schema.staging_ddl(type(roster)(**{**roster.__dict__, "columns": older})))
        db_schema.ensure_schema(con, specs)
        columns = {r[0] for r in con.execute("DESCRIBE stg_roster").fetchall()}
    finally:
        con.close()
    assert set(db_roster.CONTACT_COLUMNS) <= columns
