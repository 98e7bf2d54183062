"""The province's picture of a period, made from its counties' results:

    <province out>/<P>/province_summary.parquet   county × township × colour, with status
    <province out>/province.duckdb                views over every period and county
    <province out>/<P>/run-report.html            the counties side by side

Made in the flow's own process after every county's task, from what the tasks handed back
(counts and paths). The summary covers every county of the province file: a county not
screened by this run (`--county`) is there with its latest run of the period, as its
database tells it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from screening.province.county import CountyResult
from screening.vocab import COLOURS

if TYPE_CHECKING:
    import polars as pl

SUMMARY_FILE = "province_summary.parquet"
DATABASE_FILE = "province.duckdb"
REPORT_FILE = "run-report.html"


@dataclass(frozen=True)
class RollUp:
    summary: Path
    database: Path
    report: Path


def database_path(out: Path) -> Path:
    return out / DATABASE_FILE


def summary_frame(period: str, results: Sequence[CountyResult]) -> pl.DataFrame:
    """One row per county, township and colour listed (one row with no township for a
    county without lists of the period), in the province file's order."""
    import polars as pl

    from screening import tables

    table = tables.table("province_summary")
    rows = []
    for r in results:
        base: dict[str, object] = {
            "period": period,
            "county": r.county,
            "status": r.status,
            "run_id": r.run_id,
            "lists_run_id": r.lists_run_id,
            "message": r.message or None,
        }
        listed = sorted(r.listed, key=lambda x: (x[0], _colour_order(x[1])))
        if not listed:
            rows.append({**base, "township": None, "colour": None, "households": None})
        rows += [{**base, "township": t, "colour": c, "households": n} for t, c, n in listed]
    return table.conform(pl.DataFrame(rows, schema=table.schema))


def _colour_order(colour: str) -> int:
    return COLOURS.index(colour) if colour in COLOURS else len(COLOURS)


def roll_up(
    out: Path,
    period: str,
    results: Sequence[CountyResult],
    *,
    busy_timeout: float,
    config_file: Path,
    generated_at: dt.datetime | None = None,
) -> RollUp:
    """Write the period's summary and report, and (re)build province.duckdb's views. The
    caller holds province.duckdb's lock."""
    from screening.db import province as db_province
    from screening.db.connect import connect
    from screening.province.county import _PERIOD_FOLDER
    from screening.province.report import render_html
    from screening.publish.files import period_dir, write_atomic, write_text_atomic

    folder = period_dir(out, period)
    frame = summary_frame(period, results)
    summary = write_atomic(folder / SUMMARY_FILE, lambda tmp: frame.write_parquet(tmp))
    summaries = sorted(
        p / SUMMARY_FILE
        for p in out.iterdir()
        if _PERIOD_FOLDER.fullmatch(p.name) and (p / SUMMARY_FILE).is_file()
    )
    exports: dict[str, list[Path]] = {}
    for r in results:
        for name, path in r.exports.items():
            exports.setdefault(name, []).append(Path(path))
    published = {r.county: [Path(p) for p in r.published] for r in results}
    database = database_path(out)
    con = connect(database, wait=busy_timeout)
    try:
        db_province.build_views(con, summaries, exports, published)
    finally:
        con.close()
    made = generated_at or dt.datetime.now().replace(microsecond=0)
    page = render_html(period, results, made, config_file)
    report = write_text_atomic(folder / REPORT_FILE, page)
    return RollUp(summary, database, report)
