"""A province: three small counties screened as one Prefect flow on a local Dask cluster
of two processes, one of them with a held delivery.

Three synthetic counties of different sizes are generated once, and each county's first
month is screened (so each database has its list key secret and a previous list). The
province run of the second month runs `screening province run` as an operator does, in its
own process, under the session's Prefect server (conftest's `prefect_server`); a copy of
each county, taken before, is screened with `screening run` to compare. The province's
roll-up must count exactly what the counties published, and each county's files must be
the ones `screening run` publishes. The plain functions (a busy database, a refused run,
the province file's mistakes, the schedule) are tested without Prefect.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl

# prefect.main sets up Prefect's log handlers on import: done here, not first inside a
# CliRunner call, where they would bind to the runner's short-lived stderr.
import prefect.main
import pytest
from typer.testing import CliRunner

from screening import contract
from screening.cli import main as cli
from screening.db import lock
from screening.ingest.inbox import discover
from screening.orchestration.schedule import ScheduleError
from screening.pipeline.run import run_period
from screening.province import config, county, rollup, schedule
from screening.province.county import CountyResult
from screening.publish.files import SUSPECTS_FILE
from tests.support.common import BIN, query, unstamped, wait_for

FIRST, PERIOD = "2026-07", "2026-08"
# name → households: 2, 2 and 3 townships.
COUNTIES = {"甲县": 100, "乙县": 130, "丙县": 180}
HELD = "丙县"
ID18 = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")

runner = CliRunner()


def break_civil(inbox: Path) -> Path:
    """Replace the period's civil file by one whose every row is quarantined (a gate holds
    it); the good file goes into a subfolder (never read), returned."""
    old = discover(inbox, PERIOD, contract.load())["civil"].path
    assert old is not None
    (inbox / PERIOD / "old").mkdir()
    kept = inbox / PERIOD / "old" / old.name
    old.rename(kept)
    broken = pl.DataFrame(
        {"身份证号": ["0"] * 6, "救助类型": ["临时救助"] * 6, "变动类型": ["发放"] * 6,
         "日期": ["2026-08-10"] * 6, "金额": [str(100 + i) for i in range(6)]}
    )  # fmt: skip
    broken.write_csv(inbox / PERIOD / "民政救助_202608.csv")
    return kept


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three counties (inbox, database with the first month screened, its lists) and
    the province file, in one folder: copy it before changing anything."""
    from dev.sample import generate

    base = tmp_path_factory.mktemp("province")
    lines = ["out: province-out", "counties:"]
    for seed, (name, households) in enumerate(COUNTIES.items(), start=41):
        root = base / name
        generate(root / "inbox", households, [FIRST, PERIOD], seed)
        run_period(
            db=root / "screening.duckdb", inbox=root / "inbox", out=root / "out", period=FIRST
        )
        lines += [f"  - name: {name}", f"    inbox: {name}/inbox"]
        lines += [f"    db: {name}/screening.duckdb", f"    out: {name}/out"]
    break_civil(base / HELD / "inbox")
    (base / "province.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return base


def copy_of(prepared: Path, target: Path) -> Path:
    shutil.copytree(prepared, target)
    return target


@pytest.fixture(scope="module")
def province(
    prefect_server: str, prepared: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """`screening province run` of the second month, in its own process, on a local
    cluster of two worker processes; and `screening run` of the same month on a copy of
    each county taken before."""
    work = tmp_path_factory.mktemp("province-run")
    reference = copy_of(prepared, work / "reference")
    base = copy_of(prepared, work / "province")
    done = subprocess.run(
        [str(BIN / "screening"), "province", "run", "--period", PERIOD, "--config",
         str(base / "province.yaml"), "--workers", "2"],
        cwd=work, env=os.environ.copy(), capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    alone = {}
    for name in COUNTIES:
        root = reference / name
        alone[name] = runner.invoke(
            cli.app,
            ["run", "--period", PERIOD, "--inbox", str(root / "inbox"),
             "--db", str(root / "screening.duckdb"), "--out", str(root / "out")],
        )  # fmt: skip
    return {"base": base, "reference": reference, "done": done, "alone": alone}


def summary(base: Path, period: str = PERIOD) -> pl.DataFrame:
    return pl.read_parquet(base / "province-out" / period / rollup.SUMMARY_FILE)


def published_counts(out: Path, period: str = PERIOD) -> dict[tuple[str, str], int]:
    lists = pl.read_parquet(out / period / SUSPECTS_FILE)
    counted = lists.group_by("township", "colour").len()
    return {(t, c): n for t, c, n in counted.iter_rows()}


# ---------------------------------------------------------------- the province run


@pytest.mark.flow
def test_every_county_ends_with_its_status_and_one_held_does_not_stop_the_others(
    province: dict[str, Any],
) -> None:
    done, base = province["done"], province["base"]
    assert done.returncode == 3, done.stdout + done.stderr[-5000:]  # only a held delivery
    shown = "\n".join(unstamped(done.stdout))
    for name in COUNTIES:
        assert name in shown
    assert "暂扣 held" in shown and shown.count("成功 success") == 2
    assert not ID18.search(done.stdout + done.stderr)
    statuses = dict(summary(base).select("county", "status").unique().iter_rows())
    assert statuses == {"甲县": "success", "乙县": "success", HELD: "held"}
    for name in COUNTIES:  # each county's own database says the same, with the same run id
        runs = query(
            base / name / "screening.duckdb", f"SELECT * FROM runs WHERE period = '{PERIOD}'"
        )
        assert runs["status"].to_list() == [statuses[name]]
        ids_in_summary = summary(base).filter(pl.col("county") == name)["run_id"].unique()
        assert ids_in_summary.to_list() == runs["run_id"].to_list()
        assert not lock.lock_path(base / name / "screening.duckdb").exists()
    held = summary(base).filter(pl.col("county") == HELD)
    assert held.height == 1 and held["households"][0] is None and held["lists_run_id"][0] is None
    assert "--accept-held civil" in held["message"][0]
    # The same as `screening run` of each county: exit 0, 0 and 3.
    assert [r.exit_code for r in province["alone"].values()] == [0, 0, 3]


@pytest.mark.flow
def test_the_workers_report_their_task_runs_to_the_same_server(province: dict[str, Any]) -> None:
    """Each county's task ran in a worker process and its final state reached the session's
    Prefect server: completed, or failed for the held county."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )

    def states() -> dict[str, str] | None:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["province-counties"]))
            )
            first = min(runs, key=lambda r: r.start_time or r.created)  # the CLI's run
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[first.id]))
            )
        found = {t.name: t.state.name for t in tasks if t.state is not None}
        return found if set(found) == set(COUNTIES) and "Running" not in found.values() else None

    found = wait_for(states, "the county task runs' final states", 120)
    assert found == {"甲县": "Completed", "乙县": "Completed", HELD: "Failed"}


@pytest.mark.flow
def test_the_roll_up_counts_what_the_counties_published(province: dict[str, Any]) -> None:
    base, reference = province["base"], province["reference"]
    rows = summary(base).filter(pl.col("households").is_not_null())
    for name in COUNTIES:
        mine = rows.filter(pl.col("county") == name)
        got = {(t, c): n for t, c, n in mine.select("township", "colour", "households").iter_rows()}
        if name == HELD:
            assert got == {}
            continue
        assert got == published_counts(base / name / "out")
        assert got == published_counts(reference / name / "out")  # and `screening run`'s
        assert len({t for t, _c in got}) >= 2
    listed = f"SELECT count(*) AS n FROM suspects WHERE period = '{PERIOD}'"
    stored = sum(query(base / n / "screening.duckdb", listed)["n"][0] for n in COUNTIES)
    assert rows["households"].sum() == stored > 0

    db = base / "province-out" / rollup.DATABASE_FILE
    assert (db.stat().st_mode & 0o777) == 0o600
    per_county = query(db, "SELECT county, period, count(*) AS n FROM suspects GROUP BY ALL")
    for name in COUNTIES:
        for period in (FIRST, PERIOD):
            lists = base / name / "out" / period / SUSPECTS_FILE
            expected = pl.read_parquet(lists).height if lists.exists() else 0
            got = per_county.filter((pl.col("county") == name) & (pl.col("period") == period))
            assert (got["n"].sum() if got.height else 0) == expected, (name, period)
    view = query(db, f"SELECT * FROM province_summary WHERE period = '{PERIOD}'")
    assert view.equals(summary(base))
    for name in COUNTIES:
        county_db = base / name / "screening.duckdb"
        for table in ("match_rates", "scale_checks"):
            theirs = query(county_db, f"SELECT * FROM {table} ORDER BY ALL")
            ours = query(
                db, f"SELECT * EXCLUDE (county) FROM {table} WHERE county = '{name}' ORDER BY ALL"
            )
            assert ours.equals(theirs), (name, table)
        runs = query(db, f"SELECT run_id, status FROM runs WHERE county = '{name}' ORDER BY ALL")
        assert runs.equals(query(county_db, "SELECT run_id, status FROM runs ORDER BY ALL"))
    assert query(db, "SELECT count(*) AS n FROM answers")["n"][0] == 0  # none imported yet
    comments = query(db, "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal")
    assert set(comments["view_name"]) >= {"province_summary", "suspects", "answers", "runs"}
    assert comments["comment"].is_not_null().all()


@pytest.mark.flow
def test_the_province_copies_no_personal_data(province: dict[str, Any]) -> None:
    out = province["base"] / "province-out"
    copies = sorted((out / county.EXPORT_FOLDER).rglob("*.parquet"))
    assert {p.stem for p in copies} == {"match_rates", "scale_checks", "answers", "runs"}
    for path in copies:
        frame = pl.read_parquet(path)
        assert not {"id_number", "head_id_number", "head_name", "name", "note"} & set(frame.columns)
        assert (path.stat().st_mode & 0o777) == 0o600
    everything = b"".join(
        p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".duckdb"
    )
    assert not ID18.search(everything.decode("utf-8", "replace"))


def cells(path: Path, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet's cell values, the run id (which names each run) replaced."""
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {
            sheet.title: [
                tuple(v.replace(run_id, "<run>") if isinstance(v, str) else v for v in row)
                for row in sheet.iter_rows(values_only=True)
            ]
            for sheet in book.worksheets
        }
    finally:
        book.close()


@pytest.mark.flow
def test_each_county_publishes_what_screening_run_publishes(province: dict[str, Any]) -> None:
    base, reference = province["base"], province["reference"]
    for name in COUNTIES:
        ours, theirs = base / name / "out" / PERIOD, reference / name / "out" / PERIOD
        if name == HELD:  # held: nothing new published, by either
            assert not ours.exists() and not theirs.exists()
            continue
        files = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file())
        run_ids = [pl.read_parquet(d / SUSPECTS_FILE)["run_id"][0] for d in (ours, theirs)]
        compared = 0
        for rel in files:
            a, b = ours / rel, theirs / rel
            if rel.suffix == ".csv":
                assert a.read_bytes() == b.read_bytes(), rel
            elif rel.suffix == ".parquet":  # the run id names each run
                left, right = pl.read_parquet(a), pl.read_parquet(b)
                if "run_id" in left.columns:
                    left, right = left.drop("run_id"), right.drop("run_id")
                assert left.equals(right), rel
            elif rel.suffix == ".xlsx":
                assert cells(a, run_ids[0]) == cells(b, run_ids[1]), rel
            else:
                continue  # the run report: times and run ids
            compared += 1
        assert compared >= 5, files  # 3 parquet files, a township's xlsx and csv at least


@pytest.mark.flow
def test_the_province_report_shows_the_counties_side_by_side(province: dict[str, Any]) -> None:
    page = (province["base"] / "province-out" / PERIOD / rollup.REPORT_FILE).read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    table = page.split("Counties side by side", 1)[1].split("</table>", 1)[0]
    rows = [r for r in table.split("<tr") if any(name in r for name in COUNTIES)]
    assert [next(n for n in COUNTIES if n in r) for r in rows] == list(COUNTIES)
    assert "暂扣 held" in page and f"--county {HELD}" in page
    totals = summary(province["base"])["households"].sum()
    assert f"已发布名单合计 {totals:,} 户" in page
    assert not ID18.search(page)


@pytest.mark.flow
def test_a_rerun_of_one_county_on_an_existing_scheduler(
    province: dict[str, Any], tmp_path: Path
) -> None:
    """The held county, its file replaced, screened again alone on a Dask scheduler
    that was already running; the other counties are read as they stand."""
    from distributed import LocalCluster

    from screening.province.flow import run_province

    base = copy_of(province["base"], tmp_path / "province")
    before = summary(base).filter(pl.col("county") != HELD)
    inbox = base / HELD / "inbox" / PERIOD
    (inbox / "民政救助_202608.csv").unlink()
    kept = next((inbox / "old").iterdir())
    kept.rename(inbox / kept.name)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        outcome = run_province(
            base / "province.yaml", PERIOD, [HELD], dask_address=cluster.scheduler_address
        )
    assert outcome.exit_code == 0
    assert [(r.county, r.ran, r.status) for r in outcome.results] == [
        ("甲县", False, "success"), ("乙县", False, "success"), (HELD, True, "success"),
    ]  # fmt: skip
    assert "scheduler" in outcome.workers
    after = summary(base)
    assert after.filter(pl.col("county") != HELD).equals(before)  # the same runs, re-read
    mine = after.filter(pl.col("county") == HELD)
    assert mine["status"].unique().to_list() == ["success"]
    assert (
        mine["households"].sum()
        == pl.read_parquet(base / HELD / "out" / PERIOD / SUSPECTS_FILE).height
    )


# ---------------------------------------------------------------- without Prefect


@pytest.mark.parametrize("trouble", ["busy", "two files"])
def test_a_county_that_cannot_run_gets_its_status_and_raises_nothing(
    prepared: Path, tmp_path: Path, trouble: str
) -> None:
    base = copy_of(prepared, tmp_path / "p")
    spec = config.load(base / "province.yaml").counties[0]
    if trouble == "two files":  # a bad delivery: refused before anything is recorded
        roster = discover(spec.inbox, PERIOD, contract.load())["roster"].path
        assert roster is not None
        shutil.copy(roster, roster.with_name("人口_副本" + roster.suffix))
        result = county.process(
            spec, PERIOD, screen=True, province_out=base / "out", folder="x", busy_timeout=0
        )
        assert result.status == "failed" and "TwoFilesForOneSource" in result.message
    else:  # a busy database: another screening of the county holds its lock
        with lock.hold(spec.db):
            result = county.process(
                spec, PERIOD, screen=True, province_out=base / "out", folder="x", busy_timeout=0
            )
        assert result.status == "busy" and "Busy" in result.message
    assert result.exit_code == 2 and result.run_id is None and result.ran
    assert result.listed == () and result.lists_run_id is None
    assert len(result.published) == 1  # the first month's lists, still there
    runs = query(spec.db, "SELECT period, status FROM runs")
    assert runs.rows() == [(FIRST, "success")]  # nothing recorded for the period


def test_local_workers_share_the_machine_and_the_prefect_server() -> None:
    from screening.province.flow import local_workers, worker_environment

    cores = os.cpu_count() or 1
    assert local_workers(1) == 1 and local_workers(100) == cores and local_workers(100, 3) == 3
    env = worker_environment("http://127.0.0.1:4200/api/", 2)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api/"
    assert env["PREFECT_HOME"] == os.environ["PREFECT_HOME"]  # conftest's private home
    assert env["POLARS_MAX_THREADS"] == str(max(1, cores // 2))


def test_a_county_without_lists_has_one_summary_row() -> None:
    held = CountyResult("丙县", PERIOD, True, "held", 3, "r1", "DeliveryHeld: …")
    done = CountyResult(
        "甲县", PERIOD, True, "success", 0, "r2", lists_run_id="r2",
        listed=(("城关镇", "蓝", 3), ("城关镇", "红", 1), ("白鹤镇", "黄", 2)),
    )  # fmt: skip
    frame = rollup.summary_frame(PERIOD, [done, held])
    assert frame.select("county", "township", "colour", "households").rows() == [
        ("甲县", "城关镇", "红", 1), ("甲县", "城关镇", "蓝", 3), ("甲县", "白鹤镇", "黄", 2),
        ("丙县", None, None, None),
    ]  # fmt: skip
    assert frame["status"].to_list() == ["success"] * 3 + ["held"]


PROVINCE = """\
out: out
counties:
  - name: 甲县
    inbox: a/inbox
    db: a/screening.duckdb
    out: a/out
  - name: 乙县
    inbox: b/inbox
    db: b/screening.duckdb
    out: b/out
"""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("out: out", "outt: out"), "unknown key 'outt'"),
        (("    db: b/screening.duckdb", "    db: a/screening.duckdb"), "share their db"),
        (("  - name: 乙县", "  - name: 甲县"), "share their name"),
        (("    out: b/out", "    output: b/out"), "did you mean 'out'"),
        (("    inbox: a/inbox\n", ""), "missing 'inbox'"),
        (("    out: a/out", "    out: out"), "province's own out folder"),
        (("counties:", "counties: 3\nx:"), "unknown key 'x'"),
        (("out: out", "out: [a"), "cannot read province file"),
    ],
)
def test_a_province_file_mistake_is_one_line(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    path = tmp_path / "province.yaml"
    path.write_text(PROVINCE.replace(*change), encoding="utf-8")
    with pytest.raises(config.ProvinceConfigError, match=re.escape(problem)) as refused:
        config.load(path)
    assert "\n" not in str(refused.value) and str(refused.value)[:1] >= "\u2e80"
    result = runner.invoke(cli.app, ["province", "run", "-p", PERIOD, "--config", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = unstamped(result.stderr)
    assert line.startswith("错误 error: ") and problem in line


def test_the_province_file_resolves_paths_and_names_the_nearest_county(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "conf" / "province.yaml"
    path.parent.mkdir()
    path.write_text(PROVINCE + "busy_timeout: 30\nworkers: 3\n", encoding="utf-8")
    monkeypatch.delenv("SCREENING_BUSY_TIMEOUT")
    loaded = config.load(path)
    assert loaded.out == tmp_path / "conf" / "out"
    assert loaded.counties[1].db == tmp_path / "conf" / "b" / "screening.duckdb"
    assert (loaded.busy_timeout, loaded.workers, loaded.cron) == (30.0, 3, "0 3 5 * *")
    assert config.load(path, busy_timeout=5).busy_timeout == 5
    assert [c.name for c in loaded.select(["乙县"])] == ["乙县"]
    with pytest.raises(config.ProvinceConfigError, match="nearest: 乙县"):
        loaded.select(["乙"])
    result = runner.invoke(
        cli.app, ["province", "run", "-p", PERIOD, "-c", str(path), "--county", "乙"]
    )
    assert result.exit_code == 2 and "no county '乙'" in result.stderr


# ---------------------------------------------------------------- the schedule


def test_the_province_deployment_and_its_crontab_line(tmp_path: Path) -> None:
    path = tmp_path / "province.yaml"
    path.write_text(PROVINCE + 'cron: "30 2 6 * *"\n', encoding="utf-8")
    loaded = config.load(path)
    deployment = schedule.build_deployment(loaded, dask_address="tcp://10.0.0.5:8786")
    (only,) = deployment.schedules
    assert (only.schedule.cron, only.schedule.timezone) == ("30 2 6 * *", "Asia/Shanghai")
    assert deployment.entrypoint == "screening.province.flow.province_screening"
    assert deployment.flow_name == "province-screening" and deployment.name == "province-monthly"
    assert deployment.parameters == {
        "config_file": str(path),
        "dask_address": "tcp://10.0.0.5:8786",
    }
    assert (
        schedule.build_deployment(loaded, cron="0 4 5 * *").schedules[0].schedule.cron
        == "0 4 5 * *"
    )
    with pytest.raises(ScheduleError, match="invalid cron"):
        schedule.build_deployment(loaded, cron="0 3 35 * *")

    stub = tmp_path / "bin" / "screening"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    line = schedule.crontab_line(loaded, workers=4, screening_bin=stub)
    assert line.startswith("30 2 6 * * ")
    command = line.split(" ", 5)[5].replace(r"\%", "%")
    subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": os.environ["PATH"]})
    args = (tmp_path / "out" / schedule.LOG_FILE).read_text(encoding="utf-8").split()
    assert args[:3] == ["province", "run", "--period"] and re.fullmatch(r"\d{4}-\d{2}", args[3])
    assert args[4:] == ["--config", str(path), "--workers", "4"]


def test_province_serve_needs_a_prefect_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    path = tmp_path / "province.yaml"
    path.write_text(PROVINCE, encoding="utf-8")
    served: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(prefect, "serve", lambda *d, **kw: served.append((d, kw)))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(cli.app, ["province", "serve", "-c", str(path)])
    assert result.exit_code == 2 and "PREFECT_API_URL" in result.stderr and served == []
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        schedule.serve(config.load(path), workers=2)
    ((deployments, options),) = served
    assert [d.parameters for d in deployments] == [{"config_file": str(path), "workers": 2}]
    assert options == {"limit": 1}
    printed = runner.invoke(cli.app, ["province", "serve", "-c", str(path), "--print-cron"])
    assert printed.exit_code == 0 and " province run --period " in printed.stdout


def test_the_report_masks_what_it_shows(tmp_path: Path) -> None:
    """A county's message may name a file named after a person: shown masked, escaped."""
    from screening.province.report import render_html

    message = "FileRejected: <430624198101146835_王福.xlsx>"
    page = render_html(
        PERIOD,
        [CountyResult("甲县", PERIOD, True, "failed", 2, None, message)],
        dt.datetime(2026, 9, 5, 3, 0),
        tmp_path / "province.yaml",
    )
    assert "430624198101146835" not in page and "&lt;430624********6835_王福.xlsx&gt;" in page
    assert page == render_html(
        PERIOD,
        [CountyResult("甲县", PERIOD, True, "failed", 2, None, message)],
        dt.datetime(2026, 9, 5, 3, 0),
        tmp_path / "province.yaml",
    )


def test_the_bench_projects_a_province_from_what_it_measured() -> None:
    """The bench's arithmetic (its runs are `make bench SIZE=counties`): 4 counties on 2
    workers, 10 s of wall and 6 s of CPU each, in a flow of 30 s: 10 s of startup."""
    from dev import bench_province as bp

    tasks = [
        bp.CountyRun(f"c{i}", 10.0, cpu_seconds=6.0, peak_rss=(500 + i) << 20, worker=f"w{i % 2}")
        for i in range(4)
    ]
    alone = [bp.CountyRun(f"c{i}", 12.0, 8.0, 400 << 20) for i in range(4)]
    result = bp.ProvinceBench(
        counties=4, households=100, persons=351, workers=2, generation_seconds=None,
        setup_seconds=1.0, sequential=alone,
        sequential_seconds=48.0, server_seconds=5.0, province=tasks, province_seconds=30.0,
        load={"start": (1.0, 1.0, 1.0)}, machine={"cpu": "x", "cores": "2", "memory": "1 GiB"},
        date="2026-11-29", folder=Path("."), agree=True,
    )  # fmt: skip
    assert bp.startup_seconds(result) == 10.0 and result.speedup == 1.6
    assert result.peak_per_worker() == {"w0": 502 << 20, "w1": 503 << 20}
    seconds, memory = bp.projection(result, 100, 8)
    assert seconds == 10.0 + 13 * 6.0 and memory == 8 * (503 << 20)
    text = bp.render(result)
    assert "one after another ÷ province = 1.60×" in text and "MISMATCH" not in text
