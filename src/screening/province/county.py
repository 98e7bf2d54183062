"""One county in a province run: its own monthly run, then what the province reads of it.

`process` is the body of the flow's task on a Dask worker, and a plain function (tests call
it directly). It runs the county exactly as `screening run` would (`pipeline.run.run_request`
with the county's settings: its database and lock, inbox, output folder, parameters and
aliases), and never raises for the county's own failures — a held delivery, a refused or
failed run, a busy database: they become the county's status, so that the other counties go
on. It hands back paths and a few counts (`CountyResult`), never frames.

What the province reads of the county afterwards (whether it ran now or not): the latest
run of the period in the county's database, the households of its published list by
township and colour (from `<out>/<P>/suspects.parquet`, which stays where it is), and small
tables copied to `<province out>/counties/<county>/` for province.duckdb
(`db.province.EXPORTS`: match rates, scale checks, current answers without notes, runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from screening import ids
from screening.periods import previous_period
from screening.province.config import County

if TYPE_CHECKING:
    import polars as pl

    from screening.pipeline.run import RunRequest

log = logging.getLogger(__name__)

SUCCESS, HELD, FAILED, BUSY, RUNNING, NOT_RUN = (
    "success", "held", "failed", "busy", "running", "not_run",
)  # fmt: skip
STATUS_WORDS = {
    SUCCESS: "成功",
    HELD: "暂扣",
    FAILED: "失败",
    BUSY: "数据库占用",
    RUNNING: "运行中",
    NOT_RUN: "未运行",
}
EXPORT_FOLDER = "counties"
_PERIOD_FOLDER = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class CountyResult:
    """What the province knows of a county after its task: only names, paths and counts."""

    county: str
    period: str
    ran: bool  # screened by this province run (otherwise only read)
    status: str  # one of STATUS_WORDS
    exit_code: int | None  # what `screening run` would have exited with; None: not run now
    run_id: str | None
    message: str = ""  # one line, ID numbers masked
    lists_run_id: str | None = None
    # (township, colour, households) of the published list of the period
    listed: tuple[tuple[str, str, int], ...] = ()
    published: tuple[str, ...] = ()  # every period's suspects.parquet of the county
    exports: Mapping[str, str] = field(default_factory=dict)  # name → the province's copy
    scale: Mapping[str, Any] = field(default_factory=dict)  # the county's scale_checks row
    match: tuple[tuple[str, int, int], ...] = ()  # (source, records in window, matched)
    answered_previous: tuple[int, int] = (0, 0)  # last period's list: answered, listed
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the worker process's CPU time (all its threads) for the county
    peak_rss: int = 0  # the worker process's peak resident memory so far, bytes
    worker: str = ""  # host:pid of the worker process

    @property
    def households(self) -> int:
        return sum(n for _t, _c, n in self.listed)

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS


def request(county: County, period: str, busy_timeout: float) -> RunRequest:
    """The county's run of `period`: what `screening run` with its settings runs."""
    from screening import config as settings
    from screening.pipeline.run import RunRequest

    return RunRequest(
        db=county.db,
        inbox=county.inbox,
        out=county.out,
        period=period,
        params_file=county.params_file,
        aliases_file=county.aliases_file,
        mask_ids=county.mask_ids,
        demo=settings.is_demo_inbox(county.inbox),
        busy_timeout=busy_timeout,
    )


def process(
    county: County,
    period: str,
    *,
    screen: bool,
    province_out: Path,
    folder: str,
    busy_timeout: float,
) -> CountyResult:
    """Screen the county's `period` (when `screen`), then read what the province needs of
    it, copying its small tables to `<province_out>/counties/<folder>/`."""
    started, cpu = time.perf_counter(), time.process_time()
    ran: dict[str, Any] = {}
    if screen:
        ran = screen_county(county, period, busy_timeout)
    # A database the run found busy is not waited for a second time.
    wait = 0.0 if ran.get("status") == BUSY else busy_timeout
    read = read_county(county, period, province_out / EXPORT_FOLDER / folder, wait)
    latest = read.pop("latest")
    if screen:
        status, run_id, message = ran["status"], ran["run_id"], ran["message"]
    elif latest is not None:
        status, run_id, message = latest["status"], latest["run_id"], latest["message"] or ""
    else:
        status, run_id = (BUSY, None) if read.get("busy") else (NOT_RUN, None)
        message = read.get("busy", "")
    read.pop("busy", None)
    return CountyResult(
        county=county.name,
        period=period,
        ran=screen,
        status=status,
        exit_code=ran.get("exit_code"),
        run_id=run_id,
        message=message or "",
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
        peak_rss=_peak_rss(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        **read,
    )


def screen_county(county: County, period: str, busy_timeout: float) -> dict[str, Any]:
    """The county's monthly run: status, exit code (as `screening run`'s), run id and the
    one-line reason of a failure."""
    from screening.cli.errors import expected_errors
    from screening.db.connect import DatabaseBusy
    from screening.ingest.gates import DeliveryHeld
    from screening.pipeline import errors, run

    since = dt.datetime.now().replace(microsecond=0)
    try:
        outcome = run.run_request(request(county, period, busy_timeout))
    except Exception as exc:
        if isinstance(exc, DeliveryHeld):
            status, code = HELD, exc.exit_code
        elif isinstance(exc, DatabaseBusy):
            status, code = BUSY, 2
        elif isinstance(exc, tuple(expected_errors())):
            status, code = FAILED, 2
        else:  # a bug or the machine: the masked traceback goes to the log
            status, code = FAILED, 1
            text = ids.mask_text("".join(traceback.format_exception(exc)))
            log.error(
                "县 %s 内部错误 internal error in county %s:\n%s", county.name, county.name, text
            )
        recorded = _recorded_run(county, period, since)
        return {
            "status": status,
            "exit_code": code,
            "run_id": recorded,
            "message": errors.one_line(exc),
        }
    return {"status": SUCCESS, "exit_code": 0, "run_id": outcome.run_id, "message": ""}


def _recorded_run(county: County, period: str, since: dt.datetime) -> str | None:
    """The run a failure recorded in the county's database, if it got that far."""
    from screening.db import province as db_province
    from screening.db.connect import connect

    if not county.db.is_file():
        return None
    try:
        con = connect(county.db, read_only=True)
    except Exception:  # busy or unreadable: the run id is then not known
        return None
    try:
        found = db_province.latest_run(con, period, since)
    finally:
        con.close()
    return found["run_id"] if found else None


def read_county(county: County, period: str, folder: Path, busy_timeout: float) -> dict[str, Any]:
    """What the province reads of the county: its published list of `period` (counted),
    its latest run of the period and its small tables (copied into `folder`)."""
    found: dict[str, Any] = {"latest": None, **published_lists(county.out, period)}
    if not county.db.is_file():
        return found
    from screening.db.connect import DatabaseBusy, connect

    try:
        con = connect(county.db, read_only=True, wait=busy_timeout)
    except DatabaseBusy as exc:
        found["busy"] = ids.mask_text(" ".join(str(exc).split()))
        return found
    try:
        found |= _from_database(con, county.name, period, folder)
    finally:
        con.close()
    return found


def published_lists(out: Path, period: str) -> dict[str, Any]:
    """The county's published suspects files (every period) and its list of `period`
    counted by township and colour."""
    import polars as pl

    from screening.publish.files import SUSPECTS_FILE

    published = sorted(
        p / SUSPECTS_FILE
        for p in (out.iterdir() if out.is_dir() else [])
        if _PERIOD_FOLDER.fullmatch(p.name) and (p / SUSPECTS_FILE).is_file()
    )
    mine = out / period / SUSPECTS_FILE
    if not mine.is_file():
        return {"published": tuple(str(p) for p in published)}
    lists = pl.read_parquet(mine, columns=["township", "colour", "run_id"])
    counted = lists.group_by("township", "colour").len().sort("township", "colour")
    run_ids = lists["run_id"].unique().to_list()
    return {
        "published": tuple(str(p) for p in published),
        "listed": tuple((t, c, int(n)) for t, c, n in counted.iter_rows()),
        "lists_run_id": run_ids[0] if len(run_ids) == 1 else None,
    }


def _from_database(con: Any, county: str, period: str, folder: Path) -> dict[str, Any]:
    import polars as pl

    from screening.db import province as db_province
    from screening.publish.files import ensure_dir, write_atomic

    found: dict[str, Any] = {"latest": db_province.latest_run(con, period)}
    frames: dict[str, pl.DataFrame] = {}
    exports: dict[str, str] = {}
    for name in db_province.EXPORTS:
        table = db_province.export(con, name, county)
        if table is None:
            continue
        frames[name] = table
        ensure_dir(folder.parent)  # <province out>/counties, 0700 like the rest
        path = ensure_dir(folder) / f"{name}.parquet"
        write_atomic(path, table.write_parquet)
        exports[name] = str(path)
    found["exports"] = exports
    found["scale"] = _scale(frames.get("scale_checks"), period)
    rates = frames.get("match_rates")
    if rates is not None:
        mine = rates.filter(pl.col("period") == period).sort("source")
        found["match"] = tuple(
            (s, int(r or 0), int(m or 0))
            for s, r, m in mine.select("source", "records_in_window", "matched").iter_rows()
        )
    found["answered_previous"] = db_province.answered(con, previous_period(period))
    return found


def _scale(checks: pl.DataFrame | None, period: str) -> dict[str, Any]:
    """The county's own row (township null) of its scale check for `period`."""
    if checks is None:
        return {}
    import polars as pl

    row = checks.filter((pl.col("period") == period) & pl.col("township").is_null())
    if row.height == 0:
        return {}
    keys = ("roster_households", "base_households", "listed", "share_of_base")
    return {k: row[k][0] for k in keys}


def _peak_rss() -> int:
    """This process's peak resident memory (Linux reports kilobytes)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
