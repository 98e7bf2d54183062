"""The run report: what a run read, rejected, matched and listed, and what to worry about.

One `RunReport` renders three ways, from the same counts and warnings: `run-report.md`
beside the lists (markdown.py: Chinese, with the English keys analysts search for),
`run-report.html` for the director (html.py, charts.py: one self-contained page) and rich
tables on the console (console.py). Here are the report's parts and the numbers and
sentences every rendering shares (the summary, the township table, warnings). Rendering is
pure: the same report gives the same text, and the only times shown are those the caller
passes in. `stored_parts` reads the parts a run and a report rebuilt later take from the
database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Required, TypedDict

import duckdb
import polars as pl

from screening import contract, vocab
from screening.config import DEMO_WORDS
from screening.db import deliveries as db_deliveries
from screening.db import inspect as db_inspect
from screening.db import linkage as db_linkage
from screening.db import roster as db_roster
from screening.ids import mask_text
from screening.inspect.quarantine import check_label
from screening.params import ResolvedParams
from screening.periods import period_words
from screening.publish.about import (
    ABSENT,
    delivery_notes,
    missing_sources_sentence,
)
from screening.publish.columns import SUSPECTS_SCHEMA
from screening.publish.files import township_folders
from screening.publish.history import History, load_history
from screening.rules import RISK_LABELS, followup
from screening.vocab import COLOURS, STATUSES

REPORT_FILE = "run-report.md"
HTML_FILE = "run-report.html"
DEMO_SENTENCE = f"{DEMO_WORDS} data of the bundled synthetic county: nobody listed exists"
OVERDUE_SCHEMA = {"township": pl.String(), "overdue": pl.Int64(), "due": pl.Date()}
TOTAL = "合计"
# Notes the markdown and the page both print: (Chinese, English); the page shows the Chinese.
SCALE_NOTE = (
    "规模校验只用于检查数据和筛查标准是否合理，不是名单上限（监测对象应纳尽纳，不设规模限制）。",
    "a plausibility check of the data and thresholds, never a cap on a list",
)
ANSWERS_NOTE = (
    "需核实：上月名单中纳入状态为新增或持续的户；已反馈及其结果为各户当前的核实结果；"
    "逾期未反馈：上月名单公布后超过核实时限仍无结果的户（时限未到时为 0）。",
    "awaiting: the previous list's 新增 / 持续 households; answered: those with a result; "
    "overdue: no result after the time limit",
)
PRECISION_NOTE = (
    "确认率 = 确认纳入 ÷（确认纳入 + 不予纳入），待核实和尚未反馈的户次不计入；一户列出时可有"
    "多个风险点、多个部门的记录，各计一次。",
    "precision = confirmed ÷ (confirmed + declined); a listing counts once for each of its "
    "risk points and departments",
)
NO_ANSWERS = (
    "此前各期名单尚无乡镇的确认纳入或不予纳入结果，有结果后在此显示各风险点和各部门的确认率。",
    "no final answers on earlier lists yet",
)


class FileRead(TypedDict, total=False):
    """One row of `ingest_log`; a missing source has a row with file None."""

    source: Required[str]
    file: Required[str | None]
    status: Required[str]  # loaded / missing / rejected / empty / held / withdrawn
    rows_read: Required[int | None]
    rows_accepted: Required[int | None]
    rows_rejected: Required[int | None]
    # Rows identical to an earlier row of the file, counted once.
    rows_duplicate: Required[int | None]
    message: Required[str | None]
    warning: str | None  # the file named another month, was another month's, gates' warnings


class RejectedCount(TypedDict):
    """Quarantined rows of one source that failed one check on one column."""

    source: str
    column: str
    check: str
    rows: int


class MatchRate(TypedDict):
    source: str
    records_in_window: int
    matched: int
    unmatched: int


def _no_suspects() -> pl.DataFrame:
    return pl.DataFrame(schema=SUSPECTS_SCHEMA)


def _no_scale() -> pl.DataFrame:
    return pl.DataFrame(schema=followup.SCALE_SCHEMA)


def _no_overdue() -> pl.DataFrame:
    return pl.DataFrame(schema=OVERDUE_SCHEMA)


def _no_candidates() -> pl.DataFrame:
    return pl.DataFrame(schema=followup.CANDIDATES_SCHEMA)


HELD_SCHEMA = {
    "source": pl.String(),
    "file": pl.String(),
    "gate": pl.String(),
    "measured": pl.Float64(),
    "threshold": pl.Float64(),
    "held_at": pl.Datetime(),
    "accepted_by": pl.String(),
    "accepted_at": pl.Datetime(),
}


def _no_held() -> pl.DataFrame:
    return pl.DataFrame(schema=HELD_SCHEMA)


REJECTED_ROWS_SCHEMA = {
    "source": pl.String(),
    "check": pl.String(),
    "rows": pl.Int64(),
    "cells": pl.Int64(),
}


def _no_rejected_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_ROWS_SCHEMA)


def _no_linkage() -> pl.DataFrame:
    return pl.DataFrame(schema=db_linkage.REPORT_SCHEMA)


@dataclass
class RunReport:
    period: str
    run_id: str
    files: list[FileRead] = field(default_factory=list)
    rejected: list[RejectedCount] = field(default_factory=list)
    match_rates: list[MatchRate] = field(default_factory=list)
    suspects: pl.DataFrame = field(default_factory=_no_suspects)  # output-contract columns
    warnings: list[str] = field(default_factory=list)
    params: ResolvedParams | None = None  # the parameters in force
    all_townships: list[str] = field(default_factory=list)  # shown with 0 when none listed
    township: str | None = None  # set for a one-township re-run
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    scale: pl.DataFrame = field(default_factory=_no_scale)  # followup.SCALE_SCHEMA
    overdue: pl.DataFrame = field(default_factory=_no_overdue)  # OVERDUE_SCHEMA
    candidates: pl.DataFrame = field(default_factory=_no_candidates)
    # Sentences on stored deliveries used instead of this period's files, and held files
    # accepted (`publish.delivery_note`): said before every other warning.
    deliveries: list[str] = field(default_factory=list)
    held: pl.DataFrame = field(default_factory=_no_held)  # the period's held_deliveries
    # db_roster.ROSTER_QUALITY_SQL's findings, by name; empty: nothing to say.
    quality: dict[str, pl.DataFrame] = field(default_factory=dict)
    # Township → folder, where they differ (unsafe names, names differing only in case).
    folders: dict[str, str] = field(default_factory=dict)
    demo: bool = False  # made from the bundled synthetic sample
    # Quarantined rows per source and check (a row failing one check in two columns once).
    rejected_rows: pl.DataFrame = field(default_factory=_no_rejected_rows)
    # The lists over the screened periods, the answers on the previous list, precision.
    history: History = field(default_factory=History)
    # Per department, matched by ID number and with confirmed links, and the records on
    # the 身份核对 lists still unanswered (db.linkage.report_rows); see _md_linkage.
    linkage: pl.DataFrame = field(default_factory=_no_linkage)


def stored_parts(
    con: duckdb.DuckDBPyConnection, period: str, run_id: str, all_townships: list[str]
) -> dict[str, Any]:
    """The report's parts on deliveries, the roster, the folders and the earlier periods,
    read the same way for a run (after it stored its lists and screened households) and for
    a report rebuilt later."""
    return {
        "deliveries": list(
            delivery_notes(db_deliveries.run_events(con, run_id), english=True).values()
        ),
        "held": db_deliveries.held_of_period(con, period),
        "quality": db_roster.roster_quality(con, period, vocab.HEAD_RELATION),
        "folders": {t: f for t, f in township_folders(all_townships).items() if t != f},
        "rejected_rows": db_inspect.quarantine_counts(con, period).select(
            pl.col(k).cast(t) for k, t in REJECTED_ROWS_SCHEMA.items()
        ),
        "history": load_history(con, period),
        "linkage": db_linkage.report_rows(con, period),
    }


# ---------------------------------------------------------------- warnings


def file_warnings(files: Iterable[FileRead] | pl.DataFrame) -> list[str]:
    """Why a source's file was rejected whole (from `ingest_log` rows). Missing sources are
    said once, by the report's leading sentence."""
    rows = files.iter_rows(named=True) if isinstance(files, pl.DataFrame) else files
    warnings = []
    for row in rows:
        label = contract.label(row["source"])
        if row["status"] == "rejected":
            warnings.append(
                f"{label}文件整表拒收 ({row['source']} rejected): {row['file']}: {row['message']}"
            )
        if row["status"] == "held":
            warnings.append(
                f"{label}文件暂扣，本期无{label}数据 ({row['source']} held): {row['file']}: "
                f"{row['message']}"
            )
        if row.get("warning"):
            warnings.append(
                f"{label}文件提示 ({row['source']} warning)：{row['file']}：{row['warning']}"
            )
    return warnings


def overdue_warning(overdue: pl.DataFrame) -> list[str]:
    if not overdue.height:
        return []
    total = int(overdue["overdue"].sum())
    due = overdue["due"][0]
    return [
        f"{total} 户上期名单超过核实时限（{due.isoformat()}）仍无核实结果 "
        f"(overdue verifications of the previous list: no answer by {due.isoformat()})"
    ]


def headless_warning(households_without_head: int) -> list[str]:
    if not households_without_head:
        return []
    return [
        f"{households_without_head} 户没有户主，以第一位成员代替 "
        "(households without a head; the first member stands in)"
    ]


# ---------------------------------------------------------------- counts


def township_colour_counts(suspects: pl.DataFrame, townships: Iterable[str] = ()) -> pl.DataFrame:
    """township, 红, 黄, 蓝, 合计: one row per township (listed or named), then the total."""
    names = sorted(set(townships) | set(suspects["township"].to_list()))
    counts = suspects.group_by("township", "colour").len()
    rows = []
    for name in [*names, TOTAL]:
        mine = counts if name == TOTAL else counts.filter(pl.col("township") == name)
        by_colour = {c: int(mine.filter(pl.col("colour") == c)["len"].sum()) for c in COLOURS}
        rows.append({"township": name, **by_colour, TOTAL: int(mine["len"].sum())})
    schema = {"township": pl.String, **dict.fromkeys([*COLOURS, TOTAL], pl.Int64)}
    return pl.DataFrame(rows, schema=schema, orient="row")


def risk_counts(suspects: pl.DataFrame) -> pl.DataFrame:
    """risk_code, label, households: every known risk point (0 included), then any others."""
    per_code = suspects.select(pl.col("risk_codes").list.unique()).explode("risk_codes")
    counted = dict(per_code.group_by("risk_codes").len().iter_rows())
    codes = [*RISK_LABELS, *sorted(c for c in counted if c is not None and c not in RISK_LABELS)]
    return pl.DataFrame(
        {
            "risk_code": codes,
            "label": [RISK_LABELS.get(c, c) for c in codes],
            "households": [int(counted.get(c, 0)) for c in codes],
        },
        schema={"risk_code": pl.String, "label": pl.String, "households": pl.Int64},
    )


def status_counts(suspects: pl.DataFrame) -> dict[str, int]:
    """Listed households per listing status, in the contract's order of statuses."""
    counted = dict(suspects.group_by("listing_status").len().iter_rows())
    others = sorted(s for s in counted if s not in STATUSES and s is not None)
    return {s: int(counted.get(s, 0)) for s in [*STATUSES, *others]}


def source_statuses(files: Sequence[FileRead]) -> dict[str, str]:
    """One status per source: loaded when any of its files was, else the first one's."""
    statuses: dict[str, str] = {}
    for f in files:
        if statuses.get(f["source"]) != "loaded":
            statuses[f["source"]] = (
                "loaded" if f["status"] == "loaded" else statuses.get(f["source"], f["status"])
            )
    return statuses


def rate(matched: int, total: int) -> str:
    """A share as the report shows it (12.3%); — when there is nothing to share."""
    return f"{matched / total:.1%}" if total else "—"


def number(value: int | None) -> str:
    """A count as the report shows it (1,234); blank when unknown."""
    return "" if value is None else f"{value:,}"


def all_warnings(report: RunReport) -> list[str]:
    """Every warning of the run, once each, ID numbers masked (they name files): the one
    about sources the lists were made without first, then the caller's."""
    statuses = source_statuses(report.files)
    known = contract.SOURCES
    absent = [s for s in known if statuses.get(s, "missing") in ABSENT]
    absent += sorted(s for s, st in statuses.items() if s not in known and st in ABSENT)
    lead = [missing_sources_sentence(absent, statuses)] if report.files and absent else []
    said = lead + report.deliveries + _shortening(report) + report.warnings
    return list(dict.fromkeys(mask_text(w) for w in said))


def _shortening(report: RunReport) -> list[str]:
    """The roster findings that take households off the lists, said among the warnings and
    not only in the data-quality section: a township gone from the roster, persons whose
    rows were all quarantined."""
    said = []
    gone = report.quality.get("vanished_townships")
    if gone is not None and gone.height:
        names = "、".join(f"{t}（上期 {n} 户）" for t, n in gone.iter_rows())
        said.append(
            f"本期人口库中没有这些乡镇，它们本期没有名单：{names}；请确认人口库是否完整 "
            f"(townships of the roster before are missing from this one, they have no list: "
            f"{', '.join(gone['township'])})"
        )
    copies = report.quality.get("roster_copies")
    if copies is not None and copies.height:
        said.append(
            f"人口库中 {copies.height} 人在本户有多行且内容不同，均已拒收，未计入任何一户，"
            f"涉及 {copies['household_id'].n_unique()} 户（见“数据质量”）(roster: "
            f"{copies.height} persons with differing rows, all quarantined, counted in no "
            "household; see Data quality)"
        )
    return said


QUALITY_TITLES = {
    "split_townships": "成员所填乡镇不一致的户 households whose members name two townships",
    "several_heads": "有多个户主的户 (households with several heads)",
    "no_head": "没有户主的户 (households without a head)",
    "two_households": "同一人出现在两户 (persons in two households)",
    "roster_copies": "同一人在本户有多行且内容不同（均已拒收） (persons whose rows in their "
    "household differ, all quarantined)",
    "vanished_townships": "上期人口库有、本期人口库没有的乡镇 (townships of the snapshot "
    "before that this one lacks)",
    "duplicates_touch": "同一记录多份且内容不同（均已拒收）涉及的户 (households touched by "
    "differing copies of one record; duplicate_key, all quarantined)",
}

# Findings a warning says already (headless_warning): not said twice.
QUALITY_WARNED = ("no_head", "roster_copies", "vanished_townships")  # _shortening says these


def quality_counts(report: RunReport) -> list[str]:
    """One line per data-quality finding, for the console and the page (those a warning
    says already left out)."""
    return [
        f"{QUALITY_TITLES[name]}: {report.quality[name].height:,}"
        for name in QUALITY_TITLES
        if name in report.quality and report.quality[name].height and name not in QUALITY_WARNED
    ]


def share(value: float | None) -> str:
    """A share already divided (0.123 → 12.3%); — when there is none."""
    return "—" if value is None else f"{value:.1%}"


# ---------------------------------------------------------------- summary, townships, checks


def summary_lines(report: RunReport) -> tuple[str, str]:
    """The report's two opening lines: the households listed, by colour; and the change
    against the month before (新增 / 持续 / no longer listed), or that there is no list to
    compare with."""
    counts = dict(report.suspects.group_by("colour").len().iter_rows())
    scope = report.township or "全县"
    by_colour = "、".join(f"{c} {counts.get(c, 0):,} 户" for c in COLOURS)
    first = (
        f"{period_words(report.period)}{scope}列出疑似监测户 {report.suspects.height:,} 户："
        f"{by_colour}。"
    )
    statuses = status_counts(report.suspects)
    if report.township:  # one township's re-run: the month before is the county's
        return first, (
            f"其中新增 {statuses[vocab.STATUS_NEW]:,} 户，持续 "
            f"{statuses[vocab.STATUS_CONTINUING]:,} 户，已在监测 "
            f"{statuses[vocab.STATUS_MONITORED]:,} 户，已确认待录入 "
            f"{statuses[vocab.STATUS_CONFIRMED]:,} 户。"
        )
    last_month = report.history.last_month
    previous = report.history.previous
    if last_month is None or previous is None:
        when = period_words(last_month) if last_month else "上月"
        return first, f"{when}没有筛查名单，无从比较。"
    second = (
        f"与{period_words(last_month)}（{previous['listed']:,} 户）相比：新增 "
        f"{statuses[vocab.STATUS_NEW]:,} 户，持续 {statuses[vocab.STATUS_CONTINUING]:,} 户，"
        f"已在监测 {statuses[vocab.STATUS_MONITORED]:,} 户，已确认待录入 "
        f"{statuses[vocab.STATUS_CONFIRMED]:,} 户；"
    )
    dropped = _dropped(report)
    gone = f"上月名单中 {dropped:,} 户本期不再列出。" if dropped else "上月名单中的户本期都仍列出。"
    return first, second + gone


def _dropped(report: RunReport) -> int:
    this = report.history.lists.filter(pl.col("period") == report.period)
    return int(this["dropped"][0]) if this.height else 0


TOWNSHIP_SCHEMA = {
    "township": pl.String,
    **dict.fromkeys(COLOURS, pl.Int64),
    TOTAL: pl.Int64,
    "awaiting": pl.Int64,  # the previous list's 新增 / 持续 households
    "answered": pl.Int64,
    "answered_share": pl.Float64,
    "confirmed": pl.Int64,
    "declined": pl.Int64,
    "pending": pl.Int64,
    "overdue": pl.Int64,
    "base_households": pl.Int64,  # 脱贫户 + 监测户 on the roster in force
    "share_of_base": pl.Float64,
}


def township_table(report: RunReport) -> pl.DataFrame:
    """One row per township, then the county (TOTAL): this list by colour; the answers on
    the previous list (households it asked to verify, answered and how, overdue); and the
    scale against 脱贫户 + 监测户 (information for checking the data and the thresholds,
    never a cap: TOWNSHIP_SCHEMA)."""
    towns = township_colour_counts(report.suspects, report.all_townships)
    answers = {r["township"]: r for r in report.history.answers.iter_rows(named=True)}
    overdue = dict(report.overdue.select("township", "overdue").iter_rows())
    scale = {r["township"]: r for r in report.scale.iter_rows(named=True)}
    rows = []
    for town in towns.iter_rows(named=True):
        name = town["township"]
        total = name == TOTAL
        mine = list(answers.values()) if total else [answers[name]] if name in answers else []
        got = {k: sum(int(a[k]) for a in mine) for k in ("awaiting", "answered", "confirmed",
                                                          "declined", "pending")}  # fmt: skip
        late = sum(overdue.values()) if total else overdue.get(name, 0)
        size = scale.get(None if total else name) or {}
        rows.append(
            {
                **town,
                **got,
                "answered_share": got["answered"] / got["awaiting"] if got["awaiting"] else None,
                "overdue": int(late),
                "base_households": size.get("base_households"),
                "share_of_base": size.get("share_of_base"),
            }
        )
    return pl.DataFrame(rows, schema=TOWNSHIP_SCHEMA, orient="row")


def rejected_by_check(report: RunReport) -> pl.DataFrame:
    """Quarantined rows per department and check, the check in Chinese (its key after it),
    in the contract's order of sources, the most frequent check first: source, department,
    check, check_label, rows."""
    frame = report.rejected_rows
    labels = [check_label(c) for c in frame["check"]]
    departments = [contract.long_name(s) for s in frame["source"]]
    order = [contract.source_order(s)[0] for s in frame["source"]]
    return (
        frame.with_columns(
            department=pl.Series(departments, dtype=pl.String),
            check_label=pl.Series(labels, dtype=pl.String),
            _order=pl.Series(order, dtype=pl.Int64),
        )
        .sort(["_order", "source", "rows", "check"], descending=[False, False, True, False])
        .select("source", "department", "check", "check_label", "rows")
    )
