"""`audit report RUN_OR_FILE -o report.html [--png shot.png]`: one self-contained HTML page of an
audit, and optionally a headless Chromium screenshot of it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from auditor.cli.app import EXIT_SKIPPED, EXIT_USAGE, app, console, err_console, policy_or_exit

DB_HELP = "Database file (default: $AUDITOR_DB or ./auditor.duckdb)."


@app.command("report")
def report_command(
    run_or_file: str = typer.Argument(..., metavar="RUN_OR_FILE", show_default=False,
                                      help="A run id, trajectory id or action id in the database, or a trajectory / "
                                           "span file (then it is replayed and attributed first)."),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="Where to write the HTML file."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="For a file: replay model, a local HF directory (default: the embedded SmolLM2)."),
    method: str = typer.Option("flashtrace", "--method", help="For a file: attribution method (flashtrace, ifr-token, attention, loo)."),
    hops: int = typer.Option(1, "--hops", min=0, help="For a file: FlashTrace hops through model-generated text."),
    fmt: str | None = typer.Option(None, "--format", help="For a file: input format, when sniffing guesses wrong."),
    policy: Path | None = typer.Option(None, "--policy", "-p", help="Check policy TOML for the verdicts (default: the shipped one)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Show the CI check's verdict per action."),
    title: str | None = typer.Option(None, "--title", help="Page title (default: the trajectory ids)."),
    action: str | None = typer.Option(None, "--action",
                                      help="Action id the page opens on, in the printed URL and the PNG "
                                           "(default: the one RUN_OR_FILE names, else the first)."),
    png: Path | None = typer.Option(None, "--png",
                                    help="Also write a PNG of the page (headless Chromium; apt-get install chromium)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="For a file: CPU threads for the replay "
                                       "(default: $OMP_NUM_THREADS, else one per core, waiting threads asleep)."),
) -> None:
    """Write one self-contained HTML page (no network: CSS, JS and data inline) of an audit.

    The page shows the trajectory as a conversation; select an action (click, ↑/↓ or j/k, or open the file with #action=ACTION_ID) to see its check verdict, its ranked drivers with their shares, each argument of a call with its support and top drivers, the flow of attribution mass output → reasoning → input per hop, and the token heatmap over its context. Each action embeds the same JSON export that `audit show` prints, so the two never disagree.

    RUN_OR_FILE is looked up as a file first, then in the database as a run id (every trajectory of the run), a trajectory id or an action id (their newest run; an action id opens the page on that action).

    With --png the page is also photographed by headless Chromium (1400x1000, the selected action's view); Chromium must be installed (Debian: apt-get install chromium) or named by $CHROMIUM.

    Exit codes: 0 written, 2 nothing to report (unknown id or --action, unreadable file, no model) or no PNG (no Chromium, screenshot failed), 3 written but some input records or trajectories were skipped.

    Example: audit report examples/injected_email.jsonl -o report.html --png report.png
    """
    from auditor.audit import AuditorUnavailable
    from auditor.report.build import ReportError, report_from_file, report_from_store

    if threads is not None:
        from auditor.model_registry import configure_threads

        configure_threads(threads)

    pol = None
    if check and policy is not None:
        pol = policy_or_exit(policy)

    if png is not None:  # before minutes of replay
        from auditor.report.browser import ChromiumNotFound, require_chromium

        try:
            require_chromium()
        except ChromiumNotFound as exc:
            err_console.print(f"[red]error:[/] --png: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from exc

    path = Path(run_or_file)
    skipped = False
    try:
        if path.is_file():
            try:
                with err_console.status("replaying and attributing") as status:
                    result = report_from_file(
                        path, output, settings={"model": model, "method": method, "hops": hops}, fmt=fmt, policy=pol,
                        check=check, title=title,
                        progress=lambda tid, k, n: status.update(f"auditing {escape(tid)} ({k}/{n})"))
            except AuditorUnavailable as exc:
                err_console.print(f"[red]error:[/] {escape(str(exc))}")
                raise typer.Exit(EXIT_USAGE) from exc
            for issue in result.issues:
                color = "red" if issue.severity == "error" else "yellow"
                err_console.print(f"[{color}]{issue.severity}:[/] {escape(str(issue))}", soft_wrap=True)
            for line in result.failed:
                err_console.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
            skipped = bool(result.failed) or any(i.severity == "error" for i in result.issues)
        elif path.exists():
            err_console.print(f"[red]error:[/] {escape(str(path))} is not a file")
            raise typer.Exit(EXIT_USAGE)
        else:
            from auditor.cli.query_cmd import open_store
            from auditor.store import default_db_path

            db_path = db or default_db_path()
            if not Path(db_path).exists():
                err_console.print(f"[red]error:[/] {escape(run_or_file)}: no such file, and no database at "
                                  f"{escape(str(db_path))} to look it up in (pass --db, or `audit trace FILE` first)")
                raise typer.Exit(EXIT_USAGE)

            with open_store(db) as store:
                result = report_from_store(store, run_or_file, output, policy=pol, check=check, title=title)
    except ReportError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc

    if action is not None:
        known = [a.action.id for audit in result.audits for a in audit.actions]
        if action not in known:
            err_console.print(f"[red]error:[/] --action {escape(action)}: no such action in this report "
                              f"(its actions: {escape(', '.join(known[:10]))}{', …' if len(known) > 10 else ''})",
                              soft_wrap=True)
            raise typer.Exit(EXIT_USAGE)
        result.selected = action
    size = result.path.stat().st_size
    runs = sorted({a.run.run_id for a in result.audits})
    console.print(f"wrote [bold]{escape(str(result.path))}[/] ({size / 1024:.0f} KiB): "
                  f"{len(result.audits)} trajector{'y' if len(result.audits) == 1 else 'ies'}, {result.actions} "
                  f"action{'' if result.actions == 1 else 's'}, run{'' if len(runs) == 1 else 's'} {escape(', '.join(runs))}",
                  soft_wrap=True)
    console.print(f"open: {escape(result.url)}", soft_wrap=True, highlight=False)
    if png is not None:
        _write_png(result, png)
    if skipped:
        raise typer.Exit(EXIT_SKIPPED)


def _write_png(result: Any, png: Path) -> None:
    import subprocess

    from auditor.report.browser import ChromiumNotFound, screenshot

    selected = result.selected  # None: the page's default, its first action
    try:
        with err_console.status("taking the screenshot"):
            out = screenshot(result.path, png, selected)
    except (ChromiumNotFound, RuntimeError, subprocess.TimeoutExpired) as exc:
        err_console.print(f"[red]error:[/] --png: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from exc
    console.print(f"wrote [bold]{escape(str(out))}[/]" + (f" (action {escape(selected)})" if selected else ""),
                  soft_wrap=True)
