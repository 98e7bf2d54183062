"""The settings every command and the monthly flow run with, from one place.

Each setting comes from, in this order: a command-line flag (or a flow parameter), the
environment (`SCREENING_INBOX`, …), `screening.toml` in the working folder, a default.
The inbox has no default: it is never guessed. The bundled synthetic county is used only
when asked for by name (`--demo`); its database and lists then go to `demo/` unless
`--db` / `--out` say otherwise, never to the database the environment or the settings
file name, which are production's.

    # screening.toml (every key optional; relative paths are relative to this file)
    inbox = "/srv/screening/inbox"
    db = "/srv/screening/screening.duckdb"
    out = "/srv/screening/out"
    params = "county.yaml"
    aliases = "aliases.yaml"
    mask_ids = false
    cron = "0 3 5 * *"
    busy_timeout = 600       # seconds to wait for a database another process has open

This module imports nothing heavy: the command line reads it before `--help`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screening.contract import resource_dir

SETTINGS_FILE = "screening.toml"
DEFAULT_DB = "screening.duckdb"
DEFAULT_CRON = "0 3 5 * *"  # minute hour day-of-month month day-of-week: 03:00 on the 5th
DEFAULT_BUSY_TIMEOUT = 600.0
DEMO_FOLDER = "demo"
# Said by every output made from the bundled synthetic county.
DEMO_LABEL = "示例数据 synthetic sample"
# What people read on the lists, the page and the departments' files made from the sample.
DEMO_WORDS = "数据来自程序自带的虚构示例县，所列人员均不存在"

# setting → (environment variable, key in screening.toml)
SOURCES: dict[str, tuple[str, str]] = {
    "inbox": ("SCREENING_INBOX", "inbox"),
    "db": ("SCREENING_DB", "db"),
    "out": ("SCREENING_OUT", "out"),
    "params_file": ("SCREENING_PARAMS", "params"),
    "aliases_file": ("SCREENING_ALIASES", "aliases"),
    "mask_ids": ("SCREENING_MASK_IDS", "mask_ids"),
    "cron": ("SCREENING_CRON", "cron"),
    "busy_timeout": ("SCREENING_BUSY_TIMEOUT", "busy_timeout"),
}
_PATHS = ("inbox", "db", "out", "params_file", "aliases_file")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is the one line the user sees."""


def demo_inbox() -> Path:
    """The bundled synthetic county (`sample_data/`, packaged in a wheel)."""
    return resource_dir("sample_data")


def is_demo_inbox(inbox: Path | str) -> bool:
    """Whether `inbox` is the bundled synthetic county, however it was named."""
    try:
        return Path(inbox).resolve() == demo_inbox().resolve()
    except OSError:
        return False


@dataclass(frozen=True)
class Settings:
    """What a command runs with. `origin` says where each value came from (`--inbox`,
    `$SCREENING_INBOX`, `screening.toml`, `default`, `--demo`), for messages."""

    inbox: Path | None
    db: Path
    out: Path
    params_file: Path | None = None
    aliases_file: Path | None = None
    mask_ids: bool = False
    cron: str = DEFAULT_CRON
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    demo: bool = False
    origin: Mapping[str, str] = field(default_factory=dict)

    def require_inbox(self) -> Path:
        """The inbox folder, or a one-line refusal saying how to name it."""
        if self.inbox is None:
            raise SettingsError(
                "未指定收件箱 no inbox given: 用 --inbox 目录、环境变量 SCREENING_INBOX 或 "
                f"{SETTINGS_FILE} 中的 inbox 指定；演示请用 --demo "
                "(name it with --inbox DIR, $SCREENING_INBOX or `inbox = ...` in "
                f"{SETTINGS_FILE}; --demo screens the bundled synthetic sample)"
            )
        return self.inbox


def read_file(path: Path) -> dict[str, Any]:
    """The settings file's values by setting name, paths made absolute against its folder;
    {} when there is no file."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"设置文件无法读取 cannot read {path}: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"设置文件无法读取 cannot read {path}: {exc.strerror}") from None
    by_key = {key: name for name, (_env, key) in SOURCES.items()}
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(by_key), n=1)
        hint = f"; 是否应为 did you mean {close[0]!r}?" if close else ""
        raise SettingsError(
            f"设置文件 {path} 中有未知的设置 unknown setting {unknown[0]!r} "
            f"(known: {', '.join(by_key)}){hint}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = by_key[key]
        if name in _PATHS:
            if not isinstance(value, str) or not value.strip():
                raise SettingsError(f"设置文件 {path}: {key} 应为路径 should be a path string")
            value = path.parent / Path(value).expanduser()
        values[name] = value
    return values


def _typed(name: str, value: Any, where: str) -> Any:
    if name in _PATHS:
        return Path(value)
    if name == "mask_ids":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise SettingsError(f"{where}: mask_ids 应为 true 或 false should be true or false")
    if name == "busy_timeout":
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if isinstance(value, bool) or not seconds >= 0:
            raise SettingsError(
                f"{where}: busy_timeout 应为非负秒数 should be a number of seconds ≥ 0"
            )
        return seconds
    if not isinstance(value, str):
        raise SettingsError(f"{where}: {name} 应为文字 should be a string")
    return value


def load(
    *,
    inbox: Path | None = None,
    db: Path | None = None,
    out: Path | None = None,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    mask_ids: bool | None = None,
    cron: str | None = None,
    busy_timeout: float | None = None,
    demo: bool = False,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings in force: the arguments (flags; None = not given), else the
    environment, else `screening.toml` in `cwd`, else the defaults."""
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else Path(cwd)
    settings_file = here / SETTINGS_FILE
    from_file = read_file(settings_file)
    flags: dict[str, Any] = {
        "inbox": inbox,
        "db": db,
        "out": out,
        "params_file": params_file,
        "aliases_file": aliases_file,
        "mask_ids": mask_ids,
        "cron": cron,
        "busy_timeout": busy_timeout,
    }
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, (variable, key) in SOURCES.items():
        flag = name.removesuffix("_file").replace("_", "-")
        if flags[name] is not None:
            values[name], origin[name] = _typed(name, flags[name], f"--{flag}"), f"--{flag}"
        elif env.get(variable):
            values[name] = _typed(name, env[variable], f"${variable}")
            origin[name] = f"${variable}"
        elif name in from_file:
            values[name] = _typed(name, from_file[name], f"{settings_file}: {key}")
            origin[name] = SETTINGS_FILE
    if demo:
        if inbox is not None:
            raise SettingsError(
                "--demo 与 --inbox 不能同时使用 --demo screens the bundled sample: "
                "give --inbox or --demo, not both"
            )
        # Production's database and folders (environment, settings file) stay untouched.
        values["inbox"], origin["inbox"] = demo_inbox(), "--demo"
        for name, default in (("db", Path(DEMO_FOLDER) / DEFAULT_DB), ("out", None)):
            if origin.get(name, "").startswith("--"):
                continue
            values.pop(name, None)
            if default is not None:
                values[name], origin[name] = here / default, "--demo"
    db_path = values.get("db", here / DEFAULT_DB)
    origin.setdefault("db", "default")
    out_path = values.get("out", db_path.parent / "out")
    origin.setdefault("out", "default")
    found_inbox = values.get("inbox")
    return Settings(
        inbox=found_inbox,
        db=db_path,
        out=out_path,
        params_file=values.get("params_file"),
        aliases_file=values.get("aliases_file"),
        mask_ids=values.get("mask_ids", False),
        cron=values.get("cron", DEFAULT_CRON),
        busy_timeout=values.get("busy_timeout", DEFAULT_BUSY_TIMEOUT),
        demo=demo or (found_inbox is not None and is_demo_inbox(found_inbox)),
        origin=origin,
    )
