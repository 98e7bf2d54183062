"""The parameter units beyond numbers and lists of them (params.py reads every other one):

- `switch`: true / false (a feature a county turns on, e.g. relief_estimate.enabled);
- `ratio`: a positive number, not necessarily whole (income_drop_ceiling_ratio 2.0);
- `bands`: a tiered schedule, a list of `{from: yuan, to: yuan, share: 0–1}` in rising
  order, the last one's `to` may be left out (no upper bound); the part of an amount
  inside each band earns its share (relief_estimate);
- `cap`: an amount in yuan, or null for none.

Values are checked when a file is loaded (a `ValueError` whose message params.py prefixes
with the file and parameter), kept as plain JSON (recorded with every run) and typed when
the code reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

UNITS = ("switch", "ratio", "bands", "cap")


@dataclass(frozen=True)
class Band:
    """The part of an amount above `lower` and up to `upper` (None: no upper bound) earns
    `share` of itself."""

    lower: Decimal
    upper: Decimal | None
    share: Decimal


def _amount(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected {what} in yuan, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected {what} in yuan, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"expected {what}: a non-negative amount in fen, got {value!r}")
    return amount


def check(unit: str, value: Any) -> Any:
    """The value as stored (plain JSON); ValueError says what is wrong with it."""
    if unit == "switch":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if unit == "ratio":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"expected a positive number, got {value!r}")
        return value
    if unit == "cap":
        if value is None:
            return None
        _amount(value, "a cap")
        return value
    return _check_bands(value)


def _check_bands(value: Any) -> list[dict[str, Any]]:
    example = "[{from: 20000, to: 50000, share: 0.35}, …]"
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a list of bands {example}, got {value!r}")
    bands: list[dict[str, Any]] = []
    previous: Decimal | None = Decimal(0)
    for n, band in enumerate(value, start=1):
        if not isinstance(band, Mapping) or set(band) - {"from", "to", "share"}:
            raise ValueError(f"band {n}: expected {{from, to, share}}, got {band!r}")
        if "from" not in band or "share" not in band:
            raise ValueError(f"band {n}: needs `from` and `share`")
        lower = _amount(band["from"], f"band {n}'s `from`")
        upper = None if band.get("to") is None else _amount(band["to"], f"band {n}'s `to`")
        share = band["share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ValueError(f"band {n}: share must be above 0 and at most 1, got {share!r}")
        if previous is None:
            raise ValueError(f"band {n}: only the last band may leave out `to`")
        if lower < previous:
            raise ValueError(f"band {n}: starts at {lower}, inside the band before it")
        if upper is not None and upper <= lower:
            raise ValueError(f"band {n}: `to` {upper} must be above `from` {lower}")
        bands.append({"from": band["from"], "to": band.get("to"), "share": share})
        previous = upper
    return bands


def typed(unit: str, value: Any) -> Any:
    """bool, Decimal, a tuple of Band, Decimal or None."""
    if unit == "switch":
        return bool(value)
    if unit == "ratio":
        return Decimal(str(value))
    if unit == "cap":
        return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))
    return tuple(
        Band(
            Decimal(str(b["from"])).quantize(Decimal("0.01")),
            None if b.get("to") is None else Decimal(str(b["to"])).quantize(Decimal("0.01")),
            Decimal(str(b["share"])),
        )
        for b in value
    )


def yuan_text(amount: Decimal) -> str:
    """12,345 or 12,345.60: whole yuan without fen."""
    return f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"


def share_text(share: Decimal) -> str:
    """35%, 12.5%."""
    return f"{(share * 100).normalize():f}%"


def band_text(band: Band) -> str:
    where = (
        f"{yuan_text(band.lower)} 元以上"
        if band.upper is None
        else f"{yuan_text(band.lower)}–{yuan_text(band.upper)} 元"
    )
    return f"{where} {share_text(band.share)}"


def text(unit: str, value: Any) -> str:
    """A typed value as people read it."""
    if unit == "switch":
        return "开启" if value else "关闭"
    if unit == "ratio":
        return f"{value.normalize():f} 倍"
    if unit == "cap":
        return "不设上限" if value is None else f"{yuan_text(value)} 元"
    return "，".join(band_text(b) for b in value)
