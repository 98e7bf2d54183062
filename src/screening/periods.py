"""Periods: the month being screened, `YYYY-MM`, and the arithmetic every stage does on it."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from pathlib import Path

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# A period in a file name: 202609, 2026-09, 2026_09, 2026.9, 2026年9月 (not inside a longer
# number, so an ID or a date like 20260915 is not read as one).
_NAMED_PERIOD = re.compile(
    r"(?<!\d)(20\d{2})(?:(0[1-9]|1[0-2])(?!\d)|\s*[-_.年]\s*(0?[1-9]|1[0-2])(?!\d))"
)


class PeriodError(ValueError):
    """Not a period; the message is the one line the user sees."""


def check_period(period: str) -> str:
    if not PERIOD_RE.match(period or ""):
        raise PeriodError(
            f"期次应为 YYYY-MM period must be YYYY-MM with a month 01–12, got {period!r}"
        )
    return period


def parse_period(period: str) -> tuple[int, int]:
    m = PERIOD_RE.match(str(period))
    if not m:
        raise PeriodError(f"期次应为 YYYY-MM period must be YYYY-MM, got {period!r}")
    return int(m.group(1)), int(m.group(2))


def period_end(period: str) -> dt.date:
    """end(P): the last day of the month."""
    year, month = parse_period(period)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def period_start(period: str) -> dt.date:
    year, month = parse_period(period)
    return dt.date(year, month, 1)


def shift(period: str, months: int) -> str:
    """The period `months` later (earlier when negative)."""
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def previous_period(period: str) -> str:
    return shift(period, -1)


def period_words(period: str) -> str:
    """2026年9月: the period as a list's title says it."""
    year, month = parse_period(period)
    return f"{year}年{month}月"


def periods_named(filename: str) -> list[str]:
    """The periods (YYYY-MM) a file name names, in order, without repeats."""
    found: list[str] = []
    for m in _NAMED_PERIOD.finditer(unicodedata.normalize("NFKC", Path(filename).stem)):
        period = f"{m.group(1)}-{int(m.group(2) or m.group(3)):02d}"
        if period not in found:
            found.append(period)
    return found
