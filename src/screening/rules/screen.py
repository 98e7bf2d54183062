"""One screening of period P: population and department records in, lists and evidence out.

Pure polars, no DuckDB: the caller loads the inputs as of P (roster snapshot in force,
events de-duplicated by natural key) and publishes the result. The prepared records are
collected once; the households, then the evidence (which the townships' decisions need),
then the lists are each one collect over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

import polars as pl

from screening import contract, tables
from screening.params import ResolvedParams
from screening.rules import EVENT_SOURCES, facts, followup, households
from screening.rules.base import window
from screening.vocab import COLOURS, TYPES

PROVENANCE_DTYPES: dict[str, pl.DataType] = {
    "period": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
}
# The frames a screening gives (schemas/tables/).
SUSPECTS_SCHEMA = tables.schema("suspects")
EVIDENCE_SCHEMA = tables.schema("evidence")
HOUSEHOLDS_SCHEMA = tables.schema("households")
MEMBERS_SCHEMA = tables.schema("members")
MATCH_RATES_SCHEMA = tables.schema("match_rates")


@dataclass(frozen=True)
class ScreenInputs:
    """The roster's typed columns plus period, file, row_number; of each events source, at
    least the columns its rules read (rules.rule_columns), more are ignored
    (docs/design.md). A source missing from `events` was never delivered."""

    population: pl.LazyFrame  # the roster snapshot in force at P
    # Events, per source: de-duplicated by natural key as of P, any date.
    events: Mapping[str, pl.LazyFrame] = field(default_factory=dict)
    # Months before P → the roster snapshot in force then (at least household_id,
    # relation, per_capita_income, row_number, period: db.roster.EARLIER_COLUMNS), for the
    # rules comparing with it (Department.earlier_rosters). Absent: none is stored, and
    # those rules are not evaluated.
    earlier_rosters: Mapping[int, pl.LazyFrame] = field(default_factory=dict)

    def source(self, name: str) -> pl.LazyFrame:
        return self.events[name] if name in self.events else empty_source(name)

    def all_events(self) -> dict[str, pl.LazyFrame]:
        """Every events source, an empty frame for one never delivered."""
        return {s: self.source(s) for s in EVENT_SOURCES}


@dataclass(frozen=True)
class ScreenResult:
    households: pl.DataFrame  # every household, listed or not (HOUSEHOLDS_SCHEMA)
    suspects: pl.DataFrame  # listed households, output contract columns (SUSPECTS_SCHEMA)
    evidence: pl.DataFrame  # (listed household, risk, source record) (EVIDENCE_SCHEMA)
    members: pl.DataFrame  # members of listed households (MEMBERS_SCHEMA)
    match_rates: pl.DataFrame  # per events source (MATCH_RATES_SCHEMA)
    candidates: pl.DataFrame  # proposed for risk removal (followup.CANDIDATES_SCHEMA)
    scale: pl.DataFrame  # listed shares per township and county (followup.SCALE_SCHEMA)
    households_without_head: int  # households with no 户主, whose first member stood in


def source_schema(source: str) -> pl.Schema:
    """The typed columns of `source` (contract order) plus period, file, row_number."""
    spec = contract.load()[source]
    columns = {key: TYPES[col.type][0] for key, col in spec.columns.items()}
    return pl.Schema({**columns, **PROVENANCE_DTYPES})


def empty_source(source: str) -> pl.LazyFrame:
    """A source that was never delivered: no rows, the right schema."""
    return pl.LazyFrame(schema=source_schema(source))


def people_and_records(
    inputs: ScreenInputs, w: facts.Window, params: ResolvedParams
) -> tuple[pl.LazyFrame, facts.Records]:
    """The population with ages and household attributes, and each source's records as the
    rules read them (window flags, net amounts)."""
    return facts.persons(inputs.population, w, params), facts.records(
        inputs.all_events(), w, params
    )


def screen(
    inputs: ScreenInputs,
    period: str,
    params: ResolvedParams,
    previous_listed: Set[str] = frozenset(),
    run_id: str = "",
    earlier: followup.Followup | None = None,
) -> ScreenResult:
    """Screen period P. `previous_listed`: household IDs listed by the previous period's run;
    `earlier`: the townships' decisions and the earlier screened periods."""
    earlier = earlier or followup.Followup.none()
    if params.period != period:
        raise ValueError(f"parameters were resolved for {params.period}, not for {period}")
    w = window(period, params.window_months)
    people, rec = people_and_records(inputs, w, params)
    # Prepared once: every query below reads the records (the households, the match
    # rates, the evidence, the members), and would otherwise prepare them again.
    rec = rec.collected()
    person = facts.person_facts(people, rec, params)
    # Two collects, not one: collect_all does not share subplans between its queries, so
    # every output built on the households would recompute every person's facts. The
    # households are an output in full anyway; the lists, evidence and members then need
    # only the roster (for listed households) and the records.
    screened, match_rates = pl.collect_all(
        [
            households.households(person, w, params, previous_listed, inputs.earlier_rosters).sort(
                "household_id"
            ),
            facts.match_rates(rec, people, period),
        ]
    )
    # The decisions need the evidence (a record dated after a 不予纳入 lists it again), so
    # evidence is gathered for every household the rules list, then kept for the listed.
    evidence = households.evidence(
        screened.lazy().filter(pl.col("listed")), people, rec, w, params
    ).collect()
    screened = followup.apply_decisions(screened, evidence, earlier.decisions)
    listed = screened.lazy().filter(pl.col("listed"))
    evidence = evidence.join(listed.select("household_id").collect(), on="household_id", how="semi")
    suspects, members = pl.collect_all([_suspects(listed, run_id), _members(listed, people, rec)])
    return ScreenResult(
        households=_conform(screened, HOUSEHOLDS_SCHEMA),
        suspects=_conform(suspects, SUSPECTS_SCHEMA),
        evidence=_conform(evidence, EVIDENCE_SCHEMA),
        members=_conform(members, MEMBERS_SCHEMA),
        match_rates=_conform(match_rates, MATCH_RATES_SCHEMA),
        candidates=followup.removal_candidates(screened, earlier, params, run_id),
        scale=followup.scale(screened),
        households_without_head=screened.filter(~pl.col("has_head")).height,
    )


def _conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Exactly the schema's columns, in its order and dtypes (sums stay Decimal(38, 2),
    vocab.SUM: narrowing them could fail the run on absurd but accepted values)."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _suspects(listed: pl.LazyFrame, run_id: str) -> pl.LazyFrame:
    colour_rank = pl.col("colour").replace_strict(
        list(COLOURS), list(range(len(COLOURS))), return_dtype=pl.Int32
    )
    return (
        listed.with_columns(run_id=pl.lit(run_id))
        .sort(
            [
                pl.col("township"),
                colour_rank,
                pl.col("risk_codes").list.len(),
                pl.col("rigid_expenditure"),
                pl.col("household_id"),
            ],
            descending=[False, False, True, True, False],
            nulls_last=True,
            maintain_order=True,
        )
        .select(*SUSPECTS_SCHEMA)
    )


def _members(listed: pl.LazyFrame, people: pl.LazyFrame, rec: facts.Records) -> pl.LazyFrame:
    """Members of listed households, head first, with the most severe certificate held."""
    grades = rec["disability"].group_by("id_number").agg(disability_grade=pl.col("grade").min())
    return (
        people.join(
            listed.select("household_id", "period", "head_id_number"),
            on="household_id",
            how="inner",
        )
        .join(grades, on="id_number", how="left")
        .with_columns(is_head=pl.col("id_number") == pl.col("head_id_number"))
        .sort("household_id", ~pl.col("is_head"), "row_number", "id_number")
        .select(*MEMBERS_SCHEMA)
    )
