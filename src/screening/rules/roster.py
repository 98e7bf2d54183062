"""The roster's own figures: 收入低于监测线 LOW_INCOME, 刚性支出超收入 SPENDING, and labour
capacity (劳动力状况).

LOW_INCOME: per_capita_income < monitoring_line. SPENDING: rigid expenditure (the MEDICAL,
EDUCATION and ACCIDENT sums) > household annual income (per_capita_income × household
size). A household without an income figure is not assumed poor: it gets neither (the
comparison is null, hence false). Labour capacity counts the able workers: working age
and no severe certificate; weak ones hold a mild certificate (docs/screening-rules.md).
"""

from __future__ import annotations

import polars as pl

from screening.params import ResolvedParams
from screening.rules.base import (
    Department,
    ExplainContext,
    Fact,
    RiskPoint,
    RosterEvidence,
    money,
    text,
    yuan,
)
from screening.vocab import HAS_LABOUR, NO_LABOUR, SUM, WEAK_LABOUR

c = pl.col


def _explain_income(x: ExplainContext) -> tuple[str, str]:
    income = x.household["per_capita_income"]
    saw = f"人均纯收入 {yuan(income)} 元" if income is not None else "户籍表无人均纯收入，不判定"
    return saw, f"< 监测标准 {yuan(x.params.monitoring_line)} 元"


def _explain_spending(x: ExplainContext) -> tuple[str, str]:
    hh = x.household
    return (
        f"刚性支出 {yuan(hh['rigid_expenditure'])} 元（医疗 + 教育 + 意外）；"
        f"家庭年收入 {yuan(hh['household_income'])} 元"
        f"（人均 {yuan(hh['per_capita_income'])} × {hh['household_size']} 人）",
        "刚性支出 > 家庭年收入",
    )


LOW_INCOME = RiskPoint(
    code="LOW_INCOME",
    label="收入低于监测线",
    sources=("roster",),
    condition=lambda p: c("per_capita_income") < money(p.monitoring_line),
    meaning=lambda p: "家庭年人均纯收入低于监测标准",
    evidence=(
        RosterEvidence(
            amount=c("per_capita_income"),
            detail=pl.concat_str(
                pl.lit("人均纯收入 "),
                text(c("per_capita_income")),
                pl.lit(" < 监测标准 "),
                text(c("monitoring_line")),
            ),
        ),
    ),
    explain=_explain_income,
)

SPENDING = RiskPoint(
    code="SPENDING",
    label="刚性支出超收入",
    sources=("roster", "medical", "education", "traffic"),
    condition=lambda p: c("rigid_expenditure") > c("household_income"),
    meaning=lambda p: "医疗、教育、意外三项刚性支出合计超过家庭年收入",
    evidence=(
        RosterEvidence(
            amount=c("rigid_expenditure"),
            detail=pl.concat_str(
                pl.lit("刚性支出 "),
                text(c("rigid_expenditure")),
                pl.lit(" (医疗 "),
                text(c("medical_oop")),
                pl.lit(" + 教育 "),
                text(c("education_cost")),
                pl.lit(" + 意外 "),
                text(c("accident_loss")),
                pl.lit(") > 家庭年收入 "),
                text(c("household_income")),
                pl.lit(" (人均 "),
                text(c("per_capita_income")),
                pl.lit(" × "),
                text(c("household_size")),
                pl.lit(" 人)"),
            ),
        ),
    ),
    explain=_explain_spending,
)


def labour_capacity() -> pl.Expr:
    """From the counts of able workers and of those among them holding a mild certificate.
    The spec's "grade 3–4" is read as "a grade not in severe_disability_grades", so the
    classes stay a partition if the parameter moves."""
    return (
        pl.when(c("able_workers") == 0)
        .then(pl.lit(NO_LABOUR))
        .when(c("weak_workers") == c("able_workers"))
        .then(pl.lit(WEAK_LABOUR))
        .otherwise(pl.lit(HAS_LABOUR))
    )


def _able(p: ResolvedParams) -> dict[str, pl.Expr]:
    severe_held = c("disability_grade").is_in(p.severe_disability_grades).fill_null(False)
    able = c("working_age") & ~severe_held
    # Able workers holding a certificate have a mild one (severe ones exclude them).
    return {"able_worker": able, "weak_worker": able & c("disability_grade").is_not_null()}


DEPARTMENT = Department(
    source="roster",
    person_derived=_able,
    household=(
        Fact("able_workers", "count", c("able_worker")),
        Fact("weak_workers", "count", c("weak_worker")),
    ),
    household_derived=lambda p: {
        "household_income": (c("per_capita_income") * c("household_size")).cast(SUM),
        "rigid_expenditure": (c("medical_oop") + c("education_cost") + c("accident_loss")).cast(
            SUM
        ),
        "labour_capacity": labour_capacity(),
    },
    risks=(LOW_INCOME, SPENDING),
)
