"""Department files made to order for the bad-input corpus and the fuzzers: a good table of
any source, and its bytes as CSV, xlsx or parquet."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import polars as pl
import xlsxwriter

from screening import ids


@cache
def make_id(seq: int) -> str:
    first17 = f"43062419800101{seq:03d}"
    return first17 + ids.check_digit(first17)


def bad_check_digit(seq: int) -> str:
    """A distinct ID per seq (up to 99 999) with a wrong check digit."""
    first17 = f"4306{seq // 1000:02d}19800101{seq % 1000:03d}"
    good = first17 + ids.check_digit(first17)
    return good[:17] + ("0" if good[17] != "0" else "1")


# The contract's first Chinese alias for each column a file must carry (a value or a
# column the rules read). Every source has a name column, where the odd values go.
HEADERS: dict[str, dict[str, str]] = {
    "roster": {
        "household_id": "户编号",
        "id_number": "身份证号",
        "name": "姓名",
        "relation": "与户主关系",
        "township": "乡镇",
        "village": "村",
        "household_type": "户类型",
        "monitoring_status": "监测状态",
        "per_capita_income": "家庭年人均纯收入",
    },
    "medical": {
        "settlement_id": "结算单号",
        "id_number": "身份证号",
        "name": "姓名",
        "settlement_date": "结算日期",
        "out_of_pocket": "个人自付",
    },
    "education": {
        "record_id": "记录编号",
        "id_number": "学生身份证号",
        "name": "学生姓名",
        "status": "学籍状态",
        "record_date": "填报日期",
        "tuition": "学费",
        "accommodation": "住宿费",
        "textbook": "教科书费",
        "aid": "资助金额",
    },
    "traffic": {
        "accident_id": "事故编号",
        "id_number": "当事人身份证号",
        "name": "姓名",
        "accident_date": "事故日期",
        "injury": "伤情",
        "direct_loss": "直接损失",
        "compensation": "已获赔偿",
    },
    "civil": {
        "id_number": "身份证号",
        "name": "姓名",
        "assistance_type": "救助类型",
        "event": "变动类型",
        "event_date": "日期",
    },
    "disability": {
        "certificate_no": "残疾证号",
        "id_number": "身份证号",
        "name": "姓名",
        "grade": "残疾等级",
        "issue_date": "发证日期",
    },
}

KEY_PREFIX = {
    "household_id": "H",
    "settlement_id": "S",
    "record_id": "E",
    "accident_id": "T",
    "certificate_no": "C",
}
FIXED = {
    "name": "张三",
    "township": "城关镇",
    "village": "东风村",
    "settlement_date": "2026-08-06",
    "out_of_pocket": "3000",
    "record_date": "2026-08-01",
    "accident_date": "2026-08-01",
    "assistance_type": "临时救助",
    "event": "发放",
    "event_date": "2026-08-01",
    "issue_date": "2026-08-01",
    # Columns the rules read: present in the file, empty cells allowed.
    "relation": "户主",
    "household_type": "一般农户",
    "monitoring_status": "",
    "per_capita_income": "8000",
    "status": "在读",
    "tuition": "1200",
    "accommodation": "",
    "textbook": "",
    "aid": "",
    "injury": "轻伤",
    "direct_loss": "500",
    "compensation": "",
    "grade": "二级",
}


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]

    def column(self, key: str, source: str) -> int:
        return self.headers.index(HEADERS[source][key])


def good_table(source: str, n: int = 3, id_for: Callable[[int], str] = make_id) -> Table:
    """n valid rows with distinct natural keys (and distinct ID numbers)."""
    keys = list(HEADERS[source])
    columns = {
        k: [f"{KEY_PREFIX[k]}{i}" for i in range(n)] if k in KEY_PREFIX else [FIXED.get(k)] * n
        for k in keys
    }
    columns["id_number"] = [id_for(i) for i in range(n)]
    rows = [list(values) for values in zip(*(columns[k] for k in keys), strict=True)]
    return Table([HEADERS[source][k] for k in keys], rows)


def with_name(source: str, name: str, row: int = 1) -> Table:
    """Three good rows, the name of row index `row` (spreadsheet row row + 2) replaced."""
    table = good_table(source)
    table.rows[row][table.column("name", source)] = name
    return table


def csv_bytes(table: Table, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(table: Table, long_cells: dict[str, str] | None = None) -> bytes:
    """A workbook with every cell a string. `long_cells` maps a placeholder cell value to
    the real text, patched into the shared strings afterwards: xlsxwriter and openpyxl
    both cut strings to Excel's 32 767 characters, a hand-edited workbook need not."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, values in enumerate([table.headers, *table.rows]):
        for c, value in enumerate(values):
            sheet.write_string(r, c, value)
    book.close()
    data = buffer.getvalue()
    if not long_cells:
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "xl/sharedStrings.xml":
                for placeholder, text in long_cells.items():
                    content = content.replace(placeholder.encode(), text.encode())
            dst.writestr(item, content)
    return out.getvalue()


def parquet_bytes(table: Table) -> bytes:
    frame = pl.DataFrame(table.rows, schema=dict.fromkeys(table.headers, pl.String), orient="row")
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


FORMATS = {".csv": csv_bytes, ".xlsx": xlsx_bytes, ".parquet": parquet_bytes}
