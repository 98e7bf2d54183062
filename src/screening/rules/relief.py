"""防贫保预估 relief_estimate: what a county's tiered poverty-prevention insurance would pay
(optional, parameters `relief_estimate.*`; docs/screening-rules.md "Estimated 防贫保 relief").

Three kinds, each with a warning line, bands and a cap (Liling's 防贫综合保险 is the example,
parameters/examples/liling.yaml):

    illness    per person: Σ out_of_pocket of their settlements in W (MEDICAL's sum)
    accident   per person: Σ direct_loss of their accident records in W with compensation 0
               (empty compensation counts as 0, as everywhere in the rules)
    schooling  per household: the EDUCATION sum

A kind pays once its base reaches the warning line: the part of the base inside each band
earns that band's share (nothing above the last band), at most the cap. Each kind's payout
is rounded to the fen for its unit (a person, or the household) and the household's
estimate is their sum: 0.00 when nothing reaches its line, null while the estimate is off.
The arithmetic is in whole fen, so that shares apply exactly.

Not a risk point: it lists no one and changes no colour. It is a `Department` without
records (listed last in rules/__init__.py), deriving facts from the others', and its
breakdown is evidence under the code RELIEF.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import polars as pl

from screening.param_units import band_text, share_text, yuan_text
from screening.params import Node, ResolvedParams
from screening.rules.base import (
    Department,
    Fact,
    Window,
    fen,
    from_fen,
    money,
    money_or_zero,
    text,
)
from screening.vocab import SUM

c = pl.col
CODE = "RELIEF"
LABEL = "防贫保预估"

# A traffic record's direct loss when the liable party paid nothing: the accident kind's
# base (a fact of the traffic department, which folds it per person).
UNCOMPENSATED_LOSS = Fact(
    "uncompensated_loss",
    "sum",
    pl.when(money_or_zero("compensation") == money(0))
    .then(money_or_zero("direct_loss"))
    .otherwise(money(0)),
)


@dataclass(frozen=True)
class Kind:
    key: str  # its parameter group under relief_estimate
    label: str
    source: str  # the department whose records the base sums
    base: str  # the fact it pays on
    base_words: str  # how the 说明 sheet and the evidence name the base
    per_person: bool


KINDS = (
    Kind("illness", "因病", "medical", "medical_oop", "住院个人自付合计", True),
    Kind(
        "accident", "因意外", "traffic", UNCOMPENSATED_LOSS.name, "未获赔偿的事故直接损失合计", True
    ),
    Kind("schooling", "因学", "education", "education_cost", "教育净支出合计", False),
)


def enabled(p: ResolvedParams) -> bool:
    return bool(p.relief_estimate.enabled)


def column(kind: Kind) -> str:
    """The fact holding the kind's payout (per person, then per household)."""
    return f"{kind.key}_relief"


@dataclass(frozen=True)
class Schedule:
    """A kind's schedule in whole fen; shares as fractions over `scale` (a common
    denominator), so a payout is a whole number of fen / scale until it is rounded."""

    line: int
    bands: tuple[tuple[int, int | None, Fraction], ...]
    cap: int | None
    scale: int

    @classmethod
    def of(cls, p: ResolvedParams, kind: Kind) -> Schedule:
        node: Node = p.relief_estimate[kind.key]
        bands = tuple(
            (int(b.lower * 100), None if b.upper is None else int(b.upper * 100), Fraction(b.share))
            for b in node.bands
        )
        cap = None if node.cap is None else int(node.cap * 100)
        scale = math.lcm(*(share.denominator for _, _, share in bands))
        return cls(int(node.warning_line * 100), bands, cap, scale)

    def parts(self, base: pl.Expr) -> list[pl.Expr]:
        """The part of `base` (fen) inside each band."""
        return [
            (base - low).clip(lower_bound=0)
            if high is None
            else (base - low).clip(lower_bound=0, upper_bound=high - low)
            for low, high, _ in self.bands
        ]

    def _scaled(self, base_fen: pl.Expr) -> pl.Expr:
        """The bands' payout on `base_fen`, in fen × scale (exact), before the cap."""
        return pl.sum_horizontal(
            part * (share.numerator * (self.scale // share.denominator))
            for part, (_, _, share) in zip(self.parts(base_fen), self.bands, strict=True)
        )

    def payout(self, base: pl.Expr) -> pl.Expr:
        """The payout on `base` (yuan), rounded to the fen; 0 below the warning line."""
        base_fen = fen(base)
        scaled = self._scaled(base_fen)
        if self.cap is not None:
            scaled = pl.min_horizontal(scaled, pl.lit(self.cap * self.scale, pl.Int64))
        rounded = (2 * scaled + self.scale) // (2 * self.scale)  # half up
        return from_fen(pl.when(base_fen >= self.line).then(rounded).otherwise(0))

    def detail(self, kind: Kind, base: pl.Expr) -> pl.Expr:
        """The breakdown of a payout in Chinese, over the base (yuan)."""
        base_fen = fen(base)
        pieces = []
        for part, (low, high, share) in zip(self.parts(base_fen), self.bands, strict=True):
            where = f"{_yuan(low)} 元以上" if high is None else f"{_yuan(low)}–{_yuan(high)} 元"
            pay = (2 * part * share.numerator + share.denominator) // (2 * share.denominator)
            pieces.append(
                pl.when(part > 0).then(
                    pl.concat_str(
                        pl.lit(f"{where}的部分 "),
                        text(from_fen(part)),
                        pl.lit(f" × {share_text(Decimal(share.numerator) / share.denominator)} = "),
                        text(from_fen(pay)),
                    )
                )
            )
        steps = pl.concat_str(pieces, separator="，", ignore_nulls=True)
        capped = pl.lit("")
        if self.cap is not None:
            over = self._scaled(base_fen) > pl.lit(self.cap * self.scale, pl.Int64)
            capped = pl.when(over).then(pl.lit(f"，超过上限按 {_yuan(self.cap)} 元计"))
            capped = capped.otherwise(pl.lit(""))
        return pl.concat_str(
            pl.lit(f"{LABEL}（{kind.label}）：{kind.base_words} "),
            text(base),
            pl.lit(f" 元，达到起付线 {_yuan(self.line)} 元；"),
            pl.when(steps == "").then(pl.lit("起付线以上没有可赔付的部分")).otherwise(steps),
            capped,
            pl.lit("；估算 "),
            text(self.payout(base)),
            pl.lit(" 元"),
        )


def _yuan(amount_fen: int) -> str:
    return yuan_text(Decimal(amount_fen) / 100)


def _person_derived(p: ResolvedParams) -> dict[str, pl.Expr]:
    on = enabled(p)
    return {
        column(k): Schedule.of(p, k).payout(c(k.base)) if on else pl.lit(None, SUM)
        for k in KINDS
        if k.per_person
    }


def _household_derived(p: ResolvedParams) -> dict[str, pl.Expr]:
    if not enabled(p):
        return {"relief_estimate": pl.lit(None, SUM)}
    household = [k for k in KINDS if not k.per_person]
    payouts = {column(k): Schedule.of(p, k).payout(c(k.base)) for k in household}
    total = pl.sum_horizontal(
        *(c(column(k)) for k in KINDS if k.per_person), *payouts.values()
    ).cast(SUM)
    return {**payouts, "relief_estimate": total}


DEPARTMENT = Department(
    source="relief",
    person_derived=_person_derived,
    household=tuple(Fact(column(k), "sum") for k in KINDS if k.per_person),
    household_derived=_household_derived,
)


def meaning(p: ResolvedParams) -> str:
    """The 说明 sheet's line on the estimate, over the schedule in force."""
    kinds = []
    for k in KINDS:
        node = p.relief_estimate[k.key]
        unit = "每人" if k.per_person else "每户"
        cap = "" if node.cap is None else f"，{unit}不超过 {yuan_text(node.cap)} 元"
        bands = "，".join(band_text(b) for b in node.bands)
        base = f"近{p.window_months}个月{'' if k.per_person else '家庭'}{k.base_words}"
        kinds.append(
            f"{k.label}按{unit}{base}，达到 {yuan_text(node.warning_line)} 元后分段计：{bands}{cap}"
        )
    return (
        "按本县防贫保险的分段赔付标准估算的金额（元），只供排序和安排入户参考，不是救助决定。"
        + "；".join(kinds)
        + "。各项按人（因学按户）四舍五入到分后相加；没有一项达到起付线的为 0。"
    )


def evidence(
    members: pl.LazyFrame,
    listed: pl.LazyFrame,
    records: Mapping[str, pl.LazyFrame],
    w: Window,
    p: ResolvedParams,
) -> pl.LazyFrame:
    """The breakdown as evidence rows: per person and kind whose base reached its line
    (a household kind: one row, cited as the head), dated end(P); no record key, since a
    row sums a person's records. `members`: the listed households' members (household_id,
    period, id_number, name); `records`: the departments' prepared records; `listed`: the
    listed households with their facts."""
    from screening.rules import DEPARTMENT_BY_SOURCE

    parts = []
    for k in KINDS:
        s = Schedule.of(p, k)
        if k.per_person:
            fold = next(f for f in DEPARTMENT_BY_SOURCE[k.source].person if f.name == k.base)
            bases = (
                records[k.source]
                .join(members, on="id_number", how="semi")
                .group_by("id_number")
                .agg(fold.fold())
            )
            who = members.select("period", "household_id", "id_number", "name").join(
                bases, on="id_number", how="inner"
            )
        else:
            who = listed.select(
                "period", "household_id", k.base, id_number="head_id_number", name="head_name"
            )
        parts.append(
            who.filter(fen(c(k.base)) >= s.line).select(
                "period",
                "household_id",
                "id_number",
                "name",
                risk_code=pl.lit(CODE),
                source=pl.lit(k.source),
                source_key=pl.lit(None, pl.String),
                rule_date=pl.lit(w.end),
                amount=s.payout(c(k.base)),
                detail=s.detail(k, c(k.base)),
            )
        )
    return pl.concat(parts, how="vertical")
