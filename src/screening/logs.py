"""Libraries that log more than a person needs, kept quiet for a block of our work."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quieter(name: str, level: int) -> Iterator[None]:
    """The library logger `name` drops records below `level` inside the block; its own
    level is put back after, whatever happens."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)
