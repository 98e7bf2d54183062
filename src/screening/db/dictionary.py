"""The data dictionary: one description per analyst-facing table and column.

The output tables are described in schemas/tables/ (tables.py), the sources in the input
contract; the same text becomes `COMMENT ON` in the database (so DBeaver and `duckdb_columns()`
show it) and docs/data-dictionary.md (rendered by `render_markdown`; a test keeps the
page equal to it). Source columns are described from the contract's aliases.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from screening import tables
from screening.contract import SourceSpec

TYPE_WORDS = {
    "text": "text",
    "id": "18-character resident ID number (GB 11643, normalised)",
    "date": "date",
    "money": "yuan, 2 decimals",
    "enum": "one of",
    "grade": "disability grade 1–4 (1 most severe)",
}

# The names analysts use most come first; the rest in name order.
FIRST = ("suspects", "evidence", "quarantine", "ingest_log", "runs", "match_rates")

PROVENANCE = {
    "period": "delivery period YYYY-MM (the month folder the file came in)",
    "file": "file name the row came from",
    "row_number": "row in that file as a spreadsheet shows it",
    "extra": "columns the contract does not know, as delivered (JSON object), or null",
}


def source_columns(spec: SourceSpec) -> dict[str, str]:
    cols = {}
    for key, col in spec.columns.items():
        words = TYPE_WORDS[col.type]
        if col.type == "enum":
            words = f"{words} {' / '.join(col.values)}"
        names = " / ".join(col.aliases)
        cols[key] = f"{names}: {words}" if names else words
    return cols


def source_description(spec: SourceSpec, staging: bool) -> str:
    if staging:
        return (
            f"{spec.title}: every accepted row of every delivery "
            "(a file read again for a period replaces its rows; a missing or rejected file "
            "never does, only `screening ingest --withdraw`)"
        )
    if spec.kind == "snapshot":
        return f"{spec.title}: every roster snapshot received; filter on period"
    key = " + ".join(spec.natural_key)
    return f"{spec.title}: current records, the newest delivery of each {key}"


def entries(specs: dict[str, SourceSpec]) -> dict[str, tuple[str, dict[str, str]]]:
    """Every documented relation: the outputs (schemas/tables/, frames left out), then per
    source its view and staging table."""
    described = [t for t in tables.load().values() if t.kind in ("table", "view")]
    described.sort(key=lambda t: (FIRST.index(t.name) if t.name in FIRST else len(FIRST), t.name))
    found = {
        t.name: (t.description, {c.name: c.description for c in t.columns.values()})
        for t in described
    }
    for spec in specs.values():
        cols = {
            "period": PROVENANCE["period"],
            "file": PROVENANCE["file"],
            "row_number": PROVENANCE["row_number"],
            **source_columns(spec),
            "extra": PROVENANCE["extra"],
        }
        found[spec.source] = (source_description(spec, staging=False), cols)
        found[f"stg_{spec.source}"] = (source_description(spec, staging=True), cols)
    return found


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def apply_comments(con: duckdb.DuckDBPyConnection, specs: dict[str, SourceSpec]) -> None:
    """COMMENT ON every documented table or view and each of its columns."""
    kinds = dict(con.execute("SELECT table_name, 'TABLE' FROM duckdb_tables()").fetchall())
    kinds.update(con.execute("SELECT view_name, 'VIEW' FROM duckdb_views()").fetchall())
    for name, (description, columns) in entries(specs).items():
        kind = kinds.get(name)
        if kind is None:
            continue
        con.execute(f"COMMENT ON {kind} {name} IS {_quote(description)}")
        for col, text in columns.items():
            con.execute(f'COMMENT ON COLUMN {name}."{col}" IS {_quote(text)}')


def render_markdown(specs: dict[str, SourceSpec]) -> str:
    lines = [
        "# Data dictionary",
        "",
        "The DuckDB file (`screening.duckdb` by default) for analysts. Generated from",
        "`schemas/tables/*.yaml` and the input contract `schemas/*.yaml` (`make docs`); the",
        "same text is in the database as",
        "`COMMENT ON` (see `SELECT * FROM duckdb_columns()`). Names and columns are stable",
        "across releases.",
        "",
    ]
    for name, (description, columns) in entries(specs).items():
        lines += [f"## `{name}`", "", description, "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{col}` | {text} |" for col, text in columns.items()]
        lines.append("")
    lines += risk_codes()
    lines += province_entries()
    return "\n".join(lines)


def province_entries() -> list[str]:
    """The views of a province's `province.duckdb` (`screening province run`)."""
    from screening.db import province

    lines = [
        "# The province's file: `province.duckdb`",
        "",
        "`screening province run` keeps `<province out>/province.duckdb`: views over every",
        "county of the province file and every period, rebuilt at each run (the same text is",
        "in the file as `COMMENT ON`). The lists are read where each county published them;",
        "the other views read small copies under `<province out>/counties/<county>/`.",
        "",
    ]
    summary = tables.table("province_summary")
    for name, description in province.VIEWS.items():
        lines += [f"## `{name}` (province)", "", description, ""]
        if name == summary.name:
            lines += ["| column | meaning |", "|---|---|"]
            lines += [f"| `{c.name}` | {c.description} |" for c in summary.columns.values()]
        else:
            relation, columns = province.EXPORTS.get(name, (name, ()))
            shown = ", ".join(f"`{c}`" for c in columns) if columns else "all of them"
            lines += [
                f"`{province.COUNTY_COLUMN}` ({province.COUNTY_WORDS}), then the columns of the "
                f"county's `{relation}` described above: {shown}.",
            ]
        lines.append("")
    return lines


def risk_codes() -> list[str]:
    """The risk points (`risk_codes`, `evidence.risk_code`) as the rules define them, worded
    over the default parameters."""
    from screening import params
    from screening.rules import RISKS

    defaults = params.load().at(f"{dt.date.today():%Y-%m}")
    lines = ["## Risk codes", "", "| code | 风险点 | meaning (default parameters) | sources |"]
    lines.append("|---|---|---|---|")
    lines += [
        f"| `{r.code}` | {r.label} | {r.meaning(defaults)} | {', '.join(r.sources)} |"
        for r in RISKS
    ]
    return [*lines, ""]


if __name__ == "__main__":  # `make docs`: python -m screening.db.dictionary > docs/…
    from screening import contract

    print(render_markdown(contract.load()))
