"""交警 road-accident casualties: 因意外 ACCIDENT.

ACCIDENT: Σ max(direct_loss − compensation, 0) over the members' accident records in W
> accident_loss_threshold, or a member of working age with injury 重伤 or 死亡 in W
(docs/screening-rules.md).
"""

from __future__ import annotations

import polars as pl

from screening.params import ResolvedParams
from screening.rules import relief
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
SERIOUS_INJURIES = ("重伤", "死亡")


def records(traffic: pl.LazyFrame, w: Window, p: ResolvedParams) -> pl.LazyFrame:
    return traffic.select(
        "id_number",
        "source_key",
        "rule_date",
        "injury",
        "direct_loss",
        "compensation",
        net_loss=non_negative(money_or_zero("direct_loss") - money_or_zero("compensation")),
        serious=c("injury").is_in(SERIOUS_INJURIES).fill_null(False),
    )


def _explain(x: ExplainContext) -> tuple[str, str]:
    hh, p = x.household, x.params
    working = set(x.member_ids("working_age"))
    injuries = [
        f"{x.who(i)} {injury} {day}" + ("" if i in working else "（非劳动年龄）")
        for i, injury, day in x.records["traffic"]
        .filter(c("serious"))
        .select("id_number", "injury", "rule_date")
        .iter_rows()
    ]
    return (
        f"近 {p.window_months} 个月事故净损失合计 {yuan(hh['accident_loss'])} 元；重伤/死亡："
        + listing(injuries, "无"),
        f"净损失 > {yuan(p.accident_loss_threshold)} 元，"
        f"或劳动年龄 {ages(p.working_age)} 成员重伤、死亡",
    )


injured_worker = c("working_age") & c("serious")
_detail = pl.concat_str(
    pl.when(injured_worker).then(pl.lit("劳动年龄成员, ")).otherwise(pl.lit("")),
    pl.lit("伤情 "),
    text(c("injury")),
    pl.lit("; 直接损失 "),
    text(c("direct_loss")),
    pl.lit(" − 已获赔偿 "),
    text(c("compensation")),
    pl.lit(" = 净损失 "),
    text(c("net_loss")),
    pl.lit(" 元"),
)
# Every record with a net loss in W: a bill behind SPENDING.
LOSSES = RecordEvidence(
    "traffic", keep=c("net_loss") > money(0), amount=c("net_loss"), detail=_detail
)

ACCIDENT = RiskPoint(
    code="ACCIDENT",
    label="因意外",
    sources=("traffic",),
    condition=lambda p: c("accident_by_loss") | c("serious_accident"),
    meaning=lambda p: (
        f"近{p.window_months}个月交通事故损失（扣除赔偿）合计超过标准，"
        f"或劳动年龄（{ages(p.working_age)}）成员重伤、死亡"
    ),
    # A record supports the loss clause only when that clause fired, the injury clause
    # when the member is of working age.
    evidence=(
        RecordEvidence(
            "traffic",
            keep=(c("accident_by_loss") & (c("net_loss") > money(0))) | injured_worker,
            amount=c("net_loss"),
            detail=_detail,
        ),
    ),
    explain=_explain,
)

DEPARTMENT = Department(
    source="traffic",
    reads=("accident_id", "id_number", "accident_date", "injury", "direct_loss", "compensation"),
    records=records,
    person=(
        Fact("accident_loss", "sum", c("net_loss")),
        Fact("serious_injury", "any", c("serious")),
        relief.UNCOMPENSATED_LOSS,
    ),
    person_derived=lambda p: {"serious_accident": c("working_age") & c("serious_injury")},
    household=(Fact("accident_loss", "sum"), Fact("serious_accident", "any")),
    household_derived=lambda p: {
        "accident_by_loss": c("accident_loss") > money(p.accident_loss_threshold)
    },
    listing_amount=c("net_loss"),
    listing_detail=pl.concat_str(
        pl.lit("伤情 "),
        text(c("injury")),
        pl.lit("; 损失 "),
        text(c("direct_loss")),
        pl.lit(" − 赔偿 "),
        text(c("compensation")),
    ),
    risks=(ACCIDENT,),
)
