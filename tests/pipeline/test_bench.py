"""The bench machinery on a tiny county: every stage measured, both baselines agreeing with
screen.screen, finite ratios. The figures themselves are not checked (they are the
machine's); that the measuring is honest is, on an allocation of known size."""

from __future__ import annotations

import math

import pytest
from dev import bench

STAGES = [
    "read + normalise",
    "validate",
    "store (replace_delivery)",
    "load as of P",
    "screen",
    "publish + report",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> bench.BenchResult:
    size = bench.BenchSize("tiny", households=80, months=2)
    cache = tmp_path_factory.mktemp("bench")
    # In-process: spawning a process per phase would cost more than the tiny county.
    return bench.run_bench(size, cache, isolate=False)


def test_every_stage_is_measured(tiny: bench.BenchResult) -> None:
    assert [m.name for m in tiny.stages.stages] == STAGES
    for m in [*tiny.setup, *tiny.stages.stages, tiny.end_to_end]:
        assert m.seconds > 0 and m.peak_rss > 0, m
    assert tiny.stages.stages[0].rows > 0
    assert tiny.stages.persons == tiny.persons


def test_linkage_is_measured_on_its_own(tiny: bench.BenchResult) -> None:
    """Linking the month's unmatched records against the roster is its own measure, with
    the records linked and the roster's size (the target is for the county size)."""
    link = tiny.stages.link
    assert link is not None and link.seconds > 0 and link.rows > 0
    assert tiny.stages.roster == tiny.persons
    assert "link unmatched records (linkage)" in bench.render(tiny)
    assert bench.LINK_TARGETS["county"] == 60.0


def test_the_cli_start_is_measured(tiny: bench.BenchResult) -> None:
    assert 0 < tiny.cli_start < 60
    assert "screening --help prints in" in bench.render(tiny)


def test_baselines_agree_and_ratios_are_finite(tiny: bench.BenchResult) -> None:
    assert tiny.stages.listed > 0
    assert tiny.stages.floor_diff == []
    assert tiny.stages.naive_diff == []
    assert tiny.agrees
    assert math.isfinite(tiny.floor_ratio) and tiny.floor_ratio > 0
    assert math.isfinite(tiny.naive_ratio) and tiny.naive_ratio > 0


def test_table_names_every_stage_and_both_ratios(tiny: bench.BenchResult) -> None:
    table = bench.render(tiny)
    for name in [*STAGES, "run.run_period end to end", "floor", "naive"]:
        assert name in table
    assert "screen step ÷ floor" in table and "naive ÷ screen step" in table
    assert "MISMATCH" not in table


def test_the_inbox_is_cached_and_the_work_folder_removed(tiny: bench.BenchResult) -> None:
    assert tiny.generation is not None
    assert (tiny.folder / "inbox" / "manifest.json").is_file()
    assert not (tiny.folder / "work").exists()
    assert (tiny.folder / "last-result.json").is_file()


def test_a_disagreement_is_reported_per_household() -> None:
    screened = {("H1", ("MEDICAL",)), ("H2", ("LOW_INCOME",))}
    baseline = {("H1", ("MEDICAL", "SPENDING")), ("H3", ("DROPOUT",))}
    diff = bench.compare_codes(screened, baseline)
    assert [line.split(":")[0] for line in diff] == ["H1", "H2", "H3"]
    assert bench.compare_codes(screened, set(screened)) == []


def test_peak_rss_sees_an_allocation_inside_the_stage() -> None:
    size = 256 << 20
    with bench.Meter() as meter:
        with meter.measure("allocate") as before:
            pass
        with meter.measure("allocate") as during:
            block = bytearray(size)
            block[::4096] = b"\x01" * len(block[::4096])  # touch every page
            del block
    assert during.peak_rss - before.peak_rss > size * 0.9


def test_generation_guard_counts_one_chunk_of_a_province() -> None:
    county, province = bench.SIZES["county"], bench.SIZES["province"]
    assert bench.generator_peak_estimate(county) > 6 << 30  # built whole: 6.6 GB measured
    assert bench.generator_peak_estimate(province) < 4 << 30  # one chunk: 3.0 GB measured
