"""Where a publication's files go and how they are written.

    <out>/<YYYY-MM>/suspects.parquet, evidence.parquet, removal_candidates.parquet
    <out>/<YYYY-MM>/<township folder>/疑似监测对象_<folder>_<YYYYMM>.xlsx / .csv
    <out>/<YYYY-MM>/<township folder>/风险消除候选_<folder>_<YYYYMM>.xlsx / .csv
    <out>/<YYYY-MM>/<township folder>/身份核对_<folder>_<YYYYMM>.xlsx
    <out>/<YYYY-MM>/departments/部门反馈_<department>_<YYYYMM>.xlsx

The files hold personal data: files are 0600, folders 0700. A township's folder name comes
from data, so it is made safe (and distinct from its look-alikes) before it becomes a path.
Every file is first written under a temporary name beside its place and renamed into place
once all are complete (`StagedFiles`), so a failed run leaves the previous publication as
it was, and a reader never opens half a file. The files that take long to write (the
townships' workbooks) can be written by a pool of processes, one a core
(`StagedFiles.defer`, `write_deferred`): each is given its temporary path and what it shows,
and writes the file; the parent stages and renames them with the others.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import tempfile
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import TracebackType
from typing import Any

from screening.periods import check_period

FILE_MODE = 0o600
DIR_MODE = 0o700
SUSPECTS_FILE = "suspects.parquet"
EVIDENCE_FILE = "evidence.parquet"
CANDIDATES_FILE = "removal_candidates.parquet"
LIST_PREFIX = "疑似监测对象"
CANDIDATES_PREFIX = "风险消除候选"
DEPARTMENTS_FOLDER = "departments"
DEPARTMENT_PREFIX = "部门反馈"
IDENTITY_PREFIX = "身份核对"

_UNSAFE_FILE_CHARS = frozenset('<>:"/\\|?*')
_RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_MAX_NAME_CHARS = 40


# ---------------------------------------------------------------- folders and atomic writes


def ensure_dir(path: Path) -> Path:
    """Create `path` (0700) and its missing parents; an existing folder is made 0700 too."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def period_dir(out: Path, period: str) -> Path:
    """`<out>/<YYYY-MM>`, refusing anything that is not a real period (it becomes a path)."""
    check_period(period)
    if not out.exists():
        ensure_dir(out)
    return ensure_dir(out / period)


class StagedFiles:
    """Files written under temporary names, renamed into place together by `commit`.

    On an exception inside the `with` block every temporary file is removed and the
    files already in place are untouched.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        # Files to be written by `write_deferred`: (weight, temporary path, writer, args).
        self._deferred: list[_Job] = []

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()

    def add(self, path: Path, write: Callable[[Path], object]) -> None:
        """Run `write(temp_path)`; the temp file sits beside `path` so the rename is atomic."""
        tmp = self._reserve(path)
        write(tmp)
        _settle(tmp)

    def defer(
        self, path: Path, write: Callable[..., object], args: tuple[Any, ...], weight: int = 0
    ) -> None:
        """Stage `path`, to be written by `write(temp_path, *args)` in `write_deferred`:
        `write` and `args` must pickle, for a worker process. The heaviest (`weight`, e.g.
        the rows) are started first, so that the workers finish about together."""
        self._deferred.append((weight, self._reserve(path), write, args))

    def adopt(self, other: StagedFiles) -> None:
        """Take over the files `other` staged (it is left empty): they are written and
        renamed into place with these."""
        self._pending += other._pending
        self._deferred += other._deferred
        other._pending, other._deferred = [], []

    @property
    def deferred_weight(self) -> int:
        return sum(job[0] for job in self._deferred)

    def write_deferred(self, workers: int = 1) -> None:
        """Write the deferred files: here, or with `workers` > 1 here and from a pool of
        `workers` - 1 processes (spawned: a forked copy of a process running polars'
        threads may hang). The pool's processes take the heaviest files first, this one the
        lightest, until none is left. A writer's failure is raised once the files being
        written are done, and what was not started is not; a worker process that dies
        leaves its files to this one."""
        jobs = deque(sorted(self._deferred, key=lambda job: -job[0]))
        self._deferred = []
        written = [tmp for _, tmp, _, _ in jobs]
        if workers > 1 and len(jobs) > 1:
            jobs = _write_in_pool(jobs, workers - 1)
        for _, tmp, write, args in jobs:
            write(tmp, *args)
        for tmp in written:
            _settle(tmp)

    def commit(self) -> list[Path]:
        if self._deferred:
            raise RuntimeError("staged files not written yet: call write_deferred first")
        done = []
        for tmp, path in self._pending:
            os.replace(tmp, path)
            done.append(path)
        self._pending = []
        for folder in {p.parent for p in done}:
            _fsync_dir(folder)
        return done

    def discard(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending = []
        self._deferred = []

    def _reserve(self, path: Path) -> Path:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        self._pending.append((tmp, path))
        return tmp


_Job = tuple[int, Path, Callable[..., object], tuple[Any, ...]]


def _write_in_pool(jobs: deque[_Job], processes: int) -> deque[_Job]:
    """Write `jobs` here and from a pool of `processes`; returns the jobs left to write
    here: none, unless the pool broke (a worker killed, out of memory, or started by a
    script that does not guard its main module, which a spawned process imports)."""
    running: dict[Future[object], _Job] = {}
    try:
        with ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            while jobs or running:
                # Each process of the pool one file ahead, so that none waits for this one.
                while jobs and len(running) < 2 * processes:
                    job = jobs.popleft()
                    running[pool.submit(job[2], job[1], *job[3])] = job
                if jobs:
                    _, tmp, write, args = jobs.pop()
                    write(tmp, *args)
                else:
                    wait(running, return_when=FIRST_COMPLETED)
                for future in [f for f in running if f.done()]:
                    future.result()  # a writer's failure: raised, the rest left unstarted
                    del running[future]
    except BrokenProcessPool:
        return deque([*running.values(), *jobs])
    return deque()


def _settle(tmp: Path) -> None:
    os.chmod(tmp, FILE_MODE)  # a writer may have re-created the file with its own mode
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    with StagedFiles() as staged:
        staged.add(path, write)
        return staged.commit()[0]


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------- township folders


def safe_name(name: str) -> str:
    """A folder/file-name part for a township name that comes from data.

    The name is kept when it is already safe on Linux and Windows; otherwise separators,
    control and format characters are replaced, and a short hash of the real name is
    appended so two different names never share a folder. The real name stays in the files.
    """
    cleaned = _cleaned(name)
    if cleaned == name and 0 < len(cleaned) <= _MAX_NAME_CHARS:
        return name
    return _hashed(name, cleaned)


def _cleaned(name: str) -> str:
    nfc = unicodedata.normalize("NFC", name)
    cleaned = "".join("_" if _unsafe_char(c) else c for c in nfc)
    cleaned = cleaned.replace("..", "_").strip(" .")
    if cleaned.split(".")[0].upper() in _RESERVED_NAMES:
        cleaned = "_" + cleaned
    return cleaned


def _hashed(name: str, cleaned: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned[:_MAX_NAME_CHARS] or '乡镇'}_{digest}"


def folder_key(folder: str) -> str:
    """Folder names that one file system may take for the same folder: Windows and macOS
    ignore case, and a full-width Ｃ is easily typed for a C."""
    return unicodedata.normalize("NFKC", folder).casefold()


def township_folders(names: Iterable[str]) -> dict[str, str]:
    """Each township's folder name. It is `safe_name`, except for names that differ only
    in case or in full-/half-width characters (`Chengguan`, `CHENGGUAN`, `Ｃhengguan`):
    each of them gets a short hash of its own name appended, so none takes the others'
    folder and none depends on which of them came first."""
    unique = sorted(set(names))
    by_key: dict[str, list[str]] = {}
    for name in unique:
        by_key.setdefault(folder_key(safe_name(name)), []).append(name)
    folders = {}
    for group in by_key.values():
        for name in group:
            folders[name] = safe_name(name) if len(group) == 1 else _hashed(name, _cleaned(name))
    _check_unique_folders(folders)
    return folders


def _unsafe_char(c: str) -> bool:
    # Category C covers control, format (e.g. right-to-left override), surrogate, unassigned.
    return c in _UNSAFE_FILE_CHARS or (unicodedata.category(c)[0] in "CZ" and c != " ")


def _check_unique_folders(folders: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for name, folder in folders.items():
        key = folder_key(folder)
        if key in seen:
            raise ValueError(f"townships {seen[key]!r} and {name!r} would share a folder")
        seen[key] = name


# ---------------------------------------------------------------- the published files


def township_paths(
    period_path: Path, township: str, period: str, folder_name: str | None = None
) -> tuple[Path, Path]:
    """The xlsx and csv paths of one township's list, proven to lie inside `period_path`;
    the folder is `folder_name` (from `township_folders`), else `safe_name(township)`."""
    folder = period_path / (folder_name or safe_name(township))
    if folder.resolve().parent != period_path.resolve():
        raise ValueError("township folder would leave the output folder")
    stem = f"{LIST_PREFIX}_{folder.name}_{period.replace('-', '')}"
    return folder / f"{stem}.xlsx", folder / f"{stem}.csv"


def candidate_paths(
    period_path: Path, township: str, period: str, folder_name: str | None = None
) -> tuple[Path, Path]:
    """The xlsx and csv of one township's 风险消除候选 list, beside its 疑似监测对象 list."""
    xlsx, _ = township_paths(period_path, township, period, folder_name)
    stem = f"{CANDIDATES_PREFIX}_{xlsx.parent.name}_{period.replace('-', '')}"
    return xlsx.parent / f"{stem}.xlsx", xlsx.parent / f"{stem}.csv"


def department_path(period_path: Path, department: str, period: str) -> Path:
    """`<period>/departments/部门反馈_<department>_<YYYYMM>.xlsx` (the department's short
    name, 医保)."""
    name = f"{DEPARTMENT_PREFIX}_{safe_name(department)}_{period.replace('-', '')}.xlsx"
    return period_path / DEPARTMENTS_FOLDER / name


def identity_path(
    period_path: Path, township: str, period: str, folder_name: str | None = None
) -> Path:
    """The xlsx of one township's 身份核对 list, beside its 疑似监测对象 list."""
    xlsx, _ = township_paths(period_path, township, period, folder_name)
    return xlsx.parent / f"{IDENTITY_PREFIX}_{xlsx.parent.name}_{period.replace('-', '')}.xlsx"


def remove_stale(target: Path, period: str, keep: set[Path]) -> None:
    """Drop list files of townships no longer listed (e.g. a re-run after a correction).

    Only files this module names are touched; a folder they leave empty is removed.
    """
    prefixes = f"(?:{LIST_PREFIX}|{CANDIDATES_PREFIX}|{IDENTITY_PREFIX})"
    ours = re.compile(rf"^\.?{prefixes}_.*_{period.replace('-', '')}\.(xlsx|csv)(\..*\.tmp)?$")
    for folder in sorted(p for p in target.iterdir() if p.is_dir() and not p.is_symlink()):
        stale = [
            f for f in folder.iterdir() if f not in keep and ours.match(f.name) and f.is_file()
        ]
        for file in stale:
            file.unlink()
        if stale and not any(folder.iterdir()):
            folder.rmdir()
