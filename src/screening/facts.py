"""Facts per person: window sums and flags from each department source (no DuckDB, lazy).

Spec: shared/spec/screening-rules.md "Terms" and "Risk points". The events frames arrive
de-duplicated by natural key as of P (the loader's job) but not filtered by date: the window
is applied here. Disability certificates are the exception: labour capacity looks at every
certificate issued up to end(P), so they are kept whole and flagged `in_window`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import polars as pl

from screening import contract
from screening.params import ResolvedParams, parse_period, period_end

MONEY = pl.Decimal(18, 2)
# Sums and differences of money: any number of Decimal(18, 2) values adds up within it, so
# no delivered value (however absurd) can make a run fail on an overflow.
SUM = pl.Decimal(38, 2)
HEAD_RELATION = "户主"
DROPOUT_STATUS = "辍学"
SERIOUS_INJURIES = ("重伤", "死亡")
# 临时救助 is itself a sudden-hardship event; 低保 / 特困供养 only when newly granted,
# since renewals and payments describe a hardship the household already had.
ASSISTANCE_ANY_EVENT = ("临时救助",)
ASSISTANCE_NEW_ONLY = ("低保", "特困供养")
NEW_EVENT = "新增"
EVENT_SOURCES = ("medical", "education", "traffic", "civil", "disability")


def money(value: Decimal | int | str) -> pl.Expr:
    return pl.lit(Decimal(str(value)).quantize(Decimal("0.01")), dtype=MONEY)


def money_or_zero(column: str) -> pl.Expr:
    """Empty money counts as 0 in sums and differences (compensation not reported = none)."""
    return pl.col(column).fill_null(money(0))


def non_negative(expr: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(expr, money(0)).cast(SUM)


@dataclass(frozen=True)
class Window:
    """W: the first day of the month `months − 1` before P through end(P), inclusive."""

    period: str
    start: dt.date
    end: dt.date

    def contains(self, day: pl.Expr) -> pl.Expr:
        return day.is_between(pl.lit(self.start), pl.lit(self.end), closed="both").fill_null(False)


def window(period: str, months: int) -> Window:
    if months < 1:
        raise ValueError(f"window must span at least one month, got {months}")
    year, month = parse_period(period)
    first = year * 12 + (month - 1) - (months - 1)
    return Window(period, dt.date(first // 12, first % 12 + 1, 1), period_end(period))


def age_at(id_number: pl.Expr, day: dt.date) -> pl.Expr:
    """Completed years on `day` from the birth date in the ID (digits 7–14). The digits
    are read as numbers rather than parsed as a date (ids.birth_date_expr): IDs reaching
    the rules are valid, and at ten million persons this is several times faster. Someone
    born on 29 February has the birthday on 1 March in common years."""
    born_year = id_number.str.slice(6, 4).cast(pl.Int32, strict=False)
    born_month_day = id_number.str.slice(10, 4).cast(pl.Int32, strict=False)
    birthday_later = (born_month_day > day.month * 100 + day.day).cast(pl.Int32)
    return (day.year - born_year - birthday_later).cast(pl.Int32)


def in_range(value: pl.Expr, bounds: tuple[int, int]) -> pl.Expr:
    return value.is_between(bounds[0], bounds[1], closed="both").fill_null(False)


def source_key(source: str) -> pl.Expr:
    """The natural key from the contract as text, multi-column keys joined with '|'."""
    key = contract.load()[source].natural_key
    return pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator="|")


def persons(population: pl.LazyFrame, w: Window, params: ResolvedParams) -> pl.LazyFrame:
    """One row per roster member, with age and the age classes the rules use."""
    age = age_at(pl.col("id_number"), w.end)
    return population.select(
        "household_id",
        "id_number",
        "name",
        "relation",
        "township",
        "village",
        "household_type",
        "monitoring_status",
        "per_capita_income",
        "row_number",
        # The head sorts first; without a 户主 the first member by row number stands in.
        head_rank=pl.when(pl.col("relation") == HEAD_RELATION).then(0).otherwise(1),
        age=age,
        compulsory_age=in_range(age, params.compulsory_school_age),
        working_age=in_range(age, params.working_age),
    )


@dataclass(frozen=True)
class Records:
    """Department records prepared for the rules. All but `certificates` hold only the
    records whose rule date lies in W; every frame has id_number, source_key, rule_date."""

    medical: pl.LazyFrame
    education: pl.LazyFrame
    traffic: pl.LazyFrame
    civil: pl.LazyFrame
    certificates: pl.LazyFrame  # issued on or before end(P), flagged in_window / severe

    def in_window(self) -> dict[str, pl.LazyFrame]:
        """Source → its records with a rule date in W, for match rates."""
        return {
            "medical": self.medical,
            "education": self.education,
            "traffic": self.traffic,
            "civil": self.civil,
            "disability": self.certificates.filter(pl.col("in_window")),
        }

    def collected(self) -> Records:
        """The same records computed once, in one `pl.collect_all`, as lazy frames over the
        results: the queries built on them (collect_all shares no subplans) then start from
        the prepared records instead of each preparing them again."""
        frames = pl.collect_all([getattr(self, f.name) for f in fields(self)])
        return Records(*(frame.lazy() for frame in frames))


# The columns of each events source that the rules read: the natural key (source_key),
# the ID number, the rule date and what the functions below select, evidence details
# included. A loader wanting no more than the rules need loads these (run.load_inputs).
RULE_COLUMNS: dict[str, tuple[str, ...]] = {
    "medical": ("settlement_id", "id_number", "settlement_date", "hospital", "out_of_pocket"),
    "education": (
        "record_id",
        "id_number",
        "record_date",
        "school",
        "stage",
        "status",
        "tuition",
        "accommodation",
        "textbook",
        "aid",
    ),
    "traffic": (
        "accident_id",
        "id_number",
        "accident_date",
        "injury",
        "direct_loss",
        "compensation",
    ),
    "civil": ("id_number", "assistance_type", "event", "event_date", "amount"),
    "disability": ("certificate_no", "id_number", "disability_type", "grade", "issue_date"),
}


def reach(source: str, w: Window) -> tuple[dt.date | None, dt.date]:
    """The rule dates (first, last; None: no first) of the records of events `source` that
    the rules can read: W, except certificates, which count whenever issued up to end(P)."""
    return (None if source == "disability" else w.start), w.end


def rule_reads(source: str, period: str, window_months: int | None) -> dict[str, Any]:
    """The `store.events_as_of` filters that keep what the rules of `source` read: its
    RULE_COLUMNS, rule dates up to end(P) and, with `window_months`, none before the
    window's first day but for certificates."""
    w = window(period, window_months or 1)  # without window_months, only its end counts
    since, until = reach(source, w)
    return {
        "columns": RULE_COLUMNS[source],
        "since": since if window_months is not None else None,
        "until": until,
    }


def _prepared(frame: pl.LazyFrame, source: str, keep: pl.Expr) -> pl.LazyFrame:
    """The records whose rule date satisfies `keep` (an expression over `rule_date`), with
    the contract's rule date as `rule_date` and the natural key as `source_key`. The date
    filter comes first so that nothing is computed for records outside it."""
    rule_date = contract.load()[source].rule_date
    assert rule_date is not None
    return (
        frame.with_columns(rule_date=pl.col(rule_date))
        .filter(keep)
        .with_columns(source_key=source_key(source))
    )


def medical_records(medical: pl.LazyFrame, w: Window) -> pl.LazyFrame:
    return _prepared(medical, "medical", w.contains(pl.col("rule_date"))).select(
        "id_number",
        "source_key",
        "rule_date",
        "hospital",
        amount=money_or_zero("out_of_pocket"),
    )


def education_records(education: pl.LazyFrame, w: Window) -> pl.LazyFrame:
    """The education records in W with their net cost. `is_latest` marks the latest record
    (`latest_education`) of each student having a 辍学 record in W, and only of those: no
    one else's latest record can be a 辍学 one, which is all DROPOUT asks. Finding it for
    those few students spares a window over every record (docs/benchmarks.md)."""
    fees = money_or_zero("tuition") + money_or_zero("accommodation") + money_or_zero("textbook")
    in_w = _prepared(education, "education", w.contains(pl.col("rule_date"))).select(
        "id_number",
        "source_key",
        "rule_date",
        "school",
        "stage",
        "status",
        "tuition",
        "accommodation",
        "textbook",
        "aid",
        net_cost=non_negative(fees - money_or_zero("aid")),
    )
    dropped_out = in_w.filter(pl.col("status") == DROPOUT_STATUS).select("id_number")
    latest = latest_education(in_w.join(dropped_out, on="id_number", how="semi")).select(
        "id_number", "rule_date", "source_key", is_latest=pl.lit(True)
    )
    return in_w.join(latest, on=["id_number", "rule_date", "source_key"], how="left").with_columns(
        pl.col("is_latest").fill_null(False)
    )


def latest_education(education: pl.LazyFrame) -> pl.LazyFrame:
    """One row per student: the latest of the prepared education records given (greatest
    record date, ties broken by the greatest record ID, which is the source key). The
    rules take it for students with a 辍学 record only; explain shows every pupil's."""
    return education.sort("rule_date", "source_key").group_by("id_number").last()


def traffic_records(traffic: pl.LazyFrame, w: Window) -> pl.LazyFrame:
    return _prepared(traffic, "traffic", w.contains(pl.col("rule_date"))).select(
        "id_number",
        "source_key",
        "rule_date",
        "injury",
        "direct_loss",
        "compensation",
        net_loss=non_negative(money_or_zero("direct_loss") - money_or_zero("compensation")),
        serious=pl.col("injury").is_in(SERIOUS_INJURIES).fill_null(False),
    )


def civil_records(civil: pl.LazyFrame, w: Window) -> pl.LazyFrame:
    kind = pl.col("assistance_type")
    qualifies = kind.is_in(ASSISTANCE_ANY_EVENT) | (
        kind.is_in(ASSISTANCE_NEW_ONLY) & (pl.col("event") == NEW_EVENT)
    )
    return _prepared(civil, "civil", w.contains(pl.col("rule_date"))).select(
        "id_number",
        "source_key",
        "rule_date",
        "assistance_type",
        "event",
        amount=money_or_zero("amount"),
        qualifies=qualifies.fill_null(False),
    )


def certificates(disability: pl.LazyFrame, w: Window, params: ResolvedParams) -> pl.LazyFrame:
    return _prepared(disability, "disability", pl.col("rule_date") <= pl.lit(w.end)).select(
        "id_number",
        "source_key",
        "rule_date",
        "disability_type",
        "grade",
        in_window=w.contains(pl.col("rule_date")),
        severe=pl.col("grade").is_in(params.severe_disability_grades).fill_null(False),
    )


def records(
    *,
    medical: pl.LazyFrame,
    education: pl.LazyFrame,
    traffic: pl.LazyFrame,
    civil: pl.LazyFrame,
    disability: pl.LazyFrame,
    w: Window,
    params: ResolvedParams,
) -> Records:
    return Records(
        medical=medical_records(medical, w),
        education=education_records(education, w),
        traffic=traffic_records(traffic, w),
        civil=civil_records(civil, w),
        certificates=certificates(disability, w, params),
    )


def person_facts(people: pl.LazyFrame, rec: Records, params: ResolvedParams) -> pl.LazyFrame:
    """`persons` plus, per person, the window sums and flags the household rules add up."""
    per_person = [
        rec.medical.group_by("id_number").agg(medical_oop=pl.col("amount").sum()),
        rec.education.group_by("id_number").agg(
            education_cost=pl.col("net_cost").sum(),
            latest_is_dropout=(
                pl.col("is_latest") & (pl.col("status") == DROPOUT_STATUS).fill_null(False)
            ).any(),
        ),
        rec.traffic.group_by("id_number").agg(
            accident_loss=pl.col("net_loss").sum(), serious_injury=pl.col("serious").any()
        ),
        rec.civil.group_by("id_number").agg(assistance=pl.col("qualifies").any()),
        rec.certificates.group_by("id_number").agg(
            # Grade 1 is the most severe, so a person's most severe certificate is the minimum.
            disability_grade=pl.col("grade").min(),
            new_severe_certificate=(pl.col("in_window") & pl.col("severe")).any(),
        ),
    ]
    # One join with the population instead of one per source: the per-source facts are
    # stacked and folded per person first (a few hundred thousand rows, not millions).
    stacked = (
        pl.concat(per_person, how="diagonal")
        .group_by("id_number")
        .agg(
            pl.col("medical_oop", "education_cost", "accident_loss").sum(),
            pl.col(
                "latest_is_dropout", "serious_injury", "assistance", "new_severe_certificate"
            ).any(),
            pl.col("disability_grade").min(),
        )
    )
    out = people.join(stacked, on="id_number", how="left")
    severe_held = pl.col("disability_grade").is_in(params.severe_disability_grades).fill_null(False)
    able = pl.col("working_age") & ~severe_held
    return out.with_columns(
        *(
            pl.col(c).fill_null(money(0)).cast(SUM)
            for c in ("medical_oop", "education_cost", "accident_loss")
        ),
        *(
            pl.col(c).fill_null(False)
            for c in ("latest_is_dropout", "serious_injury", "assistance", "new_severe_certificate")
        ),
    ).with_columns(
        dropout=pl.col("compulsory_age") & pl.col("latest_is_dropout"),
        serious_accident=pl.col("working_age") & pl.col("serious_injury"),
        able_worker=able,
        # Able workers holding a certificate have a mild one (severe ones exclude them).
        weak_worker=able & pl.col("disability_grade").is_not_null(),
    )


def match_rates(rec: Records, people: pl.LazyFrame, period: str) -> pl.LazyFrame:
    """Per source: records in W, and how many of them match a roster member's ID number."""
    in_window = pl.concat(
        [frame.select("id_number", source=pl.lit(s)) for s, frame in rec.in_window().items()],
        how="vertical",
    )
    matched = in_window.join(people.select("id_number"), on="id_number", how="semi")
    sources = pl.LazyFrame({"source": list(rec.in_window())})
    counts = [
        frame.group_by("source").agg(pl.len().cast(pl.Int64).alias(name))
        for name, frame in (("records_in_window", in_window), ("matched", matched))
    ]
    return (
        sources.join(counts[0], on="source", how="left", maintain_order="left")
        .join(counts[1], on="source", how="left", maintain_order="left")
        .select(
            period=pl.lit(period),
            source="source",
            records_in_window=pl.col("records_in_window").fill_null(0),
            matched=pl.col("matched").fill_null(0),
        )
        .with_columns(unmatched=pl.col("records_in_window") - pl.col("matched"))
    )
