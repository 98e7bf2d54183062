"""Discovery: which file in `<inbox>/<YYYY-MM>/` is which source's extract.

A file belongs to a source when its name starts with the source key or with the
department's Chinese name (data contract, "Where files arrive"). Only the period folder
itself is read, never its subfolders, so an officer can keep old copies in one. Two files
of one source stop a run before anything changes (`TwoFilesForOneSource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from screening.contract import SourceSpec, fold_header
from screening.periods import check_period

FORMATS = (".csv", ".xlsx", ".parquet")
# Files a department may send by mistake in another office format: named like a source,
# they are that source's delivery, rejected with a reason, rather than "missing".
OTHER_OFFICE_FORMATS = (".xls", ".xlsm", ".xlsb", ".et", ".ods", ".txt", ".tsv", ".dbf")
CANDIDATES = FORMATS + OTHER_OFFICE_FORMATS


class TwoFilesForOneSource(ValueError):
    """Two files in a period folder belong to one source: which one the department meant
    cannot be guessed, so nothing is read. The message names both and the fix."""


@dataclass(frozen=True)
class Found:
    source: str
    path: Path | None  # None: missing or ambiguous
    candidates: tuple[Path, ...] = ()
    problem: str | None = None  # 'missing' | 'ambiguous'

    @property
    def message(self) -> str:
        if self.problem == "ambiguous":
            names = ", ".join(p.name for p in self.candidates)
            return f"同一数据源有多个文件 more than one file for {self.source}: {names}"
        if self.problem == "missing":
            return f"本期没有该数据源的文件 no file for {self.source} in this period"
        return ""


def check_one_file_per_source(found: dict[str, Found], folder: Path) -> None:
    """Raise `TwoFilesForOneSource` naming every source with more than one file."""
    doubled = [f for f in found.values() if f.problem == "ambiguous"]
    if not doubled:
        return
    names = "; ".join(f"{f.source}: {', '.join(p.name for p in f.candidates)}" for f in doubled)
    raise TwoFilesForOneSource(
        f"同一数据源有多个文件，未读入任何文件 more than one file for one source in {folder} "
        f"({names}); 请用新文件替换旧文件，或把旧文件移入子文件夹（子文件夹不读取） "
        "replace the old file with the new one, or move the old one into a subfolder "
        "(subfolders are not read)"
    )


def source_of(filename: str, specs: dict[str, SourceSpec]) -> str | None:
    """The source a file name belongs to, by the longest matching prefix."""
    name = fold_header(filename)
    best: tuple[int, str] | None = None
    for source, spec in specs.items():
        for prefix in spec.file_prefixes:
            p = fold_header(prefix)
            if name.startswith(p) and (best is None or len(p) > best[0]):
                best = (len(p), source)
    return best[1] if best else None


def _candidates(folder: Path, specs: dict[str, SourceSpec]) -> dict[str, list[Path]]:
    """Each source's files in `folder` (not its subfolders). A file in another office
    format (.xls, .txt …) counts only when the source has no file in a data format: a
    department's note (医保说明.txt) beside its data (医保结算.xlsx) is not a second file."""
    by_source: dict[str, list[Path]] = {s: [] for s in specs}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith((".", "~$")):
                continue
            if path.suffix.lower() not in CANDIDATES:
                continue
            source = source_of(path.name, specs)
            if source is not None:
                by_source[source].append(path)
    for source, paths in by_source.items():
        data = [p for p in paths if p.suffix.lower() in FORMATS]
        if data:
            by_source[source] = data
    return by_source


def discover(inbox: Path, period: str, specs: dict[str, SourceSpec]) -> dict[str, Found]:
    """One `Found` per source. Hidden files, Excel's `~$…` lock files and files of
    non-office formats (a .pdf scan, a .md5) are not candidates."""
    folder = Path(inbox) / check_period(period)
    found = {}
    for source, paths in _candidates(folder, specs).items():
        if not paths:
            found[source] = Found(source, None, problem="missing")
        elif len(paths) > 1:
            found[source] = Found(source, None, tuple(paths), problem="ambiguous")
        else:
            found[source] = Found(source, paths[0], (paths[0],))
    return found


def unrecognised(inbox: Path, period: str, specs: dict[str, SourceSpec]) -> list[Path]:
    """Files in the period folder that are read as no source's delivery (reported, never
    read): unknown names and formats, and notes beside a source's data file."""
    folder = Path(inbox) / check_period(period)
    if not folder.is_dir():
        return []
    used = {p for paths in _candidates(folder, specs).values() for p in paths}
    return [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith((".", "~$")) and p not in used
    ]


def has_data_files(inbox: Path, period: str, specs: dict[str, SourceSpec]) -> bool:
    """Whether the period folder holds any source's file at all."""
    folder = Path(inbox) / check_period(period)
    return any(_candidates(folder, specs).values())


def files_in_subfolders(folder: Path, spec: SourceSpec) -> list[Path]:
    """Files of `spec`'s source in the subfolders of a period folder (which are not read)."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for sub in folder.iterdir()
        if sub.is_dir() and not sub.name.startswith(".")
        for path in sub.rglob("*")
        if path.is_file()
        and path.suffix.lower() in CANDIDATES
        and source_of(path.name, {spec.source: spec}) == spec.source
    )
