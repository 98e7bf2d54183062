"""How a run's failures are told: the error for a run that cannot produce lists, the
one-line reason `runs` records (ID numbers masked), and the status it records."""

from __future__ import annotations

from screening import ids
from screening.ingest.gates import DeliveryHeld


class RunError(Exception):
    """The run could not produce lists; the message is the one line the user sees."""


class Redacted(RunError):
    """A failure whose message named an ID number, raised again with the number masked
    (see `redacted`); its message is already the one line to record."""


def mentions_id(exc: BaseException) -> bool:
    """Whether the exception or any exception it chains to names an ID number."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if ids.names_id(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def redacted(exc: BaseException) -> BaseException:
    """`exc`, or when it (or an exception it chains to) names an ID number, a `Redacted`
    error saying the same with the number masked: for logs that print messages and
    tracebacks. Raise the result `from None` so the original is not printed with it."""
    return Redacted(one_line(exc)) if mentions_id(exc) else exc


def one_line(exc: BaseException) -> str:
    """The reason recorded for a failed run: type and first line, ID numbers masked."""
    if isinstance(exc, Redacted):
        return str(exc)[:500]
    text = str(exc).strip().splitlines()
    return ids.mask_text(f"{type(exc).__name__}: {text[0] if text else ''}")[:500]


def run_status(exc: BaseException) -> str:
    """How `runs` records a run that ended with `exc`: held, or failed."""
    return "held" if isinstance(exc, DeliveryHeld) else "failed"
