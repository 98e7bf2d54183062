"""What the run report says beyond the period itself: how the lists moved over the
screened periods, the match rates over them, the townships' answers on the previous list,
and the share of each risk point's and each department's earlier listings that the
townships confirmed (precision: the figure provinces watch to cut false alarms).

Read from the database the same way for a run (after it stored its lists) and for
`screening report` (db/report.py holds the SQL); the pure functions below turn the counts
into the tables the markdown and the page show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

from screening import contract
from screening.db import report as db_report
from screening.periods import previous_period
from screening.rules import RISK_LABELS

LISTS_SCHEMA = {
    "period": pl.String,
    **dict.fromkeys(
        ("listed", "red", "yellow", "blue", "new", "continuing", "monitored", "confirmed"),
        pl.Int64,
    ),
    "dropped": pl.Int64,
}
MATCH_SCHEMA = {
    "period": pl.String,
    "source": pl.String,
    "records_in_window": pl.Int64,
    "matched": pl.Int64,
}
_COUNTS = ("listed", "answered", "confirmed", "declined", "pending")


def _empty(schema: dict[str, pl.DataType] | dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def _precision_schema(key: str) -> dict[str, type[pl.DataType]]:
    return {key: pl.String, **dict.fromkeys(_COUNTS, pl.Int64)}


@dataclass
class History:
    lists: pl.DataFrame = field(default_factory=lambda: _empty(LISTS_SCHEMA))
    match_rates: pl.DataFrame = field(default_factory=lambda: _empty(MATCH_SCHEMA))
    # The list the answers are about (the month before the period) and, per township,
    # db_report.ANSWERS_SCHEMA.
    last_month: str | None = None
    answers: pl.DataFrame = field(default_factory=lambda: _empty(db_report.ANSWERS_SCHEMA))
    precision_risk: pl.DataFrame = field(
        default_factory=lambda: _empty(_precision_schema("risk_code"))
    )
    precision_source: pl.DataFrame = field(
        default_factory=lambda: _empty(_precision_schema("source"))
    )

    @property
    def previous(self) -> dict[str, int] | None:
        """The previous period's counts (LISTS_SCHEMA), None when it has no list."""
        if self.last_month is None:
            return None
        rows = self.lists.filter(pl.col("period") == self.last_month)
        return rows.row(0, named=True) if rows.height else None

    @property
    def has_answers(self) -> bool:
        """Whether any earlier list has a final answer (确认纳入 / 不予纳入)."""
        decided = self.precision_risk.select(pl.col("confirmed", "declined").sum()).row(0)
        return any(decided)


def load_history(con: duckdb.DuckDBPyConnection, period: str) -> History:
    """The report's parts over the periods screened up to `period`."""
    previous = previous_period(period)
    return History(
        lists=db_report.lists_by_period(con, period).select(
            pl.col(k).cast(t) for k, t in LISTS_SCHEMA.items()
        ),
        match_rates=db_report.match_rates_by_period(con, period).select(
            pl.col(k).cast(t) for k, t in MATCH_SCHEMA.items()
        ),
        last_month=previous,
        answers=db_report.answers_by_township(con, previous),
        precision_risk=db_report.precision_by_risk(con, period),
        precision_source=db_report.precision_by_source(con, period),
    )


def precision_rows(history: History, by: str) -> pl.DataFrame:
    """Precision by risk point (`by` = "risk_code") or by department ("source"): every
    known one in the rules' or the contract's order, with its label, the listings, the
    answers and the confirmed share of the final answers (确认纳入 ÷ (确认纳入 + 不予纳入);
    null when none): key, label, listed, answered, confirmed, declined, pending, share."""
    frame = history.precision_risk if by == "risk_code" else history.precision_source
    found = {r[by]: r for r in frame.iter_rows(named=True)}
    if by == "risk_code":
        keys = [*RISK_LABELS, *sorted(k for k in found if k not in RISK_LABELS)]
        labels = [RISK_LABELS.get(k, k) for k in keys]
    else:
        keys = sorted(set(contract.SOURCES) | set(found), key=contract.source_order)
        labels = [contract.label(k) for k in keys]
    rows = []
    for key, label in zip(keys, labels, strict=True):
        counts = {c: int(found[key][c]) if key in found else 0 for c in _COUNTS}
        decided = counts["confirmed"] + counts["declined"]
        share = counts["confirmed"] / decided if decided else None
        rows.append({"key": key, "label": label, **counts, "share": share})
    schema = {"key": pl.String, "label": pl.String, **dict.fromkeys(_COUNTS, pl.Int64)}
    return pl.DataFrame(rows, schema={**schema, "share": pl.Float64}, orient="row")
