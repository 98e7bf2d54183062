"""One period's linkage: the records whose ID number reaches nobody, linked against the
roster in force, and the suggestions a person is asked to decide on.

The records (`candidates`) are the department records within the rules' reach of the
period (the window; certificates up to its end) that no roster person carries:

- quarantined for their ID number alone (`db.linkage.quarantined_candidates`): the number
  is no valid ID (a changed digit or two swapped digits break the check digit, a dropped
  check digit leaves 17), the rest of the row passed;
- valid but unmatched: the number is a valid ID of nobody on the roster (a 15-digit
  number converted with the wrong century, a wrong digit that happens to be valid).

A record with a confirmed link carries its person's number and is not a candidate; a pair
answered 不是 is never suggested again. Each record is described as explain describes
it (the department's `listing_amount` and `listing_detail` over its prepared record).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from screening import contract, tables
from screening.db import linkage as db_linkage
from screening.db import roster as db_roster
from screening.linkage import features, model
from screening.params import ResolvedParams
from screening.rules import EVENT_DEPARTMENTS, facts
from screening.rules.base import Department, Window, window

SUGGESTIONS_SCHEMA = tables.schema("link_suggestions")
SUGGESTIONS_FILE = "link_suggestions.parquet"  # in the run's work folder (pipeline.work)
QUARANTINE, UNMATCHED = "quarantine", "unmatched"
# A record's place in the deliveries: its source, the file's period and its row there.
RECORD_ORDER = ("source", "record_period", "row_number", "origin", "source_key")
RECORD_COLUMNS = {
    "record": pl.String(),
    "source": pl.String(),
    "source_key": pl.String(),
    "origin": pl.String(),
    "record_period": pl.String(),
    "file": pl.String(),
    "row_number": pl.Int64(),
    "record_name": pl.String(),
    "record_id_number": pl.String(),
    "rule_date": pl.Date(),
    "amount": SUGGESTIONS_SCHEMA["amount"],
    "detail": pl.String(),
    "township": pl.String(),
    "village": pl.String(),
}


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SUGGESTIONS_SCHEMA)


def suggest(
    con: duckdb.DuckDBPyConnection,
    specs: Mapping[str, contract.SourceSpec],
    period: str,
    resolved: ResolvedParams,
    run_id: str = "",
) -> pl.DataFrame:
    """The period's suggestions (SUGGESTIONS_SCHEMA), read-only on the database: for every
    candidate record, its most probable roster persons (at most
    `linkage.candidates_per_record`) at or above `linkage.suggest_probability`."""
    roster = db_linkage.roster_people(con, period)
    if roster.height == 0:
        return empty()
    records = candidates(con, specs, period, resolved, roster.select("id_number"))
    if records.height == 0:
        return empty()
    settings = resolved.linkage
    table = features.pinyin_table([records["record_name"], roster["name"]])
    left = features.compared(records, "record_name", "record_id_number", table,
                             "township", "village")  # fmt: skip
    right = features.compared(roster, "name", "id_number", table)
    pairs = model.link(left, right, settings.suggest_probability)
    rejected = db_linkage.rejected_pairs(con)
    return (
        _suggestions(pairs, records, roster, rejected, settings.candidates_per_record)
        .with_columns(period=pl.lit(period), run_id=pl.lit(run_id))
        .select(SUGGESTIONS_SCHEMA.names())
        .cast(SUGGESTIONS_SCHEMA)
    )


def _suggestions(
    pairs: pl.DataFrame,
    records: pl.DataFrame,
    roster: pl.DataFrame,
    rejected: pl.DataFrame,
    per_record: int,
) -> pl.DataFrame:
    found = (
        pairs.join(records, on="record", how="inner")
        .join(rejected, on=["source", "source_key", "id_number"], how="anti")
        .sort(["record", "match_probability", "id_number"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("record"))
        .filter(pl.col("rank") <= per_record)
        .drop("township", "village")
        .join(roster, on="id_number", how="inner")
    )
    reasons = [
        _reasons(r)
        for r in found.select(
            "record_id_number", "id_number", "level_name", "level_place"
        ).iter_rows(named=True)
    ]
    return found.with_columns(
        reasons=pl.Series(reasons, dtype=pl.String), rank=pl.col("rank").cast(pl.Int64)
    ).sort("township", "source", "source_key", "rank")


def _reasons(pair: Mapping[str, str | None]) -> str:
    words = [
        features.id_difference(pair["record_id_number"], str(pair["id_number"])),
        features.NAME_WORDS.get(str(pair["level_name"]), ""),
    ]
    place = features.PLACE_WORDS.get(str(pair["level_place"]))
    if place:
        words.append(place)
    return "；".join(w for w in words if w)


# ---------------------------------------------------------------- the records


def candidates(
    con: duckdb.DuckDBPyConnection,
    specs: Mapping[str, contract.SourceSpec],
    period: str,
    resolved: ResolvedParams,
    roster_ids: pl.DataFrame,
) -> pl.DataFrame:
    """RECORD_COLUMNS of every record to link: quarantined for its ID number alone, or
    valid and of nobody on the roster, within the rules' reach of `period`."""
    w = window(period, resolved.window_months)
    parts = []
    for department in EVENT_DEPARTMENTS:
        spec = specs[department.source]
        since, until = facts.reach(department, w)
        quarantined = db_linkage.quarantined_candidates(con, spec, period, since, until)
        if quarantined.height:
            parts.append(_described(quarantined, department, w, resolved, QUARANTINE))
        stored = db_roster.events_as_of(con, spec, period, since=since, until=until)
        unmatched = stored.filter(~pl.col("linked")).join(roster_ids, on="id_number", how="anti")
        if unmatched.height:
            unmatched = unmatched.with_columns(
                record_period=pl.col("period"),
                source_key=facts.source_key(department.source),
                record_id_number=pl.col("id_number"),
            ).join(
                db_linkage.extras(con, department.source, unmatched.select("period", "row_number")),
                on=["period", "row_number"],
                how="left",
            )
            parts.append(_described(unmatched, department, w, resolved, UNMATCHED))
    if not parts:
        return pl.DataFrame(schema=RECORD_COLUMNS)
    # Numbered in the order of the deliveries, not as the database returned them: the
    # number is the record's id in the model, whose sampling for the u probabilities
    # draws by id, so the same records must get the same numbers in every run (read in
    # parallel, a county's records came back in another order each time, and a re-run
    # moved match probabilities by up to 0.04).
    return (
        pl.concat(parts, how="vertical")
        .sort(RECORD_ORDER, nulls_last=True)
        .with_columns(record=pl.int_range(pl.len()).cast(pl.String))
    )


def _described(
    frame: pl.DataFrame, department: Department, w: Window, resolved: ResolvedParams, origin: str
) -> pl.DataFrame:
    """The records with what a person reads of them: name, raw ID number, date, amount and
    detail (as explain lists them), and where they say the person lives."""
    source = department.source
    token = pl.concat_str(pl.lit(f"{source}:"), pl.int_range(pl.len()).cast(pl.String))
    frame = frame.with_columns(__token=token)
    prepared = facts.prepare(frame.lazy().with_columns(id_number=pl.col("__token")),
                             department, w, resolved)  # fmt: skip
    amount = department.listing_amount if department.listing_amount is not None else pl.lit(None)
    detail = department.listing_detail if department.listing_detail is not None else pl.lit(None)
    described = prepared.select(
        pl.col("id_number").alias("__token"),
        pl.col("rule_date"),
        amount.cast(RECORD_COLUMNS["amount"]).alias("amount"),
        detail.cast(pl.String).alias("detail"),
    ).collect()
    extra = pl.col("extra") if "extra" in frame.columns else pl.lit(None, pl.String)
    place = features.place_from_extra(extra.cast(pl.String))
    return frame.join(described, on="__token", how="inner").select(
        pl.lit("").alias("record"),
        pl.lit(source).alias("source"),
        "source_key",
        pl.lit(origin).alias("origin"),
        "record_period",
        "file",
        pl.col("row_number").cast(pl.Int64),
        pl.col("name").alias("record_name"),
        "record_id_number",
        "rule_date",
        "amount",
        "detail",
        place["township"].alias("township"),
        place["village"].alias("village"),
    )


# ---------------------------------------------------------------- the run's work folder


def write(folder: Path, suggestions: pl.DataFrame) -> None:
    suggestions.write_parquet(folder / SUGGESTIONS_FILE)


def read(folder: Path) -> pl.DataFrame:
    """The suggestions the screen stage left (none from a work folder made without)."""
    path = folder / SUGGESTIONS_FILE
    return pl.read_parquet(path).cast(SUGGESTIONS_SCHEMA) if path.is_file() else empty()
