"""Where things are when the user does not say: the output contract's defaults."""

from __future__ import annotations

import os
from pathlib import Path

from .contract import resource_dir

DEFAULT_DB = "screening.duckdb"


def default_inbox() -> Path:
    """$SCREENING_INBOX when the county configured one, else the bundled sample data."""
    configured = os.environ.get("SCREENING_INBOX")
    if configured:
        return Path(configured)
    return resource_dir("sample_data")


def default_db() -> Path:
    return Path(os.environ.get("SCREENING_DB", DEFAULT_DB))


def default_out(db: Path) -> Path:
    """An output folder beside the database."""
    return Path(os.environ.get("SCREENING_OUT", db.parent / "out"))
