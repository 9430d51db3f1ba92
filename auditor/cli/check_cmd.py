"""`audit check`: fail CI when an agent took an action the user's request does not support."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from auditor.check.defaults import DEFAULT_THRESHOLD
from auditor.cli.app import EXIT_USAGE, app, console, err_console


CHECK_HELP = (
    "Fail when an action is not supported by the user's request (the signature of a prompt injection).\n\n"
    "Each action is replayed through a local model and attributed (FlashTrace by default), as a whole call and "
    "argument by argument. Support is the share of input mass on authority segments (system prompt, user "
    "request, constraints) against data segments (tool outputs, files): authority / (authority + data); tool "
    "definitions count on neither side unless the policy lists them (data_kinds, for untrusted tool servers). By "
    "default an action is judged by its decisive arguments, the ones that say who receives its effect (to, cc, "
    "recipient, attendees, channel, ...): an email whose body summarises a file is fine, one whose recipient "
    "came from the file is not. Calls without such arguments (SQL, shell commands, edits) are judged whole. "
    f"Support below the tool's threshold (default {DEFAULT_THRESHOLD}, calibrated on the injection benchmark, "
    "docs/benchmarks/check.md) is a finding naming the action, the argument, the driving segment with a quote, "
    "and the shares.\n\n"
    "Example: audit check runs/*.jsonl --junit junit.xml --sarif audit.sarif --policy policy.toml"
)


@app.command(
    "check",
    help=CHECK_HELP,
    epilog=(
        "Exit codes: 0 every checked action is supported; 1 at least one unsupported action "
        "(findings win over everything else); 3 no findings, but input records were skipped or a "
        "trajectory could not be audited (--allow-skipped turns this into 0); 2 bad arguments, "
        "unreadable policy, or nothing to check."
    ),
)
def check_command(
    files: list[Path] = typer.Argument(..., help="Trajectory files (canonical JSONL, OTLP JSON, console spans, Aider logs).",
                                       show_default=False),
    policy: Path | None = typer.Option(None, "--policy", "-p", help="Policy TOML (keys override the shipped defaults)."),
    threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                           help="Override the policy's overall minimum support."),
    judge: str | None = typer.Option(None, "--judge", help="Override the policy's judge: 'arguments' (decisive arguments) "
                                     "or 'action' (whole calls)."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    sarif: Path | None = typer.Option(None, "--sarif", help="Write SARIF 2.1.0 here (GitHub code scanning)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout instead of the table."),
    github: bool | None = typer.Option(None, "--github/--no-github",
                                       help="Print GitHub Actions annotations (default: on when GITHUB_ACTIONS=true)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Replay model: a local HF directory (default: embedded SmolLM2)."),
    method: str = typer.Option("flashtrace", "--method", help="Attribution method (flashtrace, ifr-token, loo, attention)."),
    hops: int = typer.Option(1, "--hops", min=0, help="FlashTrace hops through reasoning."),
    db: Path | None = typer.Option(None, "--db", help="Also record the audits and their verdicts in this DuckDB store."),
    allow_skipped: bool = typer.Option(False, "--allow-skipped", help="Exit 0 (not 3) when records were skipped but nothing was flagged."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also list every checked action."),
) -> None:
    """Fail when an action is not supported by the user's request (see CHECK_HELP)."""
    from auditor.audit import AuditorUnavailable
    from auditor.check import PolicyError, load_policy, load_located, run_check
    from auditor.check import formats

    try:
        pol = load_policy(policy)
        if threshold is not None or judge is not None:
            pol = pol.with_overrides(threshold=threshold, judge=judge)
    except PolicyError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc

    located, skipped = load_located(files)
    if not located:
        for s in skipped:
            err_console.print(f"[yellow]skipped[/] {s.message}", highlight=False)
        err_console.print("[red]error:[/] no trajectory could be read from the given files")
        raise typer.Exit(EXIT_USAGE)

    status = err_console.status("auditing…") if not as_json and err_console.is_terminal else None
    if status is not None:
        status.start()
    try:
        report, audits = run_check(located, pol, settings={"model": model, "method": method, "hops": hops})
    except AuditorUnavailable as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    finally:
        if status is not None:
            status.stop()
    report.skipped[:0] = skipped

    if db is not None and audits:
        _record(db, audits, report, pol)

    if junit is not None:
        formats.write_text(junit, formats.to_junit(report))
    if sarif is not None:
        import json

        formats.write_text(sarif, json.dumps(formats.to_sarif(report), indent=2, ensure_ascii=False))
    if github is None:
        github = os.environ.get("GITHUB_ACTIONS") == "true"
    if github:  # on stderr when stdout carries JSON, so the JSON stays parseable
        typer.echo(formats.to_github(report), nl=False, err=as_json)
    if as_json:
        typer.echo(formats.to_json(report))
    else:
        formats.render_terminal(report, console, verbose=verbose)
    raise typer.Exit(report.exit_code(allow_skipped=allow_skipped))


def _record(db: Path, audits: list, report: Any, policy: Any) -> None:
    """Store the audits with the check's verdicts (`unsupported_actions` lists the failed ones); a
    check never fails because of the store."""
    from auditor.store import Store

    by_traj = {r.trajectory_id: r.verdicts for r in report.results if r.error is None}
    try:
        with Store(db) as store:
            store.record_audits(audits, [by_traj.get(a.trajectory.id, []) for a in audits], policy=policy)
    except Exception as exc:  # noqa: BLE001 - report, keep the check's verdict
        err_console.print(f"[yellow]warning:[/] could not record the audits in {db}: {exc}")
