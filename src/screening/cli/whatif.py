"""`screening whatif`: a screened period's lists under other parameters, compared with the
lists as they stand (pipeline/whatif.py); the database is only read and nothing but
`<out>/<P>/whatif/` is written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from screening import config
from screening.cli.console import cells, console, table_of
from screening.cli.errors import UserError, one_line_errors
from screening.cli.options import BusyOpt, DbOpt, DemoOpt, MaskOpt, OutOpt, PeriodOpt, read_db
from screening.periods import check_period

if TYPE_CHECKING:
    from rich.table import Table

    from screening.pipeline.whatif import WhatIf

# Registered on the `screening` app by screening.cli.main.
commands = typer.Typer()


@commands.command()
@one_line_errors
def whatif(
    period: PeriodOpt,
    params_file: Annotated[
        Path,
        typer.Option(
            "--params",
            help="试算的参数文件 the parameters to try (YAML over the defaults, as run --params)",
        ),
    ],
    db: DbOpt = None,
    out: OutOpt = None,
    mask_ids: MaskOpt = None,
    demo: DemoOpt = False,
    busy_timeout: BusyOpt = None,
) -> None:
    """参数试算: screen a period's stored data with other parameters and compare with its
    lists per township and colour (households before and after, entering and leaving),
    written to <out>/<P>/whatif/ (xlsx and csv). Nothing else changes: no run is recorded,
    no list is touched."""
    from screening.inspect.base import ExplainError
    from screening.pipeline import whatif as trial

    check_period(period)
    if not params_file.is_file():
        raise UserError(f"参数文件不存在 parameters file not found: {params_file}")
    settings = config.load(db=db, out=out, mask_ids=mask_ids, busy_timeout=busy_timeout, demo=demo)
    with read_db(settings) as con:
        try:
            result = trial.whatif(con, period, params_file)
        except ExplainError as exc:
            raise UserError(str(exc)) from None
    written = trial.write(result, settings.out, settings.mask_ids)
    console.print(_summary_table(result))
    for note in result.notes:
        console.print(Text(f"! 提示 note: {note}"), style="bold yellow")
    if result.parameters.height:
        changed = "；".join(
            f"{r['label']} {r['before']} → {r['after']}"
            for r in result.parameters.iter_rows(named=True)
        )
        console.print(Text(f"试算参数 parameters tried: {changed}"), soft_wrap=True)
    else:
        console.print("试算参数与现行参数相同 the parameters are those in force", highlight=False)
    county = result.summary.row(-1, named=True)  # 全县, 合计
    if county["relief_before"] is not None or county["relief_after"] is not None:
        console.print(
            f"防贫保预估合计 relief estimates, all listed households: "
            f"{_yuan(county['relief_before'])} → {_yuan(county['relief_after'])} 元",
            highlight=False,
        )
    moved = (
        "名单没有变化 no household enters or leaves the lists"
        if result.unchanged
        else f"{result.changes.height} 户有变化 households change (见 see 名单变化)"
    )
    console.print(moved, highlight=False)
    console.print(
        Text.assemble(
            ("试算结果 results: ", "bold"),
            f"{written[0].parent}  (未发布，名单和数据库均未改动 nothing published, "
            "the lists and the database are unchanged)",
        ),
        soft_wrap=True,
    )


def _summary_table(result: WhatIf) -> Table:
    """Per township: each colour and the total, before → after, entering and leaving."""
    from screening.pipeline.whatif import ALL_COLOURS
    from screening.vocab import COLOURS

    table = table_of(
        f"参数试算 what-if {result.period}（现行 → 试算 in force → tried）",
        ["乡镇 township", *COLOURS, "合计 total", "新列入 entering", "不再列入 leaving"],
        right=[*COLOURS, "合计 total", "新列入 entering", "不再列入 leaving"],
    )
    for township, rows in result.summary.group_by("township", maintain_order=True):
        by_colour = {r["colour"]: r for r in rows.iter_rows(named=True)}
        total = by_colour[ALL_COLOURS]
        table.add_row(
            *cells(
                township[0],
                *(_arrow(by_colour[c]) for c in COLOURS),
                _arrow(total),
                total["entering"],
                total["leaving"],
            )
        )
    return table


def _yuan(amount: object) -> str:
    from screening.rules.base import yuan

    return "未开启 off" if amount is None else yuan(amount)  # type: ignore[arg-type]


def _arrow(row: dict[str, int]) -> str:
    before, after = row["before"], row["after"]
    return str(before) if before == after else f"{before} → {after}"
