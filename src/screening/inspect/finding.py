"""Finding the household an officer asks about: by 户编号 or a member's ID number in any
messy form on the roster in force, by a member's name (to choose among the people called
so), and where else a key not found appears."""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass

import duckdb
import polars as pl

from screening import ids
from screening.db import inspect as db_inspect
from screening.db import roster as db_roster
from screening.inspect.base import ExplainError, require_tables
from screening.periods import check_period
from screening.vocab import HEAD_RELATION


@dataclass(frozen=True)
class Found:
    household_id: str
    by: str  # "household_id" or "id_number"
    id_number: str | None  # the member asked about, when found by ID number


def find_household(roster: pl.DataFrame, key: str, period: str) -> Found:
    """A household ID, or a member's ID number in any messy form (full-width, 15 digits,
    apostrophe …), on the roster in force at `period`."""
    text = key.strip()
    id_number = ids.normalise(text)
    if id_number is not None:
        hit = roster.filter(pl.col("id_number") == id_number)
        if hit.height:
            return Found(hit["household_id"][0], "id_number", id_number)
    if roster.filter(pl.col("household_id") == text).height:
        return Found(text, "household_id", None)
    if id_number is not None:
        raise ExplainError(
            f"身份证号 {ids.mask(id_number)} 不在 {period} 期适用的人口库中 ID number is on no "
            f"household of the roster in force for {period}"
        )
    # A mistyped ID number, not a household id (those have 16 digits).
    if ids.names_id(ids.clean(text)):
        raise ExplainError(
            f"{ids.mask(ids.clean(text))} 不是有效的身份证号（校验码或出生日期不对），也不是户编号 "
            "not a valid ID number (check digit or birth date) and no household has that id"
        )
    households = roster["household_id"].unique().sort().to_list()
    close = difflib.get_close_matches(text, households, n=3, cutoff=0.6)
    hint = (
        f"; 最接近的户编号 nearest household ids: {ids.mask_text(', '.join(close))}"
        if close
        else ""
    )
    raise ExplainError(
        f"{ids.mask_text(text)!r} 既不是户编号，也不是 {period} 期人口库中的身份证号或姓名 "
        f"is neither a household id, an ID number nor a name on the roster in force for "
        f"{period}{hint}"
    )


def looks_like_name(key: str) -> bool:
    """A key with no digit in it is a person's name, not a 户编号 or an ID number."""
    return bool(key.strip()) and not any(ch.isdigit() for ch in ids.fold_width(key))


def people_named(con: duckdb.DuckDBPyConnection, name: str, period: str) -> pl.DataFrame:
    """Members of the roster in force at `period` called `name` (or, when nobody is, whose
    name contains it), with their household: for an officer who only has a name to choose
    the household from. Full ID numbers: the caller masks them."""
    check_period(period)
    require_tables(con)
    roster = db_roster.population(con, period)
    if roster.height == 0:
        raise ExplainError(f"截至 {period} 没有收到人口库 no roster received at or before {period}")
    wanted = unicodedata.normalize("NFKC", name).strip()
    names = pl.col("name").str.normalize("NFKC").str.strip_chars()
    found = roster.filter(names == wanted)
    if found.height == 0:
        found = roster.filter(names.str.contains(wanted, literal=True))
    heads = (
        roster.filter(pl.col("relation") == HEAD_RELATION)
        .select("household_id", pl.col("name").alias("head_name"))
        .unique("household_id", keep="first")
    )
    return (
        found.join(heads, on="household_id", how="left")
        .select("name", "relation", "id_number", "household_id", "head_name", "township",
                "village")
        .sort("township", "village", "household_id", "name")
    )  # fmt: skip


def elsewhere(con: duckdb.DuckDBPyConnection, key: str) -> str:
    """Where else a key not on the period's roster appears: other roster snapshots."""
    id_number = ids.normalise(key.strip())
    found = db_inspect.roster_appearances(con, key.strip(), id_number)
    if not found:
        return ""
    where = ", ".join(f"{p} as household {ids.mask_text(h)}" for p, h in found)
    return f" (在其他期的人口库中 on the roster of {where})"
