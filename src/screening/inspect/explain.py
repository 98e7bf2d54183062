"""Why a household is (or is not) listed for a period, for `screening explain`.

Nothing here decides anything new. `explain` re-screens one household with the screening
code itself (the database's as-of reads → facts → risks → screen) and the parameters the
period's run recorded, so its answer is the run's answer. Functions return data;
the command line renders it, masking ID numbers with `mask_text`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from screening import contract, ids, params, vocab
from screening.db import inspect as db_inspect
from screening.db import linkage as db_linkage
from screening.db import roster as db_roster
from screening.inspect.base import (
    ExplainError,
    RunRecord,
    latest_run,
    require_tables,
    run_parameters,
)
from screening.inspect.finding import Found, elsewhere, find_household
from screening.periods import check_period, previous_period
from screening.rules import EVENT_DEPARTMENTS, RISK_BY_CODE, RISKS, facts, followup, relief, screen
from screening.rules.base import ExplainContext, Window, window, yuan

MEMBER_COLUMNS = [
    "id_number",
    "name",
    "relation",
    "age",
    "compulsory_age",
    "working_age",
    "disability_grade",
    "medical_oop",
    "education_cost",
    "accident_loss",
    "able_worker",
    "weak_worker",
]
RECORD_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "id_number": pl.String(),
    "name": pl.String(),
    "source_key": pl.String(),
    "rule_date": pl.Date(),
    "amount": vocab.SUM,
    "detail": pl.String(),
    "position": pl.String(),  # before / in / after the window
    "supports": pl.String(),  # risk codes the record is evidence for, ';'-joined
}
BEFORE, IN, AFTER = "before", "in", "after"


@dataclass(frozen=True)
class RuleCheck:
    """One risk point of screening-rules.md as the household met it (or did not)."""

    code: str
    label: str
    fired: bool
    saw: str  # the facts the rule looked at
    test: str  # the condition, with the parameter values in force
    evidence: pl.DataFrame  # the records supporting it (EVIDENCE_SCHEMA), empty if not fired


@dataclass(frozen=True)
class Explanation:
    period: str
    found: Found
    household: dict[str, Any]  # the household's row as screened (screen.HOUSEHOLDS_SCHEMA)
    members: pl.DataFrame  # MEMBER_COLUMNS, head first
    rules: list[RuleCheck]
    evidence: pl.DataFrame  # every evidence row (screen.EVIDENCE_SCHEMA)
    records: pl.DataFrame  # every department record of the members (RECORD_SCHEMA)
    window: Window
    params: params.ResolvedParams
    params_origin: str
    roster_period: str
    run: RunRecord
    previously_listed: bool
    stored: dict[str, Any] | None  # the household's row in `suspects` for the period
    colour_reason: str
    status_reason: str
    notes: list[str]
    history: pl.DataFrame  # household_history rows of the household, every screened period
    removal_candidate: bool  # proposed for risk removal in the period
    # Months before P → the period of the roster snapshot in force then (None: none stored).
    earlier_rosters: dict[int, str | None]
    relief: str | None  # the relief estimate and its parts; None while it is off
    # Department records linked to members by a confirmed 身份核对 answer (confirmed_links),
    # and the period's suggestions naming a member still unanswered (link_suggestions).
    linked: pl.DataFrame = field(default_factory=pl.DataFrame)
    suggested: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def listed(self) -> bool:
        return bool(self.household["listed"])


def explain(con: duckdb.DuckDBPyConnection, key: str, period: str) -> Explanation:
    """Why the household `key` (household id or a member's ID number) is or is not listed
    for `period`, recomputed from the database's inputs as of the period."""
    check_period(period)
    require_tables(con)
    run = latest_run(con, period)
    resolved, origin = run_parameters(period, run)
    roster_period = db_roster.roster_period(con, period)
    if roster_period is None:
        raise ExplainError(f"截至 {period} 没有收到人口库 no roster received at or before {period}")
    # The households the key names (as finding.find_household reads it) first; the whole
    # roster only when none is found, for the nearest household ids in the message.
    id_number = ids.normalise(key.strip())
    roster = db_roster.population(con, period, [key.strip(), *([id_number] if id_number else [])])
    try:
        try:
            found = find_household(roster, key, period)
        except ExplainError:
            find_household(db_roster.population(con, period), key, period)
            raise
    except ExplainError as exc:
        raise ExplainError(f"{exc}{elsewhere(con, key)}") from None
    population = roster.filter(pl.col("household_id") == found.household_id)
    member_ids = population["id_number"].to_list()
    specs = contract.load()
    events = {
        d.source: db_roster.events_as_of(con, specs[d.source], period, member_ids).lazy()
        for d in EVENT_DEPARTMENTS
    }
    earlier_rosters = db_roster.earlier_rosters(
        con, facts.earlier_periods(period), [found.household_id]
    )
    inputs = screen.ScreenInputs(
        population=population.lazy(),
        events=events,
        earlier_rosters={m: frame.lazy() for m, frame in earlier_rosters.items()},
    )
    was_listed = (
        db_inspect.stored_suspect(con, previous_period(period), found.household_id) is not None
    )
    previous = frozenset({found.household_id}) if was_listed else frozenset()
    earlier = followup.load(con, period, resolved)
    mine = pl.col("household_id") == found.household_id
    earlier = followup.Followup(
        earlier.decisions.filter(mine), earlier.prior.filter(mine), earlier.prior_periods
    )
    result = screen.screen(inputs, period, resolved, previous, earlier=earlier)
    household = result.households.row(0, named=True)
    w = window(period, resolved.window_months)
    members, in_window = _member_facts(inputs, w, resolved)
    records = _records(inputs, w, resolved, result.evidence, members)
    stored = db_inspect.stored_suspect(con, period, found.household_id)
    return Explanation(
        period=period,
        found=found,
        household=household,
        members=members.select(MEMBER_COLUMNS),
        rules=rule_checks(household, members, in_window, resolved, result.evidence),
        evidence=result.evidence,
        records=records,
        window=w,
        params=resolved,
        params_origin=origin,
        roster_period=roster_period,
        run=run,
        previously_listed=was_listed,
        stored=stored,
        colour_reason=_colour_reason(household),
        status_reason=_status_reason(household, previous_period(period), was_listed),
        notes=_notes(household, stored, run),
        history=db_inspect.history(con, found.household_id),
        removal_candidate=result.candidates.height > 0,
        earlier_rosters={
            months: db_roster.roster_period(con, at)
            for months, at in facts.earlier_periods(period).items()
        },
        relief=_relief_reason(household, result.evidence, resolved),
        linked=db_linkage.links_of(con, member_ids),
        suggested=db_linkage.open_suggestions_of(con, period, member_ids),
    )


def _member_facts(
    inputs: screen.ScreenInputs, w: Window, resolved: params.ResolvedParams
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Each member's facts (facts.person_facts, as the rules saw them) and the records in
    reach by source (the window; certificates issued up to end(P))."""
    people, rec = screen.people_and_records(inputs, w, resolved)
    per_person = facts.person_facts(people, rec, resolved).sort("head_rank", "row_number")
    frames = pl.collect_all([per_person, *rec.values()])
    return frames[0], dict(zip(rec, frames[1:], strict=True))


def _records(
    inputs: screen.ScreenInputs,
    w: Window,
    resolved: params.ResolvedParams,
    evidence: pl.DataFrame,
    members: pl.DataFrame,
) -> pl.DataFrame:
    """Every record of the members delivered by P, whatever its date, prepared as the rules
    prepare them but with an unbounded window, with where it lies relative to W and what
    it supports."""
    everything = Window(w.period, dt.date(1, 1, 1), dt.date(9999, 12, 31))
    rec = facts.records(inputs.all_events(), everything, resolved)
    c = pl.col
    parts = [
        facts.mark_linked(
            rec[d.source].select(
                "id_number",
                "source_key",
                "rule_date",
                source=pl.lit(d.source),
                amount=(d.listing_amount if d.listing_amount is not None else pl.lit(None)).cast(
                    vocab.MONEY
                ),
                detail=d.listing_detail if d.listing_detail is not None else pl.lit(None),
            ),
            rec.linked_keys(d.source),
        )
        for d in EVENT_DEPARTMENTS
    ]
    supports = (
        evidence.group_by("source", "source_key", "id_number")
        .agg(supports=pl.col("risk_code").unique(maintain_order=True).str.join(";"))
        .lazy()
    )
    position = (
        pl.when(c("rule_date") < pl.lit(w.start))
        .then(pl.lit(BEFORE))
        .when(c("rule_date") > pl.lit(w.end))
        .then(pl.lit(AFTER))
        .otherwise(pl.lit(IN))
    )
    names = members.select("id_number", "name").lazy()
    frame = (
        pl.concat(parts, how="diagonal")
        .join(names, on="id_number", how="left")
        .join(supports, on=["source", "source_key", "id_number"], how="left")
        .with_columns(position=position)
        .sort("rule_date", "source", "source_key", nulls_last=True)
        .collect()
    )
    return frame.select(pl.col(n).cast(t) for n, t in RECORD_SCHEMA.items())


# ---------------------------------------------------------------- explain: the rules


def rule_checks(
    household: Mapping[str, Any],
    members: pl.DataFrame,
    in_window: Mapping[str, pl.DataFrame],
    resolved: params.ResolvedParams,
    evidence: pl.DataFrame,
) -> list[RuleCheck]:
    """Every risk point in the rule table's order, with what it saw and its test (each
    risk point's own explain text). Whether it fired is the screening's answer (the
    household's risk codes), never re-decided."""
    fired = set(household["risk_codes"] or [])
    context = ExplainContext(household, members, in_window, resolved)
    checks = []
    for r in RISKS:
        saw, test = r.explain(context)
        checks.append(
            RuleCheck(
                code=r.code,
                label=r.label,
                fired=r.code in fired,
                saw=saw,
                test=test,
                evidence=evidence.filter(pl.col("risk_code") == r.code),
            )
        )
    return checks


def _colour_reason(hh: Mapping[str, Any]) -> str:
    codes = list(hh["risk_codes"] or [])
    if not codes:
        return "没有任何风险点成立，不列入 (no risk point applies: not listed)"
    labels = "、".join(RISK_BY_CODE[c].label for c in codes if c in RISK_BY_CODE)
    if len(codes) >= 2:
        return f"{len(codes)} 项风险（{labels}）→ 红"
    if codes == ["LOW_INCOME"]:
        return f"仅 1 项风险且为收入低于监测线（{labels}）→ 黄"
    return f"仅 1 项风险（{labels}）→ 蓝"


def _relief_reason(
    hh: Mapping[str, Any], evidence: pl.DataFrame, resolved: params.ResolvedParams
) -> str | None:
    """The estimate, and which kinds and members it comes from (the evidence's RELIEF rows
    hold each breakdown)."""
    if not relief.enabled(resolved) or hh["relief_estimate"] is None:
        return None
    rows = evidence.filter(pl.col("risk_code") == relief.CODE)
    kind = {k.source: k for k in relief.KINDS}
    parts = [
        f"{kind[r['source']].label} {r['name'] if kind[r['source']].per_person else '全户'} "
        f"{yuan(r['amount'])} 元"
        for r in rows.iter_rows(named=True)
    ]
    total = f"{relief.LABEL} {yuan(hh['relief_estimate'])} 元"
    if not parts:
        return f"{total}（没有一项达到起付线）"
    return f"{total}（{'；'.join(parts)}；明细见依据 see the evidence）"


def _status_reason(hh: Mapping[str, Any], previous: str, was_listed: bool) -> str:
    status = hh["listing_status"]
    decision, day = hh.get("last_decision"), hh.get("last_decision_date")
    decided = f"乡镇 {day} 核实为「{decision}」（{hh.get('last_decision_period')} 期名单）"
    if status is None:
        if hh["risk_codes"] and decision == vocab.DECLINED:
            return (
                f"{decided}，此后没有新的部门风险记录，也没有该名单未显示的风险点 → 不再列入 "
                "kept off the list"
            )
        return "未列入 not listed"
    if status == vocab.STATUS_MONITORED:
        return f"户籍表监测状态为 {vocab.MONITORED} → {status}"
    if status == vocab.STATUS_CONFIRMED:
        return f"{decided}，户籍表尚未显示 {vocab.MONITORED} → {status}"
    if decision == vocab.DECLINED:
        shown = hh.get("last_decision_codes")
        new = [c for c in hh["risk_codes"] or [] if shown is not None and c not in shown]
        if new:
            labels = "、".join(RISK_BY_CODE[c].label for c in new if c in RISK_BY_CODE)
            return f"{decided}，但现在有该名单未显示的风险点（{labels}）→ {status}"
        return f"{decided}，但此后又有部门风险记录 → {status}"
    if was_listed:
        return f"{previous} 已列入名单 → {status}"
    return f"{previous} 未列入名单 → {status}"


def _notes(hh: Mapping[str, Any], stored: Mapping[str, Any] | None, run: RunRecord) -> list[str]:
    """Where the recomputation and the stored list disagree: data changed after the run."""
    now = (hh["colour"], sorted(hh["risk_codes"] or []), hh["listing_status"])
    then = (
        (stored["colour"], sorted(stored["risk_codes"] or []), stored["listing_status"])
        if stored
        else (None, [], None)
    )
    if now == then:
        return []
    was = f"{then[0]} {'、'.join(then[1])} {then[2]}" if stored else "未列入"
    return [
        f"数据库名单（run {run.run_id}）为：{was}；按当前数据重算结果不同，"
        "可能在该次运行后重新入库了数据，请重新运行本期 "
        "(the stored list differs from a recomputation on the current data: re-run the period)"
    ]
