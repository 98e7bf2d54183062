"""The rule cases of tests/rules/cases/*.yaml and how they are built into screening inputs.

A case is written for a domain expert (OpenFisca style): a period, the household with its
members and their department records (only the fields that matter), and the expected
outcome. The runner fills in the rest the way the loader would deliver it:

- each member's ID number is a valid synthetic one made from the birth date and the
  member's position in the case (region 430624, deterministic);
- record keys (settlement_id, record_id, accident_id, certificate_no) are numbered when
  not given; a record without its rule date is dated the first day of the period;
  money left out is empty, except where the contract says empty means 0 (fees, amounts);
- `others` are persons who are not on the roster, with records (unmatched records);
- `parameters` overrides parameters by name: a bare value is in force since 1900-01-01,
  a mapping gives effective dates (as in a parameters file).

- `decisions` are the townships' latest decisions on earlier lists: `result` (确认纳入 /
  不予纳入 / 待核实), `date`, `list` (the period of the list decided on) and `codes` (the
  risk codes the household had on that list; left out: not stored, so only a newer
  record can bring a declined household back); household_id defaults to the case's
  household;
- `earlier` gives earlier screened periods for the risk-removal check: period → the
  household's risk codes then ([] = no risk) (household_id defaults to the case's household).
- a household's `income_12m_before` puts it, with the same members, on the roster
  snapshot in force 12 months before P (INCOME_DROP), with that per-capita income (and
  `village_12m_before` if it lived elsewhere then); without any, no such snapshot is
  stored. The snapshot's period is 12 months before P unless `roster_12m_before` (the
  case's) names an earlier one.
Expected: `colour` (红 / 黄 / 蓝, or 不列入 / null when not listed) and `risk_codes` always;
`listed: false` for a household with risks that a 不予纳入 decision keeps off the list;
`listing_status` whenever listed; optionally `labour_capacity`, any money or count column
of the households table (medical_oop, rigid_expenditure, household_size, …), `stale_line`,
`evidence` (risk → number of evidence rows), `match_rates` (source → counts) and
`members` (name → age / is_head / disability_grade), `removal_candidate` (true / false),
`last_decision` and `last_decision_date`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from screening import contract, ids
from screening.params import ParameterSet, ResolvedParams, load
from screening.periods import shift
from screening.rules import EVENT_SOURCES, followup
from screening.rules.screen import ScreenInputs, ScreenResult, screen, source_schema

RULES_DIR = Path(__file__).parents[1] / "rules" / "cases"
REGION = "430624"
GENERATED_KEYS = {
    "medical": "settlement_id",
    "education": "record_id",
    "traffic": "accident_id",
    "disability": "certificate_no",
}
CASE_KEYS = {"name", "period", "parameters", "previous_listed", "household", "households"}
CASE_KEYS |= {"others", "expected", "note", "decisions", "earlier", "roster_12m_before"}
DECISION_KEYS = {"household_id", "result", "date", "list", "codes"}
HOUSEHOLD_KEYS = {"household_id", "township", "village", "household_type"}
HOUSEHOLD_KEYS |= {"monitoring_status", "per_capita_income", "members"}
HOUSEHOLD_KEYS |= {"income_12m_before", "village_12m_before"}
MEMBER_KEYS = {"name", "relation", "birth", "per_capita_income", *EVENT_SOURCES}
NOT_LISTED = (None, "不列入")


def synthetic_id(birth: dt.date, seq: int) -> str:
    first17 = f"{REGION}{birth:%Y%m%d}{seq:03d}"
    return first17 + ids.check_digit(first17)


def _typed(ctype: str, value: Any) -> Any:
    if value is None:
        return None
    if ctype == "money":
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if ctype == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if ctype == "grade":
        return int(value)
    return str(value)


def _check_keys(given: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(given) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")


class _Builder:
    """Collects roster rows and department records for one case."""

    def __init__(self, period: str, earlier_period: str | None = None) -> None:
        self.period = period
        self.earlier_period = earlier_period or shift(period, -12)
        self.earlier: list[dict[str, Any]] = []  # the snapshot in force 12 months before
        self.first_day = dt.date.fromisoformat(f"{period}-01")
        self.specs = contract.load()
        self.roster: list[dict[str, Any]] = []
        self.events: dict[str, list[dict[str, Any]]] = {s: [] for s in EVENT_SOURCES}
        self.ids: dict[str, str] = {}  # member name → ID number
        self._seq = 0

    def person(self, member: Mapping[str, Any]) -> str:
        self._seq += 1
        id_number = synthetic_id(_typed("date", member["birth"]), self._seq)
        self.ids[str(member["name"])] = id_number
        for source in EVENT_SOURCES:
            for record in member.get(source) or []:
                self._record(source, id_number, str(member["name"]), record)
        return id_number

    def _record(self, source: str, id_number: str, name: str, given: Mapping[str, Any]) -> None:
        spec = self.specs[source]
        unknown = set(given) - set(spec.columns)
        if unknown:
            raise ValueError(f"{source} record: unknown fields {sorted(unknown)}")
        row = {key: _typed(col.type, col.empty) for key, col in spec.columns.items()}
        row |= {"id_number": id_number, "name": name}
        if source in GENERATED_KEYS:
            row[GENERATED_KEYS[source]] = f"{source[:3].upper()}{len(self.events[source]) + 1:05d}"
        assert spec.rule_date is not None
        row[spec.rule_date] = self.first_day
        for key, value in given.items():
            row[key] = _typed(spec.columns[key].type, value)
        n = len(self.events[source]) + 2
        row |= {"period": self.period, "file": f"{source}.csv", "row_number": n}
        self.events[source].append(row)

    def household(self, hh: Mapping[str, Any]) -> None:
        _check_keys(hh, HOUSEHOLD_KEYS, f"household {hh.get('household_id')}")
        for member in hh["members"]:
            _check_keys(member, MEMBER_KEYS, f"member {member.get('name')}")
            id_number = self.person(member)
            income = member.get("per_capita_income", hh.get("per_capita_income"))
            row = {
                "household_id": str(hh["household_id"]),
                "id_number": id_number,
                "name": str(member["name"]),
                "relation": member.get("relation"),
                "township": str(hh.get("township", "城关镇")),
                "village": str(hh.get("village", "东风村")),
                "household_type": hh.get("household_type"),
                "monitoring_status": hh.get("monitoring_status", "未监测"),
                "per_capita_income": _typed("money", income),
                "period": self.period,
                "file": "roster.csv",
                "row_number": len(self.roster) + 2,
            }
            self.roster.append(row)
            if "income_12m_before" in hh:
                self.earlier.append(
                    row
                    | {
                        "per_capita_income": _typed("money", hh["income_12m_before"]),
                        "village": str(hh.get("village_12m_before", row["village"])),
                        "period": self.earlier_period,
                        "row_number": len(self.earlier) + 2,
                    }
                )

    def inputs(self) -> ScreenInputs:
        def frame(source: str, rows: list[dict[str, Any]]) -> pl.LazyFrame:
            return pl.DataFrame(rows, schema=source_schema(source), orient="row").lazy()

        return ScreenInputs(
            population=frame("roster", self.roster),
            events={s: frame(s, self.events[s]) for s in EVENT_SOURCES},
            earlier_rosters={12: frame("roster", self.earlier)} if self.earlier else {},
        )


def build(case: Mapping[str, Any]) -> tuple[ScreenInputs, dict[str, str]]:
    """The screening inputs of a case (one `household` or a list of `households`), and
    member name → synthetic ID number."""
    _check_keys(case, CASE_KEYS, f"case {case.get('name')}")
    earlier = case.get("roster_12m_before")
    builder = _Builder(str(case["period"]), None if earlier is None else str(earlier))
    for hh in case.get("households") or [case["household"]]:
        builder.household(hh)
    for other in case.get("others") or []:
        _check_keys(other, MEMBER_KEYS, f"other person {other.get('name')}")
        builder.person(other)
    return builder.inputs(), builder.ids


@cache
def default_parameters() -> ParameterSet:
    return load()


def run_case(case: Mapping[str, Any], run_id: str = "test") -> tuple[ScreenResult, ResolvedParams]:
    period = str(case["period"])
    params_set = default_parameters()
    if case.get("parameters"):
        params_set = params_set.override(case["parameters"], origin=f"case {case['name']}")
    params = params_set.at(period)
    inputs, _ = build(case)
    previous = frozenset(str(h) for h in case.get("previous_listed") or [])
    return screen(inputs, period, params, previous, run_id, earlier_of(case, params)), params


def earlier_of(case: Mapping[str, Any], params: ResolvedParams) -> followup.Followup:
    """The decisions and earlier periods a case gives, as the database would deliver them."""
    own = str((case.get("household") or {}).get("household_id", ""))
    decisions = []
    for d in case.get("decisions") or []:
        _check_keys(d, DECISION_KEYS, f"decision of case {case.get('name')}")
        decisions.append(
            {
                "household_id": str(d.get("household_id", own)),
                "decision": d["result"],
                "decision_date": _typed("date", d["date"]),
                "decision_period": str(d["list"]),
                "decision_codes": None if d.get("codes") is None else list(d["codes"]),
            }
        )
    earlier = case.get("earlier") or {}
    by_period = {str(p): codes for p, codes in earlier.items()}
    periods = sorted(by_period)[-(params.risk_removal_clear_periods - 1) :]
    risky = [p for p in sorted(by_period) if by_period[p]]
    prior = pl.DataFrame(
        [
            {
                "household_id": own,
                "clear_periods": sum(1 for p in periods if not by_period[p]),
                "last_risk_period": risky[-1] if risky else None,
                "last_risk_codes": list(by_period[risky[-1]]) if risky else None,
                "last_risk_labels": None,
            }
        ]
        if by_period
        else [],
        schema=followup.PRIOR_SCHEMA,
    )
    return followup.Followup(
        decisions=pl.DataFrame(decisions, schema=followup.DECISIONS_SCHEMA),
        prior=prior,
        prior_periods=tuple(periods),
    )


def cases() -> list[Any]:
    found = []
    for path in sorted(RULES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            found.append(pytest.param(case, id=f"{path.stem}/{case['name']}"))
    return found
