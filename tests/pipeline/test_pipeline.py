"""End to end on a generated county: what the generator planted is what the pipeline finds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from screening.pipeline.errors import RunError
from screening.pipeline.run import run_period
from tests.support.common import SAMPLE_PERIODS, query


def test_every_planted_invalid_row_is_quarantined_and_no_valid_row_is(
    screened: dict[str, Path], sample_manifest: dict
) -> None:
    got = query(
        screened["db"],
        'SELECT DISTINCT period, source, file, row_number, "column", "check" FROM quarantine',
    )
    expected = pl.DataFrame(sample_manifest["invalid_rows"]).select(got.columns)
    assert sorted(got.rows()) == sorted(expected.unique().rows())


def test_rows_read_equal_accepted_plus_rejected_for_every_file(
    screened: dict[str, Path], sample_manifest: dict
) -> None:
    log = query(screened["db"], "SELECT * FROM ingest_log ORDER BY period, source")
    # The roster of a year before is a period of its own, holding only the roster.
    year = sample_manifest["year_before"]
    files = {**sample_manifest["files"], year["period"]: year["files"]}
    rows = {**sample_manifest["rows"], year["period"]: year["rows"]}
    assert year["period"] in set(log["period"])
    for row in log.iter_rows(named=True):
        if row["status"] in ("loaded", "empty"):
            assert row["rows_read"] == (
                row["rows_accepted"] + row["rows_rejected"] + row["rows_duplicate"]
            ), row
            assert row["rows_read"] == rows[row["period"]][row["source"]]
        else:
            assert row["status"] == "missing"
            assert files[row["period"]].get(row["source"]) is None


@pytest.mark.parametrize("period", SAMPLE_PERIODS)
def test_every_expected_household_is_listed_exactly_as_planted(
    screened: dict[str, Path], sample_manifest: dict, period: str
) -> None:
    got = query(
        screened["db"],
        "SELECT household_id, township, village, colour, list_sort(risk_codes) AS risk_codes, "
        f"listing_status FROM suspects WHERE period = '{period}'",
    )
    expected = {
        e["household_id"]: (
            e["township"],
            e["village"],
            e["colour"],
            sorted(e["risk_codes"]),
            e["listing_status"],
        )
        for e in sample_manifest["expected"][period]
    }
    listed = {
        r["household_id"]: (
            r["township"],
            r["village"],
            r["colour"],
            r["risk_codes"],
            r["listing_status"],
        )
        for r in got.iter_rows(named=True)
    }
    assert listed == expected


def test_planted_households_go_from_new_to_continuing(sample_manifest: dict, screened) -> None:
    got = query(screened["db"], "SELECT period, household_id, listing_status FROM suspects")
    status = {(p, h): s for p, h, s in got.rows()}
    sequences = []
    for case in sample_manifest["planted"]:
        h = case["household_id"]
        planted = [(case["periods"].get(p) or {}).get("listing_status") for p in SAMPLE_PERIODS]
        assert [status.get((p, h)) for p in SAMPLE_PERIODS] == planted, case["case"]
        sequences.append(planted)
    assert ["新增", "持续", "持续"] in sequences
    assert any(seq[0] is None and seq[1] == "新增" for seq in sequences)
    assert any("已在监测" in seq for seq in sequences)


def test_published_files_match_the_database(screened: dict[str, Path]) -> None:
    period = SAMPLE_PERIODS[-1]
    folder = screened["out"] / period
    parquet = pl.read_parquet(folder / "suspects.parquet")
    db = query(screened["db"], f"SELECT * FROM suspects WHERE period = '{period}'")
    assert sorted(parquet["household_id"]) == sorted(db["household_id"])
    townships = sorted(parquet["township"].unique())
    for township in townships:
        csvs = list((folder).glob(f"*/疑似监测对象_{township}_{period.replace('-', '')}.csv"))
        assert len(csvs) == 1
        assert csvs[0].read_bytes().startswith(b"\xef\xbb\xbf")
    assert (folder / "run-report.md").exists()
    runs = query(screened["db"], "SELECT period, status, parameters FROM runs ORDER BY period")
    assert runs["status"].to_list() == ["success"] * len(SAMPLE_PERIODS)
    assert json.loads(runs["parameters"][0])["monitoring_line"]["value"] == 6000


def test_one_township_rerun_equals_its_rows_in_the_full_run(
    screened: dict[str, Path], sample_inbox: Path, tmp_path: Path
) -> None:
    work = tmp_path / "copy"
    shutil.copytree(screened["out"].parent, work)
    db, out = work / "screening.duckdb", work / "out"
    period = SAMPLE_PERIODS[-1]
    tables = ("suspects", "screened_households", "removal_candidates", "scale_checks")

    def rows() -> dict[str, pl.DataFrame]:
        return {
            t: query(
                db, f"SELECT * EXCLUDE (run_id) FROM {t} WHERE period = '{period}' ORDER BY ALL"
            )
            if t != "scale_checks"
            else query(db, f"SELECT * FROM {t} WHERE period = '{period}' ORDER BY ALL")
            for t in tables
        }

    before = rows()
    township = before["suspects"]["township"][0]
    run_period(db=db, inbox=sample_inbox, out=out, period=period, township=township)
    after = rows()
    for table in tables:
        assert after[table].equals(before[table]), table
    runs = query(db, f"SELECT township FROM runs WHERE period = '{period}' ORDER BY started_at")
    assert runs["township"].to_list()[-1] == township


def test_unknown_township_is_refused_with_nearest_names_and_changes_nothing(
    screened: dict[str, Path], sample_inbox: Path, tmp_path: Path
) -> None:
    work = tmp_path / "copy"
    shutil.copytree(screened["out"].parent, work)
    db, out = work / "screening.duckdb", work / "out"
    period = SAMPLE_PERIODS[-1]
    before = query(db, "SELECT * FROM suspects ORDER BY ALL")
    files_before = {p: p.read_bytes() for p in (out / period).rglob("*") if p.is_file()}
    runs_before = query(db, "SELECT * FROM runs ORDER BY ALL")
    known = before["township"][0]
    with pytest.raises(RunError, match=r"unknown township.*nearest"):
        run_period(db=db, inbox=sample_inbox, out=out, period=period, township=known + "x")
    assert query(db, "SELECT * FROM suspects ORDER BY ALL").equals(before)
    assert {p: p.read_bytes() for p in (out / period).rglob("*") if p.is_file()} == files_before
    # Refused before it started: a typo is not a failed run.
    assert query(db, "SELECT * FROM runs ORDER BY ALL").equals(runs_before)


def test_the_database_and_published_lists_are_private(screened: dict[str, Path]) -> None:
    # Personal data: readable by the owner only, whatever the umask.
    assert screened["db"].stat().st_mode & 0o777 == 0o600
    period_dir = screened["out"] / SAMPLE_PERIODS[-1]
    assert period_dir.stat().st_mode & 0o777 == 0o700
    for path in period_dir.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_the_relief_estimate_under_lilings_schedule_is_the_manifests(
    screened: dict[str, Path], sample_manifest: dict, tmp_path: Path
) -> None:
    """The last period screened again with parameters/examples/liling.yaml: every listed
    household carries the estimate the generator computed on its own (0.00 where it has
    none), its breakdown in the evidence adds up to it, and the lists show the column."""
    from screening.contract import resource_dir

    entry = sample_manifest["relief_estimate"]
    assert entry["parameters"] == "parameters/examples/liling.yaml"
    assert len(entry["households"]) >= 2  # the planted bills reach a warning line
    work = tmp_path / "copy"
    shutil.copytree(screened["out"].parent, work)
    db, out = work / "screening.duckdb", work / "out"
    liling = resource_dir("parameters") / "examples" / "liling.yaml"
    run_period(db=db, inbox=screened["inbox"], out=out, period=entry["period"], params_file=liling)
    got = query(
        db,
        "SELECT household_id, relief_estimate::VARCHAR AS r FROM suspects "
        f"WHERE period = '{entry['period']}'",
    )
    expected = {h: entry["households"].get(h, "0.00") for h in got["household_id"]}
    assert dict(got.rows()) == expected
    parts = query(
        db,
        "SELECT household_id, sum(amount)::VARCHAR AS r FROM evidence "
        f"WHERE period = '{entry['period']}' AND risk_code = 'RELIEF' GROUP BY ALL",
    )
    assert {h: r for h, r in parts.rows() if r != "0.00"} == entry["households"]
    csvs = list((out / entry["period"]).glob("*/疑似监测对象_*.csv"))
    assert csvs and all(
        "防贫保预估" in p.read_text(encoding="utf-8-sig").splitlines()[0] for p in csvs
    )


def test_the_run_report_says_where_income_drop_was_not_evaluated(
    screened: dict[str, Path], sample_manifest: dict, tmp_path: Path
) -> None:
    """With the roster of a year before: the households not on it are counted. Without
    one (a county that never loaded it): the report says INCOME_DROP was not evaluated,
    and no household is listed for it."""
    year = sample_manifest["year_before"]
    period = SAMPLE_PERIODS[0]
    missing = sample_manifest["population"][period]["households"] - year["population"]["households"]
    report = (screened["out"] / period / "run-report.md").read_text(encoding="utf-8")
    assert f"收入骤减：{missing} 户不在 12 个月前（{year['period']} 期）的人口库中" in report
    db, out = tmp_path / "fresh.duckdb", tmp_path / "out"
    outcome = run_period(db=db, inbox=screened["inbox"], out=out, period=period)
    fresh = (out / period / "run-report.md").read_text(encoding="utf-8")
    assert "收入骤减未判定：数据库中没有 2025-07 期及以前的人口库" in fresh
    assert "screening ingest --period 2025-07" in fresh
    codes = {c for codes in outcome.suspects["risk_codes"].to_list() for c in codes}
    assert "INCOME_DROP" not in codes
