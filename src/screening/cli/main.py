"""`screening`, the command line (typer): the app and the commands on it, in the order
`--help` lists them.

The commands live by what they do: screening_commands (ingest, run), inspect_commands
(summary, report, quarantine, explain; explain's rendering in explain_view), whatif
(parameters tried on a screened period), serve, feedback (`feedback import`) and province
(`province run`, `province serve`). They share the console (console: rich on a terminal,
plain timestamped lines elsewhere), the
one-line errors and exit statuses (errors), and the options and settings (options).
Heavy libraries (polars, duckdb, pandera, prefect) are imported by the commands that use
them, so `--help` is quick.
"""

from __future__ import annotations

import typer

from screening.cli import feedback, inspect_commands, province, screening_commands, serve, whatif

app = typer.Typer(
    help="防返贫监测 部门数据筛查 — screen department data for households at risk of "
    "(re)falling into poverty, and publish per-township lists of 疑似监测对象.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# Without a name, a module's commands join the app's own.
app.add_typer(screening_commands.commands)
app.add_typer(inspect_commands.commands)
app.add_typer(whatif.commands)
app.add_typer(serve.commands)
app.add_typer(feedback.commands, name="feedback")
app.add_typer(province.commands, name="province")


def main() -> None:  # pragma: no cover - console script entry
    app()
