"""Facts per person: each department's records prepared and folded per person (lazy).

The events frames arrive de-duplicated by natural key as of P (the loader's job) but not
filtered by date: the window is applied here. A department reading its whole history
(certificates: labour capacity counts every one held) keeps the records up to end(P),
flagged `in_window`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from screening import contract
from screening.params import ResolvedParams
from screening.periods import shift
from screening.rules import DEPARTMENTS, EARLIER_ROSTERS, EVENT_DEPARTMENTS, rule_columns
from screening.rules.base import Department, Fact, Window, in_range, window
from screening.vocab import HEAD_RELATION


def age_at(id_number: pl.Expr, day: dt.date) -> pl.Expr:
    """Completed years on `day` from the birth date in the ID (digits 7–14). The digits
    are read as numbers rather than parsed as a date (ids.birth_date_expr): IDs reaching
    the rules are valid, and at ten million persons this is several times faster. Someone
    born on 29 February has the birthday on 1 March in common years."""
    born_year = id_number.str.slice(6, 4).cast(pl.Int32, strict=False)
    born_month_day = id_number.str.slice(10, 4).cast(pl.Int32, strict=False)
    birthday_later = (born_month_day > day.month * 100 + day.day).cast(pl.Int32)
    return (day.year - born_year - birthday_later).cast(pl.Int32)


def source_key(source: str) -> pl.Expr:
    """The natural key from the contract as text, multi-column keys joined with '|'."""
    key = contract.load()[source].natural_key
    return pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator="|")


def head_rank() -> pl.Expr:
    """The head sorts first; without a 户主 the first member by row number stands in."""
    return pl.when(pl.col("relation") == HEAD_RELATION).then(0).otherwise(1)


def persons(population: pl.LazyFrame, w: Window, params: ResolvedParams) -> pl.LazyFrame:
    """One row per roster member, with age and the age classes the rules use."""
    age = age_at(pl.col("id_number"), w.end)
    return population.select(
        "household_id",
        "id_number",
        "name",
        "relation",
        "township",
        "village",
        "household_type",
        "monitoring_status",
        "per_capita_income",
        "row_number",
        head_rank=head_rank(),
        age=age,
        compulsory_age=in_range(age, params.compulsory_school_age),
        working_age=in_range(age, params.working_age),
    )


# What the evidence and explain say of a record that reaches its person only through a
# link a person confirmed on a 身份核对 list (its own ID number was wrong: screening.linkage).
LINKED_NOTE = "经人工核对关联"
_LINKED_KEYS = pl.Schema({"source_key": pl.String()})


@dataclass(frozen=True)
class Records(Mapping[str, pl.LazyFrame]):
    """Each events source's records prepared for the rules (Department.records): those
    whose rule date is in W, or up to end(P) for a department reading its whole history.
    Every frame has id_number, source_key and rule_date. `linked`: per source, the
    source_key of the records in reach that carry a confirmed link's ID number instead of
    their own (the as-of load's `linked` flag, db.roster.events_as_of)."""

    frames: Mapping[str, pl.LazyFrame]
    linked: Mapping[str, pl.LazyFrame] = field(default_factory=dict)

    def __getitem__(self, source: str) -> pl.LazyFrame:
        return self.frames[source]

    def __iter__(self) -> Iterator[str]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def in_window(self) -> dict[str, pl.LazyFrame]:
        """Source → its records with a rule date in W, for match rates."""
        return {
            d.source: self[d.source].filter(pl.col("in_window"))
            if d.whole_history
            else self[d.source]
            for d in EVENT_DEPARTMENTS
        }

    def collected(self) -> Records:
        """The same records computed once, in one `pl.collect_all`, as lazy frames over the
        results: the queries built on them (collect_all shares no subplans) then start from
        the prepared records instead of each preparing them again."""
        frames = pl.collect_all([*self.frames.values(), *self.linked.values()])
        lazy = [f.lazy() for f in frames]
        n = len(self.frames)
        return Records(
            dict(zip(self.frames, lazy[:n], strict=True)),
            dict(zip(self.linked, lazy[n:], strict=True)),
        )

    def linked_keys(self, source: str) -> pl.LazyFrame:
        """source_key of the source's records in reach that came through a confirmed link."""
        return self.linked.get(source, pl.LazyFrame(schema=_LINKED_KEYS))


def mark_linked(frame: pl.LazyFrame, linked: pl.LazyFrame, column: str = "detail") -> pl.LazyFrame:
    """`frame` (with source_key) with LINKED_NOTE added to `column` for the linked records."""
    flag = linked.unique().with_columns(pl.lit(True).alias("__linked"))
    note = pl.concat_str(pl.col(column).fill_null(""), pl.lit(f"；{LINKED_NOTE}"))
    return (
        frame.join(flag, on="source_key", how="left")
        .with_columns(
            pl.when(pl.col("__linked")).then(note).otherwise(pl.col(column)).alias(column)
        )
        .drop("__linked")
    )


def reach(department: Department, w: Window) -> tuple[dt.date | None, dt.date]:
    """The rule dates (first, last; None: no first) of the records the rules can read:
    W, or up to end(P) for a department reading its whole history."""
    return (None if department.whole_history else w.start), w.end


def rule_reads(source: str, period: str, window_months: int | None) -> dict[str, Any]:
    """The `db_roster.events_as_of` filters that keep what the rules of `source` read: its
    columns, rule dates up to end(P) and, with `window_months`, none before the window's
    first day but for a department reading its whole history."""
    from screening.rules import DEPARTMENT_BY_SOURCE

    w = window(period, window_months or 1)  # without window_months, only its end counts
    since, until = reach(DEPARTMENT_BY_SOURCE[source], w)
    return {
        "columns": rule_columns(source),
        "since": since if window_months is not None else None,
        "until": until,
    }


def earlier_periods(period: str) -> dict[int, str]:
    """Months before P → the period whose roster snapshot in force the rules compare with
    (`Department.earlier_rosters`): what the loaders read into ScreenInputs.earlier_rosters."""
    return {months: shift(period, -months) for months in EARLIER_ROSTERS}


def prepare(
    frame: pl.LazyFrame, department: Department, w: Window, params: ResolvedParams
) -> pl.LazyFrame:
    """The department's records in reach, with the contract's rule date as `rule_date` and
    the natural key as `source_key`, as its rules read them. The date filter comes first
    so that nothing is computed for records outside it."""
    assert department.records is not None, f"{department.source} has no records"
    rule_date = contract.load()[department.source].rule_date
    assert rule_date is not None
    in_reach = (
        frame.with_columns(rule_date=pl.col(rule_date))
        .filter(_within_reach(pl.col("rule_date"), department, w))
        .with_columns(source_key=source_key(department.source))
    )
    return department.records(in_reach, w, params)


def _within_reach(day: pl.Expr, department: Department, w: Window) -> pl.Expr:
    """A record's rule date within the department's reach of W (`reach`)."""
    since, until = reach(department, w)
    return day <= pl.lit(until) if since is None else w.contains(day)


def records(events: Mapping[str, pl.LazyFrame], w: Window, params: ResolvedParams) -> Records:
    """Each events source's records as the rules read them, for window `w`, and which of
    them came through a confirmed link."""
    return Records(
        {d.source: prepare(events[d.source], d, w, params) for d in EVENT_DEPARTMENTS},
        {d.source: linked_in_reach(events[d.source], d, w) for d in EVENT_DEPARTMENTS},
    )


def linked_in_reach(frame: pl.LazyFrame, department: Department, w: Window) -> pl.LazyFrame:
    """source_key of the records in reach whose ID number a confirmed link supplied (none
    for a frame without the as-of load's `linked` flag, as the rule cases give)."""
    if "linked" not in frame.collect_schema().names():
        return pl.LazyFrame(schema=_LINKED_KEYS)
    day = pl.col(str(contract.load()[department.source].rule_date))
    keep = _within_reach(day, department, w)
    return frame.filter(pl.col("linked").fill_null(False) & keep).select(
        source_key=source_key(department.source)
    )


def person_facts(people: pl.LazyFrame, rec: Records, params: ResolvedParams) -> pl.LazyFrame:
    """`persons` plus, per person, every department's facts (Department.person) and those
    derived from them with the person's age classes (Department.person_derived)."""
    per_source = [
        rec[d.source].group_by("id_number").agg(*(f.fold() for f in d.person))
        for d in EVENT_DEPARTMENTS
        if d.person
    ]
    folded: list[Fact] = [f for d in DEPARTMENTS for f in d.person]
    # One join with the population instead of one per source: the per-source facts are
    # stacked and folded per person first (a few hundred thousand rows, not millions).
    stacked = (
        pl.concat(per_source, how="diagonal")
        .group_by("id_number")
        .agg(*(f.refold() for f in folded))
    )
    derived = {k: v for d in DEPARTMENTS for k, v in d.person_derived(params).items()}
    return (
        people.join(stacked, on="id_number", how="left")
        .with_columns(*(f.default() for f in folded))
        .with_columns(**derived)
    )


def match_rates(rec: Records, people: pl.LazyFrame, period: str) -> pl.LazyFrame:
    """Per source: records in W, how many of them match a roster member's ID number, and
    how many of those only through a confirmed link (`matched_by_link`)."""
    in_window = pl.concat(
        [
            frame.select("id_number", "source_key", source=pl.lit(s))
            for s, frame in rec.in_window().items()
        ],
        how="vertical",
    )
    matched = in_window.join(people.select("id_number"), on="id_number", how="semi")
    linked = pl.concat(
        [rec.linked_keys(s).select("source_key", source=pl.lit(s)) for s in rec.in_window()],
        how="vertical",
    ).unique()
    by_link = matched.join(linked, on=["source", "source_key"], how="semi")
    sources = pl.LazyFrame({"source": list(rec.in_window())})
    names = ("records_in_window", "matched", "matched_by_link")
    counts = [
        frame.group_by("source").agg(pl.len().cast(pl.Int64).alias(name))
        for name, frame in zip(names, (in_window, matched, by_link), strict=True)
    ]
    joined = sources
    for count in counts:
        joined = joined.join(count, on="source", how="left", maintain_order="left")
    return joined.select(
        period=pl.lit(period),
        source="source",
        **{name: pl.col(name).fill_null(0) for name in names},
    ).with_columns(unmatched=pl.col("records_in_window") - pl.col("matched"))
