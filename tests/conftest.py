"""Shared fixtures. Prefect is kept offline, quiet and in a private home before any test
imports it (the Makefile sets the same variables for `make test`)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
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
os.environ.pop("SCREENING_INBOX", None)
os.environ.pop("SCREENING_DB", None)
os.environ.pop("SCREENING_OUT", None)
os.environ.pop("SCREENING_PARAMS", None)
os.environ.pop("SCREENING_ALIASES", None)
os.environ.pop("SCREENING_MASK_IDS", None)
os.environ.pop("SCREENING_CRON", None)

import json

import pytest

from screening import contract
from tests.support.common import (
    BIN,
    SAMPLE_PERIODS,
    free_port,
    ingest_year_before,
    stop,
    wait_for,
)


@pytest.fixture(scope="session")
def specs() -> dict[str, contract.SourceSpec]:
    return contract.load()


@pytest.fixture(scope="session")
def sample_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated county (three periods), made once per test session. Tests must
    not modify it: copy it first (see `inbox_copy`)."""
    from dev.sample import generate

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
    """The sample county screened period by period into one database, once per session,
    after its roster of a year before was ingested (as `make demo` does). Read-only for
    tests: copy the folder first to change anything."""
    from screening.pipeline.run import run_period

    work = tmp_path_factory.mktemp("screened")
    db, out = work / "screening.duckdb", work / "out"
    ingest_year_before(db, sample_inbox)
    for period in SAMPLE_PERIODS:
        run_period(db=db, inbox=sample_inbox, out=out, period=period)
    return {"db": db, "out": out, "inbox": sample_inbox}


# Records with a mistyped ID number planted per kind (dev.sample.plant_typos), and as many
# of people absent from the roster: enough to measure recall and precision in percent.
TYPOS_PER_KIND = 12


@pytest.fixture(scope="session")
def typo_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated county with mistyped ID numbers of each kind for known persons, and
    records of people absent from the roster (the manifest's `typos`), made once per test
    session. Tests must not modify it."""
    from dev.sample import generate

    out = tmp_path_factory.mktemp("typo-inbox")
    generate(out, households=600, periods=SAMPLE_PERIODS, seed=18, typos=TYPOS_PER_KIND)
    return out


@pytest.fixture(scope="session")
def typo_screened(typo_inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The county with typos screened period by period into one database, once per
    session. Read-only for tests: copy it first to change anything."""
    from screening.pipeline.run import run_period

    work = tmp_path_factory.mktemp("typo-screened")
    db, out = work / "screening.duckdb", work / "out"
    for period in SAMPLE_PERIODS:
        run_period(db=db, inbox=typo_inbox, out=out, period=period)
    return {"db": db, "out": out, "inbox": typo_inbox}


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide console keeps table cells on one line, so what a test looks for is not
    folded."""
    from screening.cli.console import console, err

    monkeypatch.setattr(console, "width", 240)
    monkeypatch.setattr(err, "width", 240)


# ---------------------------------------------------------------- a real Prefect server


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real `prefect server start` for every flow test of the session: a free local
    port, its own PREFECT_HOME, no telemetry, a scheduler that looks every 2 seconds. The
    session's Prefect client talks to it; yields its API URL."""
    import urllib.request

    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-server")
    url = f"http://127.0.0.1:{free_port()}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    log = home / "server.log"
    port = url.rsplit(":", 1)[1].split("/")[0]
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, "the Prefect server to answer", timeout=240)
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # for the subprocesses the tests start
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
    finally:
        stop(proc)
