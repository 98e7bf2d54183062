"""The input data contract as data: one `schemas/<source>.yaml` per source.

The YAML files say what each department sends (columns, Chinese aliases, types, checks,
natural keys); the readers, normalisers and pandera schemas are built from them, so a
county that meets a new header spelling adds an alias in a file, not in code.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SOURCES = ("roster", "medical", "education", "traffic", "civil", "disability")
COLUMN_TYPES = ("text", "id", "date", "money", "enum", "grade")


# libyaml's parser where PyYAML was built with it (the wheels are): the same documents, read
# several times faster, which every command pays for at start-up.
SAFE_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str) -> Any:
    """`yaml.safe_load(text)`, with libyaml's parser when there is one."""
    return yaml.load(text, Loader=SAFE_LOADER)


def resource_dir(name: str) -> Path:
    """`schemas/` or `parameters/`: beside the sources in a checkout, packaged in a wheel."""
    packaged = Path(__file__).parent / "_contract" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / name


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    type: str
    aliases: tuple[str, ...] = ()
    required: bool = False  # every row needs a value
    # The rules read it: the header must be in the file even where cells may be empty.
    column_required: bool = False
    values: tuple[str, ...] = ()
    min: float | None = None
    empty: Any = None  # value that an empty cell means (e.g. 0 for fees, 未监测 for status)


@dataclass(frozen=True)
class CrossCheck:
    name: str
    column: str
    op: str  # "ge" or "le": column op other, when both are present
    other: str


# Identity-hashed so schemas built from a spec can be cached per loaded spec.
@dataclass(frozen=True, eq=False)
class SourceSpec:
    source: str
    title: str
    file_prefixes: tuple[str, ...]
    kind: str  # "snapshot" | "events"
    natural_key: tuple[str, ...]
    rule_date: str | None
    columns: dict[str, ColumnSpec]
    checks: tuple[CrossCheck, ...] = ()
    id_from_certificate: str | None = None
    department: str = ""  # short name: 医保, 人口 …
    delivers: str = ""  # what it sends: 住院结算 …

    @property
    def required_columns(self) -> list[str]:
        """Columns the file must carry: those every row needs a value in and those the rules
        read (`column_required`). The certificate number stands in for a missing ID column,
        so id_number is not demanded of the disability extract."""
        return [
            c.key
            for c in self.columns.values()
            if (c.required or c.column_required)
            and not (c.key == "id_number" and self.id_from_certificate)
        ]

    def header_lookup(self) -> dict[str, str]:
        """Folded header text → column key, for the key itself and every alias."""
        lookup: dict[str, str] = {}
        for col in self.columns.values():
            for name in (col.key, *col.aliases):
                lookup[fold_header(name)] = col.key
        return lookup


def fold_header(text: str) -> str:
    """Header matching ignores blanks anywhere, full-/half-width and letter case."""
    folded = unicodedata.normalize("NFKC", str(text))
    return "".join(folded.split()).casefold()


class ContractError(ValueError):
    """A schema or aliases file that cannot be used; the message names the file."""


class UnknownSource(ContractError):
    """A source name that is none of the sources, in English or Chinese."""


def source_key(name: str, specs: dict[str, SourceSpec] | None = None) -> str:
    """The source key of `name`: the key (`medical`), the department's short name as in
    file names (`医保`), or the source's title (`医保住院结算`), in any width or case."""
    specs = _load_default() if specs is None else specs
    wanted = fold_header(name)
    for key, spec in specs.items():
        if wanted in {fold_header(n) for n in (key, spec.title, *spec.file_prefixes)}:
            return key
    known = "、".join(
        f"{next((p for p in spec.file_prefixes if p != key), key)} {key}"
        for key, spec in specs.items()
    )
    raise UnknownSource(f"未知的数据来源 unknown source {name!r}; 可选 sources: {known}")


def _parse_source(raw: dict[str, Any], origin: Path) -> SourceSpec:
    try:
        columns = {}
        for key, spec in raw["columns"].items():
            spec = dict(spec or {})
            ctype = spec.pop("type")
            if ctype not in COLUMN_TYPES:
                raise ContractError(f"{origin}: column {key}: unknown type {ctype!r}")
            columns[key] = ColumnSpec(
                key=key,
                type=ctype,
                aliases=tuple(str(a) for a in spec.pop("aliases", []) or []),
                required=bool(spec.pop("required", False)),
                column_required=bool(spec.pop("column_required", False)),
                values=tuple(str(v) for v in spec.pop("values", []) or []),
                min=spec.pop("min", None),
                empty=spec.pop("empty", None),
            )
            if spec:
                raise ContractError(f"{origin}: column {key}: unknown settings {sorted(spec)}")
        return SourceSpec(
            source=raw["source"],
            title=raw.get("title", raw["source"]),
            department=raw["department"],
            delivers=raw["delivers"],
            file_prefixes=tuple(raw["file_prefixes"]),
            kind=raw["kind"],
            natural_key=tuple(raw["natural_key"]),
            rule_date=raw.get("rule_date"),
            columns=columns,
            checks=tuple(CrossCheck(**c) for c in raw.get("checks") or []),
            id_from_certificate=raw.get("id_from_certificate"),
        )
    except (KeyError, TypeError) as exc:
        raise ContractError(f"{origin}: malformed source schema ({exc})") from exc


@cache
def _load_default() -> dict[str, SourceSpec]:
    specs = {}
    folder = resource_dir("schemas")
    for source in SOURCES:
        path = folder / f"{source}.yaml"
        specs[source] = _parse_source(read_yaml(path.read_text(encoding="utf-8")), path)
    return specs


@cache
def feedback(name: str = "feedback") -> SourceSpec:
    """A returned list's columns, read back by feedback import: schemas/<name>.yaml —
    feedback for the 疑似监测对象 list, removal_feedback for the 风险消除候选 list,
    identity_feedback for the 身份核对 list."""
    path = resource_dir("schemas") / f"{name}.yaml"
    return _parse_source(read_yaml(path.read_text(encoding="utf-8")), path)


def label(source: str) -> str:
    """The department's short name (医保), or the key itself for an unknown source."""
    spec = _load_default().get(source)
    return spec.department if spec and spec.department else source


def long_name(source: str) -> str:
    """医保（住院结算）: the department and what it delivers, as the lists say it."""
    spec = _load_default().get(source)
    return f"{spec.department}（{spec.delivers}）" if spec else source


def source_order(source: str) -> tuple[int, str]:
    """Sort key: the contract's order of sources, unknown ones after, by name."""
    return (SOURCES.index(source) if source in SOURCES else len(SOURCES), source)


def load(aliases_file: Path | None = None) -> dict[str, SourceSpec]:
    """Every source's spec, with the user's extra aliases merged in.

    An aliases file maps source → column → list of extra header names::

        medical:
          out_of_pocket: [自付费用, 个人现金支付]
    """
    specs = dict(_load_default())
    if aliases_file is None:
        return specs
    try:
        extra = read_yaml(Path(aliases_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{aliases_file}: cannot read aliases file ({exc})") from exc
    if not isinstance(extra, dict):
        raise ContractError(f"{aliases_file}: expected a mapping of source → column → aliases")
    for name, cols in extra.items():
        try:
            source = source_key(str(name), specs)
        except UnknownSource as exc:
            raise ContractError(f"{aliases_file}: {exc}") from None
        spec = specs[source]
        new_cols = dict(spec.columns)
        for key, names in (cols or {}).items():
            if key not in new_cols:
                raise ContractError(f"{aliases_file}: {source} has no column {key!r}")
            if isinstance(names, str):
                names = [names]
            col = new_cols[key]
            new_cols[key] = ColumnSpec(
                **{**col.__dict__, "aliases": col.aliases + tuple(str(n) for n in names)}
            )
        specs[source] = SourceSpec(**{**spec.__dict__, "columns": new_cols})
    return specs
