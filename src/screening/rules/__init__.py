"""The screening rules (docs/screening-rules.md): one file per department, each risk point
defined once, and the engine that applies them.

    medical.py     医保  MEDICAL
    education.py   教育  EDUCATION, DROPOUT
    traffic.py     交警  ACCIDENT
    disability.py  残联  DISABILITY
    civil.py       民政  ASSISTANCE
    roster.py      人口  LOW_INCOME, SPENDING, INCOME_DROP, labour capacity
    relief.py      防贫保预估 relief_estimate (optional; no records of its own, no risk)

`DEPARTMENTS` lists them in the rule table's order, which is also the order of
`risk_codes` and of the evidence. Adding a risk point: a `RiskPoint` in its department's
file (a new department: a new file listed here and its schema in schemas/), its
parameters in parameters/default.yaml and its cases in tests/rules/.
"""

from __future__ import annotations

from screening import contract
from screening.rules import civil, disability, education, medical, relief, roster, traffic
from screening.rules.base import Department, RiskPoint

DEPARTMENTS: tuple[Department, ...] = (
    medical.DEPARTMENT,
    education.DEPARTMENT,
    traffic.DEPARTMENT,
    disability.DEPARTMENT,
    civil.DEPARTMENT,
    roster.DEPARTMENT,
    relief.DEPARTMENT,
)
DEPARTMENT_BY_SOURCE: dict[str, Department] = {d.source: d for d in DEPARTMENTS}
# The departments whose records the rules read (all but the roster, which is the
# population), in the contract's order of sources: the order of match rates.
EVENT_DEPARTMENTS: tuple[Department, ...] = tuple(
    DEPARTMENT_BY_SOURCE[s]
    for s in contract.SOURCES
    if s in DEPARTMENT_BY_SOURCE and DEPARTMENT_BY_SOURCE[s].is_events
)
EVENT_SOURCES: tuple[str, ...] = tuple(d.source for d in EVENT_DEPARTMENTS)
RISKS: tuple[RiskPoint, ...] = tuple(r for d in DEPARTMENTS for r in d.risks)
RISK_BY_CODE: dict[str, RiskPoint] = {r.code: r for r in RISKS}
RISK_LABELS: dict[str, str] = {r.code: r.label for r in RISKS}
# What an evidence row's risk_code may say: a risk, or the relief estimate's breakdown.
EVIDENCE_LABELS: dict[str, str] = {**RISK_LABELS, relief.CODE: relief.LABEL}
# Months before P of the earlier roster snapshots the rules read (Department.earlier_rosters).
EARLIER_ROSTERS: tuple[int, ...] = tuple(
    sorted({m for d in DEPARTMENTS for m in d.earlier_rosters})
)


def risks_fed_by(source: str) -> tuple[str, ...]:
    """The risk codes a source's data feeds: what may be missed when it is absent. The
    roster is the population, so every risk needs it."""
    if source == "roster":
        return tuple(RISK_LABELS)
    return tuple(r.code for r in RISKS if source in r.sources)


def rule_columns(source: str) -> tuple[str, ...]:
    """The columns of an events source's records that the rules read."""
    return DEPARTMENT_BY_SOURCE[source].reads
