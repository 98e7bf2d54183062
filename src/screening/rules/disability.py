"""残联 disability certificates: 因残 DISABILITY (and the grades labour capacity reads).

DISABILITY: a member holds a certificate issued in W whose grade is severe. Certificates
are read whenever issued up to end(P): labour capacity counts every certificate held
(docs/screening-rules.md, "Labour capacity").
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
    text,
)

c = pl.col


def records(disability: pl.LazyFrame, w: Window, p: ResolvedParams) -> pl.LazyFrame:
    return disability.select(
        "id_number",
        "source_key",
        "rule_date",
        "disability_type",
        "grade",
        in_window=w.contains(c("rule_date")),
        severe=c("grade").is_in(p.severe_disability_grades).fill_null(False),
    )


def grades(p: ResolvedParams) -> str:
    return "、".join(str(g) for g in p.severe_disability_grades)


def _explain(x: ExplainContext) -> tuple[str, str]:
    issued = [
        f"{x.who(i)} {g if g is not None else '—'} 级 {kind or ''} 发证 {day}"
        for i, g, kind, day in x.records["disability"]
        .filter(c("in_window"))
        .select("id_number", "grade", "disability_type", "rule_date")
        .iter_rows()
    ]
    return "窗口内发证：" + listing(issued, "无"), f"窗口内新发 {grades(x.params)} 级残疾人证"


DISABILITY = RiskPoint(
    code="DISABILITY",
    label="因残",
    sources=("disability",),
    condition=lambda p: c("new_severe_certificate"),
    meaning=lambda p: f"近{p.window_months}个月新发重度（{grades(p)}级）残疾人证",
    evidence=(
        RecordEvidence(
            "disability",
            keep=c("in_window") & c("severe"),
            amount=pl.lit(None),
            detail=pl.concat_str(
                pl.lit("残疾证 "),
                text(c("grade")),
                pl.lit(" 级 "),
                text(c("disability_type")),
                pl.lit("; 发证 "),
                text(c("rule_date")),
            ),
        ),
    ),
    explain=_explain,
)

DEPARTMENT = Department(
    source="disability",
    reads=("certificate_no", "id_number", "disability_type", "grade", "issue_date"),
    records=records,
    whole_history=True,
    person=(
        # Grade 1 is the most severe, so a person's most severe certificate is the minimum.
        Fact("disability_grade", "min", c("grade")),
        Fact("new_severe_certificate", "any", c("in_window") & c("severe")),
    ),
    household=(Fact("new_severe_certificate", "any"),),
    listing_amount=pl.lit(None),
    listing_detail=pl.concat_str(
        text(c("disability_type")), pl.lit(" "), text(c("grade")), pl.lit(" 级")
    ),
    risks=(DISABILITY,),
)
