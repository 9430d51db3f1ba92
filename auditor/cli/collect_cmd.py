"""`audit collect`: run an OTLP/HTTP and/or OTLP/gRPC trace receiver that appends spans to a
JSONL file and/or the DuckDB store (both receivers share the token, the file and the store)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from auditor.collectors.batcher import DEFAULT_FLUSH_MS, DEFAULT_FLUSH_SPANS
from auditor.cli.app import EXIT_OK, EXIT_USAGE, app, console, err_console

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _store_sink(db: Path) -> Any:
    """The sink `audit collect --db` flushes through: each call opens the database, stores its
    spans in one transaction and closes it, so `audit query` can open the file between flushes.
    The database is created (or migrated) here, once, so a bad path is reported at start."""
    from auditor.store import Store
    from auditor.store.store import append_spans

    Store(db).close()

    def sink(spans: Any) -> int:
        return append_spans(db, spans)

    return sink


@app.command("collect")
def collect_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (both receivers). Anything but loopback exposes them: use --token."),
    port: int = typer.Option(4318, "--port", help="OTLP/HTTP port (4318 is the OTLP/HTTP default; 0 picks a free one)."),
    http: bool = typer.Option(True, "--http/--no-http", help="Run the OTLP/HTTP receiver (POST /v1/traces on --port)."),
    grpc: bool = typer.Option(False, "--grpc/--no-grpc", help="Also run the OTLP/gRPC receiver on --grpc-port (what vLLM and most SDKs export by default)."),
    grpc_port: int = typer.Option(4317, "--grpc-port", help="OTLP/gRPC port (4317 is the OTLP/gRPC default; 0 picks a free one)."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Append received spans here (OTLP JSON, one export per line). Default run.jsonl when --db is not given."),
    db: Optional[Path] = typer.Option(None, "--db", help="Also store spans in this DuckDB database."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AUDITOR_COLLECT_TOKEN", help="Require 'Authorization: Bearer TOKEN' (HTTP header or gRPC metadata; env AUDITOR_COLLECT_TOKEN)."),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", min=0.001, help="Reject bodies larger than this, before and after decompression (HTTP 413, gRPC RESOURCE_EXHAUSTED)."),
    flush_spans: int = typer.Option(DEFAULT_FLUSH_SPANS, "--flush-spans", min=1, help="--db: write to the database once this many spans wait..."),
    flush_ms: float = typer.Option(DEFAULT_FLUSH_MS, "--flush-ms", min=0, help="...or once the oldest has waited this long (ms). With --db --no-spool each batch is written as soon as the previous one is done. The file is held only while writing, so audit query can read it meanwhile."),
    spool: bool = typer.Option(True, "--spool/--no-spool", help="--db without --jsonl: acknowledge a request once it is appended to DB.spool.jsonl (the database follows in batches; a crash leaves it there and the next start stores it). --no-spool acknowledges only once in the database: nothing but the database is written, at well under half the throughput under load."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
) -> None:
    """Receive OpenTelemetry traces over OTLP/HTTP (POST /v1/traces, protobuf or JSON, gzip)
    and, with --grpc, over OTLP/gRPC (plaintext, gzip).

    Point vLLM, an OpenTelemetry Collector (otlphttp or otlp exporter) or an instrumented agent
    (setup_tracing(otlp_endpoint=...)) at it. vLLM exports OTLP/gRPC by default: run
    audit collect --grpc and start vLLM with --otlp-traces-endpoint 127.0.0.1:4317 and
    OTEL_EXPORTER_OTLP_TRACES_INSECURE=true (or keep HTTP: --otlp-traces-endpoint
    http://127.0.0.1:4318/v1/traces with OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf).
    Ctrl-C or SIGTERM flushes everything received and exits 0.

    With --db, spans are written to the database in batches (--flush-spans, --flush-ms; with
    --no-spool: as soon as the previous batch is done), each in one transaction with the file
    held only while writing: audit query, show and trace can open the database meanwhile. A
    request is acknowledged once its spans are in the --jsonl file or, with --db alone, in the
    spool DB.spool.jsonl next to the database (the database follows; the spool is emptied as
    it catches up and removed on a clean stop), or with --no-spool in the database itself
    (at well under half the throughput under load). A receiver killed outright (kill -9) loses only requests
    it had not acknowledged: spans not yet in the database are in the spool, which the next
    audit collect --db DB stores first, or in the --jsonl file (audit trace FILE
    --no-attribute --db DB imports them).

    Example: audit collect --port 4318 --jsonl run.jsonl   (then: audit trace run.jsonl)

    Example: audit collect --grpc --no-http --jsonl run.jsonl   (OTLP/gRPC only, on 127.0.0.1:4317)
    """
    from auditor.collectors.receiver import OTLPReceiver, SpanWriter

    if not http and not grpc:
        err_console.print("[red]error:[/] nothing to run: --no-http needs --grpc")
        raise typer.Exit(EXIT_USAGE)
    if jsonl is None and db is None:
        jsonl = Path("run.jsonl")
    sink = None
    if db is not None:
        try:
            sink = _store_sink(db)
        except Exception as exc:  # noqa: BLE001 - a usage problem, said plainly
            err_console.print(f"[red]error:[/] cannot open the store {db}: {exc}")
            raise typer.Exit(EXIT_USAGE) from exc

    def warn(line: str) -> None:  # capacity events (the connection limit), store failures: always shown
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)

    # one file, one store, whichever protocol the spans came by
    use_spool = db is not None and jsonl is None and spool
    writer = SpanWriter(jsonl, sink, flush_spans=flush_spans, flush_ms=flush_ms, warn=warn,
                        spool=db if use_spool else None)
    try:  # the spool's lock, and what a previous run left in it, before any receiver answers
        writer.acquire()
    except Exception as exc:  # noqa: BLE001 - said plainly; the spool is left as it was
        err_console.print(f"[red]error:[/] cannot open the spool of {escape(str(db))}: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from exc
    if writer.replayed is not None and writer.replayed.files:
        r = writer.replayed
        err_console.print(f"stored {r.spans} spans a previous run left in {', '.join(str(p) for p in r.files)} "
                          f"({r.stored} new to the database)", markup=False, highlight=False, soft_wrap=True)
        for issue in r.issues[:10]:
            err_console.print(f"warning: {issue}", markup=False, highlight=False, soft_wrap=True)
    log = (lambda line: err_console.print(line, markup=False, highlight=False)) if verbose else None

    max_body_bytes = int(max_body_mb * 1024 * 1024)
    receivers: list[tuple[str, Any, int]] = []
    if http:
        receivers.append(("OTLP/HTTP", OTLPReceiver(host=host, port=port, token=token, max_body_bytes=max_body_bytes,
                                                     log=log, warn=warn, writer=writer), port))
    if grpc:
        if not verbose:  # gRPC's own error lines (e.g. a busy port) would duplicate ours
            os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        from auditor.collectors.grpc_receiver import OTLPGrpcReceiver

        receivers.append(("OTLP/gRPC", OTLPGrpcReceiver(host=host, port=grpc_port, token=token,
                                                         max_body_bytes=max_body_bytes, log=log, writer=writer), grpc_port))
    started: list[Any] = []
    for _, receiver, wanted in receivers:
        try:
            receiver.start()
        except OSError as exc:
            err_console.print(f"[red]error:[/] cannot listen on {host}:{wanted}: {exc.strerror or exc}")
            for other in started:
                other.stop()
            writer.release()
            raise typer.Exit(EXIT_USAGE) from exc
        started.append(receiver)

    # before "listening" is printed: a supervisor may send SIGTERM as soon as it reads it
    done = threading.Event()
    previous: dict[int, Any] = {}

    def _on_signal(signum: int, frame: Any) -> None:
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread (e.g. under a test runner)
            pass
    targets = ", ".join(str(p) for p in (jsonl, db) if p is not None)
    for kind, receiver, _ in receivers:
        where = receiver.url if kind == "OTLP/HTTP" else f"{receiver.address} (OTLP/gRPC, plaintext)"
        console.print(f"listening on {where} -> {targets}", markup=False, highlight=False, soft_wrap=True)
    if host not in _LOOPBACK and not token:
        err_console.print("[yellow]warning:[/] listening beyond loopback without --token: anyone who can reach "
                          "these ports can write spans")
    console.file.flush()

    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for receiver in started:  # each stop drains its calls in flight, flushes the shared file and the store
            receiver.stop()
        writer.release()  # the last one: the store has it all, the spool goes (unless the store failed)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats = [r.stats for r in started]
    spans, requests = sum(s.spans for s in stats), sum(s.requests for s in stats)
    rejected_requests, rejected_spans = sum(s.rejected_requests for s in stats), sum(s.rejected_spans for s in stats)
    per = ""
    if len(started) > 1:
        per = " (" + ", ".join(f"{kind}: {r.stats.spans}" for kind, r, _ in receivers) + ")"
    console.print(f"stopped: {spans} spans from {requests} requests stored{per}; "
                  f"{rejected_requests} requests and {rejected_spans} spans rejected", markup=False, highlight=False,
                  soft_wrap=True)
    if writer.sink_failed_spans and jsonl is not None and db is not None:
        err_console.print(f"[yellow]warning:[/] {writer.sink_failed_spans} spans are in {escape(str(jsonl))} but not in "
                          f"{escape(str(db))}: import them with `audit trace {escape(str(jsonl))} --no-attribute "
                          f"--db {escape(str(db))}`", soft_wrap=True)
    raise typer.Exit(EXIT_OK)
