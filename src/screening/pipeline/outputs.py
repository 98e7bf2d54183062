"""What the publish stage makes of a screening result: one township's part of it, every
household's outcome row, each source's status as the lists describe it, and the run
report."""

from __future__ import annotations

import datetime as dt
from typing import cast

import duckdb
import polars as pl

from screening import contract, ids, params
from screening.db import deliveries as db_deliveries
from screening.publish import report
from screening.rules import followup, roster
from screening.rules.screen import ScreenResult


def for_township(
    result: ScreenResult, township: str | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The suspects, evidence and members of the result (one township's, for a township
    run)."""
    if township is None:
        return result.suspects, result.evidence, result.members
    suspects = result.suspects.filter(pl.col("township") == township)
    listed = suspects.select("household_id")
    return (
        suspects,
        result.evidence.join(listed, on="household_id", how="semi"),
        result.members.join(listed, on="household_id", how="semi"),
    )


def township_rows(township: str | None) -> pl.Expr:
    """The rows of the township (every row when None)."""
    return pl.lit(True) if township is None else pl.col("township") == township


def screened_households(result: ScreenResult, run_id: str) -> pl.DataFrame:
    """Every household's outcome as `screened_households` stores it."""
    return result.households.select(
        "period", "township", "village", "household_id", "household_type",
        "monitoring_status", "per_capita_income", "monitoring_line", "labour_capacity",
        "colour", "risk_codes", "risk_labels", "listed", "listing_status", "last_decision",
        "last_decision_date", run_id=pl.lit(run_id),
    )  # fmt: skip


def source_statuses(
    con: duckdb.DuckDBPyConnection,
    period: str,
    specs: dict[str, contract.SourceSpec],
    run_id: str,
) -> dict[str, str]:
    """Each source's delivery this period as the lists describe it: loaded, empty, missing,
    rejected, held or withdrawn (a file skipped as unchanged keeps the status of its first
    reading), or kept: this run could not use the period's file and the delivery stored
    before stayed in force."""
    files = db_deliveries.files_read(con, period)
    status = dict(files.select("source", "status").iter_rows())
    events = db_deliveries.run_events(con, run_id)
    for source in events.filter(pl.col("event") == "kept")["source"]:
        status[source] = "kept"
    return {source: status[source] for source in specs if source in status}


def build_report(
    con: duckdb.DuckDBPyConnection,
    period: str,
    run_id: str,
    result: ScreenResult,
    suspects: pl.DataFrame,
    resolved: params.ResolvedParams,
    all_townships: list[str],
    township: str | None,
    stray_files: list[str],
    started: dt.datetime,
    *,
    demo: bool = False,
) -> report.RunReport:
    """The run's report. Reads the run's screened households: call after storing them."""
    files = db_deliveries.files_read(con, period)
    rejected = db_deliveries.rejected_counts(con, period)
    overdue = followup.load_overdue(con, period, started.date(), resolved)
    warnings = [
        *resolved.warnings,
        *report.file_warnings(files),
        *report.headless_warning(result.households_without_head),
        *followup.scale_warnings(result.scale, resolved),
        *report.overdue_warning(overdue),
        *roster.coverage_warnings(con, period),
    ]
    if stray_files:
        # A scan named after its holder's ID number is a file name a person reads.
        names = ids.mask_text(", ".join(stray_files))
        warnings.append(f"收件箱中有未识别的文件 unrecognised files in the inbox: {names}")
    return report.RunReport(
        period=period,
        run_id=run_id,
        files=cast(list[report.FileRead], files.to_dicts()),
        rejected=cast(list[report.RejectedCount], rejected.to_dicts()),
        match_rates=cast(
            list[report.MatchRate],
            result.match_rates.select(
                "source", "records_in_window", "matched", "unmatched"
            ).to_dicts(),
        ),
        suspects=suspects,
        warnings=warnings,
        params=resolved,
        all_townships=all_townships,
        township=township,
        started_at=started,
        finished_at=dt.datetime.now().replace(microsecond=0),
        scale=result.scale,
        overdue=overdue,
        candidates=result.candidates,
        **report.stored_parts(con, period, run_id, all_townships),
        demo=demo,
    )
