"""`audit query`, `audit runs`, `audit export`: reading the attribution history."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from auditor.cli.app import EXIT_TIMEOUT, EXIT_USAGE, app, console, err_console, policy_or_exit


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


DB_HELP = "Database file (default: $AUDITOR_DB or ./auditor.duckdb)."


def open_store(db: Path | None, *, external_access: bool = True) -> Any:
    """Open the store read-only or exit 2 with a message saying what to do."""
    from auditor.store import Store, StoreError

    try:
        store = Store(db, read_only=True, external_access=external_access)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    if store.pending_migrations:
        err_console.print(f"[yellow]warning:[/] {escape(store.path)} has an older schema (pending: "
                          f"{', '.join(store.pending_migrations)}); `audit trace` on it upgrades it")
    return store


def _plain(value: Any) -> Any:
    """A value as JSON-able data."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/]"
    if isinstance(value, float):
        return f"{value:.4g}" if value and abs(value) < 1e-3 else str(round(value, 4))
    if isinstance(value, (list, tuple, dict)):
        return escape(json.dumps(_plain(value), ensure_ascii=False))
    return escape(str(_plain(value)))


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: OutputFormat, title: str | None = None) -> None:
    if fmt is OutputFormat.json:
        typer.echo(json.dumps([{c: _plain(v) for c, v in zip(columns, r)} for r in rows], indent=2,
                              ensure_ascii=False))
    elif fmt is OutputFormat.csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None else json.dumps(_plain(v), ensure_ascii=False)
                        if isinstance(v, (list, tuple, dict)) else _plain(v) for v in r])
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
    else:
        table = Table(title=title, title_justify="left")
        for c in columns:
            table.add_column(escape(c), overflow="fold")
        for r in rows:
            table.add_row(*[_cell(v) for v in r])
        console.print(table)
        console.print(f"[dim]{len(rows)} row{'s' if len(rows) != 1 else ''}[/]")


@app.command("query")
def query_command(
    sql: str = typer.Argument(..., help="One read-only SQL statement (SELECT, WITH, PIVOT, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN)."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    lake: str | None = typer.Option(None, "--lake", help="Query a results lake (audit trace --ray --results DIR: "
                                    "a directory or URI) in place, instead of the database."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output: table, csv or json."),
    timeout: float = typer.Option(60.0, "--timeout", min=0, help="Stop the query after this many seconds (exit 124); 0: no limit."),
) -> None:
    """Run SQL over the attribution history (read-only: anything that writes is refused).

    Tables: runs, spans, trajectories, messages, segments, actions, attributions, hop_flows, token_scores, audits, action_audits, action_arguments, argument_attributions, action_verdicts (the check's verdict per action, recorded by audit trace and audit check --db), contexts (each model call's messages, when a run's calls each had their own) and audit_contexts (their rendered tokens), lake_batches (results-lake batches audit ingest stored), settings. Views: action_drivers (with the request an action came from), file_drivers (each action's drivers summed per file, to group a file across requests), unsupported_actions, tool_influence, traces, argument_drivers, argument_support, value_provenance (where each argument value occurs), causal_deltas (the causal evidence the verdict uses). audit query "SHOW TABLES" lists them; docs/schema.md describes every column. Reading files from SQL is disabled. A query running longer than --timeout is stopped (exit 124). While audit collect --db or audit trace writes the database, the query waits up to $AUDITOR_LOCK_WAIT seconds (default 10) for the file.

    --lake DIR answers from a results lake's Parquet shards without importing them: the same tables, views and columns (spans stay empty), plus lake_manifest (every trajectory of every committed batch: status, error, worker).

    Example: audit query "SELECT action_id, driver_label, share FROM action_drivers WHERE tool_name = 'send_email' AND driver_kind = 'tool_output'"
    """
    import duckdb

    from auditor.store import QueryRefused, QueryTimeout, check_read_only

    try:
        check_read_only(sql)
    except QueryRefused as exc:
        err_console.print(f"[red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    if lake is not None:
        from auditor.distributed.lake import query_lake

        try:
            columns, rows = query_lake(lake, sql)
        except (duckdb.Error, FileNotFoundError, OSError) as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
        print_rows(columns, rows, fmt)
        return
    store = open_store(db, external_access=False)
    with store:
        try:
            columns, rows = store.query(sql, timeout=timeout or None)
        except QueryTimeout as exc:
            err_console.print(f"[red]timed out:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_TIMEOUT) from exc
        except duckdb.Error as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
    print_rows(columns, rows, fmt)


@app.command("runs")
def runs_command(
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    limit: int = typer.Option(20, "--limit", min=1, help="Newest runs shown."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output: table, csv or json."),
) -> None:
    """List audit runs, newest first, with how many actions each found unsupported.

    Columns: run id, when, model, method, hops, auditor version, trajectories, actions and unsupported actions (see the unsupported_actions view).

    Example: audit runs --limit 5
    """
    store = open_store(db)
    with store:
        runs = store.runs(limit=limit)
    columns = ["run_id", "created_at", "model", "method", "hops", "auditor_version", "trajectories", "actions",
               "unsupported"]
    print_rows(columns, [tuple(r[c] for c in columns) for r in runs], fmt, title="Runs")


@app.command("export")
def export_command(
    directory: Path | None = typer.Argument(None, file_okay=False, show_default=False,
                                            help="Folder to write <table>.parquet files into."),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    table: list[str] | None = typer.Option(None, "--table", "-t", help="Only these tables or views (repeatable)."),
    views: bool = typer.Option(True, "--views/--no-views", help="Also export the views."),
    otlp: str | None = typer.Option(None, "--otlp", metavar="URL",
                                    help="Send each audited action's verdict to this OTLP/HTTP endpoint "
                                         "(e.g. http://127.0.0.1:4318 or a backend's /v1/traces URL)."),
    phoenix: str | None = typer.Option(None, "--phoenix", metavar="URL",
                                       help="Also annotate each action's span in the Arize Phoenix at URL "
                                            "(e.g. http://127.0.0.1:6006)."),
    header: list[str] | None = typer.Option(None, "--header", "-H", metavar="KEY=VALUE",
                                            help="HTTP header for --otlp/--phoenix (repeatable), e.g. authorization."),
    run: str | None = typer.Option(None, "--run", help="The run whose verdicts are sent (default: the newest)."),
    trajectory: list[str] | None = typer.Option(None, "--trajectory", help="Only these trajectories (repeatable)."),
    policy: Path | None = typer.Option(None, "--policy", "-p", help="Judge by this policy TOML (default: the one "
                                       "recorded with the verdicts, else the shipped one)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for the endpoint (retries "
                                  "included)."),
) -> None:
    """Export the database to Parquet, or an audit run's verdicts to your tracing backend.

    DIRECTORY: one Parquet file per table (and view), for pandas, Spark, BigQuery...

    --otlp URL: one evaluation per audited action, joined to the agent's own trace (same trace id, a child of the chat or tool span the action came from), following the OpenTelemetry GenAI evaluation result (gen_ai.evaluation.name auditor.support, score.value = the judged support, score.label = passed/failed/ignored, explanation = the verdict and its top drivers with quotes) plus auditor.* attributes (per-argument support and provenance, drivers, rules). See docs/tracing-stack.md. --phoenix URL also puts the verdict on the action's own span in Phoenix (span annotations). Headers from --header, else $OTEL_EXPORTER_OTLP_HEADERS.

    Examples: audit export out/parquet --table attributions --table segments; audit export --otlp http://127.0.0.1:6006/v1/traces --phoenix http://127.0.0.1:6006
    """
    from auditor.store import StoreError

    if directory is None and not otlp and not phoenix:
        err_console.print("[red]error:[/] give a DIRECTORY (Parquet), --otlp URL or --phoenix URL")
        raise typer.Exit(EXIT_USAGE)
    from auditor.cli.verdicts_out import parse_headers, send_verdicts

    headers = parse_headers(header)
    pol = None
    if policy is not None:
        pol = policy_or_exit(policy)
    store = open_store(db)
    with store:
        if directory is not None:
            try:
                files = store.export_parquet(directory, tables=table or None, views=views)
            except StoreError as exc:
                err_console.print(f"[red]error:[/] {escape(str(exc))}")
                raise typer.Exit(EXIT_USAGE) from exc
            for f in files:
                console.print(escape(str(f)))
        if otlp or phoenix:
            send_verdicts(store, run_id=run, trajectory_ids=trajectory, otlp=otlp, phoenix=phoenix, headers=headers,
                          policy=pol, timeout=timeout)
