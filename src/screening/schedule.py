"""The monthly run on a schedule: a Prefect deployment of the flow in flows/monthly.py,
served against a running Prefect server, or a plain crontab line calling `screening run`.

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

from . import config
from .periods import previous_period
from .run import RunError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow

TIMEZONE = "Asia/Shanghai"
DEFAULT_CRON = "0 3 5 * *"  # minute hour day-of-month month day-of-week: 03:00 on the 5th
DEPLOYMENT_NAME = "monthly"
FLOW_FILE = Path("flows") / "monthly.py"
FLOW_FUNCTION = "monthly_screening"
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


def project_root() -> Path:
    """The checkout this package runs from: flows/ sits beside src/."""
    return Path(__file__).resolve().parents[2]


def load_flow(root: Path | None = None) -> Flow[..., Any]:
    """The monthly flow, loaded from `<root>/flows/monthly.py` the way Prefect loads a
    deployment's code, so the served runs find it whatever the working directory."""
    from prefect import Flow

    root = (root or project_root()).resolve()
    if not (root / FLOW_FILE).is_file():
        raise ScheduleError(
            f"{FLOW_FILE} not found under {root}: serve from a checkout of the project"
        )
    # from_source is sync-or-async by context; called from sync code it returns the flow.
    flow = Flow.from_source(source=str(root), entrypoint=f"{FLOW_FILE}:{FLOW_FUNCTION}")
    return cast("Flow[..., Any]", flow)


def deployment_parameters(
    *,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool = False,
) -> dict[str, Any]:
    """The flow's parameters for every scheduled run, as absolute paths (the runs do not
    start in the folder `serve` was started in). No period: each run screens last month."""
    db = Path(db or config.default_db())
    paths = {
        "inbox": inbox or config.default_inbox(),
        "db": db,
        "out": out or config.default_out(db),
        "params_file": params_file,
        "aliases_file": aliases_file,
    }
    parameters: dict[str, Any] = {
        key: str(Path(value).absolute()) for key, value in paths.items() if value is not None
    }
    if mask_ids:
        parameters["mask_ids"] = True
    return parameters


def check_schedule(cron: str, timezone: str) -> None:
    from prefect.schedules import Cron

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {timezone!r}, e.g. {TIMEZONE}") from None
    try:
        Cron(cron, timezone=timezone)
    except ValueError as exc:
        raise ScheduleError(f"invalid cron schedule {cron!r}: {exc}") from None


def build_deployment(
    *,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool = False,
    cron: str = DEFAULT_CRON,
    timezone: str = TIMEZONE,
    name: str = DEPLOYMENT_NAME,
    root: Path | None = None,
) -> RunnerDeployment:
    """The deployment `serve` serves: the monthly flow on `cron` in `timezone`, with the
    folders as parameters. Needs no Prefect server."""
    from prefect.schedules import Cron

    check_schedule(cron, timezone)
    deployment = load_flow(root).to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters=deployment_parameters(
            inbox=inbox,
            db=db,
            out=out,
            params_file=params_file,
            aliases_file=aliases_file,
            mask_ids=mask_ids,
        ),
        description="防返贫监测 monthly screening of the previous month (Asia/Shanghai)",
        tags=["screening"],
    )
    return cast("RunnerDeployment", deployment)


def api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def serve(
    *,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool = False,
    cron: str = DEFAULT_CRON,
    timezone: str = TIMEZONE,
    name: str = DEPLOYMENT_NAME,
) -> None:
    """Register the deployment with the Prefect server at PREFECT_API_URL and run its
    scheduled runs until interrupted (Ctrl-C pauses the schedule)."""
    from prefect import serve as prefect_serve

    if not api_url():
        # Without a server Prefect would start a temporary one that runs no scheduler:
        # nothing would ever run.
        raise ScheduleError(
            "PREFECT_API_URL is not set: start `prefect server start` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` (see docs/scheduling.md)"
        )
    deployment = build_deployment(
        inbox=inbox,
        db=db,
        out=out,
        params_file=params_file,
        aliases_file=aliases_file,
        mask_ids=mask_ids,
        cron=cron,
        timezone=timezone,
        name=name,
    )
    # One run at a time: the runs share one database and screen the months in order.
    prefect_serve(deployment, limit=1)


def crontab_line(
    *,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool = False,
    cron: str = DEFAULT_CRON,
    timezone: str = TIMEZONE,
    screening_bin: Path | None = None,
    log: Path | None = None,
) -> str:
    """One crontab line running `screening run` for last month, the plain-cron alternative
    to `serve`. The schedule fields are read on the cron daemon's clock (run it on
    Asia/Shanghai time, or put CRON_TZ=Asia/Shanghai above the line where cron supports
    it); the period is computed on `timezone`'s clock either way."""
    fields = cron.split()
    if len(fields) != 5:
        raise ScheduleError(f"a crontab schedule has five fields, got {cron!r}")
    check_schedule(cron, timezone)
    parameters = deployment_parameters(
        inbox=inbox,
        db=db,
        out=out,
        params_file=params_file,
        aliases_file=aliases_file,
        mask_ids=mask_ids,
    )
    options = {"params_file": "--params", "aliases_file": "--aliases"}
    args = [str(screening_bin or Path(sys.executable).parent / "screening"), "run"]
    words = [shlex.quote(a) for a in args] + ["--period", _last_month_shell(timezone)]
    for key in ("inbox", "db", "out", "params_file", "aliases_file"):
        if key in parameters:
            words += [options.get(key, f"--{key}"), shlex.quote(parameters[key])]
    if mask_ids:
        words.append("--mask-ids")
    logfile = Path(log or Path(parameters["db"]).parent / LOG_FILE).absolute()
    # The redirection needs the log's folder, which the first run would only be creating.
    mkdir = ["mkdir", "-p", shlex.quote(str(logfile.parent)), "&&"]
    command = " ".join([*mkdir, *words, ">>", shlex.quote(str(logfile)), "2>&1"])
    # cron turns an unescaped % into a newline
    return " ".join(fields) + " " + command.replace("%", r"\%")


def _last_month_shell(timezone: str) -> str:
    # Step back from the 1st of this month, not from today: GNU date's 'last month' on
    # the 31st lands in the same month when the previous one is shorter.
    tz = shlex.quote(timezone)
    return f'"$(TZ={tz} date -d "$(TZ={tz} date +%Y-%m-01) -1 month" +%Y-%m)"'
