"""The bench's whole-run floor and the command line's start-up (issue 20's targets).

The **whole-run floor** is what a monthly run costs when nothing but the lists is wanted:
DuckDB reads the month's delivered files (CSV and parquet itself; an xlsx through
fastexcel, DuckDB having no xlsx reader that works offline; a CSV not in UTF-8 transcoded
first), the rules run as one SQL query over the stored months (`bench.floor_query`'s SQL),
and each township's listed households are written as a CSV (`COPY … PARTITION_BY`). It
leaves out everything a run does besides: no normalising or validating of the delivered
rows, no quarantine, no evidence, no report, no workbook. The monthly run is measured
against it end to end (`run.run_period` in a fresh process).

**Start-up** is the wall time of `screening --help`, `screening report` and `screening
explain` in a fresh process against the bench's database, with the byte-compiled modules
an installed program has (Python writes them on the first run; this bench's environment
may forbid it, PYTHONDONTWRITEBYTECODE, so the commands are run without that setting).
"""

from __future__ import annotations

import codecs
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from screening import contract, params
from screening.ingest.inbox import discover

START_TARGET = 0.5  # seconds, each of the three commands
START_REPEATS = 5
# The monthly run of a county: under this many seconds, and under this many floors.
COUNTY_SECONDS = 15.0
COUNTY_FLOORS = 4.0
PUBLISH_SECONDS = 5.0  # publishing a list of 28,000 households (SIZE=biglist)


def read_delivered(con: duckdb.DuckDBPyConnection, inbox: Path, period: str, work: Path) -> int:
    """Every delivered file of the month into a DuckDB table, all text, as fast as it
    goes; the rows read."""
    specs = contract.load()
    rows = 0
    for source, found in discover(inbox, period, specs).items():
        path = found.path
        if path is None:
            continue
        table = f"floor_{source}"
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_parquet(?)", [str(path)]
            ).fetchall()
        elif suffix == ".xlsx":
            import fastexcel

            reader = fastexcel.read_excel(str(path))
            sheets = [
                reader.load_sheet(i, dtypes="string").to_arrow()
                for i in range(len(reader.sheet_names))
            ]
            arrow = max(sheets, key=lambda t: t.num_rows)
            con.register("__sheet", arrow)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM __sheet").fetchall()
            con.unregister("__sheet")
        else:
            csv = _utf8(path, work)
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM "
                "read_csv(?, all_varchar = true, header = true, ignore_errors = true)",
                [str(csv)],
            ).fetchall()
        rows += con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return rows


def _utf8(path: Path, work: Path) -> Path:
    """`path` itself when it is UTF-8, else a UTF-8 copy (a GBK export)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    try:
        head.decode("utf-8")
        return path
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut at the end of the sample
            return path
    copy = work / f"{path.stem}.utf8.csv"
    work.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as src, open(copy, "wb") as dst:
        decoder = codecs.getincrementaldecoder("gb18030")()
        while chunk := src.read(1 << 22):
            dst.write(decoder.decode(chunk).encode("utf-8"))
        dst.write(decoder.decode(b"", final=True).encode("utf-8"))
    return copy


def write_township_csvs(
    con: duckdb.DuckDBPyConnection,
    floor_sql: str,
    values: dict[str, Any],
    period: str,
    out: Path,
) -> int:
    """The floor's listed households, with their township and village from the roster in
    force, one CSV per township (`COPY … PARTITION_BY`); the households written."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    listed = (
        f"WITH listed AS ({floor_sql}) "
        "SELECT r.township, r.village, l.household_id, array_to_string(l.risk_codes, ';') "
        "AS risk_codes FROM listed l JOIN (SELECT DISTINCT ON (household_id) household_id, "
        "township, village FROM stg_roster WHERE period = (SELECT max(period) FROM stg_roster "
        "WHERE period <= $period) ORDER BY household_id, row_number) r USING (household_id)"
    )
    con.execute(
        f"COPY ({listed}) TO '{out}' (FORMAT csv, HEADER, PARTITION_BY (township), "
        "OVERWRITE_OR_IGNORE)",
        {**values, "period": period},
    ).fetchall()
    count = con.execute(
        f"SELECT count(*) FROM read_csv('{out}/*/*.csv', hive_partitioning = true)"
    ).fetchall()
    return int(count[0][0])


def whole_floor(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    period: str,
    resolved: params.ResolvedParams,
    floor_sql: tuple[str, dict[str, Any]],
    work: Path,
) -> tuple[int, int]:
    """Read the month's files, apply the rules in SQL and write the townships' CSVs:
    (rows read, households written)."""
    cur = con.cursor()  # its own results: the caller's connection may hold one open
    try:
        rows = read_delivered(cur, inbox, period, work / "utf8")
        sql, values = floor_sql
        written = write_township_csvs(cur, sql, values, resolved.period, work / "lists")
        tables = [r[0] for r in cur.execute("SHOW TABLES").fetchall()]
        for table in (t for t in tables if t.startswith("floor_")):
            cur.execute(f"DROP TABLE {table}").fetchall()
    finally:
        cur.close()
    return rows, written


# ---------------------------------------------------------------- start-up


def command_seconds(args: list[str], repeats: int = START_REPEATS) -> float:
    """The median wall time of `screening ARGS` in a fresh process (the console script
    beside this Python, as an operator runs it), with byte-compiled modules."""
    script = Path(sys.executable).parent / "screening"
    command = (
        [str(script), *args]
        if script.is_file()
        else [sys.executable, "-c", "from screening.cli.main import app; app()", *args]
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, capture_output=True, env=env)  # writes the .pyc
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def start_up(db: Path, period: str, household: str | None) -> dict[str, float]:
    """`screening --help`, `report` and `explain` against `db` (median seconds each)."""
    times = {"screening --help": command_seconds(["--help"])}
    times["screening report"] = command_seconds(["report", "--period", period, "--db", str(db)])
    if household is not None:
        times["screening explain"] = command_seconds(
            ["explain", household, "--period", period, "--db", str(db)]
        )
    return times


def a_listed_household(db: Path, period: str) -> str | None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute(
            "SELECT min(household_id) FROM suspects WHERE period = ?", [period]
        ).fetchall()
    finally:
        con.close()
    return found[0][0] if found else None
