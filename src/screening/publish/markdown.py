"""The run report as markdown, `run-report.md` beside the lists: Chinese, with the English
keys analysts search for. Every text that comes from data is escaped and has its ID numbers
masked (`_md`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from screening import contract, ids
from screening.config import DEMO_LABEL
from screening.ids import mask_text
from screening.ingest import gates
from screening.inspect.quarantine import check_label, column_label
from screening.periods import period_words
from screening.publish.about import source_status
from screening.publish.history import precision_rows
from screening.publish.report import (
    ANSWERS_NOTE,
    DEMO_SENTENCE,
    NO_ANSWERS,
    PRECISION_NOTE,
    QUALITY_TITLES,
    SCALE_NOTE,
    TOTAL,
    RunReport,
    all_warnings,
    number,
    rate,
    risk_counts,
    share,
    status_counts,
    summary_lines,
    township_colour_counts,
    township_table,
)
from screening.vocab import COLOURS

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\|*_`<>[]#"})


def render_markdown(report: RunReport) -> str:
    parts = [
        _md_heading(report),
        _md_summary(report),
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
        _md_precision(report),
        _md_parameters(report),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _md(value: object) -> str:
    """Text from data made safe for a markdown table cell or list item; an ID number in it
    (a file named after its holder) masked."""
    text = mask_text("" if value is None else str(value))
    text = "".join(" " if ch in "\r\n\t" else ch for ch in text if ch >= " " or ch in "\r\n\t")
    return text.translate(_MD_SPECIAL)


def _both(note: tuple[str, str]) -> str:
    return _md(f"{note[0]} ({note[1]})")


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


def _md_summary(report: RunReport) -> str:
    return "## 摘要 Summary\n\n" + "\n".join(f"- {_md(line)}" for line in summary_lines(report))


def _md_warnings(report: RunReport) -> str:
    items = all_warnings(report)
    body = "\n".join(f"- {_md(w)}" for w in items) if items else "无 none."
    return f"## 提示 Warnings\n\n{body}"


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


QUALITY_RULES = {
    "split_townships": "按户主（无户主时为第一位成员）所在行的乡镇归户 the head's row (else "
    "the first member's) gives the township",
    "several_heads": "以表中第一位户主为户主 the first 户主 row is the head",
    "no_head": "以第一位成员代替户主 the first member stands in",
    "two_households": "两行都已拒收（duplicate_key），此人不计入任何一户，请核实后重新报送 "
    "both rows quarantined, the person counts in neither household",
    "duplicates_touch": "这些记录未用于筛查，相关户的风险可能未能筛出 these records were not "
    "screened: the households' risks may be missed",
    "roster_copies": "此人未计入本户，本户家庭人口和风险可能不全；全户成员都如此的户不在名单上，"
    "请核实后重新报送人口库 the person counts in no household: the household's size and "
    "risks may be incomplete, and a household of only such rows is on no list",
    "vanished_townships": "这些乡镇本期没有名单，请确认人口库是否完整 these townships have no "
    "list this period: check that the roster is complete",
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
    if name == "roster_copies":
        return ["身份证号 id_number", "户编号 household_id", "行数 rows"], [
            [_md(ids.mask(r["id_number"])), hh(r["household_id"]), number(r["copies"])]
            for r in shown
        ]
    if name == "vanished_townships":
        return ["乡镇 township", "上期户数 households before"], [
            [_md(r["township"]), number(r["households"])] for r in shown
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
    specs = contract.load()
    rows = [
        [
            _md(contract.long_name(r["source"])),
            f"{_md(column_label(specs.get(r['source']), r['column']))} ({_md(r['column'])})",
            f"{_md(check_label(r['check']))} ({_md(r['check'])})",
            number(r["rows"]),
        ]
        for r in sorted(report.rejected, key=lambda r: (r["source"], r["column"], r["check"]))
    ]
    headers = ["数据来源 source", "列 column", "检查 check", "行数 rows"]
    return (
        "## 拒收明细 Rejected rows\n\n逐行明细：`screening quarantine --period "
        f"{report.period}` (every row: `screening quarantine`).\n\n"
        + _md_table(headers, rows, right=1)
    )


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


def _md_followup(report: RunReport) -> str:
    scale_rows = [
        [
            _md(r["township"] or f"{TOTAL}（全县）"),
            number(r["roster_households"]),
            number(r["base_households"]),
            number(r["listed"]),
            share(r["share_of_roster"]),
            share(r["share_of_base"]),
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
        f"预期 expected {check.expected_share:.0%}，参考上限 ceiling {check.ceiling:.0%}。"
        f"{_both(SCALE_NOTE)}"
        if check
        else _both(SCALE_NOTE)
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
    return "\n\n".join(["## 动态管理 Follow-up", _md_answers(report), scale, overdue, candidates])


def _md_answers(report: RunReport) -> str:
    last = report.history.last_month
    title = "### 上期名单核实情况 Answers on the previous list"
    if report.township:  # one township's re-run: the answers are the county table's
        return ""
    if last is None or report.history.previous is None:
        return f"{title}\n\n上月没有筛查名单 no list the month before."
    rows = [
        [
            _md(r["township"]),
            number(r["awaiting"]),
            number(r["answered"]),
            share(r["answered_share"]),
            *(number(r[k]) for k in ("confirmed", "declined", "pending", "overdue")),
        ]
        for r in township_table(report).iter_rows(named=True)
    ]
    headers = ["乡镇 township", "需核实 awaiting", "已反馈 answered", "反馈率 share",
               "确认纳入", "不予纳入", "待核实", "逾期未反馈 overdue"]  # fmt: skip
    return f"{title}（{period_words(last)}）\n\n{_both(ANSWERS_NOTE)}\n\n" + _md_table(
        headers, rows, 7
    )


def _md_precision(report: RunReport) -> str:
    title = "## 核实准确率 Precision（此前各期名单 earlier lists）"
    if not report.history.has_answers:
        return f"{title}\n\n{_both(NO_ANSWERS)}"
    parts = [title, _both(PRECISION_NOTE)]
    for by, what in (("risk_code", "风险点 risk point"), ("source", "部门 department")):
        rows = [
            [
                _md(r["label"]),
                *(number(r[k]) for k in ("listed", "answered", "confirmed", "declined", "pending")),
                share(r["share"]),
            ]
            for r in precision_rows(report.history, by).iter_rows(named=True)
            if r["listed"]
        ]
        headers = [what, "列出户次 listed", "已反馈 answered", "确认纳入", "不予纳入", "待核实",
                   "确认率 precision"]  # fmt: skip
        parts.append(f"### 按{what}\n\n" + _md_table(headers, rows, right=6))
    return "\n\n".join(parts)


def _md_parameters(report: RunReport) -> str:
    lines = report.params.lines() if report.params else []
    rows = [[f"{_md(label)} ({_md(name)})", _md(text)] for name, label, text in lines]
    body = _md_table(["参数 parameter", "取值 value"], rows) if rows else "无 none."
    return f"## 参数 Parameters\n\n{body}"
