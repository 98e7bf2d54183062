"""A large county generated a chunk of households at a time (bounded memory): files that
read as one delivery each, identifiers that never repeat across chunks, and a manifest
whose expected lists the pipeline reproduces."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from dev import sample

from screening import contract, ids
from screening.db.connect import connect
from screening.ingest import normalise, read
from screening.pipeline import run
from tests.support.common import ingest_year_before

PERIODS = ["2026-07", "2026-08", "2026-09"]
SEED = 11


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chunked")
    sample.generate(out, households=600, periods=PERIODS, seed=SEED, chunk_households=200)
    return out


@pytest.fixture(scope="module")
def manifest(inbox: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))
    return result


def test_only_large_counties_are_chunked() -> None:
    assert sample.chunk_size(290_000) is None  # the county bench size is built whole
    assert sample.chunk_size(2_900_000) == sample.CHUNK_HOUSEHOLDS


def test_manifest_adds_up_the_chunks(inbox: Path, manifest: dict[str, Any]) -> None:
    assert manifest["chunks"] == [200, 200, 200]
    assert manifest["households"] == 600
    for period in PERIODS:
        assert manifest["population"][period]["households"] == 600
    expected = pl.read_parquet(inbox / manifest["expected_file"])
    counts = dict(expected.group_by("period").len().iter_rows())
    assert counts == manifest["expected"]
    assert expected.select("period", "household_id").is_unique().all()
    assert len(manifest["planted"]) >= 50  # the planted cases, once
    assert manifest["feedback"] is None and not (inbox / sample.FEEDBACK_FOLDER).exists()


def test_every_file_reads_as_one_delivery(inbox: Path, manifest: dict[str, Any]) -> None:
    specs = contract.load()
    year = manifest["year_before"]  # every chunk's households on the roster of a year before
    files = {**manifest["files"], year["period"]: year["files"]}
    rows = {**manifest["rows"], year["period"]: year["rows"]}
    assert year["population"]["persons"] == year["rows"]["roster"]
    assert 0.9 * 600 < year["population"]["households"] < 600
    for period, by_source in files.items():
        for source, name in by_source.items():
            if name is None:
                continue
            path = inbox / period / name
            raw = read.read_source(path, specs[source])
            assert raw.rows_read == rows[period][source], (period, source)
            if path.suffix == ".csv":
                data = path.read_bytes()
                assert data.count(b"\xef\xbb\xbf") == (raw.encoding == "utf-8-sig")
                first = data.decode(raw.encoding).splitlines()[0]
                assert data.decode(raw.encoding).count(first) == 1  # one header


def test_identifiers_never_repeat_across_chunks(inbox: Path, manifest: dict[str, Any]) -> None:
    specs = contract.load()
    for period, by_source in manifest["files"].items():
        name = by_source["roster"]
        raw = read.read_source(inbox / period / name, specs["roster"])
        roster = normalise.normalise_frame(raw.frame, specs["roster"])
        valid = roster.filter(pl.col("id_number").is_not_null())
        assert valid["id_number"].is_unique().all()
        assert roster["household_id"].n_unique() == 600


def test_the_pipeline_lists_what_the_manifest_expects(
    inbox: Path, manifest: dict[str, Any], tmp_path: Path
) -> None:
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    ingest_year_before(db, inbox)
    for period in PERIODS:
        run.run_period(db=db, inbox=inbox, out=out, period=period)
    con = connect(db, read_only=True)
    try:
        got = con.sql(
            "SELECT period, household_id, colour, list_sort(risk_codes), listing_status "
            "FROM suspects"
        ).fetchall()
        quarantined = con.sql(
            'SELECT DISTINCT period, source, file, row_number, "column", "check" FROM quarantine'
        ).fetchall()
    finally:
        con.close()
    expected = pl.read_parquet(inbox / manifest["expected_file"]).select(
        "period", "household_id", "colour", pl.col("risk_codes").list.sort(), "listing_status"
    )
    assert {(p, h, c, tuple(r), s) for p, h, c, r, s in got} == {
        (p, h, c, tuple(r), s) for p, h, c, r, s in expected.rows()
    }
    invalid = {
        (r["period"], r["source"], r["file"], r["row_number"], r["column"], r["check"])
        for r in manifest["invalid_rows"]
    }
    assert set(quarantined) == invalid


def test_same_seed_gives_identical_bytes(inbox: Path, tmp_path: Path) -> None:
    sample.generate(tmp_path, households=600, periods=PERIODS, seed=SEED, chunk_households=200)
    files = sorted(p.relative_to(inbox) for p in inbox.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        assert (inbox / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_person_ids_past_450_a_day_take_another_region() -> None:
    """Only 450 men (or women) of one region can be born on one day: later chunks go on
    numbering, then move to a region code no one else uses."""
    chunks = sample._Chunks()
    born = dt.date(1970, 5, 4)

    def people(n: int) -> pl.DataFrame:
        return pl.DataFrame(
            {"_region": [sample.COUNTY] * n, "_birth": [born] * n, "_sex": [1] * n},
            schema={"_region": pl.String, "_birth": pl.Date, "_sex": pl.Int32},
        )

    first = sample._with_ids(people(300), chunks)["id_number"]
    second = sample._with_ids(people(400), chunks)["id_number"]
    every = pl.concat([first, second])
    assert every.is_unique().all()
    assert all(ids.is_valid(i) for i in every)
    regions = every.str.slice(0, 6).value_counts().sort("id_number")
    assert regions.rows() == [(sample.COUNTY, 450), (str(int(sample.COUNTY) + 100), 250)]


def test_too_small_chunks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        sample.generate(tmp_path, households=600, periods=PERIODS, seed=1, chunk_households=30)
