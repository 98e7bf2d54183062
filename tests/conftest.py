"""Shared fixtures. Prefect is kept offline, quiet and in a private home before any test
imports it (the Makefile sets the same variables for `make test`)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

if "PREFECT_HOME" not in os.environ:
    _prefect_home = tempfile.mkdtemp(prefix="prefect-home-")
    atexit.register(shutil.rmtree, _prefect_home, ignore_errors=True)
    os.environ["PREFECT_HOME"] = _prefect_home
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A test that finds a database busy fails at once unless it asks to wait (production waits
# 10 minutes). No test reads the settings of the machine it runs on.
os.environ["SCREENING_BUSY_TIMEOUT"] = "0"
for _name in ("SCREENING_INBOX", "SCREENING_DB", "SCREENING_OUT", "SCREENING_PARAMS",
              "SCREENING_ALIASES", "SCREENING_MASK_IDS", "SCREENING_CRON"):  # fmt: skip
    os.environ.pop(_name, None)

import json

import polars as pl
import pytest

from screening import contract

SAMPLE_PERIODS = ["2026-07", "2026-08", "2026-09"]


@pytest.fixture(scope="session")
def specs() -> dict[str, contract.SourceSpec]:
    return contract.load()


@pytest.fixture(scope="session")
def sample_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated county (three periods), made once per test session. Tests must
    not modify it: copy it first (see `inbox_copy`)."""
    from screening.sample import generate

    out = tmp_path_factory.mktemp("inbox")
    generate(out, households=200, periods=SAMPLE_PERIODS, seed=7)
    return out


@pytest.fixture(scope="session")
def sample_manifest(sample_inbox: Path) -> dict:
    return json.loads((sample_inbox / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture
def inbox_copy(sample_inbox: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "inbox"
    shutil.copytree(sample_inbox, target)
    return target


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "screening.duckdb"


@pytest.fixture(scope="session")
def screened(sample_inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample county screened period by period into one database, once per session.
    Read-only for tests: copy the folder first to change anything."""
    from screening.run import run_period

    work = tmp_path_factory.mktemp("screened")
    db, out = work / "screening.duckdb", work / "out"
    for period in SAMPLE_PERIODS:
        run_period(db=db, inbox=sample_inbox, out=out, period=period)
    return {"db": db, "out": out, "inbox": sample_inbox}


def query(db: Path, sql: str) -> pl.DataFrame:
    """A read-only query against a test database, the connection closed after."""
    from screening import store

    con = store.connect(db, read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide console keeps table cells on one line, so what a test looks for is not
    folded."""
    from screening import cli

    monkeypatch.setattr(cli.console, "width", 240)
    monkeypatch.setattr(cli.err, "width", 240)
