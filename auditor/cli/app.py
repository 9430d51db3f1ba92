"""The Typer app every `audit` command registers on, and the shared rich consoles."""

from __future__ import annotations

import typer
from rich.console import Console

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

# Exit codes CI systems can rely on.
EXIT_OK = 0
EXIT_FINDINGS = 1  # a check failed / something was flagged
EXIT_USAGE = 2  # bad arguments, unusable input
EXIT_SKIPPED = 3  # the job ran, but some input records were skipped (see the printed errors)


@app.callback()
def _root() -> None:
    """Root callback: keeps `audit` a command group even while few commands exist."""
