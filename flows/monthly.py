"""The monthly screening run as a Prefect 3 flow: each stage of `screening.run` is a task.

The tasks pass only paths, names and the run id: the frames travel through the run's
work folder. No task is cached (each one changes the database or the published files, so
a cached result would skip real work). Only start and ingest retry, and only on I/O
errors (reading the inbox) or a database held by another process: a rejected file is not
an exception, and the rules or the publication would fail the same way twice.

Logs carry counts, never ID numbers; a failure whose message names one is re-raised with
the number masked. A delivery held by a completeness gate fails the ingest task with
`screening.gates.DeliveryHeld` (the CLI's exit status 3): the run is recorded `held`, the
flow run fails with that exception and its one-line message (which gate, the measured
value, the threshold and the command that accepts it), and nothing is published; pass
`accept_held=["medical"]` to accept. Importing this module only defines the flow.

    from flows.monthly import monthly_screening
    monthly_screening(period="2026-09", inbox=Path("inbox"), db=Path("screening.duckdb"))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task

from screening import config, lock, run, store
from screening.gates import DeliveryHeld
from screening.publish import COLOURS
from screening.schedule import last_month

T = TypeVar("T")
# Seconds before each retry: long enough for a network share to come back or an analyst
# to close a session holding the database.
RETRY_DELAYS: list[float] = [10, 60]


def retry_on_io(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only what waiting can fix: an I/O error or a database held by someone else."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return isinstance(exc, OSError | store.DatabaseBusy)


def _stage(func: Callable[..., T], *args: Any) -> T:
    """Call a stage; a failure naming an ID number is re-raised without it, since Prefect
    logs the message and traceback of every failed task."""
    try:
        return func(*args)
    except Exception as exc:
        clean = run.redacted(exc)
        if clean is exc:
            raise
        raise clean from None


@task(
    name="start",
    cache_policy=NO_CACHE,
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_on_io,
)
def start(req: run.RunRequest) -> str:
    run_id = _stage(run.start_run, req)
    get_run_logger().info("run %s started for %s", run_id, req.period)
    return run_id


@task(
    name="ingest",
    cache_policy=NO_CACHE,
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_on_io,
)
def ingest(req: run.RunRequest, run_id: str) -> dict[str, str]:
    """Returns each source's status."""
    results = _stage(run.ingest_inputs, req, run_id)
    logger = get_run_logger()
    for r in results:
        logger.info(
            "%s: %s, %d rows read, %d accepted, %d rejected",
            r.source,
            r.status,
            r.rows_read,
            r.rows_accepted,
            r.rows_rejected,
        )
        if r.status == "kept":  # the stored delivery stays in force: say so loudly
            logger.warning("%s: %s", r.source, run.redact_ids(r.message))
        for warning in r.warnings:
            logger.warning("%s %s: %s", r.source, r.file, run.redact_ids(warning))
    return {r.source: r.status for r in results}


@task(name="screen", cache_policy=NO_CACHE)
def screen(req: run.RunRequest, run_id: str) -> Path:
    """Returns the run's work folder."""
    work = _stage(run.screen_period, req, run_id)
    meta = run.work_meta(work)
    get_run_logger().info(
        "%d households screened, %d listed (%s) in %d townships",
        meta["households"],
        meta["listed"],
        ", ".join(f"{c} {meta['colours'][c]}" for c in COLOURS if c in meta["colours"]) or "none",
        len(meta["all_townships"]),
    )
    return work


@task(name="publish", cache_policy=NO_CACHE)
def publish(req: run.RunRequest, run_id: str, work: Path) -> int:
    """Returns the number of households published."""
    done = _stage(run.publish_run, req, run_id, work)
    scope = req.township or "all townships"
    get_run_logger().info(
        "%d households published for %s, %d files written",
        done.suspects.height,
        scope,
        len(done.written),
    )
    return done.suspects.height


@task(name="finish", cache_policy=NO_CACHE)
def finish(req: run.RunRequest, run_id: str) -> None:
    run.finish_run(req, run_id)


@flow(name="monthly-screening", log_prints=False)
def monthly_screening(
    period: str | None = None,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    township: str | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool = False,
    accept_held: list[str] | None = None,
) -> str:
    """Screen `period` (default: last month, Asia/Shanghai) and publish the lists, as
    `screening run` does. Returns the run id; a failed run is recorded as failed."""
    dbpath = Path(db or config.default_db())
    req = run.RunRequest(
        db=dbpath,
        inbox=Path(inbox or config.default_inbox()),
        out=Path(out or config.default_out(dbpath)),
        period=period or last_month(),
        params_file=params_file,
        aliases_file=aliases_file,
        township=township,
        mask_ids=mask_ids,
        accept_held=tuple(accept_held or ()),
    )
    logger = get_run_logger()
    _stage(run.prepare, req)
    with lock.hold(req.db):
        run_id = start(req)
        try:
            ingest(req, run_id)
            work = screen(req, run_id)
            publish(req, run_id, work)
        except BaseException as exc:
            # A plain call, not a task: it must happen even while the flow is being torn down.
            status = run.run_status(exc)
            recorded = run.fail_run(req, run_id, run.one_line(exc), status)
            logger.error(
                "run %s %s%s", run_id, status, "" if recorded else " (could not record it)"
            )
            if isinstance(exc, DeliveryHeld):
                logger.error("%s", exc)
            raise
        finish(req, run_id)
    logger.info("run %s succeeded", run_id)
    return run_id
