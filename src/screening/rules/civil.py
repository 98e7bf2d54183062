"""民政 social assistance: 突发困难 ASSISTANCE.

ASSISTANCE: a member has a civil record in W with assistance_type 临时救助 (any event), or
with 低保 or 特困供养 and event 新增 (docs/screening-rules.md).
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
    listing,
    money_or_zero,
    text,
)

c = pl.col
# 临时救助 is itself a sudden-hardship event; 低保 / 特困供养 only when newly granted,
# since renewals and payments describe a hardship the household already had.
ANY_EVENT = ("临时救助",)
NEW_ONLY = ("低保", "特困供养")
NEW_EVENT = "新增"


def records(civil: pl.LazyFrame, w: Window, p: ResolvedParams) -> pl.LazyFrame:
    kind = c("assistance_type")
    qualifies = kind.is_in(ANY_EVENT) | (kind.is_in(NEW_ONLY) & (c("event") == NEW_EVENT))
    return civil.select(
        "id_number",
        "source_key",
        "rule_date",
        "assistance_type",
        "event",
        amount=money_or_zero("amount"),
        qualifies=qualifies.fill_null(False),
    )


def _explain(x: ExplainContext) -> tuple[str, str]:
    lines = [
        f"{x.who(i)} {kind} {event} {day}" + ("" if ok else "（不计 does not count）")
        for i, kind, event, day, ok in x.records["civil"]
        .select("id_number", "assistance_type", "event", "rule_date", "qualifies")
        .iter_rows()
    ]
    return "窗口内民政记录：" + listing(lines, "无"), "临时救助（任何变动），或 低保、特困供养 新增"


ASSISTANCE = RiskPoint(
    code="ASSISTANCE",
    label="突发困难",
    sources=("civil",),
    condition=lambda p: c("assistance"),
    meaning=lambda p: f"近{p.window_months}个月有临时救助，或新纳入低保、特困供养",
    evidence=(
        RecordEvidence(
            "civil",
            keep=c("qualifies"),
            amount=c("amount"),
            detail=pl.concat_str(
                pl.lit("民政: "),
                text(c("assistance_type")),
                pl.lit(" "),
                text(c("event")),
                pl.lit("; 金额 "),
                text(c("amount")),
                pl.lit(" 元"),
            ),
        ),
    ),
    explain=_explain,
)

DEPARTMENT = Department(
    source="civil",
    reads=("id_number", "assistance_type", "event", "event_date", "amount"),
    records=records,
    person=(Fact("assistance", "any", c("qualifies")),),
    household=(Fact("assistance", "any"),),
    listing_amount=c("amount"),
    listing_detail=pl.concat_str(text(c("assistance_type")), pl.lit(" "), text(c("event"))),
    risks=(ASSISTANCE,),
)
