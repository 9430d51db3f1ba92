"""`audit trace`: import, replay, attribute, store, and print what drove each action."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from auditor.cli.app import EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, app, console, err_console
from auditor.audit.schema import TrajectoryAudit
from auditor.store.ingest import trajectory_sha256
from auditor.trajectory import AUTHORITY_KINDS, DATA_KINDS, Trajectory


def run_id_for(trajs: list[Trajectory], *, model: str | None, method: str, hops: int, dtype: str,
               max_tokens: int | None) -> str:
    """A run id derived from what is audited and how: the same inputs and options give the same
    id, so rerunning `audit trace` after a crash resumes the run instead of starting another."""
    from auditor import __version__

    key = {
        "trajectories": sorted(trajectory_sha256(t) for t in trajs),
        "model": model or "embedded", "method": method, "hops": hops, "dtype": dtype,
        "max_tokens": max_tokens, "version": __version__,
    }
    return "run-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _make_auditor(**kw: Any) -> Any:
    """The replay engine (a seam: tests substitute a model-free one)."""
    from auditor.audit import Auditor

    return Auditor(**kw)


@app.command("trace")
def trace_command(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True, show_default=False,
                                       help="Span dumps (OTLP JSON, SDK console), trajectory JSONL or Aider logs."),
    model: str | None = typer.Option(None, "--model", help="Replay model: a local HF directory (default: the embedded SmolLM2)."),
    method: str = typer.Option("flashtrace", "--method", help="Attribution method (flashtrace, ifr-token, attention, loo)."),
    hops: int = typer.Option(1, "--hops", min=0, help="Hops through model-generated text."),
    db: Path | None = typer.Option(None, "--db", help="Database file (default: $AUDITOR_DB or ./auditor.duckdb)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary (drivers per action) instead of tables."),
    top: int = typer.Option(3, "--top", min=1, help="Drivers shown per action."),
    fmt: str | None = typer.Option(None, "--format", help="Input format, when sniffing guesses wrong "
                                   "(trajectory-jsonl, otlp-json, otel-console, aider-chat-history, aider-llm-history)."),
    dtype: str = typer.Option("float32", "--dtype", help="Model dtype for the replay."),
    device: str | None = typer.Option(None, "--device", help="Torch device (default: cuda if available, else cpu)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Context limit for the replay."),
    attribute: bool = typer.Option(True, "--attribute/--no-attribute",
                                   help="--no-attribute: only import and store spans and trajectories."),
    force: bool = typer.Option(False, "--force", help="Re-audit trajectories this run already recorded."),
    allow_skipped: bool = typer.Option(False, "--allow-skipped", help="Exit 0 even when input records were skipped."),
) -> None:
    """Import agent runs, replay them, attribute every action, store it all, print the drivers.

    Every unusable record is reported (file:line, span, field) and skipped; the rest is kept. Results go to the database (see audit query); a rerun with the same files and options resumes the same run and stores nothing twice.

    Exit codes: 0 ok, 2 bad usage, 3 some records (or trajectories) were skipped.

    --json prints one JSON object: db, run_id, spans_added, trajectories, skipped, issues (file, line, span_id, field, severity, message), audits (per trajectory: its actions, each with support and its top drivers: rank, kind, label, share) and failed.

    Example: audit trace examples/injected_email.jsonl --db audit.duckdb
    """
    from auditor.collectors.loading import load_paths
    from auditor.store import Store, StoreError

    result = load_paths(list(files), fmt)
    for issue in result.issues:
        color = "red" if issue.severity == "error" else "yellow"
        err_console.print(f"[{color}]{issue.severity}:[/] {escape(str(issue))}", soft_wrap=True)

    try:
        store = Store(db)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc

    audits: list[tuple[TrajectoryAudit, bool]] = []
    failed: list[dict[str, str]] = []
    run_id = None
    with store:
        spans_added = store.add_spans(result.spans)
        store.add_trajectories(result.trajectories)
        trajs = result.trajectories
        if attribute and trajs:
            run_id = run_id_for(trajs, model=model, method=method, hops=hops, dtype=dtype, max_tokens=max_tokens)
            done = set() if force else set(store.audited(run_id))
            auditor = None
            for i, traj in enumerate(trajs, start=1):
                if traj.id in done:
                    audits.append((store.load_audit(run_id, traj.id), True))
                    continue
                if auditor is None:
                    try:
                        auditor = _make_auditor(model=model, method=method, hops=hops, dtype=dtype, device=device,
                                                max_tokens=max_tokens)
                    except (ValueError, KeyError, RuntimeError, OSError, ImportError) as exc:
                        err_console.print(f"[red]error:[/] cannot start the replay: {escape(str(exc))}")
                        raise typer.Exit(EXIT_USAGE) from exc
                try:
                    with err_console.status(f"auditing {escape(traj.id)} ({i}/{len(trajs)})"):
                        audit = auditor.audit(traj)
                except Exception as exc:  # noqa: BLE001 - one bad trajectory must not sink the others
                    failed.append({"trajectory_id": traj.id, "error": f"{type(exc).__name__}: {exc}"})
                    err_console.print(f"[red]error:[/] {escape(traj.id)}: audit failed: {escape(str(exc))}")
                    continue
                audit = audit.model_copy(update={"run": audit.run.model_copy(update={"run_id": run_id})})
                store.record_audit(audit)
                audits.append((audit, False))
        threshold = float(store.get_setting("unsupported_threshold", "0.5") or 0.5)

    if as_json:
        typer.echo(json.dumps({
            "db": store.path, "run_id": run_id, "spans_added": spans_added, "trajectories": len(result.trajectories),
            "skipped": result.skipped,
            "issues": [{"file": i.file, "line": i.line, "span_id": i.span_id, "field": i.field,
                        "severity": i.severity, "message": i.message} for i in result.issues],
            "audits": [_summary(a, resumed, top) for a, resumed in audits],
            "failed": failed,
        }, indent=2, ensure_ascii=False))
    else:
        for audit, resumed in audits:
            console.print(_drivers_table(audit, top, threshold, resumed))
            for note in [*audit.dropped, *audit.unplaced]:
                console.print(f"  [yellow]note:[/] {escape(note)}")
        n = len(result.trajectories)
        stored = f"{n} trajector{'y' if n == 1 else 'ies'}"
        if result.spans:
            stored += f", {spans_added} new spans"
        console.print(f"stored {stored} in [bold]{escape(store.path)}[/]"
                      + (f" (run {run_id})" if run_id else ""))
        if result.skipped or failed:
            err_console.print(f"[yellow]{result.skipped + len(failed)} record(s) skipped[/] (see the errors above)")
    skipped = result.skipped + len(failed)
    raise typer.Exit(EXIT_SKIPPED if skipped and not allow_skipped else EXIT_OK)


def _support(att: Any) -> float:
    a, d = att.share_of(AUTHORITY_KINDS), att.share_of(DATA_KINDS)
    return a / (a + d) if a + d > 0 else 1.0


def _summary(audit: TrajectoryAudit, resumed: bool, top: int) -> dict[str, Any]:
    return {
        "trajectory_id": audit.trajectory.id, "run_id": audit.run.run_id, "resumed": resumed,
        "model": audit.run.model, "method": audit.run.method, "hops": audit.run.hops,
        "actions": [{
            "action_id": att.action.id, "kind": att.action.kind.value, "tool_name": att.action.tool_name,
            "summary": att.action.summary, "support": round(_support(att), 4),
            "drivers": [{"rank": d.rank, "segment_id": d.segment_id, "kind": d.kind.value, "label": d.label,
                         "share": round(d.share, 4)} for d in att.top(top)],
        } for att in audit.actions],
        "dropped": audit.dropped, "unplaced": audit.unplaced,
    }


def _drivers_table(audit: TrajectoryAudit, top: int, threshold: float, resumed: bool) -> Table:
    """One row per driver; the action's cells only on its first row."""
    run = audit.run
    title = f"{audit.trajectory.id}  [dim]({run.model}, {run.method}, {run.hops} hop{'s' if run.hops != 1 else ''}"
    title += ", from the store)" if resumed else ")"
    table = Table(title=title + "[/]", title_justify="left")
    action_w = 28 if console.width < 120 else 40
    room = max(20, console.width - action_w - 7 - 6 - 13)  # what the driver column has left
    table.add_column("action", overflow="fold", width=action_w)
    table.add_column("support", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("driver", overflow="fold")
    for att in audit.actions:
        support = _support(att)
        style = "dim" if att.action.kind.value == "final_answer" else "red" if support < threshold else "green"
        head = f"[bold]{escape(att.action.id)}[/]\n{escape(_clip(att.action.summary, 2 * action_w))}"
        drivers = att.top(top) or [None]
        for k, d in enumerate(drivers):
            first = k == 0
            table.add_row(
                head if first else "",
                f"[{style}]{support:.2f}[/]" if first else "",
                f"{d.share:.1%}" if d else "",
                escape(_clip(d.label, room)) if d and d.label
                else f"[dim]{d.kind.value}[/] {escape(d.segment_id)}" if d else "[dim]no drivers[/]",
                end_section=k == len(drivers) - 1,
            )
    return table


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: max(n - 1, 1)] + "…"
