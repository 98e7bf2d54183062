"""Ingest: discovery, whole-file rejections, quarantine, idempotence, re-sent records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
import xlsxwriter

from screening import ids
from screening.db import deliveries as db_deliveries
from screening.db import roster as db_roster
from screening.db.connect import connect
from screening.ingest.deliveries import ingest_period
from screening.ingest.inbox import TwoFilesForOneSource, discover

P1, P2 = "2026-08", "2026-09"


def make_id(region: str, born: str, seq: str) -> str:
    first17 = region + born + seq
    return first17 + ids.check_digit(first17)


A = make_id("430624", "19800101", "123")
B = make_id("430624", "19900215", "456")
C = make_id("430624", "20150601", "789")  # a child

ROSTER = (
    "户编号,身份证号,姓名,与户主关系,乡镇,村,户类型,监测状态,家庭年人均纯收入\n"
    f"H1,{A},张三,户主,城关镇,东风村,脱贫户,,5200\n"
    f"H1,{C},张小,长子,城关镇,东风村,脱贫户,,5200\n"
    f"H2,{B},李四,户主,龙潭镇,新华村,一般农户,未监测,12000\n"
)
MEDICAL = (
    "settlement_id,id_number,hospital,admission_date,discharge_date,settlement_date,"
    "total_cost,out_of_pocket\n"
    f"S1,{A},县人民医院,2026-08-01,2026-08-05,2026-08-06,8000,3000\n"
)


def write(inbox: Path, period: str, name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
    folder = inbox / period
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return path


def table(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return con.sql(sql).pl()


def run(inbox: Path, db: Path, period: str, specs):  # type: ignore[no-untyped-def]
    con = connect(db)
    try:
        results = ingest_period(con, inbox, period, specs)
        log = table(con, f"SELECT * FROM ingest_log WHERE period = '{period}' ORDER BY source")
    finally:
        con.close()
    return {r.source: r for r in results}, log


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    box = tmp_path / "inbox"
    write(box, P1, "人口基础信息2026年08月.csv", ROSTER, encoding="gbk")
    write(box, P1, "医保住院结算_202608.csv", MEDICAL)
    return box


def test_discovery_by_key_or_department_name(inbox: Path, specs) -> None:
    write(inbox, P1, "education.parquet", b"PAR1")
    write(inbox, P1, "~$医保.xlsx", b"lock file")
    found = discover(inbox, P1, specs)
    assert found["roster"].path and found["roster"].path.name.startswith("人口")
    assert found["medical"].path and found["medical"].path.name.startswith("医保")
    assert found["education"].path and found["education"].path.name == "education.parquet"
    assert found["traffic"].problem == "missing"


def test_two_files_for_one_source_stop_the_ingest_naming_both(
    inbox: Path, db_path: Path, specs
) -> None:
    run(inbox, db_path, P1, specs)
    before = _snapshot(db_path)
    write(inbox, P1, "medical.csv", MEDICAL)
    with pytest.raises(TwoFilesForOneSource) as raised:
        run(inbox, db_path, P1, specs)
    line = str(raised.value)
    assert "\n" not in line
    assert "medical.csv" in line and "医保住院结算_202608.csv" in line
    assert "subfolder" in line and "子文件夹" in line
    assert _snapshot(db_path) == before


def test_an_old_excel_file_named_like_a_source_is_rejected_not_missing(
    inbox: Path, db_path: Path, specs
) -> None:
    (inbox / P1 / "医保住院结算_202608.csv").unlink()
    write(inbox, P1, "医保住院结算_202608.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    write(inbox, P1, "scan.pdf", b"%PDF-1.4")
    results, _ = run(inbox, db_path, P1, specs)
    assert results["medical"].status == "rejected"
    assert results["medical"].file == "医保住院结算_202608.xls"
    assert ".xlsx" in results["medical"].message


def test_good_files_load_and_gbk_is_detected(inbox: Path, db_path: Path, specs) -> None:
    results, log = run(inbox, db_path, P1, specs)
    assert results["roster"].status == "loaded" and results["roster"].encoding == "gb18030"
    assert results["roster"].rows_accepted == 3
    assert results["medical"].rows_accepted == 1
    assert set(log["status"]) == {"loaded", "missing"}
    con = connect(db_path, read_only=True)
    roster = table(con, "SELECT * FROM roster ORDER BY row_number")
    con.close()
    assert roster["id_number"].to_list() == [A, C, B]
    assert roster["monitoring_status"].to_list() == ["未监测"] * 3  # empty means 未监测
    assert roster["per_capita_income"].dtype == pl.Decimal(18, 2)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("medical.csv", bytes(range(256)) * 40, "binary"),
        ("medical.csv", b"", "empty file"),
        ("medical.csv", "结算单号,身份证号,结算日期\nS1,x,2026-08-01\n", "out_of_pocket"),
    ],
    ids=["binary", "empty", "missing-required-column"],
)
def test_unusable_file_is_rejected_whole_and_others_load(
    tmp_path: Path, db_path: Path, specs, name: str, content: str | bytes, expected: str
) -> None:
    box = tmp_path / "inbox"
    write(box, P1, "roster.csv", ROSTER)
    write(box, P1, name, content)
    results, log = run(box, db_path, P1, specs)
    assert results["medical"].status == "rejected"
    assert expected in results["medical"].message
    assert "\n" not in results["medical"].message
    assert results["roster"].status == "loaded"
    logged = log.filter(pl.col("source") == "medical").row(0, named=True)
    assert logged["status"] == "rejected" and expected in logged["message"]
    assert logged["file"] == name


def test_header_only_file_is_empty_not_rejected(tmp_path: Path, db_path: Path, specs) -> None:
    box = tmp_path / "inbox"
    write(box, P1, "roster.csv", ROSTER)
    write(box, P1, "traffic.csv", "事故编号,当事人身份证号,事故日期,伤情,直接损失,已获赔偿\n")
    results, _ = run(box, db_path, P1, specs)
    assert results["traffic"].status == "empty"
    assert results["traffic"].rows_read == 0


def test_xlsx_with_a_title_row_above_the_header_is_read_from_the_header(
    tmp_path: Path, db_path: Path, specs
) -> None:
    box = tmp_path / "inbox"
    write(box, P1, "roster.csv", ROSTER)
    (box / P1 / "医保结算.xlsx").parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(box / P1 / "医保结算.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["2026年8月住院结算明细"])
    ws.write_row(1, 0, ["结算单号", "身份证号", "结算日期", "个人自付"])
    ws.write_row(2, 0, ["S1", A, "2026-08-06", "3000"])
    wb.close()
    results, log = run(box, db_path, P1, specs)
    medical = results["medical"]
    assert medical.status == "loaded", medical.message
    assert (medical.rows_read, medical.rows_accepted) == (1, 1)
    assert "header on row 2, the 1 row(s) above skipped" in medical.message
    logged = log.filter(pl.col("source") == "medical").row(0, named=True)
    assert logged["message"] == medical.message
    con = connect(db_path, read_only=True)
    stored = table(con, "SELECT row_number, settlement_id FROM stg_medical")
    con.close()
    assert stored.rows() == [(3, "S1")]  # the row a spreadsheet shows


def test_xlsx_real_date_and_number_cells(tmp_path: Path, db_path: Path, specs) -> None:
    box = tmp_path / "inbox"
    write(box, P1, "roster.csv", ROSTER)
    (box / P1).mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(box / P1 / "medical.xlsx"))
    ws = wb.add_worksheet()
    datefmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, ["结算单号", "身份证号", "结算日期", "个人自付", "医疗总费用"])
    ws.write_string(1, 0, "S1")
    ws.write_number(1, 1, int(A[:6] + A[8:17]))  # a 15-digit ID typed as a number
    ws.write_datetime(1, 2, dt.datetime(2026, 8, 6), datefmt)
    ws.write_number(1, 3, 1234.5)
    ws.write_number(1, 4, 2000)
    wb.close()
    results, _ = run(box, db_path, P1, specs)
    assert results["medical"].status == "loaded", results["medical"].message
    con = connect(db_path, read_only=True)
    row = table(con, "SELECT * FROM medical").row(0, named=True)
    con.close()
    assert row["id_number"] == A
    assert row["settlement_date"] == dt.date(2026, 8, 6)
    assert str(row["out_of_pocket"]) == "1234.50"


def test_bad_rows_go_to_quarantine_with_row_and_reason(
    tmp_path: Path, db_path: Path, specs
) -> None:
    box = tmp_path / "inbox"
    write(box, P1, "roster.csv", ROSTER)
    bad_check = A[:17] + ("0" if A[17] != "0" else "1")
    write(
        box,
        P1,
        "medical.csv",
        "settlement_id,id_number,settlement_date,total_cost,out_of_pocket,admission_date,"
        "discharge_date\n"
        f"S1,{A},2026-08-06,100,50,,\n"  # row 2: good
        f"S2,{bad_check},2026-08-06,100,50,,\n"  # row 3: bad check digit
        f"S3,{A},2026-02-30,100,50,,\n"  # row 4: impossible date
        f"S4,{A},2026-08-06,100,-5,,\n"  # row 5: negative money
        f"S5,{A},2026-08-06,100,500,,\n"  # row 6: out_of_pocket above total
        f"S6,{A},2026-08-06,100,50,2026-08-05,2026-08-01\n"  # row 7: discharge before admission
        f"S7,{A},,100,50,,\n"  # row 8: required date empty
        f"S8,{A},2026-08-06,100,50,,\n"  # rows 9, 10: duplicate key
        f"S8,{A},2026-08-07,100,60,,\n",
    )
    results, _ = run(box, db_path, P1, specs)
    med = results["medical"]
    assert (med.rows_read, med.rows_accepted, med.rows_rejected) == (9, 1, 8)
    con = connect(db_path, read_only=True)
    q = table(con, 'SELECT row_number, "column", "check", raw_value FROM quarantine ORDER BY 1')
    con.close()
    assert q.rows() == [
        (3, "id_number", "invalid_id", bad_check),
        (4, "settlement_date", "invalid_date", "2026-02-30"),
        (5, "out_of_pocket", "min", "-5"),
        (6, "out_of_pocket", "out_of_pocket_not_above_total", "500"),
        (7, "discharge_date", "discharge_not_before_admission", "2026-08-01"),
        (8, "settlement_date", "required", None),
        (9, "settlement_id", "duplicate_key", "S8"),
        (10, "settlement_id", "duplicate_key", "S8"),
    ]


def test_disability_certificate_supplies_missing_id(tmp_path: Path, db_path: Path, specs) -> None:
    box = tmp_path / "inbox"
    write(box, P1, "roster.csv", ROSTER)
    write(
        box,
        P1,
        "残联_残疾证.csv",
        f"残疾证号,身份证号,残疾类别,残疾等级,发证日期\n{A}41,,肢体,一级,2026年8月3日\n",
    )
    results, _ = run(box, db_path, P1, specs)
    assert results["disability"].rows_accepted == 1, results["disability"]
    con = connect(db_path, read_only=True)
    row = table(con, "SELECT id_number, grade, issue_date FROM disability").row(0)
    con.close()
    assert row == (A, 1, dt.date(2026, 8, 3))


def _snapshot(db: Path) -> dict[str, list]:
    con = connect(db, read_only=True)
    names = [r[0] for r in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    data = {n: con.sql(f"SELECT * FROM {n} ORDER BY ALL").fetchall() for n in names}
    con.close()
    return data


def test_ingesting_the_same_period_twice_changes_nothing(inbox: Path, db_path: Path, specs) -> None:
    run(inbox, db_path, P1, specs)
    before = _snapshot(db_path)
    results, _ = run(inbox, db_path, P1, specs)
    assert {r.status for r in results.values()} <= {"unchanged", "missing"}
    assert _snapshot(db_path) == before


def test_resent_record_in_a_later_period_replaces_the_old(
    inbox: Path, db_path: Path, specs
) -> None:
    run(inbox, db_path, P1, specs)
    write(inbox, P2, "roster.csv", ROSTER)
    write(inbox, P2, "medical.csv", MEDICAL.replace(",8000,3000", ",8000,300"))
    run(inbox, db_path, P2, specs)
    con = connect(db_path, read_only=True)
    current = table(con, "SELECT period, out_of_pocket FROM medical").rows()
    as_of_p1 = db_roster.events_as_of(con, specs["medical"], P1)["out_of_pocket"].to_list()
    con.close()
    assert [(p, str(v)) for p, v in current] == [(P2, "300.00")]
    # Re-screening the earlier period still sees what was delivered then.
    assert [str(v) for v in as_of_p1] == ["3000.00"]


def test_a_persons_records_as_of_follow_a_resent_records_new_id_number(
    inbox: Path, db_path: Path, specs
) -> None:
    # S1 is re-sent in P2 with B's number (the department corrected it): as of P2 it is
    # B's record and no longer A's; as of P1 it is still A's. explain reads this way.
    run(inbox, db_path, P1, specs)
    write(inbox, P2, "roster.csv", ROSTER)
    write(inbox, P2, "medical.csv", MEDICAL.replace(f"S1,{A},", f"S1,{B},"))
    run(inbox, db_path, P2, specs)
    con = connect(db_path, read_only=True)

    def keys(period: str, people: list[str]) -> list[tuple[str, str]]:
        found = db_roster.events_as_of(con, specs["medical"], period, people)
        return list(zip(found["settlement_id"], found["id_number"], strict=True))

    try:
        assert keys(P2, [A]) == []
        assert keys(P2, [B]) == [("S1", B)]
        assert keys(P2, [A, B, C]) == [("S1", B)]
        assert keys(P1, [A]) == [("S1", A)]
        assert keys(P1, [B]) == []
    finally:
        con.close()


def test_a_failure_while_storing_leaves_the_database_as_it_was(
    inbox: Path, db_path: Path, specs, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(inbox, db_path, P1, specs)
    before = _snapshot(db_path)
    write(inbox, P1, "医保住院结算_202608.csv", MEDICAL.replace(",3000", ",2999"))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(db_deliveries, "upsert_log", broken)
    with pytest.raises(OSError):
        run(inbox, db_path, P1, specs)
    assert _snapshot(db_path) == before
