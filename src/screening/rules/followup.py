"""Dynamic management (动态管理): what the townships' decisions and the earlier periods change.

Spec: docs/screening-rules.md "Listing status" (the refinement by verification
results) and issue #8. The list is the start of a loop: townships verify the listed
households and send back 确认纳入 / 不予纳入 / 待核实 (feedback/imports.py stores them); the
next period's list builds on those decisions; monitored households whose risk is gone are
proposed for risk removal (风险消除); and the run report checks the list's scale.

The functions over frames are pure (tests call them with small frames); the `load_*`
functions read what they need for one period through the database layer (db/followup.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from screening import tables
from screening.db import followup as db_followup
from screening.params import ResolvedParams
from screening.periods import previous_period
from screening.rules import RISK_BY_CODE
from screening.vocab import (
    CONFIRMED,
    DECLINED,
    MONITORED,
    MONITORED_TYPE,
    NO_LABOUR,
    POVERTY_EXITED,
    STATUS_CONFIRMED,
    STATUS_MONITORED,
    STATUS_NEW,
)

# The household types the scale check counts as its base (Hubei: the registered poor).
SCALE_BASE_TYPES = (POVERTY_EXITED, MONITORED_TYPE)

DECISIONS_SCHEMA = pl.Schema(
    {
        "household_id": pl.String(),
        "decision": pl.String(),
        "decision_date": pl.Date(),
        "decision_period": pl.String(),  # the list the decision was made on
        # The risk codes the household had on that list (null: not stored).
        "decision_codes": pl.List(pl.String()),
    }
)
PRIOR_SCHEMA = pl.Schema(
    {
        "household_id": pl.String(),
        "clear_periods": pl.UInt32(),  # of `prior_periods`, screened without any risk
        "last_risk_period": pl.String(),  # the latest earlier period with a risk
        "last_risk_codes": pl.List(pl.String()),
        "last_risk_labels": pl.String(),
    }
)
# Each household's latest answer on an earlier 风险消除候选 list (同意消除 / 暂不消除).
REMOVALS_SCHEMA = pl.Schema(
    {
        "household_id": pl.String(),
        "last_removal_decision": pl.String(),
        "last_removal_decision_date": pl.Date(),
    }
)
CANDIDATES_SCHEMA = tables.schema("removal_candidates")
SCALE_SCHEMA = tables.schema("scale_checks")


@dataclass(frozen=True)
class Followup:
    """What earlier periods leave for the screening of P."""

    decisions: pl.DataFrame  # DECISIONS_SCHEMA: each household's latest decision
    prior: pl.DataFrame  # PRIOR_SCHEMA: per household, its earlier screened periods
    prior_periods: tuple[str, ...]  # the screened periods before P that the removal check uses
    # REMOVALS_SCHEMA: each household's latest answer on an earlier 风险消除候选 list.
    removals: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REMOVALS_SCHEMA))

    @staticmethod
    def none() -> Followup:
        return Followup(
            pl.DataFrame(schema=DECISIONS_SCHEMA), pl.DataFrame(schema=PRIOR_SCHEMA), ()
        )


# ---------------------------------------------------------------- listing status


def apply_decisions(
    households: pl.DataFrame, evidence: pl.DataFrame, decisions: pl.DataFrame
) -> pl.DataFrame:
    """The households with their listing refined by the latest decisions (first match wins):
    已在监测; 已确认待录入 for 确认纳入; not listed for 不予纳入 unless a risk event is dated
    after the decision, or the household now has a risk code the list it was declined on
    did not show — then 新增. 待核实 changes nothing.

    A risk event is a department record cited in the evidence of one of its risks (SPENDING
    cites every bill of its sums). The roster figures (LOW_INCOME, SPENDING's income line,
    INCOME_DROP) are states, not events, and the relief breakdown supports no risk: they
    bring a household back only as a new risk code. Where the codes of the list decided on
    are not stored (decision_codes null), only an event can.

    Adds `last_decision`, `last_decision_date`, `last_decision_period` and
    `last_decision_codes`.
    """
    latest_event = (
        evidence.filter(
            (pl.col("source") != "roster") & pl.col("risk_code").is_in(list(RISK_BY_CODE))
        )
        .group_by("household_id")
        .agg(latest_event=pl.col("rule_date").max())
    )
    joined = households.join(
        decisions.rename(
            {
                "decision": "last_decision",
                "decision_date": "last_decision_date",
                "decision_period": "last_decision_period",
                "decision_codes": "last_decision_codes",
            }
        ),
        on="household_id",
        how="left",
    ).join(latest_event, on="household_id", how="left")
    monitored = pl.col("monitoring_status") == MONITORED
    declined = pl.col("last_decision") == DECLINED
    newer = (pl.col("latest_event") > pl.col("last_decision_date")).fill_null(False)
    new_code = (
        pl.col("risk_codes").list.set_difference(pl.col("last_decision_codes")).list.len() > 0
    ).fill_null(False)
    back = newer | new_code
    hidden = pl.col("listed") & ~monitored.fill_null(False) & declined.fill_null(False) & ~back
    return (
        joined.with_columns(hidden=hidden)
        .with_columns(
            listing_status=pl.when(~pl.col("listed") | pl.col("hidden"))
            .then(None)
            .when(monitored)
            .then(pl.lit(STATUS_MONITORED))
            .when(pl.col("last_decision") == CONFIRMED)
            .then(pl.lit(STATUS_CONFIRMED))
            .when(declined)
            .then(pl.lit(STATUS_NEW))
            .otherwise(pl.col("listing_status")),
            listed=pl.col("listed") & ~pl.col("hidden"),
        )
        .drop("hidden", "latest_event")
    )


# ---------------------------------------------------------------- risk removal


def removal_candidates(
    households: pl.DataFrame, followup: Followup, params: ResolvedParams, run_id: str = ""
) -> pl.DataFrame:
    """Monitored households proposed for risk removal (风险消除候选): no risk in this period
    nor in each of the earlier screened periods the check needs, per-capita income at or
    above the line, and labour (a household without labour is never proposed)."""
    needed = params.risk_removal_clear_periods - 1
    if len(followup.prior_periods) < needed:
        return pl.DataFrame(schema=CANDIDATES_SCHEMA)
    earlier = sorted(followup.prior_periods)[len(followup.prior_periods) - needed :]
    checked = [*earlier, params.period]
    frame = (
        households.join(followup.prior, on="household_id", how="left").join(
            followup.removals, on="household_id", how="left"
        )
    ).filter(
        (pl.col("monitoring_status") == MONITORED)
        & (pl.col("risk_codes").list.len() == 0)
        & (pl.col("per_capita_income") >= pl.col("monitoring_line"))
        & (pl.col("labour_capacity") != NO_LABOUR)
        & (pl.col("clear_periods").fill_null(0) >= needed)
    )
    return (
        frame.with_columns(
            periods_checked=pl.lit("、".join(checked)),
            run_id=pl.lit(run_id),
        )
        .sort("township", "village", "household_id")
        .select(pl.col(k).cast(t) for k, t in CANDIDATES_SCHEMA.items())
    )


# ---------------------------------------------------------------- scale check


def scale(households: pl.DataFrame) -> pl.DataFrame:
    """Per township, then the county (township null): listed households as a share of the
    roster's households and of its 脱贫户 + 监测户."""

    def counts(frame: pl.LazyFrame, by: list[str]) -> pl.LazyFrame:
        aggs = [
            pl.len().cast(pl.Int64).alias("roster_households"),
            pl.col("household_type")
            .is_in(SCALE_BASE_TYPES)
            .sum()
            .cast(pl.Int64)
            .alias("base_households"),
            pl.col("listed").sum().cast(pl.Int64).alias("listed"),
        ]
        return frame.group_by(by).agg(aggs) if by else frame.select(aggs)

    lazy = households.lazy()
    period = households["period"][0] if households.height else None
    per_township = counts(lazy, ["township"]).sort("township")
    county = counts(lazy, []).with_columns(township=pl.lit(None, pl.String))
    frame = pl.concat([per_township, county.select(per_township.collect_schema().names())])
    return (
        frame.with_columns(
            period=pl.lit(period, pl.String),
            share_of_roster=_share("listed", "roster_households"),
            share_of_base=_share("listed", "base_households"),
        )
        .select(pl.col(k).cast(t) for k, t in SCALE_SCHEMA.items())
        .collect()
    )


def _share(part: str, whole: str) -> pl.Expr:
    return pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole))


def scale_warnings(scale_rows: pl.DataFrame, params: ResolvedParams) -> list[str]:
    """At most two lines, one per direction: the townships (and the county) whose list is
    above the ceiling, and those below half the expected share, of 脱贫户 + 监测户, the
    furthest named first. The figures of every township are in the run report's table;
    the check is about the data and the thresholds, never a cap on a list."""
    low, high = params.scale_check.expected_share / 2, params.scale_check.ceiling
    above: list[dict[str, Any]] = []
    below: list[dict[str, Any]] = []
    for row in scale_rows.iter_rows(named=True):
        share = row["share_of_base"]
        if share is not None and share > high:
            above.append(row)
        elif share is not None and share < low:
            below.append(row)
    warnings = []
    if above:
        who, detail = _named(above, reverse=True)
        warnings.append(
            f"规模偏大 (list large)：{who}的疑似监测户占脱贫户和监测户的比例高于参考上限 "
            f"{high:.0%}（{detail}），请检查部门数据和筛查标准；各乡镇数字见报告的乡镇表，"
            "规模校验不限制名单"
        )
    if below:
        who, detail = _named(below, reverse=False)
        warnings.append(
            f"规模偏小 (list unusually small)：{who}的疑似监测户占脱贫户和监测户的比例低于预期 "
            f"{params.scale_check.expected_share:.0%} 的一半（{detail}），请检查部门数据是否"
            "缺失；各乡镇数字见报告的乡镇表"
        )
    return warnings


_NAMED = 3  # townships named in a scale warning; the others are counted


def _named(rows: list[dict[str, Any]], reverse: bool) -> tuple[str, str]:
    """('8 个乡镇和全县', '石门镇 75.0%、龙潭镇 57.9%、青山乡 56.2% 等；全县 45.2%'): the
    furthest townships first."""
    towns = sorted(
        (r for r in rows if r["township"] is not None),
        key=lambda r: r["share_of_base"],
        reverse=reverse,
    )
    county = [f"全县 {r['share_of_base']:.1%}" for r in rows if r["township"] is None]
    who = "和".join([*([f"{len(towns)} 个乡镇"] if towns else []), *(["全县"] if county else [])])
    shown = "、".join(f"{r['township']} {r['share_of_base']:.1%}" for r in towns[:_NAMED])
    more = " 等" if len(towns) > _NAMED else ""
    return who, "；".join([*([shown + more] if towns else []), *county])


# ---------------------------------------------------------------- overdue verifications


def due_date(published: dt.date, params: ResolvedParams) -> dt.date:
    """The last day a township's answer is on time: the time limit's working days counted
    from the day after publication (weekends and the listed holidays are not working days)."""
    return (
        pl.select(
            pl.lit(published).dt.add_business_days(
                params.verification_time_limit,
                holidays=list(params.public_holidays),
                # Published on a weekend or holiday: the first working day after it is day 1.
                roll="backward",
            )
        )
        .to_series()
        .item()
    )


def load_overdue(
    con: duckdb.DuckDBPyConnection, period: str, as_of: dt.date, params: ResolvedParams
) -> pl.DataFrame:
    """Per township, the households of the previous period's list (新增 / 持续 / re-listed:
    those waiting for a verification) that have no answer although the time limit after
    that list's publication has passed on `as_of`."""
    empty = pl.DataFrame(schema={"township": pl.String, "overdue": pl.Int64, "due": pl.Date})
    previous = previous_period(period)
    published = db_followup.county_list_published(con, previous)
    if published is None:
        return empty
    due = due_date(published, params)
    if as_of <= due:
        return empty
    return db_followup.unanswered(con, previous, due)


def load(con: duckdb.DuckDBPyConnection, period: str, params: ResolvedParams) -> Followup:
    """The decisions made on earlier periods' lists and the earlier screened periods."""
    count = params.risk_removal_clear_periods - 1
    return Followup(
        decisions=load_decisions(con, period),
        prior=load_prior(con, period, count),
        prior_periods=tuple(db_followup.screened_before(con, period, count)),
        removals=db_followup.latest_removal_decisions(con, period).select(
            pl.col(k).cast(t) for k, t in REMOVALS_SCHEMA.items()
        ),
    )


def load_decisions(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """Each household's latest current decision on a list before `period`
    (`db_followup.latest_decisions`)."""
    frame = db_followup.latest_decisions(con, period)
    return frame.select(pl.col(k).cast(t) for k, t in DECISIONS_SCHEMA.items())


def load_prior(con: duckdb.DuckDBPyConnection, period: str, count: int) -> pl.DataFrame:
    """Per household, its screened periods before `period`, of which the latest `count`
    are those the removal check counts."""
    periods = db_followup.screened_before(con, period, count)
    frame = db_followup.prior_outcomes(con, period, periods)
    return frame.select(pl.col(k).cast(t) for k, t in PRIOR_SCHEMA.items())
