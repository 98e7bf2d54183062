"""One screening of period P: population and department records in, lists and evidence out.

Pure polars, no DuckDB: the caller loads the inputs as of P (roster snapshot in force,
events de-duplicated by natural key) and publishes the result. The prepared records are
collected once; the households, then the evidence (which the townships' decisions need),
then the lists are each one collect over them.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

import polars as pl

from screening import contract, facts, followup, risks
from screening.facts import MONEY, SUM
from screening.params import ResolvedParams

CONTRACT_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "id": pl.String(),
    "date": pl.Date(),
    "money": MONEY,
    "enum": pl.String(),
    "grade": pl.Int8(),
}
PROVENANCE_DTYPES: dict[str, pl.DataType] = {
    "period": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
}

# Output contract, "suspects.parquet columns" (shared/spec/output-contract.md), in order.
SUSPECTS_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String(),
    "township": pl.String(),
    "village": pl.String(),
    "household_id": pl.String(),
    "head_name": pl.String(),
    "head_id_number": pl.String(),
    "household_type": pl.String(),
    "household_size": pl.Int64(),
    "per_capita_income": MONEY,
    "monitoring_line": MONEY,
    "colour": pl.String(),
    "risk_codes": pl.List(pl.String()),
    "risk_labels": pl.String(),
    "medical_oop": SUM,
    "education_cost": SUM,
    "accident_loss": SUM,
    "rigid_expenditure": SUM,
    "labour_capacity": pl.String(),
    "listing_status": pl.String(),
    "run_id": pl.String(),
    # Not in the output contract's table: the township's latest decision on an earlier
    # list, which the rules spec says is shown when a declined household is listed again.
    "last_decision": pl.String(),
    "last_decision_date": pl.Date(),
}
EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String(),
    "household_id": pl.String(),
    "id_number": pl.String(),
    "name": pl.String(),
    "risk_code": pl.String(),
    "source": pl.String(),
    "source_key": pl.String(),
    "rule_date": pl.Date(),
    "amount": SUM,
    "detail": pl.String(),
}
HOUSEHOLDS_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String(),
    "township": pl.String(),
    "village": pl.String(),
    "household_id": pl.String(),
    "head_name": pl.String(),
    "head_id_number": pl.String(),
    "household_type": pl.String(),
    "monitoring_status": pl.String(),
    "household_size": pl.Int64(),
    "per_capita_income": MONEY,
    "household_income": SUM,
    "monitoring_line": MONEY,
    "medical_oop": SUM,
    "education_cost": SUM,
    "accident_loss": SUM,
    "rigid_expenditure": SUM,
    "labour_capacity": pl.String(),
    "risk_codes": pl.List(pl.String()),
    "risk_labels": pl.String(),
    "colour": pl.String(),
    "listing_status": pl.String(),
    "listed": pl.Boolean(),
    "last_decision": pl.String(),
    "last_decision_date": pl.Date(),
    "last_decision_period": pl.String(),
}
MEMBERS_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String(),
    "household_id": pl.String(),
    "id_number": pl.String(),
    "name": pl.String(),
    "relation": pl.String(),
    "age": pl.Int64(),
    "is_head": pl.Boolean(),
    "disability_grade": pl.Int8(),
}
MATCH_RATES_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String(),
    "source": pl.String(),
    "records_in_window": pl.Int64(),
    "matched": pl.Int64(),
    "unmatched": pl.Int64(),
}


@dataclass(frozen=True)
class ScreenInputs:
    """The roster's typed columns plus period, file, row_number; of the events, at least
    the columns the rules read (facts.RULE_COLUMNS), more are ignored (docs/design.md)."""

    population: pl.LazyFrame  # the roster snapshot in force at P
    medical: pl.LazyFrame  # events: de-duplicated by natural key as of P, any date
    education: pl.LazyFrame
    traffic: pl.LazyFrame
    civil: pl.LazyFrame
    disability: pl.LazyFrame


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
    columns = {key: CONTRACT_DTYPES[col.type] for key, col in spec.columns.items()}
    return pl.Schema({**columns, **PROVENANCE_DTYPES})


def empty_source(source: str) -> pl.LazyFrame:
    """A source that was never delivered: no rows, the right schema."""
    return pl.LazyFrame(schema=source_schema(source))


def people_and_records(
    inputs: ScreenInputs, w: facts.Window, params: ResolvedParams
) -> tuple[pl.LazyFrame, facts.Records]:
    """The population with ages and household attributes, and each source's records as the
    rules read them (window flags, net amounts)."""
    return facts.persons(inputs.population, w, params), records_of(inputs, w, params)


def records_of(inputs: ScreenInputs, w: facts.Window, params: ResolvedParams) -> facts.Records:
    """Each department source's records as the rules read them, for window `w`."""
    return facts.records(
        medical=inputs.medical,
        education=inputs.education,
        traffic=inputs.traffic,
        civil=inputs.civil,
        disability=inputs.disability,
        w=w,
        params=params,
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
    w = facts.window(period, params.window_months)
    people, rec = people_and_records(inputs, w, params)
    # Prepared once: every query below reads the records (the households, the match
    # rates, the evidence, the members), and would otherwise prepare them again.
    rec = rec.collected()
    person = facts.person_facts(people, rec, params)
    # Two collects, not one: collect_all does not share subplans between its queries, so
    # every output built on the households would recompute every person's facts. The
    # households are an output in full anyway; the lists, evidence and members then need
    # only the roster (for listed households) and the records.
    households, match_rates = pl.collect_all(
        [
            risks.households(person, w, params, previous_listed).sort("household_id"),
            facts.match_rates(rec, people, period),
        ]
    )
    # The decisions need the evidence (a record dated after a 不予纳入 lists it again), so
    # evidence is gathered for every household the rules list, then kept for the listed.
    evidence = risks.evidence(households.lazy().filter(pl.col("listed")), people, rec, w).collect()
    households = followup.apply_decisions(households, evidence, earlier.decisions)
    listed = households.lazy().filter(pl.col("listed"))
    evidence = evidence.join(listed.select("household_id").collect(), on="household_id", how="semi")
    suspects, members = pl.collect_all([_suspects(listed, run_id), _members(listed, people, rec)])
    return ScreenResult(
        households=_conform(households, HOUSEHOLDS_SCHEMA),
        suspects=_conform(suspects, SUSPECTS_SCHEMA),
        evidence=_conform(evidence, EVIDENCE_SCHEMA),
        members=_conform(members, MEMBERS_SCHEMA),
        match_rates=_conform(match_rates, MATCH_RATES_SCHEMA),
        candidates=followup.removal_candidates(households, earlier, params, run_id),
        scale=followup.scale(households),
        households_without_head=households.filter(~pl.col("has_head")).height,
    )


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Exactly the schema's columns, in its order and dtypes (sums stay Decimal(38, 2),
    facts.SUM: narrowing them could fail the run on absurd but accepted values)."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _suspects(listed: pl.LazyFrame, run_id: str) -> pl.LazyFrame:
    colour_rank = pl.col("colour").replace_strict(
        list(risks.COLOUR_ORDER), list(range(len(risks.COLOUR_ORDER))), return_dtype=pl.Int32
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
    grades = rec.certificates.group_by("id_number").agg(disability_grade=pl.col("grade").min())
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
