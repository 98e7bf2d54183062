"""The run report: what a run read, rejected, matched and listed, and what to worry about.

One `RunReport` renders two ways: `run-report.md` beside the lists (Chinese, with the
English keys analysts search for), here, and rich tables on the console (console.py), from
the same counts and warnings. Rendering is pure: the same report gives the same text, and
the only times shown are those the caller passes in.
`stored_parts` reads the parts a run and a report rebuilt later take from the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Required, TypedDict

import duckdb
import polars as pl

from screening import contract, ids, vocab
from screening.config import DEMO_LABEL
from screening.db import deliveries as db_deliveries
from screening.db import linkage as db_linkage
from screening.db import roster as db_roster
from screening.ids import mask_text
from screening.ingest import gates
from screening.params import ResolvedParams
from screening.publish.about import (
    ABSENT,
    delivery_notes,
    missing_sources_sentence,
    source_status,
)
from screening.publish.columns import SUSPECTS_SCHEMA
from screening.publish.files import period_dir, township_folders, write_text_atomic
from screening.rules import RISK_LABELS, followup
from screening.vocab import COLOURS, STATUSES

REPORT_FILE = "run-report.md"
DEMO_SENTENCE = (
    "数据来自程序自带的虚构示例县，所列人员均不存在 data of the bundled synthetic county: "
    "nobody listed exists"
)
OVERDUE_SCHEMA = {"township": pl.String(), "overdue": pl.Int64(), "due": pl.Date()}
TOTAL = "合计"
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\|*_`<>[]#"})


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
    # Per department, matched by ID number and with confirmed links, and the records on
    # the 身份核对 lists still unanswered (db.linkage.report_rows); see _md_linkage.
    linkage: pl.DataFrame = field(default_factory=_no_linkage)


def stored_parts(
    con: duckdb.DuckDBPyConnection, period: str, run_id: str, all_townships: list[str]
) -> dict[str, Any]:
    """The report's parts on deliveries, the roster and the folders, read the same way for
    a run (after it stored its screened households) and for a report rebuilt later."""
    return {
        "deliveries": list(
            delivery_notes(db_deliveries.run_events(con, run_id), english=True).values()
        ),
        "held": db_deliveries.held_of_period(con, period),
        "quality": db_roster.roster_quality(con, period, vocab.HEAD_RELATION),
        "folders": {t: f for t, f in township_folders(all_townships).items() if t != f},
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
                f"{label}文件提示 ({row['source']} warning): {row['file']}: {row['warning']}"
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
        f"{households_without_head} 户没有户主, 以第一位成员代替 "
        "(households without a 户主; the first member stands in)"
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


# ---------------------------------------------------------------- markdown


def render_markdown(report: RunReport) -> str:
    parts = [
        _md_heading(report),
        _md_warnings(report),
        _md_held(report),
        _md_files(report),
        _md_rejected(report),
        _md_quality(report),
        _md_matches(report),
        _md_linkage(report),
        _md_listed(report),
        _md_folders(report),
        _md_followup(report),
        _md_parameters(report),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def write_report(out: Path, report: RunReport) -> Path:
    """`<out>/<YYYY-MM>/run-report.md`, replaced atomically like the lists."""
    return write_text_atomic(period_dir(out, report.period) / REPORT_FILE, render_markdown(report))


def _md(value: object) -> str:
    """Text from data made safe for a markdown table cell or list item; an ID number in it
    (a file named after its holder) masked."""
    text = mask_text("" if value is None else str(value))
    text = "".join(" " if ch in "\r\n\t" else ch for ch in text if ch >= " " or ch in "\r\n\t")
    return text.translate(_MD_SPECIAL)


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: int = 0) -> str:
    """A pipe table; the last `right` columns (numbers) are right-aligned."""
    align = ["---"] * (len(headers) - right) + ["---:"] * right
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _md_heading(report: RunReport) -> str:
    scope = f"乡镇 township：{_md(report.township)}（单乡镇重跑）" if report.township else "全县"
    lines = [
        f"# 筛查运行报告 Run report {report.period}",
        "",
        *([f"> **{DEMO_LABEL}**：{DEMO_SENTENCE}", ""] if report.demo else []),
        f"- 期次 period：{report.period}",
        f"- 批次号 run_id：{_md(report.run_id)}",
        f"- 范围 scope：{scope}",
    ]
    if report.started_at:
        lines.append(f"- 开始 started_at：{report.started_at.isoformat(timespec='seconds')}")
    if report.finished_at:
        lines.append(f"- 结束 finished_at：{report.finished_at.isoformat(timespec='seconds')}")
    return "\n".join(lines)


def _md_warnings(report: RunReport) -> str:
    items = all_warnings(report)
    body = "\n".join(f"- {_md(w)}" for w in items) if items else "无 none."
    return f"## 提示 Warnings\n\n{body}"


def all_warnings(report: RunReport) -> list[str]:
    """Every warning of the run, once each, ID numbers masked (they name files): the one
    about sources the lists were made without first, then the caller's."""
    statuses = source_statuses(report.files)
    known = contract.SOURCES
    absent = [s for s in known if statuses.get(s, "missing") in ABSENT]
    absent += sorted(s for s, st in statuses.items() if s not in known and st in ABSENT)
    lead = [missing_sources_sentence(absent, statuses)] if report.files and absent else []
    return list(dict.fromkeys(mask_text(w) for w in lead + report.deliveries + report.warnings))


def _md_held(report: RunReport) -> str:
    if not report.held.height:
        return ""
    rows = [
        [
            _md(contract.long_name(r["source"])),
            _md(r["file"]),
            f"{_md(gates.GATE_LABELS.get(r['gate'], r['gate']))} ({_md(r['gate'])})",
            gates.percent(r["measured"]),
            gates.percent(r["threshold"]),
            _md(
                f"已接受 accepted by {r['accepted_by']} "
                f"{r['accepted_at'].isoformat(timespec='minutes') if r['accepted_at'] else ''}"
                if r["accepted_by"]
                else "暂扣未用 held, not used"
            ),
        ]
        for r in report.held.iter_rows(named=True)
    ]
    headers = ["数据来源 source", "文件 file", "检查 gate", "实测 measured", "标准 threshold",
               "处理 outcome"]  # fmt: skip
    return (
        "## 完整性检查暂扣 Held deliveries\n\n"
        "未通过数据完整性检查的文件不使用，此前已入库的数据继续有效；核对无误后可用 "
        f"`screening run --period {report.period} --accept-held <来源>` 接受 "
        "(a held file is not used, the delivery stored before stays in force; accept it "
        "with `--accept-held SOURCE` once checked).\n\n" + _md_table(headers, rows)
    )


QUALITY_TITLES = {
    "split_townships": "成员所填乡镇不一致的户 households whose members name two townships",
    "several_heads": "有多个户主的户 households with several 户主",
    "no_head": "没有户主的户 households without a 户主",
    "two_households": "同一人出现在两户 persons in two households",
    "duplicates_touch": "同一记录多份且内容不同（均已拒收）涉及的户 households touched by "
    "differing copies of one record (duplicate_key, all quarantined)",
}
QUALITY_RULES = {
    "split_townships": "按户主（无户主时为第一位成员）所在行的乡镇归户 the head's row (else "
    "the first member's) gives the township",
    "several_heads": "以表中第一位户主为户主 the first 户主 row is the head",
    "no_head": "以第一位成员代替户主 the first member stands in",
    "two_households": "两行都已拒收（duplicate_key），此人不计入任何一户，请核实后重新报送 "
    "both rows quarantined, the person counts in neither household",
    "duplicates_touch": "这些记录未用于筛查，相关户的风险可能未能筛出 these records were not "
    "screened: the households' risks may be missed",
}
QUALITY_SHOWN = 20  # rows named per finding; the rest are counted (SQL in the data dictionary)


def _quality_rows(name: str, frame: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    def hh(value: object) -> str:
        return _md(ids.mask_text(str(value or "")))

    shown = frame.head(QUALITY_SHOWN).iter_rows(named=True)
    if name == "split_townships":
        return ["户编号 household_id", "所填乡镇 townships", "归入 used"], [
            [hh(r["household_id"]), _md(r["townships"]), _md(r["township_used"] or "—")]
            for r in shown
        ]
    if name == "several_heads":
        return ["户编号 household_id", "户主人数 heads"], [
            [hh(r["household_id"]), number(r["heads"])] for r in shown
        ]
    if name == "no_head":
        return ["户编号 household_id"], [[hh(r["household_id"])] for r in shown]
    if name == "two_households":
        return ["身份证号 id_number", "户编号 households"], [
            [_md(ids.mask(r["id_number"])), hh(r["households"])] for r in shown
        ]
    return ["户编号 household_id", "数据来源 source", "记录 source_key"], [
        [hh(r["household_id"]), _md(contract.long_name(r["source"])), hh(r["source_key"])]
        for r in shown
    ]


def _md_quality(report: RunReport) -> str:
    parts = []
    for name, title in QUALITY_TITLES.items():
        frame = report.quality.get(name)
        if frame is None or not frame.height:
            continue
        headers, rows = _quality_rows(name, frame)
        more = (
            f"（列出前 {QUALITY_SHOWN} 户 the first {QUALITY_SHOWN} shown）"
            if frame.height > QUALITY_SHOWN
            else ""
        )
        parts.append(
            f"### {title}: {frame.height:,}\n\n{QUALITY_RULES[name]}{more}\n\n"
            + _md_table(headers, rows)
        )
    body = "\n\n".join(parts) if parts else "无 none."
    return f"## 数据质量 Data quality（人口库 roster）\n\n{body}"


def quality_counts(report: RunReport) -> list[str]:
    """One line per data-quality finding, for the console."""
    return [
        f"{QUALITY_TITLES[name]}: {report.quality[name].height:,}"
        for name in QUALITY_TITLES
        if name in report.quality and report.quality[name].height
    ]


def _md_folders(report: RunReport) -> str:
    if not report.folders:
        return ""
    rows = [[_md(t), _md(f)] for t, f in sorted(report.folders.items())]
    return (
        "## 乡镇文件夹 Township folders\n\n名称含特殊字符、过长或仅大小写/全角半角不同的乡镇，"
        "名单放在下列文件夹中 (townships whose lists are in a folder not named exactly like "
        "them).\n\n" + _md_table(["乡镇 township", "文件夹 folder"], rows)
    )


def _md_files(report: RunReport) -> str:
    headers = [
        "数据来源 source",
        "文件 file",
        "状态 status",
        "说明 message",
        "读入 rows_read",
        "接收 rows_accepted",
        "拒收 rows_rejected",
        "重复 rows_duplicate",
    ]
    rows = [
        [
            _md(contract.long_name(f["source"])),
            _md(f["file"] or "—"),
            f"{_md(source_status(f['status']))} ({_md(f['status'])})",
            _md(f["message"] or ""),
            number(f["rows_read"]),
            number(f["rows_accepted"]),
            number(f["rows_rejected"]),
            number(f.get("rows_duplicate")),
        ]
        for f in report.files
    ]
    body = _md_table(headers, rows, right=4) if rows else "没有读入任何文件 no files."
    return f"## 读入文件 Files read\n\n{body}"


def _md_rejected(report: RunReport) -> str:
    if not report.rejected:
        return "## 拒收明细 Rejected rows\n\n无 none."
    rows = [
        [_md(contract.long_name(r["source"])), _md(r["column"]), _md(r["check"]), number(r["rows"])]
        for r in sorted(report.rejected, key=lambda r: (r["source"], r["column"], r["check"]))
    ]
    headers = ["数据来源 source", "列 column", "检查 check", "行数 rows"]
    return "## 拒收明细 Rejected rows\n\n" + _md_table(headers, rows, right=1)


def _md_matches(report: RunReport) -> str:
    headers = [
        "数据来源 source",
        "窗口内记录 records_in_window",
        "匹配 matched",
        "未匹配 unmatched",
        "匹配率 match_rate",
    ]
    rows = [
        [
            _md(contract.long_name(m["source"])),
            number(m["records_in_window"]),
            number(m["matched"]),
            number(m["unmatched"]),
            rate(m["matched"], m["records_in_window"]),
        ]
        for m in report.match_rates
    ]
    body = _md_table(headers, rows, right=4) if rows else "无 none."
    return f"## 与人口库匹配 Match rates\n\n{body}"


def _md_linkage(report: RunReport) -> str:
    """身份核对 (screening.linkage): per department, the share of its records in the window
    matched by their own ID number, then with the links people confirmed, and how many of
    its records on the period's 身份核对 lists still wait for an answer."""
    rows = [
        [
            _md(contract.long_name(r["source"])),
            number(r["records_in_window"]),
            number(r["matched_by_id"]),
            rate(r["matched_by_id"], r["records_in_window"]),
            number(r["matched"]),
            rate(r["matched"], r["records_in_window"]),
            number(r["waiting"]),
        ]
        for r in report.linkage.iter_rows(named=True)
    ]
    if not rows:
        return ""
    headers = [
        "数据来源 source",
        "窗口内记录 records_in_window",
        "按身份证号匹配 matched by ID",
        "匹配率 rate",
        "含人工核对关联 with confirmed links",
        "匹配率 rate",
        "待核对记录 waiting",
    ]
    waiting = int(report.linkage["waiting"].sum())
    lead = (
        "身份证号有误、在人口库中找不到的部门记录，程序找出可能的本人，列入各乡镇的「身份核对」名单，"
        "经乡镇核对确认后才计入 (records whose ID number reaches nobody are suggested to the "
        "townships on their 身份核对 lists; they count once a person confirms them). "
        f"本期待核对 {waiting:,} 条记录 records waiting."
    )
    return "## 身份核对 Record linkage\n\n" + lead + "\n\n" + _md_table(headers, rows, right=6)


def _md_listed(report: RunReport) -> str:
    towns = township_colour_counts(report.suspects, report.all_townships)
    town_rows = [
        [_md(r["township"]), *(number(r[c]) for c in (*COLOURS, TOTAL))]
        for r in towns.iter_rows(named=True)
    ]
    risks = [
        [r["risk_code"], _md(r["label"]), number(r["households"])]
        for r in risk_counts(report.suspects).iter_rows(named=True)
    ]
    statuses = [[_md(s), number(n)] for s, n in status_counts(report.suspects).items()]
    return "\n\n".join(
        [
            f"## 疑似监测户 Listed households\n\n共 {report.suspects.height:,} 户 households.",
            "### 按乡镇和预警等级 By township and colour\n\n"
            + _md_table(["乡镇 township", *COLOURS, f"{TOTAL} total"], town_rows, right=4),
            "### 按风险点 By risk point（一户可有多项 a household may have several）\n\n"
            + _md_table(["risk_code", "风险点 label", "户数 households"], risks, right=1),
            "### 按纳入状态 By listing status\n\n"
            + _md_table(["纳入状态 listing_status", "户数 households"], statuses, right=1),
        ]
    )


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _md_followup(report: RunReport) -> str:
    scale_rows = [
        [
            _md(r["township"] or f"{TOTAL}（全县）"),
            number(r["roster_households"]),
            number(r["base_households"]),
            number(r["listed"]),
            _share(r["share_of_roster"]),
            _share(r["share_of_base"]),
        ]
        for r in report.scale.iter_rows(named=True)
    ]
    headers = [
        "乡镇 township",
        "人口库户数 households",
        "脱贫户+监测户 base",
        "疑似监测户 listed",
        "占全部户 of households",
        "占脱贫户和监测户 of base",
    ]
    check = report.params.scale_check if report.params else None
    limits = (
        f"预期 expected {check.expected_share:.0%}，上限 ceiling {check.ceiling:.0%}。"
        if check
        else ""
    )
    scale = (
        f"### 规模校验 Scale check\n\n{limits}\n\n" + _md_table(headers, scale_rows, right=5)
        if scale_rows
        else "### 规模校验 Scale check\n\n无 none."
    )
    overdue_rows = [
        [_md(r["township"]), number(r["overdue"]), r["due"].isoformat()]
        for r in report.overdue.iter_rows(named=True)
    ]
    overdue = "### 核实逾期 Overdue verifications（上期名单 previous list）\n\n" + (
        _md_table(["乡镇 township", "逾期户数 households", "时限 due"], overdue_rows, right=1)
        if overdue_rows
        else "无 none."
    )
    counts = report.candidates.group_by("township").len().sort("township")
    candidate_rows = [[_md(t), number(n)] for t, n in counts.iter_rows()]
    candidates = (
        f"### 风险消除候选 Risk-removal candidates\n\n共 {report.candidates.height:,} 户 "
        "households."
    )
    if candidate_rows:
        candidates += "\n\n" + _md_table(["乡镇 township", "户数 households"], candidate_rows, 1)
    return "\n\n".join(["## 动态管理 Follow-up", scale, overdue, candidates])


def _md_parameters(report: RunReport) -> str:
    lines = report.params.lines() if report.params else []
    rows = [[f"{_md(label)} ({_md(name)})", _md(text)] for name, label, text in lines]
    body = _md_table(["参数 parameter", "取值 value"], rows) if rows else "无 none."
    return f"## 参数 Parameters\n\n{body}"
