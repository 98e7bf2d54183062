"""The province's run report: one self-contained HTML page (no script, no outside file) with
the counties side by side — status, listed households by colour, scale, match rates, the
townships' answers — what each county that did not succeed needs, and every county's
townships. Text from data is escaped and ID numbers in it masked. Rendering is pure: the
same results and time give the same page.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from pathlib import Path

from screening import ids
from screening.periods import period_words, previous_period
from screening.province.county import HELD, STATUS_WORDS, CountyResult
from screening.vocab import COLOURS

TOTAL = "合计"
_STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
th { background: #f0f0f0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #fafafa; }
.success { color: #1b7f3b; } .held { color: #b26a00; font-weight: bold; }
.failed, .busy { color: #c62828; font-weight: bold; } .muted { color: #777; }
.red { color: #c62828; } .yellow { color: #b28900; } .blue { color: #1565c0; }
"""
_COLOUR_CLASS = dict(zip(COLOURS, ("red", "yellow", "blue"), strict=True))


def _e(value: object) -> str:
    """Text from data: ID numbers masked, HTML escaped; empty as a dash."""
    if value is None or value == "":
        return "—"
    return html.escape(ids.mask_text(str(value)))


def _n(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"


def _by_colour(result: CountyResult) -> dict[str, int]:
    counts = dict.fromkeys(COLOURS, 0)
    for _township, colour, n in result.listed:
        counts[colour] = counts.get(colour, 0) + n
    return counts


def _status(result: CountyResult) -> str:
    words = STATUS_WORDS.get(result.status, result.status)
    now = "" if result.ran else '<br><span class="muted">本次未运行 read only</span>'
    return f'<span class="{_e(result.status)}">{words} {_e(result.status)}</span>{now}'


def _lowest_match(result: CountyResult) -> str:
    rates = [(m / r, s) for s, r, m in result.match if r]
    if not rates:
        return "—"
    share, source = min(rates)
    return f"{share:.1%} ({_e(source)})"


def _row(cells: Iterable[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(cells) + "</tr>"


def _td(text: str, numeric: bool = False) -> str:
    return f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>"


def _counties_table(period: str, results: Sequence[CountyResult]) -> list[str]:
    colours = "".join(f'<th class="{_COLOUR_CLASS[c]}">{c}</th>' for c in COLOURS)
    head = (
        "<tr><th rowspan=2>县<br>county</th><th rowspan=2>状态<br>status</th>"
        f"<th colspan={len(COLOURS) + 1}>名单户数 households listed</th>"
        "<th rowspan=2>乡镇数<br>townships</th><th rowspan=2>户籍户数<br>roster households</th>"
        "<th rowspan=2>占脱贫户+监测户<br>share of base</th>"
        "<th rowspan=2>最低匹配率<br>lowest match rate</th>"
        f"<th rowspan=2>{_e(period_words(previous_period(period)))}名单已反馈<br>"
        "answers to last month's list</th>"
        "<th rowspan=2>批次号<br>run id</th><th rowspan=2>说明<br>message</th></tr>"
        f"<tr>{colours}<th>{TOTAL}</th></tr>"
    )
    lines = ["<table>", head]
    totals = dict.fromkeys(COLOURS, 0)
    for number, r in enumerate(results, start=1):
        counts = _by_colour(r)
        for c in COLOURS:
            totals[c] += counts[c]
        answered, listed = r.answered_previous
        run = _e(r.run_id)
        if r.lists_run_id and r.lists_run_id != r.run_id:
            run += f'<br><span class="muted">名单 lists: {_e(r.lists_run_id)}</span>'
        lines.append(
            _row(
                [
                    _td(_e(r.county)),
                    _td(_status(r)),
                    *(_td(_n(counts[c]) if r.listed else "—", True) for c in COLOURS),
                    _td(_n(r.households) if r.listed else "—", True),
                    _td(_n(len({t for t, _c, _n in r.listed})) if r.listed else "—", True),
                    _td(_n(r.scale.get("roster_households")), True),
                    _td(_pct(r.scale.get("share_of_base")), True),
                    _td(_lowest_match(r), True),
                    _td(f"{answered:,} / {listed:,}" if listed else "—", True),
                    _td(run),
                    _td(f'<a href="#{_anchor(number)}">见下 see below</a>' if not r.ok else "—"),
                ]
            )
        )
    total_cells = [_td(TOTAL), _td(f"{sum(r.ok for r in results)} / {len(results)} 成功 succeeded")]
    total_cells += [_td(_n(totals[c]), True) for c in COLOURS]
    total_cells += [_td(_n(sum(totals.values())), True)] + [_td("")] * 7
    lines += [_row(total_cells, "total"), "</table>"]
    return lines


def _anchor(number: int) -> str:
    return f"county-{number}"


def _needs(period: str, results: Sequence[CountyResult], config_file: Path) -> list[str]:
    """What each county that did not succeed needs, in a sentence."""
    rerun = f"screening province run --period {period} --config {config_file} --county "
    items = []
    for number, r in enumerate(results, start=1):
        if r.ok:
            continue
        if r.status == HELD:
            hint = (
                "完整性检查暂扣了该县的数据，本期未发布新名单。县里核对文件后，按上面的命令"
                "（加上该县的 --inbox、--db、--out）接受，或替换文件，然后重新运行本县 "
                "a completeness gate held a delivery and nothing new was published: once the "
                "county has checked the file, accept it with the command above (with the "
                "county's --inbox, --db and --out) or replace the file, then rerun the county"
            )
        else:
            hint = "按说明处理后重新运行本县 fix what the message says, then rerun the county"
        listed = (
            f"现行名单为批次 {_e(r.lists_run_id)} 所发布 the lists in force are those of run "
            f"{_e(r.lists_run_id)}"
            if r.lists_run_id
            else "本期尚无名单 no lists for the period yet"
        )
        items.append(
            f'<li id="{_anchor(number)}"><b>{_e(r.county)}</b>：{_status(r)} — '
            f"{_e(r.message) if r.message else ''}<br>{listed}。{hint}：<br>"
            f"<code>{_e(rerun + r.county)}</code></li>"
        )
    if not items:
        return ["<p>所有县均已成功完成本期筛查 every county's run of the period succeeded.</p>"]
    return ["<ul>", *items, "</ul>"]


def _townships(results: Sequence[CountyResult]) -> list[str]:
    lines = []
    for r in results:
        if not r.listed:
            continue
        by_township: dict[str, dict[str, int]] = {}
        for township, colour, n in r.listed:
            by_township.setdefault(township, dict.fromkeys(COLOURS, 0))[colour] = n
        colours = "".join(f'<th class="{_COLOUR_CLASS[c]}">{c}</th>' for c in COLOURS)
        lines += [
            f"<h3>{_e(r.county)}</h3>",
            "<table>",
            f"<tr><th>乡镇 township</th>{colours}<th>{TOTAL}</th></tr>",
        ]
        for township in sorted(by_township):
            counts = by_township[township]
            cells = [_td(_e(township)), *(_td(_n(counts[c]), True) for c in COLOURS)]
            lines.append(_row([*cells, _td(_n(sum(counts.values())), True)]))
        lines.append("</table>")
    return lines or ["<p>本期没有已发布的名单 no published lists for the period.</p>"]


def render_html(
    period: str, results: Sequence[CountyResult], generated_at: dt.datetime, config_file: Path
) -> str:
    words = period_words(period)
    screened = [r for r in results if r.ran]
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    states = "，".join(f"{STATUS_WORDS.get(s, s)} {s} {n}" for s, n in sorted(by_status.items()))
    total = sum(r.households for r in results)
    body = [
        f"<h1>全省防返贫监测 疑似监测对象筛查汇总 — {_e(words)}</h1>",
        f'<p class="muted">Province run report, {_e(period)} · 生成时间 generated '
        f"{generated_at:%Y-%m-%d %H:%M} · 本次运行 {len(screened)} 个县 counties screened "
        f"by this run, 共 {len(results)} 个县 counties in the province file</p>",
        f"<p>各县状态 status: {states}。已发布名单合计 {total:,} 户 households on the "
        "published lists.</p>",
        "<h2>各县情况 Counties side by side</h2>",
        *_counties_table(period, results),
        "<h2>需要处理 What the counties that did not succeed need</h2>",
        *_needs(period, results, config_file),
        "<h2>各县乡镇名单户数 Households listed by township</h2>",
        *_townships(results),
        '<p class="muted">名单与证据在各县自己的输出目录，省级汇总不复制个人信息 the lists and '
        "their evidence stay in each county's output folder; province.duckdb reads them "
        "there.</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>全省筛查汇总 {_e(words)} province run report</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
