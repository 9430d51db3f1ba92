"""`audit trace`: import, replay, attribute, store, and print what drove each action."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from auditor.cli.app import EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, app, console, err_console, policy_or_exit
from auditor.cli.progress import Progress
from auditor.audit.runs import AuditorUnavailable, audit_each, run_id_for
from auditor.audit.schema import TrajectoryAudit
from auditor.report.export import judgement

RAY_PANEL = "Ray: scale-out (pip install 'auditor\\[ray]')"


@app.command("trace")
def trace_command(
    files: list[str] = typer.Argument(..., show_default=False,
                                      help="Span dumps (OTLP JSON, SDK console), trajectory JSONL or Aider logs (a chat "
                                           "history and an LLM history log from one folder are joined; with --ray also "
                                           "directories, globs and URIs: s3://, gs://, file://)."),
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
    policy: Path | None = typer.Option(None, "--policy", "-p", help="Check policy TOML the actions are judged by "
                                       "(default: the shipped one); the verdicts are stored with the audits."),
    allow_skipped: bool = typer.Option(False, "--allow-skipped", help="Exit 0 even when input records were skipped."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for the replay (default: "
                                       "$OMP_NUM_THREADS, else one per core, waiting threads asleep)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr."),
    export_otlp: str | None = typer.Option(None, "--export-otlp", metavar="URL",
                                           help="Then send each action's verdict to this OTLP/HTTP endpoint, joined "
                                                "to the agent's trace (as `audit export --otlp`)."),
    export_phoenix: str | None = typer.Option(None, "--export-phoenix", metavar="URL",
                                              help="Then annotate each action's span in the Phoenix at URL "
                                                   "(as `audit export --phoenix`)."),
    on_ray: bool = typer.Option(False, "--ray", rich_help_panel=RAY_PANEL,
                                help="Replay on a Ray cluster into a Parquet results lake (--results) instead of the database."),
    address: str | None = typer.Option(None, "--address", rich_help_panel=RAY_PANEL,
                                       help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: $RAY_ADDRESS, "
                                            "else a local cluster)."),
    workers: int | None = typer.Option(None, "--workers", min=1, rich_help_panel=RAY_PANEL,
                                       help="Replay workers (default: one per GPU, else one per CPU)."),
    gpus_per_worker: float | None = typer.Option(None, "--gpus-per-worker", min=0, rich_help_panel=RAY_PANEL,
                                                 help="GPUs per worker (default: 1 when the cluster has GPUs, else 0)."),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", min=0.1, rich_help_panel=RAY_PANEL,
                                          help="CPUs per worker (its torch threads)."),
    results: str = typer.Option("auditor-results", "--results", rich_help_panel=RAY_PANEL,
                                help="Results lake: a directory or URI (s3://...) every worker's shards land in."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, rich_help_panel=RAY_PANEL,
                                   help="Trajectories per batch (one Parquet shard per table per batch)."),
    retries: int = typer.Option(2, "--retries", min=0, rich_help_panel=RAY_PANEL,
                                help="Further tries for a failed trajectory, or a batch whose worker died."),
    auditor_factory: str = typer.Option("auditor.audit.runs:make_auditor", "--auditor-factory",
                                        rich_help_panel=RAY_PANEL,
                                        help="module:function the workers build their auditor with "
                                             "(auditor.testing.auditors:tiny_auditor: a tiny random model)."),
) -> None:
    """Import agent runs, replay them, attribute every action, store it all, print the drivers.

    Every unusable record is reported (file:line, span, field) and skipped; the rest is kept. Results go to the database (see audit query); a rerun with the same files and options resumes the same run and stores nothing twice.

    Each action is judged as `audit check` judges it (--policy, default the shipped policy) and the verdicts are stored with the audit (the unsupported_actions view lists the failed ones). The support column is that judged support: of the decisive argument the verdict rests on (named under it, e.g. to), else of the whole call; the call column is the whole call's support.

    --export-otlp URL / --export-phoenix URL then send the run's verdicts to your tracing backend (see audit export; headers from $OTEL_EXPORTER_OTLP_HEADERS).

    Exit codes: 0 ok, 2 bad usage, 3 some records (or trajectories) were skipped.

    --json prints one JSON object: db, run_id, policy, spans_added, trajectories, skipped, issues (file, line, span_id, field, severity, message), audits (per trajectory: its actions, each with context_id and request (the model call it came from, null in an append-only run), support (judged), argument (what it was judged on, null for the whole call), action_support (the whole call's), threshold, status, rules and its top drivers: rank, kind, label, share), failed, and with --export-otlp/--export-phoenix exported (run_id, evaluations, otlp and phoenix: how many were sent, notes).

    --ray replays on a Ray cluster instead (a local one unless --address): the trajectories are cut into batches, a pool of workers (each loads the model once; a GPU each when the cluster has them) audits and judges them, and each batch is written to the --results lake as Parquet shards with a manifest record; nothing goes to the database (audit ingest RESULTS does that; audit query --lake RESULTS queries the lake as it is). A rerun skips what the lake already holds with the same settings and policy; a failed trajectory is tried again (--retries), then reported with its error; a lost worker is replaced. See docs/distributed.md.

    Example: audit trace examples/injected_email.jsonl --db audit.duckdb
    """
    if on_ray:
        from auditor.cli.trace_ray import trace_on_ray

        if not attribute:
            err_console.print("[red]error:[/] --ray replays and attributes; store spans and trajectories without "
                              "--ray (audit trace --no-attribute FILES)", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
        if export_otlp or export_phoenix:
            err_console.print("[red]error:[/] --ray writes a results lake, not the database: audit ingest it, "
                              "then audit export --otlp/--phoenix", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)

        trace_on_ray(files, results=results, fmt=fmt, policy=policy, as_json=as_json, force=force,
                     allow_skipped=allow_skipped, auditor_factory=auditor_factory,
                     settings={"model": model, "method": method, "hops": hops, "dtype": dtype,
                               "max_tokens": max_tokens, "device": device},
                     options={"address": address, "workers": workers, "gpus_per_worker": gpus_per_worker,
                              "cpus_per_worker": cpus_per_worker, "batch_size": batch_size, "retries": retries})
        return
    for f in files:
        if not Path(f).is_file():
            why = "is a directory (use --ray)" if Path(f).is_dir() else "file not found"
            err_console.print(f"[red]error:[/] {escape(f)}: {why}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
    from auditor.check import audit_settings, check_audit
    from auditor.store import Store, StoreError
    from auditor.collectors.loading import aider_pairs
    from auditor.store.importer import ImportStats, import_file

    pol = policy_or_exit(policy)

    def show(issue: Any) -> None:
        color = {"error": "red", "warning": "yellow"}.get(issue.severity, "dim")
        err_console.print(f"[{color}]{issue.severity}:[/] {escape(str(issue))}", soft_wrap=True)

    # streamed in bounded batches, one transaction each; only what will be audited is kept
    result = ImportStats()
    trajs: list[Any] = []
    stored: list[int] = [0]

    def keep(traj: Any) -> None:
        stored[0] += 1
        if attribute:
            trajs.append(traj)

    try:
        with Store(db) as store:
            db_path = store.path
            pairs = {} if fmt else aider_pairs([Path(f) for f in files])
            joined = {p for chat, logs in pairs.items() for p in (chat, *logs)}
            for chat, logs in pairs.items():  # an Aider chat and its LLM history logs: read together
                from auditor.collectors.aider_join import join_aider

                got_trajs, got_issues = join_aider(chat, logs)
                for issue in got_issues:
                    show(issue)
                result.issues.extend(got_issues)
                store.add_trajectories(got_trajs)
                for traj in got_trajs:
                    keep(traj)
            for f in files:
                if Path(f) in joined:
                    continue
                got = import_file(store, f, fmt, on_stored=keep, on_issue=show)
                result.spans_read += got.spans_read
                result.spans_added += got.spans_added
                result.issues.extend(got.issues)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    spans_added = result.spans_added

    audits: list[tuple[TrajectoryAudit, bool]] = []
    failed: list[dict[str, str]] = []
    run_id = None
    if attribute and trajs:
        settings = {"model": model, "method": method, "hops": hops, "dtype": dtype, "max_tokens": max_tokens,
                    "device": device, **audit_settings(pol)}
        run_id = run_id_for(trajs, settings)
        with Store(db) as store:  # held only while reading or writing: audit query can read meanwhile
            done = set() if force else set(store.audited(run_id))
        if threads is not None:
            from auditor.model_registry import configure_threads

            configure_threads(threads)
        try:
            with Progress(quiet) as progress:
                for out in audit_each(trajs, settings=settings, run_id=run_id, skip=done, progress=progress.before):
                    if out.audit is None and not out.resumed:
                        failed.append({"trajectory_id": out.trajectory.id, "error": out.error or ""})
                        err_console.print(f"[red]error:[/] {escape(out.trajectory.id)}: audit failed: "
                                          f"{escape(out.error or '')}")
                        continue
                    with Store(db) as store:
                        audit = out.audit or store.load_audit(run_id, out.trajectory.id)
                        verdicts = check_audit(audit, pol).verdicts  # judged now, under this policy
                        if out.resumed:
                            store.record_verdicts(run_id, audit.trajectory.id, verdicts, policy=pol)
                        else:
                            store.record_audit(audit, verdicts, policy=pol)
                    audits.append((audit, out.resumed))
                    failed_n = sum(v.status == "failed" for v in verdicts)
                    progress.after(out.trajectory.id, out.index, len(trajs),
                                   ("from the store; " if out.resumed else "") +
                                   f"{len(audit.actions)} actions, {failed_n} unsupported")
        except AuditorUnavailable as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
        except StoreError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc

    exported = None
    if (export_otlp or export_phoenix) and run_id is not None and audits:
        from auditor.cli.verdicts_out import send_verdicts

        with Store(db) as store:
            exported = send_verdicts(store, run_id=run_id, trajectory_ids=[a.trajectory.id for a, _ in audits],
                                     otlp=export_otlp, phoenix=export_phoenix, policy=pol)

    if as_json:
        typer.echo(json.dumps({
            "db": db_path, "run_id": run_id, "policy": pol.source or "default", "spans_added": spans_added,
            "trajectories": stored[0], "skipped": result.skipped,
            "issues": [{"file": i.file, "line": i.line, "span_id": i.span_id, "field": i.field,
                        "severity": i.severity, "message": i.message} for i in result.issues],
            "audits": [_summary(a, resumed, top, pol) for a, resumed in audits],
            "failed": failed,
            **({"exported": exported} if exported is not None else {}),
        }, indent=2, ensure_ascii=False))
    else:
        for audit, resumed in audits:
            console.print(_drivers_table(audit, top, pol, resumed))
            for note in [*audit.dropped, *audit.unplaced]:
                console.print(f"  [yellow]note:[/] {escape(note)}")
        n = stored[0]
        what = f"{n} trajector{'y' if n == 1 else 'ies'}"
        if result.spans_read:
            what += f", {spans_added} new spans"
        console.print(f"stored {what} in [bold]{escape(db_path)}[/]"
                      + (f" (run {run_id})" if run_id else ""))
        if result.skipped or failed:
            err_console.print(f"[yellow]{result.skipped + len(failed)} record(s) skipped[/] (see the errors above)")
    skipped = result.skipped + len(failed)
    raise typer.Exit(EXIT_SKIPPED if skipped and not allow_skipped else EXIT_OK)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _summary(audit: TrajectoryAudit, resumed: bool, top: int, policy: Any) -> dict[str, Any]:
    actions = []
    for att in audit.actions:
        j = judgement(att, audit, policy)
        actions.append({
            "action_id": att.action.id, "kind": att.action.kind.value, "tool_name": att.action.tool_name,
            "summary": att.action.summary, "context_id": att.action.context_id,
            "request": audit.trajectory.context_number(att.action.context_id),
            "support": _round(j["support"]), "argument": j["argument"],
            "action_support": _round(j["action_support"]), "threshold": j["threshold"], "status": j["status"],
            "rules": j["rules"], "probability": _round(j["probability"]),
            "probability_threshold": _round(j["probability_threshold"]), "evidence": j["evidence"],
            "drivers": [{"rank": d.rank, "segment_id": d.segment_id, "kind": d.kind.value, "label": d.label,
                         "share": round(d.share, 4)} for d in att.top(top)],
        })
    return {
        "trajectory_id": audit.trajectory.id, "run_id": audit.run.run_id, "resumed": resumed,
        "model": audit.run.model, "method": audit.run.method, "hops": audit.run.hops,
        "actions": actions, "dropped": audit.dropped, "unplaced": audit.unplaced,
    }


def _drivers_table(audit: TrajectoryAudit, top: int, policy: Any, resumed: bool) -> Table:
    """One row per driver; the action's cells only on its first row."""
    run = audit.run
    title = f"{audit.trajectory.id}  [dim]({run.model}, {run.method}, {run.hops} hop{'s' if run.hops != 1 else ''}"
    title += ", from the store)" if resumed else ")"
    table = Table(title=title + "[/]", title_justify="left", caption_justify="left",
                  caption=f"p: `audit check`'s verdict ({escape(policy.source or 'default')} policy), the probability that "
                          "the user did not ask for the action, judged on the decisive argument named under it, else "
                          "on the whole call; support: FlashTrace support of what was judged; call: the whole call's")
    action_w = 28 if console.width < 120 else 40
    room = max(20, console.width - action_w - 7 - 6 - 6 - 6 - 19)  # what the driver column has left
    table.add_column("action", overflow="fold", width=action_w)
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("support", justify="right", no_wrap=True)
    table.add_column("call", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("driver", overflow="fold")
    for att in audit.actions:
        j = judgement(att, audit, policy)
        style = {"ignored": "dim", "failed": "red"}.get(j["status"], "green")
        p = "–" if j["probability"] is None else f"[{style}]{j['probability']:.2f}[/]"
        p += f"\n[dim]{escape(j['argument'])}[/]" if j["argument"] else ""
        support = f"[{style}]{j['support']:.2f}[/]" if j["probability"] is None else f"{j['support']:.2f}"
        call = "–" if j["action_support"] is None else f"{j['action_support']:.2f}"
        head = f"[bold]{escape(att.action.id)}[/]\n{escape(_clip(att.action.summary, 2 * action_w))}"
        if att.action.context_id is not None:  # the model call it came from, and whose context explains it
            n = audit.trajectory.context_number(att.action.context_id)
            head += f"\n[dim]request {n} of {len(audit.trajectory.contexts)} ({escape(att.action.context_id)})[/]"
        drivers = att.top(top) or [None]
        for k, d in enumerate(drivers):
            first = k == 0
            table.add_row(
                head if first else "",
                p if first else "",
                support if first else "",
                f"[dim]{call}[/]" if first else "",
                f"{d.share:.1%}" if d else "",
                escape(_clip(d.label, room)) if d and d.label
                else f"[dim]{d.kind.value}[/] {escape(d.segment_id)}" if d else "[dim]no drivers[/]",
                end_section=k == len(drivers) - 1,
            )
    return table


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: max(n - 1, 1)] + "…"
