"""What a rule is made of: the pieces each department's rule file fills in.

Spec: docs/screening-rules.md. A department's file (medical.py, education.py, …) says,
in one place, how its records are read (`Department`: the columns, the record
preparation, the facts per person and per household) and which risk points rest on them
(`RiskPoint`: code, label, the meaning worded over the parameters, the condition, the
evidence and the explain text), the way OpenFisca keeps a variable with its label and
formula. The engine (facts.py, households.py, evidence.py) only iterates over them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import polars as pl

from screening.params import ResolvedParams
from screening.periods import period_end, period_start, shift
from screening.vocab import MONEY, SUM

# ------------------------------------------------------------------ values the rules use


def money(value: Decimal | int | str) -> pl.Expr:
    return pl.lit(Decimal(str(value)).quantize(Decimal("0.01")), dtype=MONEY)


def money_or_zero(column: str) -> pl.Expr:
    """Empty money counts as 0 in sums and differences (compensation not reported = none)."""
    return pl.col(column).fill_null(money(0))


def non_negative(expr: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(expr, money(0)).cast(SUM)


def fen(expr: pl.Expr) -> pl.Expr:
    """An amount in whole fen (Int64): arithmetic with shares stays exact (polars rounds
    the product of two decimals to the scale of the wider one)."""
    return (expr * 100).cast(pl.Int64)


def from_fen(expr: pl.Expr) -> pl.Expr:
    """Whole fen back to yuan, as a sum of money (vocab.SUM)."""
    return (expr.cast(pl.Decimal(38, 0)) * pl.lit(Decimal("0.01"), dtype=SUM)).cast(SUM)


def earlier(column: str, months: int) -> str:
    """The name a household's roster figure from the snapshot in force `months` before P
    takes (`Department.earlier_rosters`): per_capita_income_12m_before."""
    return f"{column}_{months}m_before"


def in_range(value: pl.Expr, bounds: tuple[int, int]) -> pl.Expr:
    return value.is_between(bounds[0], bounds[1], closed="both").fill_null(False)


def text(expr: pl.Expr) -> pl.Expr:
    """A value as evidence text shows it: '—' when empty."""
    return expr.cast(pl.String).fill_null("—")


def yuan(value: Decimal | float | int | None) -> str:
    """An amount as explain shows it: 12,345.60."""
    return "—" if value is None else f"{Decimal(str(value)):,.2f}"


def ages(bounds: tuple[int, int]) -> str:
    return f"{bounds[0]}–{bounds[1]} 周岁"


def listing(items: Sequence[str], none: str) -> str:
    return "；".join(items) if items else none


@dataclass(frozen=True)
class Window:
    """W: the first day of the month `months − 1` before P through end(P), inclusive."""

    period: str
    start: dt.date
    end: dt.date
    months: int = 12

    def contains(self, day: pl.Expr) -> pl.Expr:
        return day.is_between(pl.lit(self.start), pl.lit(self.end), closed="both").fill_null(False)


def window(period: str, months: int) -> Window:
    if months < 1:
        raise ValueError(f"window must span at least one month, got {months}")
    return Window(period, period_start(shift(period, 1 - months)), period_end(period), months)


# ------------------------------------------------------------------ facts


@dataclass(frozen=True)
class Fact:
    """A fact folded over rows: per person over their records, or per household over its
    members: `sum` adds amounts, `count` counts where true, `any` and `min` as named. `how`
    also says what someone with nothing to fold gets (0, 0, false, empty)."""

    name: str
    how: Literal["sum", "count", "any", "min"]
    expr: pl.Expr | None = None  # over the rows folded; None: the column of the same name

    def fold(self) -> pl.Expr:
        value = pl.col(self.name) if self.expr is None else self.expr
        if self.how == "sum":
            return value.sum().cast(SUM).alias(self.name)
        if self.how == "count":
            return value.sum().cast(pl.Int64).alias(self.name)
        if self.how == "any":
            return value.any().alias(self.name)
        return value.min().alias(self.name)

    def refold(self) -> pl.Expr:
        """Folds already-folded values of the same name again."""
        return Fact(self.name, self.how).fold()

    def default(self) -> pl.Expr:
        """The value of someone with nothing to fold."""
        if self.how == "sum":
            return pl.col(self.name).fill_null(money(0)).cast(SUM)
        if self.how == "count":
            return pl.col(self.name).fill_null(0)
        if self.how == "any":
            return pl.col(self.name).fill_null(False)
        return pl.col(self.name)


Derived = Callable[[ResolvedParams], Mapping[str, pl.Expr]]


def _none(_params: ResolvedParams) -> Mapping[str, pl.Expr]:
    return {}


# ------------------------------------------------------------------ evidence


@dataclass(frozen=True)
class RecordEvidence:
    """The records of `source` that support a risk: those of the household's members for
    which `keep` holds, each with the amount the rule counted and a detail in Chinese.
    `keep`, `amount` and `detail` are expressions over the department's prepared records
    joined with the member's person facts (age, working_age, …) and the household's
    facts."""

    source: str
    keep: pl.Expr
    amount: pl.Expr
    detail: pl.Expr


@dataclass(frozen=True)
class RosterEvidence:
    """The household's own roster line supports the risk: cited as the head, dated end(P)."""

    amount: pl.Expr
    detail: pl.Expr


Evidence = RecordEvidence | RosterEvidence


# ------------------------------------------------------------------ explain


@dataclass(frozen=True)
class ExplainContext:
    """What `screening explain` knows of one household when it words a rule: its row as
    screened, its members' facts, its records in the window per source (certificates:
    issued up to end(P)) and the parameters in force."""

    household: Mapping[str, Any]
    members: pl.DataFrame
    records: Mapping[str, pl.DataFrame]
    params: ResolvedParams

    def who(self, id_number: str) -> str:
        row = self.members.filter(pl.col("id_number") == id_number)
        if not row.height:
            return "—"
        return f"{row['name'][0] or '—'}（{row['age'][0]} 岁）"

    def member_ids(self, flag: str) -> list[str]:
        return self.members.filter(pl.col(flag))["id_number"].to_list()


# ------------------------------------------------------------------ risk points


@dataclass(frozen=True)
class RiskPoint:
    """One row of the rules' risk table, with everything said about it anywhere."""

    code: str
    label: str
    sources: tuple[str, ...]  # the departments whose data it reads ('roster' included)
    # Over the household's facts; null counts as false.
    condition: Callable[[ResolvedParams], pl.Expr]
    # The 说明 sheet's line: what the risk means, worded over the parameters in force.
    meaning: Callable[[ResolvedParams], str]
    evidence: tuple[Evidence, ...]
    # explain: (what the rule saw, its test with the parameter values).
    explain: Callable[[ExplainContext], tuple[str, str]]

    @property
    def flag(self) -> str:
        return f"has_{self.code.lower()}"


# ------------------------------------------------------------------ departments


@dataclass(frozen=True)
class Department:
    """A department source as the rules read it.

    `reads` are the columns of the delivered records the rules use (natural key, ID
    number, rule date included): a loader wanting no more loads these. `records` turns
    the records whose rule date is in reach (W, or up to end(P) with `whole_history`)
    into what the facts and the evidence read; every prepared frame has `id_number`,
    `source_key` and `rule_date`. `person` folds a person's records, `person_derived`
    adds facts that need the person's age classes, `household` folds the members and
    `household_derived` adds facts over the household's facts. A department without
    records (the relief estimate) only derives facts from the others'.
    """

    source: str
    reads: tuple[str, ...] = ()
    records: Callable[[pl.LazyFrame, Window, ResolvedParams], pl.LazyFrame] | None = None
    whole_history: bool = False
    person: tuple[Fact, ...] = ()
    person_derived: Derived = _none
    household: tuple[Fact, ...] = ()
    household_derived: Derived = _none
    # How explain lists a record of this source (over the prepared records).
    listing_amount: pl.Expr | None = None
    listing_detail: pl.Expr | None = None
    risks: tuple[RiskPoint, ...] = field(default=())
    # Months before P of the roster snapshots its rules compare with (the one in force at
    # that period): each household then carries, per snapshot, its per-capita income and
    # the snapshot's period there (`earlier`), null when none is stored or the household
    # is not in it. The loaders read them (ScreenInputs.earlier_rosters).
    earlier_rosters: tuple[int, ...] = ()

    @property
    def is_events(self) -> bool:
        return self.records is not None
