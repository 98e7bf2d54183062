"""Benchmark of a province's month: ten counties of 100,000 persons screened one after
another (a loop of `screening run`, as a shell script does it today) and as one
`screening province run` on this machine's local Dask cluster.

    make bench SIZE=counties
    python -m dev.bench_province [--counties 10] [--persons 100000] [--workers N]
                                 [--cache DIR] [--keep]

The counties (`sample.generate`, one seed each) are generated once and cached under
`<cache>/counties-<hash>/county-NN/inbox`, the hash covering their number and size, the
periods, the seed and the generator's source. Each county's first month is screened once
(*setup*, so that the measured month has a previous list and a database to add to); the
second month is then screened twice, from two copies of that state:

- **one after another**: `screening run` per county in a fresh process, in order; wall
  time, CPU time and peak RSS of each process (`os.wait4`);
- **province**: `province_screening` (the flow `screening province run` runs) in a fresh
  process on a local cluster (by default one worker per core); the wall time of the whole
  flow, each county task's time and the peak RSS of each worker process (the kernel's
  high-water mark of the worker, read after each of its counties). Prefect's temporary
  server is started first and timed on its own: with `prefect server start` running, as
  in production, a run does not pay it.

Both must publish the same lists (households per county, township and colour), or the
bench fails (exit status 1). The machine's load average is recorded at each phase: the
machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dev import bench, sample

PERSONS_PER_HOUSEHOLD = 3.51  # the generator's household shapes (dev/bench.py)
PERIODS = ("2026-08", "2026-09")  # the first is screened in the setup, the second measured
MIB = bench.MIB


@dataclass
class CountyRun:
    county: str
    seconds: float
    cpu_seconds: float = math.nan
    peak_rss: int = 0
    worker: str = ""
    households: int = 0  # listed


@dataclass
class ProvinceBench:
    counties: int
    households: int  # per county
    persons: int  # per county, as generated for the screened month
    workers: int
    generation_seconds: float | None  # None: cached
    setup_seconds: float
    sequential: list[CountyRun]
    sequential_seconds: float
    server_seconds: float  # Prefect's temporary server, started before the flow
    province: list[CountyRun]
    province_seconds: float
    load: dict[str, tuple[float, float, float]]
    machine: dict[str, str]
    date: str
    folder: Path
    agree: bool
    disagreements: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return self.sequential_seconds / self.province_seconds

    def peak_per_worker(self) -> dict[str, int]:
        peaks: dict[str, int] = {}
        for run in self.province:
            peaks[run.worker] = max(peaks.get(run.worker, 0), run.peak_rss)
        return peaks


def cache_key(counties: int, households: int) -> str:
    generator = hashlib.sha256(Path(sample.__file__).read_bytes()).hexdigest()
    text = json.dumps(
        {
            "counties": counties,
            "households": households,
            "periods": PERIODS,
            "seed": bench.SEED,
            "generator": generator,
        },
        sort_keys=True,
    )
    return f"counties-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def county_name(i: int) -> str:
    return f"county-{i:02d}"


def _generate(inbox: Path, households: int, seed: int) -> int:
    """One county into a temporary folder renamed when complete (never half-cached)."""
    partial = inbox.with_name(inbox.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    made = sample.generate(partial, households, list(PERIODS), seed)
    partial.rename(inbox)
    return int(made["population"][PERIODS[-1]]["persons"])


def _setup(folder: Path, names: list[str], work: Path) -> None:
    """Each county's first month screened into its own database and output folder."""
    from screening import contract
    from screening.pipeline.run import run_period

    for name in names:
        root = work / name
        run_period(
            db=root / "screening.duckdb",
            inbox=folder / name / "inbox",
            out=root / "out",
            period=PERIODS[0],
            accept_held=contract.SOURCES,  # a small synthetic county may trip a gate
        )


def _screening_run(folder: Path, work: Path, name: str) -> CountyRun:
    """`screening run` of one county in its own process, measured by the kernel."""
    script = Path(sys.executable).parent / "screening"
    root = work / name
    args = [str(script), "run", "--period", PERIODS[-1], "--inbox", str(folder / name / "inbox")]
    args += ["--db", str(root / "screening.duckdb"), "--out", str(root / "out")]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    errors = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if code != 0:
        raise bench.BenchError(f"screening run of {name} exited {code}: {errors.strip()[-300:]}")
    return CountyRun(
        name,
        seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss=usage.ru_maxrss * 1024,
        households=_listed(root / "out"),
    )


def _listed(out: Path) -> int:
    import polars as pl

    return pl.read_parquet(out / PERIODS[-1] / "suspects.parquet").height


def _province(config_file: Path, workers: int | None) -> tuple[float, float, dict[str, Any]]:
    """The province flow in this (fresh) process: (server seconds, flow seconds, outcome)."""
    from prefect.client.orchestration import get_client

    from screening.province.flow import run_province

    started = time.perf_counter()
    with get_client(sync_client=True) as client:  # starts Prefect's temporary server
        client.hello()
    server = time.perf_counter() - started
    started = time.perf_counter()
    outcome = run_province(config_file, PERIODS[-1], workers=workers)
    seconds = time.perf_counter() - started
    return (
        server,
        seconds,
        {
            "workers": outcome.workers,
            "exit_code": outcome.exit_code,
            "results": [
                {
                    "county": r.county,
                    "status": r.status,
                    "seconds": r.seconds,
                    "cpu_seconds": r.cpu_seconds,
                    "peak_rss": r.peak_rss,
                    "worker": r.worker,
                    "listed": {f"{t}/{c}": n for t, c, n in r.listed},
                }
                for r in outcome.results
            ],
        },
    )


def _spawned(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _province_file(path: Path, work: Path, folder: Path, names: list[str]) -> Path:
    lines = [f"out: {work / 'province-out'}", "counties:"]
    for name in names:
        root = work / name
        lines += [f"  - name: {name}", f"    inbox: {folder / name / 'inbox'}"]
        lines += [f"    db: {root / 'screening.duckdb'}", f"    out: {root / 'out'}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _township_counts(out: Path) -> dict[str, int]:
    import polars as pl

    lists = pl.read_parquet(out / PERIODS[-1] / "suspects.parquet")
    return {f"{t}/{c}": n for t, c, n in lists.group_by("township", "colour").len().iter_rows()}


def run_bench(
    cache: Path,
    *,
    counties: int = 10,
    persons: int = 100_000,
    workers: int | None = None,
    keep: bool = False,
    say: Any = lambda _text: None,
) -> ProvinceBench:
    households = round(persons / PERSONS_PER_HOUSEHOLD)
    # Absolute: the province file names the counties' folders, read from elsewhere.
    folder = cache.absolute() / cache_key(counties, households)
    names = [county_name(i) for i in range(1, counties + 1)]
    load: dict[str, tuple[float, float, float]] = {"start": os.getloadavg()}
    generation = None
    missing = [n for n in names if not (folder / n / "inbox" / "manifest.json").is_file()]
    if missing:
        say(f"generating {len(missing)} count(ies) of {households:,} households in {folder} …")
        started = time.perf_counter()
        for name in missing:
            (folder / name).mkdir(parents=True, exist_ok=True)
            _spawned(_generate, folder / name / "inbox", households, bench.SEED + names.index(name))
        generation = time.perf_counter() - started
    manifest = json.loads((folder / names[0] / "inbox" / "manifest.json").read_text("utf-8"))
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    try:
        say(f"setup: each county's {PERIODS[0]} …")
        started = time.perf_counter()
        _spawned(_setup, folder, names, work / "setup")
        setup = time.perf_counter() - started
        for phase in ("sequential", "province"):
            shutil.copytree(work / "setup", work / phase)
        load["setup done"] = os.getloadavg()

        say(f"{PERIODS[-1]}: screening run of each county, one after another …")
        started = time.perf_counter()
        sequential = [_screening_run(folder, work / "sequential", n) for n in names]
        sequential_seconds = time.perf_counter() - started
        load["sequential done"] = os.getloadavg()

        say(f"{PERIODS[-1]}: the province flow on the local cluster …")
        config_file = _province_file(work / "province.yaml", work / "province", folder, names)
        home = tempfile.mkdtemp(prefix="bench-prefect-home-")
        saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_URL")}
        os.environ["PREFECT_HOME"] = home  # a private, temporary Prefect
        os.environ.pop("PREFECT_API_URL", None)
        try:
            server, seconds, outcome = _spawned(_province, config_file, workers)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            shutil.rmtree(home, ignore_errors=True)
        load["province done"] = os.getloadavg()
        disagreements = []
        for r in outcome["results"]:
            if r["status"] != "success":
                disagreements.append(f"{r['county']}: province run {r['status']}")
            expected = _township_counts(work / "sequential" / r["county"] / "out")
            if r["listed"] != expected:
                disagreements.append(f"{r['county']}: {r['listed']} vs {expected}")
        province = [
            CountyRun(
                r["county"],
                r["seconds"],
                cpu_seconds=r["cpu_seconds"],
                peak_rss=r["peak_rss"],
                worker=r["worker"],
                households=sum(r["listed"].values()),
            )
            for r in outcome["results"]
        ]
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    result = ProvinceBench(
        counties=counties,
        households=households,
        persons=int(manifest["population"][PERIODS[-1]]["persons"]),
        workers=len({r.worker for r in province}),
        generation_seconds=generation,
        setup_seconds=setup,
        sequential=sequential,
        sequential_seconds=sequential_seconds,
        server_seconds=server,
        province=province,
        province_seconds=seconds,
        load=load,
        machine=bench.machine(),
        date=dt.date.today().isoformat(),
        folder=folder,
        agree=not disagreements,
        disagreements=disagreements,
    )
    (folder / "last-result.json").write_text(
        json.dumps(asdict(result), ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )
    return result


def startup_seconds(result: ProvinceBench) -> float:
    """The flow's time outside its counties: starting the cluster and the workers' imports,
    waiting for the last county of an uneven wave, the roll-up — the flow's wall time less
    the counties' task time per worker."""
    return max(
        0.0, result.province_seconds - sum(r.seconds for r in result.province) / result.workers
    )


def projection(result: ProvinceBench, counties: int, workers: int) -> tuple[float, int]:
    """(wall seconds, memory bytes) for `counties` counties like these on `workers` workers
    with a core each: the counties go through the workers in waves of `workers`, each
    taking the CPU time a county task took here (on a core of its own, wall ≈ CPU; on a
    shared machine the measured wall time is inflated by the others' load), after the
    startup measured here. Memory: every worker at the highest worker peak measured."""
    cpu = [r.cpu_seconds for r in result.province]
    per_county = sum(cpu) / len(cpu)
    peak = max(result.peak_per_worker().values())
    return startup_seconds(result) + math.ceil(counties / workers) * per_county, workers * peak


def render(result: ProvinceBench) -> str:
    seq, prov = result.sequential, result.province
    mean_seq = sum(r.seconds for r in seq) / len(seq)
    mean_cpu = sum(r.cpu_seconds for r in seq) / len(seq)
    mean_task = sum(r.seconds for r in prov) / len(prov)
    mean_task_cpu = sum(r.cpu_seconds for r in prov) / len(prov)
    lines = [
        f"screening bench — a province: {result.counties} counties of "
        f"{result.households:,} households ({result.persons:,} persons), screening "
        f"{PERIODS[-1]} after {PERIODS[0]}",
        f"machine: {result.machine['cpu']}, {result.machine['cores']} cores, "
        f"{result.machine['memory']}; {result.date}",
        "load average (1, 5, 15 min): "
        + "; ".join(f"{k} {a:.1f} {b:.1f} {c:.1f}" for k, (a, b, c) in result.load.items()),
        f"inboxes: {result.folder}"
        + (
            f" (generated in {result.generation_seconds:.0f} s)"
            if result.generation_seconds is not None
            else " (cached)"
        ),
        f"setup ({PERIODS[0]} of every county, one process): {result.setup_seconds:.1f} s",
        "",
        "one after another: `screening run` per county, each in its own process",
        f"  {'county':<12} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'listed':>7}",
        *(
            f"  {r.county:<12} {r.seconds:>8.1f} {r.cpu_seconds:>8.1f} "
            f"{r.peak_rss / MIB:>9,.0f} {r.households:>7,}"
            for r in seq
        ),
        f"  {'total':<12} {result.sequential_seconds:>8.1f} "
        f"{sum(r.cpu_seconds for r in seq):>8.1f} {max(r.peak_rss for r in seq) / MIB:>9,.0f}",
        "",
        f"province: one flow on a local cluster of {result.workers} worker process(es)",
        f"  {'county':<12} {'task s':>8} {'cpu s':>8} {'worker peak MiB':>16}  worker",
        *(
            f"  {r.county:<12} {r.seconds:>8.1f} {r.cpu_seconds:>8.1f} "
            f"{r.peak_rss / MIB:>16,.0f}  {r.worker}"
            for r in prov
        ),
        f"  flow, end to end: {result.province_seconds:.1f} s (Prefect's temporary server "
        f"started before it in {result.server_seconds:.1f} s)",
        "  peak RSS per worker: "
        + ", ".join(f"{w} {p / MIB:,.0f} MiB" for w, p in result.peak_per_worker().items()),
        "",
        f"  one after another ÷ province = {result.speedup:.2f}× "
        f"(mean per county: {mean_seq:.1f} s wall, {mean_cpu:.1f} s CPU alone; "
        f"{mean_task:.1f} s wall, {mean_task_cpu:.1f} s CPU as a task)",
        "",
        f"100 counties like these, from the CPU time per county task (a core per worker) "
        f"after {startup_seconds(result):.0f} s of startup:",
        f"  {'workers':>7} {'wall':>10} {'memory':>10}",
    ]
    for workers in (2, 8, 16, 32, 64):
        seconds, memory = projection(result, 100, workers)
        lines.append(f"  {workers:>7} {seconds / 60:>8.1f} min {memory / (1 << 30):>7.1f} GiB")
    lines.append("")
    if result.agree:
        lines.append("  both published the same lists (households per county, township, colour)")
    else:
        lines.append("!!! MISMATCH between the two ways !!!")
        lines += [f"    {d}" for d in result.disagreements]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.bench_province", description=__doc__)
    parser.add_argument("--counties", type=int, default=10)
    parser.add_argument("--persons", type=int, default=100_000, help="per county")
    parser.add_argument("--workers", type=int, help="local workers (default: one per core)")
    parser.add_argument("--cache", type=Path, default=Path(".bench"))
    parser.add_argument("--keep", action="store_true", help="keep the databases and outputs")
    args = parser.parse_args(argv)
    try:
        result = run_bench(
            args.cache,
            counties=args.counties,
            persons=args.persons,
            workers=args.workers,
            keep=args.keep,
            say=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except bench.BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(render(result))
    return 0 if result.agree else 1


if __name__ == "__main__":
    # Run from the importable module, so that spawned processes find the functions.
    from dev.bench_province import main as _main

    sys.exit(_main())
