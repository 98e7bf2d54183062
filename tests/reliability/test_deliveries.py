"""Deliveries as counties really send them (issue 12): what a run may and may not do with
the stored deliveries, the completeness gates, re-reading, and what the run report says
about the roster.

Most tests work on a copy of the sample county screened once per session (`screened`) and
a copy of its inbox, through the command line an officer uses. Each asserts the row
accounting (rows read = accepted + quarantined) and what the lists end up holding.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner, Result

from screening import contract, ids, tables
from screening.cli import main as cli
from screening.db import roster as db_roster
from screening.db import schema as db_schema
from screening.db.connect import connect
from screening.ingest import deliveries as ingest
from screening.ingest.inbox import discover
from screening.inspect.run_report import run_report
from screening.pipeline.run import run_period
from screening.publish import markdown
from screening.publish.files import LIST_PREFIX, township_folders
from tests.support.common import SAMPLE_PERIODS, query, unstamped

FIRST, SECOND, LAST = SAMPLE_PERIODS
ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
SPECS = contract.load()
runner = CliRunner()

pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture
def county(screened: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """The screened sample county (database, published lists, inbox), copied."""
    db, out, inbox = tmp_path / "screening.duckdb", tmp_path / "out", tmp_path / "inbox"
    shutil.copy2(screened["db"], db)
    shutil.copytree(screened["out"], out)
    shutil.copytree(screened["inbox"], inbox)
    return {"db": db, "out": out, "inbox": inbox, "root": tmp_path}


def invoke(*args: object) -> Result:
    """The CLI; an unexpected exception fails the test, and no full ID number is printed."""
    result = runner.invoke(cli.app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    printed = ids.fold_width(result.stdout + result.stderr)
    assert not ID18.search(printed), f"full ID number printed by {args}"
    return result


def run_cli(county: dict[str, Path], period: str, *more: object) -> Result:
    return invoke(
        "run",
        "--period",
        period,
        "--inbox",
        county["inbox"],
        "--db",
        county["db"],
        "--out",
        county["out"],
        *more,
    )


def ingest_cli(county: dict[str, Path], period: str, *more: object) -> Result:
    return invoke(
        "ingest", "--period", period, "--inbox", county["inbox"], "--db", county["db"], *more
    )


def flat(text: str) -> str:
    return re.sub(r"[\s│┃|]", "", text)


def source_file(inbox: Path, period: str, source: str) -> Path:
    found = discover(inbox, period, SPECS)[source]
    assert found.path is not None, f"the sample has no {source} file for {period}"
    return found.path


def archive(path: Path, folder: str = "archive") -> Path:
    """Move a file into a subfolder of its period folder, as an officer keeps old copies."""
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    return path.rename(target / path.name)


def files_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root` by content and modification time."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stored(db: Path, source: str, period: str) -> pl.DataFrame:
    """The stored delivery, in the file's row order."""
    return query(
        db,
        f"SELECT * EXCLUDE (extra) FROM stg_{source} WHERE period = '{period}' ORDER BY row_number",
    )


def log_row(db: Path, source: str, period: str) -> dict:
    rows = query(
        db, f"SELECT * FROM ingest_log WHERE period = '{period}' AND source = '{source}'"
    ).to_dicts()
    assert len(rows) == 1
    return rows[0]


def accounted(db: Path, source: str, period: str) -> dict:
    """The stored delivery's ingest_log row, after checking that its counts are the rows
    stored and the rows quarantined, and that with the identical rows counted once they
    add up to the rows read."""
    row = log_row(db, source, period)
    duplicates = row.get("rows_duplicate") or 0  # identical rows, counted once
    assert row["rows_read"] == row["rows_accepted"] + row["rows_rejected"] + duplicates
    assert stored(db, source, period).height == row["rows_accepted"]
    quarantined = query(
        db,
        "SELECT count(DISTINCT row_number) AS n FROM quarantine "
        f"WHERE period = '{period}' AND source = '{source}'",
    )["n"].item()
    assert quarantined == row["rows_rejected"]
    return row


def with_risk(db: Path, period: str, code: str) -> set[str]:
    frame = query(
        db,
        f"SELECT household_id FROM suspects WHERE period = '{period}' "
        f"AND list_contains(risk_codes, '{code}')",
    )
    return set(frame["household_id"])


def about_sheet(xlsx: Path) -> dict[str, str]:
    """Label → text of a list's 说明 sheet; a label's continuation lines are joined to it."""
    found: dict[str, str] = {}
    label = ""
    for first, text, *_ in openpyxl.load_workbook(xlsx)["说明"].iter_rows(values_only=True):
        label = str(first) if first else label
        if label and text:
            found[label] = f"{found[label]}\n{text}" if label in found else str(text)
    return found


def a_list(out: Path, period: str) -> Path:
    return next((out / period).glob(f"*/{LIST_PREFIX}_*.xlsx"))


def last_run(db: Path) -> dict:
    """The run recorded last (runs of one second are told apart by insertion order)."""
    return query(db, "SELECT * FROM runs ORDER BY rowid DESC LIMIT 1").to_dicts()[0]


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_csv(path)
    return path


def contract_columns(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    return frame.select([c for c in SPECS[source].columns if c in frame.columns])


def make_id(region: str, born: str, seq: int) -> str:
    first17 = f"{region}{born}{seq:03d}"
    return first17 + ids.check_digit(first17)


# ---------------------------------------------------------------- 1: a run never removes


def test_an_archived_file_leaves_the_stored_delivery_in_force(county: dict[str, Path]) -> None:
    """Situation 1: July re-run after its medical file was moved out of the inbox."""
    db = county["db"]
    rows_before = stored(db, "medical", FIRST)
    log_before = accounted(db, "medical", FIRST)
    august_medical = with_risk(db, SECOND, "MEDICAL")
    assert rows_before.height and august_medical
    path = archive(source_file(county["inbox"], FIRST, "medical"))

    result = run_cli(county, FIRST)
    assert result.exit_code == 0, result.output
    # Loud on the console, Chinese first …
    assert "沿用已入库 kept" in result.stdout
    assert path.name in flat(result.stdout)
    # … the July rows stay, and so does their ingest_log row …
    assert stored(db, "medical", FIRST).equals(rows_before)
    assert accounted(db, "medical", FIRST) == log_before
    # … the run says which stored delivery it used, and when it was stored.
    run = last_run(db)
    assert run["status"] == "success"
    kept = query(db, "SELECT * FROM delivery_events WHERE event = 'kept'").to_dicts()
    assert [(k["source"], k["file"], k["stored_file"], k["run_id"]) for k in kept] == [
        ("medical", None, path.name, run["run_id"])
    ]
    when = log_before["ingested_at"].strftime("%Y-%m-%d %H:%M")
    text = (county["out"] / FIRST / "run-report.md").read_text(encoding="utf-8")
    top = text.split("## 读入文件")[0]  # before the table of files: near the top
    assert markdown._md(path.name) in top and when in top and "本期收件箱中没有文件" in top
    about = about_sheet(a_list(county["out"], FIRST))
    assert path.name in about["数据提示"] and when in about["数据提示"]
    assert "医保（住院结算）：本期文件未能使用，沿用此前已入库的本期数据" in about["数据来源"]

    # August, re-run, still sees July's hospital records.
    assert run_cli(county, SECOND).exit_code == 0
    assert with_risk(db, SECOND, "MEDICAL") == august_medical


def test_a_rejected_file_leaves_the_stored_delivery_in_force(county: dict[str, Path]) -> None:
    db = county["db"]
    rows_before = stored(db, "civil", FIRST)
    log_before = accounted(db, "civil", FIRST)
    path = source_file(county["inbox"], FIRST, "civil")
    path.write_bytes(b"")  # the department's export failed

    result = ingest_cli(county, FIRST)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "沿用已入库kept" in out and "rejected" in out and "emptyfile" in out
    assert stored(db, "civil", FIRST).equals(rows_before)
    assert accounted(db, "civil", FIRST) == log_before
    event = query(db, "SELECT * FROM delivery_events").to_dicts()
    assert [(e["event"], e["source"], e["file"]) for e in event] == [("kept", "civil", path.name)]
    assert "empty file" in event[0]["message"]


def test_a_much_smaller_file_replacing_the_stored_one_is_held(county: dict[str, Path]) -> None:
    """Review of issue 12, case 4: a header-only re-send of an events delivery would wipe
    the period's stored records (and the households they list). It is held like a broken
    delivery (gate `shrank`, under gates.min_resend_ratio of the stored records): the stored
    delivery stays in force until the officer accepts the new file."""
    db = county["db"]
    log_before = accounted(db, "civil", FIRST)
    rows_before = stored(db, "civil", FIRST).height
    archive(source_file(county["inbox"], FIRST, "civil"))
    (county["inbox"] / FIRST / "civil.csv").write_text(
        "id_number,name,assistance_type,event,event_date,amount\n", encoding="utf-8"
    )
    result = ingest_cli(county, FIRST)
    assert result.exit_code == 3, result.output
    (line,) = unstamped(result.stderr)
    assert "(records vs the period's stored delivery) 0.0%" in line
    assert "--accept-held civil" in line
    assert stored(db, "civil", FIRST).height == rows_before  # still in force
    assert log_row(db, "civil", FIRST)["file"] == log_before["file"]

    accepted = ingest_cli(county, FIRST, "--accept-held", "民政")
    assert accepted.exit_code == 0, accepted.output
    entry = accounted(db, "civil", FIRST)
    assert (entry["status"], entry["rows_read"]) == ("empty", 0)
    assert stored(db, "civil", FIRST).height == 0


def test_a_slightly_smaller_re_send_is_used_and_said(county: dict[str, Path]) -> None:
    """A corrected file with a few records fewer (between the warning and the hold level)
    replaces the stored delivery, with a warning in the log and on the console."""
    db = county["db"]
    before = stored(db, "medical", FIRST)
    keep = int(before.height * 0.95)  # under 97 %, over 90 % of the records
    archive(source_file(county["inbox"], FIRST, "medical"))
    write_csv(
        contract_columns(before, "medical").head(keep),
        county["inbox"] / FIRST / "医保住院结算_更正.csv",
    )
    result = ingest_cli(county, FIRST)
    assert result.exit_code == 0, result.output
    entry = accounted(db, "medical", FIRST)
    assert entry["rows_accepted"] < before.height
    assert "records vs the period's stored delivery" in entry["warning"]
    assert flat("提示标准 (warn)") in flat(result.stdout)


def test_withdraw_removes_one_stored_delivery_on_purpose(county: dict[str, Path]) -> None:
    db = county["db"]
    log_before = accounted(db, "medical", FIRST)
    assert log_before["rows_rejected"] > 0  # the quarantine rows go too
    others = {s: stored(db, s, FIRST).height for s in SPECS if s != "medical"}

    result = invoke("ingest", "--withdraw", "医保", "--period", FIRST, "--db", db)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    assert "已撤回 withdrawn" in result.stdout and log_before["file"] in result.stdout
    assert f"{log_before['rows_accepted']:,} 行 rows" in result.stdout
    assert stored(db, "medical", FIRST).height == 0
    assert (
        query(
            db,
            f"SELECT count(*) AS n FROM quarantine WHERE period = '{FIRST}' AND source = 'medical'",
        )["n"].item()
        == 0
    )
    assert {s: stored(db, s, FIRST).height for s in others} == others
    entry = log_row(db, "medical", FIRST)
    user = ingest.os_user()
    assert entry["status"] == "withdrawn" and entry["file"] == log_before["file"]
    assert f"withdrawn by {user}" in entry["message"]
    event = query(db, "SELECT * FROM delivery_events").to_dicts()
    assert [(e["event"], e["stored_file"], e["recorded_by"]) for e in event] == [
        ("withdrawn", log_before["file"], user)
    ]

    again = invoke("ingest", "--withdraw", "medical", "--period", FIRST, "--db", db)
    assert again.exit_code == 2 and "no stored or held medical delivery" in again.stderr
    unknown = invoke("ingest", "--withdraw", "医院", "--period", FIRST, "--db", db)
    assert unknown.exit_code == 2 and "unknown source" in unknown.stderr


def test_after_a_withdrawal_a_missing_file_keeps_the_withdrawn_entry(
    county: dict[str, Path],
) -> None:
    db = county["db"]
    assert invoke("ingest", "--withdraw", "medical", "-p", FIRST, "--db", db).exit_code == 0
    archive(source_file(county["inbox"], FIRST, "medical"))
    result = ingest_cli(county, FIRST)
    assert result.exit_code == 0, result.output
    assert log_row(db, "medical", FIRST)["status"] == "withdrawn"
    assert stored(db, "medical", FIRST).height == 0


# ---------------------------------------------------------------- 2: two files, one source


def test_a_corrected_file_beside_the_old_one_stops_the_run_before_anything_changes(
    county: dict[str, Path],
) -> None:
    """Situation 2: README's old advice, followed."""
    db = county["db"]
    old = source_file(county["inbox"], FIRST, "medical")
    corrected = old.with_name(f"医保住院结算_{FIRST.replace('-', '')}_更正{old.suffix}")
    shutil.copy2(old, corrected)
    before = files_state(county["root"])
    medical = with_risk(db, FIRST, "MEDICAL")

    result = run_cli(county, FIRST)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = unstamped(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("错误 error:")
    assert old.name in lines[0] and corrected.name in lines[0]
    assert "子文件夹" in lines[0] and "subfolder" in lines[0]
    assert files_state(county["root"]) == before  # database and lists: bytes and times

    # The fix the line names: the old file into a subfolder, which is not read.
    archive(old, "旧文件")
    assert run_cli(county, FIRST).exit_code == 0
    assert accounted(db, "medical", FIRST)["file"] == corrected.name
    assert with_risk(db, FIRST, "MEDICAL") == medical


# ---------------------------------------------------------------- gates


def two_thirds_broken(db: Path, period: str) -> pl.DataFrame:
    """The period's stored medical records, each followed by two copies whose ID number is
    broken (new settlement numbers): two thirds of the rows fail validation."""
    good = contract_columns(stored(db, "medical", period), "medical").with_columns(
        pl.col(pl.Decimal).cast(pl.String)
    )
    bad = [
        good.with_columns(
            pl.concat_str(pl.col("settlement_id"), pl.lit(f"-X{n}")).alias("settlement_id"),
            pl.lit("43062419800101123").alias("id_number"),  # 17 digits
        )
        for n in (1, 2)
    ]
    return pl.concat([good, *bad])


def test_a_delivery_two_thirds_quarantined_is_held_then_accepted(county: dict[str, Path]) -> None:
    db, out = county["db"], county["out"]
    old = archive(source_file(county["inbox"], LAST, "medical"))
    rows_before = stored(db, "medical", LAST)
    log_before = accounted(db, "medical", LAST)
    medical = with_risk(db, LAST, "MEDICAL")
    frame = two_thirds_broken(db, LAST)
    new = write_csv(frame, county["inbox"] / LAST / "医保住院结算_202609_补报.csv")
    published = files_state(out)

    result = run_cli(county, LAST)
    assert result.exit_code == 3, result.output
    (line,) = unstamped(result.stderr)
    assert line.startswith("暂扣 held:")
    assert new.name in line and "66.7%" in line and "20.0%" in line
    assert f"screening run --period {LAST} --accept-held medical" in line
    assert "暂扣 held" in result.stdout  # the ingest table and the gate on the console
    # Nothing new published, the stored delivery still in force, the run recorded held.
    assert files_state(out) == published
    assert stored(db, "medical", LAST).equals(rows_before)
    assert accounted(db, "medical", LAST) == log_before
    assert last_run(db)["status"] == "held"
    held = query(db, "SELECT * FROM held_deliveries").to_dicts()
    assert [(h["period"], h["source"], h["file"], h["gate"]) for h in held] == [
        (LAST, "medical", new.name, "quarantined_share")
    ]
    h = held[0]
    assert h["measured"] == pytest.approx(2 / 3) and h["threshold"] == pytest.approx(0.2)
    assert h["accepted_by"] is None and h["accepted_at"] is None
    assert h["rows_read"] == frame.height == h["rows_accepted"] + h["rows_rejected"]
    assert h["rows_accepted"] == rows_before.height
    # Nothing lost: every row of the held file waits in held_rows.
    kept = query(
        db,
        "SELECT count(*) FILTER (record IS NOT NULL) AS records, "
        'count(DISTINCT row_number) FILTER ("check" IS NOT NULL) AS quarantined FROM held_rows',
    ).row(0)
    assert kept == (h["rows_accepted"], h["rows_rejected"])
    # `screening report` says the lists are still the earlier run's, and what is held.
    shown = invoke("report", "--period", LAST, "--db", db, "--out", out)
    assert shown.exit_code == 0, shown.output
    assert flat("a later run was held") in flat(shown.stdout)
    assert flat(f"暂扣 held: 医保 medical {new.name}") in flat(shown.stdout)

    # The officer checked the file and accepts it (by department name).
    result = run_cli(county, LAST, "--accept-held", "医保")
    assert result.exit_code == 0, result.output
    accepted = query(db, "SELECT * FROM held_deliveries").to_dicts()
    assert [(a["accepted_by"], a["accepted_at"] is not None) for a in accepted] == [
        (ingest.os_user(), True)
    ]
    log = accounted(db, "medical", LAST)
    assert (log["file"], log["rows_read"], log["rows_rejected"]) == (
        new.name,
        frame.height,
        2 * rows_before.height,
    )
    assert query(db, "SELECT count(*) AS n FROM held_rows")["n"].item() == 0
    assert with_risk(db, LAST, "MEDICAL") == medical  # the good records are the same
    events = query(db, "SELECT event FROM delivery_events ORDER BY rowid")
    assert events["event"].to_list() == ["held", "accepted"]
    text = (out / LAST / "run-report.md").read_text(encoding="utf-8")
    assert "完整性检查暂扣 Held deliveries" in text and "已接受 accepted by" in text
    about = about_sheet(a_list(out, LAST))
    assert "经县级人员确认后使用" in about["数据提示"]
    assert old.exists()


def test_a_held_first_delivery_counts_as_not_delivered(
    screened: dict[str, Path], tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(screened["inbox"], inbox)
    db = tmp_path / "screening.duckdb"
    # Every ID broken: all rows quarantined, so held whatever the parameters say.
    county_params = tmp_path / "county.yaml"
    county_params.write_text("gates:\n  max_quarantined_share:\n    values: {2021-01-01: 1.0}\n"
                             "  warn_quarantined_share:\n    values: {2021-01-01: 1.0}\n",
                             encoding="utf-8")  # fmt: skip
    good = contract_columns(stored(screened["db"], "medical", FIRST), "medical")
    raw = good.with_columns(pl.col(pl.Decimal).cast(pl.String), pl.lit("0").alias("id_number"))
    old = archive(source_file(inbox, FIRST, "medical"))
    write_csv(raw, inbox / FIRST / "medical.csv")
    result = invoke("ingest", "-p", FIRST, "--inbox", inbox, "--db", db, "--params", county_params)
    assert result.exit_code == 3, result.output
    assert f"screening ingest --period {FIRST} --accept-held medical" in result.stderr
    assert old.exists()
    entry = log_row(db, "medical", FIRST)
    assert entry["status"] == "held" and entry["rows_accepted"] == 0
    assert entry["rows_read"] == entry["rows_rejected"] == raw.height
    assert stored(db, "medical", FIRST).height == 0  # not delivered this period
    assert {s: log_row(db, s, FIRST)["status"] for s in ("roster", "civil")} == {
        "roster": "loaded",
        "civil": "loaded",
    }
    held = query(db, "SELECT gate, measured, threshold FROM held_deliveries").rows()
    assert held == [("quarantined_share", 1.0, pytest.approx(2 / 3))]


def test_a_shrunken_roster_is_held(county: dict[str, Path]) -> None:
    db = county["db"]
    roster = stored(db, "roster", LAST)
    households = sorted(roster["household_id"].unique())
    half = roster.filter(pl.col("household_id").is_in(households[: len(households) // 2]))
    archive(source_file(county["inbox"], LAST, "roster"))
    write_csv(
        contract_columns(half, "roster").with_columns(pl.col(pl.Decimal).cast(pl.String)),
        county["inbox"] / LAST / "roster.csv",
    )
    result = ingest_cli(county, LAST)
    assert result.exit_code == 3, result.output
    assert "人数与此前人口库之比" in result.stderr
    gate = query(db, "SELECT gate, measured, threshold FROM held_deliveries").row(0)
    assert gate[0] == "snapshot_ratio"
    assert gate[1] == pytest.approx(half.height / roster.height) and gate[2] == 0.9
    assert stored(db, "roster", LAST).equals(roster)


def test_records_that_do_not_match_the_roster_are_held(county: dict[str, Path]) -> None:
    db = county["db"]
    n = 25  # enough rows to judge by a share (gates.min_rows)
    strangers = [make_id("110101", "19700101", i) for i in range(1, n + 1)]
    frame = pl.DataFrame(
        {
            "id_number": strangers,
            "name": [f"外地人{i}" for i in range(n)],
            "assistance_type": ["临时救助"] * n,
            "event": ["发放"] * n,
            "event_date": ["2026-09-10"] * n,
            "amount": ["1000"] * n,
        }
    )
    archive(source_file(county["inbox"], LAST, "civil"))
    write_csv(frame, county["inbox"] / LAST / "civil.csv")
    result = ingest_cli(county, LAST)
    assert result.exit_code == 3, result.output
    assert "与人口库匹配率" in result.stderr
    assert query(db, "SELECT gate, measured FROM held_deliveries").rows() == [("match_rate", 0.0)]


def test_a_small_delivery_is_held_only_when_two_thirds_are_quarantined(
    county: dict[str, Path],
) -> None:
    """Three records of strangers and one broken row: 0 % matched, 25 % quarantined, but
    four rows are too few to judge by a share (gates.min_rows): used, and warned."""
    db = county["db"]
    frame = pl.DataFrame(
        {
            "id_number": [make_id("110101", "19700101", i) for i in range(1, 4)] + ["0"],
            "assistance_type": ["临时救助"] * 4,
            "event": ["发放"] * 4,
            "event_date": ["2026-09-10"] * 4,
        }
    )
    archive(source_file(county["inbox"], LAST, "civil"))
    write_csv(frame, county["inbox"] / LAST / "civil.csv")
    result = ingest_cli(county, LAST)
    assert result.exit_code == 0, result.output
    entry = accounted(db, "civil", LAST)
    assert (entry["status"], entry["rows_read"], entry["rows_rejected"]) == ("loaded", 4, 1)
    assert "fewer than 20 rows: warned only" in entry["warning"]
    assert "与人口库匹配率" in entry["warning"] and "拒收行占比" in entry["warning"]
    # Two broken rows of three: held whatever the size.
    broken = frame.tail(3).with_columns(
        pl.Series("id_number", [make_id("110101", "19700101", 9), "0", "1"])
    )
    write_csv(broken, county["inbox"] / LAST / "civil.csv")
    held = ingest_cli(county, LAST)
    assert held.exit_code == 3, held.output
    gate = query(db, "SELECT gate, measured, threshold FROM held_deliveries").rows()
    assert gate == [("quarantined_share", pytest.approx(2 / 3), pytest.approx(2 / 3))]


def test_gates_below_the_hold_level_warn_in_the_run_report(screened: dict[str, Path]) -> None:
    """The sample's small deliveries carry a few planted invalid rows: above the warning
    level (5 %), below the hold level (20 %)."""
    text = (screened["out"] / FIRST / "run-report.md").read_text(encoding="utf-8")
    assert markdown._md("拒收行占比 (quarantined share)") in text
    assert markdown._md("提示标准 (warn): > 5.0%") in text
    # The director's page says it in Chinese only.
    page = (screened["out"] / FIRST / "run-report.html").read_text(encoding="utf-8")
    assert "提示标准: &gt; 5.0%" in page and "quarantined share" not in page
    assert query(screened["db"], "SELECT count(*) AS n FROM held_deliveries")["n"].item() == 0


# ---------------------------------------------------------------- 3: re-reading


def test_a_file_is_read_again_when_the_aliases_change(county: dict[str, Path]) -> None:
    """Situation 3: the roster's income column headed 人均收入, then an aliases file."""
    db = county["db"]
    roster = stored(db, "roster", LAST)
    low_income = with_risk(db, LAST, "LOW_INCOME")
    assert low_income
    archive(source_file(county["inbox"], LAST, "roster"))
    frame = contract_columns(roster, "roster").with_columns(pl.col(pl.Decimal).cast(pl.String))
    write_csv(
        frame.rename({"per_capita_income": "人均收入"}), county["inbox"] / LAST / "roster.csv"
    )
    ingest_cli(county, LAST)  # read without the alias (how depends on the contract)
    aliases = county["root"] / "aliases.yaml"
    aliases.write_text("roster:\n  per_capita_income: [人均收入]\n", encoding="utf-8")

    result = run_cli(county, LAST, "--aliases", aliases)
    assert result.exit_code == 0, result.output
    entry = accounted(db, "roster", LAST)
    assert entry["status"] == "loaded" and entry["file"] == "roster.csv"
    assert stored(db, "roster", LAST)["per_capita_income"].null_count() == 0
    assert with_risk(db, LAST, "LOW_INCOME") == low_income

    # Nothing changed since: the next run skips it, and leaves the log row as it is.
    again = ingest_cli(county, LAST, "--aliases", aliases)
    assert "same file as last time" in again.stdout
    assert log_row(db, "roster", LAST) == entry


def test_the_read_key_follows_each_sources_contract_and_the_program(
    county: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = county["db"]
    assert ingest_cli(county, LAST).exit_code == 0
    keys = {s: log_row(db, s, LAST)["read_key"] for s in SPECS}
    aliases = county["root"] / "aliases.yaml"
    aliases.write_text("medical:\n  out_of_pocket: [自付费用]\n", encoding="utf-8")
    con = connect(db)
    try:
        specs = contract.load(aliases)
        results = {r.source: r for r in ingest.ingest_period(con, county["inbox"], LAST, specs)}
        assert results["medical"].status == "loaded"  # its contract changed: read again
        assert results["roster"].status == "unchanged"  # its own did not
        monkeypatch.setattr(ingest, "code_version", lambda: "another version")
        again = ingest.ingest_period(con, county["inbox"], LAST, specs)
    finally:
        con.close()
    assert "unchanged" not in {r.status for r in again}  # a new program reads every file
    after = {s: log_row(db, s, LAST)["read_key"] for s in SPECS}
    assert all(after[s] != keys[s] for s in SPECS if keys[s])


def test_an_old_database_gains_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = connect(db)
    try:
        ddl = tables.table("ingest_log").ddl()
        con.execute(ddl.replace('"read_key" VARCHAR, ', "").replace('"warning" VARCHAR, ', ""))
        db_schema.ensure_schema(con, SPECS)
        columns = {r[0] for r in con.execute("DESCRIBE ingest_log").fetchall()}
    finally:
        con.close()
    assert {"read_key", "warning"} <= columns


# ---------------------------------------------------------------- 8: another month's file


def test_a_file_named_for_another_month_or_equal_to_one_is_read_but_warned(
    county: dict[str, Path],
) -> None:
    db = county["db"]
    august = source_file(county["inbox"], SECOND, "civil")
    archive(source_file(county["inbox"], LAST, "civil"))
    resent = county["inbox"] / LAST / f"民政救助_{SECOND.replace('-', '')}{august.suffix}"
    shutil.copy2(august, resent)

    result = run_cli(county, LAST)
    assert result.exit_code == 0, result.output
    entry = accounted(db, "civil", LAST)
    assert entry["status"] == "loaded" and entry["file"] == resent.name
    assert f"the file name names {SECOND}" in entry["warning"]
    assert f"byte-identical to the {SECOND} delivery of civil" in entry["warning"]
    text = flat(result.stdout)
    assert flat(f"文件名中的期次是 {SECOND}") in text and "内容完全相同" in text
    written = (county["out"] / LAST / "run-report.md").read_text(encoding="utf-8")
    assert f"the file name names {SECOND}" in written and "byte-identical" in written


# ---------------------------------------------------------------- 5, 9, 11: the roster


def write_inbox(inbox: Path, period: str, files: dict[str, str]) -> None:
    folder = inbox / period
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


A, B, C, D, E, F, G, H = (make_id("430624", "19800101", n) for n in range(1, 9))
KID = make_id("430624", "20150601", 9)
ROSTER = (
    "户编号,身份证号,姓名,与户主关系,乡镇,村,户类型,监测状态,家庭年人均纯收入\n"
    # A 户编号 that is the head's ID number, members in two townships.
    f"{A},{A},张三,户主,城关镇,东风村,脱贫户,,5200\n"
    f"{A},{KID},张小,长子,龙潭镇,东风村,脱贫户,,5200\n"
    # Two 户主.
    f"H2,{B},李四,户主,龙潭镇,新华村,一般农户,未监测,12000\n"
    f"H2,{C},李五,户主,龙潭镇,新华村,一般农户,未监测,12000\n"
    # One person on two households' rows.
    f"H3,{D},王一,户主,Chengguan,北村,一般农户,,9000\n"
    f"H3,{E},王二,配偶,Chengguan,北村,一般农户,,9000\n"
    f"H4,{F},赵一,户主,CHENGGUAN,南村,一般农户,,9000\n"
    f"H4,{E},王二,配偶,CHENGGUAN,南村,一般农户,,9000\n"
    # No 户主.
    f"H5,{G},钱一,之子,城关镇,东风村,脱贫户,,4000\n"
    f"H6,{H},孙一,户主,龙潭镇,新华村,脱贫户,,7000\n"
)
MEDICAL = (
    "settlement_id,id_number,settlement_date,total_cost,out_of_pocket\n"
    f"S1,{A},2026-09-06,80000,30000\n"
    # One settlement sent twice with different amounts: both copies quarantined.
    f"S2,{B},2026-09-10,80000,30000\n"
    f"S2,{B},2026-09-10,80000,3000\n"
    # Small bills of H6: the file's share of quarantined rows stays under the gate.
    + "".join(f"S{n},{H},2026-09-{n:02d},900,10\n" for n in range(3, 12))
)


def test_the_run_report_names_what_the_roster_resolved(tmp_path: Path) -> None:
    """Situations 5 (second half), 9 and 11 on a small county."""
    inbox, db, out = tmp_path / "inbox", tmp_path / "s.duckdb", tmp_path / "out"
    write_inbox(inbox, LAST, {"roster.csv": ROSTER, "medical.csv": MEDICAL})
    outcome = run_period(db=db, inbox=inbox, out=out, period=LAST)
    assert accounted(db, "roster", LAST)["rows_rejected"] == 2  # both rows of E
    assert accounted(db, "medical", LAST)["rows_rejected"] == 2  # both copies of S2
    con = connect(db, read_only=True)
    try:
        quality = db_roster.roster_quality(con, LAST, "户主")
        rebuilt = markdown.render_markdown(run_report(con, LAST))
    finally:
        con.close()
    assert quality["split_townships"].rows() == [(A, "城关镇、龙潭镇", "城关镇")]
    assert quality["several_heads"].rows() == [("H2", 2)]
    assert quality["no_head"]["household_id"].to_list() == ["H5"]
    assert quality["two_households"].rows() == [(E, "H3、H4")]
    assert quality["duplicates_touch"].rows() == [("medical", "S2", "H2")]
    text = (out / LAST / "run-report.md").read_text(encoding="utf-8")
    section = text.split("## 数据质量")[1].split("\n## ")[0]
    assert not ID18.search(text)  # the 户编号 that is an ID number is masked too
    assert markdown._md(ids.mask(A)) in section and markdown._md(ids.mask(E)) in section
    for found in ("城关镇、龙潭镇", "H2", "H3、H4", "H5", "医保", "S2"):
        assert markdown._md(found) in section, found
    assert "第一位户主" in section and "不计入任何一户" in section
    # Chengguan and CHENGGUAN (situation 9) each got their own folder, and the report says which.
    folders = township_folders(outcome.report.all_townships)
    assert folders["Chengguan"] != folders["CHENGGUAN"]
    assert all((out / LAST / folders[t]).is_dir() for t in ("Chengguan", "CHENGGUAN"))
    assert "## 乡镇文件夹 Township folders" in text and markdown._md(folders["CHENGGUAN"]) in text
    # The quarantined copies were H2's only hospital record: it is not listed, and the
    # report (above) names it.
    assert "H2" not in outcome.suspects["household_id"].to_list()
    assert A in outcome.suspects["household_id"].to_list()
    assert [line for line in rebuilt.splitlines() if "finished_at" not in line] == [
        line for line in text.splitlines() if "finished_at" not in line
    ]


# ---------------------------------------------------------------- no list shorter unasked


def test_a_delivery_held_in_an_earlier_month_stops_the_next_months_until_decided(
    county: dict[str, Path],
) -> None:
    """Review of issue 12, case 1: August's first medical file is held; September must not
    publish lists that silently lack August's settlements. It exits 3 naming August's held
    file and the three ways to decide; withdrawing it (a recorded decision) lets it go on."""
    db = county["db"]
    frame = two_thirds_broken(db, SECOND)
    assert invoke("ingest", "--withdraw", "医保", "--period", SECOND, "--db", db).exit_code == 0
    archive(source_file(county["inbox"], SECOND, "medical"))
    write_csv(frame, county["inbox"] / SECOND / "医保住院结算_补报.csv")
    assert run_cli(county, SECOND).exit_code == 3
    assert log_row(db, "medical", SECOND)["status"] == "held"
    published = files_state(county["out"])

    later = run_cli(county, LAST)
    assert later.exit_code == 3, later.output
    (line,) = unstamped(later.stderr)
    assert SECOND in line and "医保住院结算_补报.csv" in line
    assert f"screening run --period {SECOND} --accept-held medical" in line
    assert f"screening ingest --withdraw medical --period {SECOND}" in line
    assert files_state(county["out"]) == published  # nothing new published
    assert last_run(db)["status"] == "held"

    decided = invoke("ingest", "--withdraw", "医保", "--period", SECOND, "--db", db)
    assert decided.exit_code == 0, decided.output
    assert "不予使用" in log_row(db, "medical", SECOND)["message"]
    assert run_cli(county, LAST).exit_code == 0


def test_a_file_rejected_whole_in_a_new_month_is_held_with_its_reason_and_fix(
    county: dict[str, Path],
) -> None:
    """Review of issue 12, case 5 (and 8): this month's medical file lacks a required column
    and nothing of the month is stored: nothing of it can be used, so the run holds it like
    a file quarantined whole — naming the column, the nearest header and the aliases fix —
    instead of publishing lists without the month's settlements. Accepting it goes on
    without them, recorded."""
    db = county["db"]
    assert invoke("ingest", "--withdraw", "medical", "--period", LAST, "--db", db).exit_code == 0
    stored_rows = stored(db, "medical", SECOND)
    assert stored_rows.height
    path = source_file(county["inbox"], LAST, "medical")
    frame = contract_columns(stored_rows, "medical").rename({"out_of_pocket": "个人现金支付额"})
    archive(path)
    write_csv(frame.with_columns(pl.col(pl.Decimal).cast(pl.String)), path.with_suffix(".csv"))

    result = run_cli(county, LAST)
    assert result.exit_code == 3, result.output
    (line,) = unstamped(result.stderr)
    assert "整个文件被拒收" in line and "out_of_pocket" in line and "个人现金支付额" in line
    assert "--aliases" in line and f"--period {LAST} --accept-held medical" in line

    accepted = run_cli(county, LAST, "--accept-held", "医保")
    assert accepted.exit_code == 0, accepted.output
    gate = query(db, "SELECT gate, accepted_by FROM held_deliveries").rows()
    assert gate == [("rejected", ingest.os_user())]


def test_a_file_kept_in_a_subfolder_and_an_empty_month_are_said(
    county: dict[str, Path],
) -> None:
    """Review of issue 12, case 6: this month's file moved into a subfolder is named when
    its source is missing; a month folder with nothing in it and nothing stored is not
    screened (it would re-label last month's data), and no run is recorded."""
    db = county["db"]
    path = source_file(county["inbox"], LAST, "civil")
    kept = archive(path, "民政")
    result = ingest_cli(county, LAST)
    assert result.exit_code == 0, result.output
    assert f"民政/{kept.name}" in flat(result.stdout) and "子文件夹" in result.stdout

    runs_before = query(db, "SELECT count(*) AS n FROM runs")["n"].item()
    (county["inbox"] / "2026-10").mkdir()
    empty = run_cli(county, "2026-10")
    assert empty.exit_code == 2
    (line,) = unstamped(empty.stderr)
    assert "本月尚未报送" in line and "nothing was delivered for 2026-10" in line
    assert query(db, "SELECT count(*) AS n FROM runs")["n"].item() == runs_before


def test_a_note_beside_the_data_file_is_not_a_second_file(county: dict[str, Path]) -> None:
    """Review of issue 13: 医保说明.txt beside 医保….xlsx is the department's note, not a
    second medical file; it is reported as unrecognised and the run goes on."""
    folder = county["inbox"] / LAST
    (folder / "医保说明.txt").write_text("本月结算说明", encoding="utf-8")
    result = run_cli(county, LAST)
    assert result.exit_code == 0, result.output
    assert "医保说明.txt" in flat(result.stdout)


def test_accepting_a_source_that_was_not_held_is_said(county: dict[str, Path]) -> None:
    result = ingest_cli(county, LAST, "--accept-held", "医保")
    assert result.exit_code == 0, result.output
    assert "nothing of this source was held" in flat(result.stdout).replace(" ", "") or (
        flat("nothing of this source was held") in flat(result.stdout)
    )


def test_a_township_gone_from_the_roster_and_persons_with_differing_rows_are_said(
    county: dict[str, Path],
) -> None:
    """Review of issue 12, cases 2 and 3: a township missing from this month's roster loses
    its list, and a person whose roster rows differ (both quarantined) counts in no
    household: both are warnings of the run, named (masked) in the report."""
    db, out = county["db"], county["out"]
    path = source_file(county["inbox"], LAST, "roster")
    frame = contract_columns(stored(db, "roster", LAST), "roster").with_columns(
        pl.col(pl.Decimal).cast(pl.String)
    )
    gone = sorted(frame["township"].unique())[0]
    kept = frame.filter(pl.col("township") != gone)
    one = kept.row(0, named=True)
    twin = {**one, "relation": "本人" if one["relation"] != "本人" else "之子"}
    changed = pl.concat([kept, pl.DataFrame([twin], schema=kept.schema)])
    archive(path)
    changed.write_csv(county["inbox"] / LAST / "人口基础信息_202609.csv")

    result = run_cli(county, LAST, "--accept-held", "roster")
    assert result.exit_code == 0, result.output
    text = (out / LAST / "run-report.md").read_text(encoding="utf-8")
    assert f"{gone}（上期" in text and "本期没有名单" in text
    assert "未计入任何一户" in text
    assert markdown._md(ids.mask(one["id_number"])) in text and one["id_number"] not in text
    assert gone in flat(result.stdout)
