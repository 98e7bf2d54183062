"""The program's version: what `runs.code_version` records and what re-reading keys on."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from screening import __version__


@cache
def code_version() -> str:
    """The package version, with the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__
