"""The lists a township sends back, and how `screening feedback import` tells them apart.

Each returnable list is a `ListKind`: its name (the prefix of its file name and the title
of its 说明 sheet), the contract of the columns read back (schemas/<spec>.yaml), the
answers it takes, the households it lists and the table its answers go to. A file is
recognised by its 说明 sheet's title, else its file name, else by the answer column it
carries (`kind_of`). The 身份核对 list (pairs of a record and a roster person, not
households) is told apart before these (feedback/links.py) and has its own importer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb
import polars as pl

from screening import contract
from screening.contract import SourceSpec
from screening.db import answers as db_answers
from screening.db import runs as db_runs
from screening.publish.files import CANDIDATES_PREFIX, LIST_PREFIX
from screening.vocab import DECISIONS, PENDING, REMOVAL_DECISIONS


@dataclass(frozen=True)
class ListKind:
    name: str  # 疑似监测对象: its files' prefix; its 说明 sheet is titled name + 名单说明
    spec_name: str  # schemas/<spec_name>.yaml: the columns read back
    results: tuple[str, ...]  # the answers a row may carry
    undated: tuple[str, ...]  # answers that may leave their date blank
    table: str  # where its answers are stored (db.answers.ANSWER_TABLES)
    listed: Callable[[duckdb.DuckDBPyConnection, str], pl.DataFrame]  # household_id, township
    what: str  # the answers, for the console: "核实结果 verification results"
    # The stored table's names of the checked rows' columns (feedback.rows.DECISIONS_SCHEMA).
    renames: Mapping[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> SourceSpec:
        return _spec(self.spec_name)

    @property
    def about_title(self) -> str:
        return f"{self.name}名单说明"

    @property
    def answer_header(self) -> str:
        return self.spec.columns["verification_result"].aliases[0]

    def stored(self, columns: Sequence[str]) -> list[str]:
        """The stored table's names of these checked-row columns."""
        return [self.renames.get(c, c) for c in columns]


@cache
def _spec(name: str) -> SourceSpec:
    return contract.feedback(name)


SUSPECTS = ListKind(
    name=LIST_PREFIX,
    spec_name="feedback",
    results=DECISIONS,
    undated=(PENDING,),  # 待核实 is "not decided yet": a township often leaves it undated
    table="verifications",
    listed=db_runs.listed_households,
    what="核实结果 verification results",
)
REMOVALS = ListKind(
    name=CANDIDATES_PREFIX,
    spec_name="removal_feedback",
    results=REMOVAL_DECISIONS,
    undated=(),
    table="removal_decisions",
    listed=db_answers.removal_candidates,
    what="风险消除意见 risk-removal decisions",
    renames={"result": "decision", "verification_date": "decision_date"},
)
KINDS = (SUSPECTS, REMOVALS)


def kind_of(path: Path, about_title: str | None, readable: Callable[[ListKind], bool]) -> ListKind:
    """The list `path` is: the one its 说明 sheet's title names, else the one its file name
    starts with, else the first whose answer column it carries (`readable(kind)`), else
    the 疑似监测对象 list (whose import then says what is missing)."""
    title = (about_title or "").strip()
    for kind in KINDS:
        if title.endswith(kind.about_title):
            return kind
    for kind in KINDS:
        if path.name.startswith(kind.name):
            return kind
    for kind in KINDS:
        if readable(kind):
            return kind
    return SUSPECTS
