"""Deliveries as counties really send them (issue 12, situations 3–8): a rule column under
another header, household cells merged, a record sent twice, absurd values, spreadsheet
shapes and a workbook that would inflate. Each test checks the row accounting (rows read =
accepted + quarantined + counted duplicates) and what the lists then say.
docs/reliability.md, "Deliveries as counties send them", lists each with its test."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import xlsxwriter
import yaml
from dev import sample

from screening import contract, ids, params, tables
from screening.db import schema as db_schema
from screening.db.connect import connect
from screening.ingest import read
from screening.ingest.cells import FileRejected
from screening.ingest.deliveries import ingest_period
from screening.ingest.gates import DeliveryHeld
from screening.ingest.results import SourceResult
from screening.pipeline import run
from tests.support.common import ingest_year_before

P = "2026-08"
HEAD = ["户编号", "身份证号", "姓名", "与户主关系", "乡镇", "村", "户类型", "监测状态"]
INCOME = "家庭年人均纯收入"
MEDICAL_HEAD = ["结算单号", "身份证号", "姓名", "结算日期", "医疗总费用", "个人自付"]


def make_id(seq: int, born: str = "19800101") -> str:
    first17 = f"430624{born}{seq:03d}"
    return first17 + ids.check_digit(first17)


def roster_rows(sizes: dict[str, int], income: dict[str, str]) -> list[list[str]]:
    """One row per member (HEAD + income): the head first, households in the order given,
    all in 城关镇 东风村, 一般农户, ID numbers numbered from 1."""
    rows, seq = [], 0
    for hid, size in sizes.items():
        for m in range(size):
            seq += 1
            relation = "户主" if m == 0 else "子女"
            member = [hid, make_id(seq), f"成员{seq}", relation, "城关镇", "东风村", "一般农户"]
            rows.append([*member, "", income[hid]])
    return rows


def csv_text(header: list[str], rows: Iterable[list[str]], sep: str = ",", end: str = "\n") -> str:
    return end.join(sep.join(r) for r in [header, *rows]) + end


def put(inbox: Path, name: str, content: str | bytes) -> Path:
    folder = inbox / P
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def ingest(tmp_path: Path, aliases: Path | None = None) -> dict[str, SourceResult]:
    con = connect(tmp_path / "screening.duckdb")
    try:
        results = ingest_period(con, tmp_path / "inbox", P, contract.load(aliases))
    finally:
        con.close()
    return {r.source: r for r in results}


def screen(tmp_path: Path, **kw: Any) -> run.RunOutcome:
    return run.run_period(
        db=tmp_path / "screening.duckdb",
        inbox=tmp_path / "inbox",
        out=tmp_path / "out",
        period=P,
        **kw,
    )


def query(tmp_path: Path, sql: str) -> pl.DataFrame:
    con = connect(tmp_path / "screening.duckdb", read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def accounted(result: SourceResult) -> None:
    assert result.rows_read == (
        result.rows_accepted + result.rows_rejected + result.rows_duplicate
    ), result


def outcome_of(outcome: run.RunOutcome, source: str) -> SourceResult:
    return next(r for r in outcome.ingest if r.source == source)


def listed(outcome: run.RunOutcome) -> dict[str, list[str]]:
    """Listed household → its risk codes."""
    return {
        r["household_id"]: r["risk_codes"]
        for r in outcome.suspects.select("household_id", "risk_codes").iter_rows(named=True)
    }


# ---------------------------------------------------------------- 3: a rule column renamed


def test_an_income_column_under_another_header_rejects_the_roster_with_the_alias_fix(
    tmp_path: Path,
) -> None:
    sizes = {"H1": 2, "H2": 3, "H3": 1}
    income = {"H1": "4000", "H2": "9000", "H3": "5200"}
    put(tmp_path / "inbox", "roster.csv", csv_text([*HEAD, "人均收入"], roster_rows(sizes, income)))

    roster = ingest(tmp_path)["roster"]
    assert roster.status == "rejected"
    message = roster.message
    assert "per_capita_income" in message and "closest header in the file: '人均收入'" in message
    assert "\n" not in message
    # The fix the message spells out is an aliases file that works as written.
    entry = message.split("--aliases FILE with: ", 1)[1]
    assert yaml.safe_load(entry) == {"roster": {"per_capita_income": ["人均收入"]}}
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text(entry, encoding="utf-8")

    (tmp_path / "screening.duckdb").unlink()
    outcome = screen(tmp_path, aliases_file=aliases)
    roster = outcome_of(outcome, "roster")
    assert roster.status == "loaded" and (roster.rows_read, roster.rows_accepted) == (6, 6)
    accounted(roster)
    assert "extra column" not in roster.message
    assert listed(outcome) == {"H1": ["LOW_INCOME"], "H3": ["LOW_INCOME"]}


# ---------------------------------------------------------------- 4: merged household cells


def merged_roster_xlsx(sizes: dict[str, int], income: dict[str, str]) -> bytes:
    """A roster whose 户编号, 乡镇 and income cells are merged over each household's rows,
    the value in the first row only, as registers are often exported."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    header = [*HEAD, INCOME]
    sheet.write_row(0, 0, header)
    merged = [header.index(h) for h in ("户编号", "乡镇", INCOME)]
    r = 1
    rows = roster_rows(sizes, income)
    for size in sizes.values():
        for c in merged:
            if size > 1:
                sheet.merge_range(r, c, r + size - 1, c, rows[r - 1][c])
            else:
                sheet.write_string(r, c, rows[r - 1][c])
        for k in range(size):
            for c, value in enumerate(rows[r - 1 + k]):
                if c not in merged and value:
                    sheet.write_string(r + k, c, value)
        r += size
    book.close()
    return buffer.getvalue()


def test_a_roster_with_household_cells_merged_loads_every_member(tmp_path: Path) -> None:
    sizes = {"H1": 3, "H2": 1, "H3": 4, "H4": 2}
    income = {"H1": "4000", "H2": "9000", "H3": "5000", "H4": "12000"}
    put(tmp_path / "inbox", "人口基础信息.xlsx", merged_roster_xlsx(sizes, income))

    outcome = screen(tmp_path)
    roster = outcome_of(outcome, "roster")
    assert (roster.status, roster.rows_read, roster.rows_accepted) == ("loaded", 10, 10)
    accounted(roster)
    assert f"merged cells filled down in 户编号, 乡镇, {INCOME}" in roster.message
    stored = query(
        tmp_path, "SELECT household_id, count(*) AS n FROM stg_roster GROUP BY ALL ORDER BY 1"
    )
    assert dict(stored.rows()) == sizes
    assert query(tmp_path, "SELECT DISTINCT township FROM stg_roster").rows() == [("城关镇",)]
    assert listed(outcome) == {"H1": ["LOW_INCOME"], "H3": ["LOW_INCOME"]}
    size_of = dict(outcome.suspects.select("household_id", "household_size").rows())
    assert size_of == {"H1": 3, "H3": 4}


def test_the_sample_generator_writes_merged_and_title_row_rosters_that_screen_as_planted(
    tmp_path: Path,
) -> None:
    periods = ["2026-07", "2026-08"]
    inbox = tmp_path / "inbox"
    manifest = sample.generate(inbox, households=120, periods=periods, seed=5, roster_xlsx="both")
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    # The roster of a year before, in the same shape (INCOME_DROP compares with it).
    year = manifest["year_before"]
    assert year["files"]["roster"].endswith(".xlsx")
    assert ingest_year_before(db, inbox) == year["period"]
    then = query(tmp_path, "SELECT count(*) AS n FROM stg_roster")["n"].item()
    assert then == year["population"]["persons"]
    for period in periods:
        name = manifest["files"][period]["roster"]
        assert name.endswith(".xlsx")
        book = openpyxl.load_workbook(inbox / period / name, read_only=False)
        assert book.active is not None and book.active.merged_cells.ranges  # really merged
        outcome = run.run_period(db=db, inbox=inbox, out=out, period=period)
        roster = outcome_of(outcome, "roster")
        accounted(roster)
        assert roster.rows_read == manifest["rows"][period]["roster"]
        assert "header on row 3" in roster.message and "merged cells filled down" in roster.message
        expected = {
            e["household_id"]: sorted(e["risk_codes"]) for e in manifest["expected"][period]
        }
        got = {h: sorted(codes) for h, codes in listed(outcome).items()}
        assert got == expected
        population = manifest["population"][period]
        assert roster.rows_accepted == population["persons"]
    invalid = {
        (r["period"], r["row_number"], r["column"], r["check"])
        for r in manifest["invalid_rows"]
        if r["source"] == "roster"
    }
    quarantined = query(
        tmp_path,
        'SELECT period, row_number, "column", "check" FROM quarantine WHERE source = \'roster\'',
    )
    assert set(quarantined.rows()) == invalid and invalid


# ---------------------------------------------------------------- 5: identical rows


def test_a_settlement_sent_twice_counts_once_and_its_household_stays_listed(
    tmp_path: Path,
) -> None:
    sizes = {"H1": 1, "H2": 1, "H3": 1}
    income = dict.fromkeys(sizes, "30000")
    put(tmp_path / "inbox", "roster.csv", csv_text([*HEAD, INCOME], roster_rows(sizes, income)))
    a, b, c = make_id(1), make_id(2), make_id(3)
    rows = [
        ["S1", a, "成员1", "2026-08-03", "60000", "25000"],
        ["S1", a, "成员1", "2026-08-03", "60000", "25000"],  # the same record again
        ["S2", b, "成员2", "2026-08-04", "60000", "25000"],
        ["S2", b, "成员2", "2026-08-04", "60000", "26000"],  # one number, two amounts
        ["S3", c, "成员3", "2026-08-05", "900", "100"],
    ]
    put(tmp_path / "inbox", "医保.csv", csv_text(MEDICAL_HEAD, rows))

    outcome = screen(tmp_path)
    medical = outcome_of(outcome, "medical")
    assert (medical.rows_read, medical.rows_accepted) == (5, 2)
    assert (medical.rows_rejected, medical.rows_duplicate) == (2, 1)
    accounted(medical)
    assert "1 row(s) identical to an earlier row counted once (rows 3)" in medical.message
    log = query(tmp_path, "SELECT rows_duplicate FROM ingest_log WHERE source = 'medical'")
    assert log.item() == 1
    quarantined = query(tmp_path, 'SELECT row_number, "check" FROM quarantine ORDER BY 1')
    assert quarantined.rows() == [(4, "duplicate_key"), (5, "duplicate_key")]
    assert listed(outcome) == {"H1": ["MEDICAL"]}


# ---------------------------------------------------------------- 6: absurd values


def test_absurd_values_are_quarantined_as_implausible_and_the_run_succeeds(
    tmp_path: Path,
) -> None:
    sizes = {"H1": 2, "H2": 1, "H3": 1, "H4": 1}
    income = {
        "H1": "4306240101010001",  # a 16-digit 户编号 typed into the income cell
        "H2": "43062419800101123",  # 17 digits: more than any amount can hold
        "H3": "4000",
        "H4": "10000000.01",
    }
    put(tmp_path / "inbox", "roster.csv", csv_text([*HEAD, INCOME], roster_rows(sizes, income)))
    medical = [
        ["S1", make_id(4), "成员4", "2026-08-03", "", "20000000.50"],
        ["S2", make_id(4), "成员4", "2026-08-04", "", "10000000"],  # at the limit: kept
    ]
    put(tmp_path / "inbox", "医保.csv", csv_text(MEDICAL_HEAD, medical))

    # Four of five roster rows quarantined: the completeness gate holds the roster first.
    with pytest.raises(DeliveryHeld, match="roster"):
        screen(tmp_path)
    outcome = screen(tmp_path, accept_held=("roster",))
    roster, med = outcome_of(outcome, "roster"), outcome_of(outcome, "medical")
    accounted(roster)
    accounted(med)
    assert (roster.rows_read, roster.rows_accepted, roster.rows_rejected) == (5, 1, 4)
    assert (med.rows_accepted, med.rows_rejected) == (1, 1)
    checks = query(
        tmp_path, 'SELECT source, row_number, "check" FROM quarantine ORDER BY source, row_number'
    )
    assert checks.rows() == [
        ("medical", 2, "implausible"),
        ("roster", 2, "implausible"),
        ("roster", 3, "implausible"),
        ("roster", 4, "invalid_money"),
        ("roster", 6, "implausible"),
    ]
    # H3's settlement at the limit is counted; the one above it is not.
    assert listed(outcome) == {"H3": ["MEDICAL", "LOW_INCOME", "SPENDING"]}
    assert outcome.suspects["medical_oop"].to_list() == [Decimal("10000000.00")]


def test_sums_beyond_decimal_18_2_cannot_fail_a_run(tmp_path: Path) -> None:
    """Two settlements of 9 000 000 000 000 000 yuan, allowed by a county's limits: their
    sum, and the household's income (per capita × 2), do not fit Decimal(18, 2)."""
    huge = "9000000000000000"
    limits = tmp_path / "params.yaml"
    limits.write_text(
        yaml.safe_dump(
            {
                "ingest_limits": {
                    "max_amount": {"values": {"1900-01-01": 9_999_999_999_999_999}},
                    "max_per_capita_income": {"values": {"1900-01-01": 9_999_999_999_999_999}},
                }
            }
        ),
        encoding="utf-8",
    )
    put(
        tmp_path / "inbox",
        "roster.csv",
        csv_text([*HEAD, INCOME], roster_rows({"H1": 2}, {"H1": huge})),
    )
    medical = [
        ["S1", make_id(1), "成员1", "2026-08-03", "", huge],
        ["S2", make_id(1), "成员1", "2026-08-04", "", huge],
    ]
    put(tmp_path / "inbox", "医保.csv", csv_text(MEDICAL_HEAD, medical))

    outcome = screen(tmp_path, params_file=limits)
    for source in ("roster", "medical"):
        result = outcome_of(outcome, source)
        accounted(result)
        assert result.rows_rejected == 0
    row = outcome.suspects.row(0, named=True)
    assert row["medical_oop"] == Decimal("18000000000000000.00")
    assert row["rigid_expenditure"] == Decimal("18000000000000000.00")
    assert listed(outcome) == {"H1": ["MEDICAL"]}
    stored = query(tmp_path, "SELECT medical_oop FROM suspects").item()
    assert stored == Decimal("18000000000000000.00")
    assert list((tmp_path / "out" / P).rglob("*.xlsx"))


# ---------------------------------------------------------------- 7: spreadsheet shapes


def medical_rows(n: int = 3) -> list[list[str]]:
    return [
        [f"S{i}", make_id(i % 1000), f"成员{i}", "2026-08-03", "6000", "3000"]
        for i in range(1, n + 1)
    ]


def medical_result(tmp_path: Path, name: str, content: str | bytes) -> SourceResult:
    put(tmp_path / "inbox", name, content)
    return ingest(tmp_path)["medical"]


@pytest.mark.parametrize(
    ("sep", "end", "note"),
    [
        (",", "\n", ""),
        (",", "\r\n", ""),
        (",", "\r", "CR line ends"),
        ("\t", "\n", "tab-separated"),
        ("\t", "\r", "tab-separated; 旧式 Mac 行尾 CR line ends"),
        (";", "\r\n", "semicolon-separated"),
    ],
    ids=["comma-lf", "comma-crlf", "comma-cr", "tab-lf", "tab-cr", "semicolon-crlf"],
)
def test_csv_delimiters_and_line_ends_are_detected(
    tmp_path: Path, sep: str, end: str, note: str
) -> None:
    text = csv_text(MEDICAL_HEAD, medical_rows(), sep, end)
    result = medical_result(tmp_path, "medical.csv", text.encode("gb18030"))
    assert (result.status, result.rows_read, result.rows_accepted) == ("loaded", 3, 3)
    accounted(result)
    assert note in result.message
    stored = query(tmp_path, "SELECT row_number, out_of_pocket FROM stg_medical ORDER BY 1")
    assert stored.rows() == [(r, Decimal("3000.00")) for r in (2, 3, 4)]


def test_title_rows_above_a_csv_header_are_skipped_and_rows_keep_their_numbers(
    tmp_path: Path,
) -> None:
    text = "湘阴县医保住院结算明细（2026年8月）\n导出时间：2026-09-01,,\n" + csv_text(
        MEDICAL_HEAD, medical_rows()
    )
    result = medical_result(tmp_path, "medical.csv", text)
    assert (result.status, result.rows_read, result.rows_accepted) == ("loaded", 3, 3)
    accounted(result)
    assert "header on row 3, the 2 row(s) above skipped" in result.message
    stored = query(tmp_path, "SELECT row_number FROM stg_medical ORDER BY 1")
    assert stored.to_series().to_list() == [4, 5, 6]


def test_a_header_below_the_tenth_row_is_not_looked_for(tmp_path: Path) -> None:
    text = "说明\n" * 10 + csv_text(MEDICAL_HEAD, medical_rows())
    result = medical_result(tmp_path, "medical.csv", text)
    assert result.status == "rejected"
    assert "no row among the first 10 holds the header" in result.message


def workbook(sheets: dict[str, list[list[str]]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, values in enumerate(rows):
            sheet.write_row(r, 0, values)
    book.close()
    return buffer.getvalue()


def test_the_sheet_holding_the_header_is_read(tmp_path: Path) -> None:
    content = workbook(
        {
            "说明": [["本表为 8 月住院结算"], ["单位：元"]],
            "结算明细": [MEDICAL_HEAD, *medical_rows()],
        }
    )
    result = medical_result(tmp_path, "medical.xlsx", content)
    assert (result.status, result.rows_read, result.rows_accepted) == ("loaded", 3, 3)
    accounted(result)
    assert "读入工作表 sheet '结算明细' read（其他工作表 other sheets: '说明'）" in result.message


def test_two_sheets_holding_the_header_reject_the_file_naming_both(tmp_path: Path) -> None:
    content = workbook({"七月": [MEDICAL_HEAD, *medical_rows()], "八月": [MEDICAL_HEAD]})
    result = medical_result(tmp_path, "medical.xlsx", content)
    assert result.status == "rejected"
    assert "sheets '七月', '八月' each hold a medical header" in result.message


def test_no_sheet_holding_the_header_names_the_sheets_looked_at(tmp_path: Path) -> None:
    content = workbook({"说明": [["说明"]], "数据": [MEDICAL_HEAD[:-1], *medical_rows()]})
    result = medical_result(tmp_path, "medical.xlsx", content)
    assert result.status == "rejected"
    assert "missing required column(s): out_of_pocket" in result.message
    assert "sheets looked at: '说明', '数据'" in result.message


def test_a_formula_without_a_saved_value_is_quarantined(tmp_path: Path) -> None:
    # openpyxl writes formulas without a result, as some export programs do; Excel or WPS
    # would calculate and save one.
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([*MEDICAL_HEAD, "备注"])
    rows = medical_rows(4)
    for i, row in enumerate(rows, start=2):
        sheet.append(row)
        sheet.cell(i, 7, "")
    sheet.cell(3, 6, "=E3/2")  # 个人自付 computed, never calculated: row 3 set aside
    sheet.cell(4, 7, '="备"&"注"')  # in an extra column: the row is kept
    buffer = io.BytesIO()
    book.save(buffer)
    result = medical_result(tmp_path, "medical.xlsx", buffer.getvalue())
    assert (result.status, result.rows_read, result.rows_accepted) == ("loaded", 4, 3)
    accounted(result)
    assert "1 formula cell(s) without a saved value, their rows set aside" in result.message
    assert "open and save the file in Excel or WPS" in result.message
    assert "1 formula cell(s) without a saved value in extra columns" in result.message
    quarantined = query(tmp_path, 'SELECT row_number, "column", "check", raw_value FROM quarantine')
    assert quarantined.rows() == [(3, "out_of_pocket", "formula_not_calculated", "=E3/2")]


def test_a_formula_with_its_saved_value_is_read_as_that_value(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, MEDICAL_HEAD)
    sheet.write_row(1, 0, medical_rows(1)[0][:5])
    sheet.write_formula(1, 5, "=E2/2", None, 3000)  # the result Excel saved
    book.close()
    result = medical_result(tmp_path, "medical.xlsx", buffer.getvalue())
    assert (result.status, result.rows_accepted) == ("loaded", 1)
    assert query(tmp_path, "SELECT out_of_pocket FROM stg_medical").item() == Decimal("3000.00")


# ---------------------------------------------------------------- 8: inflation


def inflating_xlsx(padding: int) -> bytes:
    """A small valid medical workbook whose shared strings carry `padding` bytes of a
    comment: it compresses to almost nothing and unpacks to all of it."""
    plain = workbook({"Sheet1": [MEDICAL_HEAD, *medical_rows()]})
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(plain)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "xl/sharedStrings.xml":
                content = content.replace(b"<sst ", b"<!--" + b"A" * padding + b"--><sst ", 1)
            dst.writestr(item.filename, content)
    return out.getvalue()


def test_an_xlsx_that_would_inflate_is_rejected_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = inflating_xlsx(20_000_000)
    assert len(content) < 200_000  # 20 MB of comment in under 200 KB

    def never(*_args: object, **_kw: object) -> None:
        raise AssertionError("the workbook was opened")

    monkeypatch.setattr("fastexcel.read_excel", never)
    result = medical_result(tmp_path, "medical.xlsx", content)
    assert result.status == "rejected" and result.rows_read == 0
    assert "xlsx would unpack to 20 MB" in result.message
    assert "not read: save it as CSV or split it" in result.message
    assert query(tmp_path, "SELECT count(*) FROM stg_medical").item() == 0


def test_the_unpacked_size_limit_holds_whatever_the_ratio(tmp_path: Path) -> None:
    path = tmp_path / "medical.xlsx"
    path.write_bytes(inflating_xlsx(0))
    limits = params.load().ingest_limits(P)
    assert read.read_source(path, contract.load()["medical"], limits).rows_read == 3
    small = params.IngestLimits(
        max_amount=limits.max_amount,
        max_per_capita_income=limits.max_per_capita_income,
        xlsx_max_unzipped_bytes=1_000,
        xlsx_max_inflation=limits.xlsx_max_inflation,
    )
    with pytest.raises(FileRejected, match=r"\(limits: 1 KB, 200×"):
        read.read_source(path, contract.load()["medical"], small)


def test_an_ordinary_workbook_is_far_below_the_inflation_limits() -> None:
    content = workbook({"Sheet1": [MEDICAL_HEAD, *medical_rows(2000)]})
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        unpacked = sum(i.file_size for i in zf.infolist())
    limits = params.load().ingest_limits(P)
    assert unpacked / len(content) < limits.xlsx_max_inflation / 10


def test_a_database_made_before_gains_the_duplicate_count_and_wide_sums(tmp_path: Path) -> None:
    """Tables as they were created before: ingest_log without rows_duplicate, sums in
    DECIMAL(18,2). Opening the database for a run brings them up to date, rows kept."""
    con = connect(tmp_path / "old.duckdb")
    try:
        for table in ("suspects", "evidence", "ingest_log"):
            ddl = tables.table(table).ddl().replace("DECIMAL(38,2)", "DECIMAL(18,2)")
            con.execute(ddl.replace('"rows_duplicate" BIGINT, ', ""))
        con.execute(
            "INSERT INTO evidence (period, household_id, amount) VALUES ('2026-07', 'H1', 5)"
        )
        db_schema.ensure_schema(con, contract.load())
        types = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() "
                "WHERE table_name IN ('suspects', 'evidence', 'ingest_log')"
            ).fetchall()
        )
        amount = con.execute("SELECT amount FROM evidence").fetchone()
    finally:
        con.close()
    assert types["ingest_log.rows_duplicate"] == "BIGINT"
    for column in ("medical_oop", "education_cost", "accident_loss", "rigid_expenditure"):
        assert types[f"suspects.{column}"] == "DECIMAL(38,2)"
    assert types["evidence.amount"] == "DECIMAL(38,2)"
    assert types["suspects.per_capita_income"] == "DECIMAL(18,2)"  # one value, not a sum
    assert amount == (Decimal("5.00"),)
