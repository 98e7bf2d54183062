"""screening: monthly department-data screening for households at risk of (re)falling
into poverty (防返贫动态监测 疑似监测对象筛查)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("screening")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
