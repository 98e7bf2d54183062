"""The console the commands print to, and the tables more than one command prints.

On a terminal the output is rich's; elsewhere (cron's log, make, a pipe) it is plain lines,
each led by the time, never wrapped (a file name stays whole). The package's warnings for
the person waiting (a busy database, a stale lock cleared) come out on stderr.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from screening import config

if TYPE_CHECKING:
    from screening.ingest.results import SourceResult

# Wide enough that no table row or line is ever wrapped in a log file.
PLAIN_WIDTH = 1000


class _Stamped:
    """A text stream whose every line starts with the local time (a log line)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S ")
        # rich pads lines to the table's width: a log line ends with its last character.
        lines = [line.rstrip() for line in text.splitlines()]
        ended = text.endswith("\n")
        body = "\n".join(stamp + line if line else line for line in lines)
        self._stream.write(body + ("\n" if ended else ""))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False


class LineConsole(Console):
    """rich's console on a terminal; elsewhere plain, unwrapped, timestamped lines. The
    stream is looked up at each print (a test runner swaps it)."""

    @staticmethod
    def _tty(stream: IO[str]) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def file(self) -> IO[str]:
        stream = self._file or (sys.stderr if self.stderr else sys.stdout)
        return stream if self._tty(stream) else _Stamped(stream)  # type: ignore[return-value]

    @file.setter
    def file(self, new_file: IO[str]) -> None:
        self._file = new_file

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PLAIN_WIDTH, self._height or 25)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = LineConsole()
err = LineConsole(stderr=True)


class _ToConsole(logging.Handler):
    """The package's warnings meant for the person waiting (a busy database, a stale lock
    cleared) as lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from screening.ids import mask_text

        err.print(Text(mask_text(record.getMessage()), style="yellow"), soft_wrap=True)


_HANDLER = _ToConsole(logging.WARNING)
for _name in ("screening.db.connect", "screening.db.lock"):
    if _HANDLER not in logging.getLogger(_name).handlers:
        logging.getLogger(_name).addHandler(_HANDLER)


def demo_banner(demo: bool) -> None:
    """The line that says the output is of the synthetic sample."""
    if demo:
        from screening.publish.report import DEMO_SENTENCE

        console.print(Text(f"{config.DEMO_LABEL}: {DEMO_SENTENCE}", style="bold magenta"))


@contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner on an interactive stderr only: elsewhere (a scheduled run, a pipe) it
    would leave an empty line before the one-line error."""
    if not err.is_terminal:
        yield lambda _source: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as bar:
        task = bar.add_task(label)
        yield lambda source: bar.update(task, description=f"{label}: {source}")


def table_of(title: str, headers: Sequence[str], right: Sequence[str] = ()) -> Table:
    """A table titled on the left; the `right` columns (numbers) aligned right."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left", overflow="fold")
    return table


def cells(*values: object) -> list[Text]:
    """Data as plain text: a name or file with [brackets] is not rich markup."""
    return [Text("—" if v is None or v == "" else str(v)) for v in values]


def source_name(source: str | None) -> str:
    """A source as people read it: its Chinese label, then its key."""
    from screening import contract

    return f"{contract.label(source)} {source}" if source else "—"


def risk_name(code: str) -> str:
    """A risk point as people read it: its label, then its code."""
    from screening.rules import EVIDENCE_LABELS

    return f"{EVIDENCE_LABELS.get(code, code)} {code}"


def ingest_table(period: str, results: list[SourceResult]) -> Table:
    """What an ingest did with each source (`ingest`, `run`, and a held delivery)."""
    from screening import contract
    from screening.ids import mask_text
    from screening.ingest.results import STATUS_LABELS

    table = Table(title=f"入库 ingest {period}", title_justify="left")
    numbers = ("读入 read", "接收 accepted", "拒收 rejected", "重复 duplicate")
    for col in ("数据源 source", "文件 file", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    table.add_column("状态 status")
    table.add_column("说明 message", overflow="fold")
    styles = {"loaded": "green", "unchanged": "green", "empty": "yellow", "missing": "yellow"}
    for r in results:
        style = styles.get(r.status, "red")
        table.add_row(
            # A source kept in force names the stored file when this period brought none.
            *cells(
                f"{contract.label(r.source)} {r.source}",
                mask_text(r.file or r.kept_file),
                r.rows_read,
                r.rows_accepted,
                r.rows_rejected,
                r.rows_duplicate,
            ),
            Text(f"{STATUS_LABELS[r.status]} {r.status}", style=style),
            Text(mask_text(r.message)),
        )
    return table
