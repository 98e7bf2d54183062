"""The roster's own figures: 收入低于监测线 LOW_INCOME, 刚性支出超收入 SPENDING, 收入骤减
INCOME_DROP, and labour capacity (劳动力状况).

LOW_INCOME: per_capita_income < monitoring_line. SPENDING: rigid expenditure (the MEDICAL,
EDUCATION and ACCIDENT sums) > household annual income (per_capita_income × household
size); its evidence is every bill of the three sums and the income line. INCOME_DROP:
per_capita_income at least income_drop_share below the household's figure in the roster
snapshot in force 12 months before P, and below income_drop_ceiling_ratio × the line; not
evaluated without that snapshot or for a household not in it. A household without an
income figure is not assumed poor: it gets none of them (the comparison is null, hence
false). Labour capacity counts the able workers: working age and no severe certificate;
weak ones hold a mild certificate (docs/screening-rules.md).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import duckdb
import polars as pl

from screening.db import roster as db_roster
from screening.param_units import share_text, yuan_text
from screening.params import ResolvedParams
from screening.periods import shift
from screening.rules import education, medical, traffic
from screening.rules.base import (
    Department,
    ExplainContext,
    Fact,
    RiskPoint,
    RosterEvidence,
    earlier,
    fen,
    money,
    text,
    yuan,
)
from screening.vocab import HAS_LABOUR, NO_LABOUR, SUM, WEAK_LABOUR

c = pl.col
# INCOME_DROP compares with the roster snapshot in force this many months before P.
DROP_MONTHS = 12
EARLIER_INCOME = earlier("per_capita_income", DROP_MONTHS)
EARLIER_PERIOD = earlier("roster_period", DROP_MONTHS)


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


def drop_ceiling(p: ResolvedParams) -> Decimal:
    """income_drop_ceiling_ratio × the monitoring line, exactly."""
    return Decimal(p.income_drop_ceiling_ratio) * p.monitoring_line


def _exact(amount: Decimal) -> pl.Expr:
    """An amount with as many places as it needs (1.5 × a line in fen has three)."""
    places = max(2, -int(amount.as_tuple().exponent))
    return pl.lit(amount, pl.Decimal(38, places))


def _fell(p: ResolvedParams) -> pl.Expr:
    """now ≤ (1 − share) × before, in whole fen: exactly 30 % below counts."""
    share = Fraction(Decimal(str(p.income_drop_share)))
    now, before = fen(c("per_capita_income")), fen(c(EARLIER_INCOME))
    kept = share.denominator - share.numerator
    return (before > 0) & (now * share.denominator <= before * kept)


def _fall_percent() -> pl.Expr:
    """How far the income fell, in percent with one decimal (for the evidence's words)."""
    now, before = (c(n).cast(pl.Float64) for n in ("per_capita_income", EARLIER_INCOME))
    return ((1 - now / before) * 100).round(1)


def _explain_drop(x: ExplainContext) -> tuple[str, str]:
    hh, p = x.household, x.params
    test = (
        f"下降 ≥ {share_text(Decimal(str(p.income_drop_share)))}，且人均纯收入 < 监测标准 × "
        f"{p.text('income_drop_ceiling_ratio')} = {yuan(drop_ceiling(p))} 元"
    )
    since = shift(p.period, -DROP_MONTHS)
    before, income = hh.get(EARLIER_INCOME), hh["per_capita_income"]
    if hh.get(EARLIER_PERIOD) is None or before is None:
        return (
            f"未判定 not evaluated：{since} 期时有效的人口库中没有本户，或数据库中没有该期及以前的"
            "人口库",
            test,
        )
    if income is None:
        return "户籍表无人均纯收入，不判定", test
    fall = (1 - Decimal(income) / Decimal(before)) * 100 if before else Decimal(0)
    return (
        f"人均纯收入 {yuan(income)} 元；12 个月前（{hh[EARLIER_PERIOD]} 期人口库）"
        f"{yuan(before)} 元，{'下降' if fall >= 0 else '上升'} {abs(fall):.1f}%",
        test,
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
    # Every bill of the three sums (an officer sees each one; a new one after a 不予纳入
    # brings the household back), then the income line.
    evidence=(
        medical.BILLS,
        education.BILLS,
        traffic.LOSSES,
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

INCOME_DROP = RiskPoint(
    code="INCOME_DROP",
    label="收入骤减",
    sources=("roster",),
    condition=lambda p: _fell(p) & (c("per_capita_income") < c("income_drop_ceiling")),
    meaning=lambda p: (
        f"家庭年人均纯收入比 {DROP_MONTHS} 个月前人口库中的本户数字下降 "
        f"{share_text(Decimal(str(p.income_drop_share)))} 及以上，且低于监测标准的 "
        f"{p.text('income_drop_ceiling_ratio')}（{yuan_text(drop_ceiling(p))} 元）；"
        f"{DROP_MONTHS} 个月前没有人口库数据或本户不在其中的，不判定"
    ),
    evidence=(
        RosterEvidence(
            amount=c("per_capita_income"),
            detail=pl.concat_str(
                pl.lit("人均纯收入 "),
                text(c("per_capita_income")),
                pl.lit(f"，{DROP_MONTHS} 个月前（"),
                text(c(EARLIER_PERIOD)),
                pl.lit(" 期人口库）"),
                text(c(EARLIER_INCOME)),
                pl.lit("，下降 "),
                text(_fall_percent()),
                pl.lit("%；低于收入骤减上限 "),
                text(c("income_drop_ceiling").cast(SUM)),
            ),
        ),
    ),
    explain=_explain_drop,
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
        "income_drop_ceiling": _exact(drop_ceiling(p)),
    },
    risks=(LOW_INCOME, SPENDING, INCOME_DROP),
    earlier_rosters=(DROP_MONTHS,),
)


def coverage_warnings(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    """What the run report says when INCOME_DROP could not be evaluated: no snapshot of
    12 months before is stored, or households of P's roster are not in it."""
    since = shift(period, -DROP_MONTHS)
    found, missing = db_roster.earlier_coverage(con, period, since)
    if found is None:
        return [
            f"收入骤减未判定：数据库中没有 {since} 期及以前的人口库（{DROP_MONTHS} 个月前），"
            "本期没有判定收入骤减；如有当时的人口库，请先入库"
            f"（screening ingest --period {since}） "
            f"(INCOME_DROP not evaluated: no roster snapshot of {since} or before is stored)"
        ]
    if missing:
        return [
            f"收入骤减：{missing} 户不在 {DROP_MONTHS} 个月前（{found} 期）的人口库中，"
            "未判定收入骤减 "
            f"(INCOME_DROP not evaluated for {missing} households not in the {found} roster)"
        ]
    return []
