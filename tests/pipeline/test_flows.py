"""The run's stages, the monthly Prefect flow and its schedule.

The stage tests call `screening.pipeline.run` directly (no Prefect). The flow tests (marked
`flow`) run under one real Prefect server for the whole session (conftest's
`prefect_server`): the flow in this process, and `screening serve` in another process,
whose schedule the server must turn into scheduled runs and whose runs must screen.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from screening import config, ids
from screening.db import lock
from screening.db.connect import DatabaseBusy, connect
from screening.orchestration import schedule
from screening.orchestration.schedule import ScheduleError
from screening.pipeline import run
from screening.pipeline.errors import RunError, one_line
from screening.pipeline.work import work_dir
from screening.publish import lists as publish
from screening.publish.files import SUSPECTS_FILE, township_paths
from screening.version import code_version
from tests.support.common import BIN, SAMPLE_PERIODS, ingest_year_before, query, stop, wait_for

FLOW_PERIODS = SAMPLE_PERIODS[:2]
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def snapshot(db: Path, out: Path) -> dict[str, Any]:
    """Everything a failed run must leave alone: the published files and stored lists."""
    return {
        "files": {
            p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
        },
        "suspects": query(db, "SELECT * FROM suspects ORDER BY ALL").rows(),
        "evidence": query(db, "SELECT * FROM evidence ORDER BY ALL").rows(),
        "match_rates": query(db, "SELECT * FROM match_rates ORDER BY ALL").rows(),
    }


@contextmanager
def analyst(db: Path) -> Iterator[Callable[[], str]]:
    """Another process that opens the database read-write when asked, as an analyst's
    session would, and says "ok" or the error's name."""
    code = (
        "import duckdb, sys\n"
        "for _ in sys.stdin:\n"
        "    try:\n"
        "        duckdb.connect(sys.argv[1]).close()\n"
        "        print('ok', flush=True)\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def try_open() -> str:
        stdin.write("\n")
        stdin.flush()
        return stdout.readline().strip()

    try:
        yield try_open
    finally:
        stdin.close()
        proc.wait(timeout=30)


def request(tmp_path: Path, inbox: Path, period: str, **kw: Any) -> run.RunRequest:
    return run.RunRequest(
        db=tmp_path / "screening.duckdb", inbox=inbox, out=tmp_path / "out", period=period, **kw
    )


@pytest.fixture(scope="module")
def two_periods(sample_inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample county's first two periods screened with run_period (the CLI's way)."""
    work = tmp_path_factory.mktemp("two-periods")
    db, out = work / "screening.duckdb", work / "out"
    for period in FLOW_PERIODS:
        run.run_period(db=db, inbox=sample_inbox, out=out, period=period)
    return work


@pytest.fixture
def county(two_periods: Path, tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "county"
    shutil.copytree(two_periods, target)
    return target / "screening.duckdb", target / "out"


# ---------------------------------------------------------------- the stages


def test_stages_one_by_one_record_screen_and_publish(sample_inbox: Path, tmp_path: Path) -> None:
    req = request(tmp_path, sample_inbox, FLOW_PERIODS[0])
    with analyst(req.db) as other:
        run.prepare(req)
        run_id = run.start_run(req)
        assert other() == "ok"  # between stages the file is free
        con = connect(req.db)
        assert other() != "ok"  # (which the analyst can tell)
        con.close()
        row = query(req.db, "SELECT * FROM runs").row(0, named=True)
        assert (row["run_id"], row["status"], row["township"]) == (run_id, "running", None)
        assert json.loads(row["parameters"])["monitoring_line"]["value"] == 6000
        assert row["code_version"] == code_version()

        results = run.ingest_inputs(req, run_id)
        assert other() == "ok"
        assert all(r.good is None and r.quarantine is None for r in results)
        files = json.loads(query(req.db, "SELECT input_files FROM runs")["input_files"][0])
        logged = query(req.db, "SELECT source, sha256 FROM ingest_log WHERE sha256 IS NOT NULL")
        assert {(f["source"], f["sha256"]) for f in files if f["sha256"]} == set(logged.rows())
        assert {f["source"] for f in files} == {r.source for r in results}

        work = run.screen_period(req, run_id)
        assert other() == "ok"
        assert work == req.out / ".work" / run_id
        assert (work.stat().st_mode & 0o777) == 0o700
        assert not (req.out / req.period).exists()  # screening publishes nothing
        assert query(req.db, "SELECT count(*) AS n FROM suspects")["n"][0] == 0

        done = run.publish_run(req, run_id, work)
        assert other() == "ok"
        listed = pl.read_parquet(work / "suspects.parquet").sort("household_id")
        stored = query(req.db, "SELECT * FROM suspects ORDER BY household_id")
        assert stored.equals(listed) and stored.height == done.suspects.height > 0
        assert query(req.db, "SELECT status FROM runs")["status"].to_list() == ["success"]
        assert (req.out / req.period / "run-report.md").exists()
        assert set(done.written) >= {req.out / req.period / SUSPECTS_FILE}

        run.finish_run(req, run_id)
        assert not (req.out / ".work").exists()


def test_a_failing_publish_records_the_failure_and_leaves_the_lists(
    county: tuple[Path, Path], sample_inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, out = county
    before = snapshot(db, out)
    earlier = query(db, "SELECT run_id FROM runs")["run_id"].to_list()

    def disk_full(*args: object, **kwargs: object) -> list[Path]:
        raise OSError("No space left on device")

    # Inside the publish transaction, after the lists were written to the database.
    monkeypatch.setattr(publish, "publish", disk_full)
    with pytest.raises(OSError, match="No space"):
        run.run_period(db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1])
    # started_at has whole seconds: pick the new run by id, not by time.
    last = query(db, "SELECT status, message, finished_at, run_id FROM runs").filter(
        ~pl.col("run_id").is_in(earlier)
    )
    assert last.height == 1
    assert last.row(0)[:2] == ("failed", "OSError: No space left on device")
    assert last["finished_at"][0] is not None
    assert snapshot(db, out) == before
    assert not (out / ".work").exists()


def test_a_failure_naming_an_id_number_is_recorded_masked(
    county: tuple[Path, Path], sample_inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, out = county
    before = snapshot(db, out)
    head = query(db, "SELECT head_id_number FROM suspects LIMIT 1")["head_id_number"][0]

    def broken(req: run.RunRequest, run_id: str) -> Path:
        raise ValueError(f"cannot compute facts for {head}\nsecond line")

    monkeypatch.setattr(run, "screen_period", broken)
    with pytest.raises(ValueError, match="cannot compute"):
        run.run_period(db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1])
    message = query(db, "SELECT message FROM runs WHERE status = 'failed'")["message"][0]
    assert message == f"ValueError: cannot compute facts for {ids.mask_text(head)}"
    assert head not in message and head[:6] in message
    assert snapshot(db, out) == before


def test_a_second_run_on_the_same_database_is_refused(
    county: tuple[Path, Path], sample_inbox: Path
) -> None:
    db, out = county
    runs_before = query(db, "SELECT * FROM runs ORDER BY ALL")
    with lock.hold(db), pytest.raises(DatabaseBusy, match="another screening process"):
        run.run_period(db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1])
    assert query(db, "SELECT * FROM runs ORDER BY ALL").equals(runs_before)
    run.run_period(db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1])
    assert not lock.lock_path(db).exists()  # a run takes the lock and gives it back


def test_a_run_that_died_is_closed_by_the_next_start(
    county: tuple[Path, Path], sample_inbox: Path
) -> None:
    db, out = county
    req = run.RunRequest(db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1])
    dead = run.start_run(req)  # and then the process was killed
    (work_dir(out, dead)).mkdir(parents=True)
    alive = run.start_run(req)
    rows = dict(query(db, "SELECT run_id, status FROM runs").rows())
    assert (rows[dead], rows[alive]) == ("failed", "running")
    assert not work_dir(out, dead).exists()
    assert run.fail_run(req, alive, "KeyboardInterrupt: ")
    assert not run.fail_run(req, alive, "recorded once only")
    message = query(db, f"SELECT message FROM runs WHERE run_id = '{alive}'")["message"][0]
    assert message == "KeyboardInterrupt: "


def test_an_unknown_township_is_refused_before_the_run_is_recorded(
    county: tuple[Path, Path], sample_inbox: Path
) -> None:
    db, out = county
    runs_before = query(db, "SELECT * FROM runs ORDER BY ALL")
    for township in ("不存在镇", "城关"):
        with pytest.raises(RunError, match="unknown township") as refused:
            run.run_period(
                db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1], township=township
            )
        assert str(refused.value).startswith("未知的乡镇")
    assert "城关镇" in str(refused.value)  # the nearest name
    # A typo is not a failed run: nothing is recorded, nothing left behind.
    assert query(db, "SELECT * FROM runs ORDER BY ALL").equals(runs_before)
    assert not (out / ".work").exists() and not lock.lock_path(db).exists()
    # The screen stage still checks (a roster re-sent without the township).
    req = run.RunRequest(db=db, inbox=sample_inbox, out=out, period=FLOW_PERIODS[1])
    run_id = run.start_run(req)
    with pytest.raises(RunError, match="unknown township"):
        run.screen_period(replace(req, township="不存在镇"), run_id)


def test_a_township_new_in_the_periods_roster_file_is_known_before_ingest(
    sample_inbox: Path, tmp_path: Path
) -> None:
    # An empty database: the township can only come from the inbox's roster file.
    req = request(tmp_path, sample_inbox, FLOW_PERIODS[0], township="城关镇")
    run.prepare(req)
    run_id = run.start_run(req)
    assert query(req.db, "SELECT township FROM runs")["township"].to_list() == ["城关镇"]
    assert run.fail_run(req, run_id, "test: stopped here")


def test_mask_text_masks_id_numbers_only() -> None:
    text = (
        "rows 11010519491231002X and 110105491231002 failed; "
        "run 2026-09-20260905T030000-a1b2c3, sha 9f86d081884c7d659a2feaa0c55ad015, 12345"
    )
    assert ids.mask_text(text) == (
        "rows 110105********002X and 110105*****1002 failed; "
        "run 2026-09-20260905T030000-a1b2c3, sha 9f86d081884c7d659a2feaa0c55ad015, 12345"
    )
    assert one_line(ValueError("x 11010519491231002X\nmore")).endswith("110105********002X")


# ---------------------------------------------------------------- schedule


SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2026, 10, 5, 3, 0, tzinfo=SHANGHAI), "2026-09"),
        (dt.datetime(2027, 1, 5, 3, 0, tzinfo=SHANGHAI), "2026-12"),
        # 1 October 01:00 in Shanghai is still 30 September in UTC
        (dt.datetime(2026, 9, 30, 17, 0, tzinfo=dt.UTC), "2026-09"),
        (dt.datetime(2026, 3, 31, 12, 0), "2026-02"),
    ],
)
def test_last_month_is_read_on_the_shanghai_clock(now: dt.datetime, expected: str) -> None:
    assert schedule.last_month(now) == expected


def settings(tmp_path: Path, **kw: Any) -> config.Settings:
    """Settings as a command would load them in an empty folder, from flags only."""
    return config.load(cwd=tmp_path, environ={}, **kw)


def test_the_deployment_runs_last_month_at_3_on_the_5th_in_shanghai(tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "data" / "screening.duckdb"
    given = settings(tmp_path, inbox=inbox, db=db, params_file=Path("county.yaml"))
    deployment = schedule.build_deployment(given)
    (only,) = deployment.schedules
    assert (only.schedule.cron, only.schedule.timezone) == ("0 3 5 * *", "Asia/Shanghai")
    assert only.active
    assert deployment.name == "monthly" and deployment.flow_name == "monthly-screening"
    # The package's module, not a file of a checkout: an installed wheel serves it.
    assert deployment.entrypoint == "screening.orchestration.flow.monthly_screening"
    assert deployment.parameters == {
        "inbox": str(inbox),
        "db": str(db),
        "out": str(tmp_path / "data" / "out"),
        "params_file": str(Path("county.yaml").absolute()),
    }
    other = schedule.build_deployment(
        settings(tmp_path, inbox=inbox, db=db, cron="30 2 3 * *", mask_ids=True)
    )
    assert other.schedules[0].schedule.cron == "30 2 3 * *"
    assert other.parameters["mask_ids"] is True


def test_no_schedule_without_an_inbox(tmp_path: Path) -> None:
    """A schedule never screens a guessed folder: no inbox, no deployment, no cron line."""
    for build in (schedule.build_deployment, schedule.crontab_line):
        with pytest.raises(config.SettingsError, match="no inbox given"):
            build(settings(tmp_path, db=tmp_path / "s.duckdb"))
    # The synthetic sample only by name, and then the runs say so.
    demo = schedule.build_deployment(settings(tmp_path, demo=True))
    assert demo.parameters == {
        "demo": True,
        "db": str(tmp_path / "demo" / "screening.duckdb"),
        "out": str(tmp_path / "demo" / "out"),
    }
    assert "--demo" in schedule.crontab_line(settings(tmp_path, demo=True)).split()


@pytest.mark.parametrize(
    ("cron", "timezone", "problem"),
    [("0 3 35 * *", "Asia/Shanghai", "invalid cron"), ("0 3 5 * *", "Asia/Nowhere", "time zone")],
)
def test_a_bad_schedule_is_one_clear_error(
    tmp_path: Path, cron: str, timezone: str, problem: str
) -> None:
    given = settings(tmp_path, inbox=tmp_path, db=Path("x.duckdb"), cron=cron)
    with pytest.raises(ScheduleError, match=problem):
        schedule.build_deployment(given, timezone=timezone)
    with pytest.raises(ScheduleError, match=problem):
        schedule.crontab_line(given, timezone=timezone)


def test_serve_needs_a_prefect_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import prefect
    from prefect.settings import PREFECT_API_URL, temporary_settings

    served: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(prefect, "serve", lambda *d, **kw: served.append((d, kw)))
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        pytest.raises(ScheduleError, match="PREFECT_API_URL"),
    ):
        schedule.serve(settings(tmp_path, inbox=tmp_path, db=tmp_path / "s.duckdb"))
    assert served == []
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        with pytest.raises(config.SettingsError, match="no inbox"):
            schedule.serve(settings(tmp_path, db=tmp_path / "s.duckdb"))
        schedule.serve(
            settings(tmp_path, inbox=tmp_path, db=tmp_path / "s.duckdb", cron="0 4 6 * *")
        )
    ((deployments, options),) = served
    assert [d.schedules[0].schedule.cron for d in deployments] == ["0 4 6 * *"]
    assert options == {"limit": 1}


def test_the_crontab_line_runs_screening_for_last_month(tmp_path: Path) -> None:
    stub = tmp_path / "bin" / "screening"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\necho "stderr too" >&2\n')
    stub.chmod(0o755)
    inbox, db = tmp_path / "my inbox", tmp_path / "db dir" / "screening.duckdb"  # no folder yet
    line = schedule.crontab_line(
        settings(tmp_path, inbox=inbox, db=db, params_file=tmp_path / "县 params.yaml"),
        screening_bin=stub,
    )
    fields = line.split(" ", 5)
    assert fields[:5] == ["0", "3", "5", "*", "*"]
    assert re.search(r"(?<!\\)%", line) is None  # cron would cut the line at a bare %
    command = fields[5].replace(r"\%", "%")  # what cron hands to /bin/sh
    before = schedule.last_month()
    subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": os.environ["PATH"]})
    after = schedule.last_month()
    log = (db.parent / schedule.LOG_FILE).read_text(encoding="utf-8").splitlines()
    args = dict(zip(log[1:-1:2], log[2:-1:2], strict=True))
    assert log[0] == "run" and log[-1] == "stderr too"
    assert args["--period"] in {before, after}
    assert args == {
        "--period": args["--period"],
        "--inbox": str(inbox),
        "--db": str(db),
        "--out": str(db.parent / "out"),
        "--params": str(tmp_path / "县 params.yaml"),
    }


# ---------------------------------------------------------------- the Prefect flow


def test_retries_are_for_io_errors_and_a_busy_database_only() -> None:
    from prefect.states import Failed

    from screening.orchestration.flow import STAGE_TASKS, retry_on_io, start

    ingest, screen = STAGE_TASKS["ingest"], STAGE_TASKS["screen"]

    def retried(exc: BaseException) -> bool:
        return retry_on_io(ingest, None, Failed(data=exc))  # type: ignore[arg-type]

    assert retried(OSError("stale NFS handle")) and retried(DatabaseBusy("in use"))
    assert not retried(RunError("no roster")) and not retried(ValueError("bug"))
    assert start.retries == ingest.retries == 2 and screen.retries == 0
    # The flow's tasks are the run's stages, in the one order both follow.
    assert list(STAGE_TASKS) == [stage.name for stage in run.RUN_STAGES]
    assert [t.name for t in STAGE_TASKS.values()] == list(STAGE_TASKS)


@contextmanager
def prefect_logs() -> Iterator[list[str]]:
    """The flow and task run logs at INFO and above, formatted with their tracebacks."""
    records: list[str] = []
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(formatter.format(record))

    handler = Keep(logging.INFO)
    root = logging.getLogger("prefect")
    loggers = [logging.getLogger(f"prefect.{n}") for n in ("flow_runs", "task_runs")]
    levels = [lg.level for lg in loggers]
    root.addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.INFO)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@pytest.fixture(scope="module")
def flow_county(
    prefect_server: str, sample_inbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    from screening.orchestration.flow import monthly_screening

    work = tmp_path_factory.mktemp("flow-county")
    db, out = work / "screening.duckdb", work / "out"
    ingest_year_before(db, sample_inbox)  # the expected lists count on it (INCOME_DROP)
    run_ids, logs = [], []
    for p in FLOW_PERIODS:
        with prefect_logs() as records:
            run_ids.append(monthly_screening(period=p, inbox=sample_inbox, db=db, out=out))
        logs.append(records)
    return {"db": db, "out": out, "run_ids": run_ids, "logs": logs}


@pytest.mark.flow
def test_the_monthly_flow_screens_two_months(
    flow_county: dict[str, Any], sample_manifest: dict
) -> None:
    db, out = flow_county["db"], flow_county["out"]
    runs = query(db, "SELECT * FROM runs ORDER BY started_at")
    assert runs["run_id"].to_list() == flow_county["run_ids"]
    assert runs["period"].to_list() == FLOW_PERIODS
    assert runs["status"].to_list() == ["success", "success"]
    assert runs["township"].to_list() == [None, None]
    assert runs["code_version"].to_list() == [code_version()] * 2
    for row in runs.iter_rows(named=True):
        assert json.loads(row["parameters"])["monitoring_line"]["value"] == 6000
        files = json.loads(row["input_files"])
        logged = query(
            db, f"SELECT source, file, sha256 FROM ingest_log WHERE period = '{row['period']}'"
        )
        assert {(f["source"], f["file"], f["sha256"]) for f in files} == set(logged.rows())
    for period in FLOW_PERIODS:
        folder = out / period
        stored = query(db, f"SELECT * FROM suspects WHERE period = '{period}'")
        listed = {e["household_id"]: e["colour"] for e in sample_manifest["expected"][period]}
        assert dict(stored.select("household_id", "colour").rows()) == listed
        assert pl.read_parquet(folder / SUSPECTS_FILE).equals(stored)
        assert (folder / "run-report.md").is_file()
        for township in stored["township"].unique():
            xlsx, csv = township_paths(folder, township, period)
            assert xlsx.is_file() and csv.is_file()
    assert not (out / ".work").exists()

    logs = "\n".join(line for run_logs in flow_county["logs"] for line in run_logs)
    assert "households screened" in logs and "households published" in logs
    assert len(ID_NUMBER.findall(logs)) == 0  # a count: a failure must not print them


@pytest.mark.flow
def test_a_runs_warnings_are_prefect_warnings_each_once(flow_county: dict[str, Any]) -> None:
    for period, records in zip(FLOW_PERIODS, flow_county["logs"], strict=True):
        warned = [r.split(" WARNING ", 1)[1] for r in records if " WARNING " in r]
        report = (flow_county["out"] / period / "run-report.md").read_text(encoding="utf-8")
        section = report.split("## 提示 Warnings", 1)[1].split("\n## ", 1)[0]
        bullets = [line for line in section.splitlines() if line.startswith("- ")]
        # The sample county is far above the expected scale: the report warns, and so does
        # Prefect, at WARNING (not INFO), once per warning.
        assert any("规模" in w or "scale" in w for w in warned), warned
        assert any("stale monitoring line" in w for w in warned), warned
        assert len(warned) == len(set(warned)) == len(bullets) > 0


@pytest.mark.flow
def test_a_failing_flow_is_recorded_failed_and_damages_nothing(
    flow_county: dict[str, Any],
    sample_inbox: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from screening.orchestration.flow import monthly_screening

    shutil.copytree(flow_county["db"].parent, tmp_path / "copy")
    db, out = tmp_path / "copy" / "screening.duckdb", tmp_path / "copy" / "out"
    before = snapshot(db, out)
    head = query(db, "SELECT head_id_number FROM suspects LIMIT 1")["head_id_number"][0]

    def cannot_write(*args: object, **kwargs: object) -> list[Path]:
        raise OSError(f"cannot write the list of {head}")

    monkeypatch.setattr(publish, "publish", cannot_write)
    with prefect_logs() as logs, pytest.raises(RunError, match="cannot write"):
        monthly_screening(period=FLOW_PERIODS[1], inbox=sample_inbox, db=db, out=out)

    failed = query(db, "SELECT * FROM runs WHERE status <> 'success'")
    assert failed["status"].to_list() == ["failed"]
    assert failed["message"][0] == f"OSError: cannot write the list of {ids.mask_text(head)}"
    assert failed["input_files"][0] is not None
    assert snapshot(db, out) == before
    assert not (out / ".work").exists()
    text = "\n".join(logs)
    assert "cannot write the list of" in text  # the failure was logged …
    assert len(ID_NUMBER.findall(text)) == 0  # … without the ID number


@pytest.mark.flow
def test_a_held_delivery_fails_the_flow_clearly_and_publishes_nothing(
    flow_county: dict[str, Any], sample_inbox: Path, tmp_path: Path
) -> None:
    """A completeness gate holds a delivery: the flow run fails with DeliveryHeld (the
    CLI's exit status 3), recorded `held`; accepting it lets the next flow run publish."""
    from screening import contract
    from screening.ingest.gates import DeliveryHeld
    from screening.ingest.inbox import discover
    from screening.orchestration.flow import monthly_screening

    shutil.copytree(flow_county["db"].parent, tmp_path / "copy")
    db, out = tmp_path / "copy" / "screening.duckdb", tmp_path / "copy" / "out"
    inbox = tmp_path / "inbox"
    shutil.copytree(sample_inbox, inbox)
    period = FLOW_PERIODS[1]
    old = discover(inbox, period, contract.load())["civil"].path
    assert old is not None
    (inbox / period / "old").mkdir()
    old.rename(inbox / period / "old" / old.name)
    broken = pl.DataFrame(
        {"身份证号": ["0"] * 6, "救助类型": ["临时救助"] * 6, "变动类型": ["发放"] * 6,
         "日期": ["2026-08-10"] * 6, "金额": [str(100 + i) for i in range(6)]}
    )  # fmt: skip
    broken.write_csv(inbox / period / "民政救助_202608.csv")
    before = snapshot(db, out)

    with prefect_logs() as logs, pytest.raises(DeliveryHeld, match="--accept-held civil"):
        monthly_screening(period=period, inbox=inbox, db=db, out=out)
    held = query(db, "SELECT status, message FROM runs WHERE status <> 'success'")
    assert held["status"].to_list() == ["held"]
    assert "DeliveryHeld" in held["message"][0]
    assert snapshot(db, out) == before
    text = "\n".join(logs)
    assert "held" in text and "--accept-held civil" in text

    run_id = monthly_screening(period=period, inbox=inbox, db=db, out=out, accept_held=["民政"])
    assert query(db, f"SELECT status FROM runs WHERE run_id = '{run_id}'")["status"][0] == "success"
    assert query(db, "SELECT accepted_by FROM held_deliveries")["accepted_by"][0] is not None


# ---------------------------------------------------------------- screening serve


@pytest.fixture(scope="module")
def served(
    prefect_server: str, sample_inbox: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """`screening serve` in its own process, as the operator starts it, from a folder that
    holds no project files (the flow comes from the installed package)."""
    from prefect.client.orchestration import get_client

    work = tmp_path_factory.mktemp("served")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    db, out, log = work / "data" / "screening.duckdb", work / "data" / "out", work / "serve.log"
    db.parent.mkdir()
    ingest_year_before(db, sample_inbox)  # the expected lists count on it (INCOME_DROP)
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [str(BIN / "screening"), "serve", "--inbox", str(sample_inbox), "--db", str(db),
             "--out", str(out)],
            cwd=elsewhere, env=env, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def deployment() -> Any:
        if proc.poll() is not None:
            pytest.fail(f"screening serve exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with get_client(sync_client=True) as client:
            try:
                return client.read_deployment_by_name("monthly-screening/monthly")
            except Exception:  # not registered yet
                return None

    try:
        found = wait_for(deployment, "screening serve to register its deployment", 240)
        yield {"deployment": found, "db": db, "out": out, "log": log, "proc": proc}
    finally:
        stop(proc)


def coming_slots(now: dt.datetime, count: int) -> list[dt.datetime]:
    """The next `count` times of "03:00 on the 5th" on the Shanghai clock after `now`."""
    local = now.astimezone(SHANGHAI)
    slots = []
    year, month = local.year, local.month
    while len(slots) < count:
        slot = dt.datetime(year, month, 5, 3, 0, tzinfo=SHANGHAI)
        if slot > now:
            slots.append(slot)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return slots


@pytest.mark.flow
def test_the_served_schedule_creates_the_coming_months_runs(served: dict[str, Any]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    deployment = served["deployment"]
    assert deployment.entrypoint == "screening.orchestration.flow.monthly_screening"
    assert deployment.parameters["inbox"] and "period" not in deployment.parameters
    expected = coming_slots(dt.datetime.now(dt.UTC), 3)

    def scheduled() -> list[dt.datetime]:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    )
                ),
            )
        times = sorted(r.expected_start_time for r in runs if r.expected_start_time)
        return times if len(times) >= len(expected) else []

    # The server's scheduler (every 2 s here, every 60 s by default) fills the slots.
    times = wait_for(scheduled, "the scheduler to create the coming runs", 180)
    assert times[: len(expected)] == expected
    # What the operator types to check: both commands answer (the 422 of sqlalchemy 2.1).
    env = {**os.environ, "COLUMNS": "250"}  # rich tables: no cut names
    listed = subprocess.run(
        [str(BIN / "prefect"), "deployment", "ls"], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "monthly-screening/monthly" in listed.stdout
    runs = subprocess.run(
        [str(BIN / "prefect"), "flow-run", "ls", "--state", "SCHEDULED"], env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert runs.returncode == 0, runs.stdout + runs.stderr
    rows = [line for line in runs.stdout.splitlines() if "monthly-screening" in line]
    assert len(rows) >= len(expected) and all("SCHEDULED" in r.upper() for r in rows), runs.stdout


@pytest.mark.flow
def test_a_deployment_run_of_the_served_flow_publishes_the_lists(
    served: dict[str, Any], sample_manifest: dict
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    period = FLOW_PERIODS[0]
    started = run_deployment("monthly-screening/monthly", parameters={"period": period}, timeout=0)

    def finished() -> Any:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(started.id).state
        return state if state is not None and state.is_final() else None

    state = wait_for(finished, "the served run to finish", 600, poll=2)
    assert state.is_completed(), f"{state}\n{served['log'].read_text()[-3000:]}"
    db, out = served["db"], served["out"]
    runs = query(db, "SELECT period, status FROM runs")
    assert runs.rows() == [(period, "success")]
    stored = query(db, f"SELECT * FROM suspects WHERE period = '{period}'")
    listed = {e["household_id"]: e["colour"] for e in sample_manifest["expected"][period]}
    assert dict(stored.select("household_id", "colour").rows()) == listed
    for township in stored["township"].unique():
        xlsx, csv = township_paths(out / period, township, period)
        assert xlsx.is_file() and csv.is_file()
    assert (out / period / "run-report.md").is_file()
