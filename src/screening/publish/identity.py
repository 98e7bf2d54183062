"""The 身份核对 list: per township, the department records whose ID number reaches nobody on
the roster, beside the roster person each probably belongs to, for a person to decide.

    <out>/<YYYY-MM>/<township folder>/身份核对_<folder>_<YYYYMM>.xlsx   (where there are any)

One row per suggested pair (link_suggestions), the record on the left (department,
record, date, amount, name, the ID number as delivered) and the person on the right
(户编号, village, name, ID number, birth date, sex), then the match probability, the
reasons in words and the three columns the township fills in: 核对结果 (是同一人 / 不是,
a drop-down), 核对人 and 备注. ID numbers are always masked here (the two numbers differ
in a digit or two; name, birth date and village are what a cadre checks). Each row has a
核对码 (publish.columns.list_key over the pair) by which `screening feedback import` finds
the pair again (feedback/links.py). The sheets are written with the lists' own helpers
(publish.workbook).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from screening import contract, ids
from screening.periods import period_words
from screening.publish.about import demo_lines
from screening.publish.columns import LIST_KEY, LIST_KEY_HEADER, PublishMeta, list_key
from screening.publish.files import IDENTITY_PREFIX, StagedFiles, ensure_dir, identity_path
from screening.publish.layout import Col, Formats
from screening.publish.ledger import GROUP, Ledger, list_validation, write_ledger
from screening.publish.sheets import NO_VILLAGE, SEQ, SIGN_LINES, demo_mark, info_line
from screening.publish.workbook import (
    SHEET_ABOUT,
    ledger_sheet,
    new_workbook,
    workbook_properties,
    write_text_sheet,
)

SHEET_IDENTITY = "身份核对"
ANSWERS = ("是同一人", "不是")
ANSWER_HEADERS = ("核对结果", "核对人", "备注")
SAME, NOT_SAME = ANSWERS
# The record on the left, the roster person on the right; the text columns wrap, so the
# sheet can be narrowed to print at 9 points on A4 (layout.fit_widths).
_COLS = [
    Col("序号", SEQ, "seq", min_width=5),
    Col(LIST_KEY_HEADER, LIST_KEY, min_width=9),
    Col("数据来源", "department", "center", min_width=6, max_width=8, wrap=True),
    Col("记录编号", "source_key", min_width=8, max_width=20, wrap=True),
    Col("日期", "rule_date", "date", min_width=11, max_width=11),
    Col("金额", "amount", "money", min_width=8, max_width=12),
    Col("记录说明", "detail", min_width=8, max_width=20, wrap=True),
    Col("记录姓名", "record_name", min_width=6, max_width=10, wrap=True),
    Col("记录身份证号\n及出生日期", "record_id_shown", min_width=10, max_width=20, wrap=True),
    Col("户编号", "household_id", min_width=10, max_width=18, wrap=True),
    Col("人口库姓名", "name", min_width=6, max_width=10, wrap=True),
    Col("人口库身份证号\n出生日期、性别", "id_shown", min_width=10, max_width=20, wrap=True),
    Col("匹配概率", "probability", "center", min_width=6, max_width=9, wrap=True),
    Col("依据", "reasons", min_width=10, max_width=30, wrap=True),
    Col(ANSWER_HEADERS[0], "_answer", min_width=9, max_width=9, answer=True),
    Col(ANSWER_HEADERS[1], "_checked_by", min_width=7, max_width=8, answer=True),
    Col(ANSWER_HEADERS[2], "_note", min_width=8, max_width=12, wrap=True, answer=True),
]


def pair_key(secret: str, period: str, source: str, source_key: str, id_number: str) -> str:
    """The 核对码 of a suggested pair on the period's 身份核对 list."""
    return list_key(secret, period, f"{source}|{source_key}|{id_number}")


def stage_identity(
    staged: StagedFiles,
    target: Path,
    townships: list[str],
    suggestions: pl.DataFrame,
    meta: PublishMeta,
    folders: Mapping[str, str],
) -> None:
    """Stage the 身份核对 list of each of `townships` that has suggestions."""
    for township in townships:
        rows = suggestions.filter(pl.col("township") == township)
        if not rows.height:
            continue
        path = identity_path(target, township, meta.period, folders.get(township))
        ensure_dir(path.parent)
        staged.add(path, _writer(township, rows, meta))


def _writer(township: str, rows: pl.DataFrame, meta: PublishMeta) -> Callable[[Path], None]:
    return lambda tmp: write_identity_workbook(tmp, township, rows, meta)


def _birth(id_text: pl.Expr) -> pl.Expr:
    digits = ids.clean_expr(id_text).str.slice(6, 8)
    return pl.when(digits.str.contains(r"^[0-9]{8}$")).then(
        pl.concat_str(
            [digits.str.slice(0, 4), digits.str.slice(4, 2), digits.str.slice(6, 2)],
            separator="-",
        )
    )


def _lines(*parts: pl.Expr) -> pl.Expr:
    """The non-empty parts, one a line."""
    cleaned = [pl.when(p.str.len_chars() > 0).then(p) for p in parts]
    return pl.concat_list(cleaned).list.drop_nulls().list.join("\n")


def _cells(rows: pl.DataFrame, meta: PublishMeta) -> pl.DataFrame:
    """The sheet's rows in print order (by village, each village on pages of its own), the
    text of every cell prepared, ID numbers masked."""
    secret = meta.list_key_secret or ""
    rows = rows.with_columns(pl.col("village").fill_null(NO_VILLAGE)).sort(
        "village", "source", "source_key", "rank", nulls_last=True
    )
    keys = [
        pair_key(secret, meta.period, s, k, i)
        for s, k, i in rows.select("source", "source_key", "id_number").iter_rows()
    ]
    sex = pl.col("id_number").str.slice(16, 1).cast(pl.Int32, strict=False) % 2
    return (
        rows.with_columns(pl.Series(LIST_KEY, keys, pl.String))
        .with_columns(
            department=pl.col("source").replace({s: contract.label(s) for s in contract.SOURCES}),
            source_key=ids.mask_text_expr(pl.col("source_key")),
            detail=ids.mask_text_expr(pl.col("detail")),
            # A number and the birth date it gives, one a line: the digits a cadre compares.
            record_id_shown=_lines(
                ids.mask_expr(ids.clean_expr(pl.col("record_id_number"))),
                _birth(pl.col("record_id_number")),
            ),
            id_shown=_lines(
                ids.mask_expr(pl.col("id_number")),
                pl.concat_list(
                    _birth(pl.col("id_number")),
                    pl.when(sex == 1).then(pl.lit("男")).when(sex == 0).then(pl.lit("女")),
                )
                .list.drop_nulls()
                .list.join("、"),
            ),
            probability=pl.when(pl.col("match_probability") >= 0.999)
            .then(pl.lit("99.9%以上"))
            .otherwise((pl.col("match_probability") * 100).round(1).cast(pl.String) + "%"),
            household_id=ids.mask_text_expr(pl.col("household_id")),
        )
        .with_columns(pl.col("village").alias(GROUP))
        .with_row_index(SEQ, offset=1)
    )


def identity_ledger(township: str, rows: pl.DataFrame, meta: PublishMeta) -> Ledger:
    """The 身份核对 sheet as a 台账: a village a page, its count, the signature lines."""
    return Ledger(
        title=f"{demo_mark(meta)}{IDENTITY_PREFIX}台账",
        info=info_line(township, meta, f"共 {rows.height} 条"),
        cols=_COLS,
        rows=_cells(rows, meta),
        page_header=demo_mark(meta),
        subtotal=lambda village, part: f"{village}小计：{part.height} 条。",
        sign_lines=SIGN_LINES,
        unit="条",
        validations={"_answer": list_validation(ANSWERS, ANSWER_HEADERS[0])},
    )


def write_identity_workbook(
    path: Path, township: str, rows: pl.DataFrame, meta: PublishMeta
) -> None:
    workbook = new_workbook(path)
    try:
        workbook.set_properties(workbook_properties(IDENTITY_PREFIX, township, meta))
        formats = Formats(workbook)
        write_ledger(
            ledger_sheet(workbook, SHEET_IDENTITY), identity_ledger(township, rows, meta), formats
        )
        about = workbook.add_worksheet(SHEET_ABOUT)
        lines = about_lines(township, rows, meta)
        write_text_sheet(about, f"{IDENTITY_PREFIX}名单说明", lines, formats, meta)
    finally:
        workbook.close()


def about_lines(township: str, rows: pl.DataFrame, meta: PublishMeta) -> list[tuple[str, str]]:
    """The 说明 sheet of the 身份核对 list."""
    records = rows.select("source", "source_key").unique().height
    threshold = meta.params.linkage.suggest_probability
    return [
        *demo_lines(meta),
        ("乡镇", township),
        ("期次", f"{period_words(meta.period)}（{meta.period}）"),
        ("批次号", meta.run_id),
        ("条数", f"共 {rows.height} 条（涉及部门记录 {records} 条）。"),
        (
            "为什么要核对",
            "部门数据按身份证号与人口库比对。下列部门记录的身份证号在人口库中找不到：号码本身无效"
            "（如录错一位数字、两位数字前后颠倒、少了最后一位校验码），或号码有效但人口库中没有此人"
            "（如15位老号码升为18位时出错）。这些记录若确属本乡镇某人，其家庭的风险可能被漏筛。",
        ),
        (
            "怎样列出",
            "程序按姓名（含同音字）、出生日期、身份证号各部分，将记录与人口库逐一比对，"
            f"估计为同一人的概率（匹配概率），达到 {threshold:.0%} 的列入本表，每条记录最多列出"
            f" {meta.params.linkage.candidates_per_record} 位候选人。「依据」列说明号码差在哪里、"
            "姓名是否相同。匹配概率只是参考，是不是同一人由核对人员判断，程序不会自动关联。",
        ),
        (
            "怎样核对",
            "请对照左侧的部门记录（数据来源、日期、金额、记录姓名）与右侧的人口库人员（户编号、村、"
            "姓名、出生日期、性别），必要时向本人、村干部或相关部门了解，在「核对结果」列选择"
            "「是同一人」或「不是」，并填写核对人和备注（可不填）。无法判断的可留空，下月仍会列出。",
        ),
        (
            "反馈之后",
            "将本文件反馈县级，由县级用 screening feedback import 导入。确认「是同一人」的记录，"
            "从下一次筛查起计入该人员，其家庭的风险依据中注明「经人工核对关联」；"
            "「不是」的，此后不再列出这对记录与人员。同一条记录只能确认属于一人。",
        ),
        (
            LIST_KEY_HEADER,
            "「核对码」是县级导入时用来对应记录与人员的编码，不含个人信息，请勿修改或删除。"
            "本表已设保护（无密码），只有最右三列可以填写；不需要答复的行留空即可。",
        ),
        (
            "个人信息",
            "本表含个人身份信息，身份证号已脱敏显示（中间数字以*代替），"
            "仅限防返贫监测工作使用，请妥善保管，不得外传。",
        ),
    ]
