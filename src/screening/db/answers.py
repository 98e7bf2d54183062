"""The townships' answers in the database: what a feedback import reads (whether and when
a period's list was published, the households on a returnable list, the answers stored
before, a file's earlier rejects) and what it writes (`verifications` for the 疑似监测对象
lists, `removal_decisions` for the 风险消除候选 lists, `verification_rejects` for both)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import polars as pl

from screening.db.connect import Query, execute, frame, has_table, insert_frame, scalar, transaction


def was_screened(con: duckdb.DuckDBPyConnection, period: str) -> bool:
    """A run of the period finished: only then is there a list to verify."""
    if not (has_table(con, "runs") and has_table(con, "suspects")):
        return False
    found = scalar(
        con,
        Query(
            "SELECT count(*) FROM runs WHERE period = $period AND status = 'success'",
            {"period": period},
        ),
    )
    return bool(found)


def published_on(
    con: duckdb.DuckDBPyConnection, period: str, township: str, run_id: str | None
) -> dt.date | None:
    """The day the list was published: the end of the successful run `run_id` (named on
    its 说明 sheet), else of the period's first successful run that covered the township."""
    if run_id:
        named = scalar(
            con,
            Query(
                "SELECT finished_at FROM runs WHERE run_id = $run_id AND period = $period "
                "AND status = 'success'",
                {"run_id": run_id, "period": period},
            ),
        )
        if named is not None:
            return named.date()
    first = scalar(
        con,
        Query(
            "SELECT min(finished_at) FROM runs WHERE period = $period AND status = 'success' "
            "AND (township IS NULL OR township = $township)",
            {"period": period, "township": township},
        ),
    )
    return first.date() if first is not None else None


# Where the answers on each returnable list go (feedback/kinds.py names them).
ANSWER_TABLES = ("verifications", "removal_decisions")


def _answers(table: str) -> str:
    if table not in ANSWER_TABLES:
        raise ValueError(f"not a table of answers: {table}")
    return table


def removal_candidates(con: duckdb.DuckDBPyConnection, period: str) -> pl.DataFrame:
    """The households on the period's stored 风险消除候选 lists: household_id, township."""
    return frame(
        con,
        Query(
            "SELECT household_id, township FROM removal_candidates WHERE period = $period",
            {"period": period},
        ),
    )


def imported_rows(
    con: duckdb.DuckDBPyConnection, period: str, sha256: str, table: str = "verifications"
) -> pl.DataFrame:
    """The row numbers of the file (by its sha256) whose answers are stored already in
    `table` (verifications, removal_decisions)."""
    return frame(
        con,
        Query(
            f"SELECT row_number FROM {_answers(table)} WHERE period = $period "
            "AND file_sha256 = $sha",
            {"period": period, "sha": sha256},
        ),
    )


def current_decisions(
    con: duckdb.DuckDBPyConnection,
    period: str,
    columns: Sequence[str],
    table: str = "verifications",
) -> pl.DataFrame:
    """The `columns` of each household's current answer on the period's list (`table`)."""
    return frame(
        con,
        Query(
            f"SELECT {', '.join(columns)} FROM {_answers(table)} "
            "WHERE period = $period AND is_current",
            {"period": period},
        ),
    )


def file_rejects(con: duckdb.DuckDBPyConnection, period: str, sha256: str) -> pl.DataFrame:
    """The rejects recorded for the file (by its sha256) at its latest import."""
    return frame(
        con,
        Query(
            "SELECT * FROM verification_rejects WHERE period = $period AND file_sha256 = $sha",
            {"period": period, "sha": sha256},
        ),
    )


def store_answers(
    con: duckdb.DuckDBPyConnection,
    period: str,
    sha256: str,
    decisions: pl.DataFrame,
    rejects: pl.DataFrame,
    table: str = "verifications",
) -> None:
    """In one transaction: `decisions` (rows of `table`: verifications or
    removal_decisions) become their households' current answers, the earlier ones kept as
    history, and `rejects` become the file's rejects, replacing those of its earlier
    imports."""
    table = _answers(table)
    with transaction(con):
        if decisions.height:
            con.register("__decided", decisions.select("period", "household_id").to_arrow())
            try:
                con.execute(
                    f"UPDATE {table} v SET is_current = false FROM __decided d "
                    "WHERE v.period = d.period AND v.household_id = d.household_id "
                    "AND v.is_current"
                )
            finally:
                con.unregister("__decided")
        insert_frame(con, table, decisions)
        execute(
            con,
            Query(
                "DELETE FROM verification_rejects WHERE period = $period AND file_sha256 = $sha",
                {"period": period, "sha": sha256},
            ),
        )
        insert_frame(con, "verification_rejects", rejects)
