"""Bad-input corpus: every kind of broken file, for every source, ingested beside a good
file of another source. Each must end as one clear line in ingest_log or as quarantine
rows, and must never stop the other source. docs/reliability.md lists what each gives."""

from __future__ import annotations

import datetime as dt
import io
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlsxwriter

from screening import contract, ids
from screening.contract import SOURCES
from screening.db.connect import connect
from screening.ingest import results as ingest_results
from screening.ingest.deliveries import ingest_period
from screening.ingest.results import SourceResult, read_one
from screening.ingest.validate import Validated
from tests.support.inputs import (
    FORMATS,
    HEADERS,
    Table,
    bad_check_digit,
    csv_bytes,
    good_table,
    make_id,
    parquet_bytes,
    with_name,
    xlsx_bytes,
)

P = "2026-08"
FORMULA = '=HYPERLINK("http://x","y")'


GARBAGE = random.Random(11).randbytes(4096)
HIGH_GARBAGE = bytes(b | 0x80 for b in GARBAGE)  # no NUL, no newline, no ASCII at all
LONG = "长" * 100_000


def with_bad_bytes(source: str) -> bytes:
    """A UTF-8 CSV of five rows in which the names of rows 3 and 5 hold bytes that are
    not UTF-8 (a GBK 张, a stray 0xff, then a UTF-8 三)."""
    table = good_table(source, 5)
    for r in (1, 3):
        table.rows[r][table.column("name", source)] = "BAD"
    return csv_bytes(table).replace(b"BAD", b"\xd5\xc5\xff\xe4\xb8\x89")


def with_stray_quote(source: str) -> bytes:
    """A CSV whose row 3 has a quote inside an unquoted name: 张"三."""
    return csv_bytes(with_name(source, "QUOTE")).replace(b"QUOTE", '张"三'.encode())


def with_extra_header(source: str, header: str, value: str) -> Table:
    table = good_table(source)
    table.headers.append(header)
    for row in table.rows:
        row.append(value)
    return table


def with_id_twice(source: str) -> Table:
    """The key `id_number` as a header beside the column's Chinese alias."""
    table = good_table(source)
    table.headers.append("id_number")
    for row in table.rows:
        row.append(row[table.column("id_number", source)])
    return table


def truncated(suffix: str, keep: float) -> Callable[[str], bytes]:
    def make(source: str) -> bytes:
        whole = FORMATS[suffix](good_table(source, 50))
        return whole[: int(len(whole) * keep)]

    return make


def long_name(suffix: str) -> Callable[[str], bytes]:
    def make(source: str) -> bytes:
        if suffix == ".xlsx":
            return xlsx_bytes(with_name(source, "LONGCELL"), {"LONGCELL": LONG})
        return FORMATS[suffix](with_name(source, LONG))

    return make


def fixed(content: bytes) -> Callable[[str], bytes]:
    return lambda _source: content


def table_case(make_table: Callable[[str], Table], suffix: str) -> Callable[[str], bytes]:
    return lambda source: FORMATS[suffix](make_table(source))


def with_unknown_header_twice(source: str) -> Table:
    table = with_extra_header(source, "备注", "a")
    table.headers.append("备注")
    for row in table.rows:
        row.append("b")
    return table


# The column each source's merged-cells workbook merges over all its rows: 乡镇 in the
# roster, the date in an events extract (one day's records under one date cell).
MERGED = {
    "roster": "township",
    "medical": "settlement_date",
    "education": "record_date",
    "traffic": "accident_date",
    "civil": "event_date",
    "disability": "issue_date",
}


def shaped_xlsx(table: Table, *, title_rows: int = 0, merge: int | None = None) -> bytes:
    """A workbook of string cells with `title_rows` rows of titles above the header, and
    the column at position `merge` merged over every data row (its value in the first)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    if title_rows:
        sheet.merge_range(0, 0, 0, len(table.headers) - 1, "湘阴县2026年8月数据（导出）")
    for r in range(1, title_rows):
        sheet.write_string(r, 0, f"第 {r} 行说明：单位 元")
    sheet.write_row(title_rows, 0, table.headers)
    first = title_rows + 1
    if merge is not None:
        last = first + len(table.rows) - 1
        sheet.merge_range(first, merge, last, merge, table.rows[0][merge])
    for r, values in enumerate(table.rows, start=first):
        for c, value in enumerate(values):
            if c != merge and value:
                sheet.write_string(r, c, value)
    book.close()
    return buffer.getvalue()


def with_merged_cells(source: str) -> bytes:
    table = good_table(source)
    return shaped_xlsx(table, merge=table.column(MERGED[source], source))


def with_unsaved_formula(source: str) -> bytes:
    """Row 3's name is a formula saved without its result (openpyxl writes it so)."""
    table = good_table(source)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(table.headers)
    for row in table.rows:
        sheet.append([v or None for v in row])
    sheet.cell(3, table.column("name", source) + 1, '="张"&"三"')
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def separated(sep: str, end: str) -> Callable[[str], bytes]:
    def make(source: str) -> bytes:
        table = good_table(source)
        lines = [sep.join(values) for values in [table.headers, *table.rows]]
        return (end.join(lines) + end).encode("utf-8")

    return make


# Every bad input: name → (suffix, source → file content).
CASES: dict[str, tuple[str, Callable[[str], bytes]]] = {
    **{f"empty{sx}": (sx, fixed(b"")) for sx in FORMATS},
    **{
        f"header-only{sx}": (sx, table_case(lambda s: Table(good_table(s).headers, []), sx))
        for sx in FORMATS
    },
    "garbage-nul.csv": (".csv", fixed(b"\x00\x01" + GARBAGE)),
    "garbage-high-bytes.csv": (".csv", fixed(HIGH_GARBAGE)),
    "garbage.xlsx": (".xlsx", fixed(GARBAGE)),
    "garbage.parquet": (".parquet", fixed(GARBAGE)),
    "zip-named-csv.csv": (".csv", fixed(b"PK\x03\x04" + GARBAGE)),
    "old-xls.xlsx": (".xlsx", fixed(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + GARBAGE)),
    "utf16.csv": (".csv", fixed("身份证号,姓名\n".encode("utf-16"))),
    **{
        f"truncated-{int(keep * 100)}{sx}": (sx, truncated(sx, keep))
        for sx in (".xlsx", ".parquet")
        for keep in (0.5, 0.9)
    },
    "bad-bytes-in-utf8.csv": (".csv", with_bad_bytes),
    "stray-quote.csv": (".csv", with_stray_quote),
    "mostly-undecodable.csv": (
        ".csv",
        lambda s: ",".join(good_table(s).headers).encode() + b"\n" + HIGH_GARBAGE * 4,
    ),
    **{f"same-column-twice{sx}": (sx, table_case(with_id_twice, sx)) for sx in (".csv", ".xlsx")},
    **{
        f"same-header-twice{sx}": (
            sx,
            table_case(lambda s: with_extra_header(s, HEADERS[s]["name"], "李四"), sx),
        )
        for sx in (".csv", ".xlsx")
    },
    "unknown-header-twice.csv": (".csv", table_case(with_unknown_header_twice, ".csv")),
    "fifty-thousand-invalid-ids.csv": (
        ".csv",
        table_case(lambda s: good_table(s, 50_000, id_for=bad_check_digit), ".csv"),
    ),
    **{f"formula{sx}": (sx, table_case(lambda s: with_name(s, FORMULA), sx)) for sx in FORMATS},
    **{f"long-cell{sx}": (sx, long_name(sx)) for sx in FORMATS},
    **{
        f"nul-in-cell{sx}": (sx, table_case(lambda s: with_name(s, "张\x00三"), sx))
        for sx in FORMATS
    },
    # Shapes the contract accepts (data-contract.md, "Spreadsheet shapes accepted").
    "title-rows.xlsx": (".xlsx", lambda s: shaped_xlsx(good_table(s), title_rows=2)),
    "merged-cells.xlsx": (".xlsx", with_merged_cells),
    "formula-without-value.xlsx": (".xlsx", with_unsaved_formula),
    "tab-separated.csv": (".csv", separated("\t", "\n")),
    "semicolon-separated.csv": (".csv", separated(";", "\r\n")),
    "cr-line-ends.csv": (".csv", separated(",", "\r")),
}


# ---------------------------------------------------------------- ingest beside a good file


@dataclass
class Outcome:
    result: SourceResult
    companion: SourceResult
    log: dict[str, object]
    quarantine: pl.DataFrame
    stored: pl.DataFrame


def companion_of(source: str) -> str:
    return "medical" if source == "roster" else "roster"


def specs() -> dict[str, contract.SourceSpec]:
    return contract.load()


def periods() -> Iterator[str]:
    for year in range(2001, 2100):
        for month in range(1, 13):
            yield f"{year}-{month:02d}"


def ingest_inbox(inbox: Path, db: Path, bad: dict[str, set[str]]) -> dict[str, Outcome]:
    """Ingest every period of `inbox`; `bad` maps period → its bad sources. The outcome of
    each bad source, keyed by period + source."""
    con = connect(db)
    try:
        results = {p: {r.source: r for r in ingest_period(con, inbox, p, specs())} for p in bad}
        logs = con.sql("SELECT * FROM ingest_log").pl()
        quarantine = con.sql(
            'SELECT period, source, row_number, "column", "check", raw_value FROM quarantine '
            'ORDER BY row_number, "column"'
        ).pl()
        stored = {s: con.sql(f"SELECT * FROM stg_{s} ORDER BY row_number").pl() for s in SOURCES}
    finally:
        con.close()
    outcomes = {}
    for period, sources in bad.items():
        for source in sources:
            here = (pl.col("period") == period) & (pl.col("source") == source)
            outcome = Outcome(
                result=results[period][source],
                companion=results[period][companion_of(source)],
                log=logs.filter(here).row(0, named=True),
                quarantine=quarantine.filter(here).drop("period", "source"),
                stored=stored[source].filter(pl.col("period") == period),
            )
            assert_isolated(outcome)
            outcomes[f"{period}/{source}"] = outcome
    return outcomes


def write_period(folder: Path, bad: dict[str, tuple[str, bytes]], good: str) -> None:
    folder.mkdir(parents=True)
    for source, (suffix, content) in bad.items():
        (folder / f"{source}{suffix}").write_bytes(content)
    (folder / f"{good}.csv").write_bytes(csv_bytes(good_table(good)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    """Every case of CASES for every source, ingested once: per case one period with the
    five event sources' bad files beside a good roster, and one with a bad roster beside
    a good medical file (sharing periods keeps 200-odd checks down to 70 ingests)."""
    root = tmp_path_factory.mktemp("corpus")
    next_period = periods()
    where: dict[tuple[str, str], str] = {}
    bad: dict[str, set[str]] = {}
    for name, (suffix, make) in CASES.items():
        events = [s for s in SOURCES if s != "roster"]
        for group, good in ((events, "roster"), (["roster"], "medical")):
            period = next(next_period)
            write_period(root / "inbox" / period, {s: (suffix, make(s)) for s in group}, good)
            bad[period] = set(group)
            where.update({(name, s): f"{period}/{s}" for s in group})
    outcomes = ingest_inbox(root / "inbox", root / "screening.duckdb", bad)
    return {key: outcomes[at] for key, at in where.items()}


def ingest_beside_good(tmp_path: Path, source: str, suffix: str, content: bytes) -> Outcome:
    """One bad file of `source` beside a good file of another source, in its own database."""
    write_period(tmp_path / "inbox" / P, {source: (suffix, content)}, companion_of(source))
    outcomes = ingest_inbox(tmp_path / "inbox", tmp_path / "screening.duckdb", {P: {source}})
    return outcomes[f"{P}/{source}"]


def assert_isolated(outcome: Outcome) -> None:
    """What every bad input must give: the other source loads, one line is logged, the
    counts add up and no full ID number is shown."""
    assert outcome.companion.status == "loaded", outcome.companion.message
    assert outcome.companion.rows_accepted == 3
    result = outcome.result
    assert "\n" not in result.message and len(result.message) < 300
    assert outcome.log["status"] == result.status
    assert outcome.log["message"] == result.message
    assert result.rows_read == result.rows_accepted + result.rows_rejected + result.rows_duplicate
    assert outcome.log["rows_duplicate"] == result.rows_duplicate
    assert outcome.stored.height == result.rows_accepted
    assert outcome.quarantine.select("row_number").n_unique() == result.rows_rejected
    for i in range(3):
        assert make_id(i) not in result.message


def assert_rejected(outcome: Outcome, expected: str) -> None:
    assert outcome.result.status == "rejected"
    assert expected in outcome.result.message, outcome.result.message
    assert outcome.stored.height == 0 and outcome.quarantine.height == 0


by_source = pytest.mark.parametrize("source", SOURCES)
Corpus = dict[tuple[str, str], Outcome]


# ---------------------------------------------------------------- whole files


@by_source
@pytest.mark.parametrize("suffix", list(FORMATS))
def test_empty_file(corpus: Corpus, source: str, suffix: str) -> None:
    assert_rejected(corpus[f"empty{suffix}", source], "empty file (0 bytes, no header row)")


@by_source
@pytest.mark.parametrize("suffix", list(FORMATS))
def test_header_only(corpus: Corpus, source: str, suffix: str) -> None:
    result = corpus[f"header-only{suffix}", source].result
    assert (result.status, result.message) == ("empty", "只有表头，没有数据行 header only, no rows")
    assert result.rows_read == 0


@by_source
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("garbage-nul.csv", "binary content (NUL bytes in the header row)"),
        ("garbage-high-bytes.csv", "text is neither UTF-8 nor GBK/GB18030"),
        ("garbage.xlsx", "not an xlsx workbook (damaged or another format)"),
        ("garbage.parquet", "not a parquet file (damaged or another format)"),
        ("zip-named-csv.csv", "this is a zip/xlsx file with a .csv name"),
        ("old-xls.xlsx", "this is an old-format Excel .xls file"),
        ("utf16.csv", "this is UTF-16 text"),
    ],
)
def test_binary_garbage(corpus: Corpus, source: str, case: str, expected: str) -> None:
    assert_rejected(corpus[case, source], expected)


@by_source
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("truncated-50.xlsx", "xlsx workbook is damaged or incomplete"),
        ("truncated-90.xlsx", "xlsx workbook is damaged or incomplete"),
        ("truncated-50.parquet", "parquet cannot be read"),
        ("truncated-90.parquet", "parquet cannot be read"),
    ],
)
def test_truncated_file(corpus: Corpus, source: str, case: str, expected: str) -> None:
    assert_rejected(corpus[case, source], expected)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pl.Series("备注", [[1]] * 3), "parquet column '备注' holds List(Int64) values"),
        (pl.Series("备注", [dt.timedelta(1)] * 3), "parquet column '备注' holds Duration"),
        (pl.Series("备注", [b"\x00"] * 3), "parquet column '备注' holds Binary values"),
    ],
    ids=["list", "duration", "binary"],
)
def test_a_parquet_column_without_a_text_form_is_named(
    tmp_path: Path, column: pl.Series, expected: str
) -> None:
    frame = pl.read_parquet(io.BytesIO(parquet_bytes(good_table("medical")))).with_columns(column)
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    assert_rejected(
        ingest_beside_good(tmp_path, "medical", ".parquet", buffer.getvalue()), expected
    )


def test_a_parquet_file_without_columns_is_empty(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pl.DataFrame().write_parquet(buffer)
    outcome = ingest_beside_good(tmp_path, "civil", ".parquet", buffer.getvalue())
    assert_rejected(outcome, "empty file (no columns)")


# ---------------------------------------------------------------- encodings


@by_source
def test_a_few_invalid_bytes_in_utf8_quarantine_only_their_rows(
    corpus: Corpus, source: str
) -> None:
    outcome = corpus["bad-bytes-in-utf8.csv", source]
    result = outcome.result
    assert result.status == "loaded" and result.encoding == "utf-8"
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (5, 3, 2)
    assert "6 undecodable byte(s), their rows set aside" in result.message
    assert outcome.quarantine.rows() == [
        (3, "name", "invalid_encoding", "\\xd5\\xc5\\xff三"),
        (5, "name", "invalid_encoding", "\\xd5\\xc5\\xff三"),
    ]
    # The clean rows keep their Chinese text as written: no GB18030 mojibake.
    assert outcome.stored["name"].to_list() == ["张三"] * 3
    assert outcome.stored["row_number"].to_list() == [2, 4, 6]


def test_invalid_bytes_with_ascii_headers_still_read_as_utf8(tmp_path: Path) -> None:
    # No Chinese header to go by: the many clean multi-byte names decide it.
    table = good_table("medical", 30)
    table.headers = ["settlement_id", "id_number", "name", "settlement_date", "out_of_pocket"]
    table.rows[7][2] = "BAD"
    content = csv_bytes(table).replace(b"BAD", b"\xff")
    outcome = ingest_beside_good(tmp_path, "medical", ".csv", content)
    assert (outcome.result.rows_accepted, outcome.result.rows_rejected) == (29, 1)
    assert outcome.quarantine.rows() == [(9, "name", "invalid_encoding", "\\xff")]


def test_a_row_with_more_fields_than_the_header_is_quarantined_whole(tmp_path: Path) -> None:
    # An unquoted thousands separator splits an amount in two: cutting the row at the
    # header's width would store 1.00 and lose 234.50 without a word.
    table = good_table("medical", 3)
    content = csv_bytes(table).decode("utf-8").splitlines(keepends=True)
    content[2] = content[2].rstrip("\r\n") + ",234.50\n"
    outcome = ingest_beside_good(tmp_path, "medical", ".csv", "".join(content).encode("utf-8"))
    assert (outcome.result.rows_read, outcome.result.rows_accepted) == (3, 2)
    assert outcome.quarantine.rows() == [
        (3, "(多余字段 extra fields)", "too_many_fields", "234.50")
    ]
    assert 3 not in outcome.stored["row_number"].to_list()


def test_a_gbk_file_with_one_damaged_byte_keeps_its_other_rows(tmp_path: Path) -> None:
    table = good_table("roster", 4)
    table.rows[2][table.column("name", "roster")] = "BAD"
    content = csv_bytes(table, "gbk").replace(b"BAD", b"\xff")
    outcome = ingest_beside_good(tmp_path, "roster", ".csv", content)
    assert outcome.result.encoding == "gb18030"
    assert (outcome.result.rows_accepted, outcome.result.rows_rejected) == (3, 1)
    assert outcome.quarantine.rows() == [(4, "name", "invalid_encoding", "\\xff")]
    assert outcome.stored["name"].to_list() == ["张三"] * 3


def test_a_clean_gbk_file_is_not_mistaken_for_damaged_utf8(tmp_path: Path) -> None:
    # English headers, Chinese only in the values: the UTF-8 reading fails on every name.
    table = good_table("roster", 40)
    table.headers = list(HEADERS["roster"])
    outcome = ingest_beside_good(tmp_path, "roster", ".csv", csv_bytes(table, "gbk"))
    assert outcome.result.encoding == "gb18030" and outcome.result.rows_accepted == 40
    assert set(outcome.stored["township"]) == {"城关镇"}


@by_source
def test_mostly_undecodable_text_is_rejected_whole(corpus: Corpus, source: str) -> None:
    assert_rejected(corpus["mostly-undecodable.csv", source], "neither UTF-8 nor GBK/GB18030")


@by_source
def test_a_stray_quote_names_its_line(corpus: Corpus, source: str) -> None:
    assert_rejected(
        corpus["stray-quote.csv", source],
        'not readable as CSV: unbalanced quotes ("), the first on line 3',
    )


# ---------------------------------------------------------------- headers


@by_source
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_two_headers_meaning_the_same_column(corpus: Corpus, source: str, suffix: str) -> None:
    alias = HEADERS[source]["id_number"]
    assert_rejected(
        corpus[f"same-column-twice{suffix}", source],
        f"columns {alias!r} and 'id_number' both mean id_number; keep only one",
    )


@by_source
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_the_same_header_twice(corpus: Corpus, source: str, suffix: str) -> None:
    name_header = HEADERS[source]["name"]
    assert_rejected(
        corpus[f"same-header-twice{suffix}", source],
        f"column {name_header!r} appears twice; keep only one",
    )


@by_source
def test_an_unknown_header_twice_is_kept_in_extra(corpus: Corpus, source: str) -> None:
    outcome = corpus["unknown-header-twice.csv", source]
    assert outcome.result.status == "loaded" and outcome.result.rows_accepted == 3
    assert "extra column(s) kept: 备注, 备注#2" in outcome.result.message
    assert outcome.stored["extra"].to_list() == ['{"备注":"a","备注#2":"b"}'] * 3


def test_the_same_column_twice_in_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = good_table("disability")
    columns = [pa.array([row[i] for row in table.rows]) for i in range(len(table.headers))]
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_arrays([*columns, columns[1]], names=[*table.headers, table.headers[1]]),
        buffer,
    )
    outcome = ingest_beside_good(tmp_path, "disability", ".parquet", buffer.getvalue())
    assert_rejected(outcome, "parquet cannot be read (column with name '身份证号' has more than")


def test_a_header_named_like_an_internal_column_is_just_extra(tmp_path: Path) -> None:
    table = with_extra_header("medical", "row_number", "99")
    content = csv_bytes(table)
    outcome = ingest_beside_good(tmp_path, "medical", ".csv", content)
    assert outcome.stored["row_number"].to_list() == [2, 3, 4]
    assert outcome.stored["extra"].to_list() == ['{"row_number":"99"}'] * 3


# ---------------------------------------------------------------- many rows


@by_source
def test_fifty_thousand_invalid_ids_are_all_quarantined(corpus: Corpus, source: str) -> None:
    outcome = corpus["fifty-thousand-invalid-ids.csv", source]
    result = outcome.result
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (50_000, 0, 50_000)
    counts = outcome.quarantine.group_by("column", "check").len().rows()
    assert counts == [("id_number", "invalid_id", 50_000)]
    assert outcome.quarantine["row_number"].to_list() == list(range(2, 50_002))


# ---------------------------------------------------------------- odd cell values


@by_source
@pytest.mark.parametrize("suffix", list(FORMATS))
def test_formula_like_text_is_stored_as_written(corpus: Corpus, source: str, suffix: str) -> None:
    outcome = corpus[f"formula{suffix}", source]
    assert outcome.result.rows_accepted == 3
    assert outcome.stored["name"].to_list() == ["张三", FORMULA, "张三"]


# ---------------------------------------------------------------- spreadsheet shapes


@by_source
@pytest.mark.parametrize(
    ("case", "note", "first_row"),
    [
        ("title-rows.xlsx", "header on row 3, the 2 row(s) above skipped", 4),
        ("merged-cells.xlsx", "merged cells filled down in ", 2),
        ("tab-separated.csv", "tab-separated", 2),
        ("semicolon-separated.csv", "semicolon-separated", 2),
        ("cr-line-ends.csv", "CR line ends", 2),
    ],
)
def test_accepted_shapes_read_every_row(
    corpus: Corpus, source: str, case: str, note: str, first_row: int
) -> None:
    outcome = corpus[case, source]
    result = outcome.result
    assert (result.status, result.rows_read, result.rows_accepted) == ("loaded", 3, 3)
    assert note in result.message
    assert outcome.stored["row_number"].to_list() == list(range(first_row, first_row + 3))
    expected = good_table(source)
    for key in HEADERS[source]:
        column = [row[expected.column(key, source)] for row in expected.rows]
        if key in ("name", "household_id", "settlement_id", "record_id", "accident_id"):
            assert outcome.stored[key].to_list() == column, key
    if case == "merged-cells.xlsx":
        merged = outcome.stored[MERGED[source]].cast(pl.String).to_list()
        assert len(set(merged)) == 1 and None not in merged  # filled into every row


@by_source
def test_a_formula_without_a_saved_value_quarantines_its_row(corpus: Corpus, source: str) -> None:
    outcome = corpus["formula-without-value.xlsx", source]
    result = outcome.result
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (3, 2, 1)
    assert "open and save the file in Excel or WPS" in result.message
    assert outcome.quarantine.rows() == [(3, "name", "formula_not_calculated", '="张"&"三"')]


@pytest.mark.parametrize(
    ("source", "column"),
    [
        (s, c.key)
        for s, spec in contract.load().items()
        for c in spec.columns.values()
        if c.column_required
    ],
)
def test_a_file_without_a_column_the_rules_read_is_rejected(
    tmp_path: Path, source: str, column: str
) -> None:
    table = good_table(source)
    drop = table.column(column, source)
    table.headers.pop(drop)
    for row in table.rows:
        row.pop(drop)
    outcome = ingest_beside_good(tmp_path, source, ".csv", csv_bytes(table))
    assert_rejected(outcome, f"missing required column(s): {column} (")


def test_the_columns_the_rules_read_are_required_in_the_file() -> None:
    # data-contract.md, under the roster table: roster household_type, monitoring_status,
    # relation, per_capita_income, and in the events sources every column a rule sums or
    # tests (screening-rules.md, "Risk points").
    read_by_rules = {
        "roster": {"household_type", "monitoring_status", "relation", "per_capita_income"},
        "medical": {"out_of_pocket"},
        "education": {"status", "tuition", "accommodation", "textbook", "aid"},
        "traffic": {"injury", "direct_loss", "compensation"},
        "civil": {"assistance_type", "event"},
        "disability": {"grade"},
    }
    for source, columns in read_by_rules.items():
        assert columns <= set(specs()[source].required_columns), source


@by_source
@pytest.mark.parametrize("suffix", list(FORMATS))
def test_a_cell_longer_than_excel_allows_is_quarantined(
    corpus: Corpus, source: str, suffix: str
) -> None:
    outcome = corpus[f"long-cell{suffix}", source]
    assert (outcome.result.rows_accepted, outcome.result.rows_rejected) == (2, 1)
    assert outcome.quarantine.rows() == [
        (3, "name", "too_long", "长" * 200 + "… (100000 characters)")
    ]
    assert outcome.stored["row_number"].to_list() == [2, 4]


@by_source
@pytest.mark.parametrize("suffix", list(FORMATS))
def test_a_nul_inside_a_cell_is_quarantined(corpus: Corpus, source: str, suffix: str) -> None:
    outcome = corpus[f"nul-in-cell{suffix}", source]
    assert (outcome.result.rows_accepted, outcome.result.rows_rejected) == (2, 1)
    assert outcome.quarantine.rows() == [(3, "name", "invalid_character", "张\\x00三")]
    assert "1 row(s) with a damaged cell set aside" in outcome.result.message


def test_a_damaged_cell_in_an_extra_column_names_its_header(tmp_path: Path) -> None:
    table = with_extra_header("traffic", "备注", "ok")
    table.rows[2][-1] = "x\x00"
    outcome = ingest_beside_good(tmp_path, "traffic", ".csv", csv_bytes(table))
    assert outcome.quarantine.rows() == [(4, "备注", "invalid_character", "x\\x00")]


# ---------------------------------------------------------------- failures of our own


@by_source
def test_an_unexpected_error_rejects_only_its_source(
    tmp_path: Path,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real = ingest_results.normalise_frame

    def broken(frame: pl.DataFrame, spec: contract.SourceSpec) -> pl.DataFrame:
        if spec.source == source:
            raise ValueError(f"cannot handle {make_id(0)}\nsecond line")
        return real(frame, spec)

    monkeypatch.setattr(ingest_results, "normalise_frame", broken)
    with caplog.at_level(logging.ERROR, logger="screening.ingest.results"):
        outcome = ingest_beside_good(tmp_path, source, ".csv", csv_bytes(good_table(source)))
    masked = ids.mask(make_id(0))
    assert_rejected(outcome, f"internal error: ValueError: cannot handle {masked}")
    assert outcome.result.sha256 is not None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" in logged and "broken" in logged and masked in logged
    assert make_id(0) not in logged
    console = capsys.readouterr()
    assert "Traceback" not in console.err + console.out


def test_a_library_panic_rejects_only_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_results.validate

    # Rust extensions raise PanicException, which is not an Exception.
    def panics(frame: pl.DataFrame, spec: contract.SourceSpec, **kw: str) -> Validated:
        if spec.source == "roster":
            raise pl.exceptions.PanicException("index out of bounds")
        return real(frame, spec, **kw)

    monkeypatch.setattr(ingest_results, "validate", panics)
    outcome = ingest_beside_good(tmp_path, "roster", ".csv", csv_bytes(good_table("roster")))
    assert_rejected(outcome, "internal error: PanicException: index out of bounds")


def test_ctrl_c_is_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(frame: pl.DataFrame, spec: contract.SourceSpec, **kw: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_results, "validate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest_beside_good(tmp_path, "roster", ".csv", csv_bytes(good_table("roster")))


def test_a_file_that_cannot_be_opened_is_rejected_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: Path, spec: contract.SourceSpec, *_limits: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(ingest_results, "read_source", denied)
    path = tmp_path / "medical.csv"
    path.write_bytes(csv_bytes(good_table("medical")))
    result = read_one(path, specs()["medical"], P)
    assert result.status == "rejected"
    assert result.message.startswith("无法读取文件")
    assert result.message.endswith("cannot read the file (Permission denied)")
