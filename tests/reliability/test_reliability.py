"""Crash safety, idempotent re-runs and names from data, on the generated county.

A run is made to die at each point `run.after_stage` is called (see `run.STAGES`), in two
ways: an exception (the run's handlers record it as failed) and a simulated kill (no
handler runs, so the next run must find it); and a `screening` process is killed for real
(SIGKILL) inside its publish stage, paused there by `support.paused_screening`. The run
that dies is a re-run of a period whose roster changed, so any trace it left in the lists
would show.

Comparisons go through digests (`state`): a failure names the table or file that
changed without printing the ID numbers in it.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest

from screening import contract, ids
from screening.contract import SourceSpec
from screening.db import deliveries as db_deliveries
from screening.db import lock
from screening.db.connect import connect
from screening.ingest import inbox
from screening.pipeline import run
from screening.pipeline.work import WORK_FOLDER
from screening.publish.files import (
    CANDIDATES_FILE,
    DEPARTMENTS_FOLDER,
    EVIDENCE_FILE,
    SUSPECTS_FILE,
    township_paths,
)
from screening.publish.report import HTML_FILE, REPORT_FILE
from tests.support import paused_screening as paused
from tests.support.common import SAMPLE_PERIODS

PERIOD = SAMPLE_PERIODS[1]  # re-screened in these tests; the month before stays put
OLD_NAME = "白马乡"
NEW_NAME = "白马新乡"
# Every character that could break a path, a SQL literal or a spreadsheet cell.
ODD_NAME = "=1+1'/../:乡"
QUOTED_NAME = "O'Neil乡"  # a quote only: its folder keeps the name
DOTS_NAME = ".."
STAGING_TABLES = [f"stg_{source}" for source in contract.SOURCES]


class Died(BaseException):
    """The fault the crash tests inject: a BaseException, like a KeyboardInterrupt, so
    that no `except Exception` on the way can swallow it."""


# ---------------------------------------------------------------- helpers


def query(db: Path, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    con = connect(db, read_only=True)
    try:
        return con.sql(sql, params=params).pl()
    finally:
        con.close()


def digest(data: bytes | pl.DataFrame) -> str:
    if isinstance(data, pl.DataFrame):
        data = repr(data.rows()).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def published(out: Path) -> dict[str, str]:
    """Every file under `out` but the private work folder: relative path → digest."""
    return {
        str(p.relative_to(out)): digest(p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file() and WORK_FOLDER not in p.relative_to(out).parts
    }


def lists(db: Path) -> dict[str, str]:
    return {
        table: digest(query(db, f"SELECT * FROM {table} ORDER BY ALL"))
        for table in ("suspects", "evidence", "match_rates")
    }


def state(db: Path, out: Path) -> dict[str, Any]:
    """What a run that did not complete must leave as it was."""
    return {"files": published(out), "lists": lists(db)}


def deliveries(db: Path) -> dict[str, str]:
    tables = [*STAGING_TABLES, "quarantine", "ingest_log"]
    return {t: digest(query(db, f"SELECT * FROM {t} ORDER BY ALL")) for t in tables}


def roster_townships(db: Path, period: str) -> set[str]:
    rows = query(db, "SELECT DISTINCT trim(township) FROM stg_roster WHERE period = ?", [period])
    return {r[0].strip("\u3000 ") for r in rows.rows()}


def listed_townships(db: Path, period: str) -> set[str]:
    rows = query(db, "SELECT DISTINCT township FROM suspects WHERE period = ?", [period])
    return set(rows["township"])


def runs_of(db: Path, period: str) -> pl.DataFrame:
    # No order: started_at is to the second, and runs started within one second tie.
    return query(db, "SELECT * FROM runs WHERE period = ?", [period])


def new_runs(db: Path, known: set[str]) -> pl.DataFrame:
    return query(db, "SELECT * FROM runs").filter(~pl.col("run_id").is_in(sorted(known)))


def staged_temps(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and p.name.endswith(".tmp")]


def files_match_database(db: Path, out: Path, period: str) -> bool:
    folder = out / period
    stored = query(db, "SELECT * FROM suspects WHERE period = ? ORDER BY ALL", [period])
    stored_evidence = query(db, "SELECT * FROM evidence WHERE period = ? ORDER BY ALL", [period])
    return pl.read_parquet(folder / SUSPECTS_FILE).sort(pl.all()).equals(
        stored
    ) and pl.read_parquet(folder / EVIDENCE_FILE).sort(pl.all()).equals(stored_evidence)


def rename_townships(
    inbox_dir: Path, period: str, specs: dict[str, SourceSpec], names: dict[str, str]
) -> Path:
    """Rewrite the period's roster with townships renamed (old → new)."""
    path = inbox.discover(inbox_dir, period, specs)["roster"].path
    assert path is not None and path.suffix == ".parquet", "the sample's roster for this period"
    roster = pl.read_parquet(path)
    bare = pl.col("township").str.strip_chars(" \u3000")
    renamed = pl.col("township")
    for old, new in names.items():
        renamed = pl.when(bare == old).then(pl.lit(new)).otherwise(renamed)
    roster.with_columns(renamed.alias("township")).write_parquet(path)
    return path


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def first_two(sample_inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two months screened and published, once for this module."""
    work = tmp_path_factory.mktemp("first-two")
    for period in SAMPLE_PERIODS[:2]:
        run.run_period(
            db=work / "screening.duckdb", inbox=sample_inbox, out=work / "out", period=period
        )
    return work


@pytest.fixture
def county(first_two: Path, tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "county"
    shutil.copytree(first_two, target)
    return target / "screening.duckdb", target / "out"


@pytest.fixture
def renamed(sample_inbox: Path, tmp_path: Path, specs: dict[str, SourceSpec]) -> Path:
    """The inbox with one township renamed in PERIOD's roster: a re-run of PERIOD that
    completes changes the lists."""
    target = tmp_path / "renamed-inbox"
    shutil.copytree(sample_inbox, target)
    rename_townships(target, PERIOD, specs, {OLD_NAME: NEW_NAME})
    return target


# ---------------------------------------------------------------- crash safety


def _expected_status(point: str, death: str) -> str | None:
    """The dead run's status right after it died (None: no run was recorded)."""
    if point == "prepare":
        return None
    if run.STAGES.index(point) >= run.STAGES.index("publish"):
        return "success"  # it died after its outcome was committed
    return "failed" if death == "raised" else "running"


@pytest.mark.parametrize("death", ["raised", "killed"])
@pytest.mark.parametrize("point", run.STAGES)
def test_a_run_dying_after_any_stage_leaves_the_county_consistent(
    point: str,
    death: str,
    county: tuple[Path, Path],
    renamed: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, out = county
    before, delivered = state(db, out), deliveries(db)
    known = set(query(db, "SELECT run_id FROM runs")["run_id"])

    def die(name: str) -> None:
        if name == point:
            raise Died(name)

    monkeypatch.setattr(run, "after_stage", die)
    if death == "killed":
        # A killed process runs no handler: nothing records its end.
        monkeypatch.setattr(run, "fail_run", lambda *args: False)
    with pytest.raises(Died):
        run.run_period(db=db, inbox=renamed, out=out, period=PERIOD)

    dead = new_runs(db, known)
    status = _expected_status(point, death)
    assert dead["status"].to_list() == ([status] if status else [])
    if status == "failed":
        assert dead["message"][0] == f"Died: {point}"
    # Ingest commits its own transaction: after it, the new delivery is stored whole.
    ingested = run.STAGES.index(point) >= run.STAGES.index("ingest")
    assert (deliveries(db) == delivered) is not ingested
    assert roster_townships(db, PERIOD) == {"城关镇", "龙潭镇", NEW_NAME if ingested else OLD_NAME}
    if status == "success":
        assert files_match_database(db, out, PERIOD)
        assert NEW_NAME in listed_townships(db, PERIOD)
    else:
        assert state(db, out) == before
    left = {p.name for p in (out / WORK_FOLDER).glob("*")}
    kept_work = death == "killed" and point in ("screen", "store", "publish")
    assert left == (set(dead["run_id"]) if kept_work else set())
    assert not staged_temps(out)

    monkeypatch.undo()
    again = run.run_period(db=db, inbox=renamed, out=out, period=PERIOD)
    ended = dict(new_runs(db, known).select("run_id", "status").rows())
    assert ended.pop(again.run_id) == "success"
    if status:
        assert ended == {dead["run_id"][0]: "success" if status == "success" else "failed"}
    if status == "running":
        message = query(db, "SELECT message FROM runs WHERE run_id = ?", [dead["run_id"][0]])
        assert message["message"][0].startswith("运行中断")
    assert files_match_database(db, out, PERIOD)
    assert OLD_NAME not in listed_townships(db, PERIOD)
    assert NEW_NAME in listed_townships(db, PERIOD)
    assert not (out / WORK_FOLDER).exists()


def test_a_fault_inside_the_ingest_transaction_stores_no_half_delivery(
    county: tuple[Path, Path],
    renamed: Path,
    specs: dict[str, SourceSpec],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, out = county
    medical = inbox.discover(renamed, PERIOD, specs)["medical"].path
    assert medical is not None
    # A corrected medical file (one record fewer), so that two sources change: the roster
    # and the medical delivery. (A missing file would change nothing: the stored delivery
    # stays in force.)
    records = query(
        db,
        "SELECT * EXCLUDE (period, file, row_number, extra) FROM stg_medical "
        f"WHERE period = '{PERIOD}' ORDER BY row_number",
    )
    medical.unlink()
    records.head(records.height - 1).with_columns(pl.col(pl.Decimal).cast(pl.String)).write_csv(
        medical.with_suffix(".csv")
    )
    before, delivered = state(db, out), deliveries(db)
    known = set(query(db, "SELECT run_id FROM runs")["run_id"])
    real = db_deliveries.replace_delivery
    replaced: list[str] = []

    def second_fails(*args: Any, **kwargs: Any) -> None:
        replaced.append(args[1].source)
        if len(replaced) == 2:
            raise OSError("No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(db_deliveries, "replace_delivery", second_fails)
    with pytest.raises(OSError, match="No space"):
        run.run_period(db=db, inbox=renamed, out=out, period=PERIOD)
    assert replaced == ["roster", "medical"]  # the roster's rows were written, then undone
    assert deliveries(db) == delivered
    assert roster_townships(db, PERIOD) == {"城关镇", "龙潭镇", OLD_NAME}
    assert state(db, out) == before
    assert new_runs(db, known)["status"].to_list() == ["failed"]


def _wait_for(marker: Path, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"screening ended ({proc.returncode}) before pausing: {ids.mask_text(err)}")
        if time.monotonic() > deadline:
            pytest.fail("screening did not reach its pause point")
        time.sleep(0.05)


@pytest.mark.parametrize("pause", ["store", "staged"])
def test_a_killed_screening_process_is_recovered_by_the_next_run(
    pause: str, county: tuple[Path, Path], renamed: Path, tmp_path: Path
) -> None:
    """SIGKILL inside the publish stage: with the lists written to the database but not
    committed ("store"), or with every file staged under its temporary name ("staged")."""
    db, out = county
    before = state(db, out)
    known = set(query(db, "SELECT run_id FROM runs")["run_id"])
    marker = tmp_path / "paused"
    command = paused.command(
        "run", "--period", PERIOD, "--inbox", str(renamed), "--db", str(db), "--out", str(out)
    )
    proc = subprocess.Popen(
        command,
        env=paused.environment(pause, marker),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(marker, proc)
        temps = staged_temps(out)
    finally:
        proc.kill()  # SIGKILL: no handler, no finally, no atexit in the child
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # The dead process's lock is still there, naming it.
    holder = lock.Holder.from_json(lock.lock_path(db).read_text(encoding="utf-8"))
    assert holder is not None and holder.pid == proc.pid
    # The database opens; the lists and every published file are as they were: staged
    # files only ever exist under hidden temporary names, beside the files they replace.
    assert state(db, out) == {**before, "files": {**before["files"], **published_temps(out)}}
    assert (len(temps) > 0) is (pause == "staged")
    assert all(t.name.startswith(".") for t in temps)
    (dead,) = new_runs(db, known).rows(named=True)
    assert dead["status"] == "running"

    again = run.run_period(db=db, inbox=renamed, out=out, period=PERIOD)  # clears the lock
    statuses = dict(new_runs(db, known).select("run_id", "status").rows())
    assert statuses == {dead["run_id"]: "failed", again.run_id: "success"}
    message = query(db, "SELECT message FROM runs WHERE run_id = ?", [dead["run_id"]])
    assert message["message"][0].startswith("运行中断")
    assert not lock.lock_path(db).exists()
    assert not staged_temps(out)
    assert not (out / WORK_FOLDER).exists()
    assert files_match_database(db, out, PERIOD)


def published_temps(out: Path) -> dict[str, str]:
    return {k: v for k, v in published(out).items() if k.endswith(".tmp")}


# ---------------------------------------------------------------- idempotent re-runs


def test_a_rerun_on_the_same_inputs_changes_nothing_but_the_run_id(
    county: tuple[Path, Path], sample_inbox: Path, tmp_path: Path
) -> None:
    db, out = county
    tables = [*STAGING_TABLES, "suspects", "evidence", "match_rates", "quarantine", "ingest_log"]
    counts = {t: query(db, f"SELECT count(*) FROM {t}").item() for t in tables}
    tables_before = deliveries(db)
    suspects_before = query(db, "SELECT * EXCLUDE (run_id) FROM suspects ORDER BY ALL")
    first_files = tmp_path / "first"
    shutil.copytree(out / PERIOD, first_files)
    first_id = runs_of(db, PERIOD)["run_id"][0]

    second_id = run.run_period(db=db, inbox=sample_inbox, out=out, period=PERIOD).run_id

    assert runs_of(db, PERIOD)["status"].to_list() == ["success", "success"]
    assert {t: query(db, f"SELECT count(*) FROM {t}").item() for t in tables} == counts
    assert deliveries(db) == tables_before  # every delivery skipped as unchanged
    assert digest(query(db, "SELECT * EXCLUDE (run_id) FROM suspects ORDER BY ALL")) == digest(
        suspects_before
    )
    assert set(query(db, "SELECT run_id FROM suspects WHERE period = ?", [PERIOD])["run_id"]) == {
        second_id
    }
    names = sorted(str(p.relative_to(first_files)) for p in first_files.rglob("*") if p.is_file())
    assert names == sorted(
        str(p.relative_to(out / PERIOD)) for p in (out / PERIOD).rglob("*") if p.is_file()
    )
    for name in names:
        old, new = first_files / name, out / PERIOD / name
        if name.endswith((".csv", EVIDENCE_FILE)):
            assert digest(old.read_bytes()) == digest(new.read_bytes()), name
        elif name in (SUSPECTS_FILE, CANDIDATES_FILE):  # with a run_id column
            a, b = pl.read_parquet(old), pl.read_parquet(new)
            assert a["run_id"].unique().to_list() in ([first_id], [])
            assert b["run_id"].unique().to_list() in ([second_id], [])
            assert a.drop("run_id").equals(b.drop("run_id"))
        elif name.endswith(".xlsx"):  # the run id is on the 说明 sheet and in the properties
            assert xlsx_parts(old, first_id) == xlsx_parts(new, second_id), name
        else:  # the report (text and page) says when the run started and finished
            assert name in (REPORT_FILE, HTML_FILE)


def xlsx_parts(path: Path, run_id: str) -> dict[str, str]:
    """Each part of the workbook, with the run id replaced by a placeholder."""
    with zipfile.ZipFile(path) as book:
        return {n: digest(book.read(n).replace(run_id.encode(), b"RUN")) for n in book.namelist()}


# ---------------------------------------------------------------- names from data


def test_township_names_with_quotes_slashes_and_formulas_run_end_to_end(
    sample_inbox: Path, tmp_path: Path, specs: dict[str, SourceSpec]
) -> None:
    source = tmp_path / "inbox"
    shutil.copytree(sample_inbox, source)
    rename_townships(
        source, PERIOD, specs, {"白马乡": ODD_NAME, "龙潭镇": QUOTED_NAME, "城关镇": DOTS_NAME}
    )
    work = tmp_path / "work"
    db, out = work / "screening.duckdb", work / "out"
    run.run_period(db=db, inbox=source, out=out, period=PERIOD)

    stored = query(db, "SELECT township, count(*) AS n FROM suspects GROUP BY ALL")
    assert dict(stored.rows()).keys() == {ODD_NAME, QUOTED_NAME, DOTS_NAME}
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(source)]
    outside = {p.name for p in files if not p.resolve().is_relative_to(out.resolve())}
    assert outside == {db.name}
    folder = out / PERIOD
    for name in (ODD_NAME, QUOTED_NAME, DOTS_NAME):
        xlsx, csv = township_paths(folder, name, PERIOD)
        assert xlsx.is_file() and csv.is_file()
        assert xlsx.parent.parent == folder
    assert township_paths(folder, QUOTED_NAME, PERIOD)[0].parent.name == QUOTED_NAME

    xlsx, csv = township_paths(folder, ODD_NAME, PERIOD)
    table = pl.read_csv(csv, infer_schema=False)
    assert set(table["乡镇"]) == {"'" + ODD_NAME}  # defused: a spreadsheet shows it as text
    book = openpyxl.load_workbook(xlsx)
    about = {row[0].value: row[1] for row in book["说明"].iter_rows(min_row=2) if row[0].value}
    cell = about["乡镇"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == (ODD_NAME, "s", True)
    formulas = [c for ws in book for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []

    # Re-publish only the township whose name holds a quote (SQL and a file path).
    # A published file that is written again is a new file (renamed into place).
    # (The departments' feedback files cover every township: they are rewritten whole.)
    others = {
        p: p.stat().st_ino
        for p in folder.rglob("*")
        if p.is_file() and p.parent not in (folder, xlsx.parent, folder / DEPARTMENTS_FOLDER)
    }
    mine = {p: p.stat().st_ino for p in (xlsx, csv)}
    again = run.run_period(db=db, inbox=source, out=out, period=PERIOD, township=ODD_NAME)
    assert all(p.stat().st_ino != ino for p, ino in mine.items())
    assert {p: p.stat().st_ino for p in others} == others
    by_township = dict(
        query(db, "SELECT township, list(DISTINCT run_id) FROM suspects GROUP BY ALL").rows()
    )
    assert by_township.pop(ODD_NAME) == [again.run_id]
    assert again.run_id not in {r for ids in by_township.values() for r in ids}
    last = query(db, "SELECT township, status FROM runs WHERE run_id = ?", [again.run_id])
    assert last.row(0) == (ODD_NAME, "success")


def test_an_alias_with_quotes_reaches_the_database_comments_as_text(
    sample_inbox: Path, tmp_path: Path
) -> None:
    """Column comments (COMMENT ON takes no parameters) carry a county's aliases."""
    alias = "自付'); DROP TABLE runs; --"
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text(f'medical:\n  out_of_pocket: ["{alias}"]\n', encoding="utf-8")
    req = run.RunRequest(
        db=tmp_path / "screening.duckdb",
        inbox=sample_inbox,
        out=tmp_path / "out",
        period=PERIOD,
        aliases_file=aliases,
    )
    run.prepare(req)
    run_id = run.start_run(req)
    comment = query(
        req.db,
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'stg_medical' "
        "AND column_name = 'out_of_pocket'",
    ).item()
    assert alias in comment
    assert runs_of(req.db, PERIOD)["run_id"].to_list() == [run_id]
