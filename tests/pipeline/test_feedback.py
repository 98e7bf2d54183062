"""Township verification results (核实结果) imported back into the database.

Feedback files are made the way a township makes them: the published list of the
screened sample county, opened and filled in (openpyxl for the xlsx), or its csv. A
printed list has title rows above its header and, between its households, each village's
heading, subtotal and signature lines: `household_rows` finds the rows that are
households.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner, Result

from screening import ids
from screening.cli import main as cli
from screening.db import lock
from screening.db.connect import connect
from screening.feedback import imports as feedback
from screening.feedback import rows as feedback_rows
from screening.feedback.imports import FeedbackError
from screening.ingest import normalise
from screening.ingest.cells import FileRejected
from screening.pipeline import run
from screening.publish.columns import LIST_KEY_HEADER, SUSPECT_HEADERS, verification_window
from screening.publish.files import township_paths
from screening.publish.workbook import SHEET_HOUSEHOLDS
from tests.support.common import SAMPLE_PERIODS, query
from tests.support.lists import headers_of, household_at, household_records, household_rows

PERIOD = SAMPLE_PERIODS[-1]  # 2026-09: decisions dated 2026-09-01 … 2026-11-30
HEADERS = ["核实结果", "核实日期", "备注"]
ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
# Excel serial 46300 is 2026-10-04.
SERIAL_DAY = normalise.EXCEL_EPOCH + dt.timedelta(days=46300)

runner = CliRunner()


# The sample county is screened whenever the tests run; its lists are taken to have been
# published on this day, as a county on schedule would (decisions before it are refused).
PUBLISHED = dt.datetime(2026, 10, 1, 8, 0)


def publish_on(db: Path, period: str, when: dt.datetime) -> None:
    """Date the period's runs as if they had ended on `when`."""
    from screening.db.connect import connect

    con = connect(db)
    try:
        con.execute("UPDATE runs SET finished_at = ? WHERE period = ?", [when, period])
    finally:
        con.close()


@pytest.fixture
def workspace(screened: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A copy of the screened database and its published lists, free to change."""
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copy2(screened["db"], db)
    shutil.copytree(screened["out"], out)
    publish_on(db, PERIOD, PUBLISHED)
    return {"db": db, "out": out, "root": tmp_path, "inbox": screened["inbox"]}


@pytest.fixture
def townships(workspace: dict[str, Path]) -> tuple[str, str]:
    """The township with most listed households (the file's) and another one."""
    counts = query(
        workspace["db"],
        f"SELECT township, count(*) AS n FROM suspects WHERE period = '{PERIOD}' "
        "GROUP BY township ORDER BY n DESC, township",
    )
    return counts["township"][0], counts["township"][1]


pytestmark = pytest.mark.usefixtures("wide_console")


def tables(db: Path) -> dict[str, pl.DataFrame]:
    """The feedback tables, in a canonical order, for comparing two states."""
    return {
        name: query(db, f"SELECT * FROM {name}").sort(pl.all(), nulls_last=True)
        for name in ("verifications", "verification_rejects", feedback.CURRENT_VIEW)
    }


def nothing_stored(db: Path) -> bool:
    counts = query(
        db,
        "SELECT (SELECT count(*) FROM verifications) + "
        "(SELECT count(*) FROM verification_rejects) AS n",
    )
    return counts["n"].item() == 0


def published(workspace: dict[str, Path], township: str) -> tuple[Path, Path]:
    return township_paths(workspace["out"] / PERIOD, township, PERIOD)


def fill_xlsx(
    source: Path,
    target: Path,
    decisions: dict[int, tuple[object, object, object]],
    extra_rows: list[list[object]] = (),  # type: ignore[assignment]
) -> Path:
    """The published workbook with its 核实结果/核实日期/备注 columns (the last three)
    filled on the given sheet rows (1-based); extra rows appended first (after the
    signature lines)."""
    book = openpyxl.load_workbook(source)
    sheet = book.worksheets[0]
    headers = headers_of(sheet)
    first = headers.index(HEADERS[0])  # 0-based
    assert headers[first : first + 3] == HEADERS
    for values in extra_rows:
        sheet.append(values)
    for row, cells in decisions.items():
        for i, value in enumerate(cells, start=1):
            sheet.cell(row, first + i, value)
    book.save(target)
    return target


def sheet_rows(path: Path) -> list[list[object]]:
    sheet = openpyxl.load_workbook(path).worksheets[0]
    return [[c.value for c in row] for row in sheet.iter_rows()]


def first_rows(path: Path, n: int) -> list[int]:
    rows = household_rows(path)
    assert len(rows) >= n
    return rows[:n]


def run_import(db: Path, path: Path, township: str | None = None) -> feedback.ImportResult:
    return feedback.import_feedback(db, path, PERIOD, township)


def invoke(*args: object) -> Result:
    result = runner.invoke(cli.app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    printed = ids.fold_width(result.stdout + result.stderr)
    assert not ID18.search(printed), f"full ID number printed by {args}"
    return result


# ---------------------------------------------------------------- a township's workbook


@pytest.fixture
def township_file(workspace: dict[str, Path], townships: tuple[str, str]) -> dict[str, object]:
    """The biggest township's workbook sent back with three good decisions, four bad rows
    (an unknown result, a date after the window, another township's household, a
    household on no list) and the rest left empty."""
    own, other = townships
    xlsx, _ = published(workspace, own)
    other_xlsx, _ = published(workspace, other)
    copied = sheet_rows(other_xlsx)[household_rows(other_xlsx)[0] - 1]
    unknown = list(copied)
    unknown[headers_of(openpyxl.load_workbook(xlsx).worksheets[0]).index("户编号")] = (
        "9999999999999999"
    )
    hh = household_rows(xlsx)
    last = openpyxl.load_workbook(xlsx).worksheets[0].max_row
    foreign, stranger = last + 1, last + 2
    target = workspace["root"] / xlsx.name  # the published name says the township
    decisions: dict[int, tuple[object, object, object]] = {
        hh[0]: ("\u3000确认纳入 ", dt.date(2026, 10, 5), "  已入户，因病支出大\u3000"),
        hh[1]: ("不予纳入", "2026年10月3日", "收入核实高于监测线"),
        hh[2]: ("待核实", 46300, None),
        hh[3]: ("同意", "2026/10/3", None),
        hh[4]: ("确认纳入", dt.datetime(2027, 1, 3, 9, 30), None),
        foreign: ("确认纳入", "2026-10-06", None),
        stranger: ("不予纳入", "2026-10-06", None),
    }
    fill_xlsx(xlsx, target, decisions, [copied, unknown])
    return {
        "path": target,
        "own": own,
        "other": other,
        "rows": len(hh) + 2,
        "hh": hh[:5],
        "foreign": foreign,
        "stranger": stranger,
        "households": {row: household_at(target, row) for row in hh[:5]},
        "foreign_household": household_at(target, foreign),
    }


def test_good_rows_are_stored_and_bad_rows_rejected_with_their_reason(
    workspace: dict[str, Path], township_file: dict[str, object]
) -> None:
    tf = township_file
    path = tf["path"]
    assert isinstance(path, Path)
    result = run_import(workspace["db"], path)

    assert result.township == feedback.FileTownship(str(tf["own"]), "说明页 说明 sheet")
    assert result.kind.name == "疑似监测对象"
    assert (result.accepted, result.unchanged, result.rejected) == (3, 0, 4)
    # The village headings, subtotals and signature lines are not rows of the list.
    assert result.rows_read == tf["rows"]
    assert result.empty_rows == result.rows_read - 7

    stored = query(workspace["db"], "SELECT * FROM verifications ORDER BY row_number")
    hh = tf["households"]
    r2, r3, r4, r5, r6 = tf["hh"]  # type: ignore[misc]
    assert isinstance(hh, dict)
    assert stored.select("row_number", "household_id", "result", "verification_date").rows() == [
        (r2, hh[r2], "确认纳入", dt.date(2026, 10, 5)),
        (r3, hh[r3], "不予纳入", dt.date(2026, 10, 3)),
        (r4, hh[r4], "待核实", SERIAL_DAY),
    ]
    assert stored["note"].to_list() == ["已入户，因病支出大", "收入核实高于监测线", None]
    assert set(stored["township"]) == {tf["own"]}
    assert set(stored["period"]) == {PERIOD}
    assert set(stored["file"]) == {path.name}
    assert set(stored["file_sha256"]) == {result.sha256}
    assert stored["is_current"].all()
    assert stored["imported_by"].str.len_chars().min() > 0  # type: ignore[operator]

    rejects = query(
        workspace["db"], 'SELECT row_number, household_id, "check" FROM verification_rejects'
    )
    assert sorted(rejects.rows()) == sorted(
        [
            (r5, hh[r5], "invalid_result"),
            (r6, hh[r6], "date_out_of_range"),
            (tf["foreign"], tf["foreign_household"], "other_township"),
            (tf["stranger"], "9999999999999999", "unknown_household"),
        ]
    )
    messages = dict(feedback.reject_messages(result.rejects).select("row_number", "message").rows())
    assert "同意" in messages[r5] and "确认纳入 / 不予纳入 / 待核实" in messages[r5]
    assert "2027-01-03" in messages[r6] and "2026-11-30" in messages[r6]
    assert str(tf["other"]) in messages[tf["foreign"]]
    assert f"{PERIOD} 期名单" in messages[tf["stranger"]]


def test_the_same_file_imported_twice_changes_nothing(
    workspace: dict[str, Path], township_file: dict[str, object]
) -> None:
    path = township_file["path"]
    assert isinstance(path, Path)
    run_import(workspace["db"], path)
    before = tables(workspace["db"])
    again = run_import(workspace["db"], path)
    assert (again.accepted, again.unchanged, again.rejected) == (0, 3, 4)
    after = tables(workspace["db"])
    for name, frame in before.items():
        assert frame.equals(after[name]), name


def test_a_later_decision_becomes_current_and_the_earlier_stays_in_history(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    own, _ = townships
    xlsx, _ = published(workspace, own)
    r2, r3, r4 = first_rows(xlsx, 3)
    first = {
        r2: ("确认纳入", "2026-10-05", None),
        r3: ("待核实", "2026-10-05", "家中无人"),
        r4: ("不予纳入", "2026-10-05", None),
    }
    later = {**first, r3: ("确认纳入", "2026-10-20", "已入户核实")}
    (workspace["root"] / "first").mkdir()
    (workspace["root"] / "later").mkdir()
    file1 = fill_xlsx(xlsx, workspace["root"] / "first" / xlsx.name, first)
    file2 = fill_xlsx(xlsx, workspace["root"] / "later" / xlsx.name, later)
    changed = household_at(file1, r3)

    run_import(workspace["db"], file1)
    result = run_import(workspace["db"], file2)
    assert (result.accepted, result.unchanged) == (1, 2)

    history = query(
        workspace["db"],
        f"SELECT result, note, is_current FROM verifications WHERE household_id = '{changed}' "
        "ORDER BY imported_at",
    )
    assert history.rows() == [("待核实", "家中无人", False), ("确认纳入", "已入户核实", True)]
    current = query(workspace["db"], f"SELECT * FROM {feedback.CURRENT_VIEW}")
    assert current.height == 3
    assert current["household_id"].n_unique() == 3
    assert current.filter(pl.col("household_id") == changed)["result"].item() == "确认纳入"
    assert query(workspace["db"], "SELECT count(*) AS n FROM verifications")["n"].item() == 4

    # The first file again: an old decision does not come back as the current one.
    before = tables(workspace["db"])
    assert run_import(workspace["db"], file1).accepted == 0
    assert tables(workspace["db"])[feedback.CURRENT_VIEW].equals(before[feedback.CURRENT_VIEW])


# ---------------------------------------------------------------- csv, English headers, dates


def test_csv_with_english_headers_and_dates_in_text_forms(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    own, _ = townships
    _, csv = published(workspace, own)
    listed = pl.read_csv(csv, infer_schema=False).drop(HEADERS)
    english = {chinese: key for key, chinese in SUSPECT_HEADERS.items()}
    serial = str((dt.date(2026, 10, 3) - normalise.EXCEL_EPOCH).days)
    forms = ["2026/10/3", "20261003", "２０２６年１０月３日", " 2026-10-03 ", serial, "2026.10.3"]
    n, pad = len(forms), [None] * (listed.height - len(forms))
    filled = listed.rename(english, strict=False).with_columns(
        pl.Series("verification_result", ["确认纳入", "不予纳入", "待核实"] * 2 + pad),
        pl.Series("verification_date", forms + pad),
        pl.Series("note", ["ok"] * n + pad, dtype=pl.String),
    )
    target = workspace["root"] / "feedback.csv"  # the township comes from its column
    filled.write_csv(target, include_bom=True)

    result = run_import(workspace["db"], target)
    assert result.township == feedback.FileTownship(own, "乡镇 column")
    assert (result.accepted, result.rejected) == (n, 0)
    stored = query(workspace["db"], "SELECT verification_date, note FROM verifications")
    assert set(stored["verification_date"]) == {dt.date(2026, 10, 3)}
    assert set(stored["note"]) == {"ok"}


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (dt.date(2026, 10, 3), dt.date(2026, 10, 3)),
        (dt.datetime(2026, 10, 3, 14, 5), dt.date(2026, 10, 3)),
        (46300, SERIAL_DAY),
        (46300.75, SERIAL_DAY),
        ("2026-10-03", dt.date(2026, 10, 3)),
        ("2026/10/3", dt.date(2026, 10, 3)),
        ("2026年10月3日", dt.date(2026, 10, 3)),
        ("20261003", dt.date(2026, 10, 3)),
        ("２０２６－１０－０３", dt.date(2026, 10, 3)),
        ("03/10/2026", None),
        ("下周", None),
    ],
)
def test_dates_as_excel_cells_and_text(tmp_path: Path, cell: object, expected: object) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = SHEET_HOUSEHOLDS
    sheet.append(["户编号", "核实结果", "核实日期"])
    sheet.append(["H1", "待核实", cell])
    book.save(tmp_path / "f.xlsx")
    rows = feedback_rows.parse_rows(feedback.read_feedback(tmp_path / "f.xlsx").frame)
    assert rows["verification_date"].item() == expected


# ---------------------------------------------------------------- the row checks


LISTED = pl.DataFrame(
    {
        "household_id": ["4306241010010001", "4306241010010002", "4306241020010001"],
        "township": ["城关镇", "城关镇", "白马乡"],
    }
)


def decision_rows(*rows: tuple[str | None, str | None, str | None]) -> pl.DataFrame:
    raw = pl.DataFrame(
        {
            "row_number": list(range(2, len(rows) + 2)),
            "household_id": [r[0] for r in rows],
            "verification_result": [r[1] for r in rows],
            "verification_date": [r[2] for r in rows],
        },
        schema={c: pl.String for c in ("household_id", "verification_result")}
        | {"row_number": pl.Int64, "verification_date": pl.String},
    )
    return feedback_rows.parse_rows(raw)


def checks_of(rejects: pl.DataFrame) -> dict[int, list[str]]:
    grouped = rejects.group_by("row_number", maintain_order=True).agg("check")
    return dict(grouped.rows())


def test_each_failed_check_is_reported_and_a_repeated_household_rejected_everywhere() -> None:
    rows = decision_rows(
        ("４３０６２４１０１００１０００１", "确认纳入", "2026-10-01"),  # full-width digits
        ("'4306241010010002", "不予纳入", "2026-10-01"),  # Excel's text apostrophe
        ("4306241020010001", "确认纳入", "2026-10-01"),  # 白马乡
        (None, None, "2026-10-01"),
        ("4306241010010002.0", "确认纳入", None),  # a number cell, again row 3's household
        ("123", "可能", "2026-08-31"),
        ("4306241010010001", None, None),  # no decision: not checked at all
    )
    accepted, rejects = feedback_rows.check_rows(rows, LISTED, PERIOD, "城关镇")
    assert accepted.select("row_number", "household_id", "township").rows() == [
        (2, "4306241010010001", "城关镇")
    ]
    assert checks_of(rejects) == {
        3: ["duplicate_household"],
        4: ["other_township"],
        5: ["missing_household", "missing_result"],
        6: ["duplicate_household", "missing_date"],
        7: ["unknown_household", "invalid_result", "date_out_of_range"],
    }
    assert rows.filter(pl.col("empty"))["row_number"].to_list() == [8]
    duplicate = rejects.filter(pl.col("row_number") == 3)["message"].item()
    assert "3, 6" in duplicate


def test_a_pending_result_may_leave_its_date_blank() -> None:
    rows = decision_rows(
        ("4306241010010001", "待核实", None),
        ("4306241010010002", "不予纳入", None),
    )
    accepted, rejects = feedback_rows.check_rows(rows, LISTED, PERIOD, "城关镇")
    assert accepted.select("household_id", "result", "verification_date").rows() == [
        ("4306241010010001", "待核实", None)
    ]
    assert checks_of(rejects) == {3: ["missing_date"]}


def test_date_window_is_the_month_and_the_next_two() -> None:
    assert verification_window("2026-09") == (dt.date(2026, 9, 1), dt.date(2026, 11, 30))
    assert verification_window("2026-11") == (dt.date(2026, 11, 1), dt.date(2027, 1, 31))
    assert verification_window("2026-12") == (dt.date(2026, 12, 1), dt.date(2027, 2, 28))


def test_the_files_township_comes_from_the_option_then_the_column_then_the_name() -> None:
    townships = ["城关镇", "白马乡", "鹤龙湖镇"]
    rows = decision_rows(("1", None, None)).with_columns(pl.lit("白马乡").alias("township"))
    plain = decision_rows(("1", None, None))
    named = Path("疑似监测对象_城关镇_202609(已核实).xlsx")
    assert feedback.file_township(rows, named, townships, "鹤龙湖镇").origin == "--township"
    assert feedback.file_township(rows, named, townships, None).name == "白马乡"
    assert feedback.file_township(plain, named, townships, None).name == "城关镇"
    with pytest.raises(FeedbackError, match="--township"):
        feedback.file_township(plain, Path("核实结果.xlsx"), townships, None)
    with pytest.raises(FeedbackError, match="no household"):
        feedback.file_township(plain, named, townships, "不存在乡")


def test_option_township_rejects_the_rows_of_another_township(
    workspace: dict[str, Path], township_file: dict[str, object]
) -> None:
    path = township_file["path"]
    assert isinstance(path, Path)
    result = run_import(workspace["db"], path, township=str(township_file["other"]))
    assert result.accepted == 1  # the copied row is the other township's own
    assert "other_township" in set(result.rejects["check"])


# ---------------------------------------------------------------- whole-file refusals


def test_a_csv_of_another_period_is_refused(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    _, csv = published(workspace, townships[0])
    frame = pl.read_csv(csv, infer_schema=False).with_columns(
        pl.lit("2026-08").alias("期次"), pl.lit("确认纳入").alias("核实结果")
    )
    target = workspace["root"] / "old.csv"
    frame.write_csv(target)
    with pytest.raises(FeedbackError, match="2026-08"):
        run_import(workspace["db"], target)


def test_import_is_refused_while_another_process_holds_the_database(
    workspace: dict[str, Path], township_file: dict[str, object]
) -> None:
    path = township_file["path"]
    assert isinstance(path, Path)
    with lock.hold(workspace["db"]), pytest.raises(lock.Busy):
        run_import(workspace["db"], path)
    assert nothing_stored(workspace["db"])


# ---------------------------------------------------------------- command line


def test_cli_prints_counts_and_each_rejected_row(
    workspace: dict[str, Path], township_file: dict[str, object]
) -> None:
    result = invoke(
        "feedback", "import", township_file["path"], "--period", PERIOD, "--db", workspace["db"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "接收 accepted" in out and "拒收 rejected" in out
    assert "unknown verification result" in out
    assert "outside the period's month" in out
    assert "is on the list of" in out
    assert "9999999999999999" in out
    assert str(township_file["stranger"]) in out


@pytest.mark.parametrize(
    ("make", "period", "message"),
    [
        ("garbage", PERIOD, "cannot read"),
        ("published", PERIOD, "核实结果"),
        ("filled", "2026-10", "not 2026-10"),
        ("missing", PERIOD, "file not found"),
    ],
)
def test_cli_refuses_in_one_line(
    workspace: dict[str, Path],
    township_file: dict[str, object],
    townships: tuple[str, str],
    make: str,
    period: str,
    message: str,
) -> None:
    root = workspace["root"]
    files = {
        "garbage": root / "broken.xlsx",
        "published": published(workspace, townships[0])[0],
        "filled": township_file["path"],
        "missing": root / "nowhere.xlsx",
    }
    (root / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    result = invoke("feedback", "import", files[make], "--period", period, "--db", workspace["db"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert nothing_stored(workspace["db"])


def test_a_file_without_the_household_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "feedback.csv"
    path.write_text("户主姓名,核实结果,核实日期\n张三,确认纳入,2026-10-03\n", encoding="utf-8")
    with pytest.raises(FileRejected, match="户编号"):
        feedback.read_feedback(path)


# ---------------------------------------------------------------- the list's period (issue 12)


def filled_list_of(workspace: dict[str, Path], period: str, name: str | None = None) -> Path:
    """A township's published list of `period` with one decision, saved as `name`."""
    listed = query(
        workspace["db"], f"SELECT township FROM suspects WHERE period = '{period}' LIMIT 1"
    )["township"][0]
    xlsx, _ = township_paths(workspace["out"] / period, listed, period)
    target = workspace["root"] / (name or xlsx.name)
    return fill_xlsx(xlsx, target, {first_rows(xlsx, 1)[0]: ("确认纳入", "2026-10-05", None)})


@pytest.mark.parametrize("name", [None, "核实结果.xlsx"])
def test_a_list_of_another_month_is_refused_naming_both_periods(
    workspace: dict[str, Path], name: str | None
) -> None:
    """Situation 10: July's list imported as August's. By its name (…_202607.xlsx), or,
    renamed, by its 说明 sheet."""
    july, august = SAMPLE_PERIODS[0], SAMPLE_PERIODS[1]
    path = filled_list_of(workspace, july, name)
    result = invoke("feedback", "import", path, "--period", august, "--db", workspace["db"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and july in lines[0] and august in lines[0]
    assert ("文件名" if name is None else "说明页") in lines[0]
    assert nothing_stored(workspace["db"])


def test_a_csv_whose_期次_column_names_another_month_is_refused(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    _, csv = published(workspace, townships[0])
    frame = pl.read_csv(csv, infer_schema=False).with_columns(
        pl.lit("确认纳入").alias("核实结果"), pl.lit("2026-10-05").alias("核实日期")
    )
    target = workspace["root"] / "反馈.csv"
    frame.write_csv(target)
    result = invoke("feedback", "import", target, "--period", "2026-08", "--db", workspace["db"])
    assert result.exit_code == 2 and "期次列" in result.stderr and PERIOD in result.stderr
    assert nothing_stored(workspace["db"])


def test_a_list_without_a_period_of_a_month_never_screened_is_refused(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    _, csv = published(workspace, townships[0])
    frame = pl.read_csv(csv, infer_schema=False).drop("期次")
    target = workspace["root"] / "反馈.csv"
    frame.with_columns(
        pl.lit("确认纳入").alias("核实结果"), pl.lit("2026-10-05").alias("核实日期")
    ).write_csv(target)
    result = invoke("feedback", "import", target, "--period", "2026-10", "--db", workspace["db"])
    assert result.exit_code == 2 and "never screened" in result.stderr


def test_a_decision_dated_before_the_list_was_published_is_rejected_row_by_row(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    own, _ = townships
    xlsx, _ = published(workspace, own)
    r2, r3, r4 = first_rows(xlsx, 3)
    target = fill_xlsx(
        xlsx,
        workspace["root"] / xlsx.name,
        {
            r2: ("确认纳入", "2026-09-20", None),  # before 2026-10-01: the list did not exist
            r3: ("不予纳入", "2026-10-01", None),  # the day it was published
            r4: ("确认纳入", "2026-10-05", None),
        },
    )
    result = run_import(workspace["db"], target)
    assert (result.accepted, result.rejected) == (2, 1)
    rejects = query(
        workspace["db"], 'SELECT row_number, "check", message FROM verification_rejects'
    ).rows()
    assert [(r[0], r[1]) for r in rejects] == [(r2, "before_publication")]
    assert "2026-09-20" in rejects[0][2] and "2026-10-01" in rejects[0][2]
    stored = query(workspace["db"], "SELECT row_number FROM verifications ORDER BY 1")
    assert stored["row_number"].to_list() == [r3, r4]


def test_the_publication_is_that_of_the_run_named_on_the_list(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    """A list re-published by a later run carries that run's 批次号: its decisions count
    from that run's end."""
    own, _ = townships
    xlsx, _ = published(workspace, own)
    about = openpyxl.load_workbook(xlsx)["说明"].iter_rows(values_only=True)
    run_id = next(str(text) for label, text in about if label == "批次号")
    from screening.db.connect import connect

    con = connect(workspace["db"])
    try:
        con.execute(
            "UPDATE runs SET finished_at = ? WHERE run_id = ?",
            [dt.datetime(2026, 10, 10, 9, 0), run_id],
        )
    finally:
        con.close()
    target = fill_xlsx(
        xlsx,
        workspace["root"] / xlsx.name,
        {first_rows(xlsx, 1)[0]: ("确认纳入", "2026-10-05", None)},
    )
    result = run_import(workspace["db"], target)
    assert result.rejects["check"].to_list() == ["before_publication"]


def test_a_list_published_after_its_window_is_checked_against_the_window_only(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    """A month screened late (the demo's months, a county catching up): no decision could
    be both after the publication and inside the period's window."""
    publish_on(workspace["db"], PERIOD, dt.datetime(2026, 12, 15, 9, 0))
    own, _ = townships
    xlsx, _ = published(workspace, own)
    target = fill_xlsx(
        xlsx,
        workspace["root"] / xlsx.name,
        {first_rows(xlsx, 1)[0]: ("确认纳入", "2026-10-05", None)},
    )
    result = run_import(workspace["db"], target)
    assert (result.accepted, result.rejected) == (1, 0)


# ---------------------------------------------------------------- lists published with --mask-ids


@pytest.fixture
def masked_lists(workspace: dict[str, Path]) -> dict[str, Path]:
    """The county re-screened with --mask-ids where every household is numbered with its
    head's ID number (some counties do): the lists show each 户编号 masked."""
    con = connect(workspace["db"])
    con.execute(
        "UPDATE stg_roster s SET household_id = h.head FROM (SELECT period, household_id, "
        "min(id_number) FILTER (relation = '户主') AS head FROM stg_roster GROUP BY ALL) h "
        "WHERE s.period = h.period AND s.household_id = h.household_id AND h.head IS NOT NULL"
    )
    con.close()
    # The inbox's files are unchanged: the run reuses the stored (renumbered) roster.
    run.run_period(
        db=workspace["db"], inbox=workspace["inbox"], out=workspace["out"], period=PERIOD,
        mask_ids=True,
    )  # fmt: skip
    publish_on(workspace["db"], PERIOD, PUBLISHED)
    return workspace


def test_a_list_published_with_masked_ids_comes_back_by_its_check_code(
    masked_lists: dict[str, Path],
) -> None:
    db = masked_lists["db"]
    own = query(db, f"SELECT township FROM suspects WHERE period = '{PERIOD}' LIMIT 1")[0, 0]
    xlsx, csv = published(masked_lists, own)
    header = headers_of(openpyxl.load_workbook(xlsx).worksheets[0])
    at_id, at_key = header.index("户编号"), header.index(LIST_KEY_HEADER)
    assert at_key == at_id + 1
    shown = [household_at(xlsx, r) for r in household_rows(xlsx)]
    assert shown and all("********" in h for h in shown)  # what the township sees
    day = dt.date(2026, 10, 8)
    target = fill_xlsx(
        xlsx, masked_lists["root"] / "back.xlsx", {household_rows(xlsx)[0]: ("确认纳入", day, "ok")}
    )
    result = run_import(db, target, own)
    assert (result.accepted, result.rejected) == (1, 0)
    stored = query(db, "SELECT household_id FROM verifications")["household_id"].to_list()
    listed = query(db, f"SELECT household_id FROM suspects WHERE township = '{own}'")
    assert stored[0] in listed["household_id"].to_list() and ids.mask(stored[0]) == shown[0]
    # The csv too, sorted the other way round by the township: the code travels with its row.
    table = pl.read_csv(csv, infer_schema=False).reverse()
    filled = table.with_columns(
        pl.Series("核实结果", ["待核实"] * table.height),
        pl.Series("核实日期", [None] * table.height, dtype=pl.String),
    )
    back = masked_lists["root"] / f"{own}_back.csv"
    filled.write_csv(back, include_bom=True)
    again = feedback.import_feedback(db, back, PERIOD)
    assert (again.accepted + again.unchanged, again.rejected) == (table.height, 0)


def test_a_check_code_that_was_changed_is_rejected_not_guessed(
    masked_lists: dict[str, Path],
) -> None:
    db = masked_lists["db"]
    counts = query(
        db, f"SELECT township, count(*) AS n FROM suspects WHERE period = '{PERIOD}' "
        "GROUP BY ALL ORDER BY n DESC",
    )  # fmt: skip
    own = counts["township"][0]
    xlsx, _ = published(masked_lists, own)
    r2, r3, r4 = first_rows(xlsx, 3)
    book = openpyxl.load_workbook(xlsx)
    sheet = book.worksheets[0]
    key = headers_of(sheet).index(LIST_KEY_HEADER) + 1
    first, second = sheet.cell(r2, key).value, sheet.cell(r3, key).value
    sheet.cell(r2, key, second)  # one column sorted on its own: codes on the wrong rows
    sheet.cell(r3, key, first)
    sheet.cell(r4, key, "ZZZZ9999")  # a code typed over
    target = masked_lists["root"] / "changed.xlsx"
    book.save(target)
    day = dt.date(2026, 10, 8)
    filled = fill_xlsx(target, target, {r: ("不予纳入", day, "") for r in (r2, r3, r4)})
    result = run_import(db, filled, own)
    assert result.accepted == 0
    checks = dict(result.rejects.select("row_number", "check").rows())
    assert checks == {r2: "list_key_mismatch", r3: "list_key_mismatch", r4: "unknown_list_key"}
    assert (
        nothing_stored(db) is False
        and query(db, "SELECT count(*) AS n FROM verifications")["n"][0] == 0
    )


# ---------------------------------------------------------------- a csv a spreadsheet saved


def spreadsheet_saved(text: str) -> str:
    """What Excel or WPS makes of a long number it read from a csv: 15 significant digits,
    shown in scientific notation when the column is narrow."""
    if len(text) <= 15 or not text.isdigit():
        return text  # an ID ending in X is text to a spreadsheet too
    return f"{float(text):.5E}".replace("E+0", "E+")


def test_a_csv_saved_by_a_spreadsheet_comes_back_by_its_check_code(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    own, _ = townships
    _, csv = published(workspace, own)
    table = pl.read_csv(csv, infer_schema=False)
    assert LIST_KEY_HEADER in table.columns  # the csv always carries the 核对码
    rounded = table.with_columns(
        pl.col("户编号").map_elements(spreadsheet_saved, return_dtype=pl.String),
        pl.col("户主身份证号").map_elements(spreadsheet_saved, return_dtype=pl.String),
        pl.lit("Sep-26").alias("期次"),  # 2026-09 read as a date and shown as Excel does
        pl.lit("确认纳入").alias("核实结果"),
        pl.lit("2026/10/5").alias("核实日期"),
    )
    assert rounded["户编号"][0] != table["户编号"][0]
    target = workspace["root"] / "saved.csv"
    target.write_bytes(rounded.write_csv().encode("gb18030"))  # saved in the system's code page
    result = run_import(workspace["db"], target)
    assert (result.accepted, result.rejected) == (table.height, 0)
    stored = query(workspace["db"], "SELECT household_id FROM verifications ORDER BY 1")
    assert stored["household_id"].to_list() == sorted(table["户编号"].to_list())


def test_a_rounded_csv_without_its_check_code_asks_for_the_xlsx_in_one_line(
    workspace: dict[str, Path], townships: tuple[str, str]
) -> None:
    own, _ = townships
    _, csv = published(workspace, own)
    table = pl.read_csv(csv, infer_schema=False).drop(LIST_KEY_HEADER)
    for form in ("plain", "scientific"):
        shown = (
            pl.col("户编号").str.slice(0, 15) + pl.lit("0")
            if form == "plain"
            else pl.col("户编号").map_elements(spreadsheet_saved, return_dtype=pl.String)
        )
        target = workspace["root"] / f"{own}_{form}.csv"
        table.with_columns(
            shown.alias("户编号"),
            pl.lit("确认纳入").alias("核实结果"),
            pl.lit("2026-10-05").alias("核实日期"),
        ).write_csv(target)
        result = invoke("feedback", "import", target, "--period", PERIOD, "--db", workspace["db"])
        assert result.exit_code == 2
        (line,) = result.stderr.strip().splitlines()
        assert "send back the xlsx" in line and "发回原样的 xlsx" in line
        assert nothing_stored(workspace["db"])


def test_a_csv_number_that_only_looks_rounded_is_its_own_household() -> None:
    listed = pl.DataFrame({"household_id": ["4306241010030000"], "township": ["城关镇"]})
    rows = decision_rows(("4306241010030000", "确认纳入", "2026-10-05"))
    assert feedback_rows.rounded_example(rows, listed) is None
    assert feedback_rows.spreadsheet_form("4306241010030000", "4306241010030001")
    assert feedback_rows.spreadsheet_form("4.30624E+15", "4306241010030001")
    assert not feedback_rows.spreadsheet_form("4306241010030001", "4306241010030001")
    assert not feedback_rows.spreadsheet_form("4306241010040000", "4306241010030001")


def test_the_printed_lists_extra_rows_are_not_rows_of_the_list() -> None:
    """A village's heading, subtotal and signature lines carry no household and no answer."""
    raw = pl.DataFrame(
        {
            "row_number": [4, 5, 6, 7],
            "household_id": [None, "4306241010010001", None, None],
            "verification_result": [None, "确认纳入", None, None],
            "verification_date": [None, "2026-10-05", None, None],
        },
        schema={"row_number": pl.Int64} | {c: pl.String for c in HEADER_KEYS},
    )
    rows = feedback_rows.parse_rows(raw)
    assert rows["row_number"].to_list() == [5]


HEADER_KEYS = ("household_id", "verification_result", "verification_date")


# ---------------------------------------------------------------- the 风险消除候选 list


CLEAR = 2  # screened periods without a risk before a monitored household is proposed


@pytest.fixture(scope="module")
def removal_county(sample_inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample county's first two months screened with a 2-period removal check, so
    that 2026-08 has 风险消除候选 lists."""
    import yaml

    work = tmp_path_factory.mktemp("removal")
    county = work / "county.yaml"
    county.write_text(
        yaml.safe_dump({"risk_removal_clear_periods": {"values": {"2021-01-01": CLEAR}}}),
        encoding="utf-8",
    )
    db, out = work / "screening.duckdb", work / "out"
    for period in SAMPLE_PERIODS[:2]:
        run.run_period(db=db, inbox=sample_inbox, out=out, period=period, params_file=county)
    publish_on(db, SAMPLE_PERIODS[1], dt.datetime(2026, 9, 1, 8, 0))
    return {"db": db, "out": out, "params": county, "inbox": sample_inbox, "root": work}


@pytest.fixture
def removal_workspace(removal_county: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copy2(removal_county["db"], db)
    shutil.copytree(removal_county["out"], out)
    return {**removal_county, "db": db, "out": out, "root": tmp_path}


def candidate_lists(out: Path, period: str) -> list[Path]:
    """The period's 风险消除候选 lists, the longest first (the tests answer several rows)."""
    found = sorted((out / period).rglob("风险消除候选_*.xlsx"))
    return sorted(found, key=lambda path: -len(household_rows(path)))


def test_a_filled_risk_removal_list_round_trips_and_shows_everywhere(
    removal_workspace: dict[str, Path],
) -> None:
    ws = removal_workspace
    august, september = SAMPLE_PERIODS[1], SAMPLE_PERIODS[2]
    (xlsx, *_) = candidate_lists(ws["out"], august)
    rows = household_rows(xlsx)
    assert len(rows) >= 2
    book = openpyxl.load_workbook(xlsx)
    sheet = book.worksheets[0]
    headers = headers_of(sheet)
    decision = headers.index("消除意见") + 1
    assert headers[decision - 1 : decision + 2] == ["消除意见", "意见日期", "备注"]
    answers = {
        rows[0]: ("同意消除", dt.date(2026, 9, 10), "收入稳定，已评议公示"),
        rows[1]: ("暂不消除", "2026-09-12", "仍有大额医疗支出"),
    }
    for row, values in answers.items():
        for i, value in enumerate(values):
            sheet.cell(row, decision + i, value)
    target = ws["root"] / xlsx.name
    book.save(target)  # opened and saved by openpyxl, as a spreadsheet program would

    result = feedback.import_feedback(ws["db"], target, august)
    assert result.kind.name == "风险消除候选"
    assert (result.accepted, result.rejected) == (2, 0)
    agreed, deferred = household_at(target, rows[0]), household_at(target, rows[1])
    stored = query(
        ws["db"], "SELECT household_id, decision, decision_date, note FROM removal_decisions"
    ).sort("decision")
    assert stored.rows() == [
        (agreed, "同意消除", dt.date(2026, 9, 10), "收入稳定，已评议公示"),
        (deferred, "暂不消除", dt.date(2026, 9, 12), "仍有大额医疗支出"),
    ]
    assert query(ws["db"], "SELECT count(*) AS n FROM verifications")["n"][0] == 0
    again = feedback.import_feedback(ws["db"], target, august)  # again: nothing changes
    assert (again.accepted, again.unchanged) == (0, 2)

    # The next month: the answers show in the household's history, explain and the list.
    run.run_period(
        db=ws["db"], inbox=ws["inbox"], out=ws["out"], period=september, params_file=ws["params"]
    )
    history = query(
        ws["db"],
        "SELECT period, removal_decision, removal_decision_date FROM household_history "
        f"WHERE household_id = '{deferred}' ORDER BY period",
    )
    assert history.filter(pl.col("period") == august).row(0)[1:] == (
        "暂不消除",
        dt.date(2026, 9, 12),
    )
    later = query(
        ws["db"],
        "SELECT household_id, last_removal_decision, last_removal_decision_date "
        f"FROM removal_candidates WHERE period = '{september}'",
    )
    shown = {r[0]: r[1:] for r in later.rows()}
    assert shown.get(deferred) == ("暂不消除", dt.date(2026, 9, 12))
    for path in candidate_lists(ws["out"], september):
        for record in household_records(openpyxl.load_workbook(path).worksheets[0]):
            if record["户编号"] == deferred:
                assert record["上次消除意见"] == "暂不消除\n2026-09-12"
    explained = invoke("explain", deferred, "--period", september, "--db", ws["db"])
    assert explained.exit_code == 0, explained.output
    assert "暂不消除" in explained.stdout and "仍有大额医疗支出" in explained.stdout


def test_a_risk_removal_answer_is_checked_like_a_verification(
    removal_workspace: dict[str, Path],
) -> None:
    ws = removal_workspace
    (xlsx, *_) = candidate_lists(ws["out"], SAMPLE_PERIODS[1])
    rows = household_rows(xlsx)
    book = openpyxl.load_workbook(xlsx)
    sheet = book.worksheets[0]
    decision = headers_of(sheet).index("消除意见") + 1
    sheet.cell(rows[0], decision, "确认纳入")  # the other list's answer
    sheet.cell(rows[0], decision + 1, "2026-09-10")
    sheet.cell(rows[1], decision, "同意消除")  # no date
    target = ws["root"] / "renamed.xlsx"  # its 说明 sheet says which list it is
    book.save(target)
    result = feedback.import_feedback(ws["db"], target, SAMPLE_PERIODS[1])
    assert result.kind.name == "风险消除候选" and result.accepted == 0
    checks = dict(result.rejects.select("row_number", "check").rows())
    assert checks == {rows[0]: "invalid_result", rows[1]: "missing_date"}
    message = " ".join(result.rejects["message"].to_list())
    assert "消除意见「确认纳入」应为 同意消除 / 暂不消除" in message and "意见日期为空" in message
    kinds = query(ws["db"], "SELECT DISTINCT list_kind FROM verification_rejects")
    assert kinds["list_kind"].to_list() == ["风险消除候选"]
