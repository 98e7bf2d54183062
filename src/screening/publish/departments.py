"""Feedback to the departments: what came of the data each one sent this month.

    <out>/<YYYY-MM>/departments/部门反馈_<department>_<YYYYMM>.xlsx

One workbook per department whose records the rules read (医保, 教育, 交警, 残联, 民政),
written with every run (read from the database, so a one-township re-run rewrites them
whole): a 说明 sheet with the counts; the department's records behind this period's
listings, with the households' colour and the townships' latest answer; its records behind
the previous list, with the township's answer on it (the loop closes: a department learns
which of its leads the villages confirmed); its records of the window that match nobody on
the roster, and its rows set aside (quarantined), each with the reason, so it can fix its
extract. ID numbers are always masked (a department finds a record by its own key, file and
row); the township's notes are not passed on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from screening import contract, ids
from screening.config import DEMO_WORDS
from screening.db import deliveries as db_deliveries
from screening.db import departments as db_departments
from screening.db import inspect as db_inspect
from screening.inspect.quarantine import check_label, column_label, mask_raw_value
from screening.periods import period_words, previous_period
from screening.publish.about import source_status
from screening.publish.columns import SHEET_ABOUT, PublishMeta
from screening.publish.fastsheet import DATE, NUMBER, TEXT, FastSheet, PlainSheet
from screening.publish.files import (
    DEPARTMENTS_FOLDER,
    StagedFiles,
    department_path,
    ensure_dir,
    period_dir,
)
from screening.publish.layout import (
    LINE_HEIGHT,
    Col,
    display_width,
    fit_widths,
    print_setup,
    width_expr,
)
from screening.publish.workbook import file_properties
from screening.rules import EVENT_DEPARTMENTS, RISK_LABELS
from screening.rules.base import window
from screening.vocab import DECISIONS

SHEET_LISTED = "本期列入名单"
SHEET_ANSWERS = "上期核实结果"
SHEET_UNMATCHED = "未匹配记录"
SHEET_QUARANTINED = "拒收记录"
NO_ANSWER = "未反馈"
UNMATCHED_REASON = "身份证号不在人口库中（请核对是否错录；也可能不是本县农村人口）"


@dataclass
class DepartmentFeedback:
    """What one department's workbook says."""

    source: str
    period: str
    delivery: dict[str, Any] | None  # the period's ingest_log row, None: nothing of it
    held: pl.DataFrame  # the period's held_deliveries rows of the source
    match: dict[str, Any] | None  # records_in_window, matched, unmatched of the period
    listed: pl.DataFrame  # db_departments.LISTED_SCHEMA, this period's list
    answered: pl.DataFrame  # the same for the previous list, with its answers
    unmatched: pl.DataFrame
    quarantined: pl.DataFrame  # file, row_number, column, check, raw_value
    window: tuple[dt.date, dt.date]


def load_department(
    con: duckdb.DuckDBPyConnection, source: str, period: str, window_months: int
) -> DepartmentFeedback:
    spec = contract.load()[source]
    w = window(period, window_months)
    delivery = db_deliveries.files_read(con, period).filter(pl.col("source") == source)
    rates = db_inspect.match_rates(con, period).filter(pl.col("source") == source)
    held = db_deliveries.held_of_period(con, period).filter(pl.col("source") == source)
    return DepartmentFeedback(
        source=source,
        period=period,
        delivery=delivery.row(0, named=True) if delivery.height else None,
        held=held,
        match=rates.row(0, named=True) if rates.height else None,
        listed=db_departments.listed_records(con, period, source, answers_on_list=False),
        answered=db_departments.listed_records(
            con, previous_period(period), source, answers_on_list=True
        ),
        unmatched=db_departments.unmatched_records(con, spec, period, w.start, w.end),
        quarantined=db_inspect.quarantined(con, period, source),
        window=(w.start, w.end),
    )


def stage_departments(
    staged: StagedFiles, out: Path, con: duckdb.DuckDBPyConnection, meta: PublishMeta
) -> list[Path]:
    """Stage every department's workbook of the period (deferred: `staged.write_deferred`
    writes them); returns their final paths."""
    folder = period_dir(out, meta.period)
    ensure_dir(folder / DEPARTMENTS_FOLDER)
    paths = []
    for department in EVENT_DEPARTMENTS:
        feedback = load_department(con, department.source, meta.period, meta.params.window_months)
        path = department_path(folder, contract.label(department.source), meta.period)
        # Written with the lists when staged with them (lists.publish's staged_with).
        rows = feedback.listed.height + feedback.answered.height + feedback.unmatched.height
        staged.defer(path, write_department_workbook, (feedback, meta), weight=rows)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the 说明 sheet


def about_lines(feedback: DepartmentFeedback, meta: PublishMeta) -> list[tuple[str, str]]:
    source, period = feedback.source, feedback.period
    spec = contract.load()[source]
    key_words = "、".join(column_label(spec, k) for k in spec.natural_key)
    lines = [("示例数据", f"{DEMO_WORDS}。")]
    lines = lines if meta.demo else []
    lines += [
        ("部门", contract.long_name(source)),
        ("期次", f"{period_words(period)}（{period}）"),
        ("批次号", meta.run_id),
        ("本期报送", _delivery_sentence(feedback, meta)),
        ("与人口库匹配", _match_sentence(feedback)),
        ("列入名单", _listed_sentence(feedback)),
        ("上期核实结果", _answers_sentence(feedback)),
        (
            "如何使用",
            f"请核对“{SHEET_UNMATCHED}”和“{SHEET_QUARANTINED}”两表中的记录，修正后在下次报送时"
            f"一并更正；记录编号即{key_words}（多项之间以“|”分隔），可据此和文件名、行号查找原始"
            "记录。“上期核实结果”是乡镇入户核实后的结论，可用来判断本部门数据提示风险的准确程度。",
        ),
        ("个人信息", "本表含个人信息，身份证号已部分隐去；仅供本部门核对数据使用，请勿外传。"),
    ]
    return lines


def _delivery_sentence(feedback: DepartmentFeedback, meta: PublishMeta) -> str:
    status = meta.sources.get(feedback.source) or (
        feedback.delivery["status"] if feedback.delivery else "missing"
    )
    note = meta.delivery_notes.get(feedback.source)
    row = feedback.delivery
    if row and row["file"] and status in ("loaded", "empty", "kept"):
        read = (
            f"文件 {ids.mask_text(row['file'])}：读入 {_n(row['rows_read'])} 行，接收 "
            f"{_n(row['rows_accepted'])} 行，拒收 {_n(row['rows_rejected'])} 行"
            f"（见“{SHEET_QUARANTINED}”表）"
        )
        if row.get("rows_duplicate"):
            read += f"，完全相同的重复行 {_n(row['rows_duplicate'])} 行只计一次"
        text = read + "。"
    else:
        text = f"{source_status(status)}。"
    for r in feedback.held.iter_rows(named=True):
        text += (
            f"文件 {ids.mask_text(r['file'])} 未通过数据完整性检查，"
            f"{'已由 ' + r['accepted_by'] + ' 确认接受' if r['accepted_by'] else '暂扣未用'}。"
        )
    return text + (f"{note}" if note else "")


def _match_sentence(feedback: DepartmentFeedback) -> str:
    start, end = feedback.window
    m = feedback.match
    if not m:
        return "本期没有匹配统计。"
    return (
        f"筛查时间窗口（{start.isoformat()} 至 {end.isoformat()}）内的记录 "
        f"{_n(m['records_in_window'])} 条，其中 {_n(m['matched'])} 条的身份证号在人口库中，"
        f"{_n(m['unmatched'])} 条不在（见“{SHEET_UNMATCHED}”表）。"
    )


def _listed_sentence(feedback: DepartmentFeedback) -> str:
    listed = feedback.listed
    households = listed.select("township", "household_id").n_unique() if listed.height else 0
    return (
        f"本期本部门 {listed['source_key'].n_unique():,} 条记录是 {households:,} 户列入"
        f"疑似监测对象名单的依据（见“{SHEET_LISTED}”表）。"
        if listed.height
        else "本期没有本部门的记录成为列入名单的依据。"
    )


def _answers_sentence(feedback: DepartmentFeedback) -> str:
    before = period_words(previous_period(feedback.period))
    answered = feedback.answered
    if not answered.height:
        return f"上期（{before}）名单中没有依据本部门记录列入的户。"
    per_household = answered.unique(["township", "household_id"])
    counts = dict(per_household.group_by("decision").len().iter_rows())
    got = per_household.height - counts.get(None, 0)
    said = "，".join(f"{d} {counts[d]} 户" for d in DECISIONS if counts.get(d))
    return (
        f"上期（{before}）名单中依据本部门记录列入 {per_household.height:,} 户，乡镇已反馈 "
        f"{got:,} 户" + (f"：{said}" if said else "") + f"（见“{SHEET_ANSWERS}”表）。"
    )


def _n(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


# ---------------------------------------------------------------- the workbook


def _col(header: str, key: str, kind: str = "text", widest: int = 30, least: int = 8) -> Col:
    """A column of a department's sheet: text wraps, so the sheet can be narrowed to print
    at 9 points or more on A4 (layout.fit_widths), as the townships' lists do."""
    wraps = kind == "text"
    return Col(header, key, kind, min_width=least if wraps else 4, max_width=widest, wrap=wraps)


def _record_cols(spec: contract.SourceSpec, answer: str) -> list[Col]:
    date = column_label(spec, spec.rule_date or "")
    return [
        _col("序号", "_seq", "int"),
        _col("记录编号", "source_key", widest=36, least=12),
        _col("身份证号", "id_number"),
        _col("姓名", "name"),
        _col(date, "rule_date", "date"),
        _col("金额（元）", "amount", "money"),
        _col("风险点", "risk", widest=16),
        _col("说明", "detail", widest=56, least=22),
        _col("乡镇", "township"),
        _col("村", "village"),
        _col("预警等级", "colour"),
        _col("纳入状态", "listing_status"),
        _col(answer, "decision"),
        _col(answer.replace("结果", "日期"), "decision_date", "date"),
    ]


def write_department_workbook(path: Path, feedback: DepartmentFeedback, meta: PublishMeta) -> None:
    spec = contract.load()[feedback.source]
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = Workbook(str(path), options)
    try:
        workbook.set_properties(_properties(feedback, meta))
        formats = _formats(workbook)
        title = f"部门反馈 {contract.long_name(feedback.source)} {period_words(feedback.period)}"
        header = f"{'【示例数据 虚构人员】' if meta.demo else ''}{title}"
        about = workbook.add_worksheet(SHEET_ABOUT)
        _write_about(about, title, about_lines(feedback, meta), formats, header)
        sheets: list[tuple[str, list[Col], pl.DataFrame]] = [
            (SHEET_LISTED, _record_cols(spec, "上次核实结果"), _records(feedback.listed, "")),
            (SHEET_ANSWERS, _record_cols(spec, "核实结果"), _records(feedback.answered, NO_ANSWER)),
            (SHEET_UNMATCHED, _unmatched_cols(spec), _unmatched(feedback.unmatched)),
            (SHEET_QUARANTINED, _QUARANTINED_COLS, _quarantined(spec, feedback.quarantined)),
        ]
        for name, cols, frame in sheets:
            sheet = workbook.add_worksheet(name, worksheet_class=FastSheet)
            _write_table(sheet, cols, frame, formats, header)
    finally:
        workbook.close()


def _unmatched_cols(spec: contract.SourceSpec) -> list[Col]:
    return [
        _col("序号", "_seq", "int"),
        _col("记录编号", "source_key", widest=36, least=12),
        _col("身份证号", "id_number"),
        _col("姓名", "name"),
        _col(column_label(spec, spec.rule_date or ""), "rule_date", "date"),
        _col("报送期次", "delivered"),
        _col("文件", "file", widest=36, least=12),
        _col("行号", "row_number", "int"),
        _col("原因", "reason", widest=44, least=20),
    ]


_QUARANTINED_COLS = [
    _col("序号", "_seq", "int"),
    _col("文件", "file", widest=36, least=12),
    _col("行号", "row_number", "int"),
    _col("列", "column_label", widest=24),
    _col("原因", "check_label", widest=44, least=20),
    _col("原值", "raw_value", widest=36, least=12),
]


def _records(frame: pl.DataFrame, no_answer: str) -> pl.DataFrame:
    return frame.with_columns(
        source_key=ids.mask_text_expr(pl.col("source_key")),
        id_number=ids.mask_expr(pl.col("id_number")),
        detail=ids.mask_text_expr(pl.col("detail")),
        risk=pl.col("risk_code").replace_strict(RISK_LABELS, default=pl.col("risk_code")),
        decision=pl.col("decision").fill_null(no_answer) if no_answer else pl.col("decision"),
    )


def _unmatched(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        source_key=ids.mask_text_expr(pl.col("source_key")),
        id_number=ids.mask_expr(pl.col("id_number")),
        file=ids.mask_text_expr(pl.col("file")),
        reason=pl.lit(UNMATCHED_REASON),
    )


def _quarantined(spec: contract.SourceSpec, frame: pl.DataFrame) -> pl.DataFrame:
    rows = [
        {
            "file": ids.mask_text(r["file"]),
            "row_number": r["row_number"],
            "column_label": column_label(spec, r["column"]),
            "check_label": check_label(r["check"], english=False),
            "raw_value": mask_raw_value(spec, r["column"], r["raw_value"]),
        }
        for r in frame.iter_rows(named=True)
    ]
    schema = {k: pl.String for k in ("file", "column_label", "check_label", "raw_value")}
    return pl.DataFrame(rows, schema={**schema, "row_number": pl.Int64})


def _properties(feedback: DepartmentFeedback, meta: PublishMeta) -> dict[str, Any]:
    title = f"部门反馈 {contract.label(feedback.source)} {feedback.period}"
    return file_properties(title, feedback.period, meta.run_id)


def _formats(workbook: Workbook) -> dict[str, Any]:
    cell = {"border": 1, "border_color": "#808080", "valign": "top", "font_size": 10}
    return {
        "header": workbook.add_format(
            {**cell, "bold": True, "bg_color": "#D9D9D9", "align": "center", "text_wrap": True}
        ),
        "text": workbook.add_format(cell),
        "wrap": workbook.add_format({**cell, "text_wrap": True}),
        "int": workbook.add_format({**cell, "num_format": "0"}),
        "money": workbook.add_format({**cell, "num_format": "#,##0.00"}),
        "date": workbook.add_format({**cell, "num_format": "yyyy-mm-dd", "align": "center"}),
        "title": workbook.add_format({"bold": True, "font_size": 14}),
        "label": workbook.add_format({"bold": True, "valign": "top", "font_size": 10}),
        "note": workbook.add_format({"text_wrap": True, "valign": "top", "font_size": 10}),
    }


_ABOUT_WIDTH = 100


def _write_about(
    sheet: Worksheet,
    title: str,
    lines: Sequence[tuple[str, str]],
    formats: dict[str, Any],
    header: str,
) -> None:
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, _ABOUT_WIDTH)
    sheet.write_string(0, 0, title, formats["title"])
    sheet.set_row(0, 2 * LINE_HEIGHT)
    for r, (label, text) in enumerate(lines, start=2):
        sheet.write_string(r, 0, label, formats["label"])
        sheet.write_string(r, 1, text, formats["note"])
        sheet.set_row(r, max(1, -(-display_width(text) // (_ABOUT_WIDTH - 2))) * LINE_HEIGHT)
    print_setup(sheet, landscape=True, header=header)


def _write_table(
    sheet: PlainSheet,
    cols: Sequence[Col],
    frame: pl.DataFrame,
    formats: dict[str, Any],
    header: str,
) -> None:
    """A table of records, its columns sized to their text and narrowed to print at 9
    points or more; the text wraps where it is longer than its column. Sizes and values
    are computed a column at a time over the frame, the cells written a row at a time."""
    table = frame.with_row_index("_seq", offset=1)
    n = table.height
    shown = [_shown_widths(col, table) for col in cols]
    widths = fit_widths(
        cols,
        [
            min(max(display_width(col.header), 6, cast(int, found.max() or 0)) + 2, col.max_width)
            for col, found in zip(cols, shown, strict=True)
        ],
        landscape=True,
    )
    for c, col in enumerate(cols):
        sheet.set_column(c, c, widths[c])
        sheet.write_string(0, c, col.header, formats["header"])
    kinds, values, cell_formats, lines = [], [], [], [pl.Series([1] * n, dtype=pl.Int64)]
    for col, found, width in zip(cols, shown, widths, strict=True):
        kinds.append(_KINDS[col.kind])
        values.append(_values(col, table))
        if col.kind == "text":
            room = int(width) - 2
            wrapped = (found > room).to_list()
            cell_formats.append([formats["wrap" if w else "text"] for w in wrapped])
            # ceil: the lines of a wrapped cell
            lines.append(((found + room - 1) // room).alias(f"_{len(lines)}"))
        else:
            cell_formats.append([formats[col.kind]] * n)
    row_lines = pl.DataFrame(lines).select(pl.max_horizontal(pl.all())).to_series().to_list()
    for r, i in enumerate(range(n), start=1):
        sheet.write_prepared(r, [v[i] for v in values], [f[i] for f in cell_formats], kinds)
        if row_lines[i] > 1:  # Excel does not grow a row for wrapped text when it opens it
            sheet.set_row(r, row_lines[i] * LINE_HEIGHT)
    if not n:
        sheet.write_string(1, 0, "无", formats["text"])
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(n, 1), len(cols) - 1)
    print_setup(sheet, landscape=True, header=header, repeat=(0, 0))


_KINDS = {"text": TEXT, "int": NUMBER, "money": NUMBER, "date": DATE}


def _values(col: Col, table: pl.DataFrame) -> list[Any]:
    """The cells' values (None: blank), as the sheet gets them."""
    if col.key not in table.columns:
        return [None] * table.height
    values = table[col.key]
    if col.kind == "text":
        return _texts(values).to_list()
    if col.kind == "money":
        return [float(v) if isinstance(v, Decimal) else v for v in values]
    return values.to_list()


def _texts(values: pl.Series) -> pl.Series:
    if values.dtype == pl.String:
        return values
    return pl.Series([None if v is None else str(v) for v in values], dtype=pl.String)


def _shown_widths(col: Col, table: pl.DataFrame) -> pl.Series:
    """The display width of each cell's text (0 for a blank)."""
    if col.key not in table.columns:
        return pl.Series([0] * table.height, dtype=pl.Int64)
    values = table[col.key]
    if col.kind == "date":
        return values.is_not_null().cast(pl.Int64) * len("0000-00-00")
    if col.kind == "money":
        text = pl.Series([None if v is None else f"{v:,.2f}" for v in values], dtype=pl.String)
    else:
        text = _texts(values)
    return text.to_frame("v").select(width_expr(pl.col("v")).cast(pl.Int64)).to_series()
