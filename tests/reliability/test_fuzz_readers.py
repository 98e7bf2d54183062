"""Property tests over the readers: whatever bytes a department sends, `read_source`
gives rows or a one-line FileRejected, never another exception; and whatever text the
cells of a well-formed CSV hold, read → normalise → validate accounts for every row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from screening import contract
from screening.contract import SOURCES
from screening.ingest import read
from screening.ingest.cells import FileRejected
from screening.ingest.results import read_one
from tests.support.inputs import FORMATS, good_table, make_id

# Reading a few bytes takes milliseconds, so those properties afford many examples; a
# delivery through normalise and validate costs tens of milliseconds.
CHEAP = settings(
    deadline=None,
    derandomize=True,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)
COSTLY = settings(CHEAP, max_examples=80)
SPECS = contract.load()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


NAMES = counter()


def write(workdir: Path, suffix: str, content: bytes) -> Path:
    # A new name per example: a reader must not see a previous example's file.
    path = workdir / f"f{next(NAMES)}{suffix}"
    path.write_bytes(content)
    return path


def assert_rows_or_rejected(path: Path, source: str) -> None:
    try:
        raw = read.read_source(path, SPECS[source])
    except FileRejected as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 600
        event(f"rejected: {message.split('(')[0][:50]}")  # --hypothesis-show-statistics
        return
    event(f"read: {'with' if raw.bad_rows else 'no'} damaged rows")
    rows = raw.frame.get_column("row_number").to_list()
    bad = set(raw.bad_cells.get_column("row_number").to_list())
    assert raw.rows_read == len(rows) + len(bad)
    assert len(set(rows)) == len(rows) and not bad & set(rows)
    assert all(r >= 2 for r in rows + list(bad))
    assert set(raw.bad_cells.get_column("check")) <= set(read.QUARANTINE_CHECKS)
    assert raw.frame.columns[0] == "row_number" and raw.frame.columns[-1] == "extra"


# ---------------------------------------------------------------- arbitrary bytes


@CHEAP
@given(
    content=st.binary(max_size=3000),
    suffix=st.sampled_from(list(FORMATS)),
    source=st.sampled_from(SOURCES),
)
def test_arbitrary_bytes_give_rows_or_a_rejection(
    workdir: Path, content: bytes, suffix: str, source: str
) -> None:
    assert_rows_or_rejected(write(workdir, suffix, content), source)


def mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """A valid file with a few bytes overwritten, a piece cut out or its end cut off:
    what a bad disk, a bad download or a bad export gives."""
    positions = st.integers(0, len(base) - 1)
    edits = st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=8)

    def overwrite(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(base)
        for at, value in changes:
            data[at] = value
        return bytes(data)

    return st.one_of(
        edits.map(overwrite),
        st.tuples(positions, positions).map(lambda ab: base[: min(ab)] + base[max(ab) :]),
        positions.map(lambda n: base[:n]),
    )


BASES = {
    (suffix, source): make(good_table(source, 5))
    for suffix, make in FORMATS.items()
    for source in SOURCES
}


@CHEAP
@given(data=st.data(), suffix=st.sampled_from(list(FORMATS)), source=st.sampled_from(SOURCES))
def test_damaged_valid_files_give_rows_or_a_rejection(
    workdir: Path, data: st.DataObject, suffix: str, source: str
) -> None:
    content = data.draw(mutated(BASES[suffix, source]))
    assert_rows_or_rejected(write(workdir, suffix, content), source)


@CHEAP
@given(
    text=st.text(max_size=400),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    noise=st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=3))),
    source=st.sampled_from(SOURCES),
)
def test_text_with_stray_bytes_after_its_header_gives_rows_or_a_rejection(
    workdir: Path,
    text: str,
    encoding: str,
    noise: list[tuple[int, bytes]],
    source: str,
) -> None:
    # The noise goes into the body only: a damaged header is the other tests' business.
    header = (",".join(good_table(source).headers) + "\n").encode(encoding)
    body = bytearray(text.encode(encoding, errors="replace"))
    for at, junk in noise:
        body[at % (len(body) + 1) : at % (len(body) + 1)] = junk
    data = header + bytes(body)
    assert_rows_or_rejected(write(workdir, ".csv", bytes(data)), source)


# ---------------------------------------------------------------- arbitrary cell text


def plausible(column: contract.ColumnSpec) -> st.SearchStrategy[str]:
    """Values a department might really send for the column, right or nearly right."""
    by_type = {
        "id": st.integers(0, 999).map(make_id)
        | st.integers(0, 999).map(lambda i: make_id(i).lower()[:17] + "x"),
        "date": st.dates().map(str) | st.sampled_from(["2026年8月3日", "20260803", "45000"]),
        "money": st.decimals(-1e6, 1e9, places=2).map(str) | st.just("1,234.50元"),
        "grade": st.sampled_from(["1", "二级", "Ⅲ", "5"]),
    }
    if column.type == "enum":
        return st.sampled_from([*column.values, "其他"])
    return by_type.get(column.type, st.text(max_size=8))


@st.composite
def delivery(draw: st.DrawFn, source: str) -> tuple[list[str], list[list[str]]]:
    """A well-formed CSV of `source`: its required columns and some optional ones, under
    their key or an alias, in any order; each cell arbitrary text or a plausible value."""
    spec = SPECS[source]
    optional = [k for k in spec.columns if k not in spec.required_columns]
    some = draw(st.lists(st.sampled_from(optional), unique=True)) if optional else []
    keys = list(spec.required_columns) + some
    keys = draw(st.permutations(keys))
    headers = [draw(st.sampled_from([k, *spec.columns[k].aliases])) for k in keys]
    # Mostly plausible values, so that some rows pass and the good path is fuzzed too.
    cell = {
        k: st.one_of(st.text(max_size=30), *[plausible(spec.columns[k])] * 4, st.just(""))
        for k in keys
    }
    rows = draw(st.lists(st.tuples(*(cell[k] for k in keys)).map(list), max_size=25))
    return headers, rows


@COSTLY
@given(data=st.data(), source=st.sampled_from(SOURCES), bom=st.booleans())
def test_any_cell_text_is_accounted_for(
    workdir: Path, data: st.DataObject, source: str, bom: bool
) -> None:
    headers, rows = data.draw(delivery(source))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    path = write(workdir, ".csv", buffer.getvalue().encode("utf-8-sig" if bom else "utf-8"))

    result = read_one(path, SPECS[source], "2026-08")
    event(f"{result.status}, {'some' if result.rows_rejected else 'no'} rows quarantined")

    assert result.status in ("loaded", "empty"), result.message
    assert result.rows_read == (result.rows_accepted + result.rows_rejected + result.rows_duplicate)
    assert result.good is not None and result.good.height == result.rows_accepted
    assert result.quarantine is not None
    assert result.quarantine.get_column("row_number").n_unique() == result.rows_rejected
    filled = [i + 2 for i, row in enumerate(rows) if any(v.strip() for v in row)]
    seen = result.good.get_column("row_number").to_list()
    seen += result.quarantine.get_column("row_number").unique().to_list()
    assert (
        result.identical_rows is not None and result.identical_rows.len() == result.rows_duplicate
    )
    seen += result.identical_rows.to_list()
    # Every row with something in it is accepted, quarantined or counted as a copy of an
    # earlier row, exactly once.
    # (Python's strip removes every character polars counts as blank, and a few more.)
    assert len(seen) == len(set(seen)) == result.rows_read
    assert set(filled) <= set(seen) <= set(range(2, len(rows) + 2))
