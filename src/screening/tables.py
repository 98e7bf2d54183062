"""The output tables as data: one `schemas/tables/<name>.yaml` per table the pipeline writes.

A table is described once — its columns, their types, 中文表头 where people read them,
descriptions, required columns and key — and everything else is made from that: the
DuckDB DDL (`Table.ddl`), the polars schema (`Table.schema`), the headers of the lists
(`Table.headers`) and the data dictionary (dictionary.py). `kind` is `table` (in the
database), `view` (in the database, its query in src/screening/db/views/), `frame` (a frame a run
passes between stages, never stored as such) or `province` (written by a province's roll-up,
never in a county's database: screening.province).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import polars as pl

from screening.contract import ContractError, read_yaml, resource_dir
from screening.vocab import TYPES


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of vocab.TYPES
    description: str = ""
    header: str = ""  # 中文表头, where the column is shown to people
    required: bool = False  # NOT NULL

    @property
    def dtype(self) -> pl.DataType:
        return TYPES[self.type][0]

    @property
    def sql_type(self) -> str:
        return TYPES[self.type][1]


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # table | view | frame | province
    description: str
    columns: Mapping[str, Column]
    primary_key: tuple[str, ...] = ()

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns.values()})

    @property
    def headers(self) -> dict[str, str]:
        """Column → 中文表头, for the columns people read (in table order)."""
        return {c.name: c.header for c in self.columns.values() if c.header}

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema)

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Exactly the table's columns, in its order and types."""
        return frame.select(pl.col(c.name).cast(c.dtype) for c in self.columns.values())

    def ddl(self) -> str:
        """CREATE TABLE IF NOT EXISTS, with NOT NULL and the primary key."""
        cols = [
            f'"{c.name}" {c.sql_type}' + (" NOT NULL" if c.required else "")
            for c in self.columns.values()
        ]
        if self.primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(cols)})"


def _parse(raw: dict, origin: str) -> Table:
    try:
        columns = {}
        for name, spec in (raw["columns"] or {}).items():
            spec = dict(spec or {})
            kind = spec.pop("type", "text")
            if kind not in TYPES:
                raise ContractError(f"{origin}: column {name}: unknown type {kind!r}")
            columns[name] = Column(
                name=name,
                type=kind,
                description=str(spec.pop("description", "")),
                header=str(spec.pop("header", "")),
                required=bool(spec.pop("required", False)),
            )
            if spec:
                raise ContractError(f"{origin}: column {name}: unknown settings {sorted(spec)}")
        return Table(
            name=raw["table"],
            kind=raw["kind"],
            description=str(raw.get("description", "")),
            columns=columns,
            primary_key=tuple(raw.get("primary_key") or ()),
        )
    except (KeyError, TypeError) as exc:
        raise ContractError(f"{origin}: malformed table description ({exc})") from exc


@cache
def load() -> dict[str, Table]:
    """Every described table, by name."""
    folder = resource_dir("schemas") / "tables"
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        table = _parse(read_yaml(path.read_text(encoding="utf-8")), str(path))
        found[table.name] = table
    return found


def table(name: str) -> Table:
    return load()[name]


def schema(name: str) -> pl.Schema:
    return load()[name].schema


def stored() -> list[Table]:
    """The tables the database holds (views excluded), in name order."""
    return [t for t in load().values() if t.kind == "table"]
