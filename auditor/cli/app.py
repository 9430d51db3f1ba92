"""The Typer app every `audit` command registers on, and the shared rich consoles."""

from __future__ import annotations

import typer
from rich.console import Console

# Exit codes CI systems can rely on: the check owns them (its verdicts decide them); re-exported here
# for the commands.
from auditor.check.exit_codes import EXIT_FINDINGS, EXIT_OK, EXIT_SKIPPED, EXIT_TIMEOUT, EXIT_USAGE  # noqa: F401

app = typer.Typer(
    name="audit",
    help=(
        "Explain what drove each action of an LLM agent.\n\n"
        "Capture agent runs as OpenTelemetry spans, replay them through a local model, attribute "
        "every action (tool call, code edit, answer) to the instructions, tool outputs and files "
        "that drove it, and query the history with SQL.\n\n"
        "Example: audit trace examples/injected_email.jsonl && audit query \"SELECT * FROM action_drivers\""
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)



@app.callback()
def _root() -> None:
    """Root callback: keeps `audit` a command group even while few commands exist."""
