"""Risks per household: the departments' household facts, every risk point's flag, the
risk codes, colour and listing status; and the evidence behind each risk.

Spec: docs/screening-rules.md. The risk points and their evidence are defined in the
department files (rules/__init__.py lists them); this module only applies them.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import polars as pl

from screening.params import ResolvedParams
from screening.rules import DEPARTMENTS, EARLIER_ROSTERS, RISK_BY_CODE, RISKS, relief
from screening.rules.base import RecordEvidence, RosterEvidence, Window, earlier, money
from screening.rules.facts import Records, head_rank, mark_linked
from screening.vocab import (
    BLUE,
    HEAD_RELATION,
    MONEY,
    MONITORED,
    RED,
    STATUS_CONTINUING,
    STATUS_MONITORED,
    STATUS_NEW,
    SUM,
    YELLOW,
)

c = pl.col


def _joined_where_flagged(field: str) -> pl.Expr:
    """The risks' codes or labels, in table order, joined with ';' (string concatenation
    is an order of magnitude faster than building lists per row)."""
    return pl.concat_str(
        [pl.when(c(r.flag)).then(pl.lit(getattr(r, field))) for r in RISKS],
        separator=";",
        ignore_nulls=True,
    )


def colour() -> pl.Expr:
    n = c("risk_codes").list.len()
    return (
        pl.when(n >= 2)
        .then(pl.lit(RED))
        .when((n == 1) & c(RISK_BY_CODE["LOW_INCOME"].flag))
        .then(pl.lit(YELLOW))
        .when(n == 1)
        .then(pl.lit(BLUE))
    )


def listing_status(previous_listed: Set[str]) -> pl.Expr:
    previous = pl.Series("previous", sorted(previous_listed), dtype=pl.String).implode()
    return (
        pl.when(~c("listed"))
        .then(None)
        .when(c("monitoring_status") == MONITORED)
        .then(pl.lit(STATUS_MONITORED))
        .when(c("household_id").is_in(previous))
        .then(pl.lit(STATUS_CONTINUING))
        .otherwise(pl.lit(STATUS_NEW))
    )


def household_fact_names(params: ResolvedParams) -> list[str]:
    """The facts every household carries from the departments' rules."""
    return [
        *(f.name for d in DEPARTMENTS for f in d.household),
        *(k for d in DEPARTMENTS for k in d.household_derived(params)),
    ]


# The head (or its stand-in) is the member with the least order; a household attribute is
# the head's value, else that of the first member (by row number) who has one. min_by per
# group avoids sorting millions of rows.
_ORDER = c("head_rank").cast(pl.Int64) * (1 << 40) + c("row_number")


def from_head(column: str) -> pl.Expr:
    return c(column).min_by(pl.when(c(column).is_not_null()).then(_ORDER))


def earlier_figures(snapshot: pl.LazyFrame | None, months: int) -> pl.LazyFrame:
    """Per household of an earlier roster snapshot (the one in force `months` before P),
    its per-capita income and the snapshot's period then, under the names `earlier` gives
    them; no rows when none is stored."""
    income, period = earlier("per_capita_income", months), earlier("roster_period", months)
    if snapshot is None:
        schema = {"household_id": pl.String(), income: MONEY, period: pl.String()}
        return pl.LazyFrame(schema=schema)
    return (
        snapshot.with_columns(head_rank=head_rank())
        .group_by("household_id")
        .agg(
            from_head("per_capita_income").cast(MONEY).alias(income),
            c("period").first().alias(period),
        )
    )


def households(
    facts: pl.LazyFrame,
    w: Window,
    params: ResolvedParams,
    previous_listed: Set[str],
    earlier_rosters: Mapping[int, pl.LazyFrame] | None = None,
) -> pl.LazyFrame:
    """One row per household with its facts, the figures of the earlier roster snapshots
    the rules compare with, risk flags (`has_<code>`), codes, colour and status. The roster
    repeats household attributes on every member row."""
    earlier_rosters = earlier_rosters or {}
    per_household = facts.group_by("household_id").agg(
        *(f.fold() for d in DEPARTMENTS for f in d.household),
        head_name=c("name").min_by(_ORDER),
        head_id_number=c("id_number").min_by(_ORDER),
        has_head=(c("relation") == HEAD_RELATION).fill_null(False).any(),
        **{
            col: from_head(col)
            for col in (
                "township",
                "village",
                "household_type",
                "monitoring_status",
                "per_capita_income",
            )
        },
        household_size=pl.len().cast(pl.Int64),
    )
    for months in EARLIER_ROSTERS:
        figures = earlier_figures(earlier_rosters.get(months), months)
        per_household = per_household.join(figures, on="household_id", how="left")
    derived = {k: v for d in DEPARTMENTS for k, v in d.household_derived(params).items()}
    return (
        per_household.with_columns(
            period=pl.lit(w.period), monitoring_line=money(params.monitoring_line), **derived
        )
        .with_columns(*(r.condition(params).fill_null(False).alias(r.flag) for r in RISKS))
        .with_columns(
            risk_codes=_joined_where_flagged("code"),
            listed=pl.any_horizontal(*(c(r.flag) for r in RISKS)),
        )
        .with_columns(
            risk_codes=pl.when(c("listed"))
            .then(c("risk_codes").str.split(";"))
            .otherwise(pl.lit([], dtype=pl.List(pl.String))),
            risk_labels=pl.when(c("listed")).then(_joined_where_flagged("label")),
        )
        .with_columns(colour=colour())
        .with_columns(listing_status=listing_status(previous_listed))
    )


# ------------------------------------------------------------------------------ evidence


def evidence(
    hh: pl.LazyFrame, people: pl.LazyFrame, rec: Records, w: Window, params: ResolvedParams
) -> pl.LazyFrame:
    """One row per (listed household, risk, source record) supporting that risk, as each
    risk point's `evidence` says, and with the relief estimate on, its breakdown (RELIEF,
    after the risks). Records are joined with the members of the listed
    households having the risk first, so details are only written for the few records
    that are cited."""
    listed = hh.filter(c("listed"))
    members = people.select(
        "household_id", "id_number", "name", "age", "compulsory_age", "working_age"
    ).join(
        listed.select(
            "household_id", "period", *household_fact_names(params), *(r.flag for r in RISKS)
        ),
        on="household_id",
        how="inner",
    )
    parts = []
    for risk in RISKS:
        for piece in risk.evidence:
            if isinstance(piece, RecordEvidence):
                frame = _from_records(rec[piece.source], members, risk.code, piece)
                parts.append(mark_linked(frame, rec.linked_keys(piece.source)))
            else:
                parts.append(_from_roster(listed, risk.code, w, piece))
    if relief.enabled(params):
        parts.append(relief.evidence(members, listed, rec, w, params))
    codes = [*(r.code for r in RISKS), relief.CODE]
    risk_rank = c("risk_code").replace_strict(codes, list(range(len(codes))), return_dtype=pl.Int32)
    return pl.concat(parts, how="vertical").sort(
        "household_id", risk_rank, "rule_date", "source", "source_key", "id_number", nulls_last=True
    )


def _from_records(
    frame: pl.LazyFrame, members: pl.LazyFrame, risk: str, piece: RecordEvidence
) -> pl.LazyFrame:
    return (
        frame.join(members.filter(c(RISK_BY_CODE[risk].flag)), on="id_number", how="inner")
        .filter(piece.keep)
        .select(
            "period",
            "household_id",
            "id_number",
            "name",
            risk_code=pl.lit(risk),
            source=pl.lit(piece.source),
            source_key="source_key",
            rule_date="rule_date",
            amount=piece.amount.cast(SUM),
            detail=piece.detail,
        )
    )


def _from_roster(listed: pl.LazyFrame, risk: str, w: Window, piece: RosterEvidence) -> pl.LazyFrame:
    """A roster-based risk (a state, not an event) cites the household itself, dated end(P),
    when the comparison was made."""
    return listed.filter(c(RISK_BY_CODE[risk].flag)).select(
        "period",
        "household_id",
        id_number="head_id_number",
        name="head_name",
        risk_code=pl.lit(risk),
        source=pl.lit("roster"),
        source_key="household_id",
        rule_date=pl.lit(w.end),
        amount=piece.amount.cast(SUM),
        detail=piece.detail,
    )
