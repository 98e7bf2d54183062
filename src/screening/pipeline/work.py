"""A run's private work folder and what a killed run leaves behind.

The screen stage hands its frames to the publish stage through `<out>/.work/<run_id>/`
(parquet files and a meta.json of counts), removed when the run ends either way; a run
killed before it could remove it leaves it, and one killed while publishing leaves files
staged under temporary names beside the published ones. The next run, holding the lock,
removes both (`run.start_run`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from typing import cast

import duckdb
import polars as pl

from screening.db import runs as db_runs
from screening.publish.files import ensure_dir
from screening.rules.screen import ScreenResult

WORK_FOLDER = ".work"
_WORK_FRAMES = (
    "households",
    "suspects",
    "evidence",
    "members",
    "match_rates",
    "candidates",
    "scale",
)
_WORK_META = "meta.json"
# StagedFiles writes ".<final name>.<8 random characters>.tmp" (tempfile.mkstemp)
# beside each final file; a process killed while staging leaves them behind.
_STAGED_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def work_dir(out: Path, run_id: str) -> Path:
    """Where the screen stage leaves its frames for the publish stage: private, per run."""
    return Path(out) / WORK_FOLDER / run_id


def write_work(folder: Path, result: ScreenResult, all_townships: list[str]) -> Path:
    out = folder.parent.parent
    if not out.exists():
        ensure_dir(out)  # as publishing would make it; an existing one is left as is
    ensure_dir(folder.parent)  # 0700: the frames hold personal data
    ensure_dir(folder)
    for name in _WORK_FRAMES:
        getattr(result, name).write_parquet(folder / f"{name}.parquet")
    meta = {
        "all_townships": all_townships,
        "households_without_head": result.households_without_head,
        "households": result.households.height,
        "listed": result.suspects.height,
        "colours": dict(result.suspects["colour"].value_counts().rows()),
    }
    (folder / _WORK_META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return folder


def work_meta(folder: Path) -> dict:
    """Counts and township names the screen stage left (nothing personal: safe to log)."""
    return cast(dict, json.loads((folder / _WORK_META).read_text(encoding="utf-8")))


def read_work(folder: Path) -> tuple[ScreenResult, list[str]]:
    """The screen stage's result and every township in the roster."""
    meta = work_meta(folder)
    frames = {name: pl.read_parquet(folder / f"{name}.parquet") for name in _WORK_FRAMES}
    result = ScreenResult(households_without_head=meta["households_without_head"], **frames)
    return result, list(meta["all_townships"])


def remove_staged_temps(out: Path, period: str) -> list[Path]:
    """The temporary files a run killed while publishing left in `<out>/<period>/` and
    its township folders (never under a published file's own name), and a township folder
    that only they were in. Returns the files removed. Only while holding the lock: they
    could be another live run's."""
    top = Path(out) / period
    if not top.is_dir():
        return []
    removed: list[Path] = []
    for folder in [top, *sorted(p for p in top.iterdir() if p.is_dir() and not p.is_symlink())]:
        temps = [f for f in folder.iterdir() if _STAGED_TEMP.match(f.name) and f.is_file()]
        for temp in temps:
            temp.unlink()
        removed += temps
        if temps and folder != top:
            with contextlib.suppress(OSError):  # only when nothing else is in it
                folder.rmdir()
    return removed


def remove_work(out: Path, run_id: str) -> None:
    shutil.rmtree(work_dir(out, run_id), ignore_errors=True)
    with contextlib.suppress(OSError):  # only when no other run's folder is left
        (Path(out) / WORK_FOLDER).rmdir()


def ended_work(con: duckdb.DuckDBPyConnection, out: Path) -> list[str]:
    """Run ids of the work folders left by runs that have ended: a run killed before it
    could remove its folder, even one killed just after its success was committed."""
    folder = Path(out) / WORK_FOLDER
    names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    # Only this database's runs: a folder of a run unknown here is not ours to judge.
    return db_runs.ended(con, names)
