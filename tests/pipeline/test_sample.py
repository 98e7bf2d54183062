"""The synthetic county: determinism, file formats, every messy form, manifest consistency.

The raw files are read back here with small parsers of the contract's value forms (not the
pipeline's), and every cell is compared with the typed record the generator meant to write.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from dev import sample

from screening import contract, ids

PERIODS = ["2026-07", "2026-08", "2026-09"]
SEED = 7
HOUSEHOLDS = 200
SPECS = contract.load()
EPOCH = dt.date(1899, 12, 30)
BLANKS = " \t\u3000"
GRADES = {"一级": 1, "二级": 2, "三级": 3, "四级": 4}
FULL_DIGITS = re.compile("[\uff10-\uff19]")


# ------------------------------------------------------------------ reading raw files


@dataclass
class RawFile:
    period: str
    source: str
    path: Path
    encoding: str | None
    headers: list[str]
    rows: list[list[Any]]
    keys: list[str | None] = field(default_factory=list)

    def column(self, key: str) -> list[Any]:
        j = self.keys.index(key)
        return [row[j] for row in self.rows]

    def cell(self, row_number: int, key: str) -> Any:
        return self.rows[row_number - 2][self.keys.index(key)]


def decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("gbk"), "gbk"


def read_raw(path: Path, period: str, source: str) -> RawFile:
    encoding = None
    if path.suffix == ".csv":
        text, encoding = decode(path.read_bytes())
        table = list(csv.reader(io.StringIO(text, newline="")))
        headers, rows = table[0], [[v if v != "" else None for v in r] for r in table[1:]]
    elif path.suffix == ".xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        values = [list(r) for r in sheet.iter_rows(values_only=True)]
        headers, rows = [str(h) for h in values[0]], values[1:]
    else:
        frame = pl.read_parquet(path)
        headers, rows = frame.columns, [list(r) for r in frame.rows()]
    lookup = SPECS[source].header_lookup()
    keys = [lookup.get(contract.fold_header(h)) for h in headers]
    return RawFile(period, source, path, encoding, headers, rows, keys)


# ------------------------------------------------------------------ value parsers


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(BLANKS)


def parse_text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip(BLANKS)
    return s or None


def parse_id(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, int | float):
        v = str(int(v))
    return ids.normalise(str(v))


DATE_FORMS = {
    "iso": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
    "slash": re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    "compact": re.compile(r"(\d{4})(\d{2})(\d{2})"),
    "chinese": re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
}


def parse_date(v: Any) -> dt.date | None:
    """Raises ValueError for text that names no date."""
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, int | float):
        return EPOCH + dt.timedelta(days=int(v))
    s = fold(str(v))
    if re.fullmatch(r"\d{5}", s):
        return EPOCH + dt.timedelta(days=int(s))
    for pattern in DATE_FORMS.values():
        m = pattern.fullmatch(s)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
    raise ValueError(f"not a date: {s!r}")


def parse_money(v: Any) -> int | None:
    """Cents; raises ValueError for text that is no amount."""
    if v is None:
        return None
    if isinstance(v, int | float):
        return round(v * 100)
    s = fold(str(v)).replace(",", "").replace("元", "").replace("¥", "")
    if not s:
        return None
    try:
        return int(Decimal(s) * 100)
    except InvalidOperation as exc:
        raise ValueError(f"not money: {s!r}") from exc


def parse_grade(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, int | float):
        return int(v)
    s = fold(str(v))
    if s in GRADES:
        return GRADES[s]
    if s in {"1", "2", "3", "4"}:
        return int(s)
    raise ValueError(f"not a grade: {s!r}")


def parse(kind: str, v: Any) -> Any:
    return {
        "id": parse_id,
        "date": parse_date,
        "money": parse_money,
        "grade": parse_grade,
    }.get(kind, parse_text)(v)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    sample.generate(out, households=HOUSEHOLDS, periods=PERIODS, seed=SEED)
    return out


@pytest.fixture(scope="module")
def manifest(inbox: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def county() -> sample.County:
    return sample.build(HOUSEHOLDS, PERIODS, SEED)


@pytest.fixture(scope="module")
def raw(inbox: Path, manifest: dict[str, Any]) -> dict[tuple[str, str], RawFile]:
    files = {}
    for period, by_source in manifest["files"].items():
        for source, name in by_source.items():
            if name is not None:
                files[(period, source)] = read_raw(inbox / period / name, period, source)
    return files


@pytest.fixture(scope="module")
def year_before(inbox: Path, manifest: dict[str, Any]) -> RawFile:
    """The roster of 12 months before the first period, read back raw."""
    entry = manifest["year_before"]
    name = entry["files"]["roster"]
    return read_raw(inbox / entry["period"] / name, entry["period"], "roster")


def invalid_at(manifest: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(r["period"], r["source"], r["row_number"]): r for r in manifest["invalid_rows"]}


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_bytes(inbox: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    sample.generate(again, households=HOUSEHOLDS, periods=PERIODS, seed=SEED)
    first = sorted(p.relative_to(inbox) for p in inbox.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (inbox / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_another_seed_gives_another_county(manifest: dict[str, Any], tmp_path: Path) -> None:
    other = sample.generate(tmp_path / "other", households=HOUSEHOLDS, periods=PERIODS, seed=8)
    assert other["expected"] != manifest["expected"]


def test_returned_manifest_is_the_written_one(inbox: Path, tmp_path: Path) -> None:
    returned = sample.generate(tmp_path / "x", households=HOUSEHOLDS, periods=PERIODS, seed=SEED)
    text = (tmp_path / "x" / "manifest.json").read_text(encoding="utf-8")
    assert returned == json.loads(text)
    assert text == (inbox / "manifest.json").read_text(encoding="utf-8")
    assert "\\u" not in text  # ensure_ascii=False: Chinese stays readable


# ------------------------------------------------------------------ layout and formats


def test_files_laid_out_as_the_manifest_says(inbox: Path, manifest: dict[str, Any]) -> None:
    assert sorted(manifest["files"]) == PERIODS
    for period, by_source in manifest["files"].items():
        written = {p.name for p in (inbox / period).iterdir()}
        named = {n for n in by_source.values() if n is not None}
        assert written == named
        for source, name in by_source.items():
            if name is not None:
                prefixes = SPECS[source].file_prefixes
                assert name.startswith(prefixes), (source, name)
    assert manifest["files"]["2026-08"]["traffic"] is None  # a missing source
    assert {"medical.csv", "roster.parquet"} <= {
        n for by in manifest["files"].values() for n in by.values()
    }


def test_row_counts_match_the_files(raw: dict[tuple[str, str], RawFile], manifest: dict) -> None:
    for (period, source), f in raw.items():
        assert len(f.rows) == manifest["rows"][period][source], f.path.name
    header_only = [f for f in raw.values() if not f.rows]
    assert header_only, "a header-only file"
    assert all(f.headers for f in header_only)


def test_csv_encodings(raw: dict[tuple[str, str], RawFile]) -> None:
    encodings = {f.encoding for f in raw.values() if f.encoding}
    assert encodings == {"utf-8", "utf-8-sig", "gbk"}
    for f in raw.values():
        if f.encoding == "gbk":
            data = f.path.read_bytes()
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            assert None not in f.keys  # every GBK header decoded to a known column


def test_xlsx_has_real_date_and_number_cells(raw: dict[tuple[str, str], RawFile]) -> None:
    books = [f for f in raw.values() if f.path.suffix == ".xlsx"]
    assert books
    for f in books:
        sheet = openpyxl.load_workbook(f.path).worksheets[0]
        assert sheet.cell(1, 1).value == f.headers[0]  # header on the first row
        kinds = {key: SPECS[f.source].columns[key].type for key in f.keys if key}
        dates = [
            c for c in sheet.iter_cols(min_row=2) if kinds.get(f.keys[c[0].column - 1]) == "date"
        ]
        assert any(cell.is_date for col in dates for cell in col), f.path.name
        money = [
            c for c in sheet.iter_cols(min_row=2) if kinds.get(f.keys[c[0].column - 1]) == "money"
        ]
        if money and f.rows:
            assert any(isinstance(cell.value, float | int) for col in money for cell in col)


def test_parquet_has_typed_columns(raw: dict[tuple[str, str], RawFile]) -> None:
    seen: set[str] = set()
    for f in raw.values():
        if f.path.suffix != ".parquet":
            continue
        schema = pl.read_parquet_schema(f.path)
        for header, key in zip(f.headers, f.keys, strict=True):
            kind = SPECS[f.source].columns[key].type if key else "text"
            expected = {"date": pl.Date, "money": pl.Float64}.get(kind, pl.String)
            assert schema[header] == expected, (f.path.name, header)
            seen.add(kind)
    assert {"id", "date", "money"} <= seen


# ------------------------------------------------------------------ every cell round-trips


def test_every_cell_reads_back_as_generated(
    raw: dict[tuple[str, str], RawFile], county: sample.County, manifest: dict
) -> None:
    invalid = invalid_at(manifest)
    for (period, source), f in raw.items():
        i = PERIODS.index(period)
        typed = county.delivery(source, i)
        assert typed.height == len(f.rows)
        spec = SPECS[source]
        for j, (row, want) in enumerate(zip(f.rows, typed.iter_rows(named=True), strict=True)):
            if (period, source, j + 2) in invalid:
                assert want["_check"] is not None
                continue
            assert want["_check"] is None
            for key, value in zip(f.keys, row, strict=True):
                if key is None:
                    continue
                col = spec.columns[key]
                got = parse(col.type, value)
                if got is None and col.empty is not None and col.type == "money":
                    got = col.empty * 100
                if key == "id_number" and got is None and source == "disability":
                    got = parse_id(row[f.keys.index("certificate_no")][:18])
                assert got == want[key], (f.path.name, j + 2, key, value)


def test_every_valid_id_passes_gb11643(raw: dict[tuple[str, str], RawFile], manifest: dict) -> None:
    invalid = invalid_at(manifest)
    checked = 0
    for (period, source), f in raw.items():
        for j, value in enumerate(f.column("id_number")):
            bad = invalid.get((period, source, j + 2))
            if bad and bad["check"] == "invalid_id":
                assert parse_id(value) is None
            elif value is not None:
                clean = parse_id(value)
                assert clean is not None and ids.is_valid(clean), (f.path.name, j + 2)
                checked += 1
    assert checked > 1000


def parsed_rows(f: RawFile | None, manifest: dict) -> list[dict[str, Any]]:
    """The valid rows of a file as typed dicts, contract defaults for empty cells applied."""
    invalid = invalid_at(manifest)
    rows = []
    for j, row in enumerate(f.rows if f else []):
        if (f.period, f.source, j + 2) in invalid:  # type: ignore[union-attr]
            continue
        rec: dict[str, Any] = {}
        for key, value in zip(f.keys, row, strict=True):  # type: ignore[union-attr]
            if key is not None:
                col = SPECS[f.source].columns[key]  # type: ignore[union-attr]
                got = parse(col.type, value)
                if got is None and col.empty is not None:
                    got = col.empty * 100 if col.type == "money" else col.empty
                rec[key] = got
        if rec.get("id_number") is None and "certificate_no" in rec:
            rec["id_number"] = parse_id(rec["certificate_no"][:18])
        rows.append(rec)
    return rows


def test_valid_rows_satisfy_the_contract(
    raw: dict[tuple[str, str], RawFile], manifest: dict
) -> None:
    for f in raw.values():
        spec = SPECS[f.source]
        keys: Counter[tuple[Any, ...]] = Counter()
        for rec in parsed_rows(f, manifest):
            for key, col in spec.columns.items():
                value = rec.get(key)
                if col.required:
                    assert value is not None, (f.path.name, key)
                if col.values and value is not None:
                    assert value in col.values, (f.path.name, key, value)
                if col.min is not None and value is not None:
                    assert value >= col.min, (f.path.name, key, value)
            for check in spec.checks:
                a, b = rec.get(check.column), rec.get(check.other)
                if a is not None and b is not None:
                    assert (a >= b) if check.op == "ge" else (a <= b), (f.path.name, check.name)
            keys[tuple(rec[k] for k in spec.natural_key)] += 1
        assert not [k for k, n in keys.items() if n > 1], f.path.name


def _month_bounds(period: str) -> tuple[dt.date, dt.date]:
    year, month = map(int, period.split("-"))
    first = year * 12 + month - 1 - 11
    start = dt.date(first // 12, first % 12 + 1, 1)
    after = dt.date(year + month // 12, month % 12 + 1, 1)
    return start, after - dt.timedelta(days=1)


def _age(id18: str, at: dt.date) -> int:
    born = ids.birth_date(id18)
    assert born is not None
    return at.year - born.year - ((at.month, at.day) < (born.month, born.day))


def screen_files(
    raw: dict[tuple[str, str], RawFile], manifest: dict, year_before: RawFile
) -> dict[str, dict]:
    """screening-rules.md in plain Python over the raw files: a second, independent oracle.
    INCOME_DROP compares with the roster of a year before (in force 12 months before each
    of the three periods)."""
    then: dict[str, int] = {}
    for r in parsed_rows(year_before, manifest):  # the head's row comes first
        then.setdefault(r["household_id"], r["per_capita_income"])
    rule_date = {s: str(SPECS[s].rule_date) for s in sample.EVENT_SOURCES}
    store: dict[str, dict[tuple, dict]] = {s: {} for s in sample.EVENT_SOURCES}
    previous: set[str] = set()
    results = {}
    for period in PERIODS:
        for s in sample.EVENT_SOURCES:  # the newest delivery of a natural key wins
            for rec in parsed_rows(raw.get((period, s)), manifest):
                store[s][tuple(rec[k] for k in SPECS[s].natural_key)] = rec
        start, end = _month_bounds(period)
        roster = parsed_rows(raw[(period, "roster")], manifest)
        home = {r["id_number"]: r["household_id"] for r in roster}
        homes: dict[str, dict] = {}
        for r in roster:
            homes.setdefault(r["household_id"], {**r, "size": 0})["size"] += 1
        sums: dict[str, Counter] = defaultdict(Counter)
        codes: dict[str, set[str]] = defaultdict(set)
        latest: dict[str, dict] = {}
        for s in sample.EVENT_SOURCES:
            for rec in store[s].values():
                hid = home.get(rec["id_number"])
                if hid is None or not start <= rec[rule_date[s]] <= end:
                    continue
                age = _age(rec["id_number"], end)
                if s == "medical":
                    sums[hid]["m"] += rec["out_of_pocket"]
                elif s == "education":
                    gross = rec["tuition"] + rec["accommodation"] + rec["textbook"]
                    sums[hid]["e"] += max(gross - rec["aid"], 0)
                    old = latest.get(rec["id_number"])
                    order = (rec["record_date"], rec["record_id"])
                    if old is None or order > (old["record_date"], old["record_id"]):
                        latest[rec["id_number"]] = rec
                elif s == "traffic":
                    sums[hid]["a"] += max((rec["direct_loss"] or 0) - (rec["compensation"] or 0), 0)
                    if rec["injury"] in ("重伤", "死亡") and 16 <= age <= 59:
                        codes[hid].add("ACCIDENT")
                elif s == "disability" and rec["grade"] in (1, 2):
                    codes[hid].add("DISABILITY")
                elif s == "civil" and (
                    rec["assistance_type"] == "临时救助"
                    or (rec["assistance_type"] in ("低保", "特困供养") and rec["event"] == "新增")
                ):
                    codes[hid].add("ASSISTANCE")
        for idn, rec in latest.items():
            if rec["status"] == "辍学" and 6 <= _age(idn, end) <= 15:
                codes[home[idn]].add("DROPOUT")
        listed = {}
        for hid, h in homes.items():
            m, e, a = sums[hid]["m"], sums[hid]["e"], sums[hid]["a"]
            found = set(codes[hid])
            threshold = 2_000_000 if h["household_type"] == "一般农户" else 500_000
            found |= {"MEDICAL"} if m >= threshold else set()
            found |= {"EDUCATION"} if e > 800_000 else set()
            found |= {"ACCIDENT"} if a > 1_000_000 else set()
            found |= {"LOW_INCOME"} if h["per_capita_income"] < 600_000 else set()
            found |= {"SPENDING"} if m + e + a > h["per_capita_income"] * h["size"] else set()
            before, now = then.get(hid), h["per_capita_income"]
            if before and now * 10 <= before * 7 and now < 1_200_000:
                found.add("INCOME_DROP")
            if found:
                colour = "红" if len(found) > 1 else "黄" if found == {"LOW_INCOME"} else "蓝"
                status = (
                    "已在监测" if h["monitoring_status"] == "监测中"
                    else "持续" if hid in previous else "新增"
                )  # fmt: skip
                listed[hid] = (sorted(found), colour, status)
        results[period] = listed
        previous = set(listed)
    return results


def test_expected_lists_recomputed_from_the_raw_files(
    raw: dict, manifest: dict, year_before: RawFile
) -> None:
    recomputed = screen_files(raw, manifest, year_before)
    for period in PERIODS:
        stated = {
            r["household_id"]: (r["risk_codes"], r["colour"], r["listing_status"])
            for r in manifest["expected"][period]
        }
        assert stated == recomputed[period], period


# ------------------------------------------------------------------ messy forms


def id_forms(value: Any) -> set[str]:
    if value is None:
        return {"empty"}
    if isinstance(value, int | float):
        return {"id15_number_cell"}
    s = str(value)
    forms = set()
    if FULL_DIGITS.search(s):
        forms.add("fullwidth")
    if s.strip(BLANKS).startswith("'"):
        forms.add("apostrophe")
    if s.endswith("x") or s.strip(BLANKS).endswith("x"):
        forms.add("lower_x")
    if s != s.strip(" "):
        forms.add("padded_space")
    if "\u3000" in s:
        forms.add("padded_ideographic")
    if len(s.strip(BLANKS)) == 15:
        forms.add("id15_text")
    return forms


def date_forms(value: Any, suffix: str) -> set[str]:
    if isinstance(value, dt.datetime):
        return {"xlsx_date_cell"}
    if isinstance(value, dt.date):
        return {"parquet_date"}
    if isinstance(value, int | float):
        return {"serial_number_cell"}
    if value is None:
        return set()
    s = str(value)
    if re.fullmatch(r"\d{5}", s):
        return {"serial_text"}
    return {name for name, p in DATE_FORMS.items() if p.fullmatch(s)}


def money_forms(value: Any, suffix: str) -> set[str]:
    if value is None:
        return {"empty"}
    if isinstance(value, int | float):
        return {"number_cell" if suffix == ".xlsx" else "parquet_float"}
    s = str(value)
    forms = set()
    if "," in s:
        forms.add("comma")
    if s.endswith("元"):
        forms.add("yuan")
    if s.startswith("￥"):
        forms.add("rmb")
    if FULL_DIGITS.search(s):
        forms.add("fullwidth")
    return forms or {"plain"}


def grade_forms(value: Any) -> set[str]:
    if isinstance(value, int | float):
        return {"number_cell"}
    s = str(value)
    if s in GRADES:
        return {"chinese"}
    return {"fullwidth"} if FULL_DIGITS.search(s) else {"digit"}


def test_every_contract_form_appears(raw: dict[tuple[str, str], RawFile]) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for f in raw.values():
        seen["format"].add(f.path.suffix)
        seen["file_name"].add("chinese" if not f.path.name.isascii() else "english")
        for header, key in zip(f.headers, f.keys, strict=True):
            if key is None:
                seen["header"].add("extra_column")
                continue
            seen["header"].add("english" if contract.fold_header(header) == key else "chinese")
            if header != header.strip(BLANKS):
                seen["header"].add("padded")
            if "（" in header or any("\uff01" <= ch <= "\uff5e" for ch in header):
                seen["header"].add("full_width")
            kind = SPECS[f.source].columns[key].type
            for value in f.column(key):
                if kind == "id":
                    seen["id"] |= id_forms(value)
                elif kind == "date":
                    seen["date"] |= date_forms(value, f.path.suffix)
                elif kind == "money":
                    seen["money"] |= money_forms(value, f.path.suffix)
                elif kind == "grade" and value is not None:
                    seen["grade"] |= grade_forms(value)
                elif isinstance(value, str) and value != value.strip(BLANKS):
                    seen["text"].add("ideographic" if "\u3000" in value else "space")
    assert seen["format"] == {".csv", ".xlsx", ".parquet"}
    assert seen["file_name"] == {"chinese", "english"}
    assert {"english", "chinese", "extra_column", "padded", "full_width"} <= seen["header"]
    assert {
        "empty", "id15_number_cell", "fullwidth", "apostrophe", "lower_x", "padded_space",
        "padded_ideographic", "id15_text",
    } <= seen["id"]  # fmt: skip
    assert {
        "xlsx_date_cell", "parquet_date", "serial_number_cell", "serial_text", "iso", "slash",
        "compact", "chinese",
    } <= seen["date"]  # fmt: skip
    assert {
        "empty", "number_cell", "parquet_float", "comma", "yuan", "rmb", "fullwidth", "plain",
    } <= seen["money"]  # fmt: skip
    assert {"number_cell", "chinese", "digit", "fullwidth"} <= seen["grade"]
    assert {"space", "ideographic"} <= seen["text"]


def test_slash_dates_drop_leading_zeros(raw: dict[tuple[str, str], RawFile]) -> None:
    texts = [
        str(v)
        for f in raw.values()
        for key in f.keys
        if key and SPECS[f.source].columns[key].type == "date"
        for v in f.column(key)
        if isinstance(v, str)
    ]
    assert any(re.fullmatch(r"\d{4}/\d/\d{1,2}", t) for t in texts)  # 2026/7/3, not 2026/07/03
    assert any(re.fullmatch(r"\d{4}年\d月\d{1,2}日", t) for t in texts)


def test_15_digit_ids_belong_to_people_born_in_the_1900s(raw: dict, manifest: dict) -> None:
    found = 0
    for f in raw.values():
        for value in f.column("id_number"):
            s = str(int(value)) if isinstance(value, int | float) else parse_text(value)
            if s and len(s) == 15:
                assert ids.from_15(s)[6:8] == "19"
                found += 1
    assert found


def test_disability_certificate_supplies_missing_ids(raw: dict, manifest: dict) -> None:
    invalid = invalid_at(manifest)
    blanks = 0
    for (period, source), f in raw.items():
        if source != "disability":
            continue
        for j, row in enumerate(f.rows):
            if (period, source, j + 2) in invalid:
                continue
            cert = parse_text(row[f.keys.index("certificate_no")])
            assert cert is not None and len(cert) == 20  # ID, category digit, grade digit
            assert cert[-1] == str(parse_grade(row[f.keys.index("grade")]))
            idn = row[f.keys.index("id_number")]
            if idn is None:
                blanks += 1
                assert ids.is_valid(cert[:18])
            else:
                assert parse_id(idn) == cert[:18]
    assert blanks


def test_gbk_files_hold_full_width_forms(raw: dict[tuple[str, str], RawFile]) -> None:
    gbk = [f.path.read_bytes().decode("gbk") for f in raw.values() if f.encoding == "gbk"]
    assert any("\u3000" in t for t in gbk) and any(FULL_DIGITS.search(t) for t in gbk)


# ------------------------------------------------------------------ manifest consistency


def test_invalid_rows_fail_as_stated(raw: dict[tuple[str, str], RawFile], manifest: dict) -> None:
    checks = Counter(r["check"] for r in manifest["invalid_rows"])
    for name in ("invalid_id", "invalid_date", "min", "out_of_pocket_not_above_total"):
        assert checks[name] >= 2, name
    for r in manifest["invalid_rows"]:
        f = raw[(r["period"], r["source"])]
        assert r["file"] == f.path.name
        value = f.cell(r["row_number"], r["column"])
        kind = SPECS[r["source"]].columns[r["column"]].type
        assert _fails(r["check"], kind, value, f, r), r


def _fails(check: str, kind: str, value: Any, f: RawFile, r: dict[str, Any]) -> bool:
    row = r["row_number"]
    if check == "invalid_id":
        return parse_id(value) is None
    if check in ("invalid_date", "invalid_money", "invalid_value"):
        try:
            parsed = parse(kind, value)
        except ValueError:
            return True
        values = SPECS[f.source].columns[r["column"]].values
        return check == "invalid_value" and parsed not in values
    if check == "min":
        money = parse_money(value)
        return money is not None and money < 0
    if check == "required":
        return parse_text(value) is None
    if check == "out_of_pocket_not_above_total":
        return parse_money(value) > parse_money(f.cell(row, "total_cost"))  # type: ignore[operator]
    if check == "discharge_not_before_admission":
        return parse_date(value) < parse_date(f.cell(row, "admission_date"))  # type: ignore[operator]
    if check == "duplicate_key":
        return Counter(f.column(r["column"]))[value] >= 2
    raise AssertionError(f"unknown check {check}")


def test_unmatched_counts_recount_from_the_files(raw: dict, manifest: dict) -> None:
    invalid = invalid_at(manifest)
    for period in PERIODS:
        roster = raw[(period, "roster")]
        people = {parse_id(v) for v in roster.column("id_number")} - {None}
        for source in sample.EVENT_SOURCES:
            f = raw.get((period, source))
            count = 0
            for j, row in enumerate(f.rows if f else []):
                if (period, source, j + 2) in invalid:
                    continue
                idn = parse_id(row[f.keys.index("id_number")])  # type: ignore[union-attr]
                if idn is None:  # the certificate number stands in
                    idn = parse_id(row[f.keys.index("certificate_no")][:18])  # type: ignore[union-attr]
                count += idn not in people
            assert manifest["unmatched"][period][source] == count, (period, source)
    assert sum(n for by in manifest["unmatched"].values() for n in by.values()) > 0


def roster_households(f: RawFile, manifest: dict) -> dict[str, dict[str, Any]]:
    invalid = invalid_at(manifest)
    households: dict[str, dict[str, Any]] = {}
    for j, row in enumerate(f.rows):
        if (f.period, "roster", j + 2) in invalid:
            continue
        get = {k: parse_text(v) for k, v in zip(f.keys, row, strict=True) if k}
        h = households.setdefault(get["household_id"], {**get, "size": 0})  # type: ignore[arg-type]
        h["size"] += 1
    return households


def test_expected_lists_agree_with_the_roster(raw: dict, manifest: dict) -> None:
    for period in PERIODS:
        households = roster_households(raw[(period, "roster")], manifest)
        listed = manifest["expected"][period]
        assert listed == sorted(listed, key=lambda r: r["household_id"])
        for r in listed:
            h = households[r["household_id"]]
            assert (h["township"], h["village"]) == (r["township"], r["village"])
            assert h["size"] == r["household_size"]
            assert r["risk_codes"] == sorted(set(r["risk_codes"])) and r["risk_codes"]
            n = len(r["risk_codes"])
            colour = "红" if n >= 2 else "黄" if r["risk_codes"] == ["LOW_INCOME"] else "蓝"
            assert r["colour"] == colour
            if h["monitoring_status"] == "监测中":
                assert r["listing_status"] == "已在监测"
            income = parse_money(h["per_capita_income"])
            assert ("LOW_INCOME" in r["risk_codes"]) == (income < 600_000)  # type: ignore[operator]


def test_listing_status_follows_the_previous_period(manifest: dict) -> None:
    previous: set[str] = set()
    for period in PERIODS:
        for r in manifest["expected"][period]:
            if r["listing_status"] != "已在监测":
                wanted = "持续" if r["household_id"] in previous else "新增"
                assert r["listing_status"] == wanted
        previous = {r["household_id"] for r in manifest["expected"][period]}


def test_background_households_only_ever_low_income(manifest: dict) -> None:
    planted = {c["household_id"] for c in manifest["planted"]}
    background = [
        r
        for rows in manifest["expected"].values()
        for r in rows
        if r["household_id"] not in planted
    ]
    assert background, "some background households are below the line"
    assert all(r["risk_codes"] == ["LOW_INCOME"] for r in background)


def test_planted_cases_match_expected_lists(manifest: dict) -> None:
    expected = {p: {r["household_id"]: r for r in rows} for p, rows in manifest["expected"].items()}
    for case in manifest["planted"]:
        for period, result in case["periods"].items():
            listed = expected[period].get(case["household_id"])
            if result is None:
                assert listed is None, case["case"]
            else:
                assert listed is not None, case["case"]
                for k in ("risk_codes", "colour", "listing_status", "village"):
                    assert listed[k] == result[k], (case["case"], period, k)


def test_planted_cases_cover_every_rule_and_boundary(manifest: dict) -> None:
    cases = {c["case"]: c for c in manifest["planted"]}
    assert len(cases) == len(manifest["planted"])

    def codes(case: str, period: str) -> list[str] | None:
        result = cases[case]["periods"][period]
        return None if result is None else result["risk_codes"]

    p1, p2, p3 = PERIODS
    for listed, not_listed in [
        ("medical_at_threshold_tuopin", "medical_below_threshold_tuopin"),
        ("medical_at_threshold_jiance", "medical_below_threshold_jiance"),
        ("medical_at_threshold_yiban", "medical_below_threshold_yiban"),
        ("education_above_threshold", "education_at_threshold"),
        ("dropout_age_6", "dropout_age_16"),
        ("dropout_age_15", "dropout_returned"),
        ("accident_loss_above", "accident_loss_at"),
        ("accident_severe_age_59", "accident_severe_age_60"),
        ("disability_grade1_in_window", "disability_grade3_in_window"),
        ("disability_grade2_in_window", "disability_grade1_before_window"),
        ("assistance_dibao_new", "assistance_dibao_renewal"),
        ("spending_only", "spending_equals_income"),
        ("low_income_only", "income_at_line"),
        ("window_first_day", "window_day_before"),
        ("income_drop_30", "income_drop_short"),
        ("income_drop_under_ceiling", "income_drop_at_ceiling"),
        ("income_drop_moved_village", "income_drop_not_on_earlier_roster"),
    ]:
        assert codes(listed, p1), listed
        assert codes(not_listed, p1) is None, not_listed
    every_code = {
        c for case in cases.values() for r in case["periods"].values() if r for c in r["risk_codes"]
    }
    assert every_code == set(sample.RISK_CODES)
    colours = {r["colour"] for case in cases.values() for r in case["periods"].values() if r}
    assert colours == {"红", "黄", "蓝"}
    assert cases["monitored_with_risk"]["periods"][p1]["listing_status"] == "已在监测"
    persist = cases["medical_at_threshold_tuopin"]["periods"]
    assert [persist[p]["listing_status"] for p in PERIODS] == ["新增", "持续", "持续"]
    assert codes("starts_in_period_2", p1) is None
    assert cases["starts_in_period_2"]["periods"][p2]["listing_status"] == "新增"
    assert codes("correction_drops_listing", p1) and codes("correction_drops_listing", p2) is None
    assert codes("window_first_day", p1) and codes("window_first_day", p2) is None
    assert codes("relisted_after_gap", p2) is None
    assert cases["relisted_after_gap"]["periods"][p3]["listing_status"] == "新增"
    moved = cases["moved_village"]["periods"]
    assert moved[p1]["village"] != moved[p2]["village"]
    assert codes("baby_born", p1) == ["SPENDING"] and codes("baby_born", p2) is None
    assert cases["baby_born"]["periods"][p1]["household_size"] == 2


def test_the_roster_of_a_year_before(
    raw: dict, manifest: dict, year_before: RawFile, county: sample.County
) -> None:
    """A year before the first period: period 1's households but those formed since, with
    the incomes then (every cell as generated), and no invalid row."""
    entry = manifest["year_before"]
    assert entry["period"] == "2025-07" and entry["rows"]["roster"] == len(year_before.rows)
    assert county.year_before is not None
    rows = parsed_rows(year_before, manifest)
    typed = county.year_before.to_dicts()
    assert len(rows) == len(typed) == entry["population"]["persons"]
    columns = SPECS["roster"].columns
    for got, want in zip(rows, typed, strict=True):  # an empty cell reads as its default
        assert got == {k: columns[k].empty if want[k] is None else want[k] for k in got}
    now = roster_households(raw[(PERIODS[0], "roster")], manifest)
    then = roster_households(year_before, manifest)
    assert len(then) == entry["population"]["households"] < len(now)
    assert set(then) < set(now)
    planted = {c["case"]: c["household_id"] for c in manifest["planted"]}
    assert planted["income_drop_not_on_earlier_roster"] not in then
    moved = planted["income_drop_moved_village"]
    assert then[moved]["village"] != now[moved]["village"]
    assert then[moved]["township"] == now[moved]["township"]
    incomes = [(then[h]["per_capita_income"], now[h]["per_capita_income"]) for h in then]
    assert sum(a != b for a, b in incomes) > len(then) / 2  # incomes moved in a year


def test_planted_window_edges_sit_on_the_window(raw: dict, manifest: dict) -> None:
    start = dt.date(2025, 8, 1)  # the first day of 2026-07's window
    planted = {c["case"]: c["household_id"] for c in manifest["planted"]}
    roster = raw[(PERIODS[0], "roster")]
    members = {
        parse_id(i): parse_text(h)
        for i, h in zip(roster.column("id_number"), roster.column("household_id"), strict=True)
    }
    medical = raw[(PERIODS[0], "medical")]
    dates: dict[str, set[dt.date]] = defaultdict(set)
    for i, d in zip(medical.column("id_number"), medical.column("settlement_date"), strict=True):
        try:
            dates[members.get(parse_id(i)) or ""].add(parse_date(d))  # type: ignore[arg-type]
        except ValueError:
            continue
    assert dates[planted["window_first_day"]] == {start}
    assert dates[planted["window_day_before"]] == {start - dt.timedelta(days=1)}


def test_roster_changes_between_periods(raw: dict, manifest: dict) -> None:
    sizes = [len(roster_households(raw[(p, "roster")], manifest)) for p in PERIODS]
    assert sizes == [HOUSEHOLDS] * 3
    people = [manifest["population"][p]["persons"] for p in PERIODS]
    assert people[1] > people[0]  # a baby is born in the second period


def test_resent_records_share_their_natural_key(raw: dict, manifest: dict) -> None:
    keys = [{parse_text(v) for v in raw[(p, "medical")].column("settlement_id")} for p in PERIODS]
    assert keys[0] & keys[1], "some settlement re-sent in period 2"


def test_traffic_accident_with_two_casualties(raw: dict[tuple[str, str], RawFile]) -> None:
    f = raw[(PERIODS[0], "traffic")]
    counts = Counter(parse_text(v) for v in f.column("accident_id"))
    assert max(counts.values()) >= 2


# ------------------------------------------------------------------ arguments


def test_refuses_to_overwrite_a_period_folder(inbox: Path) -> None:
    with pytest.raises(FileExistsError):
        sample.generate(inbox, households=HOUSEHOLDS, periods=PERIODS, seed=SEED)


@pytest.mark.parametrize(
    ("households", "periods"),
    [(40, PERIODS), (200, ["2026-07", "2026-09"]), (200, ["2026-7"]), (200, [])],
)
def test_rejects_bad_arguments(households: int, periods: list[str], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        sample.generate(tmp_path, households=households, periods=periods, seed=1)


@pytest.mark.parametrize("periods", [["2026-12"], ["2026-11", "2026-12", "2027-01", "2027-02"]])
def test_other_period_counts(periods: list[str], tmp_path: Path) -> None:
    m = sample.generate(tmp_path, households=120, periods=periods, seed=3)
    assert sorted(m["expected"]) == periods
    for case in m["planted"]:
        assert sorted(case["periods"]) == periods
    names = {c["case"] for c in m["planted"]}
    assert ("relisted_after_gap" in names) == (len(periods) >= 3)


@pytest.mark.parametrize("shape", list(sample.ROSTER_SHAPES))
def test_the_roster_can_be_written_as_a_merged_or_titled_workbook(
    shape: str, tmp_path: Path
) -> None:
    m = sample.generate(tmp_path, households=80, periods=["2026-07"], seed=3, roster_xlsx=shape)
    name = m["files"]["2026-07"]["roster"]
    book = openpyxl.load_workbook(tmp_path / "2026-07" / name)
    sheet = book.active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    titled = "title_rows" in sample.ROSTER_SHAPES[shape]
    top = sample.TITLE_ROWS if titled else 0
    assert rows[top][0] == "户编号" and len(rows) - top - 1 == m["rows"]["2026-07"]["roster"]
    assert (top > 0) == str(rows[0][0]).startswith("农村人口基础信息")
    merges = [str(r) for r in sheet.merged_cells.ranges if r.min_row > top + 1]
    households = rows[top + 1 :]
    if "merged_cells" in sample.ROSTER_SHAPES[shape]:
        # 户编号 (A) and 乡镇 (E) of every household of two or more: the first row holds them.
        assert {ref[0] for ref in merges} == {"A", "E"}
        assert sum(1 for r in households if r[0] is None) == sum(
            int(ref.split(":")[1][1:]) - int(ref.split(":")[0][1:])
            for ref in merges
            if ref[0] == "A"
        )
    else:
        assert not merges and all(r[0] is not None for r in households)
    invalid = [r["row_number"] for r in m["invalid_rows"] if r["source"] == "roster"]
    # The manifest's row numbers are the rows a spreadsheet shows: the ghost members there
    # carry an ID number with a wrong check digit.
    assert invalid
    for n in invalid:
        bad = str(households[n - top - 2][1])
        assert bad[17] != ids.check_digit(bad[:17]), n


def test_an_unknown_roster_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown roster shape"):
        sample.generate(tmp_path, households=80, periods=["2026-07"], seed=3, roster_xlsx="x")


# ------------------------------------------------------------------ scale


@pytest.mark.slow
def test_a_large_county_is_quick_and_readable(tmp_path: Path) -> None:
    started = time.perf_counter()
    m = sample.generate(tmp_path, households=100_000, periods=PERIODS, seed=1)
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"{elapsed:.1f} s"
    assert m["population"][PERIODS[0]]["households"] == 100_000
    assert 15 <= len({r["township"] for r in m["expected"][PERIODS[0]]}) <= 25
    for period, by_source in m["files"].items():
        for source, name in by_source.items():
            if name is None:
                continue
            path = tmp_path / period / name
            if path.suffix == ".parquet":
                assert pl.read_parquet(path).height == m["rows"][period][source]
            elif path.suffix == ".xlsx":
                sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
                assert sheet.max_row == m["rows"][period][source] + 1
            else:
                lines = decode(path.read_bytes())[0].splitlines()
                assert len(lines) == m["rows"][period][source] + 1


# ---------------------------------------------------------------- the command line


def test_the_generator_refuses_a_non_empty_period_folder_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "2026-07").mkdir()
    (tmp_path / "2026-07" / "roster.csv").write_text("x\n", encoding="utf-8")
    code = sample.main(["--out", str(tmp_path), "--households", "80", "--periods", "2026-07"])
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "not empty" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["2026-07", "roster.csv"]


@pytest.mark.parametrize(
    ("households", "periods", "says"),
    [
        (5, "2026-07", "households"),
        (80, "2026-07,2026-09", "consecutive"),
        (80, "2026-09,2026-07", "in order"),
        (80, "2026-7", "YYYY-MM"),
    ],
)
def test_the_generator_with_impossible_settings_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], households: int, periods: str, says: str
) -> None:
    argv = ["--out", str(tmp_path / "s"), "--households", str(households), "--periods", periods]
    assert sample.main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert says in line
    assert not (tmp_path / "s").exists()
