"""Rule parameters: every number of the screening rules, effective-dated, as data.

`parameters/default.yaml` ships the defaults (OpenFisca layout: description, unit and
`values:` mapping effective date → value). A county's file names only the parameters it
changes and is merged over the defaults by parameter name. A period is screened with the
value in force on its last day, and the monitoring line is flagged as stale when it was
not set for the period's own year, because provinces publish a new line every year.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from screening.contract import resource_dir

ParamValue = int | float | list[int] | list[str]

# The code reads exactly these parameters; the unit says how a value is checked.
UNITS: dict[str, str] = {
    "monitoring_line": "currency-CNY",
    "medical_oop_threshold.脱贫户": "currency-CNY",
    "medical_oop_threshold.监测户": "currency-CNY",
    "medical_oop_threshold.一般农户": "currency-CNY",
    "education_cost_threshold": "currency-CNY",
    "accident_loss_threshold": "currency-CNY",
    "compulsory_school_age.min": "year",
    "compulsory_school_age.max": "year",
    "working_age.min": "year",
    "working_age.max": "year",
    "severe_disability_grades": "grade",
    "window_months": "month",
    "verification_time_limit": "working-days",
    "public_holidays": "dates",
    "scale_check.expected_share": "share",
    "scale_check.ceiling": "share",
    "risk_removal_clear_periods": "periods",
    "ingest_limits.max_amount": "currency-CNY",
    "ingest_limits.max_per_capita_income": "currency-CNY",
    "ingest_limits.xlsx_max_unzipped_mb": "megabytes",
    "ingest_limits.xlsx_max_inflation": "times",
    "gates.max_quarantined_share": "share",
    "gates.warn_quarantined_share": "share",
    "gates.min_snapshot_ratio": "share",
    "gates.warn_snapshot_ratio": "share",
    "gates.min_match_rate": "share",
    "gates.warn_match_rate": "share",
    "gates.min_rows": "rows",
}
AGE_RANGES = ("compulsory_school_age", "working_age")
MEDICAL_PREFIX = "medical_oop_threshold."
LIMITS_PREFIX = "ingest_limits."
MEGABYTE = 1_000_000
# Node keys that document a parameter or a group and are never parameter names.
_META_KEYS = frozenset({"description", "unit", "reference", "documentation", "metadata"})
# A value given without a date (test and override shorthand) is in force from this day.
ALWAYS = dt.date(1900, 1, 1)
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


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
    # Fewer rows than this are too few to judge by a share: such a delivery is held only
    # when two thirds are quarantined; the share and match-rate gates then only warn.
    min_rows: int = 1


class ParameterError(ValueError):
    """A parameters file or override that cannot be used; the message names file and parameter."""


def parse_period(period: str) -> tuple[int, int]:
    m = _PERIOD.match(str(period))
    if not m:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    return int(m.group(1)), int(m.group(2))


def period_end(period: str) -> dt.date:
    """end(P): the last day of the month."""
    year, month = parse_period(period)
    return dt.date(year, month, calendar.monthrange(year, month)[1])


@dataclass(frozen=True)
class Parameter:
    name: str  # flat, dotted: medical_oop_threshold.脱贫户
    unit: str
    description: str
    values: tuple[tuple[dt.date, ParamValue], ...]  # sorted by effective date
    origin: str  # the file (or override) the values came from

    def in_force(self, day: dt.date) -> tuple[dt.date, ParamValue] | None:
        found = None
        for since, value in self.values:
            if since <= day:
                found = (since, value)
        return found


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
    """The parameter values in force on end(P), with their effective dates."""

    period: str
    end: dt.date
    values: Mapping[str, ParamValue]
    effective: Mapping[str, dt.date]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, ParamValue]:
        """Flat name → value, JSON-serialisable: recorded with every run."""
        return {name: _plain(value) for name, value in sorted(self.values.items())}

    def provenance(self) -> dict[str, dict[str, Any]]:
        """Flat name → {value, effective (ISO date)}: what was used and since when."""
        return {
            name: {"value": _plain(value), "effective": self.effective[name].isoformat()}
            for name, value in sorted(self.values.items())
        }

    def money(self, name: str) -> Decimal:
        return Decimal(str(self.values[name])).quantize(Decimal("0.01"))

    def whole(self, name: str) -> int:
        value = self.values[name]
        if isinstance(value, list):
            raise TypeError(f"parameter {name} is a list, not a number")
        return int(value)

    def age_range(self, name: str) -> tuple[int, int]:
        return self.whole(f"{name}.min"), self.whole(f"{name}.max")

    @property
    def monitoring_line(self) -> Decimal:
        return self.money("monitoring_line")

    @property
    def monitoring_line_stale(self) -> bool:
        return self.effective["monitoring_line"].year < self.end.year

    @property
    def medical_oop_threshold(self) -> dict[str, Decimal]:
        """Household type → threshold."""
        return {
            name.removeprefix(MEDICAL_PREFIX): self.money(name)
            for name in sorted(self.values)
            if name.startswith(MEDICAL_PREFIX)
        }

    @property
    def education_cost_threshold(self) -> Decimal:
        return self.money("education_cost_threshold")

    @property
    def accident_loss_threshold(self) -> Decimal:
        return self.money("accident_loss_threshold")

    @property
    def compulsory_school_age(self) -> tuple[int, int]:
        return self.age_range("compulsory_school_age")

    @property
    def working_age(self) -> tuple[int, int]:
        return self.age_range("working_age")

    @property
    def severe_disability_grades(self) -> tuple[int, ...]:
        grades = self.values["severe_disability_grades"]
        if not isinstance(grades, list):
            raise TypeError("parameter severe_disability_grades is not a list")
        return tuple(sorted(int(g) for g in grades))

    @property
    def verification_time_limit(self) -> int:
        return self.whole("verification_time_limit")

    @property
    def public_holidays(self) -> tuple[dt.date, ...]:
        value = self.values["public_holidays"]
        assert isinstance(value, list)
        return tuple(dt.date.fromisoformat(str(d)) for d in value)

    @property
    def scale_expected_share(self) -> float:
        return float(self._number("scale_check.expected_share"))

    @property
    def scale_ceiling(self) -> float:
        return float(self._number("scale_check.ceiling"))

    @property
    def risk_removal_clear_periods(self) -> int:
        return self.whole("risk_removal_clear_periods")

    @property
    def gates(self) -> Gates:
        shares = [f for f in Gates.__dataclass_fields__ if f != "min_rows"]
        return Gates(
            **{f: float(self._number(f"gates.{f}")) for f in shares},
            min_rows=self.whole("gates.min_rows"),
        )

    def _number(self, name: str) -> int | float:
        value = self.values[name]
        if isinstance(value, list):
            raise TypeError(f"parameter {name} is a list, not a number")
        return value

    @property
    def window_months(self) -> int:
        return self.whole("window_months")


def _check_gates(resolved: ResolvedParams, parameters: Mapping[str, Parameter]) -> None:
    """A warning level must warn before the hold level holds."""
    gates = resolved.gates
    pairs = (
        ("warn_quarantined_share", "max_quarantined_share", gates.warn_quarantined_share
         <= gates.max_quarantined_share),
        ("warn_snapshot_ratio", "min_snapshot_ratio", gates.warn_snapshot_ratio
         >= gates.min_snapshot_ratio),
        ("warn_match_rate", "min_match_rate", gates.warn_match_rate >= gates.min_match_rate),
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

    def at(self, period: str) -> ResolvedParams:
        """The value of every parameter in force on end(period)."""
        end = period_end(period)
        values: dict[str, ParamValue] = {}
        effective: dict[str, dt.date] = {}
        for name, param in sorted(self.parameters.items()):
            found = param.in_force(end)
            if found is None:
                raise ParameterError(
                    f"{param.origin}: parameter {name} has no value in force on "
                    f"{end.isoformat()} (period {period})"
                )
            effective[name], values[name] = found
        resolved = ResolvedParams(period=period, end=end, values=values, effective=effective)
        for group in AGE_RANGES:
            low, high = resolved.age_range(group)
            if low > high:
                raise ParameterError(
                    f"{self.parameters[f'{group}.min'].origin}: parameter {group}: "
                    f"min {low} is above max {high} on {end.isoformat()}"
                )
        if resolved.scale_expected_share > resolved.scale_ceiling:
            raise ParameterError(
                f"{self.parameters['scale_check.ceiling'].origin}: parameter scale_check: "
                f"expected_share {resolved.scale_expected_share} is above ceiling "
                f"{resolved.scale_ceiling} on {end.isoformat()}"
            )
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

    def ingest_limits(self, period: str) -> IngestLimits:
        """The `ingest_limits.*` values in force on end(period). Only these are resolved:
        a delivery may be ingested for a period the rules have no parameters for."""
        end = period_end(period)
        found = {}
        for name in (n for n in UNITS if n.startswith(LIMITS_PREFIX)):
            param = self.parameters[name]
            value = param.in_force(end)
            if value is None:
                raise ParameterError(
                    f"{param.origin}: parameter {name} has no value in force on "
                    f"{end.isoformat()} (period {period})"
                )
            found[name.removeprefix(LIMITS_PREFIX)] = value[1]

        def number(key: str) -> int | float:
            value = found[key]
            assert not isinstance(value, list)
            return value

        return IngestLimits(
            max_amount=Decimal(str(number("max_amount"))).quantize(Decimal("0.01")),
            max_per_capita_income=Decimal(str(number("max_per_capita_income"))).quantize(
                Decimal("0.01")
            ),
            xlsx_max_unzipped_bytes=int(number("xlsx_max_unzipped_mb")) * MEGABYTE,
            xlsx_max_inflation=int(number("xlsx_max_inflation")),
        )

    def merged(self, other: ParameterSet) -> ParameterSet:
        """`other`'s parameters replace these, name by name; the rest are kept."""
        params = dict(self.parameters)
        for name, param in other.parameters.items():
            base = params[name]
            params[name] = replace(param, description=param.description or base.description)
        return ParameterSet(params)

    def override(
        self, values: Mapping[str, Any], origin: str = "parameter override"
    ) -> ParameterSet:
        """Replace parameters by flat name. A value is either a mapping effective date →
        value, as in a file, or a bare value meaning "in force since 1900-01-01"."""
        parsed: dict[str, Parameter] = {}
        for name, given in values.items():
            node = {"values": given if isinstance(given, Mapping) else {ALWAYS: given}}
            parsed[name] = _parse_leaf(name, node, origin)
        return self.merged(ParameterSet(parsed))


def ingest_limits(period: str | None = None, path: Path | None = None) -> IngestLimits:
    """The ingest limits in force for `period` (default: the current month), from the
    defaults with the user's parameters file at `path` merged over them."""
    return load(path).ingest_limits(period or dt.date.today().strftime("%Y-%m"))


def load(path: Path | None = None) -> ParameterSet:
    """The shipped defaults, with the parameters of the user's file at `path` merged over them."""
    default_path = resource_dir("parameters") / "default.yaml"
    defaults = ParameterSet(_parse_file(default_path))
    missing = sorted(set(UNITS) - set(defaults.parameters))
    if missing:
        raise ParameterError(f"{default_path}: parameter {missing[0]} is not defined")
    if path is None:
        return defaults
    return defaults.merged(ParameterSet(_parse_file(Path(path))))


# ------------------------------------------------------------------------------ parsing


class _Loader(yaml.SafeLoader):
    """Keeps dates as text, so that an impossible date is reported with its parameter."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_file(path: Path) -> dict[str, Parameter]:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read parameters file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ParameterError(f"{path}: not valid YAML{line}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParameterError(f"{path}: expected a mapping of parameter names")
    found: dict[str, Parameter] = {}
    _walk(raw, "", str(path), found)
    return found


def _walk(node: dict[Any, Any], prefix: str, origin: str, found: dict[str, Parameter]) -> None:
    for key, child in node.items():
        if not prefix and key in _META_KEYS:
            continue
        name = f"{prefix}{key}"
        if name in UNITS:
            found[name] = _parse_leaf(name, child, origin)
        elif any(known.startswith(f"{name}.") for known in UNITS):
            if not isinstance(child, dict):
                raise ParameterError(f"{origin}: parameter {name}: expected a group of parameters")
            _walk(
                {k: v for k, v in child.items() if k not in _META_KEYS}, f"{name}.", origin, found
            )
        else:
            raise ParameterError(f"{origin}: unknown parameter {name}")


def _parse_leaf(name: str, node: Any, origin: str) -> Parameter:
    where = f"{origin}: parameter {name}"
    if name not in UNITS:
        raise ParameterError(f"{where}: unknown parameter")
    if not isinstance(node, dict) or "values" not in node:
        raise ParameterError(f"{where}: needs `values:` (effective date → value)")
    unknown = set(node) - _META_KEYS - {"values"}
    if unknown:
        raise ParameterError(f"{where}: unknown settings {sorted(map(str, unknown))}")
    unit = node.get("unit", UNITS[name])
    if unit != UNITS[name]:
        raise ParameterError(f"{where}: unit must be {UNITS[name]}, got {unit!r}")
    raw_values = node["values"]
    if not isinstance(raw_values, dict) or not raw_values:
        raise ParameterError(f"{where}: `values:` must map effective dates to values")
    dated: dict[dt.date, ParamValue] = {}
    for raw_date, raw_value in raw_values.items():
        since = _parse_date(raw_date, where)
        if since in dated:
            raise ParameterError(f"{where}: effective date {since} given twice")
        dated[since] = _check_value(unit, raw_value, f"{where} ({since})")
    return Parameter(
        name=name,
        unit=unit,
        description=str(node.get("description") or ""),
        values=tuple(sorted(dated.items())),
        origin=origin,
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
