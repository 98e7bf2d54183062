"""医保 hospital settlements: 因病 MEDICAL.

MEDICAL: Σ out_of_pocket over the members' settlements in W ≥ the threshold for the
household's type (docs/screening-rules.md).
"""

from __future__ import annotations

import polars as pl

from screening.params import ResolvedParams
from screening.rules.base import (
    Department,
    ExplainContext,
    Fact,
    RecordEvidence,
    RiskPoint,
    Window,
    money,
    money_or_zero,
    text,
    yuan,
)
from screening.vocab import DEFAULT_HOUSEHOLD_TYPE, MONEY

c = pl.col


def records(medical: pl.LazyFrame, w: Window, p: ResolvedParams) -> pl.LazyFrame:
    return medical.select(
        "id_number", "source_key", "rule_date", "hospital", amount=money_or_zero("out_of_pocket")
    )


def threshold(p: ResolvedParams) -> pl.Expr:
    """The household's threshold by its type (an empty type counts as the default one)."""
    by_type = p.medical_oop_threshold
    return (
        c("household_type")
        .fill_null(DEFAULT_HOUSEHOLD_TYPE)
        .replace_strict(
            list(by_type),
            list(by_type.values()),
            default=money(by_type[DEFAULT_HOUSEHOLD_TYPE]),
            return_dtype=MONEY,
        )
    )


def _explain(x: ExplainContext) -> tuple[str, str]:
    hh, p = x.household, x.params
    kind = hh["household_type"] or DEFAULT_HOUSEHOLD_TYPE
    by_type = p.medical_oop_threshold
    line = by_type.get(kind, by_type[DEFAULT_HOUSEHOLD_TYPE])
    paid = x.records["medical"].filter(c("amount") > 0).height
    return (
        f"近 {p.window_months} 个月住院个人自付合计 {yuan(hh['medical_oop'])} 元（{paid} 笔结算）",
        f"≥ {yuan(line)} 元（{kind}标准）",
    )


# Every settlement with out-of-pocket cost in W: MEDICAL's sum, and a bill behind SPENDING.
BILLS = RecordEvidence(
    "medical",
    keep=c("amount") > money(0),
    amount=c("amount"),
    detail=pl.concat_str(
        pl.lit("医院: "),
        text(c("hospital")),
        pl.lit("; 结算 "),
        text(c("rule_date")),
        pl.lit("; 自付 "),
        text(c("amount")),
        pl.lit(" 元"),
    ),
)

MEDICAL = RiskPoint(
    code="MEDICAL",
    label="因病",
    sources=("medical",),
    condition=lambda p: c("medical_oop") >= threshold(p),
    meaning=lambda p: f"近{p.window_months}个月家庭成员住院个人自付费用合计达到本户类型的标准",
    evidence=(BILLS,),
    explain=_explain,
)

DEPARTMENT = Department(
    source="medical",
    reads=("settlement_id", "id_number", "settlement_date", "hospital", "out_of_pocket"),
    records=records,
    person=(Fact("medical_oop", "sum", c("amount")),),
    household=(Fact("medical_oop", "sum"),),
    listing_amount=c("amount"),
    listing_detail=pl.concat_str(pl.lit("医院 "), text(c("hospital"))),
    risks=(MEDICAL,),
)
