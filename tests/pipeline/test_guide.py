"""The Chinese user guide (docs/使用说明.md): its commands run as written, against the
sample county, in the working folder the guide describes; it is linked from the README;
it renders to one printable page.

The guide's conventions, which this test relies on: a ```toml block is the settings file
`screening.toml`; every line of a ```bash block is a command, run in document order in one
working folder (收件箱/ holding the sample county's months, 反馈/ the townships' returned
lists); a ```yaml block is a parameters file, written into that folder under the name its
first line gives (`# 试算参数.yaml`); ```text blocks are pictures of folders, not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from dev import guide

from tests.support.common import BIN

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "使用说明.md"
SAMPLE = ROOT / "sample_data"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(GUIDE.read_text(encoding="utf-8")) if lang == kind]


def commands() -> list[str]:
    lines = [line.strip() for body in blocks("bash") for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_guide_is_linked_from_the_readme_and_covers_what_exists() -> None:
    assert "docs/使用说明.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    text = GUIDE.read_text(encoding="utf-8")
    topics = ["run-report.html", "核对码", "departments/", "--accept-held", "--withdraw",
              "退出码为 3", "乡镇填报说明", "feedback import", "screening explain",
              "核实台账", "签字栏", "风险消除候选", "身份核对_乡镇_年月.xlsx",
              "使用说明-身份核对.md", "收入骤减", "防贫保预估", "screening whatif"]  # fmt: skip
    for topic in topics:
        assert topic in text, topic
    ran = " ".join(commands())
    for command in ("run", "feedback import", "explain", "quarantine", "report", "summary",
                    "ingest --withdraw", "--accept-held", "--township", "--demo",
                    "ingest --period", "whatif --period"):  # fmt: skip
        assert f" {command}" in f" {ran}", command
    assert all(c.startswith("screening ") for c in commands())


def test_the_guide_renders_to_one_printable_page(tmp_path: Path) -> None:
    page = guide.render(GUIDE.read_text(encoding="utf-8"))
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "<pre>" in page
    assert "<script" not in page and not re.search(r"https?://|<link|<img|@import", page)
    assert "<h2>12. 附：乡镇填报说明（可单独打印）</h2>" in page
    target = tmp_path / "guide.html"
    assert guide.main([str(GUIDE), str(target)]) == 0
    assert target.read_text(encoding="utf-8") == page


@pytest.mark.slow
def test_every_command_of_the_guide_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "防返贫筛查"
    inbox, returned = work / "收件箱", work / "反馈"
    for month in sorted(SAMPLE.glob("20[0-9][0-9]-[0-9][0-9]")):
        shutil.copytree(month, inbox / month.name)
    shutil.copytree(SAMPLE / "feedback", returned)
    (settings,) = blocks("toml")
    (work / "screening.toml").write_text(settings, encoding="utf-8")
    for body in blocks("yaml"):
        named = re.match(r"#\s*(\S+?\.yaml)", body)
        assert named, f"a yaml block names its file on its first line: {body[:60]}"
        (work / named.group(1)).write_text(body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for command in commands():
        done = subprocess.run(
            shlex.split(command),
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    out = work / "名单"
    for period in ("2026-07", "2026-08", "2026-09"):
        assert (out / period / "run-report.html").is_file()
        assert len(list((out / period / "departments").glob("部门反馈_*.xlsx"))) == 5
    assert (work / "demo" / "out" / "2026-07" / "run-report.html").is_file()
    assert (out / "2026-09" / "whatif" / "参数试算_202609.xlsx").is_file()
