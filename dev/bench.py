"""Benchmark of the monthly run at county scale, against a SQL floor and a pandas naive.

    python -m screening.bench small|county|province [--keep] [--cache DIR] [--profile]

A synthetic county (`sample.generate`) is generated once per set of parameters and cached
under `<cache>/<size>-<hash>/inbox`. The monthly pattern is then reproduced: a database
that already holds the earlier months (built first and reported as *setup*) receives the
new month, which is ingested, screened and published. That month is measured twice, on
two copies of the setup database:

- stage by stage, calling the stage functions directly (read + normalise, validate, store,
  load as of P, screen, publish + report), with wall time and peak RSS per stage, and
  linkage (the records whose ID number reaches nobody, against the roster) as its own
  measure;
- end to end, `run.run_period` as the CLI calls it, in a fresh process.

Two baselines read the same normalised tables: the *floor*, one hand-written DuckDB query
computing every household's risk codes, and the *naive*, the same rules in plain pandas
the way an office analyst would write them. Both must list the same households with the
same codes as `screen.screen`; a disagreement is a bug in one of the three and is
reported loudly (exit status 1).

Peak RSS is the kernel's high-water mark of the process, reset at the start of each stage
(/proc/self/clear_refs), cross-checked by a psutil sampling thread; where the kernel mark
cannot be reset only the sampler counts. Each phase (generation, setup, stages, end to
end) runs in its own spawned process, so no phase inherits another's heap.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import polars as pl
import psutil
import pyarrow as pa

from dev import bench_whole, sample
from screening import contract, params, periods
from screening.db import deliveries as db_deliveries
from screening.db import linkage as db_linkage
from screening.db import runs as db_runs
from screening.db import schema as db_schema
from screening.db.connect import connect, transaction
from screening.ingest import deliveries as ingest
from screening.ingest import normalise, read, validate
from screening.ingest import results as ingest_results
from screening.ingest.inbox import discover
from screening.linkage import suggest as linkage
from screening.pipeline import inputs as run_inputs
from screening.pipeline import outputs, run
from screening.publish import lists as publish
from screening.publish import report_files
from screening.publish.columns import PublishMeta
from screening.publish.departments import stage_departments
from screening.publish.files import StagedFiles
from screening.rules import batches, screen
from screening.rules.base import window
from screening.vocab import DEFAULT_HOUSEHOLD_TYPE

MIB = 1 << 20
SEED = 20260901
LAST_PERIOD = "2026-09"

T = TypeVar("T")
Codes = set[tuple[str, tuple[str, ...]]]  # (household_id, risk codes in rule order)


class BenchError(RuntimeError):
    """The bench cannot run as asked; the message is the one line the user sees."""


@dataclass(frozen=True)
class BenchSize:
    name: str
    households: int
    months: int  # consecutive periods ending LAST_PERIOD; the last one is screened
    naive: bool = True  # run the pandas baseline (too slow and too big for a province)
    repeats: int = 1  # best of n for the screen step and the baselines
    # Parameters of the county (name → value in force from 2021): a county with a high
    # monitoring line lists many households.
    params: tuple[tuple[str, Any], ...] = ()

    def params_file(self, folder: Path) -> Path | None:
        """The county's parameter file (written into `folder`), or None: the defaults."""
        if not self.params:
            return None
        import yaml

        folder.mkdir(parents=True, exist_ok=True)  # before the inbox: a first run has none
        path = folder / "params.yaml"
        values = {name: {"values": {"2021-01-01": value}} for name, value in self.params}
        path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
        return path

    @property
    def periods(self) -> tuple[str, ...]:
        year, month = periods.parse_period(LAST_PERIOD)
        last = year * 12 + month - 1
        return tuple(
            f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(last - self.months + 1, last + 1)
        )

    def cache_key(self) -> str:
        """Parameters and the generator's own source: a changed generator is new data."""
        generator = hashlib.sha256(Path(sample.__file__).read_bytes()).hexdigest()
        text = json.dumps(
            {
                "households": self.households,
                "periods": self.periods,
                "seed": SEED,
                "generator": generator,
            },
            sort_keys=True,
        )
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


# The generator's household shapes give 3.51 persons per household (1,018,058 persons in
# 290,000 households), so these are 50 thousand, 1 million and 10 million persons.
SIZES = {
    "small": BenchSize("small", 14_300, months=3, repeats=3),
    # A county with a high monitoring line: about 28,000 of 100,000 households listed.
    "biglist": BenchSize(
        "biglist", 100_000, months=3, naive=False, params=(("monitoring_line", 9500),)
    ),
    "county": BenchSize("county", 290_000, months=12, repeats=3),
    "province": BenchSize("province", 2_900_000, months=12, naive=False),
}

# The generator holds the whole county in memory up to sample.CHUNKED_ABOVE households, and
# one chunk of households at a time above (sample.chunk_size): measured peaks of 2.7 GB for
# 290,000 households × 3 months and 6.6 GB × 12 months give about 4.9 KB per household plus
# 1.5 KB per household-month held. A generation that cannot fit is refused up front.
GENERATOR_BYTES_PER_HOUSEHOLD = 4_900
GENERATOR_BYTES_PER_HOUSEHOLD_MONTH = 1_500


def generator_peak_estimate(size: BenchSize) -> int:
    held = sample.chunk_size(size.households) or size.households
    return held * (
        GENERATOR_BYTES_PER_HOUSEHOLD + GENERATOR_BYTES_PER_HOUSEHOLD_MONTH * size.months
    )


# Targets from the issue, for 2 cores and 24 GB: (end-to-end seconds, peak RSS bytes).
TARGETS = {"county": (60.0, 4 << 30), "province": (600.0, 16 << 30)}
# Linking a county's unmatched records against its 1-million-person roster (issue 18).
LINK_TARGETS = {"county": 60.0}
FLOOR_TARGET = 2.0  # screen step within 2× of the floor
NAIVE_TARGET = 10.0  # and at least 10× faster than the naive


# ---------------------------------------------------------------- measuring


@dataclass
class Measure:
    name: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # user + system, all threads: wall ≫ cpu ÷ cores means waiting
    peak_rss: int = 0  # bytes
    rows: int = 0
    unit: str = ""  # what `rows` counts

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.nan


def _vm_hwm() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ≥ 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


class Meter:
    """Wall time and peak RSS of stretches of code in this process.

    The kernel's high-water mark is exact but process-wide, so it is reset at the start of
    every measured stretch; the sampler (every 10 ms) keeps the figure honest where the
    reset is refused, and on the rare kernel that does not implement it.
    """

    def __init__(self, profile_dir: Path | None = None, interval: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._sampled = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._profile_dir = profile_dir
        self.profiles: dict[str, str] = {}

    def __enter__(self) -> Meter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            rss = self._process.memory_info().rss
            with self._lock:
                self._sampled = max(self._sampled, rss)

    def _reset(self) -> bool:
        exact = _reset_hwm()
        with self._lock:
            self._sampled = self._process.memory_info().rss
        return exact

    def _peak(self, exact: bool) -> int:
        with self._lock:
            sampled = self._sampled
        return max(sampled, self._process.memory_info().rss, _vm_hwm() if exact else 0)

    @contextmanager
    def measure(self, name: str, unit: str = "") -> Iterator[Measure]:
        """Time the block; the block may set `rows` on the yielded measure."""
        m = Measure(name, unit=unit)
        profiler = cProfile.Profile() if self._profile_dir else None
        exact = self._reset()
        cpu = self._process.cpu_times()
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        try:
            yield m
        finally:
            if profiler:
                profiler.disable()
            m.seconds = time.perf_counter() - start
            m.cpu_seconds = cpu_seconds(self._process.cpu_times()) - cpu_seconds(cpu)
            m.peak_rss = self._peak(exact)
            if profiler and self._profile_dir:
                self.profiles[name] = _profile_text(profiler, self._profile_dir, name)


def cpu_seconds(times: Any) -> float:
    """User + system time of the process and of its children that ended (the processes
    that write the workbooks of long lists: publishing ends them before it returns)."""
    return float(times.user + times.system + times.children_user + times.children_system)


def _profile_text(profiler: cProfile.Profile, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() else "_" for c in name).strip("_")
    profiler.dump_stats(folder / f"{stem}.prof")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    # Native work (polars, DuckDB, xlsxwriter's writes) shows as the builtin calls with
    # the most own time; the screening functions by cumulative time show who asked.
    stats.sort_stats("tottime").print_stats(12)
    stats.sort_stats("cumulative").print_stats(r"screening[/\\]", 12)
    return out.getvalue()


# ---------------------------------------------------------------- phases


def _generate(inbox: Path, size: BenchSize) -> Measure:
    """Generate into a temporary folder renamed when complete: a generation that was
    interrupted is never mistaken for a cached inbox."""
    partial = inbox.with_name(inbox.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with Meter() as meter, meter.measure("generate the synthetic county", "persons") as m:
        manifest = sample.generate(partial, size.households, list(size.periods), SEED)
        m.rows = manifest["population"][size.periods[-1]]["persons"]
    partial.rename(inbox)
    return m


def _setup(
    inbox: Path, db: Path, out: Path, periods: tuple[str, ...], params_file: Path | None = None
) -> list[Measure]:
    """The database as it stands before the screened month: every earlier month ingested,
    and the previous month run (its lists give this month's 新增 / 持续)."""
    specs = contract.load()
    earlier, previous = periods[:-2], periods[-2]
    measures = []
    with Meter() as meter:
        if earlier:
            with meter.measure(f"ingest {len(earlier)} earlier month(s)", "rows read") as m:
                con = _quiet(connect(db))
                try:
                    for period in earlier:
                        results = ingest.ingest_period(con, inbox, period, specs)
                        m.rows += sum(r.rows_read for r in results)
                finally:
                    con.close()
            measures.append(m)
        with meter.measure(f"run of {previous} (run_period)", "rows read") as m:
            outcome = run.run_period(
                db=db,
                inbox=inbox,
                out=out,
                period=previous,
                accept_held=contract.SOURCES,
                params_file=params_file,
            )
            m.rows = sum(r.rows_read for r in outcome.ingest)
        measures.append(m)
    return measures


# What is measured is the pipeline's speed: a small synthetic county's outsiders can trip a
# completeness gate (match rate), so the bench accepts whatever is held.
def _end_to_end(
    inbox: Path, db: Path, out: Path, period: str, params_file: Path | None = None
) -> Measure:
    with Meter() as meter, meter.measure("run.run_period end to end", "rows read") as m:
        outcome = run.run_period(
            db=db,
            inbox=inbox,
            out=out,
            period=period,
            accept_held=contract.SOURCES,
            params_file=params_file,
        )
        m.rows = sum(r.rows_read for r in outcome.ingest)
    return m


def _quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No progress bar: it would be printed into the bench's table (run_period's own
    connection still draws one on queries longer than two seconds)."""
    con.execute("SET enable_progress_bar = false")
    return con


@dataclass
class StagesResult:
    stages: list[Measure]
    screen_step: Measure  # load as of P + screen, best of the repeats
    floor: Measure
    naive: Measure | None
    persons: int
    households: int
    listed: int
    floor_diff: list[str]
    naive_diff: list[str]
    profiles: dict[str, str] = field(default_factory=dict)
    publish: Measure | None = None  # publish.publish alone: every township's files
    whole_floor: Measure | None = None  # files read, rules in SQL, township CSVs (best of n)
    # Linking the month's records whose ID number reaches nobody against the roster in
    # force (screening.linkage): rows = records linked; roster = persons on the roster.
    link: Measure | None = None
    roster: int = 0


def _stages(
    inbox: Path,
    db: Path,
    out: Path,
    period: str,
    with_naive: bool,
    repeats: int,
    profile_dir: Path | None,
    params_file: Path | None = None,
) -> StagesResult:
    """The monthly run of `period`, one stage function at a time, in the order and the
    transactions `run.run_period` uses; then the baselines on the same database."""
    specs = contract.load()
    resolved = params.load(params_file).at(period)
    con = _quiet(connect(db))
    published: list[Measure] = []
    try:
        with Meter(profile_dir) as stage_meter:
            stages, result = _monthly_stages(
                stage_meter, con, inbox, out, period, specs, resolved, published
            )
        with Meter() as meter:
            link, roster = _link(meter, con, period, specs, resolved)
        step = Measure(
            "screen step (load as of P + screen)",
            seconds=stages[3].seconds + stages[4].seconds,
            cpu_seconds=stages[3].cpu_seconds + stages[4].cpu_seconds,
            peak_rss=max(stages[3].peak_rss, stages[4].peak_rss),
        )
        expected = screened_codes(result.households)
        with Meter() as meter:
            floor, floor_codes, naive, naive_codes, step = _baselines(
                meter, con, period, resolved, with_naive, repeats, step
            )
            whole = _whole_floor(meter, con, inbox, period, resolved, out, repeats)
    finally:
        con.close()
    # The three compute the same thing for the same people: rows/s counts persons screened.
    persons = stages[4].rows
    for m in (step, floor, naive):
        if m is not None:
            m.rows, m.unit = persons, "persons"
    return StagesResult(
        stages=stages,
        screen_step=step,
        floor=floor,
        naive=naive,
        persons=persons,
        households=result.households.height,
        listed=len(expected),
        floor_diff=compare_codes(expected, floor_codes),
        naive_diff=compare_codes(expected, naive_codes) if naive_codes is not None else [],
        profiles=stage_meter.profiles,
        publish=published[0] if published else None,
        whole_floor=whole,
        link=link,
        roster=roster,
    )


def _whole_floor(
    meter: Meter,
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    period: str,
    resolved: params.ResolvedParams,
    out: Path,
    repeats: int,
) -> Measure:
    """The whole-run floor (bench_whole.whole_floor), best of `repeats`."""
    best: Measure | None = None
    for _ in range(max(repeats, 1)):
        with meter.measure("whole-run floor: files, SQL, township CSVs", "rows read") as m:
            m.rows, _written = bench_whole.whole_floor(
                con, inbox, period, resolved, _floor_sql(resolved), out.with_name("floor")
            )
        if best is None or m.seconds < best.seconds:
            best = m
    assert best is not None
    return best


def _link(
    meter: Meter,
    con: duckdb.DuckDBPyConnection,
    period: str,
    specs: dict[str, contract.SourceSpec],
    resolved: params.ResolvedParams,
) -> tuple[Measure, int]:
    """What run.screen_period spends on linkage: the suggestions for the month's records
    whose ID number reaches nobody (quarantined, or valid and unmatched), trained on and
    linked against the roster in force. Returns the measure (rows: records linked) and
    the roster's persons."""
    with meter.measure("link unmatched records (linkage)", "records linked") as m:
        linkage.suggest(con, specs, period, resolved)
    roster = db_linkage.roster_people(con, period).select("id_number")
    m.rows = linkage.candidates(con, specs, period, resolved, roster).height
    return m, roster.height


def _monthly_stages(
    meter: Meter,
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    out: Path,
    period: str,
    specs: dict[str, contract.SourceSpec],
    resolved: params.ResolvedParams,
    published: list[Measure] | None = None,
) -> tuple[list[Measure], screen.ScreenResult]:
    found = discover(inbox, period, specs)
    paths: dict[str, Path] = {s: f.path for s, f in found.items() if f.path is not None}
    raws: dict[str, read.RawFile] = {}
    normalised: dict[str, pl.DataFrame] = {}
    stages = []

    with meter.measure("read + normalise", "rows read") as m:
        for source, path in paths.items():
            ingest_results.file_sha256(path)  # run_period hashes every file to skip unchanged ones
            raws[source] = read.read_source(path, specs[source])
            normalised[source] = normalise.normalise_frame(raws[source].frame, specs[source])
            m.rows += raws[source].rows_read
    stages.append(m)

    results: list[ingest_results.SourceResult] = []
    with meter.measure("validate", "rows validated") as m:
        for source in specs:
            if source not in paths:
                results.append(ingest_results.SourceResult(source, None, "missing"))
                continue
            path = paths[source]
            checked = validate.validate(
                normalised[source], specs[source], period=period, file=path.name
            )
            rows = raws[source].rows_read
            results.append(
                ingest_results.SourceResult(
                    source,
                    path.name,
                    "loaded" if rows else "empty",
                    rows_read=rows,
                    rows_accepted=checked.good.height,
                    rows_rejected=checked.rows_rejected,
                    sha256=ingest_results.file_sha256(path),
                    encoding=raws[source].encoding,
                    good=checked.good.with_columns(pl.lit(path.name).alias("file")),
                    quarantine=checked.quarantine,
                    rejected_rows=None
                    if checked.rejected_rows is None
                    else checked.rejected_rows.with_columns(
                        period=pl.lit(period), source=pl.lit(source), file=pl.lit(path.name)
                    ),
                )
            )
            m.rows += rows
    stages.append(m)
    del raws, normalised

    with meter.measure("store (replace_delivery)", "rows stored") as m:
        db_schema.ensure_schema(con, specs)
        now = dt.datetime.now().replace(microsecond=0)
        with transaction(con):
            for r in results:
                db_deliveries.replace_delivery(
                    con, specs[r.source], period, r.good, r.quarantine,
                    rejected_rows=r.rejected_rows,
                )  # fmt: skip
                db_deliveries.upsert_log(con, r.log_row(period, now))
                m.rows += (r.good.height if r.good is not None else 0) + (
                    r.quarantine.height if r.quarantine is not None else 0
                )
    stages.append(m)
    for r in results:
        r.good = r.quarantine = r.rejected_rows = None

    started = dt.datetime.now().replace(microsecond=0)
    run_id = run.new_run_id(period, started)
    with meter.measure("load as of P", "rows loaded") as m:
        if batches.needs_batches(con, period):  # as run.screen_period: exported to parquet
            folder = out.with_name(out.name + "-inputs")
            inputs = batches.export_inputs(con, specs, period, folder, resolved.window_months)
        else:
            inputs = run_inputs.load_inputs(con, specs, period, resolved.window_months)
        m.rows = sum(
            frame.select(pl.len()).collect().item()
            for frame in (inputs.population, *inputs.all_events().values())
        )
    stages.append(m)

    with meter.measure("screen", "persons") as m:
        previous = run_inputs.previously_listed(con, period)
        result = batches.screen_in_batches(  # in batches of townships above the budget
            inputs,
            period,
            resolved,
            lambda part: screen.screen(part, period, resolved, previous, run_id),
        )
        m.rows = inputs.population.select(pl.len()).collect().item()
    stages.append(m)

    with meter.measure("publish + report", "households listed") as m:
        all_townships = sorted(
            inputs.population.select(pl.col("township").unique()).collect().to_series()
        )
        rep = outputs.build_report(
            con,
            period,
            run_id,
            result,
            result.suspects,
            resolved,
            all_townships,
            None,
            ingest.unrecognised_files(inbox, period, specs),
            started,
        )
        meta = PublishMeta(
            period=period,
            run_id=run_id,
            params=resolved,
            sources={r.source: r.status for r in results},
            all_townships=all_townships,
            list_key_secret=db_runs.list_key_secret(con),
        )
        with transaction(con):
            # What run_period calls: the stored lists are part of publishing, and a copy
            # of its SQL here could drift from it.
            db_runs.store_outputs(
                con, period, None, result.suspects, result.evidence, result.match_rates
            )
            lists = Measure("publish the lists (publish.publish)", unit="households listed")
            cpu, began = psutil.Process().cpu_times(), time.perf_counter()
            publish.publish(
                out,
                result.suspects,
                result.evidence,
                result.members,
                meta,
                candidates=result.candidates,
            )
            lists.seconds = time.perf_counter() - began
            lists.cpu_seconds = cpu_seconds(psutil.Process().cpu_times()) - cpu_seconds(cpu)
            lists.rows = result.suspects.height
            if published is not None:
                published.append(lists)
            report_files.write_report(out, rep)
            with StagedFiles() as staged:  # the departments' feedback files
                stage_departments(staged, out, con, meta)
                staged.write_deferred()
                staged.commit()
        m.rows = result.suspects.height
    stages.append(m)
    return stages, result


def _baselines(
    meter: Meter,
    con: duckdb.DuckDBPyConnection,
    period: str,
    resolved: params.ResolvedParams,
    with_naive: bool,
    repeats: int,
    step: Measure,
) -> tuple[Measure, Codes, Measure | None, Codes | None, Measure]:
    """Best of `repeats` for the floor, the naive and the screen step (whose first run is
    the stage table's), interleaved so that a burst of load from the other processes on
    the machine hurts them alike. Returns each baseline's measure and codes."""
    specs = contract.load()
    best: dict[str, Measure] = {"step": step}
    floor_codes: Codes = set()
    naive_codes: Codes | None = None

    def keep(m: Measure, key: str) -> None:
        if key not in best or m.seconds < best[key].seconds:
            best[key] = m

    for i in range(repeats):
        with meter.measure("floor: one DuckDB query", "households") as m:
            table = floor_query(con, resolved)
        keep(m, "floor")
        floor_codes = {
            (hid, tuple(codes))
            for hid, codes in zip(
                table.column("household_id").to_pylist(),
                table.column("risk_codes").to_pylist(),
                strict=True,
            )
        }
        if with_naive:
            with meter.measure("naive: pandas", "households") as m:
                naive_codes = naive_risk_codes(con, period, resolved)
            keep(m, "naive")
        if i > 0:
            with meter.measure(step.name, "households") as m:
                inputs = run_inputs.load_inputs(con, specs, period, resolved.window_months)
                screen.screen(inputs, period, resolved, run_inputs.previously_listed(con, period))
            keep(m, "step")
    return best["floor"], floor_codes, best.get("naive"), naive_codes, best["step"]


# ---------------------------------------------------------------- agreement


def screened_codes(households: pl.DataFrame) -> Codes:
    listed = households.filter(pl.col("listed")).select("household_id", "risk_codes")
    return {(hid, tuple(codes)) for hid, codes in listed.iter_rows()}


def compare_codes(expected: Codes, got: Codes | None, limit: int = 10) -> list[str]:
    """Human-readable differences, household by household (empty: they agree)."""
    if got is None:
        return []
    want, have = dict(expected), dict(got)
    lines = []
    for hid in sorted(set(want) | set(have)):
        a, b = want.get(hid), have.get(hid)
        if a != b:
            lines.append(
                f"{hid}: screen.screen {list(a) if a else '—'}, baseline {list(b) if b else '—'}"
            )
    if len(lines) > limit:
        lines = [*lines[:limit], f"… and {len(lines) - limit} more household(s)"]
    return lines


# ---------------------------------------------------------------- the floor: one SQL query


def _floor_sql(resolved: params.ResolvedParams) -> tuple[str, dict[str, Any]]:
    """The household risk codes as of P in one query, straight from the staging tables.

    Written for speed by someone who knows DuckDB: the roster snapshot by its period, the
    events' newest version per natural key with QUALIFY, every per-person fact stacked by
    name into one table so that the roster is joined once.
    """
    w = window(resolved.period, resolved.window_months)
    thresholds = resolved.medical_oop_threshold
    medical_cases = " ".join(f"WHEN $type_{i} THEN $threshold_{i}" for i in range(len(thresholds)))
    values: dict[str, Any] = {
        "period": resolved.period,
        "start": w.start,
        "end": w.end,
        "end_year": w.end.year,
        "end_md": w.end.month * 100 + w.end.day,
        "school_min": resolved.compulsory_school_age[0],
        "school_max": resolved.compulsory_school_age[1],
        "work_min": resolved.working_age[0],
        "work_max": resolved.working_age[1],
        "severe": list(resolved.severe_disability_grades),
        "education_threshold": resolved.education_cost_threshold,
        "accident_threshold": resolved.accident_loss_threshold,
        "line": resolved.monitoring_line,
        "default_type": DEFAULT_HOUSEHOLD_TYPE,
        "default_threshold": thresholds[DEFAULT_HOUSEHOLD_TYPE],
    }
    for i, (kind, threshold) in enumerate(thresholds.items()):
        values[f"type_{i}"], values[f"threshold_{i}"] = kind, threshold
    sql = f"""
WITH
pop AS (
    SELECT household_id, id_number, household_type, per_capita_income,
           (CASE WHEN relation = '户主' THEN 0 ELSE 1 END) * 1099511627776 + row_number AS ord,
           $end_year - TRY_CAST(substr(id_number, 7, 4) AS INTEGER)
             - CASE WHEN TRY_CAST(substr(id_number, 11, 4) AS INTEGER) > $end_md THEN 1 ELSE 0
               END AS age
    FROM stg_roster
    WHERE period = (SELECT max(period) FROM stg_roster WHERE period <= $period)
),
households AS (
    SELECT household_id, count(*) AS size,
           arg_min(household_type, ord) FILTER (WHERE household_type IS NOT NULL) AS kind,
           arg_min(per_capita_income, ord) FILTER (WHERE per_capita_income IS NOT NULL)
             AS income
    FROM pop GROUP BY household_id
),
medical AS (
    SELECT id_number, coalesce(out_of_pocket, 0) AS medical, settlement_date AS day
    FROM stg_medical WHERE period <= $period
    QUALIFY row_number() OVER (PARTITION BY settlement_id ORDER BY period DESC) = 1
),
education AS (
    SELECT id_number, record_id, record_date AS day, status,
           greatest(coalesce(tuition, 0) + coalesce(accommodation, 0) + coalesce(textbook, 0)
                    - coalesce(aid, 0), 0) AS education
    FROM stg_education WHERE period <= $period
    QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY period DESC) = 1
),
education_w AS (SELECT * FROM education WHERE day BETWEEN $start AND $end),
dropouts AS (
    SELECT id_number, true AS dropout FROM education_w
    QUALIFY row_number() OVER (PARTITION BY id_number ORDER BY day DESC, record_id DESC) = 1
        AND status = '辍学'
),
traffic AS (
    SELECT id_number, accident_date AS day,
           greatest(coalesce(direct_loss, 0) - coalesce(compensation, 0), 0) AS loss,
           injury IN ('重伤', '死亡') AS serious
    FROM stg_traffic WHERE period <= $period
    QUALIFY row_number() OVER (PARTITION BY accident_id, id_number ORDER BY period DESC) = 1
),
civil AS (
    SELECT id_number, event_date AS day,
           assistance_type = '临时救助'
             OR (assistance_type IN ('低保', '特困供养') AND event = '新增') AS assistance
    FROM stg_civil WHERE period <= $period
    QUALIFY row_number() OVER (
        PARTITION BY id_number, assistance_type, event, event_date ORDER BY period DESC) = 1
),
disability AS (
    SELECT id_number, issue_date AS day, list_contains($severe, grade) AS severe
    FROM stg_disability WHERE period <= $period
    QUALIFY row_number() OVER (PARTITION BY certificate_no ORDER BY period DESC) = 1
),
person_facts AS (
    SELECT id_number, medical FROM medical WHERE day BETWEEN $start AND $end
    UNION ALL BY NAME SELECT id_number, education FROM education_w
    UNION ALL BY NAME SELECT id_number, dropout FROM dropouts
    UNION ALL BY NAME SELECT id_number, loss, serious FROM traffic
        WHERE day BETWEEN $start AND $end
    UNION ALL BY NAME SELECT id_number, assistance FROM civil
        WHERE assistance AND day BETWEEN $start AND $end
    UNION ALL BY NAME SELECT id_number, severe FROM disability
        WHERE severe AND day BETWEEN $start AND $end
),
household_facts AS (
    SELECT p.household_id,
           coalesce(sum(f.medical), 0) AS medical,
           coalesce(sum(f.education), 0) AS education,
           coalesce(sum(f.loss), 0) AS loss,
           coalesce(bool_or(f.dropout AND p.age BETWEEN $school_min AND $school_max), false)
             AS dropout,
           coalesce(bool_or(f.serious AND p.age BETWEEN $work_min AND $work_max), false)
             AS serious,
           coalesce(bool_or(f.severe), false) AS severe,
           coalesce(bool_or(f.assistance), false) AS assistance
    FROM person_facts f JOIN pop p USING (id_number)
    GROUP BY p.household_id
),
coded AS (
    SELECT h.household_id, list_filter([
        CASE WHEN coalesce(f.medical, 0) >= CASE coalesce(h.kind, $default_type)
             {medical_cases} ELSE $default_threshold END THEN 'MEDICAL' END,
        CASE WHEN f.education > $education_threshold THEN 'EDUCATION' END,
        CASE WHEN f.dropout THEN 'DROPOUT' END,
        CASE WHEN f.loss > $accident_threshold OR f.serious THEN 'ACCIDENT' END,
        CASE WHEN f.severe THEN 'DISABILITY' END,
        CASE WHEN f.assistance THEN 'ASSISTANCE' END,
        CASE WHEN h.income < $line THEN 'LOW_INCOME' END,
        CASE WHEN coalesce(f.medical, 0) + coalesce(f.education, 0) + coalesce(f.loss, 0)
                  > h.income * h.size THEN 'SPENDING' END
    ], lambda c: c IS NOT NULL) AS risk_codes
    FROM households h LEFT JOIN household_facts f USING (household_id)
)
SELECT household_id, risk_codes FROM coded WHERE len(risk_codes) > 0
"""
    return sql, values


def floor_query(con: duckdb.DuckDBPyConnection, resolved: params.ResolvedParams) -> pa.Table:
    """The listed households and their codes, fetched as Arrow (the cheapest way out of
    DuckDB, so that the floor is timed to its end and no further)."""
    sql, values = _floor_sql(resolved)
    return con.sql(sql, params=values).to_arrow_table()


# ---------------------------------------------------------------- the naive: plain pandas


def naive_risk_codes(
    con: duckdb.DuckDBPyConnection,
    period: str,
    resolved: params.ResolvedParams,
) -> Codes:
    """The rules as an office analyst writes them in pandas: load the tables, de-duplicate
    with sort + drop_duplicates, merge on the ID number, groupby per household, and decide
    each household's codes with a row-wise `apply`. Sums are rounded to the cent before
    comparing, as a careful analyst does with float money."""
    import pandas as pd  # a dev dependency: only the bench's naive baseline uses pandas

    w = window(period, resolved.window_months)
    start, end = pd.Timestamp(w.start), pd.Timestamp(w.end)
    school, work = resolved.compulsory_school_age, resolved.working_age
    severe = set(resolved.severe_disability_grades)
    medical_threshold = {k: float(v) for k, v in resolved.medical_oop_threshold.items()}
    education_threshold = float(resolved.education_cost_threshold)
    accident_threshold = float(resolved.accident_loss_threshold)
    line = float(resolved.monitoring_line)

    roster = con.execute(
        "SELECT * EXCLUDE (extra) FROM stg_roster "
        "WHERE period = (SELECT max(period) FROM stg_roster WHERE period <= ?)",
        [period],
    ).df()

    def age(id_number: str) -> int:
        born_year, born_md = int(id_number[6:10]), int(id_number[10:14])
        return end.year - born_year - (born_md > end.month * 100 + end.day)

    roster["age"] = roster["id_number"].apply(age)
    roster["head_rank"] = (roster["relation"] != "户主").astype(int)
    members = roster[["id_number", "household_id", "age"]]
    households = (
        roster.sort_values(["household_id", "head_rank", "row_number"])
        .groupby("household_id")
        .agg(
            size=("id_number", "size"),
            household_type=("household_type", "first"),
            income=("per_capita_income", "first"),
        )
    )

    def as_of(source: str, key: list[str], day: str) -> pd.DataFrame:
        frame = con.execute(
            f"SELECT * EXCLUDE (extra) FROM stg_{source} WHERE period <= ?", [period]
        ).df()
        frame = frame.sort_values("period").drop_duplicates(key, keep="last")
        days = pd.to_datetime(frame[day])
        return frame[(days >= start) & (days <= end)].merge(members, on="id_number")

    medical = as_of("medical", ["settlement_id"], "settlement_date")
    medical_oop = medical.groupby("household_id")["out_of_pocket"].sum()

    education = as_of("education", ["record_id"], "record_date")
    fees = ["tuition", "accommodation", "textbook", "aid"]
    education[fees] = education[fees].fillna(0)
    education["net"] = (
        education["tuition"] + education["accommodation"] + education["textbook"] - education["aid"]
    ).clip(lower=0)
    education_cost = education.groupby("household_id")["net"].sum()
    latest = (
        education.sort_values(["id_number", "record_date", "record_id"])
        .groupby("id_number")
        .tail(1)
    )
    dropout = set(
        latest[(latest["status"] == "辍学") & latest["age"].between(*school)]["household_id"]
    )

    traffic = as_of("traffic", ["accident_id", "id_number"], "accident_date")
    traffic["net"] = (traffic["direct_loss"].fillna(0) - traffic["compensation"].fillna(0)).clip(
        lower=0
    )
    accident_loss = traffic.groupby("household_id")["net"].sum()
    serious = set(
        traffic[traffic["injury"].isin(["重伤", "死亡"]) & traffic["age"].between(*work)][
            "household_id"
        ]
    )

    civil = as_of("civil", ["id_number", "assistance_type", "event", "event_date"], "event_date")
    qualifies = (civil["assistance_type"] == "临时救助") | (
        civil["assistance_type"].isin(["低保", "特困供养"]) & (civil["event"] == "新增")
    )
    assistance = set(civil[qualifies]["household_id"])

    disability = as_of("disability", ["certificate_no"], "issue_date")
    new_severe = set(disability[disability["grade"].isin(severe)]["household_id"])

    households["medical"] = medical_oop.reindex(households.index).fillna(0).round(2)
    households["education"] = education_cost.reindex(households.index).fillna(0).round(2)
    households["loss"] = accident_loss.reindex(households.index).fillna(0).round(2)

    def codes(row: Any) -> tuple[str, ...]:
        kind = row["household_type"] if isinstance(row["household_type"], str) else None
        threshold = medical_threshold.get(
            kind or DEFAULT_HOUSEHOLD_TYPE, medical_threshold[DEFAULT_HOUSEHOLD_TYPE]
        )
        hid, income = row.name, row["income"]
        has_income = not pd.isna(income)
        rigid = round(row["medical"] + row["education"] + row["loss"], 2)
        found = {
            "MEDICAL": row["medical"] >= threshold,
            "EDUCATION": row["education"] > education_threshold,
            "DROPOUT": hid in dropout,
            "ACCIDENT": row["loss"] > accident_threshold or hid in serious,
            "DISABILITY": hid in new_severe,
            "ASSISTANCE": hid in assistance,
            "LOW_INCOME": has_income and income < line,
            "SPENDING": has_income and rigid > round(income * row["size"], 2),
        }
        return tuple(code for code, hit in found.items() if hit)

    households["codes"] = households.apply(codes, axis=1)
    listed = households[households["codes"].map(len) > 0]
    return {(str(hid), tuple(c)) for hid, c in listed["codes"].items()}


# ---------------------------------------------------------------- the whole bench


@dataclass
class BenchResult:
    size: BenchSize
    folder: Path
    households: int  # as generated, in the screened month's roster
    persons: int
    generation: Measure | None  # None: the cached inbox was used
    setup: list[Measure]
    stages: StagesResult
    end_to_end: Measure
    machine: dict[str, str]
    date: str
    cli_start: float = math.nan  # seconds before `screening --help` has printed (median)
    start_up: dict[str, float] = field(default_factory=dict)  # command → median seconds
    load: str = ""  # the machine's load average when the bench ended

    @property
    def whole_floor_ratio(self) -> float:
        """The monthly run end to end ÷ the whole-run floor (target < 4 at county size)."""
        whole = self.stages.whole_floor
        return _ratio(self.end_to_end.seconds, whole.seconds) if whole else math.nan

    @property
    def floor_ratio(self) -> float:
        """Screen step ÷ floor (target ≤ 2)."""
        return _ratio(self.stages.screen_step.seconds, self.stages.floor.seconds)

    @property
    def naive_ratio(self) -> float:
        """Naive ÷ screen step (target ≥ 10); nan when the naive was not run."""
        naive = self.stages.naive
        return _ratio(naive.seconds, self.stages.screen_step.seconds) if naive else math.nan

    @property
    def floor_cpu_ratio(self) -> float:
        """The same by CPU time: the work done, which other processes on the machine
        disturb far less than the wall time."""
        return _ratio(self.stages.screen_step.cpu_seconds, self.stages.floor.cpu_seconds)

    @property
    def naive_cpu_ratio(self) -> float:
        naive = self.stages.naive
        return _ratio(naive.cpu_seconds, self.stages.screen_step.cpu_seconds) if naive else math.nan

    @property
    def agrees(self) -> bool:
        return not self.stages.floor_diff and not self.stages.naive_diff


# `screening --help` must answer at once: the CLI imports its heavy libraries lazily.
CLI_START_TARGET = 0.5
CLI_START_REPEATS = 5


def cli_start_seconds(repeats: int = CLI_START_REPEATS) -> float:
    """The median wall time of `screening --help` in a fresh process (the console script
    beside this Python, as an operator runs it); bench_whole.command_seconds measures it
    with byte-compiled modules, as an installed program has them."""
    return bench_whole.command_seconds(["--help"], repeats)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def machine() -> dict[str, str]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / (1 << 30):.1f} GiB",
        "python": platform.python_version(),
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "os": platform.platform(),
    }


def _phase(isolate: bool, fn: Callable[..., T], *args: Any) -> T:
    """Run a phase in a fresh spawned process (so its peak RSS is its own), or inline."""
    if not isolate:
        return fn(*args)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def run_bench(
    size: BenchSize,
    cache: Path,
    *,
    keep: bool = False,
    isolate: bool = True,
    profile: bool = False,
    say: Callable[[str], None] = lambda _text: None,
) -> BenchResult:
    if size.months < 2:
        raise BenchError("the bench needs at least two months: one earlier, one screened")
    folder = cache / size.cache_key()
    inbox, work = folder / "inbox", folder / "work"
    params_file = size.params_file(folder)
    generation = None
    if not (inbox / "manifest.json").is_file():
        need, free = generator_peak_estimate(size), psutil.virtual_memory().available
        if need > free:
            raise BenchError(
                f"generating {size.name} ({size.households:,} households × {size.months} "
                f"months) needs about {need / (1 << 30):.0f} GiB; "
                f"{free / (1 << 30):.0f} GiB is available"
            )
        say(f"generating {size.households:,} households × {size.months} months in {inbox} …")
        folder.mkdir(parents=True, exist_ok=True)
        generation = _phase(isolate, _generate, inbox, size)
    manifest = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))
    period = size.periods[-1]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        setup_db = work / "setup.duckdb"
        say(f"setup: a database holding {size.periods[0]} … {size.periods[-2]} …")
        setup = _phase(
            isolate, _setup, inbox, setup_db, work / "out-setup", size.periods, params_file
        )
        for name in ("stages", "e2e"):
            shutil.copyfile(setup_db, work / f"{name}.duckdb")
        say(f"monthly run of {period}, stage by stage, and the baselines …")
        stages = _phase(
            isolate,
            _stages,
            inbox,
            work / "stages.duckdb",
            work / "out-stages",
            period,
            size.naive,
            size.repeats,
            work / "profiles" if profile else None,
            params_file,
        )
        say(f"monthly run of {period}, end to end …")
        e2e = _phase(
            isolate, _end_to_end, inbox, work / "e2e.duckdb", work / "out-e2e", period, params_file
        )
        say("start-up of the command line …")
        e2e_db = work / "e2e.duckdb"
        start = bench_whole.start_up(e2e_db, period, bench_whole.a_listed_household(e2e_db, period))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result = BenchResult(
        size=size,
        folder=folder,
        households=manifest["population"][period]["households"],
        persons=manifest["population"][period]["persons"],
        generation=generation,
        setup=setup,
        stages=stages,
        end_to_end=e2e,
        machine=machine(),
        date=dt.date.today().isoformat(),
        cli_start=start["screening --help"],
        start_up=start,
        load=_load_average(),
    )
    (folder / "last-result.json").write_text(
        json.dumps(_jsonable(result), ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    return result


def _jsonable(result: BenchResult) -> dict[str, Any]:
    data = asdict(result)
    for name in ("floor_ratio", "naive_ratio", "floor_cpu_ratio", "naive_cpu_ratio"):
        data[name] = getattr(result, name)
    data["stages"].pop("profiles", None)
    return data


# ---------------------------------------------------------------- the table


def _mib(n: int) -> str:
    return f"{n / MIB:,.0f}"


def _rate(m: Measure) -> str:
    r = m.rows_per_second
    return "" if math.isnan(r) or not m.rows else f"{r:,.0f}"


def _row(m: Measure, indent: str = "  ") -> str:
    rows = f"{m.rows:,}" if m.rows else ""
    return (
        f"{indent}{m.name:<38} {m.seconds:>8.2f} {m.cpu_seconds:>8.2f} {_mib(m.peak_rss):>9} "
        f"{rows:>11} {_rate(m):>10}  {m.unit}"
    ).rstrip()


HEADER = f"  {'':<38} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'rows':>11} {'rows/s':>10}"


def render(result: BenchResult) -> str:
    s, st = result.size, result.stages
    period = s.periods[-1]
    lines = [
        f"screening bench — {s.name}: {result.households:,} households, "
        f"{result.persons:,} persons, "
        f"{s.months} months ({s.periods[0]} … {period}), screening {period}",
        f"machine: {result.machine['cpu']}, {result.machine['cores']} cores, "
        f"{result.machine['memory']}; Python {result.machine['python']}, "
        f"polars {result.machine['polars']}, DuckDB {result.machine['duckdb']}; {result.date}",
        f"inbox: {result.folder / 'inbox'}"
        + (
            f" (generated in {result.generation.seconds:.1f} s, "
            f"peak {_mib(result.generation.peak_rss)} MiB)"
            if result.generation
            else " (cached)"
        ),
        "",
        f"setup: the database before {period}",
        HEADER,
        *(_row(m) for m in result.setup),
        "",
        f"monthly run of {period}, stage by stage",
        HEADER,
        *(_row(m) for m in st.stages),
        *([_row(st.publish, "    ")] if st.publish else []),
        _row(
            Measure(
                "total of the stages",
                seconds=sum(m.seconds for m in st.stages),
                cpu_seconds=sum(m.cpu_seconds for m in st.stages),
                peak_rss=max(m.peak_rss for m in st.stages),
            )
        ),
        _row(result.end_to_end),
        "",
        f"screening as of {period}: the pipeline against its baselines "
        f"(best of {s.repeats}; {st.listed:,} of {st.households:,} households listed)",
        HEADER,
        _row(st.screen_step),
        _row(st.floor),
        *([_row(st.naive)] if st.naive else []),
        *([_row(st.whole_floor)] if st.whole_floor else []),
        "",
        f"  screen step ÷ floor = {result.floor_ratio:.2f}× (target ≤ {FLOOR_TARGET:g}×)"
        + _verdict(result.floor_ratio <= FLOOR_TARGET)
        + f"; by CPU time {result.floor_cpu_ratio:.2f}×",
    ]
    if st.naive:
        lines.append(
            f"  naive ÷ screen step = {result.naive_ratio:.1f}× (target ≥ {NAIVE_TARGET:g}×)"
            + _verdict(result.naive_ratio >= NAIVE_TARGET)
            + f"; by CPU time {result.naive_cpu_ratio:.1f}×"
        )
    if s.name in TARGETS:
        seconds, rss = TARGETS[s.name]
        e2e = result.end_to_end
        lines.append(
            f"  end to end {e2e.seconds:.1f} s (target < {seconds:g} s)"
            + _verdict(e2e.seconds < seconds)
            + f"; peak RSS {_mib(e2e.peak_rss)} MiB (target < {_mib(rss)} MiB)"
            + _verdict(e2e.peak_rss < rss)
        )
    if st.link is not None:
        title = (
            f"linkage of {period}: records whose ID number reaches nobody, against the "
            f"roster in force ({st.roster:,} persons)"
        )
        lines += ["", title, HEADER, _row(st.link)]
        if s.name in LINK_TARGETS:
            lines.append(
                f"  linkage {st.link.seconds:.1f} s (target < {LINK_TARGETS[s.name]:g} s)"
                + _verdict(st.link.seconds < LINK_TARGETS[s.name])
            )
    lines += _issue_20_targets(result)
    lines.append(
        f"  screening --help prints in {result.cli_start:.2f} s (median of "
        f"{CLI_START_REPEATS}; target < {CLI_START_TARGET:g} s)"
        + _verdict(result.cli_start < CLI_START_TARGET)
    )
    for command, seconds in result.start_up.items():
        if command != "screening --help":
            lines.append(
                f"  {command} (against this database) takes {seconds:.2f} s (median of "
                f"{CLI_START_REPEATS}; target < {CLI_START_TARGET:g} s)"
                + _verdict(seconds < CLI_START_TARGET)
            )
    if result.load:
        lines.append(f"  load average when the bench ended: {result.load}")
    lines.append("")
    lines += _agreement("floor", st.floor_diff, st.listed)
    if st.naive:
        lines += _agreement("naive", st.naive_diff, st.listed)
    for stage, text in st.profiles.items():
        lines += ["", f"profile: {stage} (timings above include the profiler's overhead)", text]
    return "\n".join(lines)


def _issue_20_targets(result: BenchResult) -> list[str]:
    """Publishing a long list (SIZE=biglist) and the county's run against its whole floor."""
    st, lines = result.stages, []
    if st.publish is not None and result.size.name == "biglist":
        lines.append(
            f"  publishing {st.publish.rows:,} listed households takes {st.publish.seconds:.1f} s "
            f"(target < {bench_whole.PUBLISH_SECONDS:g} s)"
            + _verdict(st.publish.seconds < bench_whole.PUBLISH_SECONDS)
        )
    if st.whole_floor is not None:
        seconds = result.end_to_end.seconds
        line = (
            f"  end to end ÷ whole-run floor = {result.whole_floor_ratio:.2f}× "
            f"({seconds:.1f} s ÷ {st.whole_floor.seconds:.1f} s)"
        )
        if result.size.name == "county":
            line += (
                f" (targets < {bench_whole.COUNTY_FLOORS:g}× and < "
                f"{bench_whole.COUNTY_SECONDS:g} s)"
                + _verdict(
                    result.whole_floor_ratio < bench_whole.COUNTY_FLOORS
                    and seconds < bench_whole.COUNTY_SECONDS
                )
            )
        lines.append(line)
    return lines


def _load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return ""
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def _verdict(ok: bool) -> str:
    return " ok" if ok else " MISSED"


def _agreement(name: str, diff: list[str], listed: int) -> list[str]:
    if not diff:
        return [f"  {name} agrees with screen.screen: same {listed:,} households, same codes"]
    banner = f"!!! MISMATCH: the {name} and screen.screen disagree — a bug in one of them !!!"
    return [banner, *(f"    {line}" for line in diff)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m screening.bench",
        description="Benchmark the monthly run on a synthetic county against a SQL floor "
        "and a pandas naive.",
    )
    # "counties": a province's ten counties, one after another and on a Dask cluster
    # (dev/bench_province.py).
    parser.add_argument("size", choices=sorted([*SIZES, "counties"]), nargs="?", default="small")
    parser.add_argument("--keep", action="store_true", help="keep the databases and outputs")
    parser.add_argument(
        "--cache", type=Path, default=Path(".bench"), help="where inboxes are cached (.bench)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile every stage and print the top calls"
    )
    args = parser.parse_args(argv)
    if args.size == "counties":
        from dev import bench_province

        return bench_province.main(["--cache", str(args.cache)] + ["--keep"] * args.keep)
    try:
        result = run_bench(
            SIZES[args.size],
            args.cache,
            keep=args.keep,
            profile=args.profile,
            say=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(render(result))
    return 0 if result.agrees else 1


if __name__ == "__main__":
    # Run from the importable module, not __main__, so that the spawned phase processes
    # find the phase functions under the same name.
    from dev.bench import main as _main

    sys.exit(_main())
