"""The run report's charts, drawn by matplotlib to SVG for the page (html.py).

The text stays text (`svg.fonttype: none`), so the reader's browser draws the Chinese with
the system's own fonts (雅黑 on Windows, 苹方 on a Mac, Noto or 文泉驿 on Linux); no font
is embedded or fetched. The SVG is cut to what an HTML page needs (no XML prolog, DOCTYPE,
metadata or namespace URLs, which a browser would never load but a check for network
references would rightly flag), and it is the same for the same numbers: fixed hash salt,
no date. matplotlib is imported here only, when a report is drawn: the command line must
start fast.
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl

from screening import contract
from screening.logs import quieter
from screening.vocab import COLOURS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

# The families a browser tries in turn for the charts' text, Chinese ones first.
FONT_FAMILIES = [
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "SimHei",
    "DejaVu Sans",
]
# Bars of the three colours, strong enough on screen and still apart in grey print.
BAR_COLOURS = {"红": "#C9302C", "黄": "#E6A117", "蓝": "#3A78C2"}
LINE_STYLES = {
    "listed": ("列出", "#333333", "-", "o"),
    "new": ("新增", "#C9302C", "--", "s"),
    "continuing": ("持续", "#3A78C2", "-.", "^"),
    "dropped": ("不再列出", "#7F7F7F", ":", "v"),
}
_WIDTH = 9.0  # inches (at 96 px an inch: the page's column; print scales it to A4)
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "screening-report",
    "font.family": ["sans-serif"],
    "font.sans-serif": FONT_FAMILIES,
    "font.size": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.unicode_minus": False,
}


@contextmanager
def _style(salt: str) -> Iterator[None]:
    import matplotlib

    rc: Any = {**_RC, "svg.hashsalt": f"screening-report-{salt}"}
    # Without a Chinese font installed matplotlib measures the text with another font and
    # says so for every glyph; the browser draws it with the reader's fonts anyway.
    quiet_fonts = quieter("matplotlib.font_manager", logging.ERROR)
    with matplotlib.rc_context(rc), quiet_fonts, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph.*missing")
        warnings.filterwarnings("ignore", message=r".*findfont.*")
        yield


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return inline_svg(buffer.getvalue())


def inline_svg(svg: str) -> str:
    """An SVG document as an element of an HTML page: without its XML prolog, DOCTYPE,
    metadata and namespace declarations (the HTML parser puts <svg> in its namespace and
    knows xlink:href), so that the page names no URL at all."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    return svg.strip()


def _figure(height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH, height))
    return fig, fig.subplots()


def township_bars(counts: pl.DataFrame) -> str:
    """Listed households per township, stacked by colour (horizontal, the largest list on
    top). `counts`: township and one column per colour, without the total row."""
    frame = counts.with_columns(_total=pl.sum_horizontal(*COLOURS)).sort(
        ["_total", "township"], descending=[False, True]
    )
    names = frame["township"].to_list()
    with _style("townships"):
        fig, ax = _figure(max(2.2, 0.6 + 0.32 * max(len(names), 1)))
        left = [0] * len(names)
        for colour in COLOURS:
            values = frame[colour].to_list()
            ax.barh(names, values, left=left, color=BAR_COLOURS[colour], label=colour, height=0.65)
            left = [a + b for a, b in zip(left, values, strict=True)]
        for y, total in enumerate(left):
            ax.annotate(
                f"{total:,}", (total, y), xytext=(3, 0), textcoords="offset points",
                va="center", fontsize=9,
            )  # fmt: skip
        ax.set_title("各乡镇疑似监测户（户，按预警等级）", loc="left")
        _whole_numbers(ax.xaxis)
        ax.set_xlim(0, max([*left, 1]) * 1.12)
        ax.legend(ncols=3, loc="lower right", bbox_to_anchor=(1, 1), frameon=False)
        return _svg(fig)


def listing_lines(lists: pl.DataFrame) -> str:
    """Listed, new, continuing (and no longer listed) households per screened period.
    `lists`: history.LISTS_SCHEMA, oldest first."""
    periods = lists["period"].to_list()
    with _style("lists"):
        fig, ax = _figure(3.0)
        for key, (label, colour, style, marker) in LINE_STYLES.items():
            values = lists[key].to_list()
            x = range(len(periods))
            ax.plot(x, values, label=label, color=colour, linestyle=style, marker=marker)
            if values and key != "dropped":  # its label would sit on 新增's near 0
                _label_last(ax, len(periods) - 1, values[-1], colour)
        if not periods:
            _no_data(ax)
        ax.set_title("各期疑似监测户（户）：列出、新增、持续", loc="left")
        _whole_numbers(ax.yaxis)
        ax.set_ylim(bottom=0)
        _period_axis(ax, periods)
        ax.legend(ncols=4, loc="upper left", bbox_to_anchor=(0, -0.1), frameon=False)
        return _svg(fig)


def match_lines(match: pl.DataFrame) -> str:
    """The share of each department's records in the window whose ID number is on the
    roster, per screened period. `match`: period, source, records_in_window, matched."""
    periods = sorted(set(match["period"].to_list()))
    rates = match.filter(pl.col("records_in_window") > 0).with_columns(
        rate=pl.col("matched") / pl.col("records_in_window") * 100
    )
    sources = sorted(set(rates["source"].to_list()), key=contract.source_order)
    lowest = 100.0
    with _style("match"):
        fig, ax = _figure(3.0)
        for i, source in enumerate(sources):
            mine = rates.filter(pl.col("source") == source)
            x = [periods.index(p) for p in mine["period"]]
            ax.plot(
                x, mine["rate"].to_list(), marker="os^Dv<>"[i % 7], label=contract.label(source)
            )
            lowest = min([lowest, *mine["rate"].to_list()])
        if not sources:
            _no_data(ax)
        ax.set_title("各部门记录与人口库的匹配率（%）", loc="left")
        # From a round number below the lowest rate: differences of a few points show.
        ax.set_ylim(max(0.0, 5 * math.floor((lowest - 3) / 5)), 100.5)
        _period_axis(ax, periods)
        if sources:
            ax.legend(ncols=6, loc="upper left", bbox_to_anchor=(0, -0.1), frameon=False)
        return _svg(fig)


def _whole_numbers(axis: Axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))  # households: no ticks at 2.5


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "暂无数据", transform=ax.transAxes, ha="center", va="center", color="#666666")


def _label_last(ax: Axes, x: int, value: Any, colour: str) -> None:
    ax.annotate(
        f"{value:,}", (x, value), xytext=(5, 0), textcoords="offset points", va="center",
        fontsize=9, color=colour,
    )  # fmt: skip


def _period_axis(ax: Axes, periods: list[str]) -> None:
    # One tick per screened period; a single period keeps the point off the frame's edge.
    ax.set_xticks(range(len(periods)), periods)
    ax.set_xlim(-0.5, max(len(periods) - 0.5, 0.5) + 0.3)
    ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
