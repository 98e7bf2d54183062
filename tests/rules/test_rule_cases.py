"""Every rule case in tests/rules/cases/*.yaml, one pytest id per case (the format is
described in tests/support/rule_cases.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from tests.support.rule_cases import NOT_LISTED, build, cases, run_case


def _expect_equal(actual: Any, expected: Any, what: str) -> None:
    if isinstance(actual, Decimal) and expected is not None:
        expected = Decimal(str(expected)).quantize(Decimal("0.01"))
    assert actual == expected, f"{what}: got {actual!r}, expected {expected!r}"


@pytest.mark.parametrize("case", cases())
def test_rule_case(case: dict[str, Any]) -> None:
    expected = dict(case["expected"])
    result, params = run_case(case)
    household_id = str(case["household"]["household_id"])
    rows = result.households.filter(pl.col("household_id") == household_id).to_dicts()
    assert len(rows) == 1
    row = rows[0]

    colour = expected.pop("colour")
    _expect_equal(row["risk_codes"], list(expected.pop("risk_codes")), "risk_codes")
    if expected.pop("listed", True) is False:  # risks, but kept off the list by a decision
        _expect_equal(row["colour"], colour, "colour")
        assert not row["listed"] and row["listing_status"] is None
        assert household_id not in result.suspects["household_id"].to_list()
    elif colour in NOT_LISTED:
        assert not row["listed"] and row["colour"] is None and row["listing_status"] is None
        assert household_id not in result.suspects["household_id"].to_list()
    else:
        _expect_equal(row["colour"], colour, "colour")
        _expect_equal(row["listing_status"], expected.pop("listing_status"), "listing_status")
        assert result.suspects["household_id"].to_list().count(household_id) == 1

    if "removal_candidate" in expected:
        proposed = household_id in result.candidates["household_id"].to_list()
        _expect_equal(proposed, expected.pop("removal_candidate"), "removal candidate")
    if "stale_line" in expected:
        stale = any("stale monitoring line" in w for w in params.warnings)
        _expect_equal(stale, expected.pop("stale_line"), "stale monitoring line warning")
    for risk, count in (expected.pop("evidence", None) or {}).items():
        rows_for_risk = result.evidence.filter(pl.col("risk_code") == risk).height
        _expect_equal(rows_for_risk, count, f"evidence rows for {risk}")
    for source, counts in (expected.pop("match_rates", None) or {}).items():
        rates = result.match_rates.filter(pl.col("source") == source).to_dicts()[0]
        for key, value in counts.items():
            _expect_equal(rates[key], value, f"match_rates {source} {key}")
    _, id_of = build(case)
    for name, facts in (expected.pop("members", None) or {}).items():
        member = result.members.filter(pl.col("id_number") == id_of[name]).to_dicts()[0]
        for key, value in facts.items():
            _expect_equal(member[key], value, f"member {name} {key}")
    for column, value in expected.items():
        assert column in row, f"unknown expected key {column!r}"
        _expect_equal(row[column], value, column)
