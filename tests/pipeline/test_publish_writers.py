"""The fast ways of writing the lists write what the plain ways write, byte for byte: the
workbooks from a pool of processes (StagedFiles.write_deferred) and through FastSheet's
prepared rows, against this process and xlsxwriter's public API (PlainSheet)."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from screening.publish import lists as publish
from screening.publish import workbook
from screening.publish.fastsheet import PlainSheet
from screening.publish.files import StagedFiles
from tests.pipeline.test_publish import (
    candidates_frame,
    county,
    evidence_for,
    files_under,
    members_for,
    meta,
)


def _publish(out: Path, workers: int) -> dict[Path, bytes]:
    suspects = county()
    publish.publish(
        out,
        suspects,
        evidence_for(suspects),
        members_for(suspects),
        # Masked IDs with the 核对码 column, formula-like text, two townships' workbooks and
        # a 风险消除候选 workbook: three files for the pool.
        meta(mask_ids=True, list_key_secret="secret", demo=True),
        candidates=candidates_frame(("城关镇", "H101"), ("城关镇", "H102")),
        workers=workers,
    )
    return {p.relative_to(out): p.read_bytes() for p in files_under(out)}


def test_the_fast_writers_write_the_plain_writers_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(workbook, "SHEET_CLASS", PlainSheet)
        plain = _publish(tmp_path / "plain", workers=1)
    fast = _publish(tmp_path / "fast", workers=2)
    assert sorted(fast) == sorted(plain)
    assert len([p for p in plain if p.suffix == ".xlsx"]) == 3
    assert [p for p in plain if fast[p] != plain[p]] == []


def test_a_file_a_worker_cannot_write_publishes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError), StagedFiles() as staged:
        # The heaviest goes to the pool's process, which fails on it (text must be str).
        staged.defer(tmp_path / "a.txt", Path.write_text, ("a",), weight=2)
        staged.defer(tmp_path / "b.txt", Path.write_text, (3,), weight=3)
        staged.defer(tmp_path / "c.txt", Path.write_text, ("c",), weight=1)
        staged.write_deferred(workers=2)
        staged.commit()
    assert list(tmp_path.iterdir()) == []


def _write_unless_a_worker(path: Path, text: str) -> None:
    """Writes `text`; a worker process of the pool dies instead, as if killed."""
    if multiprocessing.parent_process() is not None:
        os._exit(1)
    path.write_text(text, encoding="utf-8")


def test_the_files_of_a_worker_that_dies_are_written_here(tmp_path: Path) -> None:
    with StagedFiles() as staged:
        for name, weight in (("a", 3), ("b", 2), ("c", 1)):
            staged.defer(tmp_path / f"{name}.txt", _write_unless_a_worker, (name,), weight)
        staged.write_deferred(workers=2)
        written = staged.commit()
    assert sorted(p.name for p in written) == ["a.txt", "b.txt", "c.txt"]
    assert [p.read_text(encoding="utf-8") for p in sorted(written)] == ["a", "b", "c"]


def _publish_three(folder: Path, done: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        with StagedFiles() as staged:
            for name, weight in (("a", 3), ("b", 2), ("c", 1)):
                staged.defer(folder / f"{name}.txt", Path.write_text, (name,), weight)
            staged.write_deferred(publish._workers(publish.PARALLEL_FROM))
            done.put(sorted(p.name for p in staged.commit()))
    except BaseException as exc:
        done.put(f"{type(exc).__name__}: {exc}")


def test_a_long_list_is_written_inside_a_dask_worker(tmp_path: Path) -> None:
    """A Dask worker (the province's flow) is a daemonic process, which may not start a
    pool of its own: there the files are written by that process alone."""
    spawn = multiprocessing.get_context("spawn")
    done = spawn.Queue()
    worker = spawn.Process(target=_publish_three, args=(tmp_path, done), daemon=True)
    worker.start()
    try:
        assert done.get(timeout=120) == ["a.txt", "b.txt", "c.txt"]
    finally:
        worker.join(timeout=30)
