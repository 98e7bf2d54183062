"""One writer at a time: a lock file beside the database, `<db>.lock`.

DuckDB refuses a second writing process only when it opens the file, and cannot say who
holds it; a run also reads the inbox and publishes township files outside its database
connection, and two runs interleaving there would mix their outputs. So a run holds this
lock for its whole length. The file holds the holder's pid, host and start time (JSON),
so that a refusal can name them, and so that a lock left behind by a process that died
(power cut, SIGKILL) is recognised and cleared instead of blocking the county for good.

Without /proc (Linux) or psutil the start time of a process cannot be read, so a pid
reused by an unrelated process is taken for the holder; on Windows without psutil, where
os.kill would terminate the process rather than probe it, every lock is taken as live and
the message says which file to delete.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

from screening.db.connect import DatabaseBusy


def _optional_psutil() -> ModuleType | None:
    try:
        import psutil
    except ImportError:  # a development dependency only; /proc or os.kill serve without it
        return None
    return psutil


psutil = _optional_psutil()

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

PROC = Path("/proc")
# A lock file that cannot be parsed is being written right now, or was left empty by a
# crash between creating and writing it; the writer needs microseconds, so after this long
# it is the latter.
UNREADABLE_GRACE = 10.0
# Two start times of one process, read twice, agree to the clock tick; a reused pid's
# process started later than the holder wrote its lock.
START_TOLERANCE = 1.0
ATTEMPTS = 5


class Busy(DatabaseBusy):
    """Another live process holds the lock; the message names it."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    started_at: str  # when the lock was taken, local time, ISO 8601
    process_start: float | None  # the process's own start (epoch seconds), if knowable

    @classmethod
    def current(cls) -> Holder:
        pid = os.getpid()
        now = dt.datetime.now().isoformat(sep=" ", timespec="seconds")
        return cls(pid, socket.gethostname(), now, process_start_time(pid))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            start = data.get("process_start")
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                process_start=None if start is None else float(start),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def lock_path(db_path: Path | str) -> Path:
    """`<db>.lock` beside the database file itself: a path reached through a symlink (or
    `..`, or a relative path) names the same lock as the file's real path."""
    db = Path(db_path).resolve()
    return db.with_name(db.name + ".lock")


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Process:
    alive: bool
    start: float | None  # epoch seconds, when known


def _from_proc(pid: int) -> _Process | None:
    """From Linux's /proc; None when there is no /proc to ask."""
    if not PROC.is_dir():
        return None
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        boot = next(
            line for line in (PROC / "stat").read_text().splitlines() if line.startswith("btime")
        )
    except FileNotFoundError:
        return _Process(alive=False, start=None)
    except (OSError, StopIteration):
        return None
    # The command name, in parentheses, may hold spaces: count fields after its end.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):  # exited, not yet reaped by its parent
        return _Process(alive=False, start=None)
    ticks = int(fields[19])  # field 22 of stat(5), starttime, in clock ticks since boot
    return _Process(alive=True, start=int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK"))


def _from_psutil(pid: int) -> _Process | None:
    if psutil is None:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return _Process(alive=False, start=None)
        return _Process(alive=True, start=float(proc.create_time()))
    except psutil.NoSuchProcess:
        return _Process(alive=False, start=None)
    except psutil.Error:
        return None


def _from_signal(pid: int) -> _Process | None:
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return _Process(alive=False, start=None)
    except PermissionError:
        return _Process(alive=True, start=None)  # exists, owned by another user
    except OSError:
        return None
    return _Process(alive=True, start=None)


def _process(pid: int) -> _Process | None:
    """What can be known about a process of this machine; None when nothing can."""
    if pid <= 0:
        return _Process(alive=False, start=None)
    return _from_proc(pid) or _from_psutil(pid) or _from_signal(pid)


def process_start_time(pid: int) -> float | None:
    """When the process started (epoch seconds), or None if it is gone or unknowable."""
    found = _process(pid)
    return found.start if found else None


def holder_gone(holder: Holder) -> bool:
    """True only when we can tell that the holder no longer runs."""
    if holder.host != socket.gethostname():
        return False  # the database is on a shared disk: we cannot see that machine
    found = _process(holder.pid)
    if found is None:
        return False
    if not found.alive:
        return True
    # Alive, but started at another time: the pid was reused after the holder died.
    return (
        holder.process_start is not None
        and found.start is not None
        and abs(found.start - holder.process_start) > START_TOLERANCE
    )


# ---------------------------------------------------------------- the lock file


def _create(path: Path, content: str) -> bool:
    """Write `content` as a new file at `path`; False if the file exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _busy_message(db: Path, path: Path, holder: Holder) -> str:
    who = f"pid {holder.pid}" + (
        f" on {holder.host}" if holder.host != socket.gethostname() else ""
    )
    message = (
        f"数据库 {db} 正由另一个筛查进程使用（{who}，{holder.started_at} 开始），请等它结束 "
        f"database {db} is in use by another screening process ({who}, "
        f"started {holder.started_at}); wait for it to finish"
    )
    if holder.host != socket.gethostname() or _process(holder.pid) is None:
        message += f"; 若该进程已不在运行，请删除 if it is no longer running, delete {path}"
    return message


def _locking_now(db: Path) -> str:
    return (
        f"数据库 {db} 正被另一进程加锁，请稍后再试 "
        "database is being locked by another process right now; try again"
    )


def _clear_if_stale(db: Path, path: Path) -> str | None:
    """Remove the lock at `path` if its holder is gone. None when the lock is gone now;
    else the reason it stays (a live holder).

    Only the process holding `<lock>.break` may remove another's lock, and it reads the
    lock again while holding it: without that, two processes finding the same stale lock
    could both remove it, the second removing the first one's fresh lock.
    """
    breaker = path.with_name(path.name + ".break")
    if not _create(breaker, str(os.getpid())):
        if _age(breaker) > UNREADABLE_GRACE:  # its owner died inside the critical section
            breaker.unlink(missing_ok=True)
            return None
        return _locking_now(db)
    try:
        text = _read(path)
        if text is None:
            return None
        holder = Holder.from_json(text)
        if holder is None:
            if _age(path) <= UNREADABLE_GRACE:
                return _locking_now(db)
            log.warning("移除无法读取的锁文件 removing unreadable lock file %s", path)
        elif holder_gone(holder):
            log.warning(
                "移除已退出进程留下的锁 removing stale lock %s of pid %s (started %s), "
                "which no longer runs",
                path,
                holder.pid,
                holder.started_at,
            )
        else:
            return _busy_message(db, path, holder)
        path.unlink(missing_ok=True)
        return None
    finally:
        breaker.unlink(missing_ok=True)


def acquire(db_path: Path | str) -> Holder:
    """Take the lock of the database at `db_path` or raise Busy at once."""
    db = Path(db_path)
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = Holder.current()
    for _attempt in range(ATTEMPTS):
        if _create(path, me.to_json()):
            return me
        reason = _clear_if_stale(db, path)
        if reason is not None:
            raise Busy(reason)
    raise Busy(
        f"数据库 {db} 的锁 {path} 不断易手，请稍后再试 its lock keeps changing hands; try again"
    )


def release(db_path: Path | str, me: Holder) -> None:
    """Remove the lock if it is still ours (someone may have deleted it by hand and
    another run taken it since)."""
    path = lock_path(db_path)
    text = _read(path)
    if text is not None and Holder.from_json(text) == me:
        with suppress(FileNotFoundError):
            path.unlink()


@contextmanager
def hold(db_path: Path | str) -> Iterator[Holder]:
    """Hold the one-writer lock of the database for the body of the `with`."""
    me = acquire(db_path)
    try:
        yield me
    finally:
        release(db_path, me)
