"""`audit check`: fail CI when an agent took an action the user's request does not support."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from auditor.check.defaults import DEFAULT_THRESHOLD
from auditor.cli.app import EXIT_USAGE, app, console, err_console, policy_or_exit
from auditor.cli.progress import Progress


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
        "unreadable policy, or nothing to check. Progress goes to stderr (--quiet: none), so --json output "
        "stays clean. Results are kept as each trajectory finishes: --db gets its audit and verdicts, and the "
        "--junit, --sarif and --output files are rewritten (atomically) with everything finished so far, so a "
        "check that is interrupted keeps what it did."
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
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the JSON report here (what --json prints)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for the replay (default: "
                                       "$OMP_NUM_THREADS, else one per core, waiting threads asleep)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr."),
) -> None:
    """Fail when an action is not supported by the user's request (see CHECK_HELP)."""
    from auditor.audit import AuditorUnavailable
    from auditor.check import load_located, run_check
    from auditor.check import formats

    pol = policy_or_exit(policy, threshold=threshold, judge=judge)

    located, skipped = load_located(files)
    if not located:
        for s in skipped:
            err_console.print(f"[yellow]skipped[/] {s.message}", highlight=False)
        err_console.print("[red]error:[/] no trajectory could be read from the given files")
        raise typer.Exit(EXIT_USAGE)

    if threads is not None:
        from auditor.model_registry import configure_threads

        configure_threads(threads)
    writer = _Outputs(db, junit, sarif, output, skipped, pol)
    with Progress(quiet) as progress:
        progress.note(f"checking {len(located)} trajector{'y' if len(located) == 1 else 'ies'} "
                      f"({model or 'embedded model'}, {method}, {hops} hop{'s' if hops != 1 else ''})")

        def after_each(partial: Any, result: Any, audit: Any) -> None:
            writer.trajectory_done(partial, result, audit)
            failed = sum(v.status == "failed" for v in result.verdicts)
            passed = sum(v.status == "passed" for v in result.verdicts)
            progress.after(result.trajectory_id, len(partial.results), len(located),
                           f"not audited: {result.error}" if result.error else f"{passed} passed, {failed} failed")

        try:
            report, audits = run_check(located, pol, settings={"model": model, "method": method, "hops": hops},
                                       progress=progress.before, after_each=after_each)
        except AuditorUnavailable as exc:
            err_console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
    report.skipped[:0] = skipped
    writer.write_files(report)

    if github is None:
        github = os.environ.get("GITHUB_ACTIONS") == "true"
    if github:  # on stderr when stdout carries JSON, so the JSON stays parseable
        typer.echo(formats.to_github(report), nl=False, err=as_json)
    if as_json:
        typer.echo(formats.to_json(report))
    else:
        formats.render_terminal(report, console, verbose=verbose)
    raise typer.Exit(report.exit_code(allow_skipped=allow_skipped))


class _Outputs:
    """What a check writes as it goes, so an interrupted check keeps every trajectory it finished:
    each audit and its verdicts go to --db as soon as it is judged (one short transaction; the
    file is not held in between), and the --junit, --sarif and --output files are rewritten
    atomically after each trajectory with the report so far. A check never fails because of the
    store: the first failure is reported and the store is left alone after it."""

    def __init__(self, db: Path | None, junit: Path | None, sarif: Path | None, output: Path | None,
                 skipped: list, policy: Any) -> None:
        self.db, self.junit, self.sarif, self.output = db, junit, sarif, output
        self.skipped, self.policy = skipped, policy
        self.db_failed = False

    def trajectory_done(self, report: Any, result: Any, audit: Any) -> None:
        if self.db is not None and audit is not None and not self.db_failed:
            self._record(audit, result.verdicts if result.error is None else [])
        self.write_files(report.model_copy(update={"skipped": [*self.skipped, *report.skipped]}))

    def _record(self, audit: Any, verdicts: list) -> None:
        from auditor.store import Store

        try:
            with Store(self.db) as store:
                store.record_audits([audit], [verdicts], policy=self.policy)
        except Exception as exc:  # noqa: BLE001 - report, keep the check's verdict
            self.db_failed = True
            err_console.print(f"[yellow]warning:[/] could not record the audits in {self.db}: {exc}")

    def write_files(self, report: Any) -> None:
        from auditor.check import formats

        if self.junit is not None:
            formats.write_text(self.junit, formats.to_junit(report))
        if self.sarif is not None:
            import json

            formats.write_text(self.sarif, json.dumps(formats.to_sarif(report), indent=2, ensure_ascii=False))
        if self.output is not None:
            formats.write_text(self.output, formats.to_json(report))
