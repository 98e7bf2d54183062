"""`screening whatif`: a screened period under other parameters, compared with its lists, and
nothing but `<out>/<P>/whatif/` changed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from screening.cli import main as cli
from screening.contract import resource_dir
from screening.db.connect import connect
from screening.pipeline import whatif as trial
from tests.support.common import SAMPLE_PERIODS, query, unstamped

LAST = SAMPLE_PERIODS[-1]
LOWER_MEDICAL = """
medical_oop_threshold:
  一般农户:
    values:
      2021-01-01: 8000
"""
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture
def county(screened: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A copy of the screened county (database and published lists)."""
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copy2(screened["db"], db)
    shutil.copytree(screened["out"], out)
    return {"db": db, "out": out}


def params_file(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "county.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def tried(db: Path, path: Path) -> trial.WhatIf:
    con = connect(db, read_only=True)
    try:
        return trial.whatif(con, LAST, path)
    finally:
        con.close()


def contents(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_parameters_in_force_change_nothing(county: dict[str, Path], tmp_path: Path) -> None:
    result = tried(county["db"], params_file(tmp_path, "# the defaults, as the runs used\n"))
    assert result.unchanged and result.parameters.height == 0
    assert result.notes == [n for n in result.notes if "stale" in n]  # the stored list agrees
    assert (result.summary["before"] == result.summary["after"]).all()
    assert result.summary["entering"].sum() == 0 and result.summary["leaving"].sum() == 0
    county_total = result.summary.filter(
        (pl.col("township") == trial.COUNTY) & (pl.col("colour") == trial.ALL_COLOURS)
    )
    listed = query(county["db"], f"SELECT count(*) AS n FROM suspects WHERE period = '{LAST}'")
    assert county_total["before"].item() == listed["n"].item() > 0


def test_a_lower_medical_threshold_lists_a_superset(
    county: dict[str, Path], tmp_path: Path
) -> None:
    result = tried(county["db"], params_file(tmp_path, LOWER_MEDICAL))
    assert result.parameters.rows() == [
        ("medical_oop_threshold.一般农户", "因病：住院自付费用标准（元，达到即列入）·一般农户",
         "20,000", "8,000"),
    ]  # fmt: skip
    moved = result.changes["change"].to_list()
    assert trial.ENTERING in moved and trial.LEAVING not in moved
    entering = result.changes.filter(pl.col("change") == trial.ENTERING)
    assert entering["colour_before"].is_null().all()
    assert entering["risks_after"].str.contains("因病").all()
    total = result.summary.filter(
        (pl.col("township") == trial.COUNTY) & (pl.col("colour") == trial.ALL_COLOURS)
    ).row(0, named=True)
    assert total["after"] == total["before"] + entering.height
    assert total["leaving"] == 0
    # Per township, what entered is what grew (a colour may also change: 黄 → 红).
    totals = result.summary.filter(pl.col("colour") == trial.ALL_COLOURS)
    assert (totals["after"] == totals["before"] + totals["entering"]).all()


def test_whatif_writes_its_folder_and_nothing_else(county: dict[str, Path], tmp_path: Path) -> None:
    tried_file = params_file(tmp_path / "county", LOWER_MEDICAL)
    before = contents(county["db"].parent)
    result = runner.invoke(
        cli.app,
        ["whatif", "--period", LAST, "--params", tried_file,
         "--db", county["db"], "--out", county["out"]],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = "\n".join(unstamped(result.stdout))
    assert "全县" in lines and "新列入 entering" in lines and "20,000 → 8,000" in lines
    after = contents(county["db"].parent)
    folder = Path("out") / LAST / trial.FOLDER
    new = {k for k in after if k not in before}
    assert new == {
        str(folder / f"参数试算_{LAST.replace('-', '')}.xlsx"),
        str(folder / f"参数试算_汇总_{LAST.replace('-', '')}.csv"),
        str(folder / f"参数试算_名单变化_{LAST.replace('-', '')}.csv"),
    }
    # The database, every list, parquet file and report: byte for byte as they were.
    assert {k: v for k, v in after.items() if k not in new} == before
    changes = county["out"] / LAST / trial.FOLDER / f"参数试算_名单变化_{LAST.replace('-', '')}.csv"
    assert changes.read_bytes()[:3] == b"\xef\xbb\xbf"  # opens in Excel
    assert "新列入" in pl.read_csv(changes)["变化"].to_list()


def test_trying_the_relief_estimate_shows_its_totals(
    county: dict[str, Path],
) -> None:
    result = tried(county["db"], resource_dir("parameters") / "examples" / "liling.yaml")
    assert result.unchanged  # the estimate lists no one
    assert result.summary["relief_before"].is_null().all()
    assert result.summary["relief_after"].drop_nulls().len() > 0
    assert [r[0] for r in result.parameters.rows()] == ["relief_estimate.enabled"]


def test_a_period_never_screened_is_one_line(county: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["whatif", "--period", "2027-01", "--params", params_file(tmp_path, LOWER_MEDICAL),
         "--db", county["db"], "--out", county["out"]],
    )  # fmt: skip
    assert result.exit_code != 0
    line = unstamped(result.stderr)
    assert len(line) == 1 and line[0].startswith("错误 error:") and "2027-01" in line[0]
    assert not (county["out"] / "2027-01").exists()


def test_a_bad_parameters_file_is_one_line(county: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["whatif", "--period", LAST, "--params", params_file(tmp_path, "nonsense_rule: {}\n"),
         "--db", county["db"], "--out", county["out"]],
    )  # fmt: skip
    assert result.exit_code != 0
    line = unstamped(result.stderr)
    assert len(line) == 1 and "参数有误" in line[0] and "nonsense_rule" in line[0]
