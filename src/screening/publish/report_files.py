"""The run report's two files beside the lists, written with them:

    <out>/<YYYY-MM>/run-report.md      markdown.py
    <out>/<YYYY-MM>/run-report.html    html.py (charts.py draws its charts)

Staged (files.StagedFiles) so that they are renamed into place with the rest of a run's
files, or not at all.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from screening.publish.files import StagedFiles, period_dir
from screening.publish.html import render_html
from screening.publish.markdown import render_markdown
from screening.publish.report import HTML_FILE, REPORT_FILE, RunReport


def stage_report(staged: StagedFiles, out: Path, report: RunReport) -> list[Path]:
    """Stage run-report.md and run-report.html; returns their final paths."""
    folder = period_dir(out, report.period)
    pages = {REPORT_FILE: render_markdown(report), HTML_FILE: render_html(report)}
    for name, text in pages.items():
        staged.add(folder / name, partial(_write, text=text))
    return [folder / name for name in pages]


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_report(out: Path, report: RunReport) -> list[Path]:
    """Both report files, replaced atomically together."""
    with StagedFiles() as staged:
        stage_report(staged, out, report)
        return staged.commit()
