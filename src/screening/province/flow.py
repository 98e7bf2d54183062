"""A province's month as one Prefect flow: each county a task on a Dask cluster
(prefect-dask's `DaskTaskRunner`), then the roll-up.

    province-screening (this process)
      └─ province-counties, on a DaskTaskRunner: one `county` task per county of the file
           (screened when selected, otherwise only read) on the workers
      └─ roll-up: province_summary.parquet, province.duckdb, run-report.html

The cluster is a `LocalCluster` of processes sized to the machine (one county at a time
per worker, as many workers as cores or counties to screen, whichever is fewer), or the
existing scheduler at `dask_address`. The outer flow picks the task runner from its
parameters and runs the counties as a subflow, so that the deployment `province serve`
registers can use either.

The tasks pass only the county's settings (paths) and get back a `CountyResult` (counts and
paths). A county that does not succeed fails its task (its result rides on the exception),
the others go on, and after the roll-up the flow run fails with one line naming them
(`ProvinceIncomplete`, which carries every county's result). Local workers get the
Prefect server's address and PREFECT_HOME in their environment, so their task runs report
to the same server (without PREFECT_API_URL, the temporary server Prefect starts for this
process); the workers of an existing scheduler must be able to reach the server, so
`dask_address` needs PREFECT_API_URL. The whole flow holds province.duckdb's lock: a second
province run of the same province is refused at once.

    from screening.province.flow import province_screening
    province_screening(config="province.yaml", period="2026-09")
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect_dask import DaskTaskRunner

from screening import ids
from screening.db import lock
from screening.logs import quieter
from screening.orchestration.flow import _package_warnings
from screening.orchestration.schedule import last_month
from screening.periods import check_period
from screening.province import config, county, rollup
from screening.province.county import FAILED, STATUS_WORDS, CountyResult
from screening.publish.files import ensure_dir, township_folders

# Seconds a worker may take to send its last logs and task run states.
DRAIN_SECONDS = 30.0


class ProvinceIncomplete(Exception):
    """Some counties of the run did not succeed; the roll-up was written all the same.
    `outcome` holds every county's result."""

    def __init__(self, outcome: ProvinceOutcome) -> None:
        self.outcome = outcome
        failed = [r for r in outcome.screened if not r.ok]
        names = "、".join(f"{r.county} {STATUS_WORDS.get(r.status, r.status)}" for r in failed)
        words = ", ".join(f"{r.county} {r.status}" for r in failed)
        super().__init__(
            f"{len(failed)} 个县未成功 {len(failed)} of {len(outcome.screened)} counties did "
            f"not succeed: {names} ({words}); 汇总已写入 roll-up written to {outcome.summary}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.outcome,))


class CountyNotScreened(Exception):
    """A county's task failed: its run did not succeed. `result` says how."""

    def __init__(self, result: CountyResult) -> None:
        self.result = result
        super().__init__(
            f"县 {result.county} {STATUS_WORDS.get(result.status, result.status)} "
            f"{result.status}: {result.message}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.result,))


@dataclass(frozen=True)
class ProvinceOutcome:
    period: str
    results: tuple[CountyResult, ...]  # every county of the file, in its order
    summary: Path
    database: Path
    report: Path
    workers: str  # the cluster: "local: 4 workers" or the scheduler's address

    @property
    def screened(self) -> list[CountyResult]:
        return [r for r in self.results if r.ran]

    @property
    def exit_code(self) -> int:
        """0 when every county screened succeeded; else the gravest of their exit statuses
        (1 an internal error, 2 a failure the county can fix, 3 only held deliveries)."""
        codes = {r.exit_code for r in self.screened if r.exit_code}
        for code in (1, 2, 3):
            if code in codes:
                return code
        return 0


# ---------------------------------------------------------------- the cluster


def local_workers(counties: int, wanted: int | None = None) -> int:
    """Workers of the local cluster: as asked, else one per core, no more than the
    counties to screen (each runs one county at a time)."""
    if wanted:
        return wanted
    return max(1, min(counties, os.cpu_count() or 1))


def worker_environment(api_url: str | None, workers: int) -> dict[str, str]:
    """What a local worker process needs in its environment: the same Prefect server and
    home, and its share of the cores for polars."""
    env = {
        # polars sizes its thread pool once, from this: the workers share the cores.
        "POLARS_MAX_THREADS": str(max(1, (os.cpu_count() or 1) // workers)),
        "DASK_LOGGING__DISTRIBUTED": "warning",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    for name in ("PREFECT_HOME", "PREFECT_LOGGING_LEVEL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _api_url() -> str | None:
    """The Prefect server this flow run reports to (the temporary one when none is set)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url) or None


def task_runner(
    counties: int, dask_address: str | None, workers: int | None
) -> tuple[DaskTaskRunner, str]:
    """The Dask task runner for `counties` counties to screen, and how to name it."""
    if dask_address:
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise config.ProvinceConfigError(
                "使用 --dask-address 时需要 Prefect 服务器 the workers of an existing Dask "
                "scheduler report to a Prefect server: start `prefect server start` and set "
                "PREFECT_API_URL for this process and the workers (docs/scheduling.md)"
            )
        return DaskTaskRunner(address=dask_address), f"Dask scheduler {dask_address}"
    n = local_workers(counties, workers)
    cluster = {
        "n_workers": n,
        "threads_per_worker": 1,
        "processes": True,
        "env": worker_environment(_api_url(), n),
    }
    return DaskTaskRunner(cluster_kwargs=cluster), f"local cluster of {n} worker process(es)"


# ---------------------------------------------------------------- tasks and flows


@task(name="county", cache_policy=NO_CACHE, task_run_name="{spec.name}")
def county_task(
    spec: config.County,
    period: str,
    screen: bool,
    province_out: Path,
    folder: str,
    busy_timeout: float,
) -> CountyResult:
    """One county on a worker: its run (when `screen`), then what the province reads of it.
    Fails, carrying the result, when the county's run did not succeed."""
    logger = get_run_logger()
    with _package_warnings():
        result = county.process(
            spec,
            period,
            screen=screen,
            province_out=province_out,
            folder=folder,
            busy_timeout=busy_timeout,
        )
    logger.info(
        "县 %s %s %s：名单 %d 户 households listed, 批次 run %s (%.1f s, worker %s)",
        result.county,
        STATUS_WORDS.get(result.status, result.status),
        result.status,
        result.households,
        result.run_id or "—",
        result.seconds,
        result.worker,
    )
    if screen and not result.ok:
        raise CountyNotScreened(result)
    return result


def _lost(spec: config.County, period: str, screen: bool, found: object) -> CountyResult:
    """A task that ended without a result of its own (its worker died, say)."""
    from screening.pipeline.errors import one_line

    exc = found if isinstance(found, BaseException) else RuntimeError(repr(found))
    return CountyResult(
        county=spec.name,
        period=period,
        ran=screen,
        status=FAILED,
        exit_code=1 if screen else None,
        run_id=None,
        message=one_line(exc),
    )


# Its parameters are this module's dataclasses, passed as they are.
@flow(name="province-counties", log_prints=False, validate_parameters=False)
def province_counties(
    province: config.Province, period: str, selected: list[str], folders: dict[str, str]
) -> list[CountyResult]:
    """Every county of the province as a task on this flow's Dask task runner: the
    `selected` ones screened, the others read."""
    futures = [
        county_task.submit(
            spec,
            period,
            spec.name in selected,
            province.out,
            folders[spec.name],
            province.busy_timeout,
        )
        for spec in province.counties
    ]
    results = []
    for spec, future in zip(province.counties, futures, strict=True):
        try:
            found: object = future.result(raise_on_failure=False)
        except Exception as exc:  # the worker died (KilledWorker) or could not be reached
            found = exc
        if isinstance(found, CountyNotScreened):
            found = found.result
        if not isinstance(found, CountyResult):
            found = _lost(spec, period, spec.name in selected, found)
        results.append(found)
    _drain_workers()
    return results


async def _drain_prefect() -> None:
    """On each worker, before the cluster closes: send what Prefect still holds (logs, and
    the events that carry task run states), so that a worker stopped at the cluster's close
    leaves no task run without its final state. A coroutine: distributed runs it on the
    worker's event loop, where Prefect's drain must be awaited."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        waiting = service.drain_all(timeout=DRAIN_SECONDS)
        if inspect.isawaitable(waiting):
            await waiting


def _drain_workers() -> None:
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if isinstance(runner, DaskTaskRunner):
        with suppress(Exception):  # a worker already gone has nothing left to send
            runner.client.run(_drain_prefect)


@task(name="roll-up", cache_policy=NO_CACHE)
def roll_up_task(
    province: config.Province, period: str, results: list[CountyResult]
) -> rollup.RollUp:
    done = rollup.roll_up(
        province.out,
        period,
        results,
        busy_timeout=province.busy_timeout,
        config_file=province.path.absolute(),
    )
    get_run_logger().info(
        "全省汇总 province roll-up: %s, %s, %s", done.summary, done.database, done.report
    )
    return done


@flow(name="province-screening", log_prints=False)
def province_screening(
    config_file: str,
    period: str | None = None,
    counties: list[str] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    busy_timeout: float | None = None,
) -> ProvinceOutcome:
    """Screen `period` (default: last month, Asia/Shanghai) in every county of the province
    file (or the named `counties`) on a Dask cluster, then roll the province up. Fails with
    `ProvinceIncomplete` (the roll-up written) when a county screened did not succeed."""
    logger = get_run_logger()
    province = config.load(config_file, busy_timeout=busy_timeout)
    period = check_period(period or last_month())
    selected = [c.name for c in province.select(counties)]
    folders = township_folders(province.names)
    ensure_dir(province.out)
    # distributed's INFO lines (every connection opened and closed) stay out of the log.
    quiet_dask = quieter("distributed", logging.WARNING)
    with lock.hold(rollup.database_path(province.out)), quiet_dask, _package_warnings():
        runner, cluster = task_runner(
            len(selected), dask_address or province.dask_address, workers or province.workers
        )
        logger.info(
            "省级筛查 %s：%d 个县运行 counties screened, %d 个县读取 read, on a %s",
            period,
            len(selected),
            len(province.counties) - len(selected),
            cluster,
        )
        results = province_counties.with_options(task_runner=runner)(  # type: ignore[arg-type]
            province, period, selected, folders
        )
        done = roll_up_task(province, period, results)
    outcome = ProvinceOutcome(
        period, tuple(results), done.summary, done.database, done.report, cluster
    )
    for r in outcome.screened:
        if not r.ok:
            logger.warning("县 %s %s: %s", r.county, r.status, ids.mask_text(r.message))
    if any(not r.ok for r in outcome.screened):
        raise ProvinceIncomplete(outcome)
    return outcome


def run_province(
    config_file: Path,
    period: str,
    counties: Sequence[str] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    busy_timeout: float | None = None,
) -> ProvinceOutcome:
    """The flow as the command line runs it: the outcome, whether every county succeeded
    or not (`exit_code` says)."""
    try:
        return province_screening(
            config_file=str(Path(config_file).absolute()),
            period=period,
            counties=list(counties or []) or None,
            dask_address=dask_address,
            workers=workers,
            busy_timeout=busy_timeout,
        )
    except ProvinceIncomplete as exc:
        return exc.outcome
