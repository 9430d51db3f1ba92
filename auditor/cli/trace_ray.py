"""`audit trace --ray`: the same inputs and options, replayed on a Ray cluster into a results lake."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from auditor.cli.app import EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, console, err_console, policy_or_exit


def trace_on_ray(inputs: list[str], *, results: str, fmt: str | None, policy: Path | None, as_json: bool,
                 force: bool, allow_skipped: bool, auditor_factory: str, settings: dict[str, Any],
                 options: dict[str, Any]) -> None:
    """Run `auditor.distributed.audit_on_ray` and report it as `audit trace` reports (exit 0, 2 or 3)."""
    if importlib.util.find_spec("ray") is None:
        err_console.print("[red]error:[/] --ray needs Ray: " + escape("pip install 'auditor[ray]'"))
        raise typer.Exit(EXIT_USAGE)
    pol = policy_or_exit(policy)

    from auditor.distributed import RayOptions, WorkerStartError, audit_on_ray

    def show(event: Any) -> None:
        if event.kind in ("worker_lost", "retry", "failed"):
            err_console.print(f"[yellow]{event.kind.replace('_', ' ')}:[/] {escape(event.message)}", soft_wrap=True)
        elif event.kind == "worker_started" and not as_json:
            err_console.print(f"[dim]{escape(event.message)}[/]", soft_wrap=True)

    try:
        run = audit_on_ray(inputs, results, settings=settings, policy=pol, fmt=fmt, options=RayOptions(**options),
                           auditor_factory=auditor_factory, force=force, on_event=show)
    except (WorkerStartError, ValueError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    for issue in run.issues:
        color = "red" if issue.severity == "error" else "yellow"
        err_console.print(f"[{color}]{issue.severity}:[/] {escape(str(issue))}", soft_wrap=True)
    s = run.summary
    skipped = sum(1 for i in run.issues if i.severity == "error") + len(s.failed)
    if as_json:
        typer.echo(json.dumps({
            "results": run.results, "run_id": s.run_id, "policy": s.policy_source, "trajectories": run.trajectories,
            "audited": s.audited, "resumed": s.resumed, "batches": s.batches, "seconds": s.seconds,
            "issues": [{"file": i.file, "line": i.line, "span_id": i.span_id, "field": i.field,
                        "severity": i.severity, "message": i.message} for i in run.issues],
            "failed": [{"trajectory_id": f.trajectory_id, "error": f.error, "attempts": f.attempt} for f in s.failed],
            "events": s.events,
            "workers": [w.model_dump(mode="json") for w in s.workers],
        }, indent=2, ensure_ascii=False))
    else:
        for f in s.failed:
            err_console.print(f"[red]error:[/] {escape(f.trajectory_id)}: audit failed after {f.attempt} "
                              f"attempt{'s' if f.attempt != 1 else ''}: {escape(f.error or '')}", soft_wrap=True)
        rate = f", {60 * s.audited / s.seconds:.1f} trajectories/min" if s.audited and s.seconds else ""
        console.print(f"run {s.run_id}: {s.audited} audited, {s.resumed} already in the lake, {len(s.failed)} failed "
                      f"({s.batches} batch{'es' if s.batches != 1 else ''}, {s.seconds:.1f} s{rate})")
        console.print(f"results in [bold]{escape(run.results)}[/]: audit query --lake {escape(run.results)} \"SQL\", "
                      f"or audit ingest {escape(run.results)} --db DB")
    raise typer.Exit(EXIT_SKIPPED if skipped and not allow_skipped else EXIT_OK)
