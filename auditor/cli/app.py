"""The Typer app every `audit` command registers on, and the shared rich consoles."""

from __future__ import annotations

from typing import Any

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


def policy_or_exit(path: Any = None, **overrides: Any) -> Any:
    """The check policy at ``path`` (None: the shipped one), with ``overrides`` that are not None,
    or exit 2 saying what is wrong with it: what every command that judges does first."""
    from rich.markup import escape

    from auditor.check import PolicyError, load_policy

    try:
        pol = load_policy(path)
        given = {k: v for k, v in overrides.items() if v is not None}
        return pol.with_overrides(**given) if given else pol
    except PolicyError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc



@app.callback()
def _root() -> None:
    """Root callback: keeps `audit` a command group even while few commands exist."""
