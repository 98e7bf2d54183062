"""The run report as one page for the director, `run-report.html` beside the lists.

One self-contained file that opens offline, from a USB stick: the style is in the page,
the charts are SVG elements in it (charts.py), the Chinese is text the reader's system
fonts draw; no script, and no URL at all. In this order: the two-line summary; the charts
(listed households by township and colour, the lists over the screened periods, the match
rates over them); one row per township (this list, the answers on the previous one, the
overdue, the scale); the share confirmed per risk point and per department once answers
exist; the deliveries (files read, held or missing, the rows set aside by department and
check); the warnings, each once, and the parameters in force. Every text from data is
escaped and has its ID numbers masked (`_text`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from screening import contract
from screening.config import DEMO_WORDS
from screening.ids import mask_text
from screening.ingest import gates
from screening.inspect.quarantine import check_label
from screening.periods import period_words
from screening.publish import charts
from screening.publish.about import chinese_only, source_status
from screening.publish.history import precision_rows
from screening.publish.report import (
    ANSWERS_NOTE,
    NO_ANSWERS,
    PRECISION_NOTE,
    SCALE_NOTE,
    TOTAL,
    RunReport,
    all_warnings,
    number,
    quality_counts,
    rate,
    rejected_by_check,
    share,
    summary_lines,
    township_colour_counts,
    township_table,
)
from screening.vocab import COLOURS

TITLE = "防返贫动态监测 部门数据筛查月报"
_STYLE = """
:root { --ink: #222; --muted: #666; --rule: #c8c8c8; --head: #eef1f5; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 20px 28px 40px; color: var(--ink);
  font: 15px/1.6 "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Noto Sans CJK SC",
  "Source Han Sans SC", "WenQuanYi Micro Hei", SimHei, sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #3a78c2; }
h3 { font-size: 16px; margin: 18px 0 8px; }
p { margin: 6px 0; }
.meta, .note, figcaption { color: var(--muted); font-size: 13px; }
.demo { background: #fff3cd; border: 1px solid #e0c36a; padding: 8px 12px; font-weight: bold; }
#summary p { font-size: 17px; margin: 4px 0; }
figure { margin: 14px 0 22px; break-inside: avoid; }
figure svg { display: block; width: 100%; max-width: 880px; height: auto; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; }
th, td { border: 1px solid var(--rule); padding: 4px 7px; vertical-align: top; }
th { background: var(--head); font-weight: bold; text-align: center; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { white-space: nowrap; }
tr.total td { font-weight: bold; background: #f6f6f6; }
th.c-红 { background: #f6d3d2; } th.c-黄 { background: #fbe7b5; } th.c-蓝 { background: #d3e2f4; }
td.flag { background: #fdebd0; }
ul.warnings li { margin: 4px 0; }
.side { display: flex; flex-wrap: wrap; gap: 0 32px; align-items: flex-start; }
footer { margin-top: 32px; color: var(--muted); font-size: 12.5px;
  border-top: 1px solid var(--rule); padding-top: 8px; }
@page { size: A4; margin: 14mm 12mm; }
@media print { body { max-width: none; padding: 0; font-size: 12px; }
  h2, h3 { break-after: avoid; } table, figure { break-inside: avoid; }
  figure svg { width: 82%; } }
"""


def render_html(report: RunReport) -> str:
    """The whole page."""
    sections = [
        _header(report),
        _summary(report),
        _charts(report),
        _townships(report),
        _precision(report),
        _deliveries(report),
        _warnings(report),
        _parameters(report),
        _footer(report),
    ]
    title = f"{TITLE} {period_words(report.period)}"
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(s for s in sections if s)
        + "\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- pieces


def _text(value: object) -> str:
    """Text from data as page text: ID numbers masked, markup escaped."""
    return html.escape(mask_text("" if value is None else str(value)))


def _table(
    headers: Sequence[str] | str,
    rows: Iterable[Sequence[str]],
    numeric_from: int,
    totals: bool = False,
    classes: Sequence[Sequence[str]] | None = None,
) -> str:
    """A table: `headers` (or ready-made <tr> rows of headers), cells already escaped; the
    columns from `numeric_from` on are numbers (right-aligned); with `totals`, the last row
    is a total row. `classes`: extra cell classes, row by row."""
    head = (
        headers
        if isinstance(headers, str)
        else "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"
    )
    body = []
    rows = list(rows)
    for r, row in enumerate(rows):
        cells = []
        for c, cell in enumerate(row):
            kind = ["n" if c >= numeric_from else "name" if c == 0 else ""]
            if classes is not None:
                kind.append(classes[r][c])
            names = " ".join(k for k in kind if k)
            cells.append(f'<td class="{names}">{cell}</td>' if names else f"<td>{cell}</td>")
        total = ' class="total"' if totals and r == len(rows) - 1 else ""
        body.append(f"<tr{total}>" + "".join(cells) + "</tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def _header(report: RunReport) -> str:
    scope = f"乡镇：{_text(report.township)}（单乡镇重跑）" if report.township else "全县"
    times = ""
    if report.finished_at:
        times = f" · 生成于 {report.finished_at.isoformat(sep=' ', timespec='minutes')}"
    demo = f'<p class="demo">示例数据：{_text(DEMO_WORDS)}。</p>\n' if report.demo else ""
    return (
        f"<header>\n{demo}<h1>{TITLE}</h1>\n"
        f'<p class="meta">{_text(period_words(report.period))}（{report.period}） · {scope} · '
        f"批次号 {_text(report.run_id)}{times}</p>\n</header>"
    )


def _summary(report: RunReport) -> str:
    first, second = summary_lines(report)
    return (
        f'<section id="summary">\n<h2>摘要</h2>\n<p>{_text(first)}</p>\n<p>{_text(second)}</p>\n'
        "</section>"
    )


def _charts(report: RunReport) -> str:
    towns = township_colour_counts(report.suspects, report.all_townships)
    towns = towns.filter(towns["township"] != TOTAL)
    figures = [
        (
            "chart-townships",
            charts.township_bars(towns),
            f"{period_words(report.period)}各乡镇列出的疑似监测户，按红、黄、蓝预警等级分段。",
        ),
        (
            "chart-lists",
            charts.listing_lines(report.history.lists),
            "历次筛查列出的户数，其中新增、持续的户数，以及上月名单中本期不再列出的户数。",
        ),
        (
            "chart-match",
            charts.match_lines(report.history.match_rates),
            "各部门在筛查时间窗口内的记录中，身份证号能在人口库中找到的比例；"
            "偏低说明身份证号错录或人口库不全。",
        ),
    ]
    body = "\n".join(
        f'<figure id="{key}">\n{svg}\n<figcaption>{_text(caption)}</figcaption>\n</figure>'
        for key, svg, caption in figures
    )
    return f'<section id="charts">\n<h2>图表</h2>\n{body}\n</section>'


def _townships(report: RunReport) -> str:
    table = township_table(report)
    last = report.history.last_month
    answered = last is not None and report.history.previous is not None
    ceiling = report.params.scale_check.ceiling if report.params else None
    on_list = f"上期名单（{period_words(last)}）核实情况" if last else "上期名单核实情况"
    head = (
        '<tr><th rowspan="2">乡镇</th><th colspan="4">本期列出</th>'
        f'<th colspan="7">{_text(on_list)}</th><th colspan="2">规模参考</th></tr>\n<tr>'
        + "".join(f'<th class="c-{c}">{c}</th>' for c in COLOURS)
        + "<th>合计</th><th>需核实</th><th>已反馈</th><th>反馈率</th><th>确认纳入</th>"
        "<th>不予纳入</th><th>待核实</th><th>逾期未反馈</th><th>脱贫户+监测户</th>"
        "<th>列出占比</th></tr>"
    )
    rows, classes = [], []
    for r in table.iter_rows(named=True):
        answers = (
            [number(r["awaiting"]), number(r["answered"]), share(r["answered_share"])]
            + [number(r[k]) for k in ("confirmed", "declined", "pending", "overdue")]
            if answered
            else ["—"] * 7
        )
        rows.append(
            [
                _text(r["township"]),
                *(number(r[c]) for c in (*COLOURS, TOTAL)),
                *answers,
                number(r["base_households"]),
                share(r["share_of_base"]),
            ]
        )
        high = ceiling is not None and (r["share_of_base"] or 0) > ceiling
        late = answered and bool(r["overdue"])
        classes.append([""] * 11 + ["flag" if late else "", "", "flag" if high else ""])
    notes = [ANSWERS_NOTE[0] if answered else "上月没有筛查名单，没有需要反馈的核实结果。"]
    if report.overdue.height:
        notes.append(f"本期核实时限为 {report.overdue['due'][0].isoformat()}。")
    if ceiling is not None:
        notes.append(
            f"列出占比 = 列出户数 ÷ 脱贫户和监测户数，参考上限 {ceiling:.0%}（超过的标色）。"
        )
    notes.append(SCALE_NOTE[0])
    return (
        '<section id="townships">\n<h2>各乡镇情况</h2>\n'
        + _table(head, rows, numeric_from=1, totals=True, classes=classes)
        + "\n"
        + "\n".join(f'<p class="note">{_text(n)}</p>' for n in notes)
        + "\n</section>"
    )


def _precision(report: RunReport) -> str:
    title = '<section id="precision">\n<h2>核实准确率（此前各期名单）</h2>\n'
    if not report.history.has_answers:
        return f"{title}<p>{_text(NO_ANSWERS[0])}</p>\n</section>"
    parts = [title, f'<p class="note">{_text(PRECISION_NOTE[0])}</p>', '<div class="side">']
    for by, what in (("risk_code", "风险点"), ("source", "部门")):
        rows = [
            [
                _text(contract.long_name(r["key"]) if by == "source" else r["label"]),
                *(number(r[k]) for k in ("listed", "answered", "confirmed", "declined", "pending")),
                share(r["share"]),
            ]
            for r in precision_rows(report.history, by).iter_rows(named=True)
            if r["listed"]
        ]
        headers = [what, "列出户次", "已反馈", "确认纳入", "不予纳入", "待核实", "确认率"]
        parts.append(f"<div>\n<h3>按{what}</h3>\n{_table(headers, rows, numeric_from=1)}\n</div>")
    return "\n".join(parts) + "\n</div>\n</section>"


def _deliveries(report: RunReport) -> str:
    files = [
        [
            _text(contract.long_name(f["source"])),
            _text(f["file"] or "—"),
            _text(source_status(f["status"])),
            number(f["rows_read"]),
            number(f["rows_accepted"]),
            number(f["rows_rejected"]),
            number(f.get("rows_duplicate")),
        ]
        for f in sorted(report.files, key=lambda f: contract.source_order(f["source"]))
    ]
    parts = [
        '<section id="deliveries">\n<h2>部门数据报送</h2>',
        "<h3>本期文件</h3>",
        _table(["数据来源", "文件", "状态", "读入行", "接收", "拒收", "重复"], files, 3)
        if files
        else "<p>本期没有读入任何文件。</p>",
    ]
    if report.match_rates:
        rates = [
            [
                _text(contract.long_name(m["source"])),
                number(m["records_in_window"]),
                number(m["matched"]),
                number(m["unmatched"]),
                rate(m["matched"], m["records_in_window"]),
            ]
            for m in report.match_rates
        ]
        parts += [
            "<h3>与人口库匹配（筛查时间窗口内的记录）</h3>",
            _table(["数据来源", "记录", "匹配", "未匹配", "匹配率"], rates, 1),
            '<p class="note">未匹配的记录逐条列在各部门的反馈表中（departments 文件夹）。</p>',
        ]
    if report.linkage.height:
        linked = [
            [
                _text(contract.long_name(r["source"])),
                rate(r["matched_by_id"], r["records_in_window"]),
                rate(r["matched"], r["records_in_window"]),
                number(r["waiting"]),
            ]
            for r in report.linkage.iter_rows(named=True)
        ]
        parts += [
            "<h3>身份核对</h3>",
            '<p class="note">身份证号有误、在人口库中找不到本人的部门记录，程序找出可能的本人，'
            "列入各乡镇的身份核对名单；乡镇核对确认是同一人后才计入。</p>",
            _table(
                ["数据来源", "按身份证号匹配率", "含人工核对关联的匹配率", "待核对记录"], linked, 3
            ),
        ]
    if report.held.height:
        held = [
            [
                _text(contract.long_name(r["source"])),
                _text(r["file"]),
                _text(gates.GATE_LABELS.get(r["gate"], r["gate"])),
                gates.percent(r["measured"]),
                gates.percent(r["threshold"]),
                _text(f"已由 {r['accepted_by']} 接受" if r["accepted_by"] else "暂扣未用"),
            ]
            for r in report.held.iter_rows(named=True)
        ]
        parts += [
            "<h3>完整性检查暂扣的文件</h3>",
            '<p class="note">暂扣的文件不使用，此前已入库的数据继续有效；核对无误后用 '
            f"<code>screening run --period {report.period} --accept-held 来源</code> 接受。</p>",
            _table(["数据来源", "文件", "检查", "实测", "暂扣标准", "处理"], held, 3),
        ]
    rejected = [
        [_text(r["department"]), _text(check_label(r["check"], english=False)), number(r["rows"])]
        for r in rejected_by_check(report).iter_rows(named=True)
    ]
    parts.append("<h3>拒收的行（按部门和检查项）</h3>")
    if rejected:
        parts += [
            _table(["数据来源", "检查项", "行数"], rejected, 2),
            '<p class="note">逐行明细见 <code>screening quarantine --period '
            f"{report.period}</code>，各部门的拒收行也写在 departments 文件夹的部门反馈表中。</p>",
        ]
    else:
        parts.append("<p>本期没有拒收的行。</p>")
    return "\n".join(parts) + "\n</section>"


def _warnings(report: RunReport) -> str:
    items = [*all_warnings(report), *(f"数据质量：{q}" for q in quality_counts(report))]
    body = (
        '<ul class="warnings">\n'
        # The director reads Chinese: the English of the console and run-report.md left out.
        + "\n".join(f"<li>{_text(chinese_only(w))}</li>" for w in items)
        + "\n</ul>"
        if items
        else "<p>无。</p>"
    )
    return f'<section id="warnings">\n<h2>提示</h2>\n{body}\n</section>'


def _parameters(report: RunReport) -> str:
    lines = report.params.lines() if report.params else []
    rows = [[_text(label), _text(text)] for _name, label, text in lines]
    body = _table(["参数", "取值"], rows, numeric_from=2) if rows else "<p>无。</p>"
    return f'<section id="parameters">\n<h2>本期参数</h2>\n{body}\n</section>'


def _footer(report: RunReport) -> str:
    return (
        "<footer>同一报告的文字版为同一文件夹中的 run-report.md；各乡镇名单在以乡镇命名的文件夹中，"
        "给各部门的反馈表在 departments 文件夹中。查看某户为何列入："
        f"<code>screening explain 户编号 --period {report.period}</code>。</footer>"
    )
