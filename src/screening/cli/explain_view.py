"""How `screening explain` shows its answer: the household, the verdict, each rule, the
evidence, every department record of the members, the members, the history and the
parameters; and the people of a name, to choose a household from. ID numbers are masked
unless `--show-ids`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from screening.cli.console import cells, risk_name, source_name, table_of

if TYPE_CHECKING:
    import polars as pl

    from screening.inspect import explain as why


def people_table(name: str, period: str, people: pl.DataFrame, *, show_ids: bool) -> Table:
    """The roster's members called `name`, to choose a household from (IDs masked)."""
    from screening.ids import mask, mask_text

    shown: Callable[[str | None], str] = (lambda s: s or "") if show_ids else mask_text
    an_id: Callable[[str | None], str] = (lambda s: s or "") if show_ids else mask
    table = table_of(
        f"人口库中名为「{name}」的成员 people named {name!r} on the {period} roster",
        ["姓名 name", "关系 relation", "身份证号 ID", "户编号 household", "户主 head",
         "乡镇 township", "村 village"],
    )  # fmt: skip
    for row in people.iter_rows(named=True):
        table.add_row(
            *cells(
                row["name"],
                row["relation"],
                an_id(row["id_number"]),
                shown(row["household_id"]),
                row["head_name"],
                row["township"],
                row["village"],
            )
        )
    return table


# explain.BEFORE / IN / AFTER
POSITION_LABELS = {
    "before": "早于窗口 before W",
    "in": "窗口内 in W",
    "after": "晚于本期 after P",
}


def render_explanation(exp: why.Explanation, out: Console, *, show_ids: bool = False) -> None:
    """The answer, top down: the verdict first, then each rule, the evidence, every record
    of the members, the members and the parameters."""
    from screening import ids

    shown: Callable[[str | None], str] = (lambda s: s or "") if show_ids else ids.mask_text
    an_id: Callable[[str | None], str] = (lambda s: s or "") if show_ids else ids.mask
    for part in (
        _household_part(exp, an_id, shown),
        _verdict_part(exp),
        _rules_table(exp),
        _evidence_table(exp, shown, an_id),
        _records_part(exp, shown, an_id),
        *_linked_parts(exp, shown, an_id),
        _members_table(exp, an_id),
        _history_table(exp),
        _parameters_table(exp),
    ):
        out.print(part)


def _history_table(exp: why.Explanation) -> Table:
    from screening import ids

    # The answers on the 风险消除候选 lists, where the household ever had one.
    removals = "removal_decision" in exp.history.columns and bool(
        exp.history["removal_decision"].drop_nulls().len()
    )
    table = table_of(
        "历史 history (household_history)",
        [
            "期次",
            "预警等级",
            "风险点",
            "纳入状态",
            "核实结果",
            "核实日期",
            "备注",
            *(["风险消除意见 removal", "意见日期", "意见备注"] if removals else []),
        ],
    )
    for row in exp.history.iter_rows(named=True):
        status = row["listing_status"] or (
            "未列入（已核实不予纳入）" if row["colour"] else "未列入"
        )
        removal = (
            [
                row["removal_decision"],
                row["removal_decision_date"],
                ids.mask_text(row["removal_note"] or ""),
            ]
            if removals
            else []
        )
        table.add_row(
            *cells(
                row["period"],
                row["colour"],
                row["risk_labels"] or "无",
                status,
                row["verification_result"] or ("未反馈" if row["listed"] else None),
                row["verification_date"],
                ids.mask_text(row["verification_note"] or ""),
                *removal,
            )
        )
    return table


def _household_part(
    exp: why.Explanation, an_id: Callable[[str | None], str], shown: Callable[[str | None], str]
) -> Group:
    from screening import vocab
    from screening.rules.base import yuan

    hh = exp.household
    # A county may number its households with the head's ID number: masked like one.
    household = shown(exp.found.household_id)
    title = Text(f"户 household {household} · 期次 {exp.period}", style="bold")
    if exp.found.by == "id_number":
        title.append(f" · 按身份证号 {an_id(exp.found.id_number)} 找到 found by member ID")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    w = exp.window
    for label, value in (
        ("乡镇 / 村 township / village", f"{hh['township'] or '—'} / {hh['village'] or '—'}"),
        ("户主 head", f"{hh['head_name'] or '—'}  {an_id(hh['head_id_number'])}"),
        ("户类型 type", hh["household_type"] or f"— (按{vocab.DEFAULT_HOUSEHOLD_TYPE})"),
        ("家庭人口 size", f"{hh['household_size']} 人"),
        ("人均纯收入 income", f"{yuan(hh['per_capita_income'])} 元/人·年"),
        ("家庭年收入 household income", f"{yuan(hh['household_income'])} 元"),
        ("监测状态 monitoring", hh["monitoring_status"] or "—"),
        ("劳动力状况 labour", hh["labour_capacity"] or "—"),
        ("时间窗口 window W", f"{w.start} – {w.end}（{exp.params.window_months} 个月）"),
        ("户籍表 roster", f"{exp.roster_period} 期人口库 snapshot in force"),
        *(
            (
                f"{months} 个月前户籍表 roster {months} months before",
                f"{found} 期人口库 snapshot" if found else "未入库 none stored",
            )
            for months, found in exp.earlier_rosters.items()
        ),
    ):
        grid.add_row(label, Text(str(value)))
    return Group(title, grid)


def _verdict_part(exp: why.Explanation) -> Text:
    from screening import vocab

    colour_styles = {vocab.RED: "bold red", vocab.YELLOW: "bold yellow", vocab.BLUE: "bold blue"}
    hh = exp.household
    lines = Text()
    if exp.listed:
        lines.append("结论 result: 列入 listed — ", style="bold")
        lines.append(f"{hh['colour']}", style=colour_styles.get(hh["colour"], "bold"))
        lines.append(f" · {hh['listing_status']}\n", style="bold")
    else:
        lines.append("结论 result: 未列入 not listed\n", style="bold green")
    lines.append(f"  预警等级 colour: {exp.colour_reason}\n")
    if exp.listed or exp.household["risk_codes"]:
        lines.append(f"  纳入状态 status: {exp.status_reason}\n")
    if exp.removal_candidate:
        lines.append("  风险消除候选 proposed for risk removal this period\n", style="bold")
    if exp.relief and exp.listed:
        lines.append(f"  防贫保预估 relief estimate: {exp.relief}\n")
    stored = exp.stored
    if stored:
        lines.append(
            f"  数据库名单 stored list: {stored['colour']} {stored['listing_status']} "
            f"(run {stored['run_id']})\n"
        )
    else:
        lines.append(f"  数据库名单 stored list: 本期名单中无此户 not on the {exp.period} list\n")
    for note in exp.notes:
        lines.append(f"  ! {note}\n", style="yellow")
    lines.rstrip()
    return lines


def _rules_table(exp: why.Explanation) -> Table:
    table = table_of(
        "逐条规则 each rule (screening-rules.md)",
        ["风险点 risk", "成立 applies", "看到的事实 what the rule saw", "条件 rule (parameters)"],
    )
    for rule in exp.rules:
        mark = Text("✔ 是 yes", style="bold red") if rule.fired else Text("✘ 否 no", style="green")
        table.add_row(Text(risk_name(rule.code)), mark, Text(rule.saw), Text(rule.test))
    return table


def _evidence_table(
    exp: why.Explanation, shown: Callable[[str | None], str], an_id: Callable[[str | None], str]
) -> Table | Text:
    from screening.rules.base import yuan

    if exp.evidence.height == 0:
        return Text("依据 evidence: 无 none (no risk point applies)")
    table = table_of(
        "依据 evidence (records behind each risk point)",
        ["风险点 risk", "成员 member", "身份证号 ID", "来源 source", "记录 key", "日期 date",
         "金额 amount", "说明 detail"],
        right=["金额 amount"],
    )  # fmt: skip
    for row in exp.evidence.iter_rows(named=True):
        table.add_row(
            *cells(
                risk_name(row["risk_code"]),
                row["name"],
                an_id(row["id_number"]),
                source_name(row["source"]),
                shown(row["source_key"]),
                row["rule_date"],
                yuan(row["amount"]) if row["amount"] is not None else None,
                shown(row["detail"]),
            )
        )
    return table


def _records_part(
    exp: why.Explanation, shown: Callable[[str | None], str], an_id: Callable[[str | None], str]
) -> Table | Text:
    from screening.inspect import explain as why
    from screening.rules.base import yuan

    if exp.records.height == 0:
        return Text(
            f"部门记录 department records: 截至 {exp.period} 没有成员的记录 "
            "(no department record of any member delivered by this period)"
        )
    table = table_of(
        "成员的全部部门记录 every department record of the members (as delivered by P)",
        ["来源 source", "成员 member", "身份证号 ID", "记录 key", "日期 date", "金额 amount",
         "说明 detail", "窗口 window", "用作依据 evidence for"],
        right=["金额 amount"],
    )  # fmt: skip
    for row in exp.records.iter_rows(named=True):
        supports = row["supports"]
        used = (
            "、".join(risk_name(c) for c in supports.split(";"))
            if supports
            else (
                "计入但未达条件 counted, rule not met"
                if row["position"] == why.IN
                else "不计 not counted"
            )
        )
        table.add_row(
            *cells(
                source_name(row["source"]),
                row["name"],
                an_id(row["id_number"]),
                shown(row["source_key"]),
                row["rule_date"],
                yuan(row["amount"]) if row["amount"] is not None else None,
                shown(row["detail"]),
                POSITION_LABELS.get(row["position"], row["position"]),
                used,
            )
        )
    return table


def _linked_parts(
    exp: why.Explanation, shown: Callable[[str | None], str], an_id: Callable[[str | None], str]
) -> list[Table]:
    """The members' records that reach them through a confirmed 身份核对 answer, and the
    period's suggestions naming a member that wait for one."""
    parts = []
    if exp.linked.height:
        table = table_of(
            "经人工核对关联的记录 records linked by a confirmed 身份核对 answer",
            ["来源 source", "记录 key", "记录姓名 name on record", "记录身份证号 ID on record",
             "关联到 linked to", "身份证号 ID", "核对人 checked by", "确认 confirmed"],
        )  # fmt: skip
        for row in exp.linked.iter_rows(named=True):
            when = row["confirmed_at"].strftime("%Y-%m-%d") if row["confirmed_at"] else ""
            confirmed = f"{when} {row['confirmed_by'] or ''}（{row['period']} 期名单）"
            table.add_row(
                *cells(
                    source_name(row["source"]), shown(row["source_key"]), row["record_name"],
                    an_id(row["record_id_number"]), row["name"], an_id(row["id_number"]),
                    row["checked_by"], confirmed,
                )
            )  # fmt: skip
        parts.append(table)
    if exp.suggested.height:
        table = table_of(
            f"待核对 {exp.period} 期身份核对名单中可能属于成员的记录 suggested, not answered yet",
            ["来源 source", "记录 key", "记录姓名 name on record", "记录身份证号 ID on record",
             "可能是 maybe", "身份证号 ID", "匹配概率 probability", "依据 reasons"],
        )  # fmt: skip
        for row in exp.suggested.iter_rows(named=True):
            table.add_row(
                *cells(
                    source_name(row["source"]), shown(row["source_key"]), row["record_name"],
                    an_id(row["record_id_number"]), row["name"], an_id(row["id_number"]),
                    f"{row['match_probability']:.1%}", row["reasons"],
                )
            )  # fmt: skip
        parts.append(table)
    return parts


def _members_table(exp: why.Explanation, an_id: Callable[[str | None], str]) -> Table:
    from screening.rules.base import yuan

    table = table_of(
        "家庭成员 members",
        ["姓名 name", "关系 relation", "身份证号 ID", "年龄 age", "年龄段 age class",
         "残疾等级 disability", "医疗自付 medical", "教育净支出 education", "意外净损失 accident"],
        right=["年龄 age", "医疗自付 medical", "教育净支出 education", "意外净损失 accident"],
    )  # fmt: skip
    for m in exp.members.iter_rows(named=True):
        classes = [
            label
            for flag, label in (("compulsory_age", "义务教育"), ("working_age", "劳动年龄"))
            if m[flag]
        ]
        grade = m["disability_grade"]
        table.add_row(
            *cells(
                m["name"],
                m["relation"],
                an_id(m["id_number"]),
                m["age"],
                "、".join(classes),
                f"{grade} 级" if grade is not None else None,
                yuan(m["medical_oop"]),
                yuan(m["education_cost"]),
                yuan(m["accident_loss"]),
            )
        )
    return table


def _parameters_table(exp: why.Explanation) -> Table:
    table = table_of(
        f"参数 parameters used · {exp.params_origin}", ["参数 parameter", "取值 value"]
    )
    for name, label, text in exp.params.lines():
        table.add_row(*cells(f"{label} ({name})", text))
    for warning in exp.params.warnings:
        table.add_row(Text("提示 warning", style="yellow"), Text(warning, style="yellow"))
    return table
