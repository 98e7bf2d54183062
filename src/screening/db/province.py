"""The province's SQL: what the province reads of a county's database, and the views of
`province.duckdb`.

A county's database is only read (read-only, between its runs): its latest run of a period
and a few small tables, which the province keeps as parquet files of its own under
`<province out>/counties/<county>/` — counts, and the townships' current answers without
their notes. The county's lists are not copied: `province.duckdb`'s `suspects` view reads
the parquet files each county published, where they lie. Every view lists its files
explicitly (a county folder's name may hold characters a glob would read as a pattern),
so a period a county publishes after the roll-up appears at the next roll-up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from screening import tables
from screening.db.connect import Query, frame, present, rows, transaction

# The tables of a county that the province keeps a copy of (name → the county's relation
# and the columns copied). The answers leave out the township's 备注 and who imported which
# file: those stay in the county's database.
EXPORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "match_rates": ("match_rates", tuple(tables.table("match_rates").columns)),
    "scale_checks": ("scale_checks", tuple(tables.table("scale_checks").columns)),
    "answers": (
        "current_verifications",
        ("period", "township", "household_id", "result", "verification_date", "imported_at"),
    ),
    "runs": (
        "runs",
        (
            "run_id", "period", "township", "started_at", "finished_at", "status", "message",
            "code_version", "demo",
        ),
    ),
}  # fmt: skip
# Where each export's column types are described (the view current_verifications has the
# columns of the table verifications).
_TYPED_BY = {"answers": "verifications"}

COUNTY_COLUMN = "county"
COUNTY_WORDS = "县 the county, as named in the province file"

# The relations of province.duckdb, as the data dictionary and COMMENT ON describe them.
VIEWS: dict[str, str] = {
    "province_summary": tables.table("province_summary").description,
    "suspects": (
        "全省疑似监测对象: every county's published lists of every period "
        "(<county out>/<YYYY-MM>/suspects.parquet, read where they lie), `county` first, "
        "then the columns of a county's `suspects`"
    ),
    "match_rates": (
        "各县匹配率: every county's `match_rates` (copied from its database at each roll-up), "
        "`county` first"
    ),
    "scale_checks": (
        "各县规模校验: every county's `scale_checks` (copied at each roll-up), `county` first"
    ),
    "answers": (
        "各县核实结果: every county's current township answers (its `current_verifications` "
        "without 备注, file and importer, which stay in the county's database), `county` first"
    ),
    "runs": (
        "各县批次: every county's runs (its `runs` without parameters and input files), "
        "`county` first"
    ),
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files(paths: Sequence[Path]) -> str:
    return "[" + ", ".join(_literal(str(p)) for p in paths) + "]"


# ---------------------------------------------------------------- a county's database


def latest_run(
    con: duckdb.DuckDBPyConnection, period: str, since: dt.datetime | None = None
) -> dict[str, Any] | None:
    """The county's newest run of the whole county for `period` (started at or after
    `since`, when given): run_id, status, message, started_at; None without one."""
    if not present(con, "runs"):
        return None
    found = rows(
        con,
        Query(
            "SELECT run_id, status, message, started_at FROM runs "
            "WHERE period = $period AND township IS NULL "
            "AND ($since IS NULL OR started_at >= $since) "
            "ORDER BY started_at DESC, run_id DESC LIMIT 1",
            {"period": period, "since": since},
        ),
    )
    if not found:
        return None
    run_id, status, message, started = found[0]
    return {"run_id": run_id, "status": status, "message": message, "started_at": started}


def export(con: duckdb.DuckDBPyConnection, name: str, county: str) -> pl.DataFrame | None:
    """One of `EXPORTS` from a county's database, `county` first; None when the database
    (made by an earlier version, opened read-only) lacks the relation."""
    relation, columns = EXPORTS[name]
    if not present(con, relation):
        return None
    cols = ", ".join(f'"{c}"' for c in columns)
    found = frame(
        con,
        Query(
            f"SELECT $county AS {COUNTY_COLUMN}, {cols} FROM {relation} ORDER BY ALL",
            {"county": county},
        ),
    )
    return found.cast({COUNTY_COLUMN: pl.String})


def answered(con: duckdb.DuckDBPyConnection, period: str) -> tuple[int, int]:
    """(households of the period's list with a current answer, households listed)."""
    if not present(con, "current_verifications"):
        return 0, 0
    found = rows(
        con,
        Query(
            "SELECT count(v.household_id), count(*) FROM suspects s "
            "LEFT JOIN current_verifications v "
            "ON v.period = s.period AND v.household_id = s.household_id "
            "WHERE s.period = $period",
            {"period": period},
        ),
    )
    return int(found[0][0]), int(found[0][1])


# ---------------------------------------------------------------- province.duckdb


def _typed_columns(name: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a province view, for the empty view before any file."""
    if name == "province_summary":
        table = tables.table("province_summary")
        return [(c.name, c.sql_type) for c in table.columns.values()]
    if name == "suspects":
        table = tables.table("suspects")
        return [(COUNTY_COLUMN, "VARCHAR")] + [(c.name, c.sql_type) for c in table.columns.values()]
    relation, columns = EXPORTS[name]
    described = tables.table(_TYPED_BY.get(name, relation)).columns
    return [(COUNTY_COLUMN, "VARCHAR")] + [(c, described[c].sql_type) for c in columns]


def _empty(name: str) -> str:
    cols = ", ".join(f'CAST(NULL AS {kind}) AS "{col}"' for col, kind in _typed_columns(name))
    return f"SELECT {cols} WHERE false"


def view_sql(
    name: str, files: Sequence[Path], by_county: Mapping[str, Sequence[Path]] | None = None
) -> str:
    """The view `name` over `files` (each holding its `county` column), or for `suspects`
    over each county's published files (`by_county`), the county's name put first."""
    if name == "suspects":
        parts = [
            f"SELECT {_literal(county)} AS {COUNTY_COLUMN}, * "
            f"FROM read_parquet({_files(paths)}, union_by_name = true)"
            for county, paths in (by_county or {}).items()
            if paths
        ]
        body = "\nUNION ALL BY NAME\n".join(parts) if parts else _empty(name)
    elif files:
        body = f"SELECT * FROM read_parquet({_files(files)}, union_by_name = true)"
    else:
        body = _empty(name)
    return f"CREATE OR REPLACE VIEW {name} AS\n{body}"


def build_views(
    con: duckdb.DuckDBPyConnection,
    summaries: Sequence[Path],
    exports: Mapping[str, Sequence[Path]],
    published: Mapping[str, Sequence[Path]],
) -> None:
    """(Re)create every view of province.duckdb, with its comments, in one transaction."""
    with transaction(con):
        con.execute(view_sql("province_summary", summaries))
        con.execute(view_sql("suspects", [], published))
        for name in EXPORTS:
            con.execute(view_sql(name, exports.get(name, [])))
        _comment(con)


def _comment(con: duckdb.DuckDBPyConnection) -> None:
    summary = tables.table("province_summary").columns
    for name, description in VIEWS.items():
        con.execute(f"COMMENT ON VIEW {name} IS {_literal(description)}")
        if name == "province_summary":
            for col in summary.values():
                con.execute(f'COMMENT ON COLUMN {name}."{col.name}" IS {_literal(col.description)}')
        else:
            con.execute(f'COMMENT ON COLUMN {name}."{COUNTY_COLUMN}" IS {_literal(COUNTY_WORDS)}')
