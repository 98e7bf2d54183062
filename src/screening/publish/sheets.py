"""What each printed sheet of a township's workbooks shows, in print order.

The 疑似监测户 sheet is the 台账 a village works from: one row per household, grouped by
village (and within it by 村民小组 when the roster has them), red, yellow, blue within a
village, each village on pages of its own; the columns are those a village needs on paper
— the amounts behind each risk are in its 风险点 cell, every record in the members sheet —
plus the columns the township fills in and the import reads (户编号, 核对码 when the IDs are
masked, 核实结果, 核实日期, 备注). The 家庭成员及风险依据 sheet follows the same order and 序号;
the 风险消除候选 sheet is the second list's 台账.

Each function returns a `Ledger` (ledger.py): the columns, and the text of every cell
prepared over the whole frame at once.
"""

from __future__ import annotations

import polars as pl

from screening import contract, ids
from screening.periods import period_words
from screening.publish.columns import (
    FEEDBACK_HEADERS,
    FEEDBACK_RESULTS,
    LIST_KEY,
    LIST_KEY_HEADER,
    RELIEF_COLUMN,
    REMOVAL_HEADERS,
    PublishMeta,
    keyed,
    mask_frame,
    relief_shown,
    verification_window,
    with_list_keys,
)
from screening.publish.files import CANDIDATES_PREFIX, LIST_PREFIX
from screening.publish.layout import LINE_HEIGHT, Col, money_text
from screening.publish.ledger import GROUP, Ledger, date_validation, list_validation
from screening.rules import EVIDENCE_LABELS, RISKS
from screening.vocab import AWAITING_ANSWER, COLOURS, REMOVAL_DECISIONS

SHEET_HOUSEHOLDS = "疑似监测户"
SHEET_DETAILS = "家庭成员及风险依据"
SHEET_CANDIDATES = "风险消除候选"
# The roster's optional columns (data contract): on the lists when the roster has them.
CONTACTS_SCHEMA = pl.Schema(
    {
        "household_id": pl.String,
        "group": pl.String,
        "address": pl.String,
        "phone": pl.String,
        "helper": pl.String,
    }
)
GRADE_LABELS: dict[int, str] = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}
NONE = "无"  # an empty field of a list, said in words
SEQ = "_seq"
MEMBER_ROW_HEIGHT = LINE_HEIGHT + 4  # nothing is written by hand on the members sheet
HOUSEHOLD = "_household"  # the members sheet's rows of one household share it (their 序号)
NO_VILLAGE = "（未填村）"
SIGN_LINES = (
    "核实人（签字）：＿＿＿＿＿＿＿＿　　　审核人（签字）：＿＿＿＿＿＿＿＿　　　"
    "乡镇负责人（签字）：＿＿＿＿＿＿＿＿",
    "填报单位（盖章）：＿＿＿＿＿＿＿＿＿＿＿＿　　　填报日期：＿＿＿＿年＿＿月＿＿日",
)


def demo_mark(meta: PublishMeta) -> str:
    return "【示例数据 虚构人员】" if meta.demo else ""


def info_line(township: str, meta: PublishMeta, count: str, line: bool = False) -> str:
    """乡镇, 期次, 生成日期 and the count under a sheet's title (and the monitoring line in
    force, where the rows compare incomes with it)."""
    made = f"　　生成日期：{meta.made.isoformat()}" if meta.made else ""
    standard = ""
    if line:
        amount = pl.select(money_text(pl.lit(meta.params.monitoring_line))).item()
        standard = f"　　监测标准：{amount} 元/人·年"
    return (
        f"乡镇：{township}　　期次：{period_words(meta.period)}（{meta.period}）{made}"
        f"{standard}　　{count}"
    )


# ---------------------------------------------------------------- print order


def print_order(frame: pl.DataFrame, colour: bool = True) -> pl.DataFrame:
    """`frame` (one row per household, in list order) in print order, with SEQ (序号, on
    through the township) and GROUP: villages in the order of their first 户编号 (the
    roster's numbering of villages), within a village its 村民小组 likewise (when the
    roster has them), then red, yellow, blue, then the list's own order."""
    village = pl.col("village").fill_null(NO_VILLAGE)
    keys = frame.with_row_index("_pos").with_columns(village.alias(GROUP))
    keys = keys.with_columns(pl.col("household_id").min().over(GROUP).alias("_village_rank"))
    group = pl.col("group") if "group" in keys.columns else pl.lit(None, pl.String)
    keys = keys.with_columns(
        pl.col("household_id").min().over(GROUP, group.fill_null("")).alias("_group_rank")
    )
    order = ["_village_rank", GROUP, "_group_rank"]
    if colour:
        rank = pl.col("colour").replace_strict(
            list(COLOURS), list(range(len(COLOURS))), default=len(COLOURS), return_dtype=pl.Int64
        )
        keys = keys.with_columns(rank.alias("_colour_rank"))
        order.append("_colour_rank")
    ordered = keys.sort([*order, "_pos"], nulls_last=True)
    return ordered.drop(
        "_pos", "_village_rank", "_group_rank", "_colour_rank", strict=False
    ).with_row_index(SEQ, offset=1)


def with_contacts(frame: pl.DataFrame, contacts: pl.DataFrame | None) -> pl.DataFrame:
    """The households with the roster's optional columns that hold anything (none when
    the roster has none of them)."""
    if contacts is None or not contacts.height:
        return frame
    present = [c for c in CONTACTS_SCHEMA.names()[1:] if contacts[c].null_count() < contacts.height]
    if not present:
        return frame
    return frame.join(contacts.select("household_id", *present), on="household_id", how="left")


def _household_cols(meta: PublishMeta) -> list[Col]:
    """The columns that say which household a row is, first on both 台账 of households."""
    return [
        Col("序号", SEQ, "seq", min_width=5),
        Col("户编号", "household_id", min_width=10, max_width=22),
        *([Col(LIST_KEY_HEADER, LIST_KEY, min_width=9)] if keyed(meta) else []),
        Col("户主姓名", "head_name", min_width=6, max_width=12, wrap=True),
        Col("户主身份证号", "head_id_number", min_width=10, max_width=22),
        Col("家庭情况", "_family", min_width=12, max_width=18, wrap=True),
    ]


def _contact_cols(contact: pl.Expr | None) -> list[Col]:
    """The contacts' column, where the roster has any of its optional columns."""
    if contact is None:
        return []
    header = "村民小组、住址\n联系电话、帮扶人"
    return [Col(header, "_contact", min_width=13, max_width=18, wrap=True)]


def _contact_cell(frame: pl.DataFrame) -> pl.Expr | None:
    """村民小组, 住址, 联系电话 and 帮扶责任人, one a line (the 村民小组 left out where the
    住址 names it); None without any of them."""
    parts: list[pl.Expr] = []
    if "group" in frame.columns:
        named = (
            pl.col("address").str.contains(pl.col("group"), literal=True).fill_null(False)
            if "address" in frame.columns
            else pl.lit(False)
        )
        parts.append(pl.when(~named).then(pl.col("group")))
    if "address" in frame.columns:
        parts.append(pl.col("address"))
    if "phone" in frame.columns:
        parts.append(pl.col("phone"))
    if "helper" in frame.columns:
        parts.append(pl.concat_str([pl.lit("帮扶："), pl.col("helper")]))
    if not parts:
        return None
    return pl.concat_list(parts).list.drop_nulls().list.join("\n")


# ---------------------------------------------------------------- 疑似监测户


def _yuan(column: str) -> pl.Expr:
    return pl.concat_str([money_text(pl.col(column)), pl.lit(" 元")])


# What each risk point's line on the sheet says besides its label: the amount behind it.
_RISK_AMOUNTS: dict[str, pl.Expr] = {
    "MEDICAL": pl.concat_str([pl.lit("住院自付 "), _yuan("medical_oop")]),
    "EDUCATION": pl.concat_str([pl.lit("教育支出 "), _yuan("education_cost")]),
    "ACCIDENT": pl.concat_str([pl.lit("意外损失 "), _yuan("accident_loss")]),
    "SPENDING": pl.concat_str([pl.lit("刚性支出 "), _yuan("rigid_expenditure")]),
    # The line is the same for every household: the title rows say it.
    "LOW_INCOME": pl.concat_str([pl.lit("人均 "), _yuan("per_capita_income")]),
}


def risk_lines() -> pl.Expr:
    """Each risk point of the household on a line of its own, with its amount."""
    phrases = []
    for risk in RISKS:
        amount = _RISK_AMOUNTS.get(risk.code)
        text = (
            pl.lit(risk.label)
            if amount is None
            else pl.concat_str([pl.lit(f"{risk.label}："), amount]).fill_null(risk.label)
        )
        phrases.append(pl.when(pl.col("risk_codes").list.contains(risk.code)).then(text))
    return pl.concat_list(phrases).list.drop_nulls().list.join("\n")


def family_cell(line: bool = False) -> pl.Expr:
    """户类型 and size, labour, income (and the line, for the candidates), one a line."""
    size = pl.concat_str([pl.col("household_size").cast(pl.String), pl.lit("人")])
    first = pl.concat_list([pl.col("household_type"), size]).list.drop_nulls().list.join(" · ")
    income = pl.concat_str([pl.lit("人均 "), _yuan("per_capita_income")])
    lines = [first, pl.col("labour_capacity"), income]
    if line:
        lines.append(pl.concat_str([pl.lit("标准 "), _yuan("monitoring_line")]))
    return pl.concat_list(lines).list.drop_nulls().list.join("\n")


def status_cell() -> pl.Expr:
    """纳入状态, and the township's earlier decision when there was one."""
    earlier = pl.concat_str(
        [
            pl.lit("上次核实："),
            pl.col("last_decision"),
            pl.when(pl.col("last_decision_date").is_not_null())
            .then(
                pl.concat_str(
                    [pl.lit("（"), pl.col("last_decision_date").cast(pl.String), pl.lit("）")]
                )
            )
            .otherwise(pl.lit("")),
        ]
    )
    return pl.concat_list([pl.col("listing_status"), earlier]).list.drop_nulls().list.join("\n")


def households_ledger(
    township: str,
    households: pl.DataFrame,
    meta: PublishMeta,
    contacts: pl.DataFrame | None = None,
) -> tuple[Ledger, pl.DataFrame]:
    """The 疑似监测户 sheet, and its households in print order (SEQ, GROUP, household_id,
    head_name): the members sheet follows them."""
    ordered = print_order(with_contacts(households, contacts))
    with_keys = with_list_keys(ordered, meta) if keyed(meta) else ordered
    shown = mask_frame(with_keys, "head_id_number") if meta.mask_ids else with_keys
    contact = _contact_cell(shown)
    rows = shown.with_columns(
        family_cell().alias("_family"),
        risk_lines().alias("_risks"),
        status_cell().alias("_status"),
        *([contact.alias("_contact")] if contact is not None else []),
        pl.col("listing_status").is_in(AWAITING_ANSWER).alias("_awaiting"),
    )
    cols = [
        *_household_cols(meta),
        Col("预警\n等级", "colour", "colour", min_width=5, max_width=6),
        Col("风险点及金额", "_risks", min_width=16, max_width=28, wrap=True),
        *(
            [Col("防贫保预估（元）", RELIEF_COLUMN, "money", min_width=9, max_width=12)]
            if relief_shown(meta)
            else []
        ),
        Col("纳入状态", "_status", min_width=8, max_width=12, wrap=True),
        *_contact_cols(contact),
        Col(FEEDBACK_HEADERS[0], "_result", min_width=10, max_width=10, answer=True),
        Col(FEEDBACK_HEADERS[1], "_date", "date", min_width=11, max_width=11, answer=True),
        Col(FEEDBACK_HEADERS[2], "_note", min_width=10, max_width=16, wrap=True, answer=True),
    ]
    first, last = verification_window(meta.period)
    counts = colour_counts_sentence(households)
    ledger = Ledger(
        title=f"{demo_mark(meta)}{LIST_PREFIX}核实台账",
        info=info_line(township, meta, counts, line=True),
        cols=cols,
        rows=rows,
        page_header=demo_mark(meta),
        subtotal=_household_subtotal,
        sign_lines=SIGN_LINES,
        empty="本期部门数据比对未发现本乡镇的疑似监测对象，无需填报。",
        validations={
            "_result": list_validation(FEEDBACK_RESULTS, FEEDBACK_HEADERS[0]),
            "_date": date_validation(first, last, FEEDBACK_HEADERS[1]),
        },
    )
    return ledger, ordered.select(SEQ, GROUP, "household_id", "head_name")


def colour_counts_sentence(households: pl.DataFrame) -> str:
    if not households.height:
        return "共 0 户"
    counts = households["colour"].value_counts()
    by = dict(zip(counts["colour"].to_list(), counts["count"].to_list(), strict=True))
    parts = "，".join(f"{c}色 {by.get(c, 0)} 户" for c in COLOURS)
    return f"共 {households.height} 户：{parts}"


def _household_subtotal(village: str, part: pl.DataFrame) -> str:
    awaiting = int(part["_awaiting"].sum())
    others = part.height - awaiting
    tail = f"；另有 {others} 户已在监测或已确认待录入，可不填" if others else ""
    return f"{village}小计：{colour_counts_sentence(part)}。需填写核实结果 {awaiting} 户{tail}。"


# ---------------------------------------------------------------- 家庭成员及风险依据


def details_ledger(
    township: str,
    details: pl.DataFrame,
    order: pl.DataFrame,
    meta: PublishMeta,
) -> Ledger:
    """The members sheet: each household's members (head first) with the department
    records behind each risk, in the 疑似监测户 sheet's order and 序号; the 序号 and 户主 on
    a household's first row, a heavier line between households."""
    frame = details.join(order, on="household_id", how="inner", maintain_order="left")
    frame = frame.with_row_index("_r").sort([SEQ, "_r"]).with_columns(pl.col(SEQ).alias(HOUSEHOLD))
    first = pl.col("_r") == pl.col("_r").min().over(HOUSEHOLD)
    id_number = pl.col("id_number")
    # A record key that embeds the person's ID number as one of its parts (civil, traffic):
    # the ID is on the row already, so the key keeps its other parts; an ID left inside (a
    # certificate number) is masked.
    reference = ids.mask_text_expr(
        _without_part(pl.col("source_key"), id_number).str.replace_all("|", " · ", literal=True)
    )
    frame = frame.with_columns(
        pl.when(first).then(pl.col(SEQ)).alias(SEQ),
        pl.when(first).then(pl.col("head_name")).alias("_head"),
        pl.col("risk_code").replace(EVIDENCE_LABELS).alias("_risk"),
        pl.col("source").replace({s: contract.label(s) for s in contract.SOURCES}).alias("_source"),
        pl.col("disability_grade")
        .replace_strict(GRADE_LABELS, default=None, return_dtype=pl.String)
        .alias("_grade"),
        pl.when(pl.col("is_head") & pl.col("relation").is_null())
        .then(pl.lit("户主"))
        .otherwise(pl.col("relation"))
        .alias("relation"),
        reference.alias("_reference"),
    )
    if meta.mask_ids:  # the ID column, and any ID inside other text (a name, a note)
        frame = mask_frame(frame, "id_number")
    cols = [
        Col("序号", SEQ, "seq", min_width=5),
        Col("户主", "_head", min_width=6, max_width=10, wrap=True),
        Col("姓名", "name", min_width=6, max_width=10, wrap=True),
        Col("与户主\n关系", "relation", "center", min_width=6, max_width=8, wrap=True),
        Col("年龄", "age", "int", min_width=5, max_width=5),
        Col("残疾\n等级", "_grade", "center", min_width=5, max_width=6),
        Col("身份证号", "id_number", min_width=10, max_width=22),
        Col("风险点", "_risk", min_width=6, max_width=14, wrap=True),
        Col("数据\n来源", "_source", "center", min_width=5, max_width=8, wrap=True),
        Col("日期", "rule_date", "date", min_width=11, max_width=11),
        Col("金额（元）", "amount", "money", min_width=9, max_width=13),
        Col("记录编号", "_reference", min_width=10, max_width=22, wrap=True),
        Col("说明", "detail", min_width=14, max_width=36, wrap=True),
    ]
    return Ledger(
        title=f"{demo_mark(meta)}家庭成员及风险依据",
        info=info_line(
            township,
            meta,
            "序号、户主与「疑似监测户」表一致；每户先列户主，再列其他成员及各风险点对应的部门记录。",
        ),
        cols=cols,
        rows=frame,
        page_header=demo_mark(meta),
        empty="本期没有疑似监测对象。",
        household=HOUSEHOLD,
        min_row_height=MEMBER_ROW_HEIGHT,
    )


def _without_part(key: pl.Expr, part: pl.Expr) -> pl.Expr:
    """`key` without `part` where it is the first or last '|'-separated part of it."""
    n = part.str.len_chars()
    head = pl.concat_str([part, pl.lit("|")])
    tail = pl.concat_str([pl.lit("|"), part])
    key = (
        pl.when(key.str.starts_with(head).fill_null(False))
        .then(key.str.slice(n + 1))
        .otherwise(key)
    )
    return (
        pl.when(key.str.ends_with(tail).fill_null(False))
        .then(key.str.slice(0, key.str.len_chars() - n - 1))
        .otherwise(key)
    )


# ---------------------------------------------------------------- 风险消除候选


def candidates_ledger(
    township: str,
    candidates: pl.DataFrame,
    meta: PublishMeta,
    contacts: pl.DataFrame | None = None,
) -> Ledger:
    """The 风险消除候选 sheet: one row per candidate household, by village, with the
    township's answer columns (消除意见, 意见日期, 备注)."""
    ordered = print_order(with_contacts(candidates, contacts), colour=False)
    with_keys = with_list_keys(ordered, meta) if keyed(meta) else ordered
    shown = mask_frame(with_keys, "head_id_number") if meta.mask_ids else with_keys
    contact = _contact_cell(shown)
    checked = pl.col("periods_checked").str.split("、")
    span = pl.concat_str(
        [
            checked.list.first(),
            pl.lit(" 至 "),
            checked.list.last(),
            pl.lit("\n共 "),
            checked.list.len().cast(pl.String),
            pl.lit(" 期"),
        ]
    )
    last_risk = pl.concat_str(
        [pl.col("last_risk_period"), pl.lit("："), pl.col("last_risk_labels")]
    )
    earlier = pl.concat_str(
        [
            pl.col("last_removal_decision"),
            pl.when(pl.col("last_removal_decision_date").is_not_null())
            .then(
                pl.concat_str([pl.lit("\n"), pl.col("last_removal_decision_date").cast(pl.String)])
            )
            .otherwise(pl.lit("")),
        ]
    )
    rows = shown.with_columns(
        family_cell(line=True).alias("_family"),
        span.fill_null(NONE).alias("_checked"),
        last_risk.fill_null(pl.col("last_risk_period")).fill_null(NONE).alias("_last_risk"),
        earlier.fill_null(NONE).alias("_earlier"),
        *([contact.alias("_contact")] if contact is not None else []),
    )
    cols = [
        *_household_cols(meta),
        Col("已核查无风险期次", "_checked", min_width=10, max_width=19, wrap=True),
        Col("最近有风险期次\n及风险点", "_last_risk", min_width=10, max_width=18, wrap=True),
        Col("上次消除意见", "_earlier", min_width=8, max_width=12, wrap=True),
        *_contact_cols(contact),
        Col(REMOVAL_HEADERS[0], "_decision", min_width=10, max_width=10, answer=True),
        Col(REMOVAL_HEADERS[1], "_date", "date", min_width=11, max_width=11, answer=True),
        Col(REMOVAL_HEADERS[2], "_note", min_width=10, max_width=16, wrap=True, answer=True),
    ]
    first, last = verification_window(meta.period)
    return Ledger(
        title=f"{demo_mark(meta)}{CANDIDATES_PREFIX}台账",
        info=info_line(township, meta, f"共 {candidates.height} 户"),
        cols=cols,
        rows=rows,
        page_header=demo_mark(meta),
        subtotal=lambda village, part: f"{village}小计：{part.height} 户。",
        sign_lines=SIGN_LINES,
        empty="本期本乡镇没有符合风险消除候选条件的监测户。",
        validations={
            "_decision": list_validation(REMOVAL_DECISIONS, REMOVAL_HEADERS[0]),
            "_date": date_validation(first, last, REMOVAL_HEADERS[1]),
        },
    )
