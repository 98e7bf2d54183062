"""The province's configuration file: its counties and where the province's outputs go.

    # province.yaml — relative paths are relative to this file
    out: /srv/province/out            # the province's folder (required)
    busy_timeout: 600                 # optional: seconds to wait for a busy database
    workers: 4                        # optional: local Dask workers (default: the cores)
    dask_address: tcp://10.0.0.5:8786 # optional: an existing Dask scheduler
    cron: "0 3 5 * *"                 # optional: the schedule of `province serve`
    counties:
      - name: 湘阴县                   # required, unique
        inbox: /srv/xiangyin/inbox    # required
        db: /srv/xiangyin/screening.duckdb
        out: /srv/xiangyin/out
        params: xiangyin.yaml         # optional, like `screening run --params`
        aliases: aliases.yaml         # optional, like `--aliases`
        mask_ids: false               # optional, like `--mask-ids`

Each county is run with exactly these settings: the environment's SCREENING_* and a
`screening.toml` in the working folder do not reach into a county (one province file, one
truth), except SCREENING_BUSY_TIMEOUT, which the operator may set for the whole run. A
mistake in the file is one line naming the file, the county and the key, before anything
runs.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screening import config as settings

TOP_KEYS = ("out", "counties", "busy_timeout", "workers", "dask_address", "cron")
COUNTY_KEYS = ("name", "inbox", "db", "out", "params", "aliases", "mask_ids")
REQUIRED_COUNTY_KEYS = ("name", "inbox", "db", "out")
BUSY_ENV = settings.SOURCES["busy_timeout"][0]


class ProvinceConfigError(settings.SettingsError):
    """The province file cannot be used; the message is the one line the user sees."""


@dataclass(frozen=True)
class County:
    """One county's settings: only paths and names, cheap to send to a Dask worker."""

    name: str
    inbox: Path
    db: Path
    out: Path
    params_file: Path | None = None
    aliases_file: Path | None = None
    mask_ids: bool = False


@dataclass(frozen=True)
class Province:
    path: Path  # the file it was read from
    out: Path
    counties: tuple[County, ...]
    busy_timeout: float = settings.DEFAULT_BUSY_TIMEOUT
    workers: int | None = None
    dask_address: str | None = None
    cron: str = settings.DEFAULT_CRON

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.counties]

    def select(self, names: Sequence[str] | None) -> tuple[County, ...]:
        """The counties named (all when none are), in the file's order; an unknown name is
        one line naming the nearest."""
        if not names:
            return self.counties
        known = self.names
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.3)
                raise ProvinceConfigError(
                    f"省级配置 {self.path} 中没有 {name!r} 这个县 no county {name!r} in the "
                    f"province file; 最接近的 nearest: {'、'.join(close or known[:5])}"
                )
        return tuple(c for c in self.counties if c.name in set(names))


def load(path: Path | str, *, busy_timeout: float | None = None) -> Province:
    """The province file at `path`, checked. `busy_timeout` (a flag) wins over
    $SCREENING_BUSY_TIMEOUT, which wins over the file's `busy_timeout`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ProvinceConfigError(f"省级配置文件不存在 province file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise ProvinceConfigError(
            f"省级配置文件无法读取 cannot read province file {path}: {first}"
        ) from None
    if not isinstance(data, dict):
        raise ProvinceConfigError(
            f"省级配置 {path} 应为键值表 should be a mapping with `out` and `counties`"
        )
    where = str(path)
    _known_keys(data, TOP_KEYS, where)
    base = path.parent
    out = _path(data, "out", base, where, required=True)
    assert out is not None
    raw = data.get("counties")
    if not isinstance(raw, list) or not raw:
        raise ProvinceConfigError(
            f"省级配置 {where}: counties 应为县的列表 should be a list of counties, each "
            "with name, inbox, db and out"
        )
    counties = tuple(_county(item, i, base, where) for i, item in enumerate(raw, start=1))
    _distinct(counties, out, where)
    timeout = _busy_timeout(busy_timeout, data.get("busy_timeout"), where)
    workers = data.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise ProvinceConfigError(f"省级配置 {where}: workers 应为正整数 should be a whole number")
    if workers is not None and workers < 1:
        raise ProvinceConfigError(f"省级配置 {where}: workers 应为正整数 should be at least 1")
    return Province(
        path=path,
        out=out,
        counties=counties,
        busy_timeout=timeout,
        workers=workers,
        dask_address=_text(data, "dask_address", where),
        cron=_text(data, "cron", where) or settings.DEFAULT_CRON,
    )


def _known_keys(data: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; 是否应为 did you mean {close[0]!r}?" if close else ""
            raise ProvinceConfigError(
                f"省级配置 {where} 中有未知的设置 unknown key {key!r} "
                f"(known: {', '.join(known)}){hint}"
            )


def _text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProvinceConfigError(f"省级配置 {where}: {key} 应为文字 should be a string")
    return value.strip()


def _path(
    data: Mapping[str, Any], key: str, base: Path, where: str, *, required: bool = False
) -> Path | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ProvinceConfigError(f"省级配置 {where}: 缺少 missing {key!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProvinceConfigError(f"省级配置 {where}: {key} 应为路径 should be a path string")
    # Absolute: the paths travel to Dask workers that do not share our working folder.
    return Path(os.path.abspath(base / Path(value.strip()).expanduser()))


def _county(item: object, number: int, base: Path, where: str) -> County:
    if not isinstance(item, dict):
        raise ProvinceConfigError(
            f"省级配置 {where}: 第 {number} 个县应为键值表 county {number} should be a mapping "
            "with name, inbox, db and out"
        )
    name = item.get("name")
    label = f"{where}: 第 {number} 个县 county {number}"
    if not isinstance(name, str) or not name.strip():
        raise ProvinceConfigError(f"省级配置 {label}: 缺少县名 missing 'name'")
    name = name.strip()
    label = f"{where}: 县 county {name!r}"
    _known_keys(item, COUNTY_KEYS, label)
    paths = {
        key: _path(item, key, base, label, required=key in REQUIRED_COUNTY_KEYS)
        for key in ("inbox", "db", "out", "params", "aliases")
    }
    mask = item.get("mask_ids", False)
    if not isinstance(mask, bool):
        raise ProvinceConfigError(
            f"省级配置 {label}: mask_ids 应为 true 或 false should be true or false"
        )
    inbox, db, out = paths["inbox"], paths["db"], paths["out"]
    assert inbox is not None and db is not None and out is not None
    return County(name, inbox, db, out, paths["params"], paths["aliases"], mask)


def _distinct(counties: Sequence[County], out: Path, where: str) -> None:
    """Two counties in one database would mix their households and lists; in one output
    folder, overwrite each other's; a county's folder must not be the province's."""
    seen: dict[tuple[str, Path], str] = {}
    for county in counties:
        keys = [("name", Path(county.name)), ("db", county.db), ("out", county.out)]
        for kind, value in keys:
            other = seen.get((kind, value))
            if other is not None:
                what = "县名 name" if kind == "name" else f"{kind}"
                raise ProvinceConfigError(
                    f"省级配置 {where}: 县 {other!r} 与 {county.name!r} 的 {what} 相同 "
                    f"counties {other!r} and {county.name!r} share their {kind}: {value}"
                )
            seen[(kind, value)] = county.name
        if county.out == out:
            raise ProvinceConfigError(
                f"省级配置 {where}: 县 {county.name!r} 的 out 与全省的 out 相同 "
                f"county {county.name!r} writes into the province's own out folder {out}"
            )


def _busy_timeout(flag: float | None, from_file: object, where: str) -> float:
    if flag is not None:
        return float(flag)
    env = os.environ.get(BUSY_ENV)
    if env:
        value: object = env
        where = f"${BUSY_ENV}"
    elif from_file is not None:
        value = from_file
    else:
        return settings.DEFAULT_BUSY_TIMEOUT
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds >= 0:
        raise ProvinceConfigError(
            f"省级配置 {where}: busy_timeout 应为非负秒数 should be a number of seconds ≥ 0"
        )
    return seconds
