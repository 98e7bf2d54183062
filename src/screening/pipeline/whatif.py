"""What-if (参数试算): the lists of a screened period under other parameters, before a county
adopts them (`screening whatif --period P --params FILE`), as OpenFisca's reforms and
OpenSPP's eligibility queries let one try a rule on the stored population first.

The stored data of P is screened twice by the screening code itself: with the parameters
the period's latest successful run recorded (the lists as they stand, "before"), and with
the given file merged over the defaults ("after"), the same decisions and earlier periods
applying to both. What differs is the parameters' doing alone. The comparison goes to
`<out>/<P>/whatif/` (an xlsx and two csv); the database is only read, no run is recorded
and no list, report or parquet file is touched.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from screening import contract, ids, params
from screening.db import inspect as db_inspect
from screening.inspect.base import latest_run, require_tables, run_parameters
from screening.periods import check_period, period_words
from screening.pipeline.inputs import load_inputs, previously_listed
from screening.publish.about import chinese_only
from screening.rules import batches, followup
from screening.rules.screen import ScreenInputs, ScreenResult, screen
from screening.vocab import COLOURS, SUM

FOLDER = "whatif"
PREFIX = "参数试算"
ALL_COLOURS = "合计"
COUNTY = "全县"
ENTERING, LEAVING, COLOUR_CHANGED, RISKS_CHANGED = (
    "新列入",
    "不再列入",
    "预警等级变化",
    "风险点变化",
)
SUMMARY_HEADERS = {
    "township": "乡镇",
    "colour": "预警等级",
    "before": "现行参数户数",
    "after": "试算参数户数",
    "entering": "新列入",
    "leaving": "不再列入",
    "relief_before": "现行防贫保预估合计",
    "relief_after": "试算防贫保预估合计",
}
CHANGE_HEADERS = {
    "township": "乡镇",
    "village": "村",
    "household_id": "户编号",
    "head_name": "户主姓名",
    "change": "变化",
    "colour_before": "现行预警等级",
    "colour_after": "试算预警等级",
    "risks_before": "现行风险点",
    "risks_after": "试算风险点",
    "relief_before": "现行防贫保预估",
    "relief_after": "试算防贫保预估",
}
PARAMETER_HEADERS = {"name": "参数", "label": "名称", "before": "现行", "after": "试算"}


@dataclass(frozen=True)
class WhatIf:
    period: str
    run_id: str  # the run whose parameters are "before"
    before_origin: str
    after_origin: str
    summary: pl.DataFrame  # SUMMARY_HEADERS: per township (and 全县) and colour (and 合计)
    changes: pl.DataFrame  # CHANGE_HEADERS: the households entering, leaving or changing
    parameters: pl.DataFrame  # PARAMETER_HEADERS: the parameters that differ
    notes: list[str]  # what to know before reading it (the stored list differs, …)

    @property
    def unchanged(self) -> bool:
        return self.changes.height == 0


def whatif(
    con: duckdb.DuckDBPyConnection, period: str, params_file: Path, after_origin: str = ""
) -> WhatIf:
    """Screen `period` as stored under its run's parameters and under `params_file`, and
    compare the lists. The connection is only read (open it read-only)."""
    check_period(period)
    require_tables(con)
    run = latest_run(con, period)
    before_params, before_origin = run_parameters(period, run)
    after_params = params.load(params_file).at(period)
    before, after = _screen_both(con, period, before_params, after_params)
    # Each set's own warnings, said of it: a stale line in force is not the trial's.
    notes = list(
        dict.fromkeys(
            [
                *(f"现行参数 (parameters in force)：{w}" for w in before_params.warnings),
                *(f"试算参数 (parameters tried)：{w}" for w in after_params.warnings),
            ]
        )
    )
    if not _same_lists(before.suspects, db_inspect.suspects(con, period)):
        notes.append(
            f"按现行参数重算的名单与数据库中 {period} 期的名单（run {run.run_id}）不同：该次运行后"
            "数据有变，请先重新运行本期，再做试算 (the stored list differs from a re-screening "
            "with its own parameters: re-run the period first)"
        )
    return WhatIf(
        period=period,
        run_id=run.run_id,
        before_origin=before_origin,
        after_origin=after_origin or str(params_file),
        summary=summary(before.suspects, after.suspects),
        changes=changes(before.suspects, after.suspects),
        parameters=changed_parameters(before_params, after_params),
        notes=notes,
    )


def _screen_both(
    con: duckdb.DuckDBPyConnection,
    period: str,
    before: params.ResolvedParams,
    after: params.ResolvedParams,
) -> tuple[ScreenResult, ScreenResult]:
    """The period screened under each set of parameters, from one load of its inputs (the
    longer window of the two; a large county in batches, as a run does)."""
    specs = contract.load()
    months = max(before.window_months, after.window_months)
    previous = previously_listed(con, period)
    with contextlib.ExitStack() as stack:
        if batches.needs_batches(con, period):
            # Personal data: a private folder, removed at the end.
            temp = stack.enter_context(tempfile.TemporaryDirectory(prefix="screening-whatif-"))
            inputs = batches.export_inputs(con, specs, period, Path(temp) / "inputs", months)
        else:
            inputs = load_inputs(con, specs, period, months)
        results = []
        for resolved in (before, after):
            earlier = followup.load(con, period, resolved)

            def one(part: ScreenInputs, p: params.ResolvedParams = resolved,
                    e: followup.Followup = earlier) -> ScreenResult:  # fmt: skip
                return screen(part, period, p, previous, "", e)

            results.append(batches.screen_in_batches(inputs, period, resolved, one))
    return results[0], results[1]


def _same_lists(screened: pl.DataFrame, stored: pl.DataFrame) -> bool:
    def key(frame: pl.DataFrame) -> list[tuple[str, str, str]]:
        rows = frame.select("household_id", "colour", pl.col("risk_codes").list.join(";"))
        return sorted(rows.rows())

    return key(screened) == key(stored)


# ---------------------------------------------------------------- the comparison


def _sides(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """One row per household listed on either side, with both sides' colour, risks and
    relief estimate (null where not listed)."""

    def side(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.select(
            "household_id",
            "township",
            "village",
            "head_name",
            pl.col("colour").alias(f"colour_{name}"),
            pl.col("risk_codes").alias(f"codes_{name}"),
            pl.col("risk_labels").alias(f"risks_{name}"),
            pl.col("relief_estimate").alias(f"relief_{name}"),
        )

    return side(before, "before").join(
        side(after, "after"), on=["household_id", "township", "village", "head_name"],
        how="full", coalesce=True, nulls_equal=True,
    )  # fmt: skip


def changes(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """The households entering, leaving, changing colour or changing risks, by township."""
    c = pl.col
    change = (
        pl.when(c("colour_before").is_null())
        .then(pl.lit(ENTERING))
        .when(c("colour_after").is_null())
        .then(pl.lit(LEAVING))
        .when(c("colour_before") != c("colour_after"))
        .then(pl.lit(COLOUR_CHANGED))
        .when(c("codes_before").list.join(";") != c("codes_after").list.join(";"))
        .then(pl.lit(RISKS_CHANGED))
    )
    order = [ENTERING, LEAVING, COLOUR_CHANGED, RISKS_CHANGED]
    return (
        _sides(before, after)
        .with_columns(change=change)
        .filter(c("change").is_not_null())
        .with_columns(_rank=c("change").replace_strict(order, list(range(len(order)))))
        .sort("township", "_rank", "village", "household_id", nulls_last=True)
        .select(*CHANGE_HEADERS)
    )


def summary(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """Per township and colour (then 合计, and the county, 全县): households listed before and
    after, and those entering and leaving (listed on one side only, by their colour there)."""
    sides = _sides(before, after)
    c = pl.col
    counted = pl.concat(
        [
            sides.filter(c("colour_before").is_not_null()).select(
                "township", colour="colour_before", kind=pl.lit("before"), relief="relief_before"
            ),
            sides.filter(c("colour_after").is_not_null()).select(
                "township", colour="colour_after", kind=pl.lit("after"), relief="relief_after"
            ),
            sides.filter(c("colour_before").is_null()).select(
                "township", colour="colour_after", kind=pl.lit("entering"), relief="relief_after"
            ),
            sides.filter(c("colour_after").is_null()).select(
                "township", colour="colour_before", kind=pl.lit("leaving"), relief="relief_before"
            ),
        ]
    )
    townships = sorted(t for t in counted["township"].unique().to_list() if t is not None)
    rows = []
    for township in [*townships, COUNTY]:
        mine = counted if township == COUNTY else counted.filter(c("township") == township)
        for colour in [*COLOURS, ALL_COLOURS]:
            part = mine if colour == ALL_COLOURS else mine.filter(c("colour") == colour)
            counts = dict(part.group_by("kind").len().iter_rows())
            rows.append(
                {
                    "township": township,
                    "colour": colour,
                    **{
                        k: int(counts.get(k, 0)) for k in ("before", "after", "entering", "leaving")
                    },
                    **{f"relief_{k}": _relief_total(part, k) for k in ("before", "after")},
                }
            )
    return pl.DataFrame(
        rows,
        schema={"township": pl.String, "colour": pl.String, "before": pl.Int64,
                "after": pl.Int64, "entering": pl.Int64, "leaving": pl.Int64,
                "relief_before": SUM, "relief_after": SUM},
        orient="row",
    )  # fmt: skip


def _relief_total(part: pl.DataFrame, side: str) -> Decimal | None:
    """The listed households' relief estimates added up (None while the estimate is off)."""
    amounts = part.filter(pl.col("kind") == side)["relief"].drop_nulls()
    return sum(amounts, Decimal("0.00")) if amounts.len() else None


def changed_parameters(before: params.ResolvedParams, after: params.ResolvedParams) -> pl.DataFrame:
    """The parameters whose value in force differs, as people read them."""
    rows = [
        {
            "name": name,
            "label": _label(after, name),
            "before": before.text(name) if name in before.values else "—",
            "after": after.text(name),
        }
        for name in sorted(after.values)
        if before.values.get(name) != after.values[name]
    ]
    return pl.DataFrame(rows, schema={k: pl.String for k in PARAMETER_HEADERS})


def _label(resolved: params.ResolvedParams, name: str) -> str:
    """A parameter's label with its groups': 防贫保预估（…）·是否开启, 因病：…·一般农户."""
    parts = name.split(".")
    return "·".join(
        resolved.labels.get(".".join(parts[: i + 1])) or parts[i] for i in range(len(parts))
    )


# ---------------------------------------------------------------- the files


def write(result: WhatIf, out: Path, mask_ids: bool = False) -> list[Path]:
    """`<out>/<P>/whatif/参数试算_<YYYYMM>.xlsx` (汇总, 名单变化, 参数, 说明) and the
    summary and the changes as csv (UTF-8 with BOM), written whole or not at all."""
    from screening.publish.files import StagedFiles, ensure_dir, period_dir

    folder = ensure_dir(period_dir(out, result.period) / FOLDER)
    yyyymm = result.period.replace("-", "")
    changed = result.changes
    if mask_ids:  # a county may number its households by the head's ID number
        changed = changed.with_columns(ids.mask_text_expr(pl.col("household_id")))
    frames = {
        "汇总": result.summary.rename(SUMMARY_HEADERS),
        "名单变化": changed.rename(CHANGE_HEADERS),
        "参数": result.parameters.rename(PARAMETER_HEADERS),
    }
    with StagedFiles() as staged:
        staged.add(folder / f"{PREFIX}_{yyyymm}.xlsx", lambda tmp: _workbook(tmp, result, frames))
        for sheet in ("汇总", "名单变化"):
            staged.add(folder / f"{PREFIX}_{sheet}_{yyyymm}.csv", _csv_writer(frames[sheet]))
        return staged.commit()


def _csv_writer(frame: pl.DataFrame) -> Callable[[Path], None]:
    """Writes `frame` as csv that Excel opens (UTF-8 with BOM, CRLF)."""

    def write(path: Path) -> None:
        frame.write_csv(path, include_bom=True, line_terminator="\r\n")

    return write


def about_lines(result: WhatIf) -> list[tuple[str, str]]:
    """The 说明 sheet: what the comparison is and is not."""
    moved = result.changes["change"].value_counts().sort("change")
    counts = "；".join(f"{k} {n} 户" for k, n in moved.iter_rows()) or "名单没有变化"
    return [
        ("期次", f"{period_words(result.period)}（{result.period}）"),
        ("是什么", "参数试算：用另一套参数对本期已入库的数据重新筛查，与现行名单对比。这不是名单，"
         "不下发乡镇，没有记录为一次运行，也没有改动已发布的名单和数据库。"),
        ("现行参数", f"本期最近一次运行（批次 {result.run_id}）所用的参数"
         + ("" if result.before_origin.startswith("run ") else f"：{result.before_origin}")),
        ("试算参数", f"{result.after_origin}（未写明的参数沿用默认参数）"),
        ("结果", counts),
        *[("提示", chinese_only(note)) for note in result.notes],
        ("工作表", "「汇总」按乡镇和预警等级列出现行与试算的户数及新列入、不再列入的户数；"
         "「名单变化」列出每一户的变化；「参数」列出两套参数中不同的取值。"),
        ("个人信息", "本文件含户主姓名，仅限防返贫监测工作使用，请妥善保管。"),
    ]  # fmt: skip


def _workbook(path: Path, result: WhatIf, frames: dict[str, pl.DataFrame]) -> None:
    from xlsxwriter.workbook import Workbook

    from screening.publish.layout import display_width

    workbook = Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                    "strings_to_numbers": False})  # fmt: skip
    try:
        head = workbook.add_format({"bold": True, "bg_color": "#D9D9D9", "border": 1})
        cell = workbook.add_format({"border": 1})
        money = workbook.add_format({"border": 1, "num_format": "#,##0.00"})
        for name, frame in frames.items():
            sheet = workbook.add_worksheet(name)
            for j, header in enumerate(frame.columns):
                values = [str(v) for v in frame[header].to_list() if v is not None]
                width = max([display_width(header), *(display_width(v) for v in values)])
                sheet.set_column(j, j, min(width + 2, 40))
                sheet.write_string(0, j, header, head)
            for i, row in enumerate(frame.iter_rows(), start=1):
                for j, value in enumerate(row):
                    if value is None:
                        sheet.write_blank(i, j, None, cell)
                    elif isinstance(value, Decimal):
                        sheet.write_number(i, j, float(value), money)
                    elif isinstance(value, int):
                        sheet.write_number(i, j, value, cell)
                    else:
                        sheet.write_string(i, j, str(value), cell)
            sheet.freeze_panes(1, 0)
        about = workbook.add_worksheet("说明")
        about.set_column(0, 0, 12)
        about.set_column(1, 1, 100)
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        for i, (label, text) in enumerate(about_lines(result)):
            about.write_string(i, 0, label, head)
            about.write_string(i, 1, text, wrap)
    finally:
        workbook.close()
