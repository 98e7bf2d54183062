"""Completeness gates: whether a delivery looks too broken to be used unasked.

Data contract, "Deliveries": a delivery is *held* when more than `gates.max_quarantined_share`
of its rows are quarantined (two thirds or more is held whatever that parameter says), when a
snapshot (the roster) has fewer than `gates.min_snapshot_ratio` of the persons of the snapshot
in force before it, or when an events delivery's records match the roster in force at under
`gates.min_match_rate`. Between the `gates.warn_*` levels and the hold levels the delivery is
used and the run warns. A delivery of fewer than `gates.min_rows` rows is too small to judge
by a share: beyond a hold level it is only warned about, unless two thirds of it are
quarantined.

Two more gates close ways a list could shrink unasked (they are not in the contract's list;
docs/data-contract.md names them): a file rejected whole while nothing of the period is
stored for its source (`rejected`: the source would silently count as not delivered), and a
file replacing the period's stored events delivery with fewer than `gates.min_resend_ratio`
of its records (`shrank`: a truncated or header-only re-send).

A held delivery is not used: the delivery stored before it stays in force (for a first
delivery of the period, the source counts as not delivered), its rows wait in `held_rows`,
the run stops with `DeliveryHeld` (exit status 3) before screening, and nothing new is
published, until the officer accepts it (`--accept-held SOURCE`, recorded in
`held_deliveries`) or replaces the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from screening.params import ALWAYS_HELD_SHARE, Gates

QUARANTINED_SHARE = "quarantined_share"
SNAPSHOT_RATIO = "snapshot_ratio"
MATCH_RATE = "match_rate"
REJECTED = "rejected"
SHRANK = "shrank"
GATE_LABELS = {
    QUARANTINED_SHARE: "拒收行占比",
    SNAPSHOT_RATIO: "人数与此前人口库之比",
    MATCH_RATE: "与人口库匹配率",
    REJECTED: "整个文件被拒收",
    SHRANK: "记录数与本期已入库之比",
}
GATE_WORDS = {
    QUARANTINED_SHARE: "quarantined share",
    SNAPSHOT_RATIO: "persons vs the snapshot before",
    MATCH_RATE: "match rate with the roster",
    REJECTED: "the whole file rejected",
    SHRANK: "records vs the period's stored delivery",
}
# A share gate holds above its threshold, the others below theirs.
_ABOVE = frozenset({QUARANTINED_SHARE})


@dataclass(frozen=True)
class GateResult:
    """One gate a delivery failed (held) or came close to failing (warned)."""

    source: str
    file: str | None
    gate: str
    measured: float
    threshold: float
    held: bool  # False: a warning only
    accepted_by: str | None = None  # set when an officer accepted the held delivery
    small: int | None = None  # beyond the hold level, but fewer rows than this: warned
    reason: str | None = None  # a rejected file: why (and the fix the reader names)

    def describe(self) -> str:
        """拒收行占比 (quarantined share) 66.7% (暂扣标准 (hold): > 20.0%): the English in
        parentheses of its own, so that publish.about.chinese_only leaves the Chinese."""
        if self.gate == REJECTED:
            why = f": {self.reason}" if self.reason else ""
            return f"{GATE_LABELS[REJECTED]} ({GATE_WORDS[REJECTED]}){why}"
        op = ">" if self.gate in _ABOVE else "<"
        if self.gate == QUARANTINED_SHARE and self.threshold == ALWAYS_HELD_SHARE:
            op = "≥"  # two thirds: held whatever the parameters say
        level = "暂扣标准 (hold)" if self.held or self.small else "提示标准 (warn)"
        text = (
            f"{GATE_LABELS[self.gate]} ({GATE_WORDS[self.gate]}) {percent(self.measured)} "
            f"({level}: {op} {percent(self.threshold)})"
        )
        if self.small:
            text += f"，不足 {self.small} 行只提示 (fewer than {self.small} rows: warned only)"
        return text


def percent(share: float) -> str:
    return f"{share:.1%}"


def check(
    source: str,
    file: str | None,
    kind: str,
    *,
    rows_read: int,
    rows_rejected: int,
    good_ids: pl.Series | None,
    gates: Gates,
    previous_persons: int = 0,
    roster: pl.Series | None = None,
) -> list[GateResult]:
    """The gates a delivery read just now fails or comes close to: `good_ids` are the ID
    numbers of its accepted rows, `previous_persons` the persons of the snapshot in force
    before it (snapshots), `roster` the ID numbers of the roster it is matched to (events)."""
    found: list[GateResult] = []
    enough = rows_read >= gates.min_rows  # else a share says too little to hold on it
    if rows_read:
        share = rows_rejected / rows_read
        limit = gates.max_quarantined_share
        if share >= ALWAYS_HELD_SHARE and not (enough and share > limit):
            found.append(
                GateResult(source, file, QUARANTINED_SHARE, share, ALWAYS_HELD_SHARE, True)
            )
        elif share > limit:
            found.append(
                GateResult(
                    source, file, QUARANTINED_SHARE, share, limit, enough,
                    small=None if enough else gates.min_rows,
                )
            )  # fmt: skip
        elif share > gates.warn_quarantined_share:
            found.append(
                GateResult(
                    source, file, QUARANTINED_SHARE, share, gates.warn_quarantined_share, False
                )
            )
    accepted = 0 if good_ids is None else good_ids.len()
    if kind == "snapshot" and previous_persons:
        ratio = accepted / previous_persons
        found += _below(source, file, SNAPSHOT_RATIO, ratio, gates.min_snapshot_ratio,
                        gates.warn_snapshot_ratio)  # fmt: skip
    if kind == "events" and roster is not None and roster.len() and good_ids is not None:
        ids = good_ids.drop_nulls()
        if ids.len():
            rate = float(ids.is_in(roster.implode()).sum()) / ids.len()
            found += _below(source, file, MATCH_RATE, rate, gates.min_match_rate,
                            gates.warn_match_rate, None if enough else gates.min_rows)  # fmt: skip
    return found


def rejected(source: str, file: str | None, reason: str) -> GateResult:
    """A file rejected whole while nothing of the period is stored: nothing of it can be
    used, so it holds the run like a delivery quarantined whole."""
    return GateResult(source, file, REJECTED, 1.0, ALWAYS_HELD_SHARE, True, reason=reason)


def shrank(
    source: str, file: str | None, records: int, stored: int, gates: Gates
) -> list[GateResult]:
    """A file replacing the period's stored delivery (`stored` records) with `records`.
    A stored delivery of fewer than gates.min_rows records is too small to judge by a
    share: a re-send of it is only warned about."""
    if not stored or records >= stored:
        return []
    small = None if stored >= gates.min_rows else gates.min_rows
    return _below(
        source,
        file,
        SHRANK,
        records / stored,
        gates.min_resend_ratio,
        gates.warn_resend_ratio,
        small,
    )


def _below(
    source: str,
    file: str | None,
    gate: str,
    value: float,
    limit: float,
    warn: float,
    small: int | None = None,
) -> list[GateResult]:
    if value < limit:
        return [GateResult(source, file, gate, value, limit, small is None, small=small)]
    if value < warn:
        return [GateResult(source, file, gate, value, warn, False)]
    return []


class DeliveryHeld(Exception):
    """A delivery was held by a completeness gate and not accepted: the run stops before
    screening and publishes nothing new; the CLI exits with status 3. `str(exc)` is the
    one line the officer sees, with the command that accepts the delivery."""

    exit_code = 3

    def __init__(
        self,
        period: str,
        held: Sequence[GateResult],
        results: Sequence[Any] = (),
        command: str = "screening run",
    ) -> None:
        self.period = period
        self.held = list(held)
        self.results = list(results)  # the ingest's SourceResults, for the console
        self.command = command
        super().__init__(self.line())

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its parts, not from the message (Prefect may pickle a task's error).
        return (DeliveryHeld, (self.period, self.held, self.results, self.command))

    @property
    def sources(self) -> list[str]:
        return sorted({g.source for g in self.held})

    def accept_command(self) -> str:
        flags = " ".join(f"--accept-held {s}" for s in self.sources)
        return f"{self.command} --period {self.period} {flags}"

    def line(self) -> str:
        from screening.contract import label

        what = "; ".join(
            f"{label(g.source)} {g.source} {g.file}: {g.describe()}" for g in self.held
        )
        return (
            f"数据暂扣，未发布新名单 delivery held, nothing published ({self.period}): {what}. "
            f"核对无误后接受 to use it anyway: {self.accept_command()}"
        )


class EarlierDeliveryHeld(DeliveryHeld):
    """A delivery of an earlier period is still held, undecided: its records are missing
    from this period's window too, so this run publishes nothing new either (exit status
    3) until the officer decides on it — accepts it, sends a corrected file for that
    period, or withdraws it."""

    def __init__(self, period: str, held: Sequence[tuple[str, GateResult]]) -> None:
        self.earlier = list(held)  # (period held, gate)
        super().__init__(period, [g for _, g in self.earlier])

    def __reduce__(self) -> tuple[Any, ...]:
        return (EarlierDeliveryHeld, (self.period, self.earlier))

    def line(self) -> str:
        from screening.contract import label

        what = "; ".join(
            f"{held} {label(g.source)} {g.source} {g.file}: {g.describe()}"
            for held, g in self.earlier
        )
        first, gate = self.earlier[0]
        return (
            f"此前期次的数据仍被暂扣、尚未处理，本期未发布新名单 a delivery of an earlier period "
            f"is still held, nothing published ({self.period}): {what}. 请先处理 decide on it "
            f"first: 接受 accept `screening run --period {first} --accept-held {gate.source}`, "
            f"或补报正确文件后重跑 {first} or re-run {first} with a corrected file, "
            f"或撤回 or withdraw `screening ingest --withdraw {gate.source} --period {first}`"
        )
