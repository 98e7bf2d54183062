"""A period's run report rebuilt from the database (`screening report`), so it can be read
when the published files are gone: the latest successful whole-county run, or the latest
run when only township runs were made, with the lists as they stand now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import duckdb
import polars as pl

from screening import vocab
from screening.db import deliveries as db_deliveries
from screening.db import inspect as db_inspect
from screening.db import roster as db_roster
from screening.inspect.base import (
    RunRecord,
    latest_run,
    require_tables,
    run_parameters,
    successful_runs,
)
from screening.periods import check_period
from screening.publish import report
from screening.rules import followup, roster, screen


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
    townships = db_roster.roster_townships(con, period)
    files = db_deliveries.files_read(con, period)
    scale = _as(db_inspect.scale_checks(con, period), followup.SCALE_SCHEMA)
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
        match_rates=cast(list[report.MatchRate], db_inspect.match_rates(con, period).to_dicts()),
        suspects=_as(db_inspect.suspects(con, period), screen.SUSPECTS_SCHEMA),
        warnings=[
            *resolved.warnings,
            *([] if origin.startswith("run ") else [f"参数 parameters: {origin}"]),
            *report.file_warnings(files),
            *_headless_warning(con, period),
            *followup.scale_warnings(scale, resolved),
            *report.overdue_warning(overdue),
            *roster.coverage_warnings(con, period),
            *_rerun_warnings(later),
            *_held_warnings(con, period, run),
        ],
        params=resolved,
        all_townships=townships,
        township=run.township,
        started_at=run.started_at,
        finished_at=run.finished_at,
        scale=scale,
        overdue=overdue,
        candidates=_as(db_inspect.removal_candidates(con, period), followup.CANDIDATES_SCHEMA),
        **report.stored_parts(con, period, run.run_id, townships),
    )


def _as(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(pl.col(n).cast(t) for n, t in schema.items())


def _after(a: RunRecord, b: RunRecord) -> bool:
    if a.finished_at is None or b.finished_at is None:
        return False
    return a.finished_at > b.finished_at or (a.finished_at == b.finished_at and a.run_id > b.run_id)


def _headless_warning(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    n = db_inspect.households_without_head(con, period, vocab.HEAD_RELATION)
    return report.headless_warning(n)


def _held_warnings(con: duckdb.DuckDBPyConnection, period: str, run: RunRecord) -> list[str]:
    """Runs after this one that a completeness gate stopped: they published nothing, so
    the lists are still this run's."""
    return [
        f"此后一次运行因数据暂扣未发布新名单 a later run was held, nothing published (run {r}; "
        "见 see 完整性检查暂扣 Held deliveries)"
        for r in db_inspect.held_runs_since(con, period, run.started_at)
    ]


def _rerun_warnings(later: list[RunRecord]) -> list[str]:
    return [
        f"此后单乡镇重跑 township re-run after it: {r.township} (run {r.run_id})"
        for r in reversed(later)
    ]
