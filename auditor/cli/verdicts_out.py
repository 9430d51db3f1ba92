"""Sending a stored run's verdicts to a tracing backend, for `audit export --otlp/--phoenix` and
`audit trace --export-otlp/--export-phoenix` (the work is `auditor.report.otlp` and
`auditor.report.phoenix`)."""

from __future__ import annotations

from typing import Any, Sequence

import typer
from rich.markup import escape

from auditor.cli.app import EXIT_USAGE, err_console


def parse_headers(items: Sequence[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` options -> a dict, or exit 2 naming the malformed one."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            err_console.print(f"[red]error:[/] --header {escape(item)!r}: expected KEY=VALUE "
                              "(e.g. Authorization=Basic ...)")
            raise typer.Exit(EXIT_USAGE)
        out[key.strip()] = value.strip()
    return out


def send_verdicts(store: Any, *, run_id: str | None = None, trajectory_ids: Sequence[str] | None = None,
                  otlp: str | None = None, phoenix: str | None = None, headers: dict[str, str] | None = None,
                  policy: Any = None, timeout: float = 10.0) -> dict[str, Any]:
    """Evaluate a stored run's actions and send them; says on stderr what went where, exits 2 on failure.
    Returns ``{"run_id", "evaluations", "otlp", "phoenix", "notes"}`` (counts sent)."""
    from auditor.report.otlp import ExportError, send_otlp, store_evaluations
    from auditor.report.phoenix import annotate_phoenix
    from auditor.store import StoreError

    try:
        rid, evals, notes = store_evaluations(store, run_id, trajectory_ids, policy)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    for note in notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    sent = {"run_id": rid, "evaluations": len(evals), "otlp": 0, "phoenix": 0, "notes": notes}
    try:
        if otlp:
            sent["otlp"] = send_otlp(evals, otlp, headers, timeout=timeout)
            err_console.print(f"sent {sent['otlp']} evaluation span(s) of run {escape(rid)} to {escape(otlp)}")
        if phoenix:
            sent["phoenix"] = annotate_phoenix(evals, phoenix, headers, timeout=timeout)
            err_console.print(f"annotated {sent['phoenix']} span(s) in Phoenix at {escape(phoenix)}")
    except ExportError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    return sent
