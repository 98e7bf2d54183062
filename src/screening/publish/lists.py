"""Publish a screening run: what is written where.

    <out>/<YYYY-MM>/suspects.parquet, evidence.parquet, removal_candidates.parquet
    <out>/<YYYY-MM>/<township>/疑似监测对象_<township>_<YYYYMM>.xlsx / .csv
    <out>/<YYYY-MM>/<township>/风险消除候选_<township>_<YYYYMM>.xlsx / .csv (where any)

`publish` checks the rows, merges a one-township re-publish into the county-wide parquet
files, and stages every file so that all are renamed into place together (files.py). The
csv lists are written here; the xlsx workbooks by workbook.py (from a pool of processes when
the lists are long: `workers`), their 说明 sheets' words by about.py. ID numbers can be
masked in the files meant for people.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from screening.publish.columns import (
    CANDIDATE_HEADERS,
    CANDIDATES_SCHEMA,
    EVIDENCE_SCHEMA,
    FEEDBACK_HEADERS,
    LIST_KEY,
    LIST_KEY_HEADER,
    MEMBERS_SCHEMA,
    RELIEF_COLUMN,
    REMOVAL_HEADERS,
    SUSPECT_HEADERS,
    SUSPECTS_SCHEMA,
    PublishMeta,
    defuse_expr,
    mask_frame,
    relief_shown,
    with_list_keys,
)
from screening.publish.files import (
    CANDIDATES_FILE,
    EVIDENCE_FILE,
    SUSPECTS_FILE,
    StagedFiles,
    candidate_paths,
    ensure_dir,
    identity_path,
    period_dir,
    remove_stale,
    township_folders,
    township_paths,
)
from screening.publish.identity import stage_identity
from screening.publish.workbook import write_candidates_workbook, write_list_workbook
from screening.rules import RISK_LABELS

# From this many rows (households listed, and the members sheets' rows) the workbooks are
# written by a process a core: a worker starts in about half a second (it imports polars and
# xlsxwriter), while a workbook takes about 0.3 s per thousand rows to write.
PARALLEL_FROM = 5_000


def publish(
    out: Path,
    suspects: pl.DataFrame,
    evidence: pl.DataFrame,
    members: pl.DataFrame,
    meta: PublishMeta,
    townships: list[str] | None = None,
    candidates: pl.DataFrame | None = None,
    contacts: pl.DataFrame | None = None,
    identity: pl.DataFrame | None = None,
    workers: int | None = None,
    staged_with: StagedFiles | None = None,
) -> list[Path]:
    """Write a run's files; with `townships`, re-publish only those townships.

    `candidates` (followup.CANDIDATES_SCHEMA) is the second list, 风险消除候选: written per
    township only where the township has any (its 疑似监测对象 list says how many).
    `contacts` (sheets.CONTACTS_SCHEMA): the roster's optional columns of the listed
    households, shown on the printed lists where the roster has them.
    `identity` (link_suggestions rows) is the 身份核对 list, also only where there are any
    (publish.identity).

    `suspects` must be in list order (townships ascending). A re-publish replaces those
    townships' rows in the existing parquet files and keeps the others, giving the same
    rows in the same order as a full run. `workers`: how many processes write the
    workbooks (default: one a core when the lists are long, else this process). Returns the
    paths written. `staged_with`: files the caller staged (the run report, the departments'
    workbooks), written with the lists (by the same processes) and renamed into place
    with them; their paths are among those returned.
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
        if staged_with is not None:
            staged.adopt(staged_with)
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
                contacts,
            )
            if own.height:
                _stage_candidates(staged, target, name, own, meta, folders[name], contacts)
        if identity is not None:
            stage_identity(staged, target, names, identity, meta, folders)
        if workers is None:
            workers = _workers(staged.deferred_weight)
        staged.write_deferred(workers)
        written = staged.commit()
    if townships is None:
        remove_stale(target, meta.period, keep=set(written))
    else:  # a township whose candidates (or suggestions) are gone keeps no old list of them
        for name in names:
            old_lists = [
                *candidate_paths(target, name, meta.period, folders[name]),
                identity_path(target, name, meta.period, folders[name]),
            ]
            for path in old_lists:
                if path not in written and path.is_file():
                    path.unlink()
    return written


def _workers(rows: int) -> int:
    """One process a core for long lists; this one for short lists, and in a daemonic
    process (a Dask worker of the province's flow), which may not start children: there
    the province already gives each county its own process."""
    if rows < PARALLEL_FROM or multiprocessing.current_process().daemon:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    frame = pl.read_parquet(path)
    # A file an earlier version published lacks the columns added since (relief_estimate):
    # empty for its rows, as the database's are.
    added = [pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in frame.columns]
    return _conform(frame.with_columns(added), schema, path.name)


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
    contacts: pl.DataFrame | None = None,
) -> None:
    households = suspects.filter(pl.col("township") == township)
    listed = households.select("household_id")
    own_evidence = evidence.join(listed, on="household_id", how="semi")
    own_members = members.join(listed, on="household_id", how="semi")
    details = _detail_rows(households, own_evidence, own_members)
    folders = folders or township_folders([township])
    xlsx, csv = township_paths(target, township, meta.period, folders[township])
    ensure_dir(xlsx.parent)
    staged.defer(
        xlsx,
        write_list_workbook,
        (township, households, details, meta, candidates, folders, contacts),
        weight=households.height + details.height,
    )
    staged.add(csv, lambda tmp: _write_csv(tmp, households, meta))


def _stage_candidates(
    staged: StagedFiles,
    target: Path,
    township: str,
    candidates: pl.DataFrame,
    meta: PublishMeta,
    folder_name: str | None = None,
    contacts: pl.DataFrame | None = None,
) -> None:
    xlsx, csv = candidate_paths(target, township, meta.period, folder_name)
    staged.defer(
        xlsx,
        write_candidates_workbook,
        (township, candidates, meta, contacts),
        weight=candidates.height,
    )
    staged.add(csv, lambda tmp: _write_candidates_csv(tmp, candidates, meta))


# ---------------------------------------------------------------- csv


def _write_csv(path: Path, households: pl.DataFrame, meta: PublishMeta) -> None:
    """The contract columns with Chinese headers; UTF-8 with BOM so Excel reads the Chinese.

    The run id is left out: re-running a period on the same inputs must give the same
    bytes, so a township can tell at a glance that nothing changed (the run id is on the
    xlsx 说明 sheet and in suspects.parquet)."""
    frame = with_list_keys(households.with_columns(pl.col("risk_codes").list.join(";")), meta)
    if not relief_shown(meta):
        frame = frame.drop(RELIEF_COLUMN)
    blanks = [pl.lit(None, pl.String).alias(h) for h in FEEDBACK_HEADERS]
    headers = {**SUSPECT_HEADERS, LIST_KEY: LIST_KEY_HEADER}
    _write_people_csv(path, frame, headers, meta, blanks)


def _write_candidates_csv(path: Path, candidates: pl.DataFrame, meta: PublishMeta) -> None:
    blanks = [pl.lit(None, pl.String).alias(h) for h in REMOVAL_HEADERS]
    headers = {**CANDIDATE_HEADERS, LIST_KEY: LIST_KEY_HEADER}
    _write_people_csv(path, with_list_keys(candidates, meta), headers, meta, blanks)


# The first column of a list made from the bundled synthetic county: the import reads
# lists by their headers, so a column it does not know changes nothing there.
DEMO_COLUMN = "示例数据"
DEMO_VALUE = "是：虚构人员，仅供演示"


def _write_people_csv(
    path: Path,
    frame: pl.DataFrame,
    headers: Mapping[str, str],
    meta: PublishMeta,
    extra: Sequence[pl.Expr] = (),
) -> None:
    """A list for people: without the run id, IDs masked if asked, formula-looking text
    defused, Chinese headers, `extra` columns after, a 示例数据 column first in a list
    made from the sample, UTF-8 with BOM."""
    frame = frame.drop("run_id")
    if meta.mask_ids:
        frame = mask_frame(frame, "head_id_number")
    text = [c for c, t in frame.schema.items() if t == pl.String()]
    frame = frame.with_columns([defuse_expr(c) for c in text])
    frame = frame.rename(dict(headers), strict=False).with_columns(extra)
    if meta.demo:
        frame = frame.select(pl.lit(DEMO_VALUE).alias(DEMO_COLUMN), pl.all())
    frame.write_csv(path, include_bom=True, line_terminator="\r\n")


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
