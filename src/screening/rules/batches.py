"""Screening a large roster in batches of whole townships, so memory stays bounded.

`screen.screen` holds every person's facts and records at once: about 3 GB per million
persons (docs/benchmarks.md). Above a budget of persons the inputs as of P are instead
exported once from DuckDB to parquet files (`export_inputs`: the roster snapshot in force,
the newest version of every record and the earlier roster snapshots, as
`pipeline.inputs.load_inputs` reads them), and screened a batch of whole townships at a time
(`screen_in_batches`): each batch gets its households' members, the records carrying their
ID numbers and their households' rows of the earlier snapshots, and `screen.screen` runs on
it as on a small county.

Every rule reads one household's members and their records, so a household screened in
a batch comes out as it would in one screening of everyone; a household is kept whole
(its batch is that of the first of its townships, should its members name two). What is
not per household is recombined: the match rates (records in the window are counted once
more over the records no roster member carries), the listed shares per township and for
the county (recomputed over all households), the count of households without a head, and
the orders the outputs are sorted in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import polars as pl

from screening import contract
from screening.db import linkage as db_linkage
from screening.db import roster as db_roster
from screening.db.connect import Query
from screening.params import ResolvedParams
from screening.rules import EVENT_SOURCES, facts, followup
from screening.rules.base import window
from screening.rules.screen import ScreenInputs, ScreenResult

# Persons screened at once: about 6 GB of peak memory per batch (docs/benchmarks.md).
PERSON_BUDGET = 2_000_000
INPUTS_FOLDER = "inputs"
# DuckDB's share while exporting (its default is 80 % of the machine's memory).
EXPORT_MEMORY = "4GB"


def needs_batches(con: duckdb.DuckDBPyConnection, period: str, budget: int | None = None) -> bool:
    """Whether the roster in force at `period` has more persons than one screening holds
    (`budget`, PERSON_BUDGET by default)."""
    return db_roster.persons_as_of(con, period) > (PERSON_BUDGET if budget is None else budget)


def export_inputs(
    con: duckdb.DuckDBPyConnection,
    specs: dict[str, contract.SourceSpec],
    period: str,
    folder: Path,
    window_months: int | None = None,
) -> ScreenInputs:
    """The inputs as of `period` written to parquet files under `folder` (created private:
    they hold personal data) and returned as scans of them. DuckDB writes them within
    EXPORT_MEMORY, spilling to disk if it must, so nothing holds the whole roster."""
    for missing in [f for f in (*reversed(folder.parents), folder) if not f.exists()]:
        missing.mkdir(mode=0o700)
    # The same reads as `pipeline.inputs.load_inputs`, written to parquet instead of held in memory.
    queries = {"roster": Query(db_roster.POPULATION_SQL, {"period": period})}
    queries.update(
        {
            s: Query(
                *db_roster.events_as_of_sql(
                    specs[s],
                    period,
                    **facts.rule_reads(s, period, window_months),
                    links=db_linkage.has_links(con, s),
                )
            )
            for s in EVENT_SOURCES
        }
    )
    earlier = {
        months: at
        for months, at in facts.earlier_periods(period).items()
        if db_roster.roster_period(con, at) is not None
    }
    queries.update(
        {f"roster_{m}m_before": db_roster.earlier_roster_sql(at) for m, at in earlier.items()}
    )
    files = db_roster.export_parquet(con, queries, folder, EXPORT_MEMORY)
    scans = {source: pl.scan_parquet(path) for source, path in files.items()}
    return ScreenInputs(
        population=scans["roster"],
        events={s: scans[s] for s in EVENT_SOURCES},
        earlier_rosters={m: scans[f"roster_{m}m_before"] for m in earlier},
    )


def township_batches(population: pl.LazyFrame, budget: int) -> list[list[str]]:
    """Townships in name order, cut into consecutive batches of at most `budget` persons
    (a township larger than the budget is a batch of its own). A household counts in the
    first of its townships."""
    sizes = (
        _household_townships(population)
        .group_by("township")
        .agg(pl.col("persons").sum())
        .sort("township")
        .collect()
    )
    batches: list[list[str]] = []
    held = 0
    for township, persons in sizes.iter_rows():
        if not batches or held + persons > budget:
            batches.append([])
            held = 0
        batches[-1].append(township)
        held += persons
    return batches


def _household_townships(population: pl.LazyFrame) -> pl.LazyFrame:
    return population.group_by("household_id").agg(
        pl.col("township").min(), persons=pl.len().cast(pl.Int64)
    )


def batch_inputs(inputs: ScreenInputs, budget: int) -> Iterator[ScreenInputs]:
    """Each batch's inputs, collected: its households' members and their records."""
    households = _household_townships(inputs.population).select("household_id", "township")
    for townships in township_batches(inputs.population, budget):
        mine = households.filter(pl.col("township").is_in(townships)).select("household_id")
        population = inputs.population.join(
            mine, on="household_id", how="semi", maintain_order="left"
        ).collect()
        ids = population.select("id_number").unique()
        events = {
            s: frame.join(ids.lazy(), on="id_number", how="semi", maintain_order="left")
            .collect(engine="streaming")
            .lazy()
            for s, frame in inputs.all_events().items()
        }
        # Its households as the earlier snapshots show them (by household, not by person:
        # INCOME_DROP compares a household with itself).
        earlier = {
            m: frame.join(mine, on="household_id", how="semi", maintain_order="left")
            .collect()
            .lazy()
            for m, frame in inputs.earlier_rosters.items()
        }
        yield ScreenInputs(population=population.lazy(), events=events, earlier_rosters=earlier)


def unmatched_match_rates(
    inputs: ScreenInputs, period: str, params: ResolvedParams
) -> pl.DataFrame:
    """Match rates of the records no roster member carries (so all of them unmatched)."""
    ids = inputs.population.select("id_number").unique()
    events = {
        s: frame.join(ids, on="id_number", how="anti").collect(engine="streaming").lazy()
        for s, frame in inputs.all_events().items()
    }
    records = facts.records(events, window(period, params.window_months), params)
    nobody = pl.LazyFrame(schema={"id_number": pl.String()})
    return facts.match_rates(records, nobody, period).collect()


def screen_in_batches(
    inputs: ScreenInputs,
    period: str,
    params: ResolvedParams,
    screen_one: Callable[[ScreenInputs], ScreenResult],
    budget: int | None = None,
) -> ScreenResult:
    """`screen_one(inputs)` when the population fits the budget; otherwise `screen_one`
    on each batch of townships, the results recombined as one screening's. `screen_one`
    is `screen.screen` for `period` with `params` (and whatever else the caller passes)."""
    budget = PERSON_BUDGET if budget is None else budget
    persons = inputs.population.select(pl.len()).collect().item()
    if persons <= budget:
        return screen_one(inputs)
    parts = [screen_one(batch) for batch in batch_inputs(inputs, budget)]
    return combine(parts, unmatched_match_rates(inputs, period, params))


def combine(parts: list[ScreenResult], unmatched: pl.DataFrame) -> ScreenResult:
    """One screening's result from its batches' (each household in exactly one batch)."""

    def cat(name: str) -> pl.DataFrame:
        return pl.concat([getattr(p, name) for p in parts], how="vertical")

    households = cat("households").sort("household_id", maintain_order=True)
    rates = [*(p.match_rates for p in parts), unmatched]
    order = parts[0].match_rates.select("source").with_row_index("_order")
    match_rates = (
        pl.concat([r.select(parts[0].match_rates.columns) for r in rates], how="vertical")
        .group_by("period", "source")
        .agg(pl.col("records_in_window", "matched", "matched_by_link").sum())
        .with_columns(unmatched=pl.col("records_in_window") - pl.col("matched"))
        .join(order, on="source", how="left")
        .sort("_order")
        .select(parts[0].match_rates.columns)
        .cast(parts[0].match_rates.schema)
    )
    return ScreenResult(
        households=households,
        # Batches hold consecutive townships in name order, and the list is sorted by
        # township first: the batches' lists one after another are the county's.
        suspects=cat("suspects"),
        evidence=cat("evidence").sort("household_id", maintain_order=True),
        members=cat("members").sort("household_id", maintain_order=True),
        match_rates=match_rates,
        candidates=cat("candidates").sort(
            "township", "village", "household_id", maintain_order=True
        ),
        scale=followup.scale(households),
        households_without_head=sum(p.households_without_head for p in parts),
    )
