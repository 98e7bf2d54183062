"""The one-writer lock: refusal while another live process holds it, stale locks of dead
processes cleared, the lock removed on every way out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from screening.db import lock
from screening.db.connect import DatabaseBusy
from screening.db.lock import Busy, Holder, hold, lock_path

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "screening.duckdb"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not us, ended when the test ends."""
    proc = subprocess.Popen(SLEEPER)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def write_lock(db: Path, pid: int, *, start: float | None = None, host: str | None = None) -> str:
    holder = Holder(
        pid=pid,
        host=host or socket.gethostname(),
        started_at="2026-09-01 08:30:00",
        process_start=start,
    )
    text = holder.to_json()
    lock_path(db).write_text(text, encoding="utf-8")
    return text


def test_the_lock_names_its_holder_and_goes_away_after(db: Path) -> None:
    with hold(db) as me:
        content = json.loads(lock_path(db).read_text(encoding="utf-8"))
        assert content["pid"] == os.getpid() == me.pid
        assert content["host"] == socket.gethostname()
        assert content["started_at"] == me.started_at
        assert content["process_start"] == lock.process_start_time(os.getpid())
        assert lock_path(db).stat().st_mode & 0o777 == 0o600
    assert not lock_path(db).exists()


def test_the_lock_is_removed_when_the_body_raises(db: Path) -> None:
    with pytest.raises(ZeroDivisionError), hold(db):
        _ = 1 / 0
    assert not lock_path(db).exists()
    with hold(db):  # and can be taken again
        pass


def test_a_live_holder_refuses_a_second_one_at_once(
    db: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    text = write_lock(db, sleeper.pid, start=lock.process_start_time(sleeper.pid))
    started = time.monotonic()
    with pytest.raises(Busy) as refused:
        lock.acquire(db)
    assert time.monotonic() - started < 1.0
    message = str(refused.value)
    assert f"pid {sleeper.pid}" in message
    assert "started 2026-09-01 08:30:00" in message
    assert str(db) in message and "wait for it to finish" in message
    assert "\n" not in message
    assert isinstance(refused.value, DatabaseBusy)
    assert lock_path(db).read_text(encoding="utf-8") == text  # left alone


def test_a_holder_in_another_process_and_its_death(db: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from screening.db.lock import hold\n"
            f"with hold({str(db)!r}):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=f"pid {child.pid}"):
            lock.acquire(db)
    finally:
        child.kill()  # SIGKILL: no chance to remove its lock
        child.wait()
    assert json.loads(lock_path(db).read_text(encoding="utf-8"))["pid"] == child.pid
    with hold(db) as me:
        assert me.pid == os.getpid()
    assert not lock_path(db).exists()


def test_a_stale_lock_of_a_dead_process_is_cleared(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid = dead_pid()
    write_lock(db, pid, start=1.0)
    with caplog.at_level("WARNING", logger="screening.db.lock"), hold(db) as me:
        assert json.loads(lock_path(db).read_text(encoding="utf-8"))["pid"] == me.pid
    assert f"pid {pid}" in caplog.text and "no longer runs" in caplog.text
    assert not lock_path(db).exists()


def test_a_reused_pid_is_not_taken_for_the_holder(db: Path) -> None:
    # Our own pid is alive, but this "holder" started long before we did.
    write_lock(db, os.getpid(), start=1_000_000.0)
    with hold(db) as me:
        assert me.process_start != 1_000_000.0


def test_a_zombie_holder_counts_as_dead(db: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while lock._process(proc.pid) != lock._Process(alive=False, start=None):
            assert time.monotonic() < deadline, "child did not exit"
            time.sleep(0.01)
        write_lock(db, proc.pid)  # exited but not reaped: still in the process table
        with hold(db):
            pass
    finally:
        proc.wait()


def test_the_same_process_cannot_hold_it_twice(db: Path) -> None:
    with hold(db), pytest.raises(Busy, match=f"pid {os.getpid()}"):
        lock.acquire(db)
    assert not lock_path(db).exists()


def test_a_holder_on_another_machine_is_never_cleared(db: Path) -> None:
    text = write_lock(db, dead_pid(), host="another-host")
    with pytest.raises(Busy) as refused:
        lock.acquire(db)
    message = str(refused.value)
    assert "on another-host" in message and f"delete {lock_path(db)}" in message
    assert lock_path(db).read_text(encoding="utf-8") == text


def test_an_unreadable_lock_is_busy_while_young_and_cleared_when_old(db: Path) -> None:
    lock_path(db).write_text("", encoding="utf-8")  # created, not yet written
    with pytest.raises(Busy, match="being locked by another process right now"):
        lock.acquire(db)
    old = time.time() - 60
    os.utime(lock_path(db), (old, old))
    with hold(db):
        pass
    assert not lock_path(db).exists()


def test_without_proc_or_psutil_liveness_comes_from_a_signal(
    db: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(lock, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(lock, "psutil", None)
    write_lock(db, sleeper.pid, start=1.0)  # the start time cannot be checked now
    with pytest.raises(Busy, match=f"pid {sleeper.pid}"):
        lock.acquire(db)
    write_lock(db, dead_pid())
    with hold(db):
        pass


def test_when_nothing_can_be_known_the_lock_stays_and_says_how_to_clear_it(
    db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(lock, "PROC", tmp_path / "no-proc")
    monkeypatch.setattr(lock, "psutil", None)
    monkeypatch.setattr(lock, "_from_signal", lambda pid: None)  # as on Windows
    write_lock(db, dead_pid())
    with pytest.raises(Busy, match=f"if it is no longer running, delete {lock_path(db)}"):
        lock.acquire(db)


def test_one_winner_when_many_race_for_a_stale_lock(db: Path) -> None:
    write_lock(db, dead_pid())
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def contender() -> None:
        start.wait()
        try:
            lock.acquire(db)
            outcomes.append("held")
        except Busy:
            outcomes.append("busy")

    threads = [threading.Thread(target=contender) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["busy"] * 7 + ["held"]
    assert json.loads(lock_path(db).read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert not lock_path(db).with_name(lock_path(db).name + ".break").exists()


def test_release_leaves_a_lock_that_is_no_longer_ours(db: Path) -> None:
    with hold(db):
        other = write_lock(db, os.getpid(), start=2.0)  # replaced by hand meanwhile
    assert lock_path(db).read_text(encoding="utf-8") == other
