"""Rule parameters: every number of the screening rules, effective-dated, as data.

`parameters/default.yaml` ships the defaults, in OpenFisca's layout: a parameter is a
node with a `unit` and `values:` mapping effective date → value (or → `{value, reference}`
when that value has its own document, e.g. a provincial notice's 文号); other nodes are
groups. Every node may carry a `label` (the short Chinese name the lists print), a
`description` and a `reference`. The file is the one list of parameters: the code reads
them by name from the resolved tree (`params.monitoring_line`, `params.working_age`
→ (16, 59), `params.scale_check.ceiling`), typed by their unit.

A county's file names only the parameters it changes and is merged over the defaults by
parameter name. A period is screened with the value in force on its last day, and the
monitoring line is flagged as stale when it was not set for the period's own year,
because provinces publish a new line every year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from screening import param_units
from screening.contract import SAFE_LOADER, resource_dir
from screening.periods import period_end

# bool (switch), None (cap: none) and a list of band mappings are param_units' values.
ParamValue = int | float | bool | None | list[int] | list[str] | list[dict[str, Any]]

# How a value of each unit is written and read: checked when a file is loaded, typed when
# the code reads it.
UNITS = (
    "currency-CNY", "year", "month", "working-days", "periods", "share", "dates", "grade",
    "megabytes", "times", "rows", *param_units.UNITS,
)  # fmt: skip
WHOLE_UNITS = ("year", "month", "working-days", "periods", "megabytes", "times", "rows")
LIMITS = "ingest_limits"
MEGABYTE = 1_000_000
# Node keys that document a parameter or a group and are never parameter names.
_META_KEYS = frozenset({"description", "unit", "reference", "documentation", "metadata", "label"})
# A value given without a date (test and override shorthand) is in force from this day.
ALWAYS = dt.date(1900, 1, 1)


# A delivery with this share of its rows quarantined is held whatever the parameters say
# (data contract, "Deliveries"): no county setting lets such a file through unasked.
ALWAYS_HELD_SHARE = 2 / 3


@dataclass(frozen=True)
class Gates:
    """Completeness gates of a delivery (data contract, "Deliveries"): hold and warn levels."""

    max_quarantined_share: float  # held above
    warn_quarantined_share: float  # warned above
    min_snapshot_ratio: float  # a snapshot with fewer persons than this × the previous: held
    warn_snapshot_ratio: float
    min_match_rate: float  # an events delivery matching the roster below this: held
    warn_match_rate: float
    # A file replacing the period's stored delivery with fewer records than this × the
    # stored ones: held.
    min_resend_ratio: float
    warn_resend_ratio: float
    # Fewer rows than this are too few to judge by a share: such a delivery is held only
    # when two thirds are quarantined; the share and match-rate gates then only warn.
    min_rows: int = 1


class ParameterError(ValueError):
    """A parameters file or override that cannot be used; the message names file and parameter."""


@dataclass(frozen=True)
class Parameter:
    name: str  # flat, dotted: medical_oop_threshold.脱贫户
    unit: str
    label: str
    description: str
    values: tuple[tuple[dt.date, ParamValue], ...]  # sorted by effective date
    origin: str  # the file (or override) the values came from
    reference: str = ""  # the parameter's document
    references: Mapping[dt.date, str] = field(default_factory=dict)  # a value's own document

    def in_force(self, day: dt.date) -> tuple[dt.date, ParamValue] | None:
        found = None
        for since, value in self.values:
            if since <= day:
                found = (since, value)
        return found


@dataclass(frozen=True)
class Group:
    """A node that groups parameters (medical_oop_threshold, working_age …)."""

    name: str
    label: str = ""
    description: str = ""
    reference: str = ""


def typed(unit: str, value: ParamValue) -> Any:
    """A value as the code reads it: Decimal yuan, whole numbers, float shares, dates,
    grades as a sorted tuple; the units of param_units as it types them."""
    if unit in param_units.UNITS:
        return param_units.typed(unit, value)
    if unit == "currency-CNY":
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if unit in WHOLE_UNITS:
        assert isinstance(value, int | float)
        return int(value)
    if unit == "share":
        assert isinstance(value, int | float)
        return float(value)
    assert isinstance(value, list)
    if unit == "dates":
        return tuple(dt.date.fromisoformat(str(d)) for d in value)
    return tuple(sorted(int(str(g)) for g in value))


class Node(Mapping[str, Any]):
    """A group of resolved parameters, read by attribute or key: `params.scale_check.ceiling`,
    `params.medical_oop_threshold["脱贫户"]`."""

    def __init__(self, resolved: ResolvedParams, prefix: str) -> None:
        self._resolved = resolved
        self._prefix = prefix
        self._children = resolved.children(prefix)

    def __getitem__(self, key: str) -> Any:
        if key not in self._children:
            raise KeyError(key)
        return self._resolved.get(f"{self._prefix}.{key}")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"parameter {self._prefix}.{key} is not defined") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._children)

    def __len__(self) -> int:
        return len(self._children)

    def __repr__(self) -> str:
        return f"Node({self._prefix}: {dict(self)})"


@dataclass(frozen=True)
class IngestLimits:
    """What reading a delivery refuses (parameters `ingest_limits.*`): a money value above
    `max_amount` (events) or `max_per_capita_income` (roster) is quarantined as
    `implausible`; an xlsx whose unzipped parts exceed `xlsx_max_unzipped_bytes`, or
    `xlsx_max_inflation` times the file's size, is rejected before it is read."""

    max_amount: Decimal
    max_per_capita_income: Decimal
    xlsx_max_unzipped_bytes: int
    xlsx_max_inflation: int


@dataclass(frozen=True)
class ResolvedParams:
    """The parameter values in force on end(P), with their effective dates, read as a tree
    by attribute: a parameter → its typed value, a group of `min` and `max` → the range
    as a tuple, another group → a `Node`."""

    period: str
    end: dt.date
    values: Mapping[str, ParamValue]
    effective: Mapping[str, dt.date]
    units: Mapping[str, str]
    references: Mapping[str, str] = field(default_factory=dict)  # name → the value's document
    # Every parameter's and group's label, in the defaults' order.
    labels: Mapping[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def children(self, prefix: str) -> list[str]:
        """The direct children of a group, in the defaults' order (by name if unlabelled)."""
        start = f"{prefix}."
        kids = {n[len(start) :].split(".")[0] for n in self.values if n.startswith(start)}
        ordered = [n[len(start) :] for n in self.labels if n[len(start) :] in kids]
        return ordered + sorted(kids - set(ordered))

    def get(self, name: str) -> Any:
        if name in self.values:
            return typed(self.units[name], self.values[name])
        kids = self.children(name)
        if not kids:
            raise AttributeError(f"parameter {name} is not defined")
        if set(kids) == {"min", "max"}:
            return (self.get(f"{name}.min"), self.get(f"{name}.max"))
        return Node(self, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def as_dict(self) -> dict[str, ParamValue]:
        """Flat name → value, JSON-serialisable: recorded with every run."""
        return {name: _plain(value) for name, value in sorted(self.values.items())}

    def provenance(self) -> dict[str, dict[str, Any]]:
        """Flat name → {value, effective (ISO date)[, reference]}: what was used, since when
        and on whose authority."""
        return {
            name: {
                "value": _plain(value),
                "effective": self.effective[name].isoformat(),
                **({"reference": self.references[name]} if self.references.get(name) else {}),
            }
            for name, value in sorted(self.values.items())
        }

    @property
    def monitoring_line_stale(self) -> bool:
        return self.effective["monitoring_line"].year < self.end.year

    def label(self, name: str) -> str:
        return self.labels.get(name) or name

    def lines(self, leave_out: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
        """(name, label, value as people read it) per top-level parameter or group, in the
        defaults' order: 6,000; 16–59; 脱贫户 5,000；一般农户 20,000; 预期 5%；上限 10%;
        a list of dates as its count."""
        tops = [n for n in self.labels if "." not in n and n not in leave_out]
        return [(n, self.label(n), self.text(n)) for n in tops]

    def text(self, name: str) -> str:
        """A parameter's or a group's value as people read it."""
        if name in self.values:
            return _text(self.units[name], self.get(name))
        kids = self.children(name)
        if set(kids) == {"min", "max"}:
            low, high = self.get(name)
            return f"{low}–{high}"
        return "；".join(
            f"{self.labels.get(f'{name}.{k}') or k} {self.text(f'{name}.{k}')}" for k in kids
        )

    @property
    def gates(self) -> Gates:
        """The completeness gates (`gates.*`), typed."""
        return Gates(**{f: self.get(f"gates.{f}") for f in Gates.__dataclass_fields__})


def _text(unit: str, value: Any) -> str:
    if unit in param_units.UNITS:
        return param_units.text(unit, value)
    if unit == "share":
        return f"{value:.0%}"
    if unit == "dates":
        return f"{len(value)} 天"
    if unit == "grade":
        return "、".join(str(g) for g in value)
    if isinstance(value, Decimal) and value != value.to_integral_value():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _check_gates(resolved: ResolvedParams, parameters: Mapping[str, Parameter]) -> None:
    """A warning level must warn before the hold level holds."""
    gates = resolved.gates
    pairs = (
        ("warn_quarantined_share", "max_quarantined_share", gates.warn_quarantined_share
         <= gates.max_quarantined_share),
        ("warn_snapshot_ratio", "min_snapshot_ratio", gates.warn_snapshot_ratio
         >= gates.min_snapshot_ratio),
        ("warn_match_rate", "min_match_rate", gates.warn_match_rate >= gates.min_match_rate),
        ("warn_resend_ratio", "min_resend_ratio", gates.warn_resend_ratio
         >= gates.min_resend_ratio),
    )  # fmt: skip
    for warn, hold, ok in pairs:
        if not ok:
            raise ParameterError(
                f"{parameters[f'gates.{warn}'].origin}: parameter gates: {warn} "
                f"{getattr(gates, warn)} is beyond {hold} {getattr(gates, hold)} on "
                f"{resolved.end.isoformat()} (the warning must come before the hold)"
            )


def _plain(value: ParamValue) -> ParamValue:
    return value.copy() if isinstance(value, list) else value


@dataclass(frozen=True)
class ParameterSet:
    parameters: Mapping[str, Parameter]
    groups: Mapping[str, Group] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # group and parameter names as the defaults list them

    def at(self, period: str) -> ResolvedParams:
        """The value of every parameter in force on end(period)."""
        end = period_end(period)
        values: dict[str, ParamValue] = {}
        effective: dict[str, dt.date] = {}
        references: dict[str, str] = {}
        for name, param in sorted(self.parameters.items()):
            found = param.in_force(end)
            if found is None:
                raise ParameterError(
                    f"{param.origin}: parameter {name} has no value in force on "
                    f"{end.isoformat()} (period {period})"
                )
            effective[name], values[name] = found
            references[name] = param.references.get(found[0]) or param.reference
        resolved = ResolvedParams(
            period=period,
            end=end,
            values=values,
            effective=effective,
            units={n: p.unit for n, p in self.parameters.items()},
            references=references,
            labels=self.labels(),
        )
        self._check_ranges(resolved)
        _check_gates(resolved, self.parameters)
        if resolved.monitoring_line_stale:
            since = effective["monitoring_line"].isoformat()
            line = values["monitoring_line"]
            resolved.warnings.append(
                f"监测标准沿用 {since} 的 {line} 元，{end.year} 年未设新标准 "
                f"(stale monitoring line: {line} yuan in force since {since}, "
                f"none set for {end.year})"
            )
        return resolved

    def _check_ranges(self, resolved: ResolvedParams) -> None:
        """A (min, max) group upside down, or a group's lower figure above its upper one
        (scale_check's expected share above its ceiling), cannot be screened with."""
        pairs = [(f"{g}.min", f"{g}.max") for g in self.groups]
        pairs.append(("scale_check.expected_share", "scale_check.ceiling"))
        for low_name, high_name in pairs:
            if low_name not in resolved.values or high_name not in resolved.values:
                continue
            low, high = resolved.get(low_name), resolved.get(high_name)
            if low > high:
                group, low_key = low_name.rsplit(".", 1)
                high_key = high_name.rsplit(".", 1)[1]
                raise ParameterError(
                    f"{self.parameters[low_name].origin}: parameter {group}: "
                    f"{low_key} {low} is above {high_key} {high} on {resolved.end.isoformat()}"
                )

    def labels(self) -> dict[str, str]:
        """Every group's and parameter's label, in the order the defaults define them."""
        nodes: dict[str, str] = {}
        for name in self.order:
            node = self.parameters.get(name) or self.groups.get(name)
            nodes[name] = node.label if node else ""
        return nodes

    def ingest_limits(self, period: str) -> IngestLimits:
        """The `ingest_limits.*` values in force on end(period). Only these are resolved:
        a delivery may be ingested for a period the rules have no parameters for."""
        end = period_end(period)
        found: dict[str, Any] = {}
        for name, param in self.parameters.items():
            if not name.startswith(f"{LIMITS}."):
                continue
            value = param.in_force(end)
            if value is None:
                raise ParameterError(
                    f"{param.origin}: parameter {name} has no value in force on "
                    f"{end.isoformat()} (period {period})"
                )
            found[name.removeprefix(f"{LIMITS}.")] = typed(param.unit, value[1])
        return IngestLimits(
            max_amount=found["max_amount"],
            max_per_capita_income=found["max_per_capita_income"],
            xlsx_max_unzipped_bytes=found["xlsx_max_unzipped_mb"] * MEGABYTE,
            xlsx_max_inflation=found["xlsx_max_inflation"],
        )

    def merged(self, other: ParameterSet) -> ParameterSet:
        """`other`'s parameters replace these, name by name; the rest are kept. A county
        file documents what it changes or inherits the default's words."""
        params = dict(self.parameters)
        for name, param in other.parameters.items():
            base = params[name]
            params[name] = replace(
                param,
                label=param.label or base.label,
                description=param.description or base.description,
            )
        return ParameterSet(params, self.groups, self.order)

    def override(
        self, values: Mapping[str, Any], origin: str = "parameter override"
    ) -> ParameterSet:
        """Replace parameters by flat name. A value is either a mapping effective date →
        value, as in a file, or a bare value meaning "in force since 1900-01-01"."""
        parsed: dict[str, Parameter] = {}
        for name, given in values.items():
            if name not in self.parameters:
                raise ParameterError(f"{origin}: unknown parameter {name}")
            node = {"values": given if isinstance(given, Mapping) else {ALWAYS: given}}
            parsed[name] = _parse_leaf(name, node, origin, self.parameters[name].unit)
        return self.merged(ParameterSet(parsed))


def ingest_limits(period: str | None = None, path: Path | None = None) -> IngestLimits:
    """The ingest limits in force for `period` (default: the current month), from the
    defaults with the user's parameters file at `path` merged over them."""
    return load(path).ingest_limits(period or dt.date.today().strftime("%Y-%m"))


def load(path: Path | None = None) -> ParameterSet:
    """The shipped defaults, with the parameters of the user's file at `path` merged over them."""
    defaults = _defaults()
    if path is None:
        return defaults
    known = {name: p.unit for name, p in defaults.parameters.items()}
    parameters, _, _ = _parse_file(Path(path), known)
    return defaults.merged(ParameterSet(parameters))


@cache
def _defaults() -> ParameterSet:
    path = resource_dir("parameters") / "default.yaml"
    parameters, groups, order = _parse_file(path, None)
    return ParameterSet(parameters, groups, order)


# ------------------------------------------------------------------------------ parsing


class _Loader(SAFE_LOADER):
    """Keeps dates as text, so that an impossible date is reported with its parameter."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in SAFE_LOADER.yaml_implicit_resolvers.items()
}


def _parse_file(
    path: Path, known: Mapping[str, str] | None
) -> tuple[dict[str, Parameter], dict[str, Group], tuple[str, ...]]:
    """The parameters (and groups) of a file. `known` (name → unit): the parameters a
    county file may name; None for the defaults, which define them."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read parameters file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ParameterError(f"{path}: not valid YAML{line}") from exc
    if raw is None:
        return {}, {}, ()
    if not isinstance(raw, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter names")
    found: dict[str, Parameter] = {}
    groups: dict[str, Group] = {}
    order: list[str] = []
    _walk(raw, "", str(path), known, found, groups, order, "")
    return found, groups, tuple(order)


def _walk(
    node: dict[Any, Any],
    prefix: str,
    origin: str,
    known: Mapping[str, str] | None,
    found: dict[str, Parameter],
    groups: dict[str, Group],
    order: list[str],
    inherited: str,
) -> None:
    """Collects the parameters and groups under `node`; a parameter without a reference
    of its own has its group's (`inherited`)."""
    for key, child in node.items():
        if key in _META_KEYS:
            continue
        name = f"{prefix}{key}"
        order.append(name)
        if known is not None:
            is_leaf = name in known
        else:
            is_leaf = isinstance(child, dict) and "values" in child
        if is_leaf:
            leaf = _parse_leaf(name, child, origin, known[name] if known else None)
            found[name] = leaf if leaf.reference else replace(leaf, reference=inherited)
            continue
        is_group = (
            any(k.startswith(f"{name}.") for k in known)
            if known is not None
            else isinstance(child, dict)
        )
        if not is_group:
            raise ParameterError(f"{origin}: unknown parameter {name}")
        if not isinstance(child, dict):
            raise ParameterError(f"{origin}: parameter {name}: expected a group of parameters")
        group = Group(
            name,
            label=str(child.get("label") or ""),
            description=str(child.get("description") or ""),
            reference=str(child.get("reference") or "") or inherited,
        )
        groups[name] = group
        _walk(child, f"{name}.", origin, known, found, groups, order, group.reference)


def _parse_leaf(name: str, node: Any, origin: str, unit: str | None) -> Parameter:
    where = f"{origin}: parameter {name}"
    if not isinstance(node, dict) or "values" not in node:
        raise ParameterError(f"{where}: needs `values:` (effective date → value)")
    unknown = set(node) - _META_KEYS - {"values"}
    if unknown:
        raise ParameterError(f"{where}: unknown settings {sorted(map(str, unknown))}")
    given = node.get("unit", unit)
    if unit is not None and given != unit:
        raise ParameterError(f"{where}: unit must be {unit}, got {given!r}")
    if given not in UNITS:
        raise ParameterError(f"{where}: unit must be one of {', '.join(UNITS)}, got {given!r}")
    raw_values = node["values"]
    if not isinstance(raw_values, dict) or not raw_values:
        raise ParameterError(f"{where}: `values:` must map effective dates to values")
    dated: dict[dt.date, ParamValue] = {}
    references: dict[dt.date, str] = {}
    for raw_date, raw_value in raw_values.items():
        since = _parse_date(raw_date, where)
        if since in dated:
            raise ParameterError(f"{where}: effective date {since} given twice")
        value = raw_value
        if isinstance(raw_value, dict):  # {value: …, reference: …}
            extra = set(raw_value) - {"value", "reference"}
            if "value" not in raw_value or extra:
                raise ParameterError(
                    f"{where} ({since}): a dated entry is a value or {{value, reference}}"
                )
            value = raw_value["value"]
            if raw_value.get("reference"):
                references[since] = str(raw_value["reference"])
        dated[since] = _check_value(given, value, f"{where} ({since})")
    return Parameter(
        name=name,
        unit=given,
        label=str(node.get("label") or ""),
        description=str(node.get("description") or ""),
        values=tuple(sorted(dated.items())),
        origin=origin,
        reference=str(node.get("reference") or ""),
        references=references,
    )


def _parse_date(raw: Any, where: str) -> dt.date:
    if isinstance(raw, dt.datetime):
        raise ParameterError(f"{where}: effective date {raw} must be a date without time")
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise ParameterError(f"{where}: {raw!r} is not an ISO date (YYYY-MM-DD)") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_value(unit: str, value: Any, where: str) -> ParamValue:
    if unit in param_units.UNITS:
        try:
            checked: ParamValue = param_units.check(unit, value)
        except ValueError as exc:
            raise ParameterError(f"{where}: {exc}") from None
        return checked
    if unit == "currency-CNY":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"{where}: expected an amount in yuan, got {value!r}")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ParameterError(f"{where}: expected an amount in yuan, got {value!r}") from None
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise ParameterError(f"{where}: expected a non-negative amount in fen, got {value!r}")
        return value
    if unit == "year":
        if not _is_int(value) or not 0 <= value <= 150:
            raise ParameterError(f"{where}: expected an age in whole years, got {value!r}")
        return int(value)
    if unit == "month":
        if not _is_int(value) or value < 1:
            raise ParameterError(f"{where}: expected a whole number of months ≥ 1, got {value!r}")
        return int(value)
    if unit in ("working-days", "periods", "megabytes", "times", "rows"):
        if not _is_int(value) or value < 1:
            raise ParameterError(f"{where}: expected a whole number ≥ 1, got {value!r}")
        return int(value)
    if unit == "share":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise ParameterError(f"{where}: expected a share above 0 and at most 1, got {value!r}")
        return value
    if unit == "dates":
        # Kept as ISO text so the value recorded with every run stays JSON.
        if not isinstance(value, list):
            raise ParameterError(f"{where}: expected a list of ISO dates, got {value!r}")
        return sorted({_parse_date(d, where).isoformat() for d in value})
    # grade: a list of disability grades
    if (
        not isinstance(value, list)
        or not value
        or not all(_is_int(g) and 1 <= g <= 4 for g in value)
    ):
        raise ParameterError(f"{where}: expected a list of grades 1–4, got {value!r}")
    return sorted(set(value))
