"""Fallback linkage: records whose ID number is wrong still reach their household.

Measured on a generated county with mistyped ID numbers planted for known persons (each
kind: a changed digit, two digits swapped, the check digit dropped, a 15-digit number
converted with the wrong century; and the generator's wrong check digits and impossible
birth dates) and records of people truly absent from the roster (`typo_screened`). Then
the whole loop, as a county lives it: the run suggests, a township fills in its 身份核对
list, `screening feedback import` takes it back, and the next run lists the household
through the linked record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from screening import contract, ids, params
from screening.cli import main as cli
from screening.db import linkage as db_linkage
from screening.db.connect import connect
from screening.feedback import links
from screening.feedback.imports import FeedbackError
from screening.inspect import explain
from screening.linkage import suggest
from screening.pipeline.run import run_period
from screening.publish.files import identity_path, township_folders
from screening.publish.identity import ANSWER_HEADERS, SHEET_IDENTITY, pair_key
from screening.publish.layout import MIN_PRINT_POINTS
from screening.rules.facts import LINKED_NOTE
from tests.conftest import TYPOS_PER_KIND
from tests.support.common import SAMPLE_PERIODS, query
from tests.support.lists import headers_of, household_rows
from tests.support.print_size import workbook_prints

FIRST, SECOND, LAST = SAMPLE_PERIODS
PAIR = ["source", "source_key", "id_number"]
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("wide_console")


def planted(inbox: Path) -> pl.DataFrame:
    """The manifest's typos: every mistyped record (known person or absent person)."""
    manifest = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))
    return pl.DataFrame(manifest["typos"])


def suggestions(db: Path, period: str) -> pl.DataFrame:
    return query(db, f"SELECT * FROM link_suggestions WHERE period = '{period}'")


# ---------------------------------------------------------------- measured


def test_planted_typos_are_suggested_and_the_suggestions_are_right(
    typo_screened: dict[str, Path],
) -> None:
    """Recall ≥ 90 % of the mistyped records of known persons among the suggestions of
    the last period (every planted record is in its window), precision ≥ 95 % among the
    suggestions (all at or above the threshold)."""
    typos = planted(typo_screened["inbox"])
    known = typos.filter(pl.col("id_number").is_not_null())
    got = suggestions(typo_screened["db"], LAST)
    found = known.join(got, on=PAIR, how="semi")
    right = got.join(known, on=PAIR, how="semi")
    by_kind = (
        known.group_by("kind")
        .agg(pl.len())
        .join(found.group_by("kind").agg(pl.len().alias("found")), on="kind", how="left")
    )
    print(by_kind.sort("kind"), f"\nsuggestions {got.height}, right {right.height}")
    assert known.height >= 4 * TYPOS_PER_KIND
    assert set(known["kind"]) >= {"digit", "swap", "no_check", "id15"}
    assert found.height / known.height >= 0.90
    assert right.height / got.height >= 0.95
    threshold = params.load().at(LAST).linkage.suggest_probability
    assert got["match_probability"].min() >= threshold
    # Both ways a number reaches nobody: quarantined (invalid) and valid but unmatched.
    assert set(got["origin"]) == {"quarantine", "unmatched"}


def test_each_suggestion_says_in_words_how_the_number_differs(
    typo_screened: dict[str, Path],
) -> None:
    typos = planted(typo_screened["inbox"]).filter(pl.col("id_number").is_not_null())
    got = suggestions(typo_screened["db"], LAST).join(typos, on=PAIR, how="inner")
    words = {"digit": "数字不同", "swap": "颠倒", "no_check": "少了最后一位校验码",
             "id15": "15位老号码", "check": "校验码不同"}  # fmt: skip
    for kind, word in words.items():
        mine = got.filter(pl.col("kind") == kind)
        assert mine.height and mine["reasons"].str.contains(word).all(), kind
    assert got["reasons"].str.contains("姓名相同").all()


def test_quarantined_rows_keep_their_cells(typo_screened: dict[str, Path]) -> None:
    """Nothing of a row set aside is lost: every quarantined row of a file read has its
    typed cells in quarantined_rows, the failed cell null (its text is in quarantine)."""
    missing = query(
        typo_screened["db"],
        "SELECT DISTINCT q.period, q.source, q.row_number FROM quarantine q "
        "WHERE q.\"check\" NOT IN ('invalid_encoding', 'invalid_character', 'too_long', "
        "'too_many_fields') AND NOT EXISTS (SELECT 1 FROM quarantined_rows r WHERE "
        "r.period = q.period AND r.source = q.source AND r.row_number = q.row_number)",
    )
    assert missing.height == 0
    typos = planted(typo_screened["inbox"])
    listing = typos.filter(pl.col("listing")).row(0, named=True)
    row = query(
        typo_screened["db"],
        "SELECT record->>'$.name' AS name, record->>'$.out_of_pocket' AS oop, "
        "record->>'$.id_number' AS id_number, source_key FROM quarantined_rows "
        f"WHERE source = 'medical' AND row_number = {listing['row_number']} "
        f"AND period = '{listing['period']}'",
    ).row(0, named=True)
    assert row["oop"] == "30000.00" and row["id_number"] is None and row["name"]
    assert row["source_key"] == listing["source_key"]


def test_a_rerun_suggests_the_same_and_a_township_rerun_touches_only_its_own(
    typo_screened: dict[str, Path], tmp_path: Path
) -> None:
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copy2(typo_screened["db"], db)
    shutil.copytree(typo_screened["out"], out)
    before = suggestions(db, LAST).drop("run_id").sort(PAIR)
    township = before["township"][0]
    run_period(db=db, inbox=typo_screened["inbox"], out=out, period=LAST, township=township)
    assert suggestions(db, LAST).drop("run_id").sort(PAIR).equals(before)
    run_period(db=db, inbox=typo_screened["inbox"], out=out, period=LAST)
    assert suggestions(db, LAST).drop("run_id").sort(PAIR).equals(before)


def test_records_are_numbered_in_the_order_of_the_deliveries(
    typo_screened: dict[str, Path],
) -> None:
    """The model samples by record number: the numbers follow the deliveries (a unique
    key), not the order the database returns rows in, so a re-run trains the same model."""
    con = connect(typo_screened["db"], read_only=True)
    try:
        roster = db_linkage.roster_people(con, LAST).select("id_number")
        records = suggest.candidates(con, contract.load(), LAST, params.load().at(LAST), roster)
    finally:
        con.close()
    order = list(suggest.RECORD_ORDER)
    assert records.height > 0
    assert records["record"].to_list() == [str(i) for i in range(records.height)]
    assert records.select(order).equals(records.select(order).sort(order, nulls_last=True))
    assert not records.select(order).is_duplicated().any()


def test_the_list_shows_the_record_and_the_person_side_by_side(
    typo_screened: dict[str, Path],
) -> None:
    got = suggestions(typo_screened["db"], LAST)
    township = got["township"][0]
    path = identity_path(typo_screened["out"] / LAST, township, LAST)
    book = openpyxl.load_workbook(path)
    sheet = book[SHEET_IDENTITY]
    header = headers_of(sheet)
    shown = ("核对码", "数据来源", "日期", "金额", "记录姓名", "记录身份证号\n及出生日期", "户编号",
             "人口库姓名", "人口库身份证号\n出生日期、性别", "匹配概率", "依据")  # fmt: skip
    for name in (*shown, *ANSWER_HEADERS):
        assert name in header, name
    mine = got.filter(pl.col("township") == township)
    assert len(household_rows(sheet)) == mine.height
    # Printed as a 台账: a village a page, its heading naming it.
    text = {str(c) for row in sheet.iter_rows(values_only=True) for c in row if c}
    for village in mine["village"].unique().drop_nulls():
        assert any(t.startswith(f"{village}（") for t in text), village
    # ID numbers are masked wherever they appear; the answer column is a drop-down.
    for row in sheet.iter_rows(values_only=True):
        for cell in row:
            assert not (isinstance(cell, str) and ids.names_id(cell)), cell
    assert sheet.data_validations.dataValidation[0].formula1 == '"是同一人,不是"'
    for printed in workbook_prints(path):  # A4 (paper 9), readable, as the other lists
        assert printed.paper == 9 and printed.effective_points >= MIN_PRINT_POINTS, printed
    about = dict(book["说明"].iter_rows(min_row=3, values_only=True))
    assert LAST in about["期次"] and "是同一人" in about["怎样核对"]


# ---------------------------------------------------------------- the loop


def fill(path: Path, answers: dict[str, str], target: Path, checker: str = "李四") -> Path:
    """The list as a township sends it back: 核对结果 (and 核对人) filled in on the rows
    whose 记录编号 is a key of `answers`."""
    book = openpyxl.load_workbook(path)
    sheet = book[SHEET_IDENTITY]
    header = headers_of(sheet)
    key, answer = header.index("记录编号") + 1, header.index("核对结果") + 1
    for r in household_rows(sheet):
        given = answers.get(str(sheet.cell(r, key).value))
        if given:
            sheet.cell(r, answer, given)
            sheet.cell(r, answer + 1, checker)
    book.save(target)
    return target


def test_suggest_fill_in_import_and_the_next_run_lists_the_household(
    typo_inbox: Path, tmp_path: Path
) -> None:
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    run_period(db=db, inbox=typo_inbox, out=out, period=FIRST)
    listing = planted(typo_inbox).filter(pl.col("listing")).row(0, named=True)
    household = listing["household_id"]
    first = suggestions(db, FIRST)
    mine = first.filter(pl.col("source_key") == listing["source_key"])
    assert mine.height and mine["id_number"][0] == listing["id_number"]
    township = mine["township"][0]
    assert query(db, f"SELECT * FROM suspects WHERE household_id = '{household}' "
                 "AND list_contains(risk_codes, 'MEDICAL')").height == 0  # fmt: skip
    # The township confirms the planted record and says 不是 to another of its rows.
    other = first.filter(
        (pl.col("township") == township) & (pl.col("source_key") != listing["source_key"])
    ).row(0, named=True)
    names = sorted(set(query(db, "SELECT township FROM stg_roster")["township"]))
    listed = identity_path(out / FIRST, township, FIRST, township_folders(names)[township])
    returned = fill(
        listed,
        {listing["source_key"]: "是同一人", ids.mask_text(other["source_key"]): "不是"},
        tmp_path / listed.name,
    )
    result = runner.invoke(
        cli.app, ["feedback", "import", str(returned), "--period", FIRST, "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "是同一人 confirmed" in result.output
    confirmed = query(db, "SELECT * FROM confirmed_links")
    assert confirmed.select(PAIR).rows() == [("medical", listing["source_key"],
                                              listing["id_number"])]  # fmt: skip
    assert confirmed["checked_by"][0] == "李四" and confirmed["period"][0] == FIRST

    run_period(db=db, inbox=typo_inbox, out=out, period=SECOND)
    suspect = query(db, f"SELECT * FROM suspects WHERE period = '{SECOND}' "
                    f"AND household_id = '{household}'")  # fmt: skip
    assert suspect.height == 1 and "MEDICAL" in suspect["risk_codes"][0]
    evidence = query(db, f"SELECT * FROM evidence WHERE period = '{SECOND}' "
                     f"AND source_key = '{listing['source_key']}'")  # fmt: skip
    assert evidence["id_number"].to_list() == [listing["id_number"]]
    assert evidence["household_id"].to_list() == [household]
    assert LINKED_NOTE in evidence["detail"][0]
    # Neither the linked record nor the rejected pair is suggested again.
    second = suggestions(db, SECOND)
    assert second.filter(pl.col("source_key") == listing["source_key"]).height == 0
    assert second.join(pl.DataFrame([other]).select(PAIR), on=PAIR, how="semi").height == 0
    rates = query(db, f"SELECT * FROM match_rates WHERE period = '{SECOND}' "
                  "AND source = 'medical'").row(0, named=True)  # fmt: skip
    assert rates["matched_by_link"] == 1
    report = (out / SECOND / "run-report.md").read_text(encoding="utf-8")
    assert "## 身份核对 Record linkage" in report and "含人工核对关联" in report
    page = (out / SECOND / "run-report.html").read_text(encoding="utf-8")
    assert "<h3>身份核对</h3>" in page and "含人工核对关联的匹配率" in page
    con = connect(db, read_only=True)
    try:
        why = explain.explain(con, household, SECOND)
    finally:
        con.close()
    assert why.listed and why.linked["source_key"].to_list() == [listing["source_key"]]
    shown = runner.invoke(cli.app, ["explain", household, "--period", SECOND, "--db", str(db)])
    assert shown.exit_code == 0 and "经人工核对关联的记录" in shown.output
    assert listing["id_number"] not in shown.output  # masked


def test_import_refuses_what_it_cannot_use_and_keeps_the_rest(
    typo_screened: dict[str, Path], tmp_path: Path
) -> None:
    db, out = tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copy2(typo_screened["db"], db)
    shutil.copytree(typo_screened["out"], out)
    got = suggestions(db, LAST)
    township = got.group_by("township").len().sort("len", descending=True)["township"][0]
    rows = got.filter(pl.col("township") == township).sort("source_key")
    assert rows.height >= 3
    keep, bad_answer, twice = (rows.row(i, named=True) for i in range(3))
    # A second candidate for one record, as the model may give (at most 3 per record).
    others = query(
        db,
        f"SELECT id_number, household_id FROM stg_roster WHERE period = '{LAST}' "
        f"AND id_number <> '{twice['id_number']}' LIMIT 1",
    ).row(0, named=True)
    con = connect(db)
    try:
        con.execute(
            "INSERT INTO link_suggestions SELECT * REPLACE (? AS id_number, ? AS household_id, "
            "2 AS rank) FROM link_suggestions WHERE period = ? AND source = ? AND source_key = ?",
            [*others.values(), LAST, twice["source"], twice["source_key"]],
        )
        secret = con.execute("SELECT value FROM secrets WHERE name = 'list_key'").fetchall()[0][0]
    finally:
        con.close()
    path = identity_path(out / LAST, township, LAST)
    book = openpyxl.load_workbook(path)
    sheet = book[SHEET_IDENTITY]
    header = headers_of(sheet)
    col = {h: header.index(h) + 1 for h in ("核对码", "记录编号", "核对结果")}
    by_key = {str(sheet.cell(r, col["记录编号"]).value): r for r in household_rows(sheet)}
    sheet.cell(by_key[ids.mask_text(keep["source_key"])], col["核对结果"], "是同一人")
    sheet.cell(by_key[ids.mask_text(bad_answer["source_key"])], col["核对结果"], "是")
    sheet.cell(by_key[ids.mask_text(twice["source_key"])], col["核对结果"], "是同一人")
    extra = sheet.max_row + 1
    second = pair_key(secret, LAST, twice["source"], twice["source_key"], others["id_number"])
    sheet.cell(extra, col["核对码"], second)
    sheet.cell(extra, col["核对结果"], "是同一人")
    sheet.cell(extra + 1, col["核对码"], "ZZZZZZZZ")
    sheet.cell(extra + 1, col["核对结果"], "不是")
    returned = tmp_path / path.name
    book.save(returned)

    result = links.import_links(db, returned, LAST)
    assert (result.confirmed, result.rejected_pairs, result.unchanged) == (1, 0, 0)
    messages = dict(zip(result.rejects["row_number"], result.rejects["message"], strict=True))
    assert "只能填" in messages[by_key[ids.mask_text(bad_answer["source_key"])]]
    assert "两个不同的人" in messages[by_key[ids.mask_text(twice["source_key"])]]
    assert "两个不同的人" in messages[extra]
    assert "核对码不是本期" in messages[extra + 1]
    again = links.import_links(db, returned, LAST)
    assert (again.confirmed, again.unchanged, again.refused) == (0, 1, 4)
    assert query(db, "SELECT count(*) AS n FROM confirmed_links")["n"][0] == 1
    with pytest.raises(FeedbackError, match=SECOND):
        links.import_links(db, returned, SECOND)


def test_a_linked_record_the_department_sends_again_corrected_counts_once(
    typo_inbox: Path, tmp_path: Path
) -> None:
    """The link is for the record as delivered with its wrong number: when the department
    re-sends the settlement with the right number, that version is the record (counted
    once, matched by its own number), and the link no longer applies."""
    from screening import contract

    inbox, db, out = tmp_path / "inbox", tmp_path / "screening.duckdb", tmp_path / "out"
    shutil.copytree(typo_inbox, inbox)
    listing = planted(inbox).filter(pl.col("listing")).row(0, named=True)
    run_period(db=db, inbox=inbox, out=out, period=FIRST)
    first = suggestions(db, FIRST).filter(pl.col("source_key") == listing["source_key"])
    township = first["township"][0]
    names = sorted(set(query(db, "SELECT township FROM stg_roster")["township"]))
    listed = identity_path(out / FIRST, township, FIRST, township_folders(names)[township])
    returned = fill(listed, {listing["source_key"]: "是同一人"}, tmp_path / listed.name)
    assert links.import_links(db, returned, FIRST).confirmed == 1
    # The department re-sends the settlement in its next file, with the right number.
    manifest = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))
    path = inbox / SECOND / manifest["files"][SECOND]["medical"]
    assert path.suffix == ".xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    lookup = contract.load()["medical"].header_lookup()

    def keys_of(row: int) -> list[str | None]:
        return [lookup.get(contract.fold_header(str(c.value or ""))) for c in sheet[row]]

    top = next(r for r in range(1, 11) if "settlement_id" in keys_of(r))
    keys = keys_of(top)
    record = query(db, "SELECT * FROM quarantined_rows WHERE source = 'medical' AND "
                   f"source_key = '{listing['source_key']}'")["record"][0]  # fmt: skip
    values = {**json.loads(record), "id_number": listing["id_number"]}
    sheet.append([values.get(k) if k else None for k in keys])
    book.save(path)

    run_period(db=db, inbox=inbox, out=out, period=SECOND)
    evidence = query(db, f"SELECT * FROM evidence WHERE period = '{SECOND}' "
                     f"AND source_key = '{listing['source_key']}'")  # fmt: skip
    assert evidence.height == 1 and evidence["id_number"][0] == listing["id_number"]
    assert LINKED_NOTE not in evidence["detail"][0]
    # The household's hospital costs are its records' sum, this one counted once.
    household = listing["household_id"]
    oop = query(db, f"SELECT medical_oop FROM suspects WHERE period = '{SECOND}' "
                f"AND household_id = '{household}'")["medical_oop"][0]  # fmt: skip
    cited = query(
        db,
        f"SELECT sum(amount) AS s FROM evidence WHERE period = '{SECOND}' "
        f"AND household_id = '{household}' AND risk_code = 'MEDICAL'",
    )["s"][0]
    assert oop == cited and oop >= 30000
