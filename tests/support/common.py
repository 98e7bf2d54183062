"""Helpers the tests share: the sample periods, the venv's scripts, a read-only query of a
test database, the console's timestamped lines, the sample's roster of a year before
ingested, and waiting for a process or a server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

SAMPLE_PERIODS = ["2026-07", "2026-08", "2026-09"]
BIN = Path(sys.executable).parent  # the virtual environment's scripts: screening, prefect


# Output that is not a terminal (cron's log, make, a pipe; here the test runner's) is plain
# lines, each led by the time.
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")


def unstamped(text: str) -> list[str]:
    """The lines of `text` without their timestamps (every non-empty line has one)."""
    lines = [line for line in text.splitlines() if line]
    assert all(STAMP.match(line) for line in lines), text
    return [STAMP.sub("", line) for line in lines]


def query(db: Path, sql: str) -> pl.DataFrame:
    """A read-only query against a test database, the connection closed after."""
    from screening.db.connect import connect

    con = connect(db, read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def ingest_year_before(db: Path, inbox: Path) -> str | None:
    """The generated county's roster of 12 months before its first period, ingested into
    `db` as a county would (`screening ingest --period`): INCOME_DROP compares with it, and
    the manifest's expected lists count on it. Its period, or None when it has none."""
    import json

    from screening import contract
    from screening.db.connect import connect
    from screening.ingest.deliveries import ingest_period

    manifest = json.loads((inbox / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest.get("year_before")
    if entry is None:
        return None
    con = connect(db)
    try:
        ingest_period(con, inbox, entry["period"], contract.load())
    finally:
        con.close()
    return str(entry["period"])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], what: str, timeout: float, poll: float = 1.0) -> Any:
    """Poll `check` until it returns something true; fail naming `what` after `timeout`
    seconds (generous: the CI machine has two loaded cores)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def stop(proc: subprocess.Popen[Any]) -> None:
    """End a process we started, and its children (it leads its own session)."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
