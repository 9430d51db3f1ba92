"""`audit collect`: run an OTLP/HTTP trace receiver that appends spans to a JSONL file and/or
the DuckDB store."""

from __future__ import annotations

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
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback exposes the receiver: use --token."),
    port: int = typer.Option(4318, "--port", help="Port to listen on (4318 is the OTLP/HTTP default; 0 picks a free one)."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Append received spans here (OTLP JSON, one export per line). Default run.jsonl when --db is not given."),
    db: Optional[Path] = typer.Option(None, "--db", help="Also store spans in this DuckDB database."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AUDITOR_COLLECT_TOKEN", help="Require 'Authorization: Bearer TOKEN' (env AUDITOR_COLLECT_TOKEN)."),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", min=0.001, help="Reject bodies larger than this (413), before and after decompression."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
) -> None:
    """Receive OpenTelemetry traces over OTLP/HTTP (POST /v1/traces, protobuf or JSON, gzip).

    Point vLLM (--otlp-traces-endpoint), an OpenTelemetry Collector (otlphttp exporter) or an
    instrumented agent (setup_tracing(otlp_endpoint=...)) at it. Ctrl-C or SIGTERM flushes
    everything received and exits 0.

    Example: audit collect --port 4318 --jsonl run.jsonl   (then: audit trace run.jsonl)
    """
    from auditor.collectors.receiver import OTLPReceiver

    if jsonl is None and db is None:
        jsonl = Path("run.jsonl")
    sink = closer = None
    if db is not None:
        try:
            sink, closer = _store_sink(db)
        except Exception as exc:  # noqa: BLE001 - a usage problem, said plainly
            err_console.print(f"[red]error:[/] cannot open the store {db}: {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
    receiver = OTLPReceiver(host=host, port=port, jsonl_path=jsonl, sink=sink, token=token,
                            max_body_bytes=int(max_body_mb * 1024 * 1024),
                            log=(lambda line: err_console.print(line, markup=False, highlight=False)) if verbose else None)
    try:
        receiver.start()
    except OSError as exc:
        err_console.print(f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}")
        if closer:
            closer()
        raise typer.Exit(EXIT_USAGE) from exc

    targets = [str(p) for p in (jsonl, db) if p is not None]
    console.print(f"listening on {receiver.url} -> {', '.join(targets)}", markup=False, highlight=False)
    if host not in _LOOPBACK and not token:
        err_console.print("[yellow]warning:[/] listening beyond loopback without --token: anyone who can reach "
                          "this port can write spans")
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
        receiver.stop()
        if closer:
            closer()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    s = receiver.stats
    console.print(f"stopped: {s.spans} spans from {s.requests} requests stored; "
                  f"{s.rejected_requests} requests and {s.rejected_spans} spans rejected", markup=False, highlight=False)
    raise typer.Exit(EXIT_OK)
