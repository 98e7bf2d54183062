"""Helpers the tests share: the sample periods, the venv's scripts, a read-only query of a
test database, the console's timestamped lines, and waiting for a process or a server."""

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
