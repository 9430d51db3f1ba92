"""`audit`: the command-line interface. Each command lives in its own module and registers
itself on the shared Typer app; the library (`auditor.*`) does the work."""

from __future__ import annotations

from auditor.cli.app import app

# Importing a module registers its commands (order = order in --help).
from auditor.cli import trace_cmd, query_cmd, ingest_cmd, show_cmd, collect_cmd, check_cmd, guard_cmd, report_cmd, eval_cmd, models_cmd  # noqa: E402,F401


def main() -> None:
    from auditor.model_registry import prefer_passive_waits

    prefer_passive_waits()  # before anything imports torch (OpenMP reads it once): see docs/benchmarks/threads.md
    app()


__all__ = ["app", "main"]
