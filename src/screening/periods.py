"""Periods: the month being screened, `YYYY-MM`, and the arithmetic every stage does on it."""

from __future__ import annotations

import calendar
import datetime as dt
import re

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


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
