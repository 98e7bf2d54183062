"""The monthly screening run as a Prefect 3 flow: each stage of `run.RUN_STAGES` is a task.

It lives inside the package, so an installed wheel can serve it (`screening serve`); its
deployment's entrypoint is the module path `screening.orchestration.flow.monthly_screening`.

The tasks pass only paths, names and the run id: the frames travel through the run's
work folder. No task is cached (each one changes the database or the published files, so
a cached result would skip real work). Only the stages that waiting can fix (start, and
those `run.RUN_STAGES` marks `retry`) retry, and only on I/O errors (reading the inbox) or
a database held by another process: a rejected file is not an exception, and the rules or
the publication would fail the same way twice.

The run's warnings (a missing source, a stale monitoring line, the scale check, …) are
logged as WARNINGs, each once, and so are the package's own warnings while the flow runs
(waiting for a database an analyst has open). Logs carry counts, never ID numbers; a
failure whose message names one is re-raised with the number masked. A delivery held by a
completeness gate fails the ingest task with `screening.ingest.gates.DeliveryHeld` (the CLI's
exit status 3): the run is recorded `held`, the flow run fails with that exception and its
one-line message (which gate, the measured value, the threshold and the command that
accepts it), and nothing is published; pass `accept_held=["medical"]` to accept.
Importing this module only defines the flow.

    from screening.orchestration.flow import monthly_screening
    monthly_screening(period="2026-09", inbox=Path("inbox"), db=Path("screening.duckdb"))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.exceptions import MissingContextError
from prefect.states import State
from prefect.tasks import Task

from screening import config, ids
from screening.db import lock
from screening.db.connect import DatabaseBusy
from screening.ingest.gates import DeliveryHeld
from screening.ingest.results import STATUS_LABELS, SourceResult
from screening.orchestration.schedule import last_month
from screening.pipeline import errors, run
from screening.pipeline.work import work_meta
from screening.publish import report
from screening.vocab import COLOURS

T = TypeVar("T")
# Seconds before each retry: long enough for a network share to come back or an analyst
# to close a session holding the database.
RETRY_DELAYS: list[float] = [10, 60]


def retry_on_io(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only what waiting can fix: an I/O error or a database held by someone else."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return isinstance(exc, OSError | DatabaseBusy)


def _stage(func: Callable[..., T], *args: Any) -> T:
    """Call a stage; a failure naming an ID number is re-raised without it, since Prefect
    logs the message and traceback of every failed task."""
    try:
        return func(*args)
    except Exception as exc:
        clean = errors.redacted(exc)
        if clean is exc:
            raise
        raise clean from None


class _ToRunLog(logging.Handler):
    """The package's own warnings (screening.*) into the Prefect run's log."""

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(MissingContextError):
            get_run_logger().log(record.levelno, ids.mask_text(record.getMessage()))


@contextmanager
def _package_warnings() -> Iterator[None]:
    handler = _ToRunLog(logging.WARNING)
    package = logging.getLogger("screening")
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)


_RETRYING: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_on_io,
}


@task(name="start", cache_policy=NO_CACHE, **_RETRYING)
def start(req: run.RunRequest) -> str:
    run_id = _stage(run.start_run, req)
    get_run_logger().info("批次 %s 开始筛查 %s run started for %s", run_id, req.period, req.period)
    return run_id


# What each stage's task logs (counts only) and hands back to the flow: never frames.
def _ingested(req: run.RunRequest, results: list[SourceResult]) -> dict[str, str]:
    logger = get_run_logger()
    for r in results:
        logger.info(
            "%s: %s %s, 读入 %d rows read, 接收 %d accepted, 拒收 %d rejected",
            r.source,
            STATUS_LABELS.get(r.status, r.status),
            r.status,
            r.rows_read,
            r.rows_accepted,
            r.rows_rejected,
        )
    # A kept delivery and the files' warnings are in the run report's warnings, which the
    # publish task logs at WARNING, once each.
    return {r.source: r.status for r in results}


def _screened(req: run.RunRequest, work: Path) -> str:
    meta = work_meta(work)
    get_run_logger().info(
        "筛查 %d 户，列入 %d 户（%s），%d 个乡镇 households screened, listed, townships",
        meta["households"],
        meta["listed"],
        ", ".join(f"{c} {meta['colours'][c]}" for c in COLOURS if c in meta["colours"]) or "none",
        len(meta["all_townships"]),
    )
    return str(work)


def _published(req: run.RunRequest, done: run.Published) -> list[str]:
    logger = get_run_logger()
    scope = req.township or "all townships"
    logger.info(
        "发布 %d 户（%s），写入 %d 个文件 households published, files written",
        done.suspects.height,
        scope,
        len(done.written),
    )
    # The run report's warnings: once each, masked, at WARNING so the UI shows them.
    warnings = report.all_warnings(done.report)
    for warning in warnings:
        logger.warning("%s", warning)
    return warnings


def _finished(req: run.RunRequest, _result: object) -> None:
    return None


_LOGGED: dict[str, Callable[[run.RunRequest, Any], Any]] = {
    "ingest": _ingested,
    "screen": _screened,
    "publish": _published,
    "finish": _finished,
}


def _stage_task(stage: run.Stage) -> Task[..., Any]:
    logged = _LOGGED[stage.name]

    def call(req: run.RunRequest, run_id: str) -> Any:
        return logged(req, _stage(stage.call, req, run_id))

    call.__name__ = call.__qualname__ = stage.name
    options = _RETRYING if stage.retry else {}
    return task(name=stage.name, cache_policy=NO_CACHE, **options)(call)


# One task per stage of the run, in run.RUN_STAGES's order.
STAGE_TASKS: dict[str, Task[..., Any]] = {s.name: _stage_task(s) for s in run.RUN_STAGES}


@flow(name="monthly-screening", log_prints=False)
def monthly_screening(
    period: str | None = None,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    township: str | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool | None = None,
    demo: bool = False,
    busy_timeout: float | None = None,
    accept_held: list[str] | None = None,
) -> str:
    """Screen `period` (default: last month, Asia/Shanghai) and publish the lists, as
    `screening run` does. Parameters left out come from the settings (environment, then
    screening.toml in the working folder); the inbox is never guessed. Returns the run
    id; a failed run is recorded as failed."""
    settings = config.load(
        inbox=inbox,
        db=db,
        out=out,
        params_file=params_file,
        aliases_file=aliases_file,
        mask_ids=mask_ids,
        busy_timeout=busy_timeout,
        demo=demo,
    )
    logger = get_run_logger()
    with _package_warnings():
        req = _stage(
            run.request, settings, period or last_month(), township, tuple(accept_held or ())
        )
        if req.demo:
            logger.warning("%s: %s", config.DEMO_LABEL, report.DEMO_SENTENCE)
        _stage(run.prepare, req)
        with lock.hold(req.db):
            run_id = start(req)
            try:
                for stage in run.RUN_STAGES:
                    _ = STAGE_TASKS[stage.name](req, run_id)  # a sync task: its result
            except BaseException as exc:
                # A plain call, not a task: it must happen even while the flow is torn down.
                status = errors.run_status(exc)
                recorded = run.fail_run(req, run_id, errors.one_line(exc), status)
                logger.error(
                    "批次 %s %s run %s%s",
                    run_id,
                    "暂扣" if status == "held" else "失败",
                    status,
                    "" if recorded else "（未能记录 could not record it）",
                )
                if isinstance(exc, DeliveryHeld):
                    logger.error("%s", exc)
                raise
    logger.info("批次 %s 完成 run succeeded", run_id)
    return run_id
