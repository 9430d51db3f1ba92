"""`audit ingest RESULTS`: a results lake (`audit trace --ray`) into the database."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from auditor.cli.app import EXIT_USAGE, app, console, err_console
from auditor.cli.query_cmd import DB_HELP


@app.command("ingest")
def ingest_command(
    results: str = typer.Argument(..., metavar="RESULTS", help="Results lake (audit trace --ray --results DIR): a directory or URI."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Merge a results lake into the database: one transaction per batch, nothing twice.

    Every committed batch of the lake is stored as audit trace would have stored it (runs, trajectories, audits, attributions, verdicts); a batch already ingested is skipped, and a (run, trajectory) stored before is replaced, so ingesting again, or ingesting audits audit trace already stored, keeps one copy. Afterwards audit query, audit show and audit report read them. Trajectories the lake reports as failed are listed (their errors are in lake_manifest).

    Example: audit ingest auditor-results --db audit.duckdb
    """
    from auditor.distributed.ingest import ingest_lake
    from auditor.store import Store, StoreError

    try:
        store = Store(db)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    with store:
        try:
            report = ingest_lake(results, store)
        except (FileNotFoundError, OSError) as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
    if as_json:
        typer.echo(json.dumps({"db": store.path, "results": results, "batches": report.batches,
                               "ingested": report.ingested, "skipped": report.skipped, "audits": report.audits,
                               "failed": report.failed}, indent=2, ensure_ascii=False))
        return
    for f in report.failed:
        err_console.print(f"[yellow]not audited:[/] {escape(f['trajectory_id'])}: {escape(f['error'] or '')}",
                          soft_wrap=True)
    console.print(f"ingested {report.ingested} batch{'es' if report.ingested != 1 else ''} ({report.audits} audits), "
                  f"{report.skipped} already stored, into [bold]{escape(store.path)}[/]")
