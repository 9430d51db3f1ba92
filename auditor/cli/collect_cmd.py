"""`audit collect`: run an OTLP/HTTP and/or OTLP/gRPC trace receiver that appends spans to a
JSONL file and/or the DuckDB store (both receivers share the token, the file and the store)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any, Optional

import typer

from auditor.cli.app import EXIT_OK, EXIT_USAGE, app, console, err_console

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _store_sink(db: Path) -> tuple[Any, Any]:
    """(sink, closer) for the DuckDB store, imported only when asked for."""
    try:
        from auditor.store import Store  # type: ignore[attr-defined]
    except ImportError:
        Store = None  # noqa: N806
    if Store is None or not hasattr(Store, "add_spans"):
        raise RuntimeError("the DuckDB store is not available in this build; use --jsonl instead")
    store = Store(db)
    return store.add_spans, getattr(store, "close", None)


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

    Example: audit collect --port 4318 --jsonl run.jsonl   (then: audit trace run.jsonl)

    Example: audit collect --grpc --no-http --jsonl run.jsonl   (OTLP/gRPC only, on 127.0.0.1:4317)
    """
    from auditor.collectors.receiver import OTLPReceiver, SpanWriter

    if not http and not grpc:
        err_console.print("[red]error:[/] nothing to run: --no-http needs --grpc")
        raise typer.Exit(EXIT_USAGE)
    if jsonl is None and db is None:
        jsonl = Path("run.jsonl")
    sink = closer = None
    if db is not None:
        try:
            sink, closer = _store_sink(db)
        except Exception as exc:  # noqa: BLE001 - a usage problem, said plainly
            err_console.print(f"[red]error:[/] cannot open the store {db}: {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
    writer = SpanWriter(jsonl, sink)  # one file, one store, whichever protocol the spans came by
    log = (lambda line: err_console.print(line, markup=False, highlight=False)) if verbose else None
    def warn(line: str) -> None:  # capacity events (the connection limit), always shown, rate-limited
        err_console.print(f"warning: {line}", markup=False, highlight=False)

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
            if closer:
                closer()
            raise typer.Exit(EXIT_USAGE) from exc
        started.append(receiver)

    targets = ", ".join(str(p) for p in (jsonl, db) if p is not None)
    for kind, receiver, _ in receivers:
        where = receiver.url if kind == "OTLP/HTTP" else f"{receiver.address} (OTLP/gRPC, plaintext)"
        console.print(f"listening on {where} -> {targets}", markup=False, highlight=False, soft_wrap=True)
    if host not in _LOOPBACK and not token:
        err_console.print("[yellow]warning:[/] listening beyond loopback without --token: anyone who can reach "
                          "these ports can write spans")
    console.file.flush()

    done = threading.Event()
    previous: dict[int, Any] = {}

    def _on_signal(signum: int, frame: Any) -> None:
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread (e.g. under a test runner)
            pass
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for receiver in started:  # each stop drains its calls in flight and flushes the shared file
            receiver.stop()
        if closer:
            closer()
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
    raise typer.Exit(EXIT_OK)
