"""The monthly run on a schedule: a Prefect deployment of the flow in
`screening.orchestration.flow`, served against a running Prefect server, or a plain crontab
line calling `screening run`.

Both screen the previous month in Asia/Shanghai time, at 03:00 on the 5th by default,
which leaves the departments the first days of the month to deliver. docs/scheduling.md
gives the commands.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from screening import config
from screening.periods import previous_period
from screening.pipeline.errors import RunError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow

TIMEZONE = "Asia/Shanghai"
DEFAULT_CRON = config.DEFAULT_CRON
DEPLOYMENT_NAME = "monthly"
LOG_FILE = "screening-monthly.log"


class ScheduleError(RunError):
    """The schedule cannot be set up as asked; the message is the one line the user sees."""


def last_month(now: dt.datetime | None = None, timezone: str = TIMEZONE) -> str:
    """The period before the month `now` falls in, on the county's clock (`now` defaults
    to the current time; a naive `now` is taken as already on that clock)."""
    zone = zoneinfo.ZoneInfo(timezone)
    local = dt.datetime.now(zone) if now is None else now
    if local.tzinfo is not None:
        local = local.astimezone(zone)
    return previous_period(f"{local:%Y-%m}")


def load_flow() -> Flow[..., Any]:
    """The monthly flow, imported from the package (a checkout or an installed wheel)."""
    from screening.orchestration.flow import monthly_screening

    return monthly_screening


def deployment_parameters(settings: config.Settings) -> dict[str, Any]:
    """The flow's parameters for every scheduled run, as absolute paths (the runs do not
    start in the folder `serve` was started in). No period: each run screens last month.
    Refuses settings without an inbox: a schedule never screens a guessed folder."""
    if settings.demo:
        parameters: dict[str, Any] = {"demo": True}
    else:
        parameters = {"inbox": str(settings.require_inbox().absolute())}
    paths = {
        "db": settings.db,
        "out": settings.out,
        "params_file": settings.params_file,
        "aliases_file": settings.aliases_file,
    }
    parameters |= {key: str(Path(value).absolute()) for key, value in paths.items() if value}
    if settings.mask_ids:
        parameters["mask_ids"] = True
    if settings.busy_timeout != config.DEFAULT_BUSY_TIMEOUT:
        parameters["busy_timeout"] = settings.busy_timeout
    return parameters


def check_schedule(cron: str, timezone: str) -> None:
    from prefect.schedules import Cron

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"未知的时区 unknown time zone {timezone!r}, e.g. {TIMEZONE}") from None
    try:
        Cron(cron, timezone=timezone)
    except ValueError as exc:
        raise ScheduleError(f"定时格式错误 invalid cron schedule {cron!r}: {exc}") from None


def build_deployment(
    settings: config.Settings,
    *,
    timezone: str = TIMEZONE,
    name: str = DEPLOYMENT_NAME,
) -> RunnerDeployment:
    """The deployment `serve` serves: the monthly flow on the settings' cron in
    `timezone`, with the folders as parameters. Needs no Prefect server."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    check_schedule(settings.cron, timezone)
    parameters = deployment_parameters(settings)
    deployment = load_flow().to_deployment(
        name=name,
        schedules=[Cron(settings.cron, timezone=timezone)],
        parameters=parameters,
        description="防返贫监测 monthly screening of the previous month (Asia/Shanghai)",
        tags=["screening", "demo"] if settings.demo else ["screening"],
        # The module path, not a file under the working folder: an installed package runs.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast("RunnerDeployment", deployment)


def api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def require_api_url() -> None:
    """A schedule is served by a running Prefect server. Without PREFECT_API_URL Prefect
    would start a temporary one that runs no scheduler: nothing would ever run."""
    if not api_url():
        raise ScheduleError(
            "未设置 PREFECT_API_URL PREFECT_API_URL is not set: start `prefect server start` "
            "and `export PREFECT_API_URL=http://127.0.0.1:4200/api` (see docs/scheduling.md)"
        )


def serve(
    settings: config.Settings, *, timezone: str = TIMEZONE, name: str = DEPLOYMENT_NAME
) -> None:
    """Register the deployment with the Prefect server at PREFECT_API_URL and run its
    scheduled runs until interrupted (Ctrl-C pauses the schedule)."""
    from prefect import serve as prefect_serve

    deployment = build_deployment(settings, timezone=timezone, name=name)
    require_api_url()
    # One run at a time: the runs share one database and screen the months in order.
    prefect_serve(deployment, limit=1)


def crontab_line(
    settings: config.Settings,
    *,
    timezone: str = TIMEZONE,
    screening_bin: Path | None = None,
    log: Path | None = None,
) -> str:
    """One crontab line running `screening run` for last month, the plain-cron alternative
    to `serve`. The schedule fields are read on the cron daemon's clock (run it on
    Asia/Shanghai time, or put CRON_TZ=Asia/Shanghai above the line where cron supports
    it); the period is computed on `timezone`'s clock either way."""
    fields = settings.cron.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"crontab 定时须为五段 a crontab schedule has five fields, got {settings.cron!r}"
        )
    check_schedule(settings.cron, timezone)
    parameters = deployment_parameters(settings)
    options = {"params_file": "--params", "aliases_file": "--aliases"}
    args = [str(screening_bin or Path(sys.executable).parent / "screening"), "run"]
    words = [shlex.quote(a) for a in args] + ["--period", last_month_shell(timezone)]
    if settings.demo:
        words.append("--demo")
    for key in ("inbox", "db", "out", "params_file", "aliases_file"):
        if key in parameters:
            words += [options.get(key, f"--{key}"), shlex.quote(parameters[key])]
    if settings.mask_ids:
        words.append("--mask-ids")
    if "busy_timeout" in parameters:
        words += ["--busy-timeout", f"{settings.busy_timeout:g}"]
    logfile = Path(log or Path(parameters["db"]).parent / LOG_FILE).absolute()
    # The redirection needs the log's folder, which the first run would only be creating.
    mkdir = ["mkdir", "-p", shlex.quote(str(logfile.parent)), "&&"]
    command = " ".join([*mkdir, *words, ">>", shlex.quote(str(logfile)), "2>&1"])
    # cron turns an unescaped % into a newline
    return " ".join(fields) + " " + command.replace("%", r"\%")


def last_month_shell(timezone: str) -> str:
    # Step back from the 1st of this month, not from today: GNU date's 'last month' on
    # the 31st lands in the same month when the previous one is shorter.
    tz = shlex.quote(timezone)
    return f'"$(TZ={tz} date -d "$(TZ={tz} date +%Y-%m-01) -1 month" +%Y-%m)"'
