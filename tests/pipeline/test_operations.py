"""Operations as the county's operator meets them: where the settings come from, the
synthetic sample only by name (and then every output says so), no full ID number in
anything a person reads, the console under cron, and the lock and a busy database.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner, Result

from screening import config, ids
from screening.cli import main as cli
from screening.db import lock
from screening.db.connect import DatabaseBusy, connect
from screening.pipeline import run
from tests.support import paused_screening as paused
from tests.support.common import BIN, SAMPLE_PERIODS, query

FIRST, LAST = SAMPLE_PERIODS[0], SAMPLE_PERIODS[-1]
ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")
# A scan a village sent by mistake, named after its holder (a valid, synthetic ID number).
SCAN_ID = "43062419760102137" + ids.check_digit("43062419760102137")
SCAN = f"{SCAN_ID}_王福_身份证.pdf"

runner = CliRunner()


def invoke(*args: object, cwd: Path | None = None) -> Result:
    """The CLI as cron runs it (output not a terminal), no full ID number printed."""
    here = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(cli.app, [str(a) for a in args])
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    printed = ids.fold_width(result.stdout + result.stderr)
    assert not ID18.search(printed), f"full ID number printed by {args}"
    return result


def lines(text: str) -> list[str]:
    """Every line of plain output carries its time; returned without it."""
    found = [line for line in text.splitlines() if line]
    assert all(STAMP.match(line) for line in found), text
    return [STAMP.sub("", line) for line in found]


# ---------------------------------------------------------------- settings


def test_settings_come_from_flags_then_environment_then_the_settings_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "screening.toml").write_text(
        'inbox = "in"\ndb = "data/s.duckdb"\nparams = "county.yaml"\nmask_ids = true\n'
        'busy_timeout = 30\ncron = "0 4 6 * *"\n',
        encoding="utf-8",
    )
    from_file = config.load(cwd=tmp_path, environ={})
    assert from_file.inbox == tmp_path / "in"  # relative to the file's folder
    assert from_file.db == tmp_path / "data" / "s.duckdb"
    assert from_file.out == tmp_path / "data" / "out"
    assert from_file.params_file == tmp_path / "county.yaml"
    assert (from_file.mask_ids, from_file.busy_timeout, from_file.cron) == (True, 30, "0 4 6 * *")
    assert from_file.origin["inbox"] == "screening.toml" and not from_file.demo

    environ = {"SCREENING_INBOX": "/srv/inbox", "SCREENING_MASK_IDS": "0"}
    from_env = config.load(cwd=tmp_path, environ=environ)
    assert (from_env.inbox, from_env.mask_ids) == (Path("/srv/inbox"), False)
    assert from_env.origin["inbox"] == "$SCREENING_INBOX"

    flagged = config.load(cwd=tmp_path, environ=environ, inbox=Path("x"), mask_ids=True)
    assert (flagged.inbox, flagged.mask_ids, flagged.origin["inbox"]) == (
        Path("x"),
        True,
        "--inbox",
    )


def test_without_any_setting_there_is_no_inbox(tmp_path: Path) -> None:
    bare = config.load(cwd=tmp_path, environ={})
    assert bare.inbox is None and bare.db == tmp_path / "screening.duckdb"
    with pytest.raises(config.SettingsError) as refused:
        bare.require_inbox()
    assert str(refused.value).startswith("未指定收件箱 no inbox given")
    assert "--demo" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('inbx = "in"\n', "did you mean 'inbox'"),
        ("busy_timeout = -1\n", "busy_timeout"),
        ("mask_ids = 3\n", "mask_ids"),
        ("inbox = [\n", "cannot read"),
    ],
)
def test_a_bad_settings_file_is_one_clear_error(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "screening.toml").write_text(text, encoding="utf-8")
    with pytest.raises(config.SettingsError, match=re.escape(says)):
        config.load(cwd=tmp_path, environ={})


def test_demo_uses_the_bundled_county_and_its_own_database(tmp_path: Path) -> None:
    (tmp_path / "screening.toml").write_text('db = "/srv/prod.duckdb"\n', encoding="utf-8")
    environ = {"SCREENING_INBOX": "/srv/inbox", "SCREENING_OUT": "/srv/out"}
    demo = config.load(cwd=tmp_path, environ=environ, demo=True)
    assert demo.demo and demo.inbox == config.demo_inbox()
    # Production's database and folders, named by the environment or the file, untouched.
    assert demo.db == tmp_path / "demo" / "screening.duckdb"
    assert demo.out == tmp_path / "demo" / "out"
    given = config.load(cwd=tmp_path, environ=environ, demo=True, db=tmp_path / "d.duckdb")
    assert given.db == tmp_path / "d.duckdb"
    with pytest.raises(config.SettingsError, match="not both"):
        config.load(cwd=tmp_path, environ={}, demo=True, inbox=tmp_path)
    # The bundled folder named as an inbox is the sample too, and is marked as such.
    assert config.load(cwd=tmp_path, environ={}, inbox=config.demo_inbox()).demo


# ---------------------------------------------------------------- no guessed inbox


def test_no_command_screens_a_guessed_inbox(tmp_path: Path) -> None:
    for args in (
        ["run", "-p", FIRST],
        ["ingest", "-p", FIRST],
        ["serve"],
        ["serve", "--print-cron"],
    ):
        result = invoke(*args, cwd=tmp_path)
        assert result.exit_code == 2 and result.stdout == ""
        (line,) = lines(result.stderr)
        assert line.startswith("错误 error: 未指定收件箱 no inbox given"), line
    assert list(tmp_path.iterdir()) == []  # no database, no lists, no crontab line


def test_a_schedule_is_not_set_up_on_an_inbox_that_does_not_exist(tmp_path: Path) -> None:
    for args in (["serve"], ["serve", "--print-cron"]):
        result = invoke(*args, "--inbox", tmp_path / "inbxo", cwd=tmp_path)
        assert result.exit_code == 2 and result.stdout == ""
        (line,) = lines(result.stderr)
        assert "收件箱文件夹不存在 the inbox folder does not exist" in line, line
        assert "inbxo" in line


def test_the_settings_file_names_the_inbox_of_every_command(
    sample_inbox: Path, tmp_path: Path
) -> None:
    (tmp_path / "screening.toml").write_text(
        f'inbox = "{sample_inbox}"\ndb = "county.duckdb"\n', encoding="utf-8"
    )
    result = invoke("run", "-p", FIRST, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / FIRST / "run-report.md").is_file()
    assert query(tmp_path / "county.duckdb", "SELECT status FROM runs").rows() == [("success",)]
    line = invoke("serve", "--print-cron", cwd=tmp_path).stdout
    assert f"--inbox {sample_inbox} --db {tmp_path / 'county.duckdb'}" in line
    assert "示例数据" not in result.stdout


# ---------------------------------------------------------------- the synthetic sample


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """`screening run --demo` in an empty folder, as a new user tries it."""
    here = tmp_path_factory.mktemp("demo")
    result = invoke("run", "--demo", "-p", FIRST, cwd=here)
    assert result.exit_code == 0, result.output
    return {"root": here, "result": result}


def test_a_demo_run_says_it_is_a_synthetic_sample_everywhere(demo_run: dict) -> None:
    root, result = demo_run["root"], demo_run["result"]
    assert lines(result.stdout)[0].startswith(config.DEMO_LABEL)  # the console, first
    db, out = root / "demo" / "screening.duckdb", root / "demo" / "out"
    assert query(db, "SELECT demo FROM runs")["demo"].to_list() == [True]
    report = (out / FIRST / "run-report.md").read_text(encoding="utf-8")
    assert config.DEMO_LABEL in report.split("## ", 1)[0]  # the report's head
    lists = sorted((out / FIRST).glob("*/疑似监测对象_*.xlsx"))
    assert lists
    for path in lists:
        book = openpyxl.load_workbook(path)
        # The 说明 sheet, first (in Chinese only: the lists are the township's).
        about = [(r[0], r[1]) for r in book["说明"].iter_rows(values_only=True) if r[1]]
        assert about[0][0] == "示例数据" and "虚构" in about[0][1]
        assert "示例数据" in book.worksheets[0].oddHeader.center.text  # every printed page
        assert "示例数据" in str(book.worksheets[0]["A1"].value)  # the 台账's title
    for args in (["summary"], ["report", "-p", FIRST], ["quarantine", "-p", FIRST]):
        shown = invoke(*args, "--db", db)
        assert lines(shown.stdout)[0].startswith(config.DEMO_LABEL), args


def test_the_sample_and_real_data_never_share_a_database(
    demo_run: dict, sample_inbox: Path, tmp_path: Path
) -> None:
    db = tmp_path / "screening.duckdb"
    shutil.copy2(demo_run["root"] / "demo" / "screening.duckdb", db)
    before = query(db, "SELECT * FROM runs")
    result = invoke("run", "-p", FIRST, "--inbox", sample_inbox, "--db", db)
    (line,) = lines(result.stderr)
    assert "holds the synthetic sample" in line and line.startswith("错误 error: 数据库")
    assert query(db, "SELECT * FROM runs").equals(before)  # refused, not a failed run
    real = tmp_path / "real.duckdb"
    assert invoke("run", "-p", FIRST, "--inbox", sample_inbox, "--db", real).exit_code == 0
    (line,) = lines(invoke("run", "--demo", "-p", FIRST, "--db", real).stderr)
    assert "runs of real data" in line


# ---------------------------------------------------------------- personal data


@pytest.fixture
def inbox_with_a_scan(inbox_copy: Path) -> Path:
    (inbox_copy / FIRST / SCAN).write_bytes(b"%PDF-1.4 scan")
    return inbox_copy


def test_a_file_named_after_an_id_number_is_masked_wherever_it_is_named(
    inbox_with_a_scan: Path, tmp_path: Path
) -> None:
    db, out = tmp_path / "s.duckdb", tmp_path / "out"
    masked = ids.mask(SCAN_ID) + "_王福_身份证.pdf"
    for args in (["ingest"], ["run", "--out", out]):
        result = invoke(*args, "-p", FIRST, "--inbox", inbox_with_a_scan, "--db", db)
        assert result.exit_code == 0, result.output
        assert masked in "".join(lines(result.stdout))  # said, but masked
    report = (out / FIRST / "run-report.md").read_text(encoding="utf-8")
    assert SCAN_ID not in report and "王福" in report  # named in the warnings, masked
    assert invoke("report", "-p", FIRST, "--db", db, "--out", out).exit_code == 0


def test_explain_masks_a_household_id_that_is_the_heads_id_number(
    screened: dict[str, Path], tmp_path: Path
) -> None:
    # Some counties number households with the head's ID number.
    db = tmp_path / "s.duckdb"
    shutil.copy2(screened["db"], db)
    con = connect(db)
    head, household = con.execute(
        "SELECT head_id_number, household_id FROM suspects WHERE period = ? LIMIT 1", [LAST]
    ).fetchone()  # type: ignore[misc]
    for table in ("stg_roster", "suspects", "screened_households", "evidence"):
        con.execute(
            f"UPDATE {table} SET household_id = ? WHERE household_id = ?", [head, household]
        )
    con.close()
    result = invoke("explain", head, "-p", LAST, "--db", db)
    assert result.exit_code == 0, result.output
    assert f"户 household {ids.mask(head)}" in result.stdout


def test_explain_by_name_lists_the_households_to_choose_from(screened: dict[str, Path]) -> None:
    db = screened["db"]
    name, count = query(
        db,
        "SELECT name, count(DISTINCT household_id) AS n FROM stg_roster WHERE period = "
        f"(SELECT max(period) FROM stg_roster WHERE period <= '{LAST}') GROUP BY name "
        "ORDER BY n DESC, name LIMIT 1",
    ).row(0)
    result = invoke("explain", name, "-p", LAST, "--db", db)
    assert result.exit_code == 0, result.output
    shown = "".join(lines(result.stdout))
    members = query(
        db,
        "SELECT id_number, household_id FROM stg_roster WHERE period = (SELECT max(period) "
        f"FROM stg_roster WHERE period <= '{LAST}') AND name = '{name}'",
    )
    assert members.height >= count >= 1
    for id_number, household in members.rows():
        assert ids.mask(id_number) in shown and household in shown
    assert "screening explain <户编号>" in shown
    # A name nobody has is still one clear line.
    missing = invoke("explain", "无此人", "-p", LAST, "--db", db)
    (line,) = lines(missing.stderr)
    assert line.startswith("错误 error:") and "name" in line


def test_sources_are_named_in_chinese_or_english(screened: dict[str, Path]) -> None:
    db = screened["db"]
    english = invoke("quarantine", "-p", FIRST, "--source", "medical", "--db", db, "--limit", 0)
    for name in ("医保", "医保住院结算", "ＭＥＤＩＣＡＬ"):
        chinese = invoke("quarantine", "-p", FIRST, "--source", name, "--db", db, "--limit", 0)
        assert chinese.exit_code == 0, chinese.output
        assert lines(chinese.stdout) == lines(english.stdout)
    (line,) = lines(invoke("quarantine", "-p", FIRST, "--source", "医疗", "--db", db).stderr)
    assert line.startswith("错误 error: 未知的数据来源") and "医保 medical" in line


# ---------------------------------------------------------------- the console


def test_under_cron_the_console_is_whole_timestamped_lines(
    screened: dict[str, Path], tmp_path: Path
) -> None:
    # No wide console here: the width is what cron's log gets.
    result = invoke("ingest", "-p", FIRST, "--inbox", screened["inbox"], "--db", tmp_path / "s")
    assert result.exit_code == 0, result.output
    shown = lines(result.stdout)
    files = [p.name for p in (screened["inbox"] / FIRST).iterdir() if p.suffix != ".json"]
    assert files
    for name in files:  # a file name is never cut over two lines
        assert any(ids.mask_text(name) in line for line in shown), name
    assert all("\x1b[" not in line for line in shown)  # no colour codes in a log


def test_help_starts_without_the_heavy_libraries() -> None:
    code = (
        "import sys, screening.cli.main\n"
        "heavy = ('polars', 'duckdb', 'pandas', 'pandera', 'prefect', 'pyarrow', 'xlsxwriter',\n"
        "         'matplotlib')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
    helped = subprocess.run(
        [str(BIN / "screening"), "--help"], capture_output=True, text=True, check=True
    )
    assert "screening" in helped.stdout


# ---------------------------------------------------------------- lock and busy database


def test_a_database_reached_through_a_symlink_has_the_same_lock(tmp_path: Path) -> None:
    real = tmp_path / "data" / "screening.duckdb"
    real.parent.mkdir()
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    folder_link = tmp_path / "alias"
    folder_link.symlink_to(real.parent)
    assert lock.lock_path(link) == lock.lock_path(real) == lock.lock_path(folder_link / real.name)
    with lock.hold(link), pytest.raises(DatabaseBusy, match="another screening process"):
        lock.acquire(folder_link / ".." / "data" / real.name)
    assert not lock.lock_path(real).exists()


@pytest.fixture
def analyst_session(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Opens the database read-only in another process for `seconds`, as an analyst's
    DuckDB session would, once the test says when (returns when it is open)."""
    procs: list[subprocess.Popen[str]] = []

    def open_for(db: Path, seconds: float) -> None:
        code = (
            "import duckdb, sys, time\n"
            "con = duckdb.connect(sys.argv[1], read_only=True)\n"
            "print('open', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "con.close()\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"

    yield open_for
    for proc in procs:
        proc.wait(timeout=120)


def test_a_busy_database_is_waited_for_with_a_message(
    analyst_session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "s.duckdb"
    connect(db).close()
    analyst_session(db, 3)
    with caplog.at_level(logging.WARNING, logger="screening.db.connect"):
        con = connect(db, wait=120)  # opens once the session has closed
    con.close()
    (said,) = [r.getMessage() for r in caplog.records if r.name == "screening.db.connect"]
    assert said.startswith(f"数据库 {db}") and "waiting up to 2 min" in said
    analyst_session(db, 8)  # far longer than the 1 s we wait
    with pytest.raises(DatabaseBusy, match="still after waiting 1 s"):
        connect(db, wait=1)


def test_an_analyst_opening_the_database_between_stages_delays_the_run(
    analyst_session,
    sample_inbox: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db, out = tmp_path / "s.duckdb", tmp_path / "out"
    stages: list[str] = []

    def between(name: str) -> None:
        stages.append(name)
        if name == "screen":  # before publish, which must write
            analyst_session(db, 4)

    monkeypatch.setattr(run, "after_stage", between)
    with caplog.at_level(logging.WARNING, logger="screening.db.connect"):
        done = run.run_period(db=db, inbox=sample_inbox, out=out, period=FIRST, busy_timeout=120)
    assert query(db, "SELECT status FROM runs").rows() == [("success",)]
    assert (out / FIRST / "run-report.md").is_file() and done.suspects.height > 0
    assert [r for r in caplog.records if "waiting up to" in r.getMessage()]
    assert stages == ["prepare", "start", "ingest", "screen", "store", "publish", "finish"]


def test_a_second_run_is_refused_while_the_first_runs_through_a_symlink(
    sample_inbox: Path, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "screening.duckdb"
    db.parent.mkdir()
    link = tmp_path / "link.duckdb"
    link.symlink_to(db)
    marker = tmp_path / "paused"
    first = subprocess.Popen(
        paused.command("run", "-p", FIRST, "--inbox", str(sample_inbox), "--db", str(db)),
        env=paused.environment("ingest", marker),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = threading.Event()
        for _ in range(600):
            if marker.exists():
                ready.set()
                break
            ready.wait(0.2)
        assert ready.is_set(), "the first run never reached its pause"
        result = invoke("run", "-p", FIRST, "--inbox", sample_inbox, "--db", link)
        (line,) = lines(result.stderr)
        assert "another screening process" in line
        rows = query(db, "SELECT status FROM runs").rows()
        assert rows == [("running",)]  # the first run is not closed as interrupted
    finally:
        first.kill()
        first.wait(timeout=60)
    assert json.loads(lock.lock_path(db).read_text())["pid"] == first.pid


def test_every_error_line_is_chinese_first(sample_inbox: Path, tmp_path: Path) -> None:
    bad_params = tmp_path / "county.yaml"
    bad_params.write_text("monitoring_line: [\n", encoding="utf-8")
    bad_aliases = tmp_path / "aliases.yaml"
    bad_aliases.write_text("nosuch:\n  x: [y]\n", encoding="utf-8")
    db = tmp_path / "s.duckdb"
    for args in (
        ["run", "-p", "2026-13", "--inbox", sample_inbox],
        ["run", "-p", FIRST, "--inbox", sample_inbox, "--db", db, "--params", bad_params],
        ["run", "-p", FIRST, "--inbox", sample_inbox, "--db", db, "--aliases", bad_aliases],
        ["run", "-p", FIRST, "--inbox", tmp_path / "nowhere"],
        ["run", "-p", "2030-01", "--inbox", sample_inbox, "--db", db],
        ["summary", "--db", db],
        ["explain", "x", "-p", FIRST, "--db", db],
        ["feedback", "import", tmp_path / "none.xlsx", "-p", FIRST, "--db", db],
        ["serve", "--inbox", sample_inbox, "--cron", "0 3 35 * *", "--print-cron"],
    ):
        result = invoke(*args)
        (line,) = lines(result.stderr)
        assert line.startswith("错误 error: "), args
        assert re.match(r"[\u4e00-\u9fff]", line.removeprefix("错误 error: ")), line
