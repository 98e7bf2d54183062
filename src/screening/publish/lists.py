"""Publish a screening run: county-wide parquet files and one list per township.

    <out>/<YYYY-MM>/suspects.parquet, evidence.parquet           (all townships)
    <out>/<YYYY-MM>/<township>/疑似监测对象_<township>_<YYYYMM>.xlsx / .csv

Everything a run writes is first written under temporary names in the target folders and
only renamed into place once every file is complete, so a failed run leaves the previous
publication as it was, and a reader never opens half a file. The files hold personal data:
files are 0600, folders 0700, and ID numbers can be masked in the files meant for people.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from screening import contract, ids, tables
from screening.params import ResolvedParams
from screening.periods import check_period, period_words
from screening.rules import RISK_LABELS, RISKS, risks_fed_by
from screening.vocab import COLOURS

FILE_MODE = 0o600
DIR_MODE = 0o700
SUSPECTS_FILE = "suspects.parquet"
EVIDENCE_FILE = "evidence.parquet"
LIST_PREFIX = "疑似监测对象"

# The output tables' columns, types and 中文表头 (schemas/tables/).
SUSPECTS_SCHEMA = tables.schema("suspects")
EVIDENCE_SCHEMA = tables.schema("evidence")
MEMBERS_SCHEMA = tables.schema("members")
CANDIDATES_SCHEMA = tables.schema("removal_candidates")
SUSPECT_HEADERS: dict[str, str] = tables.table("suspects").headers
# A row's 核对码: how an import finds the household when its 户编号 was masked
# (--mask-ids). Derived from the 户编号 with the database's secret, so it tells nothing
# about the person; a letter first and no 0/O/1/I, so Excel keeps it as typed text.
LIST_KEY = "list_key"
LIST_KEY_HEADER = "核对码"
_KEY_FIRST = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_KEY_REST = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_KEY_LENGTH = 8


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


# The three columns a township fills in and sends back (feedback.py reads them).
FEEDBACK_HEADERS = ("核实结果", "核实日期", "备注")
FEEDBACK_RESULTS = ("确认纳入", "不予纳入", "待核实")
CANDIDATES_FILE = "removal_candidates.parquet"
CANDIDATES_PREFIX = "风险消除候选"
CANDIDATE_HEADERS: dict[str, str] = tables.table("removal_candidates").headers
# A header-only file is a delivery (nothing new this month); these are not.
ABSENT = ("missing", "rejected", "held", "withdrawn")
SOURCE_STATUS_LABELS: dict[str, str] = {
    "loaded": "已读入",
    "missing": "本期未收到",
    "rejected": "文件被拒收（无法读取或缺少必需列）",
    "empty": "已收到，但没有记录",
    "kept": "本期文件未能使用，沿用此前已入库的本期数据",
    "held": "文件未通过完整性检查，暂扣未用",
    "withdrawn": "已撤回",
}
# Not screening rules (a long list of holidays; limits on what is read; the checks of the
# deliveries): the township's 说明 sheet leaves them out; the run report shows them.
_NOT_ON_LISTS = ("public_holidays", "ingest_limits", "gates")
# Soft fills that stay readable in black-and-white print (the cell text names the colour too).
COLOUR_FILLS: dict[str, str] = {"红": "#FFC7CE", "黄": "#FFEB9C", "蓝": "#BDD7EE"}
COLOUR_FONTS: dict[str, str] = {"红": "#9C0006", "黄": "#7F4F00", "蓝": "#1F4E79"}
GRADE_LABELS: dict[int, str] = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}

SHEET_HOUSEHOLDS = "疑似监测户"
SHEET_DETAILS = "家庭成员及风险依据"
SHEET_ABOUT = "说明"
SHEET_CANDIDATES = "风险消除候选"

# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START_RE = r"^[=+\-@\t\r]"
_UNSAFE_FILE_CHARS = frozenset('<>:"/\\|?*')
_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_MAX_NAME_CHARS = 40


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


# ---------------------------------------------------------------- safe, atomic files


def ensure_dir(path: Path) -> Path:
    """Create `path` (0700) and its missing parents; an existing folder is made 0700 too."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def period_dir(out: Path, period: str) -> Path:
    """`<out>/<YYYY-MM>`, refusing anything that is not a real period (it becomes a path)."""
    check_period(period)
    if not out.exists():
        ensure_dir(out)
    return ensure_dir(out / period)


class StagedFiles:
    """Files written under temporary names, renamed into place together by `commit`.

    On an exception inside the `with` block every temporary file is removed and the
    files already in place are untouched.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()

    def add(self, path: Path, write: Callable[[Path], object]) -> None:
        """Run `write(temp_path)`; the temp file sits beside `path` so the rename is atomic."""
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        self._pending.append((tmp, path))
        write(tmp)
        os.chmod(tmp, FILE_MODE)  # a writer may have re-created the file with its own mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())

    def commit(self) -> list[Path]:
        done = []
        for tmp, path in self._pending:
            os.replace(tmp, path)
            done.append(path)
        self._pending = []
        for folder in {p.parent for p in done}:
            _fsync_dir(folder)
        return done

    def discard(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending = []


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    with StagedFiles() as staged:
        staged.add(path, write)
        return staged.commit()[0]


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def safe_name(name: str) -> str:
    """A folder/file-name part for a township name that comes from data.

    The name is kept when it is already safe on Linux and Windows; otherwise separators,
    control and format characters are replaced, and a short hash of the real name is
    appended so two different names never share a folder. The real name stays in the files.
    """
    cleaned = _cleaned(name)
    if cleaned == name and 0 < len(cleaned) <= _MAX_NAME_CHARS:
        return name
    return _hashed(name, cleaned)


def _cleaned(name: str) -> str:
    nfc = unicodedata.normalize("NFC", name)
    cleaned = "".join("_" if _unsafe_char(c) else c for c in nfc)
    cleaned = cleaned.replace("..", "_").strip(" .")
    if cleaned.split(".")[0].upper() in _RESERVED_NAMES:
        cleaned = "_" + cleaned
    return cleaned


def _hashed(name: str, cleaned: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned[:_MAX_NAME_CHARS] or '乡镇'}_{digest}"


def folder_key(folder: str) -> str:
    """Folder names that one file system may take for the same folder: Windows and macOS
    ignore case, and a full-width Ｃ is easily typed for a C."""
    return unicodedata.normalize("NFKC", folder).casefold()


def township_folders(names: Iterable[str]) -> dict[str, str]:
    """Each township's folder name. It is `safe_name`, except for names that differ only
    in case or in full-/half-width characters (`Chengguan`, `CHENGGUAN`, `Ｃhengguan`):
    each of them gets a short hash of its own name appended, so none takes the others'
    folder and none depends on which of them came first."""
    unique = sorted(set(names))
    by_key: dict[str, list[str]] = {}
    for name in unique:
        by_key.setdefault(folder_key(safe_name(name)), []).append(name)
    folders = {}
    for group in by_key.values():
        for name in group:
            folders[name] = safe_name(name) if len(group) == 1 else _hashed(name, _cleaned(name))
    _check_unique_folders(folders)
    return folders


def _unsafe_char(c: str) -> bool:
    # Category C covers control, format (e.g. right-to-left override), surrogate, unassigned.
    return c in _UNSAFE_FILE_CHARS or (unicodedata.category(c)[0] in "CZ" and c != " ")


def township_paths(
    period_path: Path, township: str, period: str, folder_name: str | None = None
) -> tuple[Path, Path]:
    """The xlsx and csv paths of one township's list, proven to lie inside `period_path`;
    the folder is `folder_name` (from `township_folders`), else `safe_name(township)`."""
    folder = period_path / (folder_name or safe_name(township))
    if folder.resolve().parent != period_path.resolve():
        raise ValueError("township folder would leave the output folder")
    stem = f"{LIST_PREFIX}_{folder.name}_{period.replace('-', '')}"
    return folder / f"{stem}.xlsx", folder / f"{stem}.csv"


def candidate_paths(
    period_path: Path, township: str, period: str, folder_name: str | None = None
) -> tuple[Path, Path]:
    """The xlsx and csv of one township's 风险消除候选 list, beside its 疑似监测对象 list."""
    xlsx, _ = township_paths(period_path, township, period, folder_name)
    stem = f"{CANDIDATES_PREFIX}_{xlsx.parent.name}_{period.replace('-', '')}"
    return xlsx.parent / f"{stem}.xlsx", xlsx.parent / f"{stem}.csv"


# ---------------------------------------------------------------- publish


def publish(
    out: Path,
    suspects: pl.DataFrame,
    evidence: pl.DataFrame,
    members: pl.DataFrame,
    meta: PublishMeta,
    townships: list[str] | None = None,
    candidates: pl.DataFrame | None = None,
) -> list[Path]:
    """Write a run's files; with `townships`, re-publish only those townships.

    `candidates` (followup.CANDIDATES_SCHEMA) is the second list, 风险消除候选: written per
    township only where the township has any (its 疑似监测对象 list says how many).

    `suspects` must be in list order (townships ascending). A re-publish replaces those
    townships' rows in the existing parquet files and keeps the others, giving the same
    rows in the same order as a full run. Returns the paths written.
    """
    target = period_dir(out, meta.period)
    suspects = _conform(suspects, SUSPECTS_SCHEMA, "suspects")
    evidence = _conform(evidence, EVIDENCE_SCHEMA, "evidence")
    members = _conform(members, MEMBERS_SCHEMA, "members")
    _check_suspects(suspects, meta.period)
    candidates = _conform(
        candidates if candidates is not None else pl.DataFrame(schema=CANDIDATES_SCHEMA),
        CANDIDATES_SCHEMA,
        "candidates",
    )
    if townships is None:
        names = sorted(set(meta.all_townships or []) | set(suspects["township"].to_list()))
        all_suspects, all_evidence = suspects, _order_evidence(suspects, evidence)
        all_candidates = candidates
    else:
        names = sorted(set(townships))
        _check_known(names, suspects, meta.all_townships)
        all_suspects, all_evidence = _merge_townships(target, suspects, evidence, names)
        _check_suspects(all_suspects, meta.period)
        old = _read_published(target / CANDIDATES_FILE, CANDIDATES_SCHEMA)
        all_candidates = pl.concat([old.filter(~pl.col("township").is_in(names)), candidates]).sort(
            "township", "village", "household_id"
        )
    folders = township_folders([*names, *(meta.all_townships or [])])
    with StagedFiles() as staged:
        staged.add(target / SUSPECTS_FILE, all_suspects.write_parquet)
        staged.add(target / EVIDENCE_FILE, all_evidence.write_parquet)
        staged.add(target / CANDIDATES_FILE, all_candidates.write_parquet)
        for name in names:
            own = all_candidates.filter(pl.col("township") == name)
            _stage_township(
                staged,
                target,
                name,
                all_suspects,
                all_evidence,
                members,
                meta,
                own.height,
                folders,
            )
            if own.height:
                _stage_candidates(staged, target, name, own, meta, folders[name])
        written = staged.commit()
    if townships is None:
        _remove_stale(target, meta.period, keep=set(written))
    else:  # a township whose candidates are gone keeps no old candidates list
        for name in names:
            for path in candidate_paths(target, name, meta.period, folders[name]):
                if path not in written and path.is_file():
                    path.unlink()
    return written


def _conform(frame: pl.DataFrame, schema: pl.Schema, what: str) -> pl.DataFrame:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s): {', '.join(missing)}")
    return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])


def _check_suspects(suspects: pl.DataFrame, period: str) -> None:
    if suspects["township"].null_count():
        raise ValueError("suspects has rows without a township")
    if not suspects["township"].is_sorted():
        raise ValueError("suspects must be in list order: townships ascending")
    if suspects["household_id"].is_duplicated().any():
        raise ValueError("suspects lists a household more than once")
    others = suspects.filter(pl.col("period") != period)
    if others.height:
        raise ValueError(f"suspects holds rows of another period than {period}")


def _check_known(names: list[str], suspects: pl.DataFrame, known: list[str] | None) -> None:
    # A mistyped --township would otherwise publish an empty list under a made-up name.
    if known is None:
        return
    unknown = set(names) - set(known) - set(suspects["township"].to_list())
    if unknown:
        raise ValueError(f"unknown township(s): {', '.join(sorted(unknown))}")


def _order_evidence(suspects: pl.DataFrame, evidence: pl.DataFrame) -> pl.DataFrame:
    """Evidence of listed households, in list order, then by risk point and record.

    A canonical order (instead of whatever order the rules produced) is what lets a
    one-township re-publish give the same file as a full run.
    """
    position = suspects.select("household_id").with_row_index("_hh")
    risk_rank = pl.col("risk_code").replace_strict(
        list(RISK_LABELS), list(range(len(RISK_LABELS))), default=len(RISK_LABELS)
    )
    keys = ["_hh", "_risk", "risk_code", "rule_date", "source", "source_key", "id_number"]
    return (
        evidence.join(position, on="household_id", how="inner")
        .with_columns(risk_rank.alias("_risk"))
        .sort(keys, nulls_last=True, maintain_order=True)
        .select(EVIDENCE_SCHEMA.names())
    )


def _merge_townships(
    target: Path, suspects: pl.DataFrame, evidence: pl.DataFrame, names: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Published rows of other townships + these townships' new rows, in full-run order."""
    fresh = suspects.filter(pl.col("township").is_in(names))
    old_suspects = _read_published(target / SUSPECTS_FILE, SUSPECTS_SCHEMA)
    old_evidence = _read_published(target / EVIDENCE_FILE, EVIDENCE_SCHEMA)
    replaced = old_suspects.filter(pl.col("township").is_in(names))["household_id"]
    kept = old_suspects.filter(~pl.col("township").is_in(names))
    # Townships are contiguous blocks in list order: a stable sort by township puts the new
    # block where a full run would have put it and keeps every block's own order.
    merged = pl.concat([kept, fresh]).sort("township", maintain_order=True)
    stale_ids = pl.concat([replaced, fresh["household_id"]])
    kept_evidence = old_evidence.filter(~pl.col("household_id").is_in(stale_ids.implode()))
    fresh_evidence = evidence.join(fresh.select("household_id"), on="household_id", how="semi")
    return merged, _order_evidence(merged, pl.concat([kept_evidence, fresh_evidence]))


def _read_published(path: Path, schema: pl.Schema) -> pl.DataFrame:
    if not path.exists():
        return pl.DataFrame(schema=schema)
    return _conform(pl.read_parquet(path), schema, path.name)


def _check_unique_folders(folders: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for name, folder in folders.items():
        key = folder_key(folder)
        if key in seen:
            raise ValueError(f"townships {seen[key]!r} and {name!r} would share a folder")
        seen[key] = name


def _remove_stale(target: Path, period: str, keep: set[Path]) -> None:
    """Drop list files of townships no longer listed (e.g. a re-run after a correction).

    Only files this module names are touched; a folder they leave empty is removed.
    """
    prefixes = f"(?:{LIST_PREFIX}|{CANDIDATES_PREFIX})"
    ours = re.compile(rf"^\.?{prefixes}_.*_{period.replace('-', '')}\.(xlsx|csv)(\..*\.tmp)?$")
    for folder in sorted(p for p in target.iterdir() if p.is_dir() and not p.is_symlink()):
        stale = [
            f for f in folder.iterdir() if f not in keep and ours.match(f.name) and f.is_file()
        ]
        for file in stale:
            file.unlink()
        if stale and not any(folder.iterdir()):
            folder.rmdir()


def _stage_township(
    staged: StagedFiles,
    target: Path,
    township: str,
    suspects: pl.DataFrame,
    evidence: pl.DataFrame,
    members: pl.DataFrame,
    meta: PublishMeta,
    candidates: int = 0,
    folders: Mapping[str, str] | None = None,
) -> None:
    households = suspects.filter(pl.col("township") == township)
    listed = households.select("household_id")
    own_evidence = evidence.join(listed, on="household_id", how="semi")
    own_members = members.join(listed, on="household_id", how="semi")
    details = _detail_rows(households, own_evidence, own_members)
    folders = folders or township_folders([township])
    xlsx, csv = township_paths(target, township, meta.period, folders[township])
    ensure_dir(xlsx.parent)
    staged.add(
        xlsx,
        lambda tmp: _write_workbook(tmp, township, households, details, meta, candidates, folders),
    )
    staged.add(csv, lambda tmp: _write_csv(tmp, households, meta))


def _stage_candidates(
    staged: StagedFiles,
    target: Path,
    township: str,
    candidates: pl.DataFrame,
    meta: PublishMeta,
    folder_name: str | None = None,
) -> None:
    xlsx, csv = candidate_paths(target, township, meta.period, folder_name)
    staged.add(xlsx, lambda tmp: _write_candidates_workbook(tmp, township, candidates, meta))
    staged.add(csv, lambda tmp: _write_candidates_csv(tmp, candidates, meta.mask_ids))


# ---------------------------------------------------------------- csv


def _write_csv(path: Path, households: pl.DataFrame, meta: PublishMeta) -> None:
    """The contract columns with Chinese headers; UTF-8 with BOM so Excel reads the Chinese.

    The run id is left out: re-running a period on the same inputs must give the same
    bytes, so a township can tell at a glance that nothing changed (the run id is on the
    xlsx 说明 sheet and in suspects.parquet)."""
    frame = with_list_keys(households.with_columns(pl.col("risk_codes").list.join(";")), meta)
    blanks = [pl.lit(None, pl.String).alias(h) for h in FEEDBACK_HEADERS]
    headers = {**SUSPECT_HEADERS, LIST_KEY: LIST_KEY_HEADER}
    _write_people_csv(path, frame, headers, meta.mask_ids, blanks)


def _write_candidates_csv(path: Path, candidates: pl.DataFrame, mask_ids: bool) -> None:
    _write_people_csv(path, candidates, CANDIDATE_HEADERS, mask_ids)


def _write_people_csv(
    path: Path,
    frame: pl.DataFrame,
    headers: Mapping[str, str],
    mask_ids: bool,
    extra: Sequence[pl.Expr] = (),
) -> None:
    """A list for people: without the run id, IDs masked if asked, formula-looking text
    defused, Chinese headers, `extra` columns after, UTF-8 with BOM."""
    frame = frame.drop("run_id")
    if mask_ids:
        frame = _mask_ids(frame, "head_id_number")
    text = [c for c, t in frame.schema.items() if t == pl.String()]
    frame = frame.with_columns([_defuse_expr(c) for c in text])
    frame = frame.rename(dict(headers), strict=False).with_columns(extra)
    frame.write_csv(path, include_bom=True, line_terminator="\r\n")


def _defuse_expr(name: str) -> pl.Expr:
    col = pl.col(name)
    quoted = pl.concat_str([pl.lit("'"), col])
    return pl.when(col.str.contains(_FORMULA_START_RE)).then(quoted).otherwise(col).alias(name)


def _mask_ids(frame: pl.DataFrame, id_column: str) -> pl.DataFrame:
    """`id_column` masked, and any ID number found inside other text too (record keys of
    civil and traffic records, the 20-character disability certificate, a 户编号 that is
    the head's ID number)."""
    col = pl.col(id_column)
    others = [c for c, t in frame.schema.items() if t == pl.String() and c != id_column]
    return frame.with_columns(
        pl.when(col.is_not_null()).then(ids.mask_expr(col)).otherwise(col).alias(id_column),
        *[ids.mask_text_expr(pl.col(c)) for c in others],
    )


# ---------------------------------------------------------------- details sheet rows


def _detail_rows(
    households: pl.DataFrame, evidence: pl.DataFrame, members: pl.DataFrame
) -> pl.DataFrame:
    """Members of each listed household with the evidence about each of them.

    A member without evidence gets one row with empty evidence columns; evidence about no
    roster member of the household (or about the whole household) follows its members.
    """
    position = households.select("household_id").with_row_index("_hh")
    people = (
        members.join(position, on="household_id", how="inner")
        # Head first, the others in the order the roster gives them.
        .sort(["_hh", "is_head"], descending=[False, True], nulls_last=True, maintain_order=True)
        .with_row_index("_member")
    )
    records = _order_evidence(households, evidence).with_row_index("_record")
    record_cols = ["risk_code", "source", "source_key", "rule_date", "amount", "detail"]
    keys = ["household_id", "id_number"]
    with_records = people.join(
        records.select([*keys, "_record", *record_cols]), on=keys, how="left"
    )
    orphans = (
        records.join(people.select(keys), on=keys, how="anti")
        .join(position, on="household_id", how="inner")
        .with_columns(pl.lit(people.height, dtype=pl.UInt32).alias("_member"))
    )
    return (
        pl.concat([with_records, orphans], how="diagonal_relaxed")
        .sort(["_hh", "_member", "_record"], nulls_last=True)
        .drop("_hh", "_member", "_record")
    )


# ---------------------------------------------------------------- xlsx


@dataclass(frozen=True)
class _Col:
    header: str
    key: str
    kind: str  # text | enum | int | money | date | colour | seq
    wrap_at: int = 30  # widest a column gets; longer text wraps onto more lines


_ENUM_KEYS = (
    "household_type",
    "labour_capacity",
    "listing_status",
    "relation",
    "source",
    "last_decision",
)


def _kind_of(key: str, dtype: pl.DataType) -> str:
    if key == "colour":
        return "colour"
    if key in _ENUM_KEYS:
        return "enum"  # short category words, centred so they stand apart from the numbers
    if isinstance(dtype, pl.Decimal):  # amounts and sums of amounts
        return "money"
    if dtype == pl.Date():
        return "date"
    if dtype.is_integer():
        return "int"
    return "text"


# The sheet people print: the columns that are the same on every row (period, township,
# run) are in the page header and the 说明 sheet instead, and 风险点 says what 风险代码 says.
_SAME_ON_EVERY_ROW = ("period", "township", "run_id", "risk_codes")
_HOUSEHOLD_COLS = (
    [_Col("序号", "_seq", "seq")]
    + [
        _Col(
            SUSPECT_HEADERS[key],
            key,
            _kind_of(key, dtype),
            wrap_at=40 if key == "risk_labels" else 30,
        )
        for key, dtype in SUSPECTS_SCHEMA.items()
        if key not in _SAME_ON_EVERY_ROW
    ]
    + [_Col(header, f"_feedback_{i}", "text") for i, header in enumerate(FEEDBACK_HEADERS)]
)


def _household_cols(with_key: bool) -> list[_Col]:
    """The first sheet's columns: the 核对码 after the 户编号 when the list has one."""
    if not with_key:
        return list(_HOUSEHOLD_COLS)
    at = next(i for i, col in enumerate(_HOUSEHOLD_COLS) if col.key == "household_id") + 1
    key = _Col(LIST_KEY_HEADER, LIST_KEY, "text")
    return [*_HOUSEHOLD_COLS[:at], key, *_HOUSEHOLD_COLS[at:]]


_CANDIDATE_COLS = [_Col("序号", "_seq", "seq")] + [
    _Col(header, key, _kind_of(key, CANDIDATES_SCHEMA[key]))
    for key, header in CANDIDATE_HEADERS.items()
    if key not in ("period", "township", "run_id")
]
_DETAIL_COLS = [
    _Col("户编号", "household_id", "text"),
    _Col("姓名", "name", "text"),
    _Col("与户主关系", "relation", "enum"),
    _Col("年龄", "age", "int"),
    _Col("残疾等级", "disability_grade", "enum"),
    _Col("身份证号", "id_number", "text"),
    _Col("风险点", "risk_code", "text"),
    _Col("数据来源", "source", "enum"),
    _Col("记录编号", "source_key", "text"),
    _Col("日期", "rule_date", "date"),
    _Col("金额", "amount", "money"),
    _Col("说明", "detail", "text", wrap_at=44),
]
_MONEY_FORMAT = "#,##0.00"
_DATE_FORMAT = "yyyy-mm-dd"
_LINE_HEIGHT = 14.0  # points per line of 10-point text
_ABOUT_WIDTH = 110


def _write_workbook(
    path: Path,
    township: str,
    households: pl.DataFrame,
    details: pl.DataFrame,
    meta: PublishMeta,
    candidates: int = 0,
    folders: Mapping[str, str] | None = None,
) -> None:
    # Never let xlsxwriter guess: data text that looks like a formula, URL or number stays text.
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = Workbook(str(path), options)
    try:
        workbook.set_properties(_properties(township, meta))
        formats = _Formats(workbook)
        header = _page_header(LIST_PREFIX, township, meta)
        rows = _household_cells(with_list_keys(households, meta), meta.mask_ids)
        cols = _household_cols(meta.list_key_secret is not None)
        sheet = workbook.add_worksheet(SHEET_HOUSEHOLDS)
        _write_table(sheet, cols, rows, formats, header)
        result_col = len(cols) - len(FEEDBACK_HEADERS)
        if rows:  # a drop-down, so a typed result is one the import knows
            sheet.data_validation(
                1,
                result_col,
                len(rows),
                result_col,
                {"validate": "list", "source": list(FEEDBACK_RESULTS)},
            )
        detail = workbook.add_worksheet(SHEET_DETAILS)
        _write_table(detail, _DETAIL_COLS, _detail_cells(details, meta.mask_ids), formats, header)
        about = workbook.add_worksheet(SHEET_ABOUT)
        lines = about_lines(township, households, meta, candidates, folders)
        _write_about(about, lines, formats, header)
        if not households.height:
            about.activate()  # an empty list opens on the sheet that says "none this month"
    finally:
        workbook.close()


def _write_candidates_workbook(
    path: Path, township: str, candidates: pl.DataFrame, meta: PublishMeta
) -> None:
    options = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = Workbook(str(path), options)
    try:
        props = _properties(township, meta)
        workbook.set_properties(
            {**props, "title": props["title"].replace(LIST_PREFIX, CANDIDATES_PREFIX)}
        )
        formats = _Formats(workbook)
        header = _page_header(CANDIDATES_PREFIX, township, meta)
        frame = candidates.with_row_index("_seq", offset=1)
        rows = (_mask_ids(frame, "head_id_number") if meta.mask_ids else frame).rows(named=True)
        sheet = workbook.add_worksheet(SHEET_CANDIDATES)
        _write_table(sheet, _CANDIDATE_COLS, rows, formats, header)
        about = workbook.add_worksheet(SHEET_ABOUT)
        _write_about(about, candidate_about_lines(township, candidates, meta), formats, header)
    finally:
        workbook.close()


def _properties(township: str, meta: PublishMeta) -> dict[str, Any]:
    year, month = (int(x) for x in meta.period.split("-"))
    # A fixed creation date (the day after the period ends, when lists are made) instead of
    # the clock, so re-publishing the same run gives the same bytes.
    made = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return {
        "title": f"{LIST_PREFIX}名单 {township} {meta.period}",
        "subject": "防返贫监测 部门数据筛查",
        "author": "screening",
        "comments": f"批次号 {meta.run_id}",
        "created": made,
    }


def _page_header(prefix: str, township: str, meta: PublishMeta) -> str:
    # Excel caps a page header at 255 characters; a name from data could be any length.
    demo = "【示例数据 虚构人员】" if meta.demo else ""
    return f"{demo}{prefix}名单 {township[:60]} {period_words(meta.period)}"


class _Formats:
    """The few cell formats the lists use, plus their 'quote prefix' twins.

    Excel's quote prefix keeps a cell that starts with '=' as text even after someone
    edits it, which write_string alone does not.
    """

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._cache: dict[tuple[str, bool], Format] = {}
        border = {"border": 1, "border_color": "#808080", "valign": "vcenter", "font_size": 10}
        self._props: dict[str, dict[str, Any]] = {
            "header": {
                **border,
                "bold": True,
                "bg_color": "#D9D9D9",
                "align": "center",
                "valign": "vcenter",
                "text_wrap": True,
            },
            "text": border,
            "enum": {**border, "align": "center"},
            "wrap": {**border, "text_wrap": True},
            "int": {**border, "num_format": "0"},
            "seq": {**border, "num_format": "0", "align": "center"},
            "money": {**border, "num_format": _MONEY_FORMAT},
            "date": {**border, "num_format": _DATE_FORMAT, "align": "center"},
            "title": {"bold": True, "font_size": 14},
            "label": {"bold": True, "valign": "top", "font_size": 10},
            "note": {"text_wrap": True, "valign": "top", "font_size": 10},
        }
        for colour in COLOURS:
            self._props[f"colour:{colour}"] = {
                **border,
                "bold": True,
                "align": "center",
                "bg_color": COLOUR_FILLS[colour],
                "font_color": COLOUR_FONTS[colour],
            }

    def get(self, name: str, quoted: bool = False) -> Format:
        key = (name, quoted)
        if key not in self._cache:
            props = dict(self._props.get(name, self._props["text"]))
            if quoted:
                props["quote_prefix"] = True
            self._cache[key] = self._workbook.add_format(props)
        return self._cache[key]


def _household_cells(households: pl.DataFrame, mask_ids: bool) -> list[dict[str, Any]]:
    frame = households.with_row_index("_seq", offset=1)
    return (_mask_ids(frame, "head_id_number") if mask_ids else frame).rows(named=True)


def _detail_cells(details: pl.DataFrame, mask_ids: bool) -> list[dict[str, Any]]:
    frame = details.with_columns(
        pl.col("risk_code").replace(RISK_LABELS),
        pl.col("source").replace({s: contract.label(s) for s in contract.SOURCES}),
        pl.col("disability_grade").replace_strict(
            GRADE_LABELS, default=None, return_dtype=pl.String
        ),
        pl.when(pl.col("is_head") & pl.col("relation").is_null())
        .then(pl.lit("户主"))
        .otherwise(pl.col("relation"))
        .alias("relation"),
    )
    if mask_ids:
        frame = _mask_ids(frame, "id_number")
    return frame.rows(named=True)


def _write_table(
    sheet: Worksheet,
    cols: Sequence[_Col],
    rows: Sequence[Mapping[str, Any]],
    formats: _Formats,
    page_header: str,
) -> None:
    widths = [_column_width(col, rows) for col in cols]
    for c, col in enumerate(cols):
        sheet.set_column(c, c, widths[c])
        sheet.write_string(0, c, col.header, formats.get("header"))
    sheet.set_row(0, 2 * _LINE_HEIGHT)
    for r, row in enumerate(rows, start=1):
        lines = 1
        for c, col in enumerate(cols):
            value = row.get(col.key)
            _write_cell(sheet, r, c, col, value, formats, widths[c])
            lines = max(lines, _lines(_shown(col, value), widths[c]))
        if lines > 1:  # neither Excel nor LibreOffice grows a row for wrapped text on opening
            sheet.set_row(r, lines * _LINE_HEIGHT)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, len(rows), len(cols) - 1)
    _print_setup(sheet, page_header)
    sheet.repeat_rows(0)


def _column_width(col: _Col, rows: Sequence[Mapping[str, Any]]) -> int:
    shown = [display_width(_shown(col, row.get(col.key))) for row in rows]
    # A header wraps onto two lines rather than widen a column of short values.
    header = display_width(col.header)
    widest = max([min(header, max(8, -(-header // 2) + 2)), *shown])
    return min(widest + 2, col.wrap_at)


def _lines(text: str, width: int) -> int:
    """Lines a wrapped cell needs (rounded up, so the estimate errs towards room)."""
    return max(1, -(-display_width(text) // max(width - 2, 1)))


def _write_cell(
    sheet: Worksheet, r: int, c: int, col: _Col, value: Any, formats: _Formats, width: int
) -> None:
    if value is None:
        sheet.write_blank(r, c, None, formats.get("text"))
    elif col.kind in ("money", "int", "seq"):
        number = float(value) if isinstance(value, Decimal) else value
        sheet.write_number(r, c, number, formats.get(col.kind))
    elif col.kind == "date":
        sheet.write_datetime(r, c, value, formats.get("date"))
    else:
        text = str(value)
        name = col.kind if col.kind == "enum" else "text"
        if col.kind == "colour" and text in COLOUR_FILLS:
            name = f"colour:{text}"
        if _lines(text, width) > 1:
            name = "wrap"
        sheet.write_string(r, c, text, formats.get(name, quoted=text.startswith(_FORMULA_START)))


def _shown(col: _Col, value: Any) -> str:
    """The text a cell shows, for sizing its column."""
    if value is None:
        return ""
    if col.kind == "money":
        return f"{value:,.2f}"
    if col.kind == "date":
        return "0000-00-00"
    return str(value)


def display_width(text: str) -> int:
    """Column width units: a CJK (wide/full-width) character takes two, others one."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _print_setup(sheet: Worksheet, page_header: str) -> None:
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    sheet.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    sheet.center_horizontally()
    # '&' starts a header code in Excel, so a name from data must have it doubled.
    sheet.set_header(f"&C{page_header.replace('&', '&&')}")
    sheet.set_footer("&C第 &P 页，共 &N 页")


def _write_about(
    sheet: Worksheet, lines: Sequence[tuple[str, str]], formats: _Formats, page_header: str
) -> None:
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, 1, _ABOUT_WIDTH)
    sheet.write_string(0, 0, f"{LIST_PREFIX}名单说明", formats.get("title"))
    sheet.set_row(0, 2 * _LINE_HEIGHT)
    for r, (label, text) in enumerate(lines, start=2):
        sheet.write_string(r, 0, label, formats.get("label"))
        sheet.write_string(r, 1, text, formats.get("note", quoted=text.startswith(_FORMULA_START)))
        if _lines(text, _ABOUT_WIDTH) > 1:
            sheet.set_row(r, _lines(text, _ABOUT_WIDTH) * _LINE_HEIGHT)
    _print_setup(sheet, page_header)


# ---------------------------------------------------------------- the 说明 sheet text


def colour_counts(households: pl.DataFrame) -> dict[str, int]:
    counts = dict.fromkeys(COLOURS, 0)
    for colour in households["colour"].to_list():
        counts[colour] = counts.get(colour, 0) + 1
    return counts


def candidate_about_lines(
    township: str, candidates: pl.DataFrame, meta: PublishMeta
) -> list[tuple[str, str]]:
    """The 说明 sheet of the 风险消除候选 list."""
    periods = meta.params.risk_removal_clear_periods
    return [
        *_demo_lines(meta),
        ("乡镇", township),
        ("期次", f"{period_words(meta.period)}（{meta.period}）"),
        ("批次号", meta.run_id),
        ("候选户数", f"共 {candidates.height} 户。"),
        (
            "入选条件",
            f"人口库中监测状态为「监测中」，最近 {periods} 个筛查期次（含本期）部门数据比对均未"
            "发现风险点，家庭年人均纯收入不低于监测标准，且有劳动年龄内、无重度残疾的成员"
            "（无劳动力的户不列入）。",
        ),
        (
            "使用说明",
            "本名单只是风险消除的候选，不是认定结果。请入户核实收入是否稳定、风险是否已消除、"
            "帮扶措施是否落实，按程序经村级评议公示、乡镇审核、县级审定后，方可标注风险消除。",
        ),
        (
            "个人信息",
            "名单含个人身份信息，仅限防返贫监测工作使用，请妥善保管，不得外传。"
            + ("身份证号已脱敏显示（中间8位以*代替）。" if meta.mask_ids else ""),
        ),
    ]


def about_lines(
    township: str,
    households: pl.DataFrame,
    meta: PublishMeta,
    candidates: int = 0,
    folders: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(label, text) rows of the 说明 sheet, in the words a township officer uses."""
    lines = [
        *_demo_lines(meta),
        ("乡镇", township),
        *_folder_lines(township, folders or {}),
        ("期次", f"{period_words(meta.period)}（{meta.period}）"),
        ("批次号", meta.run_id),
        ("名单户数", _count_sentence(households)),
        *_delivery_lines(meta),
        (
            "工作表",
            "「疑似监测户」每户一行，按预警等级红、黄、蓝排列，同一等级内风险点多、"
            "刚性支出高的在前；「家庭成员及风险依据」列出各户全部家庭成员，以及每个风险点"
            "对应的部门记录（数据来源、记录编号、日期、金额）。金额单位：元。",
        ),
        *_colour_lines(),
        *_status_lines(),
        *_risk_lines(meta.params),
        *_parameter_lines(meta),
        *_source_lines(meta.sources),
        (
            "入户核实",
            "本名单是根据部门数据比对筛查出的疑似监测对象，不是认定结果。请村、乡镇在规定"
            "时限内组织入户核实，并由农户签署数据查询授权书；经村级评议公示（5个工作日）、"
            "乡镇审核、县级审定后，方可确定为监测对象，全流程约20个工作日。请在「疑似监测户」"
            "表最后三列填写核实结果（确认纳入／不予纳入／待核实）、核实日期和备注，"
            "将本文件反馈县级。",
        ),
        *(
            [
                (
                    LIST_KEY_HEADER,
                    "「核对码」是县级导入核实结果时用来对应农户的编码，不含个人信息。"
                    "请勿修改或删除；排序、筛选、删除行都不影响导入。",
                )
            ]
            if meta.list_key_secret is not None
            else []
        ),
        (
            "风险消除候选",
            f"本期本乡镇有 {candidates} 户监测户符合风险消除候选条件，名单见同一文件夹中的"
            f"「{CANDIDATES_PREFIX}」文件。"
            if candidates
            else "本期本乡镇没有符合风险消除候选条件的监测户。",
        ),
        (
            "个人信息",
            "名单含个人身份信息，仅限防返贫监测工作使用，请妥善保管，不得外传。"
            + ("身份证号已脱敏显示（中间8位以*代替）。" if meta.mask_ids else ""),
        ),
    ]
    return lines


def _folder_lines(township: str, folders: Mapping[str, str]) -> list[tuple[str, str]]:
    """Where the list lies, when its folder is not simply the township's name; and which
    folder is which, when names differ only in case or width."""
    folder = folders.get(township)
    if folder is None or folder == township:
        return []
    mine = folder_key(safe_name(township))
    twins = [
        f"「{name}」在文件夹 {other}"
        for name, other in sorted(folders.items())
        if name != township and folder_key(safe_name(name)) == mine
    ]
    text = f"本乡镇名单所在文件夹：{folder}。"
    if twins:
        text += f"另有乡镇名称与本乡镇仅大小写或全角半角不同，请勿混淆：{'；'.join(twins)}。"
    return [("文件夹", text)]


def _delivery_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    ordered = sorted(meta.delivery_notes.items(), key=lambda kv: contract.source_order(kv[0]))
    return [("数据提示" if i == 0 else "", note) for i, (_, note) in enumerate(ordered)]


def delivery_note(
    source: str,
    event: str,
    file: str | None,
    stored_file: str | None,
    stored_at: dt.datetime | None,
    message: str | None = None,
    english: bool = False,
) -> str:
    """One sentence, for the lists and the run report, on a source whose delivery of the
    period is not simply this run's file: a stored delivery used instead of a missing,
    rejected or held file (`kept`, `held`), or a held file the officer accepted. With
    `english`, the English follows (the run report and the console)."""
    label = contract.label(source)
    at = stored_at.strftime("%Y-%m-%d %H:%M") if stored_at else "此前"
    if event == "accepted":
        text = (
            f"{label}：本期文件「{file}」未通过数据完整性检查，经县级人员确认后使用"
            f"（{message or ''}）。"
        )
        return text + (f" ({source}: held file {file} used, accepted)" if english else "")
    why = {
        "kept": f"本期文件「{file}」被拒收" if file else "本期收件箱中没有文件",
        "held": f"本期文件「{file}」未通过数据完整性检查，暂扣未用",
    }[event]
    if not stored_file:
        text = f"{label}：{why}，本期没有可用的数据。"
        return text + (f" ({source}: no delivery of this period in force)" if english else "")
    text = f"{label}：{why}，名单使用的是 {at} 已入库的「{stored_file}」。"
    problem = {"kept": "rejected" if file else "missing", "held": "held"}[event]
    return text + (
        f" ({source}: this period's file {problem}; the delivery stored at {at}, "
        f"{stored_file}, was used instead)"
        if english
        else ""
    )


def delivery_notes(events: pl.DataFrame, english: bool = False) -> dict[str, str]:
    """Source → `delivery_note` for a run's `db.deliveries.run_events`: the stored deliveries
    kept in force and the held files accepted (a held file never reaches a publication: its run
    publishes nothing)."""
    used = events.filter(pl.col("event").is_in(["kept", "accepted"]))
    return {
        r["source"]: delivery_note(
            r["source"], r["event"], r["file"], r["stored_file"], r["stored_ingested_at"],
            r["message"], english,
        )
        for r in used.iter_rows(named=True)
    }  # fmt: skip


def _demo_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    if not meta.demo:
        return []
    return [
        (
            "示例数据",
            "示例数据 synthetic sample：本名单由程序自带的虚构示例县数据生成，所列人员、"
            "身份证号和部门记录均为虚构，不存在，仅供演示和培训，不得用于实际工作。",
        )
    ]


def _count_sentence(households: pl.DataFrame) -> str:
    if not households.height:
        return "本期部门数据比对未发现本乡镇的疑似监测对象（0 户）。"
    counts = colour_counts(households)
    return (
        f"共 {households.height} 户：红色 {counts['红']} 户，黄色 {counts['黄']} 户，"
        f"蓝色 {counts['蓝']} 户。"
    )


def _colour_lines() -> list[tuple[str, str]]:
    return [
        ("红色", "有两项及以上风险点。请优先入户核实；核实纳入后安排干部1:1或1:2结对帮扶。"),
        (
            "黄色",
            "只有一项风险点：家庭年人均纯收入低于监测标准。请入户核实收入情况；"
            "核实纳入后安排干部结对帮扶。",
        ),
        (
            "蓝色",
            "只有一项风险点，且不是收入低于标准：目前收入未低于标准，但因病、因学、因意外、"
            "因残或突发困难，可能面临较大支出。由村级跟踪关注，及时掌握变化。",
        ),
    ]


def _status_lines() -> list[tuple[str, str]]:
    return [
        ("纳入状态", "新增：上一期名单中没有，本期新筛查出。"),
        ("", "持续：上一期已在名单中，本期仍有风险。"),
        (
            "",
            "已在监测：人口库中已是监测对象（监测中），请核对风险是否有新变化、帮扶措施是否到位。",
        ),
        ("", "已确认待录入：乡镇已核实确认纳入，但尚未录入监测系统，请尽快录入。"),
        (
            "",
            "乡镇核实为「不予纳入」的户，此后不再列入；若核实日期之后又出现新的部门风险记录，"
            "则重新列为「新增」，并在「上次核实结果」「上次核实日期」列显示此前的决定。",
        ),
    ]


def _risk_lines(params: ResolvedParams) -> list[tuple[str, str]]:
    """Each risk point's meaning, worded over the parameters in force."""
    return [
        ("风险点" if i == 0 else "", f"{r.label}：{r.meaning(params)}。")
        for i, r in enumerate(RISKS)
    ]


def _parameter_lines(meta: PublishMeta) -> list[tuple[str, str]]:
    lines = [
        ("筛查参数" if i == 0 else "", f"{label}：{text}")
        for i, (_, label, text) in enumerate(meta.params.lines(leave_out=_NOT_ON_LISTS))
    ]
    lines += [("参数提示" if i == 0 else "", w) for i, w in enumerate(meta.params.warnings)]
    return lines


def _source_lines(sources: Mapping[str, str]) -> list[tuple[str, str]]:
    ordered = sorted(sources.items(), key=lambda kv: contract.source_order(kv[0]))
    lines = [
        ("数据来源" if i == 0 else "", f"{contract.long_name(s)}：{source_status(st)}")
        for i, (s, st) in enumerate(ordered)
    ]
    absent = [s for s, st in ordered if st in ABSENT]
    if absent:
        lines.append(("缺少数据", missing_sources_sentence(absent, sources)))
    return lines


def source_status(status: str) -> str:
    return SOURCE_STATUS_LABELS.get(status, status)


def missing_sources_sentence(absent: Iterable[str], sources: Mapping[str, str]) -> str:
    """Says the list was made without some sources, and which risk points may be missed."""
    absent = list(absent)
    what = "、".join(
        f"{contract.label(s)}数据{_short_status(sources.get(s, 'missing'))}" for s in absent
    )
    fed = {code for s in absent for code in risks_fed_by(s)}
    missed = "、".join(label for code, label in RISK_LABELS.items() if code in fed)
    tail = f"，“{missed}”等风险可能未能筛出，请入户时一并了解。" if missed else "。"
    # Earlier months' deliveries still count (the window is 12 months): what is missing is
    # this month's news, not the source.
    return f"本期{what}，名单只用到此前各期报送的记录，本月新发生的情况未能反映{tail}"


def _short_status(status: str) -> str:
    return {
        "missing": "未收到",
        "rejected": "被拒收",
        "empty": "没有记录",
        "held": "被暂扣",
        "withdrawn": "已撤回",
    }.get(status, status)
