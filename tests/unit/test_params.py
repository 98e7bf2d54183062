"""Rule parameters: effective dates, staleness, merging a county's file, malformed files."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from screening.params import ParameterError, load, period_end
from screening.rules.screen import screen
from tests.support.rule_cases import build


def write(tmp_path: Path, text: str, name: str = "county.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_resolve_every_rule_number() -> None:
    p = load().at("2026-09")
    assert p.monitoring_line == Decimal("6000.00")
    assert p.medical_oop_threshold == {
        "一般农户": Decimal("20000.00"),
        "监测户": Decimal("5000.00"),
        "脱贫户": Decimal("5000.00"),
    }
    assert p.education_cost_threshold == Decimal("8000.00")
    assert p.accident_loss_threshold == Decimal("10000.00")
    assert p.compulsory_school_age == (6, 15)
    assert p.working_age == (16, 59)
    assert p.severe_disability_grades == (1, 2)
    assert p.window_months == 12
    assert p.end == dt.date(2026, 9, 30)
    assert p.effective["monitoring_line"] == dt.date(2021, 1, 1)


def test_as_dict_is_flat_and_json_serialisable() -> None:
    p = load().at("2026-09")
    flat = p.as_dict()
    assert flat["medical_oop_threshold.一般农户"] == 20000
    assert flat["severe_disability_grades"] == [1, 2]
    assert json.loads(json.dumps(flat, ensure_ascii=False)) == flat
    provenance = json.loads(json.dumps(p.provenance(), ensure_ascii=False))
    assert provenance["monitoring_line"] == {
        "value": 6000,
        "effective": "2021-01-01",
        "reference": "2021 national floor, 1.5 × the poverty-period line (domain.md)",
    }


@pytest.mark.parametrize(
    ("period", "end"),
    [("2026-09", dt.date(2026, 9, 30)), ("2024-02", dt.date(2024, 2, 29)),
     ("2025-12", dt.date(2025, 12, 31))],
)  # fmt: skip
def test_period_end(period: str, end: dt.date) -> None:
    assert period_end(period) == end


@pytest.mark.parametrize("period", ["2026-13", "2026-9", "202609", "", "2026-00"])
def test_bad_period_is_rejected(period: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        load().at(period)


def test_value_in_force_on_the_last_day_of_the_period(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
monitoring_line:
  values:
    2025-01-01: 7000
    2025-09-30: 7200
    2025-10-01: 7500
""",
    )
    params = load(path)
    assert params.at("2025-08").monitoring_line == Decimal("7000.00")
    # Effective on end(P) itself: in force for P.
    assert params.at("2025-09").monitoring_line == Decimal("7200.00")
    assert params.at("2025-09").effective["monitoring_line"] == dt.date(2025, 9, 30)
    # Effective on the 1st of the next month: not yet.
    assert params.at("2025-10").monitoring_line == Decimal("7500.00")


def test_no_value_in_force_names_the_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, "education_cost_threshold:\n  values: {2026-01-01: 9000}\n")
    params = load(path)
    assert params.at("2026-01").education_cost_threshold == Decimal("9000.00")
    with pytest.raises(ParameterError, match=r"education_cost_threshold.*2025-12-31") as err:
        params.at("2025-12")
    assert str(path) in str(err.value)


def test_stale_monitoring_line_warns_in_chinese_and_english(tmp_path: Path) -> None:
    stale = load().at("2026-09")
    assert stale.monitoring_line_stale
    assert len(stale.warnings) == 1
    assert "监测标准沿用 2021-01-01 的 6000 元" in stale.warnings[0]
    assert "stale monitoring line" in stale.warnings[0]

    assert load().at("2021-12").warnings == []
    fresh = load(
        write(tmp_path, "monitoring_line:\n  values: {2021-01-01: 6000, 2026-01-01: 7000}")
    )
    assert fresh.at("2026-01").warnings == []
    assert fresh.at("2027-01").monitoring_line_stale


def test_county_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    # A county raises the 一般农户 medical threshold and keeps everything else.
    path = write(
        tmp_path,
        "medical_oop_threshold:\n  一般农户:\n    values:\n      2024-01-01: 26000\n",
    )
    merged = load(path).at("2026-09")
    defaults = load().at("2026-09")
    assert merged.medical_oop_threshold["一般农户"] == Decimal("26000.00")
    assert merged.medical_oop_threshold["脱贫户"] == Decimal("5000.00")
    changed = {k for k in defaults.as_dict() if merged.as_dict()[k] != defaults.as_dict()[k]}
    assert changed == {"medical_oop_threshold.一般农户"}
    # The county's values replace the default's history for that parameter.
    with pytest.raises(ParameterError, match=r"medical_oop_threshold\.一般农户"):
        load(path).at("2023-06")


def test_dotted_names_are_accepted_in_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "working_age.max:\n  values: {2021-01-01: 64}\n")
    assert load(path).at("2026-09").working_age == (16, 64)


def test_override_by_flat_name() -> None:
    params = (
        load()
        .override({"window_months": 6, "monitoring_line": {dt.date(2026, 1, 1): 7100}})
        .at("2026-09")
    )
    assert params.window_months == 6
    assert params.monitoring_line == Decimal("7100.00")
    assert params.warnings == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "expected a mapping of parameter names"),
        ("monitoring_line: [6000\n", "not valid YAML at line"),
        ("poverty_line:\n  values: {2021-01-01: 4000}\n", "unknown parameter poverty_line"),
        ("monitoring_line: 6500\n", "parameter monitoring_line: needs `values:`"),
        ("monitoring_line:\n  values: {}\n", "must map effective dates"),
        ("monitoring_line:\n  values: {2021-13-01: 6000}\n", "not an ISO date"),
        ("monitoring_line:\n  values: {2021-01-01: -1}\n", "non-negative amount"),
        ("monitoring_line:\n  values: {2021-01-01: 6000.001}\n", "non-negative amount"),
        ("monitoring_line:\n  values: {2021-01-01: '6000'}\n", "amount in yuan"),
        ("monitoring_line:\n  unit: year\n  values: {2021-01-01: 6000}\n", "unit must be"),
        ("monitoring_line:\n  valeus: {}\n  values: {2021-01-01: 1}\n", "unknown settings"),
        ("working_age:\n  min:\n    values: {2021-01-01: 16.5}\n", "whole years"),
        ("working_age: 16\n", "parameter working_age: expected a group"),
        ("severe_disability_grades:\n  values: {2021-01-01: [1, 5]}\n", "grades 1–4"),
        ("severe_disability_grades:\n  values: {2021-01-01: 1}\n", "grades 1–4"),
        ("window_months:\n  values: {2021-01-01: 0}\n", "months ≥ 1"),
        ("medical_oop_threshold:\n  五保户:\n    values: {2021-01-01: 1}\n", "五保户"),
    ],
)
def test_malformed_file_gives_one_line_naming_file_and_parameter(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ParameterError) as err:
        load(path)
    text_of_error = str(err.value)
    assert "\n" not in text_of_error
    assert text_of_error.startswith(str(path))
    assert message in text_of_error


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"missing\.yaml: cannot read parameters file"):
        load(tmp_path / "missing.yaml")


def test_age_range_upside_down_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "compulsory_school_age:\n  min:\n    values: {2021-01-01: 16}\n")
    with pytest.raises(ParameterError, match="compulsory_school_age: min 16 is above max 15"):
        load(path).at("2026-09")


def test_empty_county_file_means_defaults(tmp_path: Path) -> None:
    assert load(write(tmp_path, "# nothing changed\n")).at("2026-09").as_dict() == (
        load().at("2026-09").as_dict()
    )


def test_changing_a_threshold_in_a_file_changes_the_outcome(tmp_path: Path) -> None:
    case = {
        "name": "medical 15000 for an ordinary household",
        "period": "2026-09",
        "household": {
            "household_id": "H-P-1",
            "household_type": "一般农户",
            "per_capita_income": 20000,
            "members": [
                {
                    "name": "甲",
                    "relation": "户主",
                    "birth": dt.date(1970, 1, 1),
                    "medical": [{"out_of_pocket": 15000}],
                }
            ],
        },
    }
    inputs, _ = build(case)
    county = write(
        tmp_path, "medical_oop_threshold:\n  一般农户:\n    values: {2021-01-01: 15000}\n"
    )
    default_run = screen(inputs, "2026-09", load().at("2026-09"))
    county_run = screen(inputs, "2026-09", load(county).at("2026-09"))
    assert default_run.suspects.height == 0
    assert county_run.suspects["household_id"].to_list() == ["H-P-1"]
    assert county_run.suspects["risk_codes"].to_list() == [["MEDICAL"]]
    assert county_run.households.filter(pl.col("listed")).height == 1


def test_the_tree_is_read_by_name_typed_by_unit() -> None:
    p = load().at("2026-09")
    assert p.scale_check.ceiling == 0.10 and p.scale_check["expected_share"] == 0.05
    assert p.public_holidays[0] == dt.date(2026, 1, 1)
    assert p.verification_time_limit == 10
    with pytest.raises(AttributeError, match="poverty_line"):
        _ = p.poverty_line


def test_labels_and_the_words_of_the_values_come_from_the_file() -> None:
    lines = {name: (label, text) for name, label, text in load().at("2026-09").lines()}
    assert lines["monitoring_line"] == ("监测标准（元/人·年）", "6,000")
    assert lines["medical_oop_threshold"][1] == "脱贫户 5,000；监测户 5,000；一般农户 20,000"
    assert lines["working_age"][1] == "16–59"
    assert lines["scale_check"][1] == "预期 5%；上限 10%"
    assert lines["public_holidays"][1] == "33 天"  # a count, not 33 dates
    assert next(iter(lines)) == "monitoring_line"  # the file's order


def test_a_dated_value_carries_its_own_reference(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "monitoring_line:\n  values:\n    2021-01-01: 6000\n"
        "    2026-01-01: {value: 7200, reference: 某省2026年监测标准通知}\n",
    )
    p = load(path)
    assert p.at("2026-09").provenance()["monitoring_line"]["reference"] == "某省2026年监测标准通知"
    assert p.at("2026-09").monitoring_line == Decimal("7200.00")
    # The county's 2021 value has no document of its own, nor one inherited from the defaults.
    assert "reference" not in p.at("2025-09").provenance()["monitoring_line"]
    bad = write(tmp_path, "monitoring_line:\n  values:\n    2026-01-01: {amount: 7200}\n", "b.yaml")
    with pytest.raises(ParameterError, match=r"a dated entry is a value or \{value, reference\}"):
        load(bad)


def test_a_group_reference_is_each_value_s_reference() -> None:
    provenance = load().at("2026-09").provenance()
    assert "Handan" in provenance["medical_oop_threshold.脱贫户"]["reference"]


def test_ingest_limits_hold_for_any_period_and_a_county_can_change_them(tmp_path: Path) -> None:
    # Deliveries of any period can be ingested, before the rules' parameters begin too.
    early = load().ingest_limits("2001-01")
    assert early.max_amount == early.max_per_capita_income == Decimal("10000000.00")
    assert (early.xlsx_max_unzipped_bytes, early.xlsx_max_inflation) == (500_000_000, 200)
    county = write(
        tmp_path,
        "ingest_limits:\n"
        "  max_amount: {values: {2026-01-01: 50000000}}\n"
        "  xlsx_max_unzipped_mb: {values: {1900-01-01: 2000}}\n",
    )
    limits = load(county).ingest_limits("2026-09")
    assert limits.max_amount == Decimal("50000000.00")
    assert limits.max_per_capita_income == Decimal("10000000.00")
    assert limits.xlsx_max_unzipped_bytes == 2_000_000_000
    with pytest.raises(ParameterError, match=r"ingest_limits\.max_amount has no value in force"):
        load(county).ingest_limits("2025-12")


@pytest.mark.parametrize("value", ["0", "1.5", "-3", "'500'"])
def test_ingest_size_limits_are_whole_numbers(tmp_path: Path, value: str) -> None:
    county = write(
        tmp_path, f"ingest_limits:\n  xlsx_max_inflation: {{values: {{1900-01-01: {value}}}}}\n"
    )
    with pytest.raises(ParameterError, match=r"ingest_limits\.xlsx_max_inflation"):
        load(county)
