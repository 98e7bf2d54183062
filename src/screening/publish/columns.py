"""What every list is made of, for each of its writers (csv, xlsx, 说明 sheet).

The output tables' columns, types and 中文表头 come from schemas/tables/; this module adds
what the lists carry beyond them: the 核对码 beside the 户编号, the three columns a township
fills in and sends back, the run a publication belongs to (`PublishMeta`), and the two
rules every cell meant for people follows: ID numbers masked when asked, and text that a
spreadsheet would run as a formula defused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field

import polars as pl

from screening import ids, tables
from screening.params import ResolvedParams
from screening.vocab import DECISIONS

# The output tables' columns, types and 中文表头 (schemas/tables/).
SUSPECTS_SCHEMA = tables.schema("suspects")
EVIDENCE_SCHEMA = tables.schema("evidence")
MEMBERS_SCHEMA = tables.schema("members")
CANDIDATES_SCHEMA = tables.schema("removal_candidates")
SUSPECT_HEADERS: dict[str, str] = tables.table("suspects").headers
CANDIDATE_HEADERS: dict[str, str] = tables.table("removal_candidates").headers
# A row's 核对码: how an import finds the household when its 户编号 was masked
# (--mask-ids). Derived from the 户编号 with the database's secret, so it tells nothing
# about the person; a letter first and no 0/O/1/I, so Excel keeps it as typed text.
LIST_KEY = "list_key"
# The sheet of every published workbook that says what it is (the feedback import reads
# it to tell which list a returned file is).
SHEET_ABOUT = "说明"
LIST_KEY_HEADER = "核对码"
_KEY_FIRST = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_KEY_REST = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_KEY_LENGTH = 8
# The 防贫保预估 column: on the lists only while the estimate is on (parameters
# relief_estimate.enabled); suspects.parquet and the database always carry it.
RELIEF_COLUMN = "relief_estimate"
# The three columns a township fills in and sends back (feedback/imports.py reads them).
FEEDBACK_HEADERS = ("核实结果", "核实日期", "备注")
FEEDBACK_RESULTS = DECISIONS
# The same on a 风险消除候选 list: 同意消除 / 暂不消除, the date, a note.
REMOVAL_HEADERS = ("消除意见", "意见日期", "备注")
# A verification is dated in the listed month or within the two months after it: the
# county's deadline for 入户核实, 评议, 公示 and 审核 (about 20 working days) with room.
VERIFICATION_MONTHS = 3
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START_RE = r"^[=+\-@\t\r]"


@dataclass
class PublishMeta:
    """What a publication says about its run, beside the rows themselves."""

    period: str  # YYYY-MM
    run_id: str
    params: ResolvedParams
    sources: dict[str, str] = field(default_factory=dict)  # source key → loaded/missing/…
    mask_ids: bool = False
    # Every township in the roster: one with no listed household still gets its (empty) list.
    all_townships: list[str] | None = None
    # Source key → what was used instead of this period's file, or how a held file came to
    # be used (`delivery_note`): said on every list's 说明 sheet.
    delivery_notes: dict[str, str] = field(default_factory=dict)
    demo: bool = False  # made from the bundled synthetic sample: the lists say so
    # The database's secret for the 核对码 column (db_runs.list_key_secret); None: no column.
    list_key_secret: str | None = None
    made: dt.date | None = None  # the day the lists are made (生成日期), when known


def verification_window(period: str) -> tuple[dt.date, dt.date]:
    """The dates a township's answer on the period's lists may carry: the first day of the
    period to the last day of the second month after it."""
    year, month = (int(x) for x in period.split("-"))
    first = dt.date(year, month, 1)
    after = month - 1 + VERIFICATION_MONTHS
    end = dt.date(year + after // 12, after % 12 + 1, 1) - dt.timedelta(days=1)
    return first, end


def keyed(meta: PublishMeta) -> bool:
    """The printed lists carry the 核对码 only when the 户编号 may be masked: the import
    then finds the household by it (the csv always carries it)."""
    return meta.mask_ids and meta.list_key_secret is not None


def relief_shown(meta: PublishMeta) -> bool:
    """Whether the lists show the 防贫保预估 column."""
    return bool(meta.params.relief_estimate.enabled)


def list_key(secret: str, period: str, household_id: str) -> str:
    """The 核对码 of a household on the lists of `period` (the same on every re-run)."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{period}|{household_id}".encode(), hashlib.sha256
    ).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = [_KEY_FIRST[number % len(_KEY_FIRST)]]
    number //= len(_KEY_FIRST)
    for _ in range(_KEY_LENGTH - 1):
        chars.append(_KEY_REST[number % len(_KEY_REST)])
        number //= len(_KEY_REST)
    return "".join(chars)


def with_list_keys(frame: pl.DataFrame, meta: PublishMeta) -> pl.DataFrame:
    """`frame` with its 核对码 right after household_id (unchanged without a secret)."""
    if meta.list_key_secret is None:
        return frame
    secret, period = meta.list_key_secret, meta.period
    keys = pl.Series(
        LIST_KEY, [list_key(secret, period, h) for h in frame["household_id"]], pl.String
    )
    at = frame.columns.index("household_id") + 1
    return frame.clone().insert_column(at, keys)  # insert_column changes the frame in place


def mask_frame(frame: pl.DataFrame, id_column: str) -> pl.DataFrame:
    """`id_column` masked, and any ID number found inside other text too (record keys of
    civil and traffic records, the 20-character disability certificate, a 户编号 that is
    the head's ID number)."""
    col = pl.col(id_column)
    others = [c for c, t in frame.schema.items() if t == pl.String() and c != id_column]
    return frame.with_columns(
        pl.when(col.is_not_null()).then(ids.mask_expr(col)).otherwise(col).alias(id_column),
        *[ids.mask_text_expr(pl.col(c)) for c in others],
    )


def defuse_expr(name: str) -> pl.Expr:
    """Column `name` with a quote before any text a spreadsheet would run as a formula."""
    col = pl.col(name)
    quoted = pl.concat_str([pl.lit("'"), col])
    return pl.when(col.str.contains(_FORMULA_START_RE)).then(quoted).otherwise(col).alias(name)
