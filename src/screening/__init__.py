"""screening: monthly department-data screening for households at risk of (re)falling
into poverty (防返贫动态监测 疑似监测对象筛查)."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # The version is looked up when asked for: importlib.metadata costs every command
    # about 30 ms of start-up, and only a run records the version.
    if name != "__version__":
        raise AttributeError(f"module 'screening' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("screening")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"
