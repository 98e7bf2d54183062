"""Import a returned 身份核对 list: people's answers on suggested links.

A township sends back its 身份核对 list (publish/identity.py) with 核对结果 filled in —
是同一人 (the department record is this roster person's) or 不是 — and perhaps 核对人 and
备注. Each row is found again by its 核对码 among the period's stored suggestions
(`link_suggestions`); a 核对码 that is not on the period's lists, an answer that is none
of the two, or two rows naming two different people for one record are rejected row by
row, with the reason, and the good rows kept.

是同一人 goes into `confirmed_links` (one link per record: it replaces the record's earlier
link, and a rejection of the same pair); from the next run on the as-of read gives the
record that person's ID number (db.linkage.linked_rows_sql) and its evidence says
经人工核对关联. 不是 goes into `rejected_links`: the pair is never suggested again (and a
link confirmed before for that very pair is withdrawn). A 是同一人 for a record already
linked to someone else is rejected: answer 不是 on that pair first. Rows left blank are not
answers (the pair stays on next month's list). Importing the same file twice changes
nothing.

The file must be the period's list: the period its name and its 说明 sheet name must be
`--period` (feedback.imports.check_file_period).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from screening import contract, ids, tables
from screening.db import linkage as db_linkage
from screening.db import lock
from screening.db import runs as db_runs
from screening.db.connect import connect, transaction
from screening.feedback.imports import FeedbackError, about_sheet, check_file_period, read_feedback
from screening.ingest import normalise
from screening.ingest.deliveries import os_user
from screening.ingest.results import file_sha256
from screening.periods import check_period
from screening.publish.files import IDENTITY_PREFIX
from screening.publish.identity import ANSWERS, NOT_SAME, SAME, SHEET_IDENTITY, pair_key

SPEC = contract.feedback("identity_feedback")
REJECTS_SCHEMA = pl.Schema(
    {"row_number": pl.Int64, "list_key": pl.String, "raw_value": pl.String, "message": pl.String}
)
CONFIRMED_SCHEMA = tables.schema("confirmed_links")
REJECTED_SCHEMA = tables.schema("rejected_links")


@dataclass
class LinkImportResult:
    period: str
    file: str
    sha256: str
    rows_read: int
    empty_rows: int  # no answer given: not decisions
    confirmed: int  # 是同一人 stored now
    rejected_pairs: int  # 不是 stored now
    unchanged: int  # answers already stored (the same file again, or the same answer)
    rejects: pl.DataFrame = field(repr=False)  # REJECTS_SCHEMA, one row per refused row

    @property
    def refused(self) -> int:
        return self.rejects.height


def is_identity_list(path: Path) -> bool:
    """Whether `path` is a 身份核对 list: its name says so, or its workbook has the sheet."""
    if path.name.startswith(IDENTITY_PREFIX):
        return True
    if path.suffix.lower() != ".xlsx" or not path.is_file():
        return False
    import fastexcel

    try:
        return SHEET_IDENTITY in fastexcel.read_excel(str(path)).sheet_names
    except BaseException as exc:  # fastexcel's own errors or a panic: the reader says more
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        return False


def _rows(path: Path) -> pl.DataFrame:
    raw = read_feedback(path, SPEC)
    frame = raw.frame

    def cell(key: str) -> pl.Expr:
        return normalise.text(pl.col(key)) if key in frame.columns else pl.lit(None, pl.String)

    rows = frame.select(
        pl.col("row_number").cast(pl.Int64),
        cell("list_key").str.normalize("NFKC").str.to_uppercase().alias("list_key"),
        cell("answer").alias("answer_raw"),
        normalise.enum(cell("answer"), ANSWERS).alias("answer"),
        cell("checked_by").alias("checked_by"),
        cell("note").alias("note"),
    )
    # A printed list's village headings, subtotals and signature lines carry neither a
    # 核对码 nor an answer: they are not rows of the list.
    rows = rows.filter(pl.col("list_key").is_not_null() | pl.col("answer_raw").is_not_null())
    return rows


def import_links(db: Path, path: Path, period: str, *, wait: float = 0.0) -> LinkImportResult:
    """Import one returned 身份核对 list of `period` into the database `db`."""
    check_period(period)
    rows = _rows(path)
    about = about_sheet(path)
    check_file_period(rows.with_columns(period=pl.lit(None, pl.String)), period, path, about)
    answered = rows.filter(pl.col("answer_raw").is_not_null())
    if rows.height and not answered.height:
        raise FeedbackError(f"{path.name}: 核对结果一列都未填写 no answer filled in")
    sha = file_sha256(path)
    if not db.is_file():
        raise FeedbackError(f"数据库不存在 database not found: {db} (run `screening run` first)")
    now = dt.datetime.now().replace(microsecond=0)
    with lock.hold(db):
        con = connect(db, wait=wait)
        try:
            suggested = db_linkage.suggestions(con, period)
            if not suggested.height:
                raise FeedbackError(
                    f"{period} 期没有身份核对名单 no 身份核对 list was made for {period}"
                )
            secret = db_runs.list_key_secret(con)
            keys = [
                pair_key(secret, period, s, k, i)
                for s, k, i in suggested.select("source", "source_key", "id_number").iter_rows()
            ]
            suggested = suggested.select(
                pl.Series("list_key", keys, pl.String), "source", "source_key", "id_number",
                "household_id", "name", "record_name", "record_id_number",
            )  # fmt: skip
            good, rejects = _check(answered, suggested)
            confirmed_elsewhere = db_linkage.confirmed_of(
                con, good.filter(pl.col("answer") == SAME)
            )
            good, taken = _already_linked(good, confirmed_elsewhere)
            rejects = pl.concat([rejects, taken]).sort("row_number")
            fresh = good.join(
                db_linkage.answered(con),
                on=["source", "source_key", "id_number", "answer", "checked_by", "note"],
                how="anti",
                nulls_equal=True,
            )
            stamp = {"period": period, "file": path.name, "file_sha256": sha}
            confirmed = _stored(fresh.filter(pl.col("answer") == SAME), stamp, now, "confirmed")
            rejected = _stored(fresh.filter(pl.col("answer") == NOT_SAME), stamp, now, "rejected")
            with transaction(con):
                db_linkage.store_answers(
                    con, confirmed.select(CONFIRMED_SCHEMA.names()),
                    rejected.select(REJECTED_SCHEMA.names()),
                )  # fmt: skip
        finally:
            con.close()
    return LinkImportResult(
        period=period,
        file=path.name,
        sha256=sha,
        rows_read=rows.height,
        empty_rows=rows.height - answered.height,
        confirmed=confirmed.height,
        rejected_pairs=rejected.height,
        unchanged=good.height - fresh.height,
        rejects=rejects,
    )


def _reject(frame: pl.DataFrame, message: str) -> pl.DataFrame:
    return frame.select(
        "row_number", "list_key", pl.col("answer_raw").alias("raw_value"),
        pl.lit(message).alias("message"),
    ).cast(REJECTS_SCHEMA)  # fmt: skip


def _check(rows: pl.DataFrame, suggested: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The answered rows matched to their pair, and the rows refused with their reason."""
    matched = rows.join(suggested, on="list_key", how="left")
    unknown = matched.filter(pl.col("source").is_null())
    bad_answer = matched.filter(pl.col("source").is_not_null() & pl.col("answer").is_null())
    good = matched.filter(pl.col("source").is_not_null() & pl.col("answer").is_not_null())
    # One answer per pair: a pair twice in the file must say the same thing.
    pair = ["source", "source_key", "id_number"]
    split = good.group_by(pair).agg(pl.col("answer").n_unique().alias("n")).filter(pl.col("n") > 1)
    contradicting = good.join(split, on=pair, how="semi")
    good = good.join(split, on=pair, how="anti").unique(pair, keep="first", maintain_order=True)
    # One person per record.
    same = good.filter(pl.col("answer") == SAME)
    several = (
        same.group_by("source", "source_key")
        .agg(pl.col("id_number").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    two_people = same.join(several, on=["source", "source_key"], how="semi")
    good = good.join(two_people.select("row_number"), on="row_number", how="anti")
    rejects = pl.concat(
        [
            _reject(unknown, "核对码不是本期身份核对名单中的（请勿修改核对码）"
                    " 核对码 not on this period's 身份核对 lists"),
            _reject(bad_answer, f"核对结果只能填「{SAME}」或「{NOT_SAME}」 answer must be "
                    f"{SAME} or {NOT_SAME}"),
            _reject(contradicting, "同一对记录与人员在文件中有两个不同的核对结果 the same pair "
                    "is answered twice, differently"),
            _reject(two_people, "同一条记录被确认属于两个不同的人，只能确认属于一人 one record "
                    "confirmed for two people"),
        ]
    )  # fmt: skip
    return good, rejects


def _already_linked(
    good: pl.DataFrame, confirmed: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A 是同一人 for a record already linked to someone else is refused."""
    other = confirmed.rename({"id_number": "linked_to"})
    clash = (
        good.filter(pl.col("answer") == SAME)
        .join(other, on=["source", "source_key"], how="inner")
        .filter(pl.col("linked_to") != pl.col("id_number"))
    )
    messages = [
        f"该记录此前已确认属于另一人（身份证号 {ids.mask(t)}），如需更改，"
        f"请先在那一行填「{NOT_SAME}」 the record is already linked to someone else"
        for t in clash["linked_to"]
    ]
    refused = clash.select(
        "row_number", "list_key", pl.col("answer_raw").alias("raw_value"),
        pl.Series("message", messages, pl.String),
    ).cast(REJECTS_SCHEMA)  # fmt: skip
    return good.join(clash.select("row_number"), on="row_number", how="anti"), refused


def _stored(
    frame: pl.DataFrame, stamp: dict[str, str], now: dt.datetime, kind: str
) -> pl.DataFrame:
    user = os_user()
    return frame.with_columns(
        **{k: pl.lit(v) for k, v in stamp.items()},
        **{f"{kind}_at": pl.lit(now), f"{kind}_by": pl.lit(user)},
    )
