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
from xlsxwriter.workbook import Workbook

from screening import contract, ids
from screening.periods import period_words
from screening.publish.about import _demo_lines
from screening.publish.columns import LIST_KEY, LIST_KEY_HEADER, PublishMeta, list_key
from screening.publish.files import IDENTITY_PREFIX, StagedFiles, ensure_dir, identity_path
from screening.publish.workbook import (
    SHEET_ABOUT,
    _Col,
    _Formats,
    _page_header,
    _properties,
    _write_about,
    _write_table,
)

SHEET_IDENTITY = "身份核对"
ANSWERS = ("是同一人", "不是")
ANSWER_HEADERS = ("核对结果", "核对人", "备注")
SAME, NOT_SAME = ANSWERS
_COLS = [
    _Col("序号", "_seq", "seq"),
    _Col(LIST_KEY_HEADER, LIST_KEY, "text"),
    _Col("数据来源", "department", "enum"),
    _Col("记录编号", "source_key", "text"),
    _Col("日期", "rule_date", "date"),
    _Col("金额", "amount", "money"),
    _Col("记录说明", "detail", "text"),
    _Col("记录姓名", "record_name", "text"),
    _Col("记录身份证号", "record_id_shown", "text"),
    _Col("记录出生日期", "record_birth", "text"),
    _Col("户编号", "household_id", "text"),
    _Col("村", "village", "text"),
    _Col("人口库姓名", "name", "text"),
    _Col("人口库身份证号", "id_shown", "text"),
    _Col("出生日期", "birth", "text"),
    _Col("性别", "sex", "enum"),
    _Col("匹配概率", "probability", "text"),
    _Col("依据", "reasons", "text", wrap_at=40),
    *(_Col(header, f"_answer_{i}", "text") for i, header in enumerate(ANSWER_HEADERS)),
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


def _cells(rows: pl.DataFrame, meta: PublishMeta) -> list[dict[str, object]]:
    secret = meta.list_key_secret or ""
    rows = rows.sort("village", "source", "source_key", "rank", nulls_last=True)
    keys = [
        pair_key(secret, meta.period, s, k, i)
        for s, k, i in rows.select("source", "source_key", "id_number").iter_rows()
    ]
    sex = pl.col("id_number").str.slice(16, 1).cast(pl.Int32, strict=False) % 2
    frame = (
        rows.with_columns(pl.Series(LIST_KEY, keys, pl.String))
        .with_columns(
            department=pl.col("source").replace({s: contract.label(s) for s in contract.SOURCES}),
            source_key=ids.mask_text_expr(pl.col("source_key")),
            detail=ids.mask_text_expr(pl.col("detail")),
            record_id_shown=ids.mask_expr(ids.clean_expr(pl.col("record_id_number"))),
            record_birth=_birth(pl.col("record_id_number")),
            id_shown=ids.mask_expr(pl.col("id_number")),
            birth=_birth(pl.col("id_number")),
            sex=pl.when(sex == 1).then(pl.lit("男")).when(sex == 0).then(pl.lit("女")),
            probability=pl.when(pl.col("match_probability") >= 0.999)
            .then(pl.lit("99.9%以上"))
            .otherwise((pl.col("match_probability") * 100).round(1).cast(pl.String) + "%"),
            household_id=ids.mask_text_expr(pl.col("household_id")),
        )
        .with_row_index("_seq", offset=1)
    )
    return frame.rows(named=True)


def write_identity_workbook(
    path: Path, township: str, rows: pl.DataFrame, meta: PublishMeta
) -> None:
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = Workbook(str(path), options)
    try:
        props = _properties(township, meta)
        workbook.set_properties(
            {**props, "title": f"{IDENTITY_PREFIX}名单 {township} {meta.period}"}
        )
        formats = _Formats(workbook)
        header = _page_header(IDENTITY_PREFIX, township, meta)
        cells = _cells(rows, meta)
        sheet = workbook.add_worksheet(SHEET_IDENTITY)
        _write_table(sheet, _COLS, cells, formats, header)
        answer = len(_COLS) - len(ANSWER_HEADERS)
        sheet.data_validation(
            1, answer, len(cells), answer, {"validate": "list", "source": list(ANSWERS)}
        )
        about = workbook.add_worksheet(SHEET_ABOUT)
        _write_about(about, about_lines(township, rows, meta), formats, header,
                     title=f"{IDENTITY_PREFIX}名单说明")  # fmt: skip
    finally:
        workbook.close()


def about_lines(township: str, rows: pl.DataFrame, meta: PublishMeta) -> list[tuple[str, str]]:
    """The 说明 sheet of the 身份核对 list."""
    records = rows.select("source", "source_key").unique().height
    threshold = meta.params.linkage.suggest_probability
    return [
        *_demo_lines(meta),
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
            "「核对码」是县级导入时用来对应记录与人员的编码，不含个人信息，请勿修改或删除；"
            "排序、筛选、删除行都不影响导入。",
        ),
        (
            "个人信息",
            "本表含个人身份信息，身份证号已脱敏显示（中间数字以*代替），"
            "仅限防返贫监测工作使用，请妥善保管，不得外传。",
        ),
    ]
