"""Risks per household: risk codes, colour, labour capacity, listing status and evidence.

Spec: shared/spec/screening-rules.md. Each risk point is a row of `RISKS`: code, label and
a small pure function from the parameters to a polars condition over the household's
facts. The order of `RISKS` is the rule table's order, which is also the order of
`risk_codes` and of the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass

import polars as pl

from screening.facts import (
    DROPOUT_STATUS,
    HEAD_RELATION,
    MONEY,
    SUM,
    Records,
    Window,
    money,
)
from screening.params import ResolvedParams

# The roster leaves household_type empty at times; such a household is screened as an
# ordinary one (the highest medical threshold), so a missing attribute never lists anyone.
DEFAULT_HOUSEHOLD_TYPE = "一般农户"
MONITORED = "监测中"
RED, YELLOW, BLUE = "红", "黄", "蓝"
COLOUR_ORDER = (RED, YELLOW, BLUE)
STATUS_MONITORED, STATUS_NEW, STATUS_CONTINUING = "已在监测", "新增", "持续"
NO_LABOUR, WEAK_LABOUR, HAS_LABOUR = "无劳动力", "弱劳动力", "有劳动力"


@dataclass(frozen=True)
class Risk:
    code: str
    label: str
    applies: Callable[[ResolvedParams], pl.Expr]  # condition over household facts

    @property
    def flag(self) -> str:
        return f"has_{self.code.lower()}"


def medical_threshold(params: ResolvedParams) -> pl.Expr:
    by_type = params.medical_oop_threshold
    return (
        pl.col("household_type")
        .fill_null(DEFAULT_HOUSEHOLD_TYPE)
        .replace_strict(
            list(by_type),
            list(by_type.values()),
            default=money(by_type[DEFAULT_HOUSEHOLD_TYPE]),
            return_dtype=MONEY,
        )
    )


def _medical(params: ResolvedParams) -> pl.Expr:
    return pl.col("medical_oop") >= medical_threshold(params)


def _education(params: ResolvedParams) -> pl.Expr:
    return pl.col("education_cost") > money(params.education_cost_threshold)


def _dropout(params: ResolvedParams) -> pl.Expr:
    return pl.col("dropout")


def _accident(params: ResolvedParams) -> pl.Expr:
    return pl.col("accident_by_loss") | pl.col("serious_accident")


def _disability(params: ResolvedParams) -> pl.Expr:
    return pl.col("new_severe_certificate")


def _assistance(params: ResolvedParams) -> pl.Expr:
    return pl.col("assistance")


def _low_income(params: ResolvedParams) -> pl.Expr:
    # A household without an income figure is not assumed poor: it gets neither LOW_INCOME
    # nor SPENDING (the comparison is null, hence false).
    return pl.col("per_capita_income") < money(params.monitoring_line)


def _spending(params: ResolvedParams) -> pl.Expr:
    return pl.col("rigid_expenditure") > pl.col("household_income")


RISKS: tuple[Risk, ...] = (
    Risk("MEDICAL", "因病", _medical),
    Risk("EDUCATION", "因学", _education),
    Risk("DROPOUT", "辍学", _dropout),
    Risk("ACCIDENT", "因意外", _accident),
    Risk("DISABILITY", "因残", _disability),
    Risk("ASSISTANCE", "突发困难", _assistance),
    Risk("LOW_INCOME", "收入低于监测线", _low_income),
    Risk("SPENDING", "刚性支出超收入", _spending),
)
RISK_BY_CODE = {r.code: r for r in RISKS}


def _joined_where_flagged(field: str) -> pl.Expr:
    """The risks' codes or labels, in table order, joined with ';' (string concatenation
    is an order of magnitude faster than building lists per row)."""
    return pl.concat_str(
        [pl.when(pl.col(r.flag)).then(pl.lit(getattr(r, field))) for r in RISKS],
        separator=";",
        ignore_nulls=True,
    )


def colour() -> pl.Expr:
    n = pl.col("risk_codes").list.len()
    return (
        pl.when(n >= 2)
        .then(pl.lit(RED))
        .when((n == 1) & pl.col(RISK_BY_CODE["LOW_INCOME"].flag))
        .then(pl.lit(YELLOW))
        .when(n == 1)
        .then(pl.lit(BLUE))
    )


def listing_status(previous_listed: Set[str]) -> pl.Expr:
    previous = pl.Series("previous", sorted(previous_listed), dtype=pl.String).implode()
    return (
        pl.when(~pl.col("listed"))
        .then(None)
        .when(pl.col("monitoring_status") == MONITORED)
        .then(pl.lit(STATUS_MONITORED))
        .when(pl.col("household_id").is_in(previous))
        .then(pl.lit(STATUS_CONTINUING))
        .otherwise(pl.lit(STATUS_NEW))
    )


def labour_capacity() -> pl.Expr:
    """From the counts of able workers (working age, no severe disability) and of those
    among them holding a mild certificate. The spec's "grade 3–4" is read as "a grade not
    in severe_disability_grades", so the classes stay a partition if the parameter moves."""
    return (
        pl.when(pl.col("able_workers") == 0)
        .then(pl.lit(NO_LABOUR))
        .when(pl.col("weak_workers") == pl.col("able_workers"))
        .then(pl.lit(WEAK_LABOUR))
        .otherwise(pl.lit(HAS_LABOUR))
    )


def households(
    facts: pl.LazyFrame, w: Window, params: ResolvedParams, previous_listed: Set[str]
) -> pl.LazyFrame:
    """One row per household with its facts, risk flags (`has_<code>`), codes, colour and
    status. The roster repeats household attributes on every member row."""

    def total(column: str) -> pl.Expr:
        return pl.col(column).sum().cast(SUM)

    # The head (or its stand-in) is the member with the least `order`; a household
    # attribute is the head's value, else that of the first member (by row number) who
    # has one. min_by per group avoids sorting millions of rows.
    order = pl.col("head_rank").cast(pl.Int64) * (1 << 40) + pl.col("row_number")

    def from_head(column: str) -> pl.Expr:
        return pl.col(column).min_by(pl.when(pl.col(column).is_not_null()).then(order))

    per_household = facts.group_by("household_id").agg(
        head_name=pl.col("name").min_by(order),
        head_id_number=pl.col("id_number").min_by(order),
        has_head=(pl.col("relation") == HEAD_RELATION).fill_null(False).any(),
        **{c: from_head(c) for c in ("township", "village", "household_type", "monitoring_status")},
        per_capita_income=from_head("per_capita_income"),
        household_size=pl.len().cast(pl.Int64),
        medical_oop=total("medical_oop"),
        education_cost=total("education_cost"),
        accident_loss=total("accident_loss"),
        **{
            c: pl.col(c).any()
            for c in ("dropout", "serious_accident", "new_severe_certificate", "assistance")
        },
        able_workers=pl.col("able_worker").sum(),
        weak_workers=pl.col("weak_worker").sum(),
    )
    return (
        per_household.with_columns(
            period=pl.lit(w.period),
            monitoring_line=money(params.monitoring_line),
            household_income=(pl.col("per_capita_income") * pl.col("household_size")).cast(SUM),
            rigid_expenditure=(
                pl.col("medical_oop") + pl.col("education_cost") + pl.col("accident_loss")
            ).cast(SUM),
            accident_by_loss=pl.col("accident_loss") > money(params.accident_loss_threshold),
            labour_capacity=labour_capacity(),
        )
        .with_columns(*(r.applies(params).fill_null(False).alias(r.flag) for r in RISKS))
        .with_columns(
            risk_codes=_joined_where_flagged("code"),
            listed=pl.any_horizontal(*(pl.col(r.flag) for r in RISKS)),
        )
        .with_columns(
            risk_codes=pl.when(pl.col("listed"))
            .then(pl.col("risk_codes").str.split(";"))
            .otherwise(pl.lit([], dtype=pl.List(pl.String))),
            risk_labels=pl.when(pl.col("listed")).then(_joined_where_flagged("label")),
        )
        .with_columns(colour=colour())
        .with_columns(listing_status=listing_status(previous_listed))
    )


# ------------------------------------------------------------------------------ evidence


def _text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).fill_null("—")


def _from_records(
    frame: pl.LazyFrame,
    members: pl.LazyFrame,
    risk: str,
    source: str,
    keep: pl.Expr,
    amount: pl.Expr,
    detail: pl.Expr,
) -> pl.LazyFrame:
    """The records of `source` that support `risk` for the listed households having it.
    `members` (members of listed households with their household's flags) is joined
    first, so details are only written for the few records that are cited."""
    return (
        frame.join(members.filter(pl.col(RISK_BY_CODE[risk].flag)), on="id_number", how="inner")
        .filter(keep)
        .select(
            "period",
            "household_id",
            "id_number",
            "name",
            risk_code=pl.lit(risk),
            source=pl.lit(source),
            source_key="source_key",
            rule_date="rule_date",
            amount=amount.cast(SUM),
            detail=detail,
        )
    )


def evidence(hh: pl.LazyFrame, people: pl.LazyFrame, rec: Records, w: Window) -> pl.LazyFrame:
    """One row per (listed household, risk, source record) supporting that risk. A record
    supports a sum rule when it adds a positive amount; an ACCIDENT record supports the
    loss clause only when that clause fired, the injury clause when the member is of
    working age. Roster-based risks (LOW_INCOME, SPENDING) cite the household itself,
    dated end(P), when the comparison was made."""
    c = pl.col
    listed = hh.filter(c("listed"))
    members = people.select(
        "household_id", "id_number", "name", "age", "compulsory_age", "working_age"
    ).join(
        listed.select("household_id", "period", "accident_by_loss", *(r.flag for r in RISKS)),
        on="household_id",
        how="inner",
    )
    injured_worker = c("working_age") & c("serious")
    # fmt: off
    parts = [
        _from_records(
            rec.medical, members, "MEDICAL", "medical",
            keep=c("amount") > money(0),
            amount=c("amount"),
            detail=pl.concat_str(
                pl.lit("医院: "), _text(c("hospital")),
                pl.lit("; 结算 "), _text(c("rule_date")),
                pl.lit("; 自付 "), _text(c("amount")), pl.lit(" 元"),
            ),
        ),
        _from_records(
            rec.education, members, "EDUCATION", "education",
            keep=c("net_cost") > money(0),
            amount=c("net_cost"),
            detail=pl.concat_str(
                pl.lit("学校: "), _text(c("school")),
                pl.lit("; 学费 "), _text(c("tuition")),
                pl.lit(" + 住宿费 "), _text(c("accommodation")),
                pl.lit(" + 教科书费 "), _text(c("textbook")),
                pl.lit(" − 资助 "), _text(c("aid")),
                pl.lit(" = 净支出 "), _text(c("net_cost")), pl.lit(" 元"),
            ),
        ),
        _from_records(
            rec.education, members, "DROPOUT", "education",
            keep=c("compulsory_age") & c("is_latest") & (c("status") == DROPOUT_STATUS),
            amount=pl.lit(None),
            detail=pl.concat_str(
                pl.lit("学校: "), _text(c("school")),
                pl.lit("; 学段 "), _text(c("stage")),
                pl.lit("; 最新学籍状态 "), _text(c("status")),
                pl.lit("; "), _text(c("age")), pl.lit(" 周岁"),
            ),
        ),
        _from_records(
            rec.traffic, members, "ACCIDENT", "traffic",
            keep=(c("accident_by_loss") & (c("net_loss") > money(0))) | injured_worker,
            amount=c("net_loss"),
            detail=pl.concat_str(
                pl.when(injured_worker).then(pl.lit("劳动年龄成员, ")).otherwise(pl.lit("")),
                pl.lit("伤情 "), _text(c("injury")),
                pl.lit("; 直接损失 "), _text(c("direct_loss")),
                pl.lit(" − 已获赔偿 "), _text(c("compensation")),
                pl.lit(" = 净损失 "), _text(c("net_loss")), pl.lit(" 元"),
            ),
        ),
        _from_records(
            rec.certificates, members, "DISABILITY", "disability",
            keep=c("in_window") & c("severe"),
            amount=pl.lit(None),
            detail=pl.concat_str(
                pl.lit("残疾证 "), _text(c("grade")), pl.lit(" 级 "),
                _text(c("disability_type")), pl.lit("; 发证 "), _text(c("rule_date")),
            ),
        ),
        _from_records(
            rec.civil, members, "ASSISTANCE", "civil",
            keep=c("qualifies"),
            amount=c("amount"),
            detail=pl.concat_str(
                pl.lit("民政: "), _text(c("assistance_type")), pl.lit(" "), _text(c("event")),
                pl.lit("; 金额 "), _text(c("amount")), pl.lit(" 元"),
            ),
        ),
        _roster_evidence(
            listed, "LOW_INCOME", w,
            amount=c("per_capita_income"),
            detail=pl.concat_str(
                pl.lit("人均纯收入 "), _text(c("per_capita_income")),
                pl.lit(" < 监测标准 "), _text(c("monitoring_line")),
            ),
        ),
        _roster_evidence(
            listed, "SPENDING", w,
            amount=c("rigid_expenditure"),
            detail=pl.concat_str(
                pl.lit("刚性支出 "), _text(c("rigid_expenditure")),
                pl.lit(" (医疗 "), _text(c("medical_oop")),
                pl.lit(" + 教育 "), _text(c("education_cost")),
                pl.lit(" + 意外 "), _text(c("accident_loss")),
                pl.lit(") > 家庭年收入 "), _text(c("household_income")),
                pl.lit(" (人均 "), _text(c("per_capita_income")),
                pl.lit(" × "), _text(c("household_size")), pl.lit(" 人)"),
            ),
        ),
    ]
    # fmt: on
    risk_rank = c("risk_code").replace_strict(
        [r.code for r in RISKS], list(range(len(RISKS))), return_dtype=pl.Int32
    )
    return pl.concat(parts, how="vertical").sort(
        "household_id", risk_rank, "rule_date", "source", "source_key", "id_number", nulls_last=True
    )


def _roster_evidence(
    listed: pl.LazyFrame, risk: str, w: Window, amount: pl.Expr, detail: pl.Expr
) -> pl.LazyFrame:
    return listed.filter(pl.col(RISK_BY_CODE[risk].flag)).select(
        "period",
        "household_id",
        id_number="head_id_number",
        name="head_name",
        risk_code=pl.lit(risk),
        source=pl.lit("roster"),
        source_key="household_id",
        rule_date=pl.lit(w.end),
        amount=amount.cast(SUM),
        detail=detail,
    )
