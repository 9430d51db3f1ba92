"""`audit guard`: the runtime guard as an OpenAI-compatible proxy in front of vLLM or any
compatible server (`auditor.guard.proxy.GuardProxy`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Optional

import typer

from auditor.cli.app import EXIT_OK, EXIT_USAGE, app, console, err_console

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("guard")
def guard_command(
    upstream: str = typer.Option(..., "--upstream", help="The OpenAI-compatible server to guard, e.g. http://127.0.0.1:8000/v1."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback exposes the proxy: use --token."),
    port: int = typer.Option(8100, "--port", help="Port to listen on (0 picks a free one)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="AUDITOR_GUARD_TOKEN", help="Require 'Authorization: Bearer TOKEN' from callers (env AUDITOR_GUARD_TOKEN)."),
    upstream_api_key: Optional[str] = typer.Option(None, "--upstream-api-key", envvar="AUDITOR_GUARD_UPSTREAM_KEY", help="API key sent upstream (default: the caller's Authorization header, unless --token is set)."),
    on_block: str = typer.Option("message", "--on-block", help="A blocked call becomes an assistant 'message' that explains the block, or an HTTP 403 'error' with the verdicts as JSON."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy TOML (as audit check; default: the shipped policy)."),
    model: Optional[str] = typer.Option(None, "--model", help="Replay model directory (default: the embedded SmolLM2)."),
    chat_template: Optional[Path] = typer.Option(None, "--chat-template", help="The Jinja chat template the upstream serves the model with."),
    hops: int = typer.Option(1, "--hops", min=0, help="FlashTrace hops (as audit check)."),
    state_budget_mb: float = typer.Option(4096.0, "--state-budget-mb", min=0.0, help="Memory for conversation states kept for incremental capture (0: capture every turn whole)."),
    state_dtype: str = typer.Option("float32", "--state-dtype", help="Storage of kept states: float32, bfloat16 or float16 (16-bit keeps twice the tokens)."),
    fail_open: bool = typer.Option(False, "--fail-open", help="Allow a call the guard could not judge (default: block it)."),
    otlp: Optional[str] = typer.Option(None, "--otlp", help="Export verdict spans over OTLP/HTTP to this endpoint (e.g. audit collect's http://127.0.0.1:4318)."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Also append verdict spans to this OTLP JSON lines file."),
    timeout: float = typer.Option(600.0, "--timeout", min=0.1, help="Seconds to wait for the upstream."),
    max_body_mb: float = typer.Option(32.0, "--max-body-mb", min=0.001, help="Reject request bodies larger than this (HTTP 413)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request."),
) -> None:
    """Guard an OpenAI-compatible server: forward each chat completion (streamed too), judge every
    tool call in the reply with the check's evidence and policy, and pass it or block it before
    the agent sees it.

    A blocked call is replaced by an assistant message explaining why (--on-block message) or
    answered with HTTP 403 and the verdicts as JSON (--on-block error). An upstream that is down,
    slow or malformed gets a clear 502/504 error, never a pass. Each verdict is an OpenTelemetry
    span joined to the caller's trace (W3C traceparent): --otlp / --jsonl export them.

    Example: audit guard --upstream http://127.0.0.1:8000/v1 --port 8100   (agents then use
    base_url http://127.0.0.1:8100/v1)
    """
    from auditor.guard import Guard
    from auditor.guard.proxy import BLOCK_MODES, GuardProxy

    if on_block not in BLOCK_MODES:
        err_console.print(f"[red]error:[/] --on-block must be one of {', '.join(BLOCK_MODES)}")
        raise typer.Exit(EXIT_USAGE)
    if state_dtype not in ("float32", "bfloat16", "float16"):
        err_console.print("[red]error:[/] --state-dtype must be float32, bfloat16 or float16")
        raise typer.Exit(EXIT_USAGE)
    provider = None
    if otlp or jsonl:
        from auditor.collectors.exporters import setup_tracing

        provider = setup_tracing(jsonl=jsonl, otlp_endpoint=otlp, service_name="auditor-guard")
    try:
        guard = Guard(model, policy, chat_template=chat_template, hops=hops,
                      state_budget_bytes=int(state_budget_mb * 1024 * 1024), state_dtype=state_dtype, fail_open=fail_open)
        log = (lambda line: err_console.print(line, markup=False, highlight=False)) if verbose else None
        proxy = GuardProxy(guard, upstream, host=host, port=port, token=token, on_block=on_block,
                           tracer_provider=provider, upstream_api_key=upstream_api_key, timeout=timeout,
                           max_body_bytes=int(max_body_mb * 1024 * 1024), log=log)
        proxy.start()
    except (ValueError, OSError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        if provider is not None:
            provider.shutdown()
        raise typer.Exit(EXIT_USAGE) from exc
    console.print(f"guarding {proxy.upstream.base_url} on {proxy.url} (model {guard.model_name}, "
                  f"policy {guard.policy.source or 'default'}, on block: {on_block})", markup=False, highlight=False,
                  soft_wrap=True)
    if host not in _LOOPBACK and not token:
        err_console.print("[yellow]warning:[/] listening beyond loopback without --token: anyone who can reach "
                          "this port can use the upstream through it")
    console.file.flush()
    _serve_until_signal(proxy, provider)
    s = proxy.stats
    console.print(f"stopped: {s.requests} requests, {s.checked} tool calls judged, {s.blocked} blocked, "
                  f"{s.errors} upstream errors", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_OK)


def _serve_until_signal(proxy: Any, provider: Any) -> None:
    done = threading.Event()
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, lambda *_: done.set())
        except ValueError:  # not the main thread
            pass
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
        if provider is not None:
            provider.force_flush()
            provider.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
