"""How a command fails: one line on stderr and a non-zero exit — 2 for a problem the user
can fix, 1 for a bug (its masked traceback kept in a file), 3 when a completeness gate held
a delivery (`--accept-held SOURCE` uses it anyway). Every command is wrapped in
`one_line_errors`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from rich.text import Text

from screening.cli.console import console, err, ingest_table, source_name

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; its message is the one line we print."""


# Known failures become one line; anything else is a bug and keeps its traceback. Named by
# module, so that catching them imports nothing: a module not imported raised nothing. A
# message that does not start in Chinese is led by its kind's Chinese name.
EXPECTED_ERRORS = (
    ("screening.config", "SettingsError", "设置有误"),
    ("screening.periods", "PeriodError", "期次有误"),
    ("screening.ingest.cells", "FileRejected", "文件无法使用"),
    ("screening.contract", "ContractError", "数据约定或表头别名有误"),
    ("screening.db.connect", "DatabaseBusy", "数据库正被占用"),
    ("screening.pipeline.errors", "RunError", "无法完成筛查"),
    ("screening.params", "ParameterError", "参数有误"),
    ("screening.inspect.base", "ExplainError", "无法说明"),
    ("screening.feedback.imports", "FeedbackError", "无法导入核实结果"),
    ("screening.ingest.inbox", "TwoFilesForOneSource", "同一数据源有两个文件"),
    ("screening.ingest.deliveries", "NothingToWithdraw", "没有可撤回的数据"),
)


def expected_errors() -> dict[type[BaseException], str]:
    """The known failures raised by the modules loaded so far, with their Chinese names."""
    found: dict[type[BaseException], str] = {UserError: "", FileNotFoundError: "文件不存在"}
    for module, name, chinese in EXPECTED_ERRORS:
        if module in sys.modules:
            found[getattr(sys.modules[module], name)] = chinese
    return found


def chinese_first(exc: BaseException, line: str) -> str:
    """`line`, led by the Chinese name of the error's kind unless it starts in Chinese."""
    if line[:1] >= "\u2e80":  # CJK and full-width punctuation
        return line
    kinds = expected_errors()
    chinese = next((kinds[k] for k in type(exc).__mro__ if k in kinds), "")
    return f"{chinese} {line}" if chinese else line


def one_line_errors(func: F) -> F:
    """The command, its failures turned into one line on stderr and an exit status."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, typer.Exit):
            raise  # typer's own Exit is not click's (typer ≥ 0.20): a chosen exit status
        except Exception as exc:
            from screening.ids import mask_text

            held = sys.modules.get("screening.ingest.gates")
            if held is not None and isinstance(exc, held.DeliveryHeld):
                _held(exc)
            if isinstance(exc, tuple(expected_errors())):
                # Messages may quote data: never read as markup, never an ID number in full.
                line = chinese_first(exc, mask_text(" ".join(str(exc).split())))
                err.print(Text.assemble(("错误 error: ", "bold red"), line), soft_wrap=True)
                raise typer.Exit(2) from None
            # A bug or an environment failure (disk full, permissions): still one line for
            # the officer and for cron's log, the masked traceback kept in a file for us.
            first = " ".join(str(exc).split())[:300]
            line = mask_text(f"{type(exc).__name__}: {first}")
            kept = _keep_traceback(exc)
            err.print(
                Text.assemble(
                    ("内部错误 internal error: ", "bold red"), line, f" (详情 details: {kept})"
                ),
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _held(exc: Any) -> None:
    """A delivery held by a completeness gate: not a failure of the program, the officer
    decides. The ingest table and each gate on stdout, one line on stderr, exit status 3
    (output contract)."""
    from screening.ids import mask_text

    if exc.results:
        console.print(ingest_table(exc.period, exc.results))
    for gate in exc.held:
        console.print(
            Text(
                f"! 暂扣 held: {source_name(gate.source)} {mask_text(gate.file)}: {gate.describe()}"
            ),
            style="bold yellow",
        )
    line = mask_text(" ".join(str(exc).split()))
    err.print(Text.assemble(("暂扣 held: ", "bold yellow"), line), soft_wrap=True)
    raise typer.Exit(exc.exit_code) from None


def _keep_traceback(exc: BaseException) -> Path:
    """The traceback, ID numbers masked, in a private file under the temp folder."""
    from screening.ids import mask_text

    text = mask_text("".join(traceback.format_exception(exc)))
    fd, name = tempfile.mkstemp(prefix="screening-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp creates it 0600
        fh.write(text)
    return Path(name)
