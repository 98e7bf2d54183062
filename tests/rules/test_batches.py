"""Screening in batches of townships gives what one screening of everyone gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from screening import contract, params
from screening.db import roster as db_roster
from screening.db.connect import connect
from screening.pipeline import inputs as run_inputs
from screening.pipeline import run
from screening.pipeline.work import WORK_FOLDER
from screening.rules import batches, followup, screen
from tests.support.common import ingest_year_before

PERIOD = "2026-09"


@pytest.fixture(scope="module")
def whole_and_batched(
    screened: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[screen.ScreenResult, screen.ScreenResult, screen.ScreenInputs]:
    specs = contract.load()
    resolved = params.load().at(PERIOD)
    con = connect(screened["db"], read_only=True)
    try:
        inputs = run_inputs.load_inputs(con, specs, PERIOD)
        exported = batches.export_inputs(
            con,
            specs,
            PERIOD,
            tmp_path_factory.mktemp("batches") / batches.INPUTS_FOLDER,
            resolved.window_months,
        )
        previous = run_inputs.previously_listed(con, PERIOD)
        earlier = followup.load(con, PERIOD, resolved)
    finally:
        con.close()

    def screen_one(part: screen.ScreenInputs) -> screen.ScreenResult:
        return screen.screen(part, PERIOD, resolved, previous, "run-1", earlier)

    whole = screen_one(inputs)
    batched = batches.screen_in_batches(exported, PERIOD, resolved, screen_one, budget=300)
    return whole, batched, exported


def test_the_county_is_cut_into_several_batches_of_whole_townships(
    whole_and_batched: tuple,
) -> None:
    _, _, exported = whole_and_batched
    cut = batches.township_batches(exported.population, budget=300)
    assert len(cut) >= 2
    townships = [t for batch in cut for t in batch]
    assert townships == sorted(set(townships))
    assert batches.township_batches(exported.population, budget=10**9) == [townships]


@pytest.mark.parametrize(
    "name", ["households", "suspects", "evidence", "members", "candidates", "scale"]
)
def test_batched_frames_equal_the_whole_screening(whole_and_batched: tuple, name: str) -> None:
    whole, batched, _ = whole_and_batched
    assert getattr(whole, name).height > 0 or name == "candidates"
    assert getattr(batched, name).equals(getattr(whole, name)), name


def test_match_rates_count_records_nobody_carries(whole_and_batched: tuple) -> None:
    whole, batched, _ = whole_and_batched
    assert whole.match_rates["unmatched"].sum() > 0  # the sample has outsiders' records
    assert batched.match_rates.equals(whole.match_rates)
    assert batched.households_without_head == whole.households_without_head


def test_within_the_budget_the_inputs_are_screened_at_once(
    screened: dict[str, Path], whole_and_batched: tuple
) -> None:
    _, _, exported = whole_and_batched
    calls: list[int] = []

    def count(part: screen.ScreenInputs) -> screen.ScreenResult:
        calls.append(part.population.select(pl.len()).collect().item())
        raise StopIteration

    with pytest.raises(StopIteration):
        batches.screen_in_batches(exported, PERIOD, params.load().at(PERIOD), count)
    assert calls == [exported.population.select(pl.len()).collect().item()]
    con = connect(screened["db"], read_only=True)
    try:
        persons = db_roster.persons_as_of(con, PERIOD)
        assert persons == calls[0]
        assert not batches.needs_batches(con, PERIOD)
        assert batches.needs_batches(con, PERIOD, budget=persons - 1)
    finally:
        con.close()


def test_run_period_screens_a_county_over_the_budget_in_batches(
    sample_inbox: Path, sample_manifest: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches, "PERSON_BUDGET", 300)
    cut: list[int] = []
    real = batches.batch_inputs

    def counted(inputs: screen.ScreenInputs, budget: int) -> object:
        for part in real(inputs, budget):
            cut.append(part.population.select(pl.len()).collect().item())
            # Each batch has its own households of the roster of a year before (INCOME_DROP).
            then = part.earlier_rosters[12].select("household_id").collect()
            now = part.population.select("household_id").collect()
            assert then.height and set(then["household_id"]) <= set(now["household_id"])
            yield part

    monkeypatch.setattr(batches, "batch_inputs", counted)
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    ingest_year_before(db, sample_inbox)  # exported with the period's inputs
    for period in sample_manifest["periods"]:
        run.run_period(db=db, inbox=sample_inbox, out=out, period=period)
    assert len(cut) >= 2 * len(sample_manifest["periods"])  # every period in batches
    assert not (out / WORK_FOLDER).exists()  # the exported inputs went with the work
    con = connect(db, read_only=True)
    try:
        got = con.sql(
            "SELECT period, household_id, list_sort(risk_codes), listing_status FROM suspects"
        ).fetchall()
    finally:
        con.close()
    expected = {
        (period, e["household_id"], tuple(sorted(e["risk_codes"])), e["listing_status"])
        for period, listed in sample_manifest["expected"].items()
        for e in listed
    }
    assert {(p, h, tuple(c), s) for p, h, c, s in got} == expected
