"""screen(): output columns and order, sorting, evidence, match rates, heads, empty sources."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from screening import contract
from screening.db import roster as db_roster
from screening.db.connect import connect
from screening.params import ResolvedParams, load
from screening.pipeline.inputs import load_inputs
from screening.rules import DEPARTMENT_BY_SOURCE, EVENT_SOURCES, facts, rule_columns
from screening.rules.base import window
from screening.rules.screen import ScreenInputs, ScreenResult, empty_source, screen, source_schema
from tests.support.rule_cases import build, cases, default_parameters, earlier_of

PERIOD = "2026-09"
MONEY = pl.Decimal(18, 2)
SUM = pl.Decimal(38, 2)  # sums of money: no sum of accepted amounts can overflow it
D = dt.date


@pytest.fixture(scope="module")
def params() -> ResolvedParams:
    return load().at(PERIOD)


def member(name: str, relation: str | None, birth: dt.date, **records: Any) -> dict[str, Any]:
    return {"name": name, "relation": relation, "birth": birth, **records}


def household(hid: str, members: list[dict[str, Any]], **attrs: Any) -> dict[str, Any]:
    base = {"household_id": hid, "household_type": "脱贫户", "per_capita_income": 20000}
    return {**base, **attrs, "members": members}


def run(
    params: ResolvedParams, households: list[dict[str, Any]], **case: Any
) -> tuple[ScreenResult, dict[str, str]]:
    inputs, ids = build({"name": "t", "period": PERIOD, "households": households, **case})
    return screen(inputs, PERIOD, params, run_id="R-1"), ids


# ------------------------------------------------------------------ output contract


def test_suspects_columns_follow_the_output_contract(params: ResolvedParams) -> None:
    result, _ = run(
        params,
        [household("H1", [member("甲", "户主", D(1970, 1, 1), medical=[{"out_of_pocket": 5000}])])],
    )
    # docs/output-contract.md, "suspects.parquet columns", in that order: the
    # township's earlier decision that the rules spec says a re-listed household shows,
    # and the relief estimate, null while it is off (the default).
    columns = list(result.suspects.schema.items())
    assert columns[-3:] == [
        ("last_decision", pl.String),
        ("last_decision_date", pl.Date),
        ("relief_estimate", SUM),
    ]
    assert result.suspects["relief_estimate"].to_list() == [None]
    assert columns[:-3] == [
        ("period", pl.String),
        ("township", pl.String),
        ("village", pl.String),
        ("household_id", pl.String),
        ("head_name", pl.String),
        ("head_id_number", pl.String),
        ("household_type", pl.String),
        ("household_size", pl.Int64),
        ("per_capita_income", MONEY),
        ("monitoring_line", MONEY),
        ("colour", pl.String),
        ("risk_codes", pl.List(pl.String)),
        ("risk_labels", pl.String),
        ("medical_oop", SUM),
        ("education_cost", SUM),
        ("accident_loss", SUM),
        ("rigid_expenditure", SUM),
        ("labour_capacity", pl.String),
        ("listing_status", pl.String),
        ("run_id", pl.String),
    ]
    row = result.suspects.row(0, named=True)
    assert row["period"] == PERIOD and row["run_id"] == "R-1"
    assert row["monitoring_line"] == Decimal("6000.00")
    assert row["risk_codes"] == ["MEDICAL"] and row["risk_labels"] == "因病"
    # output-contract.md, "evidence.parquet columns".
    assert list(result.evidence.schema.items()) == [
        ("period", pl.String),
        ("household_id", pl.String),
        ("id_number", pl.String),
        ("name", pl.String),
        ("risk_code", pl.String),
        ("source", pl.String),
        ("source_key", pl.String),
        ("rule_date", pl.Date),
        ("amount", SUM),
        ("detail", pl.String),
    ]
    assert list(result.match_rates.columns) == [
        "period", "source", "records_in_window", "matched", "unmatched", "matched_by_link"
    ]  # fmt: skip
    assert list(result.members.columns) == [
        "period", "household_id", "id_number", "name", "relation", "age", "is_head",
        "disability_grade",
    ]  # fmt: skip
    assert result.members.schema["disability_grade"] == pl.Int8


def test_households_hold_every_household_listed_or_not(params: ResolvedParams) -> None:
    result, _ = run(
        params,
        [
            household("H2", [member("乙", "户主", D(1970, 1, 1))]),
            household(
                "H1", [member("甲", "户主", D(1970, 1, 1), medical=[{"out_of_pocket": 5000}])]
            ),
        ],
    )
    hh = result.households
    assert hh["household_id"].to_list() == ["H1", "H2"]
    assert hh["listed"].to_list() == [True, False]
    assert hh.schema["risk_codes"] == pl.List(pl.String)
    quiet = hh.filter(pl.col("household_id") == "H2").row(0, named=True)
    assert quiet["colour"] is None and quiet["listing_status"] is None
    assert quiet["risk_codes"] == [] and quiet["risk_labels"] is None
    assert quiet["medical_oop"] == quiet["rigid_expenditure"] == Decimal("0.00")
    assert quiet["household_income"] == Decimal("20000.00")
    assert result.suspects["household_id"].to_list() == ["H1"]


# ------------------------------------------------------------------ sorting


def test_suspects_sorted_by_township_colour_risks_spending_and_id(params: ResolvedParams) -> None:
    def med(amount: float) -> dict[str, Any]:
        return {"medical": [{"out_of_pocket": amount}]}

    a, b = "一号镇", "二号镇"
    one = D(1970, 1, 1)
    households = [
        household("B1", [member("b", "户主", one, **med(5000))], township=b),
        household("A1", [member("a1", "户主", one, **med(5000))], township=a),
        household("A7", [member("a7", "户主", one, **med(6000))], township=a),
        household("A4", [member("a4", "户主", one)], township=a, per_capita_income=5000),
        household(
            "A2", [member("a2", "户主", one, **med(5000))], township=a, per_capita_income=5000
        ),
        household(
            "A5",
            [member("a5", "户主", one, **med(8000)), member("a5b", "配偶", one)],
            township=a,
            per_capita_income=5000,
        ),
        household(
            "A3", [member("a3", "户主", one, **med(5000))], township=a, per_capita_income=3000
        ),
        household("A6", [member("a6", "户主", one, **med(6000))], township=a),
    ]
    result, _ = run(params, households)
    s = result.suspects
    assert s["township"].str.contains("号镇").all()
    expected = [
        ("A3", "红", 3),  # red, most risks
        ("A5", "红", 2),  # red, 2 risks, rigid 8000
        ("A2", "红", 2),  # red, 2 risks, rigid 5000
        ("A4", "黄", 1),
        ("A6", "蓝", 1),  # blue, rigid 6000, ties broken by household_id
        ("A7", "蓝", 1),
        ("A1", "蓝", 1),  # blue, rigid 5000
        ("B1", "蓝", 1),  # next township
    ]
    got = list(zip(s["household_id"], s["colour"], s["risk_codes"].list.len(), strict=True))
    assert got == expected
    assert s["township"].to_list() == sorted(s["township"].to_list())


def test_outputs_do_not_depend_on_input_row_order(params: ResolvedParams) -> None:
    households = [
        household(
            f"H{i}",
            [
                member(f"m{i}", "户主", D(1970, 1, 1), medical=[{"out_of_pocket": 5000 + i}]),
                member(f"c{i}", "子女", D(2012, 1, 1), education=[{"status": "辍学"}]),
            ],
            township=f"镇{i % 2}",
            per_capita_income=5000 + 1000 * (i % 3),
        )
        for i in range(6)
    ]
    inputs, _ = build({"name": "t", "period": PERIOD, "households": households})

    def shuffled(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.collect().sample(fraction=1.0, shuffle=True, seed=3).lazy()

    reordered = ScreenInputs(
        population=shuffled(inputs.population),
        events={s: shuffled(f) for s, f in inputs.events.items()},
    )
    first = screen(inputs, PERIOD, params, run_id="r")
    second = screen(reordered, PERIOD, params, run_id="r")
    for name in ("households", "suspects", "evidence", "members", "match_rates"):
        assert getattr(first, name).equals(getattr(second, name)), name


# ------------------------------------------------------------------ evidence


def test_evidence_rows_per_risk(params: ResolvedParams) -> None:
    head = member(
        "王大",
        "户主",
        D(1980, 5, 5),
        medical=[
            {"settlement_id": "YB-1", "settlement_date": D(2026, 3, 1), "out_of_pocket": 5000,
             "hospital": "县人民医院"},
            {"settlement_id": "YB-2", "settlement_date": D(2026, 4, 1), "out_of_pocket": 0},
        ],
        traffic=[
            {"accident_id": "SG-1", "accident_date": D(2026, 5, 1), "injury": "重伤",
             "direct_loss": 3000, "compensation": 1000},
        ],
        disability=[
            {"certificate_no": "CJ-NEW", "grade": 2, "disability_type": "肢体",
             "issue_date": D(2026, 6, 1)},
            {"certificate_no": "CJ-OLD", "grade": 4, "issue_date": D(2015, 6, 1)},
        ],
        civil=[
            {"assistance_type": "临时救助", "event": "发放", "event_date": D(2026, 7, 1),
             "amount": 800},
            {"assistance_type": "低保", "event": "续保", "event_date": D(2026, 7, 1)},
        ],
    )  # fmt: skip
    child = member(
        "王小",
        "子女",
        D(2012, 2, 2),
        education=[
            {"record_id": "XJ-1", "record_date": D(2025, 11, 1), "status": "在读",
             "school": "县一中", "tuition": 9000, "aid": 500},
            {"record_id": "XJ-2", "record_date": D(2026, 8, 1), "status": "辍学",
             "school": "县一中", "stage": "初中"},
        ],
    )  # fmt: skip
    unlisted = household(
        "H-NO", [member("李", "户主", D(1970, 1, 1), medical=[{"out_of_pocket": 1}])]
    )
    result, ids = run(
        params,
        [household("H-ALL", [head, child], per_capita_income=3000), unlisted],
    )
    ev = result.evidence
    assert set(ev["household_id"]) == {"H-ALL"}  # evidence only for listed households
    assert result.suspects["risk_codes"].to_list() == [
        ["MEDICAL", "EDUCATION", "DROPOUT", "ACCIDENT", "DISABILITY", "ASSISTANCE",
         "LOW_INCOME", "SPENDING"]
    ]  # fmt: skip
    rows = {(r["risk_code"], r["source_key"]): r for r in ev.to_dicts()}
    # Evidence is ordered like the rule table.
    assert ev["risk_code"].to_list() == [
        "MEDICAL", "EDUCATION", "DROPOUT", "ACCIDENT", "DISABILITY", "ASSISTANCE",
        "LOW_INCOME", "SPENDING", "SPENDING", "SPENDING", "SPENDING",
    ]  # fmt: skip
    assert set(ev["period"]) == {PERIOD}

    medical = rows["MEDICAL", "YB-1"]
    assert medical["source"] == "medical" and medical["amount"] == Decimal("5000.00")
    assert medical["id_number"] == ids["王大"] and medical["name"] == "王大"
    assert medical["rule_date"] == D(2026, 3, 1)
    assert medical["detail"] == "医院: 县人民医院; 结算 2026-03-01; 自付 5000.00 元"

    education = rows["EDUCATION", "XJ-1"]
    assert education["amount"] == Decimal("8500.00") and education["id_number"] == ids["王小"]
    assert "净支出 8500.00 元" in education["detail"]

    dropout = rows["DROPOUT", "XJ-2"]
    assert (
        dropout["amount"] is None and "辍学" in dropout["detail"] and "14 周岁" in dropout["detail"]
    )

    accident = rows["ACCIDENT", f"SG-1|{ids['王大']}"]
    assert accident["source"] == "traffic" and accident["amount"] == Decimal("2000.00")
    assert "重伤" in accident["detail"] and "劳动年龄" in accident["detail"]

    disability = rows["DISABILITY", "CJ-NEW"]
    assert disability["rule_date"] == D(2026, 6, 1) and "2 级" in disability["detail"]

    assistance = rows["ASSISTANCE", f"{ids['王大']}|临时救助|发放|2026-07-01"]
    assert assistance["amount"] == Decimal("800.00") and "临时救助" in assistance["detail"]

    low = rows["LOW_INCOME", "H-ALL"]
    assert low["source"] == "roster" and low["amount"] == Decimal("3000.00")
    assert low["detail"] == "人均纯收入 3000.00 < 监测标准 6000.00"
    assert low["rule_date"] == D(2026, 9, 30) and low["id_number"] == ids["王大"]

    spending = rows["SPENDING", "H-ALL"]
    assert spending["amount"] == Decimal("15500.00")  # 5000 + 8500 + 2000
    assert "家庭年收入 6000.00" in spending["detail"]
    # SPENDING cites every bill of its three sums, by date, then the income line (end(P)).
    bills = ev.filter(pl.col("risk_code") == "SPENDING")
    assert bills["source_key"].to_list() == ["XJ-1", "YB-1", f"SG-1|{ids['王大']}", "H-ALL"]
    assert bills["amount"].to_list()[:3] == [Decimal("8500.00"), Decimal("5000.00"),
                                             Decimal("2000.00")]  # fmt: skip
    assert sum(bills["amount"].to_list()[:3]) == spending["amount"]
    assert bills["detail"][0] == rows["EDUCATION", "XJ-1"]["detail"]

    members = result.members
    assert members["name"].to_list() == ["王大", "王小"]
    assert members["is_head"].to_list() == [True, False]
    assert members["disability_grade"].to_list() == [2, None]
    assert members["age"].to_list() == [46, 14]


def test_accident_evidence_cites_only_the_clause_that_fired(params: ResolvedParams) -> None:
    # The injury clause fired (loss 500 is far below 10000): the light-injury record with
    # a small loss is not evidence, the 死亡 record is.
    result, ids = run(
        params,
        [
            household(
                "H1",
                [
                    member("甲", "户主", D(1980, 1, 1), traffic=[
                        {"accident_id": "SG-1", "injury": "轻伤", "direct_loss": 500}]),
                    member("乙", "配偶", D(1981, 1, 1), traffic=[
                        {"accident_id": "SG-2", "injury": "死亡"}]),
                ],
            )
        ],
    )  # fmt: skip
    ev = result.evidence
    assert ev["source_key"].to_list() == [f"SG-2|{ids['乙']}"]
    assert ev["detail"].str.contains("死亡").all()


# ------------------------------------------------------------------ match rates


def test_match_rates_count_records_in_window_by_source(params: ResolvedParams) -> None:
    on_roster = member(
        "甲",
        "户主",
        D(1970, 1, 1),
        medical=[{"out_of_pocket": 1}, {"out_of_pocket": 1, "settlement_date": D(2025, 9, 30)}],
        civil=[{"assistance_type": "低保", "event": "发放"}],
        disability=[{"grade": 4, "issue_date": D(2020, 1, 1)}],
    )
    stranger = member(
        "外",
        None,
        D(1988, 8, 8),
        medical=[{"out_of_pocket": 1}],
        traffic=[{"injury": "无"}],
        disability=[{"grade": 3}],
    )
    result, _ = run(params, [household("H1", [on_roster])], others=[stranger])
    rates = {r["source"]: r for r in result.match_rates.to_dicts()}
    assert list(rates) == ["medical", "education", "traffic", "civil", "disability"]
    counts = {s: (r["records_in_window"], r["matched"], r["unmatched"]) for s, r in rates.items()}
    assert counts == {
        "medical": (2, 1, 1),  # the settlement before the window is not counted
        "education": (0, 0, 0),
        "traffic": (1, 0, 1),
        "civil": (1, 1, 0),
        "disability": (1, 0, 1),  # the 2020 certificate is outside the window
    }
    assert set(result.match_rates["period"]) == {PERIOD}


# ------------------------------------------------------------------ heads


def test_household_without_head_uses_first_member_and_is_counted(params: ResolvedParams) -> None:
    result, ids = run(
        params,
        [
            household(
                "H-NOHEAD",
                [member("先", "配偶", D(1970, 1, 1)), member("后", "子女", D(1995, 1, 1))],
                per_capita_income=4000,
            ),
            household(
                "H-HEAD",
                [member("子", "子女", D(1995, 1, 1)), member("主", "户主", D(1970, 1, 1))],
                per_capita_income=4000,
            ),
        ],
    )
    assert result.households_without_head == 1
    heads = dict(zip(result.suspects["household_id"], result.suspects["head_name"], strict=True))
    assert heads == {"H-NOHEAD": "先", "H-HEAD": "主"}
    no_head = result.suspects.filter(pl.col("household_id") == "H-NOHEAD")
    assert no_head["head_id_number"].item() == ids["先"]
    members = result.members.filter(pl.col("household_id") == "H-HEAD")
    assert members["name"].to_list() == ["主", "子"]  # head first
    assert members["is_head"].to_list() == [True, False]


# ------------------------------------------------------------------ empty sources


def test_empty_source_has_the_contract_dtypes() -> None:
    schema = empty_source("medical").collect_schema()
    assert schema["settlement_id"] == pl.String
    assert schema["settlement_date"] == pl.Date
    assert schema["out_of_pocket"] == MONEY
    assert list(schema)[-3:] == ["period", "file", "row_number"]
    assert schema["row_number"] == pl.Int64
    assert empty_source("disability").collect_schema()["grade"] == pl.Int8
    assert source_schema("roster")["per_capita_income"] == MONEY
    assert empty_source("civil").collect().height == 0


def test_sources_never_delivered(params: ResolvedParams) -> None:
    inputs, _ = build(
        {
            "name": "t",
            "period": PERIOD,
            "household": household(
                "H1", [member("甲", "户主", D(1970, 1, 1))], per_capita_income=1
            ),
        }
    )
    only_roster = ScreenInputs(
        population=inputs.population, events={s: empty_source(s) for s in EVENT_SOURCES}
    )
    result = screen(only_roster, PERIOD, params)
    assert result.suspects["risk_codes"].to_list() == [["LOW_INCOME"]]
    assert result.evidence["risk_code"].to_list() == ["LOW_INCOME"]
    assert result.match_rates["records_in_window"].to_list() == [0] * 5

    nothing = ScreenInputs(population=empty_source("roster"))
    empty = screen(nothing, PERIOD, params)
    assert empty.households.height == empty.suspects.height == empty.evidence.height == 0
    assert empty.suspects.schema == result.suspects.schema
    assert empty.evidence.schema == result.evidence.schema
    assert empty.members.schema == result.members.schema
    assert empty.households_without_head == 0


# ------------------------------------------------------------------ contract with the loader


def test_resent_records_are_deduplicated_by_the_loader_not_by_screen(
    params: ResolvedParams,
) -> None:
    """The loader hands over one version per natural key as of P (the newest delivery);
    screen() takes the frame as given and sums every row. So a re-sent settlement counts
    once because the loader kept only its corrected copy, and would count twice if a
    caller passed both copies: de-duplication is the loader's side of the contract."""

    def case(settlements: list[dict[str, Any]]) -> dict[str, Any]:
        head = member("甲", "户主", D(1970, 1, 1), medical=settlements)
        return {"name": "t", "period": PERIOD, "household": household("H1", [head])}

    corrected = {"settlement_id": "YB-9", "out_of_pocket": 4000}
    original = {"settlement_id": "YB-9", "out_of_pocket": 6000}
    as_loaded, _ = build(case([corrected]))
    result = screen(as_loaded, PERIOD, params)
    assert result.households["medical_oop"].to_list() == [Decimal("4000.00")]
    assert result.suspects.height == 0

    both, _ = build(case([original, corrected]))
    assert screen(both, PERIOD, params).households["medical_oop"].to_list() == [Decimal("10000.00")]


def test_parameters_must_be_resolved_for_the_screened_period(params: ResolvedParams) -> None:
    inputs, _ = build(
        {
            "name": "t",
            "period": PERIOD,
            "household": household("H1", [member("甲", "户主", D(1970, 1, 1))]),
        }
    )
    with pytest.raises(ValueError, match="resolved for 2026-09, not for 2026-10"):
        screen(inputs, "2026-10", params)


def test_previous_listed_marks_continuing_households(params: ResolvedParams) -> None:
    low = [member("甲", "户主", D(1970, 1, 1))]
    inputs, _ = build(
        {
            "name": "t",
            "period": PERIOD,
            "households": [
                household("H1", low, per_capita_income=1000),
                household("H2", low, per_capita_income=1000),
            ],
        }
    )
    result = screen(inputs, PERIOD, params, previous_listed={"H2", "H-GONE"})
    status = dict(
        zip(result.suspects["household_id"], result.suspects["listing_status"], strict=True)
    )
    assert status == {"H1": "新增", "H2": "持续"}


# ------------------------------------------------------------------ what load_inputs keeps


@pytest.mark.parametrize("case", cases())
def test_rule_columns_within_reach_screen_alike(case: dict[str, Any]) -> None:
    """pipeline.inputs.load_inputs loads only facts.RULE_COLUMNS of the records within facts.reach
    and db.roster.EARLIER_COLUMNS of an earlier snapshot: every rule case screens the same on
    those alone as on whole records."""
    period = str(case["period"])
    params_set = default_parameters()
    if case.get("parameters"):
        params_set = params_set.override(case["parameters"], origin=f"case {case['name']}")
    resolved = params_set.at(period)
    w = window(period, resolved.window_months)
    inputs, _ = build(case)

    def narrowed(source: str) -> pl.LazyFrame:
        first, last = facts.reach(DEPARTMENT_BY_SOURCE[source], w)
        rule_date = pl.col(contract.load()[source].rule_date or "")
        kept = rule_date <= last if first is None else rule_date.is_between(first, last)
        return inputs.source(source).filter(kept).select(rule_columns(source))

    loaded = ScreenInputs(
        population=inputs.population,
        events={s: narrowed(s) for s in EVENT_SOURCES},
        # The earlier snapshots as db.roster reads them: only the columns the rules read.
        earlier_rosters={
            months: frame.select(*db_roster.EARLIER_COLUMNS, "period")
            for months, frame in inputs.earlier_rosters.items()
        },
    )
    previous = frozenset(str(h) for h in case.get("previous_listed") or [])
    whole, lean = (
        screen(i, period, resolved, previous, "test", earlier_of(case, resolved))
        for i in (inputs, loaded)
    )
    for f in dataclasses.fields(whole):
        a, b = getattr(whole, f.name), getattr(lean, f.name)
        assert a.equals(b) if isinstance(a, pl.DataFrame) else a == b, f.name


def test_load_inputs_keeps_what_the_rules_read(screened: dict[str, Path]) -> None:
    """The monthly run's lean inputs (rule columns, records within reach) screen the
    sample county as its whole records as of P do, and hold fewer records."""
    resolved = load().at(PERIOD)
    specs = contract.load()
    con = connect(screened["db"], read_only=True)
    try:
        lean = load_inputs(con, specs, PERIOD, resolved.window_months)
        events = {s: db_roster.events_as_of(con, specs[s], PERIOD) for s in EVENT_SOURCES}
        whole = ScreenInputs(
            population=lean.population,
            events={s: f.lazy() for s, f in events.items()},
            earlier_rosters=lean.earlier_rosters,
        )
    finally:
        con.close()
    # The sample's roster of a year before is in force 12 months before P, columns read only.
    then = lean.earlier_rosters[12].collect()
    assert then.columns == [*db_roster.EARLIER_COLUMNS, "period"] and then.height > 0
    kept = {s: lean.source(s).collect() for s in EVENT_SOURCES}
    for s in EVENT_SOURCES:
        assert kept[s].columns == [*rule_columns(s), "linked"]
    assert sum(f.height for f in kept.values()) < sum(f.height for f in events.values())
    a, b = (screen(i, PERIOD, resolved, frozenset(), "R") for i in (whole, lean))
    for name in ("households", "suspects", "evidence", "members", "match_rates"):
        assert getattr(a, name).equals(getattr(b, name)), name
