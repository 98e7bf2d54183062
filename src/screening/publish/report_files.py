"""The run report's two files beside the lists, written with them:

    <out>/<YYYY-MM>/run-report.md      markdown.py
    <out>/<YYYY-MM>/run-report.html    html.py (charts.py draws its charts)

Staged (files.StagedFiles) so that they are renamed into place with the rest of a run's
files, or not at all. The page is deferred: with long lists it is drawn, like a workbook,
by one of the processes writing the files, alongside the others.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from screening.publish.files import StagedFiles, period_dir
from screening.publish.html import render_html
from screening.publish.markdown import render_markdown
from screening.publish.report import HTML_FILE, REPORT_FILE, RunReport


def stage_report(staged: StagedFiles, out: Path, report: RunReport) -> list[Path]:
    """Stage run-report.md and run-report.html; returns their final paths."""
    folder = period_dir(out, report.period)
    staged.add(folder / REPORT_FILE, partial(_write, text=render_markdown(report)))
    staged.defer(folder / HTML_FILE, _render, (render_html, report), weight=PAGE_WEIGHT)
    return [folder / REPORT_FILE, folder / HTML_FILE]


# The page takes about as long to draw as a workbook of this many rows (its charts).
PAGE_WEIGHT = 3_000


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _render(path: Path, render: Callable[[RunReport], str], report: RunReport) -> None:
    _write(path, render(report))


def write_report(out: Path, report: RunReport) -> list[Path]:
    """Both report files, replaced atomically together."""
    with StagedFiles() as staged:
        stage_report(staged, out, report)
        staged.write_deferred()
        return staged.commit()
