"""The province's month on a schedule, as the county's (orchestration/schedule.py): a
Prefect deployment of `screening.province.flow.province_screening` served against a running
Prefect server, or a crontab line calling `screening province run`. Both screen the previous
month on the Asia/Shanghai clock, at 03:00 on the 5th unless `--cron` or the province
file's `cron` say otherwise.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from screening.orchestration.schedule import (
    TIMEZONE,
    ScheduleError,
    check_schedule,
    last_month_shell,
    require_api_url,
)
from screening.province.config import Province

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEPLOYMENT_NAME = "province-monthly"
LOG_FILE = "screening-province.log"


def deployment_parameters(
    province: Province, dask_address: str | None = None, workers: int | None = None
) -> dict[str, Any]:
    """The flow's parameters for every scheduled run: the province file (absolute: runs do
    not start in the folder `serve` was started in) and the cluster, when given here.
    Everything else is read from the file at each run, so an edited file needs no restart."""
    parameters: dict[str, Any] = {"config_file": str(province.path.absolute())}
    if dask_address:
        parameters["dask_address"] = dask_address
    if workers:
        parameters["workers"] = workers
    return parameters


def build_deployment(
    province: Province,
    *,
    cron: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    timezone: str = TIMEZONE,
    name: str = DEPLOYMENT_NAME,
) -> RunnerDeployment:
    """The deployment `province serve` serves. Needs no Prefect server."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from screening.province.flow import province_screening

    schedule = cron or province.cron
    check_schedule(schedule, timezone)
    deployment = province_screening.to_deployment(
        name=name,
        schedules=[Cron(schedule, timezone=timezone)],
        parameters=deployment_parameters(province, dask_address, workers),
        description="防返贫监测 全省 every county of the province file, previous month "
        "(Asia/Shanghai), on a Dask cluster",
        tags=["screening", "province"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast("RunnerDeployment", deployment)


def serve(
    province: Province,
    *,
    cron: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> None:
    """Register the deployment with the Prefect server at PREFECT_API_URL and run its
    scheduled runs until interrupted."""
    from prefect import serve as prefect_serve

    deployment = build_deployment(province, cron=cron, dask_address=dask_address, workers=workers)
    require_api_url()
    # One province run at a time: a second would find every county's database locked.
    prefect_serve(deployment, limit=1)


def crontab_line(
    province: Province,
    *,
    cron: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    timezone: str = TIMEZONE,
    screening_bin: Path | None = None,
    log: Path | None = None,
) -> str:
    """One crontab line running `screening province run` for last month."""
    schedule = cron or province.cron
    fields = schedule.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"crontab 定时须为五段 a crontab schedule has five fields, got {schedule!r}"
        )
    check_schedule(schedule, timezone)
    binary = str(screening_bin or Path(sys.executable).parent / "screening")
    words = [shlex.quote(binary), "province", "run", "--period", last_month_shell(timezone)]
    words += ["--config", shlex.quote(str(province.path.absolute()))]
    if dask_address:
        words += ["--dask-address", shlex.quote(dask_address)]
    if workers:
        words += ["--workers", str(workers)]
    logfile = Path(log or province.out / LOG_FILE).absolute()
    mkdir = ["mkdir", "-p", shlex.quote(str(logfile.parent)), "&&"]
    command = " ".join([*mkdir, *words, ">>", shlex.quote(str(logfile)), "2>&1"])
    return " ".join(fields) + " " + command.replace("%", r"\%")
