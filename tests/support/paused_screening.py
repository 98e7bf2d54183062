"""`screening` with a pause point, for the tests that kill a real process at a known point.

`command(...)` runs this file as `screening` with the given arguments; `environment(point,
marker)` names the point: at it the process writes its pid to `marker` and sleeps until
the test kills it. The points are those of `run.STAGES`, where the run calls its no-op
seam `run.after_stage`, and "staged": after `files.StagedFiles` has written every file
under its temporary name, before it renames any. Production code reads no variable of
these: the pause is put in here, by replacing the seam and wrapping the commit.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

PAUSE_AFTER_ENV = "SCREENING_TEST_PAUSE_AFTER"
PAUSE_MARKER_ENV = "SCREENING_TEST_PAUSE_MARKER"
# Longer than any test waits: the test kills the process well before.
PAUSE_SECONDS = 600.0


def command(*args: str) -> list[str]:
    """The command line of a paused `screening` with these arguments."""
    return [sys.executable, str(Path(__file__).resolve()), *args]


def environment(point: str, marker: Path) -> dict[str, str]:
    """The environment that makes it pause at `point`, writing `marker` when it does."""
    return {**os.environ, PAUSE_AFTER_ENV: point, PAUSE_MARKER_ENV: str(marker)}


def pause(point: str) -> None:
    """At the point named by the environment: write the marker, then sleep."""
    if os.environ.get(PAUSE_AFTER_ENV) != point:
        return
    marker = os.environ.get(PAUSE_MARKER_ENV)
    if marker:
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(PAUSE_SECONDS)


def main() -> None:
    from screening.cli.main import app
    from screening.pipeline import run
    from screening.publish import files

    commit = files.StagedFiles.commit

    def paused_commit(self: files.StagedFiles) -> list[Path]:
        pause("staged")
        return commit(self)

    run.after_stage = pause
    files.StagedFiles.commit = paused_commit  # type: ignore[method-assign]
    app(prog_name="screening")


if __name__ == "__main__":
    main()
