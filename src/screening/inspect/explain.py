"""Read-only answers from the database for an officer: why a household is (or is not)
listed, which rows were set aside and why, and what a period's run did.

Nothing here decides anything new. `explain` re-screens one household with the screening
code itself (store's as-of reads → facts → risks → screen) and the parameters the period's
run recorded, so its answer is the run's answer; the rest reads the tables the run wrote.
Functions return data; `cli.py` renders it, masking ID numbers with `mask_text`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import duckdb
import polars as pl

from screening import contract, ids, params, vocab
from screening.db import deliveries as db_deliveries
from screening.db import roster as db_roster
from screening.periods import check_period, previous_period
from screening.publish import report
from screening.rules import EVENT_DEPARTMENTS, RISK_BY_CODE, RISKS, facts, followup, screen
from screening.rules.base import ExplainContext, Window, window


class ExplainError(Exception):
    """A question the database cannot answer (unknown household, a period never screened);
    the message is the one line the user sees, with ID numbers masked."""


# ---------------------------------------------------------------- masking


def id_columns(spec: contract.SourceSpec) -> set[str]:
    """Columns holding an ID number: the `id` columns and the certificate number."""
    found = {key for key, col in spec.columns.items() if col.type == "id"}
    if spec.id_from_certificate:
        found.add(spec.id_from_certificate)
    return found


def mask_raw_value(spec: contract.SourceSpec | None, column: str, raw: str | None) -> str | None:
    """A quarantined cell as it may be shown. A raw ID cell is masked whatever its form
    (it failed to parse, so it need not look like an ID); a duplicate key's value is the
    key's columns joined with '|', masked part by part."""
    if raw is None:
        return None
    secret = id_columns(spec) if spec else set()
    columns = column.split("+")
    if len(columns) > 1:
        parts = raw.split("|")
        if len(parts) != len(columns):
            return ids.mask(raw) if secret & set(columns) else ids.mask_text(raw)
        return "|".join(
            ids.mask(p) if c in secret else ids.mask_text(p)
            for c, p in zip(columns, parts, strict=True)
        )
    return ids.mask(raw) if column in secret else ids.mask_text(raw)


# ---------------------------------------------------------------- database and runs


def scalar(con: duckdb.DuckDBPyConnection, sql: str, args: list[object] | None = None) -> Any:
    """The first value of a query. fetchall, not fetchone: DuckDB 2 refuses further
    queries on a connection whose last result was not read to the end."""
    rows = con.execute(sql, args or []).fetchall()
    return rows[0][0] if rows else None


OUTPUT_TABLES = ("runs", "suspects", "evidence", "quarantine", "ingest_log", "match_rates")


def require_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A database some other program made (or an empty file) says so in one line."""
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")
    missing = set(OUTPUT_TABLES) - {r[0] for r in rows.fetchall()}
    if missing:
        raise ExplainError(
            f"数据库中还没有筛查结果 the database has no screening results (no table "
            f"{sorted(missing)[0]}); run `screening run` first"
        )


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    period: str
    township: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    parameters: str | None  # the JSON the run recorded


def successful_runs(con: duckdb.DuckDBPyConnection, period: str) -> list[RunRecord]:
    """The period's successful runs, latest first."""
    rows = con.execute(
        "SELECT run_id, period, township, started_at, finished_at, parameters::VARCHAR "
        "FROM runs WHERE period = ? AND status = 'success' "
        "ORDER BY finished_at DESC NULLS LAST, started_at DESC, run_id DESC",
        [period],
    ).fetchall()
    return [RunRecord(*row) for row in rows]


def screened_periods(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT period FROM runs WHERE status = 'success' ORDER BY period"
    ).fetchall()
    return [r[0] for r in rows]


def latest_run(con: duckdb.DuckDBPyConnection, period: str) -> RunRecord:
    """The latest successful run of the period; a period never screened is an error."""
    runs = successful_runs(con, period)
    if not runs:
        done = screened_periods(con)
        listed = f"screened periods: {', '.join(done)}" if done else "no period screened yet"
        raise ExplainError(
            f"{period} 期尚未在此数据库中筛查 period {period} was never screened in this "
            f"database ({listed}); run `screening run --period {period}` first"
        )
    return runs[0]


def run_parameters(period: str, run: RunRecord | None) -> tuple[params.ResolvedParams, str]:
    """The parameter values the run recorded, resolved again for the period (so the stale
    line warning comes back too), and where they came from. Without a usable record: the
    shipped defaults."""
    recorded = _recorded_values(run.parameters if run else None)
    if run is not None and recorded:
        origin = f"run {run.run_id}"
        try:
            return params.load().override(recorded, origin=origin).at(period), origin
        except params.ParameterError:
            pass  # a record this version cannot read: say so through the origin below
    defaults = "parameters/default.yaml (默认参数; no usable parameters recorded by a run)"
    return params.load().at(period), defaults


def _recorded_values(text: str | None) -> dict[str, Any]:
    """runs.parameters ({name: {value, effective}}) → override form {name: {date: value}}."""
    if not text:
        return {}
    try:
        recorded = json.loads(text)
    except json.JSONDecodeError:
        return {}
    if not isinstance(recorded, dict):
        return {}
    values: dict[str, Any] = {}
    for name, entry in recorded.items():
        if isinstance(entry, Mapping) and "value" in entry and "effective" in entry:
            value = entry["value"]
            if entry.get("reference"):
                value = {"value": value, "reference": entry["reference"]}
            values[name] = {entry["effective"]: value}
        else:
            values[name] = entry  # a bare value: in force throughout
    return values


# ---------------------------------------------------------------- explain: finding the household


@dataclass(frozen=True)
class Found:
    household_id: str
    by: str  # "household_id" or "id_number"
    id_number: str | None  # the member asked about, when found by ID number


def find_household(roster: pl.DataFrame, key: str, period: str) -> Found:
    """A household ID, or a member's ID number in any messy form (full-width, 15 digits,
    apostrophe …), on the roster in force at `period`."""
    text = key.strip()
    id_number = ids.normalise(text)
    if id_number is not None:
        hit = roster.filter(pl.col("id_number") == id_number)
        if hit.height:
            return Found(hit["household_id"][0], "id_number", id_number)
    if roster.filter(pl.col("household_id") == text).height:
        return Found(text, "household_id", None)
    if id_number is not None:
        raise ExplainError(
            f"身份证号 {ids.mask(id_number)} 不在 {period} 期适用的人口库中 ID number is on no "
            f"household of the roster in force for {period}"
        )
    # A mistyped ID number, not a household id (those have 16 digits).
    if ids.names_id(ids.clean(text)):
        raise ExplainError(
            f"{ids.mask(ids.clean(text))} 不是有效的身份证号（校验码或出生日期不对），也不是户编号 "
            "not a valid ID number (check digit or birth date) and no household has that id"
        )
    households = roster["household_id"].unique().sort().to_list()
    close = difflib.get_close_matches(text, households, n=3, cutoff=0.6)
    hint = (
        f"; 最接近的户编号 nearest household ids: {ids.mask_text(', '.join(close))}"
        if close
        else ""
    )
    raise ExplainError(
        f"{ids.mask_text(text)!r} 既不是户编号，也不是 {period} 期人口库中的身份证号或姓名 "
        f"is neither a household id, an ID number nor a name on the roster in force for "
        f"{period}{hint}"
    )


def looks_like_name(key: str) -> bool:
    """A key with no digit in it is a person's name, not a 户编号 or an ID number."""
    return bool(key.strip()) and not any(ch.isdigit() for ch in ids.fold_width(key))


def people_named(con: duckdb.DuckDBPyConnection, name: str, period: str) -> pl.DataFrame:
    """Members of the roster in force at `period` called `name` (or, when nobody is, whose
    name contains it), with their household: for an officer who only has a name to choose
    the household from. Full ID numbers: the caller masks them."""
    check_period(period)
    require_tables(con)
    roster = db_roster.population(con, period)
    if roster.height == 0:
        raise ExplainError(f"截至 {period} 没有收到人口库 no roster received at or before {period}")
    wanted = unicodedata.normalize("NFKC", name).strip()
    names = pl.col("name").str.normalize("NFKC").str.strip_chars()
    found = roster.filter(names == wanted)
    if found.height == 0:
        found = roster.filter(names.str.contains(wanted, literal=True))
    heads = (
        roster.filter(pl.col("relation") == "户主")
        .select("household_id", pl.col("name").alias("head_name"))
        .unique("household_id", keep="first")
    )
    return (
        found.join(heads, on="household_id", how="left")
        .select("name", "relation", "id_number", "household_id", "head_name", "township",
                "village")
        .sort("township", "village", "household_id", "name")
    )  # fmt: skip


def _elsewhere(con: duckdb.DuckDBPyConnection, key: str) -> str:
    """Where else a key not on the period's roster appears: other roster snapshots."""
    id_number = ids.normalise(key.strip())
    rows = con.execute(
        "SELECT period, household_id FROM stg_roster "
        "WHERE household_id = ? OR id_number = ? GROUP BY ALL ORDER BY period DESC LIMIT 3",
        [key.strip(), id_number],
    ).fetchall()
    if not rows:
        return ""
    where = ", ".join(f"{p} as household {ids.mask_text(h)}" for p, h in rows)
    return f" (在其他期的人口库中 on the roster of {where})"


# ---------------------------------------------------------------- explain: the answer


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
    roster_period = scalar(con, "SELECT max(period) FROM stg_roster WHERE period <= ?", [period])
    if roster_period is None:
        raise ExplainError(f"截至 {period} 没有收到人口库 no roster received at or before {period}")
    roster = db_roster.population(con, period)
    try:
        found = find_household(roster, key, period)
    except ExplainError as exc:
        raise ExplainError(f"{exc}{_elsewhere(con, key)}") from None
    population = roster.filter(pl.col("household_id") == found.household_id)
    member_ids = population["id_number"].to_list()
    specs = contract.load()
    events = {
        d.source: db_roster.events_as_of(con, specs[d.source], period, member_ids).lazy()
        for d in EVENT_DEPARTMENTS
    }
    inputs = screen.ScreenInputs(population=population.lazy(), events=events)
    was_listed = _listed_in(con, previous_period(period), found.household_id)
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
    stored = _stored_row(con, period, found.household_id)
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
        history=history(con, found.household_id),
        removal_candidate=result.candidates.height > 0,
    )


def history(con: duckdb.DuckDBPyConnection, household_id: str) -> pl.DataFrame:
    """The household's timeline (the `household_history` view), oldest period first."""
    return con.sql(
        "SELECT period, colour, risk_labels, listed, listing_status, verification_result, "
        "verification_date, verification_note FROM household_history "
        "WHERE household_id = $h ORDER BY period",
        params={"h": household_id},
    ).pl()


def _listed_in(con: duckdb.DuckDBPyConnection, period: str, household_id: str) -> bool:
    return bool(
        scalar(
            con,
            "SELECT count(*) FROM suspects WHERE period = ? AND household_id = ?",
            [period, household_id],
        )
    )


def _stored_row(
    con: duckdb.DuckDBPyConnection, period: str, household_id: str
) -> dict[str, Any] | None:
    rows = con.sql(
        "SELECT * FROM suspects WHERE period = $p AND household_id = $h",
        params={"p": period, "h": household_id},
    ).pl()
    return rows.row(0, named=True) if rows.height else None


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
        rec[d.source].select(
            "id_number",
            "source_key",
            "rule_date",
            source=pl.lit(d.source),
            amount=(d.listing_amount if d.listing_amount is not None else pl.lit(None)).cast(
                vocab.MONEY
            ),
            detail=d.listing_detail if d.listing_detail is not None else pl.lit(None),
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


def _status_reason(hh: Mapping[str, Any], previous: str, was_listed: bool) -> str:
    status = hh["listing_status"]
    decision, day = hh.get("last_decision"), hh.get("last_decision_date")
    decided = f"乡镇 {day} 核实为「{decision}」（{hh.get('last_decision_period')} 期名单）"
    if status is None:
        if hh["risk_codes"] and decision == vocab.DECLINED:
            return f"{decided}，此后没有新的部门风险记录 → 不再列入 kept off the list"
        return "未列入 not listed"
    if status == vocab.STATUS_MONITORED:
        return f"户籍表监测状态为 {vocab.MONITORED} → {status}"
    if status == vocab.STATUS_CONFIRMED:
        return f"{decided}，户籍表尚未显示 {vocab.MONITORED} → {status}"
    if decision == vocab.DECLINED:
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


# ---------------------------------------------------------------- quarantine

CHECK_LABELS: dict[str, str] = {
    "invalid_id": "身份证号无效 invalid ID number",
    "invalid_date": "日期无法识别 unreadable date",
    "invalid_money": "金额无法识别 unreadable amount",
    "invalid_value": "取值不在允许范围 value not allowed",
    "required": "必填项为空 required value empty",
    "min": "低于最小值 below the minimum",
    "discharge_not_before_admission": "出院日期早于入院日期 discharge before admission",
    "out_of_pocket_not_above_total": "个人自付超过总费用 out-of-pocket above total cost",
    "duplicate_key": "同一文件内主键重复且内容不同（各条均拒收）duplicate key in one file",
    "implausible": "数值不可信（超过入库上限）implausible value",
    "formula_not_calculated": "公式无保存值（用 Excel/WPS 打开并保存）unsaved formula",
}


def check_label(check: str) -> str:
    return CHECK_LABELS.get(check, check)


def column_label(spec: contract.SourceSpec | None, column: str) -> str:
    """The Chinese header of a contract column (the first alias), 'a+b' for a key."""

    def one(key: str) -> str:
        col = spec.columns.get(key) if spec else None
        return col.aliases[0] if col and col.aliases else key

    return "+".join(one(k) for k in column.split("+"))


@dataclass(frozen=True)
class Rejected:
    period: str
    rows: pl.DataFrame  # source, file, row_number, column, column_label, check, check_label, raw
    counts: pl.DataFrame  # source, check, check_label, rows, cells
    total_rows: int  # rejected rows (a row failing several checks counts once)


def quarantine(
    con: duckdb.DuckDBPyConnection, period: str, source: str | None = None, limit: int = 0
) -> Rejected:
    """The rows set aside in the period's deliveries and why, raw ID values masked.
    `limit` caps the listed rows (0: all); the counts always cover every row."""
    check_period(period)
    try:
        source = None if source is None else contract.source_key(source)
    except contract.UnknownSource as exc:
        raise ExplainError(str(exc)) from None
    require_tables(con)
    if not scalar(con, "SELECT count(*) FROM ingest_log WHERE period = ?", [period]):
        periods = [r[0] for r in con.execute("SELECT DISTINCT period FROM ingest_log").fetchall()]
        done = ", ".join(sorted(periods)) or "none"
        raise ExplainError(
            f"{period} 期没有入库任何文件 nothing was ingested for period {period} "
            f"(ingested periods: {done})"
        )
    where = "period = $p" + (" AND source = $s" if source else "")
    args: dict[str, object] = {"p": period}
    if source:
        args["s"] = source
    order = 'source, file, row_number, "column", "check"'
    rows = con.sql(
        f'SELECT source, file, row_number, "column", "check", raw_value FROM quarantine '
        f"WHERE {where} ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit > 0 else ""),
        params=args,
    ).pl()
    counts = con.sql(
        'SELECT source, "check", count(DISTINCT (file, row_number))::BIGINT AS rows, '
        f"count(*)::BIGINT AS cells FROM quarantine WHERE {where} GROUP BY ALL "
        'ORDER BY source, rows DESC, "check"',
        params=args,
    ).pl()
    total = con.sql(
        f"SELECT count(DISTINCT (source, file, row_number)) FROM quarantine WHERE {where}",
        params=args,
    ).fetchall()[0][0]
    specs = contract.load()
    shown = [
        {
            **row,
            "column_label": column_label(specs.get(row["source"]), row["column"]),
            "check_label": check_label(row["check"]),
            "raw_value": mask_raw_value(specs.get(row["source"]), row["column"], row["raw_value"]),
        }
        for row in rows.iter_rows(named=True)
    ]
    schema = {
        "source": pl.String,
        "file": pl.String,
        "row_number": pl.Int64,
        "column": pl.String,
        "column_label": pl.String,
        "check": pl.String,
        "check_label": pl.String,
        "raw_value": pl.String,
    }
    return Rejected(
        period=period,
        rows=pl.DataFrame(shown, schema=schema).select(list(schema)),
        counts=counts.with_columns(
            check_label=pl.col("check").map_elements(check_label, return_dtype=pl.String)
        ).select("source", "check", "check_label", "rows", "cells"),
        total_rows=int(total),
    )


# ---------------------------------------------------------------- the run report again


def run_report(con: duckdb.DuckDBPyConnection, period: str) -> report.RunReport:
    """The period's run report rebuilt from the database (so it works when the published
    files are gone): the latest successful whole-county run, or the latest run when only
    township runs were made, with the lists as they stand now."""
    check_period(period)
    require_tables(con)
    runs = successful_runs(con, period)
    latest_run(con, period)  # the one-line error for a period never screened
    full = [r for r in runs if r.township is None]
    run = full[0] if full else runs[0]
    resolved, origin = run_parameters(period, run)
    later = [r for r in runs if r.township is not None and _after(r, run)]
    files = db_deliveries.files_read(con, period)
    scale = _table_rows(con, "scale_checks", period, followup.SCALE_SCHEMA, "township NULLS LAST")
    overdue = (
        followup.load_overdue(con, period, run.started_at.date(), resolved)
        if run.started_at is not None
        else pl.DataFrame(schema=report.OVERDUE_SCHEMA)
    )
    return report.RunReport(
        period=period,
        run_id=run.run_id,
        files=cast(list[report.FileRead], files.to_dicts()),
        rejected=cast(
            list[report.RejectedCount], db_deliveries.rejected_counts(con, period).to_dicts()
        ),
        match_rates=cast(list[report.MatchRate], _match_rates(con, period).to_dicts()),
        suspects=_suspects(con, period),
        warnings=[
            *resolved.warnings,
            *([] if origin.startswith("run ") else [f"参数 parameters: {origin}"]),
            *report.file_warnings(files),
            *_headless_warning(con, period),
            *followup.scale_warnings(scale, resolved),
            *report.overdue_warning(overdue),
            *_rerun_warnings(later),
            *_held_warnings(con, period, run),
        ],
        params=resolved,
        all_townships=_townships(con, period),
        township=run.township,
        started_at=run.started_at,
        finished_at=run.finished_at,
        scale=scale,
        overdue=overdue,
        candidates=_table_rows(
            con,
            "removal_candidates",
            period,
            followup.CANDIDATES_SCHEMA,
            "township, village, household_id",
        ),
        **report.stored_parts(con, period, run.run_id, _townships(con, period)),
    )


def _table_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    period: str,
    schema: Mapping[str, pl.DataType],
    order: str,
) -> pl.DataFrame:
    frame = con.sql(
        f"SELECT * FROM {table} WHERE period = $p ORDER BY {order}", params={"p": period}
    ).pl()
    return frame.select(pl.col(n).cast(t) for n, t in schema.items())


def _after(a: RunRecord, b: RunRecord) -> bool:
    if a.finished_at is None or b.finished_at is None:
        return False
    return a.finished_at > b.finished_at or (a.finished_at == b.finished_at and a.run_id > b.run_id)


def _match_rates(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    return con.sql(
        "SELECT source, records_in_window, matched, unmatched FROM match_rates WHERE period = $p",
        params={"p": period},
    ).pl()


def _suspects(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    frame = con.sql("SELECT * FROM suspects WHERE period = $p", params={"p": period}).pl()
    return frame.select(pl.col(n).cast(t) for n, t in screen.SUSPECTS_SCHEMA.items())


def _townships(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT township FROM stg_roster WHERE township IS NOT NULL AND period = "
        "(SELECT max(period) FROM stg_roster WHERE period <= ?) ORDER BY township",
        [period],
    ).fetchall()
    return [r[0] for r in rows]


def _headless_warning(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    n = scalar(
        con,
        "SELECT count(*) FROM (SELECT household_id FROM stg_roster WHERE period = "
        "(SELECT max(period) FROM stg_roster WHERE period <= ?) GROUP BY household_id "
        "HAVING NOT bool_or(coalesce(relation = ?, false)))",
        [period, vocab.HEAD_RELATION],
    )
    return report.headless_warning(int(n or 0))


def _held_warnings(con: duckdb.DuckDBPyConnection, period: str, run: RunRecord) -> list[str]:
    """Runs after this one that a completeness gate stopped: they published nothing, so
    the lists are still this run's."""
    rows = con.execute(
        "SELECT run_id FROM runs WHERE period = ? AND status = 'held' AND started_at >= ? "
        "ORDER BY started_at, run_id",
        [period, run.started_at],
    ).fetchall()
    return [
        f"此后一次运行因数据暂扣未发布新名单 a later run was held, nothing published (run {r[0]}; "
        "见 see 完整性检查暂扣 Held deliveries)"
        for r in rows
    ]


def _rerun_warnings(later: list[RunRecord]) -> list[str]:
    return [
        f"此后单乡镇重跑 township re-run after it: {r.township} (run {r.run_id})"
        for r in reversed(later)
    ]
