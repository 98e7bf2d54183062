"""The analyst surface is documented: the page matches the code, the database has comments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from screening.db import dictionary
from screening.db import schema as db_schema
from screening.db.connect import connect

ROOT = Path(__file__).resolve().parents[2]


def test_data_dictionary_page_is_current(specs) -> None:
    page = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert page.strip() == dictionary.render_markdown(specs).strip(), "run `make docs`"


def test_make_docs_renders_the_page() -> None:
    # The command `make docs` runs, as it runs it: a module moved must not break it.
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ndocs:", 1)[1]
    assert "-m screening.db.dictionary > docs/data-dictionary.md" in recipe.split("\n\n")[0]
    out = subprocess.run(
        [sys.executable, "-m", "screening.db.dictionary"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    page = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert out.strip() == page.strip()


def test_every_analyst_table_and_column_has_a_comment(db_path: Path, specs) -> None:
    con = connect(db_path)
    db_schema.ensure_schema(con, specs)
    relations = con.sql(
        "SELECT table_name AS name, comment FROM duckdb_tables() "
        "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    columns = con.sql(
        "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal"
    ).fetchall()
    con.close()
    names = {name for name, _ in relations}
    for required in (
        "suspects",
        "evidence",
        "quarantine",
        "ingest_log",
        "runs",
        "match_rates",
        "roster",
        "medical",
        "education",
        "traffic",
        "civil",
        "disability",
    ):
        assert required in names
    assert [name for name, comment in relations if not comment] == []
    assert [(t, c) for t, c, comment in columns if t in names and not comment] == []
