"""Dynamic management: what the database gives the next screening (decisions, earlier
periods), the verification time limit, the scale check and the history view."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

from screening import contract, params
from screening.db import schema as db_schema
from screening.db.connect import connect
from screening.rules import followup
from tests.support.common import ingest_year_before, query

D = dt.date


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = connect(tmp_path / "t.duckdb")
    db_schema.ensure_schema(connection, contract.load())
    yield connection
    connection.close()


def resolved(period: str = "2026-09", **overrides: object) -> params.ResolvedParams:
    return params.load().override(overrides).at(period) if overrides else params.load().at(period)


# ---------------------------------------------------------------- time limit


@pytest.mark.parametrize(
    ("published", "due"),
    [
        # Mon 28 Sep: 29, 30 Sep, then the National Day holidays (1–7 Oct) and the weekend
        # are skipped: 8, 9, 12–16, 19 Oct.
        (D(2026, 9, 28), D(2026, 10, 19)),
        # Thu 5 Nov: two weeks of working days, no holiday.
        (D(2026, 11, 5), D(2026, 11, 19)),
        # Published on a Saturday: counting starts from the next working day.
        (D(2026, 11, 7), D(2026, 11, 20)),
    ],
)
def test_the_time_limit_skips_weekends_and_holidays(published: dt.date, due: dt.date) -> None:
    assert followup.due_date(published, resolved("2026-10")) == due


def test_holidays_are_a_parameter() -> None:
    none = resolved("2026-10", public_holidays=[])
    assert followup.due_date(D(2026, 9, 28), none) == D(2026, 10, 12)


# ---------------------------------------------------------------- what the database gives


def add_runs(con: duckdb.DuckDBPyConnection, *periods: str, finished: dt.datetime) -> None:
    for period in periods:
        con.execute(
            "INSERT INTO runs (run_id, period, status, started_at, finished_at) "
            "VALUES (?, ?, 'success', ?, ?)",
            [f"R-{period}", period, finished, finished],
        )


def add_decision(
    con: duckdb.DuckDBPyConnection,
    period: str,
    household: str,
    result: str,
    day: dt.date | None,
    row: int,
    current: bool = True,
) -> None:
    con.execute(
        "INSERT INTO verifications (period, township, household_id, result, verification_date, "
        "file, file_sha256, row_number, imported_at, is_current) "
        "VALUES (?, '城关镇', ?, ?, ?, 'f.xlsx', 'sha', ?, ?, ?)",
        [period, household, result, day, row, dt.datetime(2026, 10, 1, 9, row), current],
    )


def test_the_latest_decision_on_an_earlier_list_is_used(con: duckdb.DuckDBPyConnection) -> None:
    add_decision(con, "2026-07", "H1", "不予纳入", D(2026, 7, 20), 2)
    add_decision(con, "2026-08", "H1", "确认纳入", D(2026, 8, 12), 3)  # later: counts
    add_decision(con, "2026-07", "H2", "确认纳入", D(2026, 7, 20), 4, current=False)
    add_decision(con, "2026-07", "H2", "待核实", D(2026, 7, 25), 5)
    add_decision(con, "2026-09", "H3", "不予纳入", D(2026, 9, 20), 6)  # on P's own list
    add_screened(con, "2026-08", "H1", ["MEDICAL", "SPENDING"])  # the list decided on
    add_screened(con, "2026-07", "H1", ["MEDICAL"])
    decisions = followup.load_decisions(con, "2026-09").sort("household_id")
    # With the codes the household had on the list decided on (H2's list is not stored).
    assert decisions.rows() == [
        ("H1", "确认纳入", D(2026, 8, 12), "2026-08", ["MEDICAL", "SPENDING"]),
        ("H2", "待核实", D(2026, 7, 25), "2026-07", None),
    ]


def add_screened(
    con: duckdb.DuckDBPyConnection, period: str, household: str, codes: list[str]
) -> None:
    con.execute(
        "INSERT INTO screened_households (period, township, household_id, risk_codes, "
        "risk_labels, listed) VALUES (?, '城关镇', ?, ?, ?, ?)",
        [period, household, codes, ";".join(codes) or None, bool(codes)],
    )


def test_the_earlier_periods_give_clear_counts_and_the_last_risk(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for i, period in enumerate(["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]):
        add_screened(con, period, "H1", ["MEDICAL"] if i == 0 else [])
        add_screened(con, period, "H2", ["LOW_INCOME"] if period == "2026-05" else [])
    add_screened(con, "2026-10", "H1", ["MEDICAL"])  # after P: not looked at
    earlier = followup.load(con, "2026-07", resolved("2026-07", risk_removal_clear_periods=4))
    assert earlier.prior_periods == ("2026-04", "2026-05", "2026-06")
    prior = {r["household_id"]: r for r in earlier.prior.iter_rows(named=True)}
    assert prior["H1"]["clear_periods"] == 3
    assert (prior["H1"]["last_risk_period"], prior["H1"]["last_risk_codes"]) == (
        "2026-02",
        ["MEDICAL"],
    )
    assert prior["H2"]["clear_periods"] == 2
    assert prior["H2"]["last_risk_labels"] == "LOW_INCOME"


def add_listed(con: duckdb.DuckDBPyConnection, period: str, household: str, status: str) -> None:
    con.execute(
        "INSERT INTO suspects (period, township, household_id, listing_status) "
        "VALUES (?, '城关镇', ?, ?)",
        [period, household, status],
    )


def test_overdue_counts_unanswered_households_of_the_previous_list(
    con: duckdb.DuckDBPyConnection,
) -> None:
    add_runs(con, "2026-10", finished=dt.datetime(2026, 11, 5, 3, 0))  # due 19 Nov
    for household, status in [("H1", "新增"), ("H2", "持续"), ("H3", "已在监测"), ("H4", "新增")]:
        add_listed(con, "2026-10", household, status)
    add_decision(con, "2026-10", "H4", "待核实", D(2026, 11, 10), 2)  # an answer
    p = resolved("2026-11")
    assert followup.load_overdue(con, "2026-11", D(2026, 11, 19), p).height == 0
    overdue = followup.load_overdue(con, "2026-11", D(2026, 11, 20), p)
    assert overdue.rows() == [("城关镇", 2, D(2026, 11, 19))]
    assert followup.load_overdue(con, "2026-12", D(2026, 12, 31), p).height == 0  # no list


# ---------------------------------------------------------------- scale check


def households(rows: list[tuple[str, str, bool]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"period": "2026-09", "township": t, "household_type": k, "listed": x} for t, k, x in rows]
    )


def test_scale_per_township_and_county() -> None:
    rows = [("A", "脱贫户", True)] + [("A", "脱贫户", False)] * 9 + [("A", "一般农户", False)] * 10
    rows += [("B", "监测户", True)] + [("B", "脱贫户", False)] * 39
    scale = followup.scale(households(rows))
    assert scale.select("township", "roster_households", "base_households", "listed").rows() == [
        ("A", 20, 10, 1),
        ("B", 40, 40, 1),
        (None, 60, 50, 2),
    ]
    assert scale["share_of_base"].to_list() == pytest.approx([0.1, 0.025, 0.04])
    assert scale["share_of_roster"].to_list() == pytest.approx([0.05, 0.025, 2 / 60])


def test_scale_warns_above_the_ceiling_and_far_below_the_expected_share() -> None:
    rows = [("高", "脱贫户", True)] * 3 + [("高", "脱贫户", False)] * 17  # 15 %
    rows += [("常", "脱贫户", True)] * 1 + [("常", "脱贫户", False)] * 19  # 5 %
    rows += [("低", "脱贫户", True)] * 1 + [("低", "脱贫户", False)] * 59  # 1.7 %
    rows += [("空", "一般农户", False)] * 5  # no 脱贫户 or 监测户: nothing to compare
    warnings = followup.scale_warnings(followup.scale(households(rows)), resolved())
    assert len(warnings) == 2
    high = next(w for w in warnings if "高 " in w)
    low = next(w for w in warnings if "低 " in w)
    assert "15.0%" in high and "10%" in high and "large" in high
    assert "1.7%" in low and "small" in low
    raised = resolved(**{"scale_check.ceiling": 0.2})
    assert len(followup.scale_warnings(followup.scale(households(rows)), raised)) == 1


def test_scale_warnings_are_one_line_however_many_townships() -> None:
    rows = []
    for i, listed in enumerate([2, 3, 4, 5, 6]):  # 10 % … 30 % of 20 脱贫户 each
        rows += [(f"镇{i}", "脱贫户", True)] * listed + [(f"镇{i}", "脱贫户", False)] * (
            20 - listed
        )
    (line,) = followup.scale_warnings(followup.scale(households(rows)), resolved())
    # The furthest three named, the others counted; the county too; never a cap.
    assert line.startswith("规模偏大 (list large)：4 个乡镇和全县")
    assert "镇4 30.0%、镇3 25.0%、镇2 20.0% 等" in line and "全县 20.0%" in line
    assert "镇0" not in line and "不限制名单" in line


def test_expected_share_above_the_ceiling_is_refused() -> None:
    with pytest.raises(params.ParameterError, match="scale_check"):
        resolved(**{"scale_check.expected_share": 0.2})


# ---------------------------------------------------------------- after real runs


def test_every_household_of_every_screened_period_is_in_the_history(
    screened: dict[str, Path],
) -> None:
    db = screened["db"]
    counts = query(
        db,
        "SELECT period, count(*) AS n, count(*) FILTER (WHERE listed) AS listed "
        "FROM household_history GROUP BY period ORDER BY period",
    )
    listed = query(db, "SELECT period, count(*) AS n FROM suspects GROUP BY period ORDER BY period")
    assert counts["listed"].to_list() == listed["n"].to_list()
    roster = query(
        db,
        "SELECT p.period, (SELECT count(DISTINCT household_id) FROM stg_roster r "
        "WHERE r.period = p.period) AS n FROM (SELECT DISTINCT period FROM suspects) p "
        "ORDER BY p.period",
    )
    assert counts["n"].to_list() == roster["n"].to_list()
    scale = query(db, "SELECT * FROM scale_checks WHERE township IS NULL ORDER BY period")
    assert scale["listed"].to_list() == listed["n"].to_list()


# ---------------------------------------------------------------- the loop, end to end


def test_the_sample_feedback_round_changes_the_next_lists_as_the_manifest_says(
    sample_inbox: Path, sample_manifest: dict, tmp_path: Path
) -> None:
    """Period 1 screened, the township's filled-in list imported, periods 2 and 3 screened:
    every list is the manifest's, except the answered households, which follow the answers
    (a 不予纳入 household drops off and comes back as 新增 after a newer settlement, a new
    bill behind SPENDING or a risk code that list did not show, but not for a fee fully
    covered by aid; a 确认纳入 household is 已确认待录入 until the roster says 监测中)."""
    from screening.feedback import imports as feedback
    from screening.pipeline.run import run_period

    entry = sample_manifest["feedback"]
    answers = entry["answers"]
    assert {a["result"] for a in answers.values()} == {"确认纳入", "不予纳入", "待核实"}
    db, out = tmp_path / "s.duckdb", tmp_path / "out"
    ingest_year_before(db, sample_inbox)
    for period in sample_manifest["periods"]:
        run_period(db=db, inbox=sample_inbox, out=out, period=period)
        if period == entry["period"]:
            result = feedback.import_feedback(db, sample_inbox / entry["file"], period)
            assert (result.accepted, result.rejected) == (len(answers), 0)
            assert result.township.name == entry["township"]
        listed = dict(
            query(
                db, f"SELECT household_id, listing_status FROM suspects WHERE period = '{period}'"
            ).rows()
        )
        expected = {
            r["household_id"]: r["listing_status"] for r in sample_manifest["expected"][period]
        }
        for household, answer in answers.items():
            expected.pop(household, None)
            if answer["statuses"][period] is not None:
                expected[household] = answer["statuses"][period]
        assert listed == expected, period
    last = sample_manifest["periods"][-1]
    shown = query(
        db,
        f"SELECT household_id, last_decision FROM suspects WHERE period = '{last}' "
        "AND last_decision = '不予纳入' ORDER BY household_id",
    )
    back = sorted(
        h for h, a in answers.items() if a["statuses"][last] == "新增" and a["result"] == "不予纳入"
    )
    # Back by a newer settlement, by a new bill behind SPENDING, by a new risk code.
    assert shown["household_id"].to_list() == back and len(back) == 3
    off_then_back = [
        h for h in back if list(answers[h]["statuses"].values()) == ["新增", None, "新增"]
    ]
    history = query(
        db,
        f"SELECT period, listed, verification_result FROM household_history "
        f"WHERE household_id = '{off_then_back[0]}' ORDER BY period",
    )
    assert history.rows() == [
        (entry["period"], True, "不予纳入"),
        (sample_manifest["periods"][1], False, None),
        (last, True, None),
    ]
