"""教育 student status and fees: 因学 EDUCATION and 辍学 DROPOUT.

EDUCATION: Σ max(tuition + accommodation + textbook − aid, 0) over the members' records
in W > education_cost_threshold. DROPOUT: a member of compulsory school age whose latest
record in W (by record_date, then record_id) says 辍学 (docs/screening-rules.md).
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
    ages,
    listing,
    money,
    money_or_zero,
    non_negative,
    text,
    yuan,
)

c = pl.col
DROPOUT_STATUS = "辍学"


def records(education: pl.LazyFrame, w: Window, p: ResolvedParams) -> pl.LazyFrame:
    """The records with their net cost. `is_latest` marks the latest record of each
    student having a 辍学 record in W, and only of those: no one else's latest record can
    be a 辍学 one, which is all DROPOUT asks. Finding it for those few students spares a
    window over every record (docs/benchmarks.md)."""
    fees = money_or_zero("tuition") + money_or_zero("accommodation") + money_or_zero("textbook")
    prepared = education.select(
        "id_number",
        "source_key",
        "rule_date",
        "school",
        "stage",
        "status",
        "tuition",
        "accommodation",
        "textbook",
        "aid",
        net_cost=non_negative(fees - money_or_zero("aid")),
    )
    dropped_out = prepared.filter(c("status") == DROPOUT_STATUS).select("id_number")
    latest = latest_record(prepared.join(dropped_out, on="id_number", how="semi")).select(
        "id_number", "rule_date", "source_key", is_latest=pl.lit(True)
    )
    return prepared.join(
        latest, on=["id_number", "rule_date", "source_key"], how="left"
    ).with_columns(c("is_latest").fill_null(False))


def latest_record(education: pl.LazyFrame) -> pl.LazyFrame:
    """One row per student: the latest of the prepared records given (greatest record
    date, ties broken by the greatest record ID, which is the source key). The rules take
    it for students with a 辍学 record only; explain shows every pupil's."""
    return education.sort("rule_date", "source_key").group_by("id_number").last()


def _explain_cost(x: ExplainContext) -> tuple[str, str]:
    hh, p = x.household, x.params
    studies = x.records["education"].filter(c("net_cost") > 0).height
    return (
        f"近 {p.window_months} 个月教育净支出合计 {yuan(hh['education_cost'])} 元"
        f"（{studies} 条记录）",
        f"> {yuan(p.education_cost_threshold)} 元",
    )


def _explain_dropout(x: ExplainContext) -> tuple[str, str]:
    p = x.params
    # Every pupil's latest record in W (the rules' `is_latest` marks only 辍学 students').
    latest = latest_record(x.records["education"].lazy()).collect()
    status_of = dict(zip(latest["id_number"], latest["status"], strict=True))
    pupils = [
        f"{x.who(i)} 最新学籍 {status_of.get(i) or '窗口内无学籍记录'}"
        for i in x.member_ids("compulsory_age")
    ]
    return (
        listing(pupils, f"无义务教育年龄（{ages(p.compulsory_school_age)}）成员"),
        f"义务教育年龄 {ages(p.compulsory_school_age)} 成员窗口内最新学籍状态为 辍学",
    )


# Every record with a net cost in W: EDUCATION's sum, and a bill behind SPENDING. A fee
# fully covered by aid adds nothing, so it is not one.
BILLS = RecordEvidence(
    "education",
    keep=c("net_cost") > money(0),
    amount=c("net_cost"),
    detail=pl.concat_str(
        pl.lit("学校: "),
        text(c("school")),
        pl.lit("; 学费 "),
        text(c("tuition")),
        pl.lit(" + 住宿费 "),
        text(c("accommodation")),
        pl.lit(" + 教科书费 "),
        text(c("textbook")),
        pl.lit(" − 资助 "),
        text(c("aid")),
        pl.lit(" = 净支出 "),
        text(c("net_cost")),
        pl.lit(" 元"),
    ),
)

EDUCATION = RiskPoint(
    code="EDUCATION",
    label="因学",
    sources=("education",),
    condition=lambda p: c("education_cost") > money(p.education_cost_threshold),
    meaning=lambda p: (
        f"近{p.window_months}个月家庭教育支出（学费、住宿费、教科书费扣除资助）合计超过标准"
    ),
    evidence=(BILLS,),
    explain=_explain_cost,
)

DROPOUT = RiskPoint(
    code="DROPOUT",
    label="辍学",
    sources=("education",),
    condition=lambda p: c("dropout"),
    meaning=lambda p: f"义务教育年龄（{ages(p.compulsory_school_age)}）的学生最新学籍状态为辍学",
    evidence=(
        RecordEvidence(
            "education",
            keep=c("compulsory_age") & c("is_latest") & (c("status") == DROPOUT_STATUS),
            amount=pl.lit(None),
            detail=pl.concat_str(
                pl.lit("学校: "),
                text(c("school")),
                pl.lit("; 学段 "),
                text(c("stage")),
                pl.lit("; 最新学籍状态 "),
                text(c("status")),
                pl.lit("; "),
                text(c("age")),
                pl.lit(" 周岁"),
            ),
        ),
    ),
    explain=_explain_dropout,
)

DEPARTMENT = Department(
    source="education",
    reads=(
        "record_id",
        "id_number",
        "record_date",
        "school",
        "stage",
        "status",
        "tuition",
        "accommodation",
        "textbook",
        "aid",
    ),
    records=records,
    person=(
        Fact("education_cost", "sum", c("net_cost")),
        Fact(
            "latest_is_dropout",
            "any",
            c("is_latest") & (c("status") == DROPOUT_STATUS).fill_null(False),
        ),
    ),
    person_derived=lambda p: {"dropout": c("compulsory_age") & c("latest_is_dropout")},
    household=(Fact("education_cost", "sum"), Fact("dropout", "any")),
    listing_amount=c("net_cost"),
    listing_detail=pl.concat_str(
        text(c("school")), pl.lit(" "), text(c("stage")), pl.lit(" "), text(c("status"))
    ),
    risks=(EDUCATION, DROPOUT),
)
