"""The header of a delivered file: which row it is, which of its headers is which contract
column, and the message for a missing column (the header in the file most like it and the
aliases-file entry that would map it; a file's headers are never guessed).

The header is the first of the first rows (`cells.HEADER_SEARCH_ROWS`) naming every column
the file must carry; headers are matched ignoring blanks, width and case
(`contract.fold_header`) against each column's key and aliases.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import yaml

from screening.contract import SOURCES, SourceSpec, fold_header
from screening.ingest.cells import OVERFLOW, FileRejected

# A header cell this long is data or garbage, and would be repeated as a JSON key on every
# row of `extra`.
HEADER_MAX = 1_000
# How alike a header must be to a column's names to be offered as "closest header".
CLOSE_HEADER = 0.5


@dataclass(frozen=True)
class Header:
    index: int  # 0-based row of the header, or of the row coming closest to one
    found: bool  # that row holds every column the file must carry
    hits: int  # how many of the contract's columns it names


def head_rows(frame: pl.DataFrame, n: int) -> list[tuple[str | None, ...]]:
    return frame.drop(OVERFLOW, strict=False).head(n).rows()


def _keys_named(row: Sequence[str | None], lookup: dict[str, str]) -> set[str]:
    return {lookup[f] for f in (fold_header(v) for v in row if v) if f in lookup}


def _missing_columns(named: set[str], spec: SourceSpec) -> list[str]:
    missing = [c for c in spec.required_columns if c not in named]
    if spec.id_from_certificate and not {"id_number", spec.id_from_certificate} & named:
        missing.append("id_number")
    return missing


def find_header(rows: Sequence[Sequence[str | None]], spec: SourceSpec) -> Header:
    """The first of `rows` that names every column the file must carry; else the first
    naming the most contract columns (the header the department meant, probably)."""
    lookup = spec.header_lookup()
    best = Header(0, False, 0)
    for index, row in enumerate(rows):
        named = _keys_named(row, lookup)
        if not _missing_columns(named, spec):
            return Header(index, True, len(named))
        if len(named) > best.hits:
            best = Header(index, False, len(named))
    return best


def map_headers(headers: list[str], spec: SourceSpec) -> dict[int, str]:
    """Position of each header the contract knows → its column key.

    Two headers that mean the same column make the file ambiguous: we cannot tell which
    one the department meant, so the file is rejected rather than guessed.
    """
    lookup = spec.header_lookup()
    mapping: dict[int, str] = {}
    taken: dict[str, str] = {}
    for position, header in enumerate(headers):
        key = lookup.get(fold_header(header))
        if key is None:
            continue
        if key in taken:
            if taken[key] == header:
                raise FileRejected(
                    f"列 {header!r} 出现两次，请只保留一列 "
                    f"column {header!r} appears twice; keep only one"
                )
            raise FileRejected(
                f"列 {taken[key]!r} 和 {header!r} 都表示 {key}，请只保留一列 "
                f"columns {taken[key]!r} and {header!r} both mean {key}; keep only one"
            )
        taken[key] = header
        mapping[position] = key
    missing = _missing_columns(set(taken), spec)
    if missing:
        unknown = [h for i, h in enumerate(headers) if i not in mapping]
        raise FileRejected(_missing_message(missing, spec, unknown))
    return mapping


def closest_header(key: str, spec: SourceSpec, headers: Sequence[str]) -> str | None:
    """The header in `headers` most like the column's key or one of its aliases."""
    names = [fold_header(n) for n in (key, *spec.columns[key].aliases)]
    best: tuple[float, str] | None = None
    for header in headers:
        folded = fold_header(header)
        score = max(difflib.SequenceMatcher(None, folded, n).ratio() for n in names)
        if score >= CLOSE_HEADER and (best is None or score > best[0]):
            best = (score, header)
    return best[1] if best else None


def _missing_message(missing: list[str], spec: SourceSpec, unknown: Sequence[str]) -> str:
    """Which column is missing, the header in the file most like it, and the aliases-file
    entry that maps that header to the column (a file's headers are never guessed)."""
    parts, aliases = [], {}
    for key in missing:
        names = "/".join(spec.columns[key].aliases)
        part = f"{key} ({names})" if names else key
        near = closest_header(key, spec, unknown)
        if near is not None:
            part += f"，文件中最接近的表头 closest header in the file: {near!r}"
            aliases[key] = [near]
        parts.append(part)
    message = f"缺少必需列 missing required column(s): {'; '.join(parts)}"
    if aliases and spec.source in SOURCES:
        entry = yaml.safe_dump(
            {spec.source: aliases}, allow_unicode=True, default_flow_style=True, width=1_000
        ).strip()
        message += (
            "；若就是该列，请用 --aliases FILE 指定别名 "
            f"if that is the column, pass --aliases FILE with: {entry}"
        )
    return message


def header_names(values: Sequence[str | None], row: int) -> list[str]:
    """The header row, trimmed. A blank header cell gets a placeholder name so its values
    are still kept (in `extra`)."""
    headers = []
    for i, value in enumerate(values):
        name = (value or "").strip() or f"column_{i + 1}"
        if len(name) > HEADER_MAX:
            raise FileRejected(
                f"第 {row} 行第 {i + 1} 列的表头长 {len(name)} 个字符，表头须在文件开头几行 "
                f"header of column {i + 1} (row {row}) is {len(name)} characters long; "
                "the header must be one of the first rows"
            )
        headers.append(name)
    return headers


def unique_labels(headers: list[str]) -> list[str]:
    """Header names made unique (备注, 备注#2) to be keys of the `extra` JSON object."""
    labels: list[str] = []
    used: set[str] = set()
    for name in headers:
        label, n = name, 1
        while label in used:
            n += 1
            label = f"{name}#{n}"
        used.add(label)
        labels.append(label)
    return labels
