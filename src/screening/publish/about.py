"""The words of the lists' 说明 sheets, in the language a township officer uses.

What each list's 说明 sheet says (the township, the period, how many households and of
which colour, what the colours, statuses and risk points mean over the parameters in
force, which sources were used or missing, how to verify and send the list back), and the
sentences on deliveries and missing sources that the run report repeats.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

import polars as pl

from screening import contract, ids
from screening.params import ResolvedParams
from screening.periods import period_words
from screening.publish.columns import (
    LIST_KEY_HEADER,
    REMOVAL_HEADERS,
    PublishMeta,
    verification_window,
)
from screening.publish.files import CANDIDATES_PREFIX, folder_key, safe_name
from screening.rules import RISK_LABELS, RISKS, relief, risks_fed_by
from screening.vocab import COLOURS, REMOVAL_DECISIONS

# A blue household's one risk point: any but the income below the line (yellow's).
_OTHER_RISKS = "、".join(r.label for r in RISKS if r.code != "LOW_INCOME")
# A header-only file is a delivery (nothing new this month); these are not.
ABSENT = ("missing", "rejected", "held", "withdrawn")
SOURCE_STATUS_LABELS: dict[str, str] = {
    "loaded": "已读入",
    "missing": "本期未收到",
    "rejected": "文件被拒收（无法读取或缺少必需列）",
    "empty": "已收到，但没有记录",
    "kept": "本期文件未能使用，沿用此前已入库的本期数据",
    "held": "文件未通过完整性检查，暂扣未用",
    "withdrawn": "已撤回",
}
# Not screening rules (a long list of holidays; limits on what is read; the checks of the
# deliveries; what goes on the 身份核对 list, whose own 说明 sheet says it): the township's
# 说明 sheet leaves them out; the run report shows them.
_NOT_ON_LISTS = ("public_holidays", "ingest_limits", "gates", "linkage")


def colour_counts(households: pl.DataFrame) -> dict[str, int]:
    counts = dict.fromkeys(COLOURS, 0)
    for colour in households["colour"].to_list():
        counts[colour] = counts.get(colour, 0) + 1
    return counts


def candidate_about_lines(
    township: str, candidates: pl.DataFrame, meta: PublishMeta
) -> list[tuple[str, str]]:
    """The 说明 sheet of the 风险消除候选 list."""
    periods = meta.params.risk_removal_clear_periods
    decision, date, note = REMOVAL_HEADERS
    first, last = verification_window(meta.period)
    choices = "「" + "」「".join(REMOVAL_DECISIONS) + "」"
    return [
        *demo_lines(meta),
        ("乡镇", township),
        ("期次", f"{period_words(meta.period)}（{meta.period}）"),
        ("候选户数", f"共 {candidates.height} 户。"),
        (
            "工作表",
            "「风险消除候选」每户一行，按村排列，每个村从新的一页开始，末尾有本村小计和签字栏。"
            "「最近有风险期次及风险点」「上次消除意见」写「无」的，表示此前没有。",
        ),
        (
            "入选条件",
            f"人口库中监测状态为「监测中」，最近 {periods} 个筛查期次（含本期）部门数据比对均未"
            "发现风险点，家庭年人均纯收入不低于监测标准，且有劳动年龄内、无重度残疾的成员"
            "（无劳动力的户不列入）。",
        ),
        (
            "使用说明",
            "本名单只是风险消除的候选，不是认定结果。请入户核实收入是否稳定、风险是否已消除、"
            "帮扶措施是否落实，按程序经村级评议公示、乡镇审核、县级审定后，方可标注风险消除。",
        ),
        (
            "填写",
            f"请在最右三列（浅黄色表头）填写：{decision}——从下拉列表选择{choices}；{date}——"
            f"写成 {first.isoformat()} 这样的年-月-日，须在 {first.isoformat()} 至 "
            f"{last.isoformat()} 之间；{note}——情况说明，「暂不消除」请写明原因。每户都请填写。"
            "本表已设保护（无密码），只有这三列可以填写；请勿插入、删除行或修改户编号。",
        ),
        (
            "发回县级",
            "填好后把本 xlsx 文件原样发回县级（不要另存为 CSV，不要改文件名），县级导入后，"
            "意见记入农户历史，下期名单的「上次消除意见」列会显示。",
        ),
        *_privacy_lines(meta),
        *_run_lines(meta),
    ]


def about_lines(
    township: str,
    households: pl.DataFrame,
    meta: PublishMeta,
    candidates: int = 0,
    folders: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(label, text) rows of the 说明 sheet, in the words a township officer uses."""
    lines = [
        *demo_lines(meta),
        ("乡镇", township),
        *_folder_lines(township, folders or {}),
        ("期次", f"{period_words(meta.period)}（{meta.period}）"),
        ("名单户数", _count_sentence(households)),
        *_delivery_lines(meta),
        (
            "工作表",
            "「疑似监测户」是核实台账，每户一行：按村排列（有村民小组的再按组），同一村内按"
            "预警等级红、黄、蓝排列，同一等级内风险点多、刚性支出高的在前；每个村从新的一页开始，"
            "末尾有本村小计和签字栏，序号全乡镇连续编排。「风险点及金额」列出每个风险点及其金额"
            "（只列构成风险点的金额）。「家庭成员及风险依据」按同样的序号列出各户全部家庭成员，"
            "以及每个风险点对应的部门记录（数据来源、日期、金额、记录编号）。「填报说明」讲怎样"
            "填写和发回本表。金额单位：元。",
        ),
        *_colour_lines(meta),
        *_status_lines(),
        *_risk_lines(meta.params),
        *_parameter_lines(meta),
        *_source_lines(meta.sources),
        (
            "入户核实",
            "本名单是根据部门数据比对筛查出的疑似监测对象，不是认定结果。请村、乡镇在规定"
            "时限内组织入户核实，并由农户签署数据查询授权书；经村级评议公示（5个工作日）、"
            "乡镇审核、县级审定后，方可确定为监测对象，全流程约20个工作日。核实结果的填写和"
            "发回方法见「填报说明」。",
        ),
        *(
            [
                (
                    LIST_KEY_HEADER,
                    "「核对码」是县级导入核实结果时用来对应农户的编码，不含个人信息，请勿修改。",
                )
            ]
            if meta.mask_ids and meta.list_key_secret is not None
            else []
        ),
        (
            "风险消除候选",
            f"本期本乡镇有 {candidates} 户监测户符合风险消除候选条件，名单见同一文件夹中的"
            f"「{CANDIDATES_PREFIX}」文件。"
            if candidates
            else "本期本乡镇没有符合风险消除候选条件的监测户。",
        ),
        *_privacy_lines(meta),
        *_run_lines(meta),
    ]
    return lines


def _privacy_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    return [
        (
            "个人信息",
            "名单含个人身份信息，仅限防返贫监测工作使用，请妥善保管，不得外传。"
            + ("身份证号已脱敏显示（中间8位以*代替）。" if meta.mask_ids else ""),
        )
    ]


def _run_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    """The run that made the list, last: the county's import checks it; the township need
    not mind it."""
    return [
        ("批次号", meta.run_id),
        ("", "批次号是县级导入反馈时核对用的编号，乡镇无需填写或理会。"),
    ]


def _folder_lines(township: str, folders: Mapping[str, str]) -> list[tuple[str, str]]:
    """Where the list lies, when its folder is not simply the township's name; and which
    folder is which, when names differ only in case or width."""
    folder = folders.get(township)
    if folder is None or folder == township:
        return []
    mine = folder_key(safe_name(township))
    twins = [
        f"「{name}」在文件夹 {other}"
        for name, other in sorted(folders.items())
        if name != township and folder_key(safe_name(name)) == mine
    ]
    text = f"本乡镇名单所在文件夹：{folder}。"
    if twins:
        text += f"另有乡镇名称与本乡镇仅大小写或全角半角不同，请勿混淆：{'；'.join(twins)}。"
    return [("文件夹", text)]


def _delivery_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    ordered = sorted(meta.delivery_notes.items(), key=lambda kv: contract.source_order(kv[0]))
    return [("数据提示" if i == 0 else "", note) for i, (_, note) in enumerate(ordered)]


def delivery_note(
    source: str,
    event: str,
    file: str | None,
    stored_file: str | None,
    stored_at: dt.datetime | None,
    message: str | None = None,
    english: bool = False,
) -> str:
    """One sentence, for the lists and the run report, on a source whose delivery of the
    period is not simply this run's file: a stored delivery used instead of a missing,
    rejected or held file (`kept`, `held`), or a held file the officer accepted. With
    `english`, the English follows (the run report and the console)."""
    label = contract.label(source)
    at = stored_at.strftime("%Y-%m-%d %H:%M") if stored_at else "此前"
    # A file named after a person (医保_430624…补报.csv) shows the ID masked, as everywhere.
    file = ids.mask_text(file) if file else file
    stored_file = ids.mask_text(stored_file) if stored_file else stored_file
    message = ids.mask_text(message) if message else message
    if event == "accepted":
        text = (
            f"{label}：本期文件「{file}」未通过数据完整性检查，经县级人员确认后使用"
            f"（{message or ''}）。"
        )
        return text + (f" ({source}: held file {file} used, accepted)" if english else "")
    why = {
        "kept": f"本期文件「{file}」被拒收" if file else "本期收件箱中没有文件",
        "held": f"本期文件「{file}」未通过数据完整性检查，暂扣未用",
    }[event]
    if not stored_file:
        text = f"{label}：{why}，本期没有可用的数据。"
        return text + (f" ({source}: no delivery of this period in force)" if english else "")
    text = f"{label}：{why}，名单使用的是 {at} 已入库的「{stored_file}」。"
    problem = {"kept": "rejected" if file else "missing", "held": "held"}[event]
    return text + (
        f" ({source}: this period's file {problem}; the delivery stored at {at}, "
        f"{stored_file}, was used instead)"
        if english
        else ""
    )


def delivery_notes(events: pl.DataFrame, english: bool = False) -> dict[str, str]:
    """Source → `delivery_note` for a run's `db.deliveries.run_events`: the stored deliveries
    kept in force and the held files accepted (a held file never reaches a publication: its run
    publishes nothing)."""
    used = events.filter(pl.col("event").is_in(["kept", "accepted"]))
    return {
        r["source"]: delivery_note(
            r["source"], r["event"], r["file"], r["stored_file"], r["stored_ingested_at"],
            r["message"], english,
        )
        for r in used.iter_rows(named=True)
    }  # fmt: skip


def demo_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    if not meta.demo:
        return []
    return [
        (
            "示例数据",
            "本名单由程序自带的虚构示例县数据生成，所列人员、身份证号和部门记录均为虚构，"
            "不存在，仅供演示和培训，不得用于实际工作。",
        )
    ]


def _count_sentence(households: pl.DataFrame) -> str:
    if not households.height:
        return "本期部门数据比对未发现本乡镇的疑似监测对象（0 户）。"
    counts = colour_counts(households)
    return (
        f"共 {households.height} 户：红色 {counts['红']} 户，黄色 {counts['黄']} 户，"
        f"蓝色 {counts['蓝']} 户。"
    )


def _colour_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    limit = meta.params.verification_time_limit
    return [
        (
            "红色",
            "有两项及以上风险点。请优先入户核实，并填写核实结果；核实纳入后安排干部1:1或1:2"
            "结对帮扶。",
        ),
        (
            "黄色",
            "只有一项风险点：家庭年人均纯收入低于监测标准。请入户核实收入情况，并填写核实结果；"
            "核实纳入后安排干部结对帮扶。",
        ),
        (
            "蓝色",
            "只有一项风险点，且不是收入低于标准：目前收入未低于标准，但"
            f"{_OTHER_RISKS}，可能面临较大支出或收入下降。同样要入户了解情况并填写核实结果，"
            "之后由村级跟踪关注，及时掌握变化。",
        ),
        (
            "",
            f"三种颜色的户都要在 {limit} 个工作日内反馈核实结果（纳入状态为「已在监测」"
            "「已确认待录入」的户除外），到期未反馈的计入逾期。",
        ),
    ]


def _status_lines() -> list[tuple[str, str]]:
    return [
        ("纳入状态", "新增：上一期名单中没有，本期新筛查出。须填写核实结果。"),
        ("", "持续：上一期已在名单中，本期仍有风险。须填写核实结果。"),
        (
            "",
            "已在监测：人口库中已是监测对象（监测中），请核对风险是否有新变化、帮扶措施是否到位；"
            "可不填核实结果。",
        ),
        (
            "",
            "已确认待录入：乡镇已核实确认纳入，但尚未录入监测系统，请尽快录入；可不填核实结果。",
        ),
        (
            "",
            "乡镇核实为「不予纳入」的户，此后不再列入；若核实日期之后又出现新的部门风险记录"
            "（包括计入刚性支出的新的医疗、教育、意外支出记录；全额资助、没有自付的记录不算），"
            "或出现了当时名单上没有的风险点，则重新列为「新增」，并在「上次核实结果」"
            "「上次核实日期」列显示此前的决定。",
        ),
    ]


def _risk_lines(params: ResolvedParams) -> list[tuple[str, str]]:
    """Each risk point's meaning, worded over the parameters in force; the relief estimate's
    while it is on."""
    lines = [
        ("风险点" if i == 0 else "", f"{r.label}：{r.meaning(params)}。")
        for i, r in enumerate(RISKS)
    ]
    if relief.enabled(params):
        lines.append((relief.LABEL, relief.meaning(params)))
    return lines


def _parameter_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    # The relief schedule is said in words above while the estimate is on, and is no
    # concern of the list while it is off.
    leave_out = (*_NOT_ON_LISTS, "relief_estimate")
    lines = [
        ("筛查参数" if i == 0 else "", f"{label}：{text}")
        for i, (_, label, text) in enumerate(meta.params.lines(leave_out=leave_out))
    ]
    lines += [
        ("参数提示" if i == 0 else "", chinese_only(w)) for i, w in enumerate(meta.params.warnings)
    ]
    return lines


def chinese_only(text: str) -> str:
    """A console sentence without its English: the lists are read by township officers
    (the console and the run report keep both)."""
    return _ENGLISH.sub("", text).strip()


# A parenthesised part with no CJK character in it: the English after the Chinese.
_ENGLISH = re.compile(r"\s*\((?:[^()\u3000-\u9fff\uff00-\uffef]|\([^()]*\))*\)")


def _source_lines(sources: Mapping[str, str]) -> list[tuple[str, str]]:
    ordered = sorted(sources.items(), key=lambda kv: contract.source_order(kv[0]))
    lines = [
        ("数据来源" if i == 0 else "", f"{contract.long_name(s)}：{source_status(st)}")
        for i, (s, st) in enumerate(ordered)
    ]
    absent = [s for s, st in ordered if st in ABSENT]
    if absent:
        lines.append(("缺少数据", missing_sources_sentence(absent, sources)))
    return lines


def source_status(status: str) -> str:
    return SOURCE_STATUS_LABELS.get(status, status)


def missing_sources_sentence(absent: Iterable[str], sources: Mapping[str, str]) -> str:
    """Says the list was made without some sources, and which risk points may be missed."""
    absent = list(absent)
    what = "、".join(
        f"{contract.label(s)}数据{_short_status(sources.get(s, 'missing'))}" for s in absent
    )
    fed = {code for s in absent for code in risks_fed_by(s)}
    missed = "、".join(label for code, label in RISK_LABELS.items() if code in fed)
    tail = f"，“{missed}”等风险可能未能筛出，请入户时一并了解。" if missed else "。"
    # Earlier months' deliveries still count (the window is 12 months): what is missing is
    # this month's news, not the source.
    return f"本期{what}，名单只用到此前各期报送的记录，本月新发生的情况未能反映{tail}"


def _short_status(status: str) -> str:
    return {
        "missing": "未收到",
        "rejected": "被拒收",
        "empty": "没有记录",
        "held": "被暂扣",
        "withdrawn": "已撤回",
    }.get(status, status)
