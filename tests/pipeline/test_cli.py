"""The command line an officer uses: help, explain, quarantine, report, and the one-line
errors that leave the database and the published files as they were.

One database is screened once per session (the sample county, three periods); tests
that could change it work on a copy. Every command's output is searched for full ID
numbers.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import polars as pl

# prefect.main sets up Prefect's log handlers on import: done here, not first inside a
# CliRunner call (`serve`), where they would bind to the runner's short-lived stderr and
# break the logging of every later test.
import prefect.main  # noqa: F401
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner, Result

from screening import contract, ids
from screening.cli import main as cli
from screening.db import lock
from screening.db import roster as db_roster
from screening.db.connect import connect
from screening.inspect import explain as why
from screening.inspect.quarantine import check_label, mask_raw_value
from screening.inspect.run_report import run_report
from screening.publish import markdown
from tests.support.common import SAMPLE_PERIODS, query, unstamped

FIRST, LAST = SAMPLE_PERIODS[0], SAMPLE_PERIODS[-1]
ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
CJK = re.compile(r"[\u4e00-\u9fff]")
COMMANDS = ["run", "ingest", "summary", "explain", "quarantine", "report", "whatif", "serve"]

runner = CliRunner()


@pytest.fixture
def workspace(screened: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A copy of the screened database and its published lists, for tests that may write."""
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copy2(screened["db"], db)
    shutil.copytree(screened["out"], out)
    return {"db": db, "out": out, "inbox": screened["inbox"], "root": tmp_path}


pytestmark = pytest.mark.usefixtures("wide_console")


def invoke(*args: object, ids_allowed: bool = False) -> Result:
    """Run the CLI; unexpected exceptions fail the test, and no full ID number may be
    printed (full-width digits folded first, so they cannot hide one)."""
    result = runner.invoke(cli.app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if not ids_allowed:
        printed = ids.fold_width(result.stdout + result.stderr)
        assert not ID18.search(printed), f"full ID number printed by {args}"
    return result


def flat(text: str) -> str:
    """Output without white space and table borders: a value folded over lines is whole."""
    return re.sub(r"[\s│┃|]", "", text)


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = unstamped(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("错误 error:")
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (the database and the published lists) by content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def member_ids(db: Path, household_id: str, period: str = LAST) -> list[str]:
    frame = query(
        db,
        "SELECT id_number FROM stg_roster WHERE household_id = "
        f"'{household_id}' AND period = (SELECT max(period) FROM stg_roster "
        f"WHERE period <= '{period}')",
    )
    return frame["id_number"].to_list()


def planted(manifest: dict, case: str) -> dict:
    return next(p for p in manifest["planted"] if p["case"] == case)


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_of_every_command_exits_0_and_speaks_chinese(command: str) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert CJK.search(result.stdout)


@pytest.mark.parametrize("command", ["run", "ingest", "summary", "explain", "quarantine", "report"])
def test_help_shows_the_default_database(command: str) -> None:
    # Defaults sit in brackets, which rich would swallow as markup if they were help text.
    assert "screening.duckdb" in invoke(command, "--help").stdout


def test_the_app_lists_every_command() -> None:
    listed = invoke("--help").stdout
    for command in COMMANDS:
        assert command in listed


# ---------------------------------------------------------------- ingest


def test_ingest_loads_a_period_and_shows_every_source(
    screened: dict[str, Path], tmp_path: Path
) -> None:
    db = tmp_path / "ingest.duckdb"
    result = invoke("ingest", "--period", FIRST, "--inbox", screened["inbox"], "--db", db)
    assert result.exit_code == 0, result.output
    for source in ("roster", "medical", "education", "traffic", "civil", "disability"):
        assert source in result.stdout
    assert query(db, "SELECT count(*) AS n FROM stg_roster")["n"][0] > 0
    assert not lock.lock_path(db).exists()


def test_ingest_is_refused_while_another_run_holds_the_database(
    screened: dict[str, Path], tmp_path: Path
) -> None:
    db = tmp_path / "ingest.duckdb"
    with lock.hold(db):
        line = one_error_line(
            invoke("ingest", "--period", FIRST, "--inbox", screened["inbox"], "--db", db)
        )
    assert "lock" in line or "in use" in line


def test_an_unexpected_failure_is_still_one_masked_line(
    screened: dict[str, Path], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = invoke(
        "run", "--period", LAST, "--inbox", screened["inbox"],
        "--db", tmp_path / "s.duckdb", "--out", blocker / "out",
    )  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = unstamped(result.stderr)
    assert line.startswith("内部错误 internal error: NotADirectoryError")
    kept = Path(re.search(r"details: (\S+)\)", line).group(1))  # type: ignore[union-attr]
    assert "Traceback" in kept.read_text(encoding="utf-8")
    assert oct(kept.stat().st_mode & 0o777) == "0o600"


# ---------------------------------------------------------------- serve


def test_serve_prints_a_crontab_line_for_last_month(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    result = invoke(
        "serve", "--print-cron", "--inbox", inbox, "--db", tmp_path / "s.duckdb",
        "--cron", "0 4 6 * *",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()  # plain: no timestamp, never wrapped
    assert line.startswith("0 4 6 * * ")
    assert "screening run --period" in line and "Asia/Shanghai" in line
    assert str(tmp_path / "s.duckdb") in line and f"--inbox {inbox}" in line


def test_serve_without_a_prefect_server_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # The flow tests' server sets an API URL for the session; this test needs none.
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        line = one_error_line(invoke("serve", "--inbox", tmp_path, "--db", tmp_path / "s.duckdb"))
    assert "PREFECT_API_URL" in line


# ---------------------------------------------------------------- explain


def test_explain_a_listed_household_shows_its_risks_and_evidence(
    screened: dict[str, Path],
) -> None:
    db = screened["db"]
    # A listed household whose medical risk rests on a hospital settlement.
    hh = query(
        db,
        f"SELECT s.household_id, s.colour, s.listing_status, s.risk_codes, s.township "
        f"FROM suspects s WHERE s.period = '{LAST}' AND list_contains(s.risk_codes, 'MEDICAL') "
        "ORDER BY len(s.risk_codes) DESC, s.household_id LIMIT 1",
    ).row(0, named=True)
    evidence = query(
        db,
        "SELECT source_key, risk_code FROM evidence "
        f"WHERE period = '{LAST}' AND household_id = '{hh['household_id']}'",
    )
    result = invoke("explain", hh["household_id"], "--period", LAST, "--db", db)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"列入 listed — {hh['colour']} · {hh['listing_status']}" in out
    assert hh["township"] in out
    for code in hh["risk_codes"]:
        assert re.search(rf"{code}\s*│\s*✔", out), code
    for code in {"MEDICAL", "EDUCATION", "DROPOUT", "ACCIDENT"} - set(hh["risk_codes"]):
        assert re.search(rf"{code}\s*│\s*✘", out), code
    for key in evidence["source_key"]:
        assert ids.mask_text(key) in out
    assert "parameters used · run " in out
    for full in member_ids(db, hh["household_id"]):
        assert full not in flat(out)
        assert ids.mask(full) in out


def test_explain_an_unlisted_household_says_why_not(
    screened: dict[str, Path], sample_manifest: dict
) -> None:
    case = planted(sample_manifest, "medical_below_threshold_tuopin")
    assert case["periods"][LAST] is None  # the generator planted it unlisted
    result = invoke("explain", case["household_id"], "-p", LAST, "--db", screened["db"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "未列入 not listed" in out
    assert "本期名单中无此户" in out
    assert "✔" not in out
    # The hospital costs were seen and counted, and fell short of the threshold.
    assert re.search(r"住院个人自付合计 4,999\.99 元.*│\s*≥ 5,000\.00 元（脱贫户标准）", out)
    assert "计入但未达条件" in out


def test_explain_by_a_members_messy_id_number_finds_the_household(
    screened: dict[str, Path],
) -> None:
    db = screened["db"]
    hh = query(db, f"SELECT household_id FROM suspects WHERE period = '{LAST}' ORDER BY 1 LIMIT 1")[
        "household_id"
    ][0]
    member = member_ids(db, hh)[-1]
    messy = " '" + member.translate(str.maketrans("0123456789X", "０１２３４５６７８９ｘ"))
    result = invoke("explain", messy, "--period", LAST, "--db", db)
    assert result.exit_code == 0, result.output
    assert f"户 household {hh}" in result.stdout
    assert f"按身份证号 {ids.mask(member)} 找到" in result.stdout


def test_explain_by_a_first_generation_15_digit_number(screened: dict[str, Path]) -> None:
    db = screened["db"]
    people = query(
        db,
        f"SELECT household_id, id_number FROM stg_roster WHERE period = '{LAST}' "
        "AND id_number LIKE '______19%' ORDER BY id_number LIMIT 1",
    ).row(0)
    id15 = people[1][:6] + people[1][8:17]
    result = invoke("explain", id15, "--period", LAST, "--db", db)
    assert result.exit_code == 0, result.output
    assert f"户 household {people[0]}" in result.stdout


def test_explain_shows_full_ids_only_when_asked(screened: dict[str, Path]) -> None:
    db = screened["db"]
    hh = query(db, f"SELECT household_id, head_id_number FROM suspects WHERE period = '{LAST}'")
    household, head = hh.row(0)
    masked = invoke("explain", household, "-p", LAST, "--db", db)
    shown = invoke("explain", household, "-p", LAST, "--db", db, "--show-ids", ids_allowed=True)
    assert head not in flat(masked.stdout)
    assert head in shown.stdout


def test_explain_agrees_with_the_run_on_every_boundary_case(
    screened: dict[str, Path], sample_manifest: dict
) -> None:
    """The recomputation is the screening itself: colour, risks and status as listed."""
    cases = [
        p for p in sample_manifest["planted"] if re.search(r"_at|_below|_before|age_", p["case"])
    ]
    assert len(cases) >= 8
    _agrees(screened["db"], cases, [LAST])


@pytest.mark.slow
def test_explain_agrees_with_the_run_on_every_planted_case(
    screened: dict[str, Path], sample_manifest: dict
) -> None:
    _agrees(screened["db"], sample_manifest["planted"])


def _agrees(db: Path, cases: list[dict], periods: list[str] = SAMPLE_PERIODS) -> None:
    con = connect(db, read_only=True)
    try:
        for case in cases:
            for period in periods:
                expected = case["periods"][period]
                if expected is None and not _on_roster(con, case["household_id"], period):
                    continue
                got = why.explain(con, case["household_id"], period)
                fired = sorted(r.code for r in got.rules if r.fired)
                if expected is None:
                    assert not got.listed and fired == [], (case["case"], period)
                else:
                    assert fired == sorted(expected["risk_codes"]), (case["case"], period)
                    assert got.household["colour"] == expected["colour"], case["case"]
                    assert got.household["listing_status"] == expected["listing_status"]
                assert got.notes == [], (case["case"], period)  # same as the stored list
    finally:
        con.close()


def _on_roster(con: duckdb.DuckDBPyConnection, household_id: str, period: str) -> bool:
    frame = db_roster.population(con, period)
    return bool(frame.filter(pl.col("household_id") == household_id).height)


def test_explain_marks_records_outside_the_window(
    screened: dict[str, Path], sample_manifest: dict
) -> None:
    case = planted(sample_manifest, "disability_grade1_before_window")
    result = invoke("explain", case["household_id"], "-p", LAST, "--db", screened["db"])
    assert result.exit_code == 0, result.output
    assert re.search(r"残联 disability.*早于窗口 before W.*不计 not counted", result.stdout)
    assert re.search(r"DISABILITY\s*│\s*✘", result.stdout)


def test_explain_an_unknown_household_names_the_nearest(screened: dict[str, Path]) -> None:
    known = set(
        query(screened["db"], "SELECT DISTINCT household_id FROM stg_roster")["household_id"]
    )
    first = min(known)
    typo = next(
        first[:-2] + f"{n:02d}" for n in range(99, 0, -1) if first[:-2] + f"{n:02d}" not in known
    )
    line = one_error_line(invoke("explain", typo, "-p", LAST, "--db", screened["db"]))
    assert "nearest household ids" in line
    assert re.search(r"[0-9]{16}", line.split("nearest household ids")[1])


def test_explain_an_id_number_not_on_the_roster_is_masked_in_the_message(
    screened: dict[str, Path],
) -> None:
    stranger = "43062419900101123" + ids.check_digit("43062419900101123")
    assert not member_ids_of_anyone(screened["db"], stranger)
    line = one_error_line(invoke("explain", stranger, "-p", LAST, "--db", screened["db"]))
    assert ids.mask(stranger) in line
    wrong_check = stranger[:-1] + ("1" if stranger[-1] != "1" else "2")
    line = one_error_line(invoke("explain", wrong_check, "-p", LAST, "--db", screened["db"]))
    assert "not a valid ID number" in line


def member_ids_of_anyone(db: Path, id_number: str) -> bool:
    return bool(query(db, f"SELECT 1 FROM stg_roster WHERE id_number = '{id_number}'").height)


def test_explain_a_period_never_screened_says_so(screened: dict[str, Path]) -> None:
    line = one_error_line(invoke("explain", "x", "-p", "2026-10", "--db", screened["db"]))
    assert "never screened" in line and "2026-09" in line


def test_read_commands_on_a_missing_database_fail_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    for args in (["explain", "x", "-p", LAST], ["quarantine", "-p", LAST], ["report", "-p", LAST]):
        line = one_error_line(invoke(*args, "--db", missing))
        assert "database not found" in line
    assert not missing.exists()


# ---------------------------------------------------------------- quarantine


def test_quarantine_lists_rejected_rows_with_reasons_and_masks_ids(
    screened: dict[str, Path],
) -> None:
    db, period = screened["db"], SAMPLE_PERIODS[1]
    stored = query(db, f"SELECT * FROM quarantine WHERE period = '{period}'")
    assert stored.height > 0
    result = invoke("quarantine", "--period", period, "--db", db, "--limit", 0)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for row in stored.iter_rows(named=True):
        assert row["file"] in out
        assert check_label(row["check"]) in out
    rejected_ids = stored.filter(pl.col("column") == "id_number")["raw_value"].drop_nulls()
    assert rejected_ids.len() > 0
    for raw in rejected_ids:
        assert raw not in flat(out)
        assert ids.mask(raw) in out
    rows = stored.select("source", "file", "row_number").unique().height
    assert f"共 {rows} 行被拒收" in out


def test_quarantine_of_one_source_with_a_limit(screened: dict[str, Path]) -> None:
    result = invoke(
        "quarantine",
        "-p",
        SAMPLE_PERIODS[1],
        "--source",
        "medical",
        "--db",
        screened["db"],
        "--limit",
        1,
    )
    assert result.exit_code == 0, result.output
    assert "医保 medical" in result.stdout
    for other in ("roster", "education", "civil"):
        assert f" {other} " not in result.stdout
    assert "showing 1 of" in result.stdout


def test_quarantine_of_an_unknown_source_suggests_the_name(screened: dict[str, Path]) -> None:
    line = one_error_line(
        invoke("quarantine", "-p", LAST, "--source", "medicl", "--db", screened["db"])
    )
    assert "medical" in line


def test_masked_raw_values_hide_ids_in_every_form() -> None:
    spec = {s.source: s for s in [*contract.load().values()]}
    full = "43062419900101123" + ids.check_digit("43062419900101123")
    assert mask_raw_value(spec["roster"], "id_number", "'" + full) == "'43062" + "*" * 9 + full[-4:]
    assert mask_raw_value(spec["roster"], "id_number", "abc") == "***"
    traffic_key = mask_raw_value(spec["traffic"], "accident_id+id_number", f"SG001|{full}")
    assert traffic_key == f"SG001|{ids.mask(full)}"
    assert mask_raw_value(spec["disability"], "certificate_no", full + "24") == ids.mask(
        full + "24"
    )
    assert mask_raw_value(spec["medical"], "hospital", "湘阴县人民医院") == "湘阴县人民医院"


def test_mask_text_masks_embedded_ids_and_leaves_other_numbers() -> None:
    full = "43062419900101123" + ids.check_digit("43062419900101123")
    wide = ids.fold_width(full).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    text = f"key {full}|临时救助; cert {full}12; old 430624900101123; wide {wide}"
    masked = ids.mask_text(text)
    assert not ID18.search(ids.fold_width(masked))
    assert "430624900101123" not in masked
    household, settlement, day = "4306241010030017", "JS20260604000104", "2026-06-04"
    assert ids.mask_text(f"{household} {settlement} {day} 5,000.00") == (
        f"{household} {settlement} {day} 5,000.00"
    )


# ---------------------------------------------------------------- report


def test_report_prints_the_rebuilt_run_report(screened: dict[str, Path]) -> None:
    db, out = screened["db"], screened["out"]
    run_id = query(db, f"SELECT run_id FROM runs WHERE period = '{LAST}' AND status = 'success'")[
        "run_id"
    ][0]
    result = invoke("report", "--period", LAST, "--db", db, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"批次号 {run_id}" in result.stdout
    assert "与人口库匹配" in result.stdout
    assert flat(f"报告文件 report file: {out / LAST / 'run-report.md'}") in flat(result.stdout)


def test_the_rebuilt_report_is_the_one_the_run_wrote(screened: dict[str, Path]) -> None:
    """Everything but the finishing time, which the run records after writing the file."""
    con = connect(screened["db"], read_only=True)
    try:
        for period in SAMPLE_PERIODS:
            rebuilt = markdown.render_markdown(run_report(con, period))
            written = (screened["out"] / period / "run-report.md").read_text(encoding="utf-8")

            def body(text: str) -> list[str]:
                return [line for line in text.splitlines() if "finished_at" not in line]

            assert body(rebuilt) == body(written), period
    finally:
        con.close()


def test_report_works_when_the_published_files_are_gone(workspace: dict[str, Path]) -> None:
    shutil.rmtree(workspace["out"])
    result = invoke("report", "-p", LAST, "--db", workspace["db"], "--out", workspace["out"])
    assert result.exit_code == 0, result.output
    assert "疑似监测户" in result.stdout
    assert "不存在 not found" in result.stdout


# ---------------------------------------------------------------- errors of `run`


def test_run_with_a_bad_period_changes_nothing(workspace: dict[str, Path]) -> None:
    before = snapshot(workspace["root"])
    line = one_error_line(
        invoke(
            "run",
            "--period",
            "2026-13",
            "--inbox",
            workspace["inbox"],
            "--db",
            workspace["db"],
            "--out",
            workspace["out"],
        )
    )
    assert "2026-13" in line
    assert snapshot(workspace["root"]) == before


@pytest.mark.parametrize("missing", ["folder", "period"])
def test_run_with_a_missing_inbox_changes_nothing(workspace: dict[str, Path], missing: str) -> None:
    inbox, period = (
        (workspace["root"] / "no-inbox", LAST)
        if missing == "folder"
        else (workspace["inbox"], "2026-10")
    )
    before = snapshot(workspace["root"])
    line = one_error_line(
        invoke(
            "run",
            "-p",
            period,
            "--inbox",
            inbox,
            "--db",
            workspace["db"],
            "--out",
            workspace["out"],
        )
    )
    assert str(inbox) in line
    assert snapshot(workspace["root"]) == before


def test_run_for_an_unknown_township_names_the_nearest(workspace: dict[str, Path]) -> None:
    published = {k: v for k, v in snapshot(workspace["out"]).items() if not k.startswith(".")}
    line = one_error_line(
        invoke(
            "run",
            "-p",
            LAST,
            "--township",
            "城关",
            "--inbox",
            workspace["inbox"],
            "--db",
            workspace["db"],
            "--out",
            workspace["out"],
        )
    )
    assert "城关镇" in line
    after = {k: v for k, v in snapshot(workspace["out"]).items() if not k.startswith(".")}
    assert after == published


def test_a_database_held_by_another_process_is_one_line(workspace: dict[str, Path]) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, duckdb
                con = duckdb.connect({str(workspace["db"])!r})
                print("ready", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for args in (
            ["summary"],
            ["explain", "x", "-p", LAST],
            ["run", "-p", LAST, "--inbox", workspace["inbox"], "--out", workspace["out"]],
        ):
            line = one_error_line(invoke(*args, "--db", workspace["db"]))
            assert "in use by another process" in line
        # Asked to wait, a command says so first (Chinese first), then gives up at the limit.
        result = invoke("summary", "--db", workspace["db"], "--busy-timeout", "1")
        waiting, error = unstamped(result.stderr)
        assert waiting.startswith("数据库") and "waiting up to 1 s" in waiting
        assert error.startswith("错误 error:") and "still after waiting 1 s" in error
    finally:
        holder.communicate("", timeout=30)


def test_summary_lists_every_period(screened: dict[str, Path]) -> None:
    result = invoke("summary", "--db", screened["db"], "--out", screened["out"])
    assert result.exit_code == 0, result.output
    for period in SAMPLE_PERIODS:
        assert period in result.stdout
