"""`GuardProxy`: an OpenAI-compatible HTTP proxy (``audit guard``) that judges every tool call of a
chat completion before the caller sees it.

    POST /v1/chat/completions   forwarded upstream; the reply's tool calls judged (streamed too)
    GET  /v1/...                forwarded as is (models, health)
    anything else               404: only chat completions are guarded

What happens to a reply:

- no tool calls: passed on unchanged (a stream is relayed as it arrives);
- every call allowed: passed on unchanged; a stream is relayed live up to its first tool-call
  delta, the rest is held until the calls are judged, then relayed as it came;
- a call blocked, ``on_block="message"`` (default): the choice's message is replaced by an
  assistant message that explains the block, with no tool calls and ``finish_reason = "stop"``
  (the agent reads it as the model's answer, and no tool of that reply runs: one blocked call
  withholds the reply's other calls too); ``on_block="error"``: HTTP 403 with
  ``{"error": {"type": "unsupported_tool_call", "code": "tool_call_blocked", "message", "verdicts"}}``
  (in a stream whose text was already relayed: that error as a final SSE event, which the
  ``openai`` client raises as an `APIError`);
- a non-stream reply carries ``auditor_guard`` (its verdicts); the header ``X-Auditor-Guard``
  says ``allowed`` / ``blocked`` / ``unchecked`` where headers are still unsent.

Failures are never a silent pass: an upstream that is down answers 502 (``upstream_unavailable``),
one too slow 504 (``upstream_timeout``), a malformed reply or stream 502 (``upstream_malformed``,
naming the field); the upstream's own error statuses are relayed as they are. A conversation the
guard cannot read is 400; a call it could not judge is blocked (``status = "error"``) unless the
guard fails open.

Connections: one thread each (``ThreadingHTTPServer``; the receivers' event-loop server in
`auditor.collectors.http_server` answers with whole bodies, and a proxy must relay streams), a
client read that stalls for 120 s closes the connection. Like ``audit collect`` it binds to
127.0.0.1 by default and, with a token, answers 401 to any
request without ``Authorization: Bearer TOKEN`` (the upstream then gets ``upstream_api_key``, or
nothing). Every request becomes an ``auditor.guard`` SERVER span, child of the caller's W3C
``traceparent`` (which is also passed upstream unchanged, so vLLM's spans stay children of the
caller's), with one ``auditor.guard.verdict`` child span per judged call (`Verdict.span_attributes`).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from auditor.guard.conversation import GuardInputError
from auditor.guard.replies import StreamReply, block_completion, blocked_events, completion_replies, sse
from auditor.guard.upstream import Upstream, UpstreamError, events, parse_json, read_body
from auditor.guard.verdict import Verdict, explanation

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
BLOCK_MODES = ("message", "error")
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
SCOPE = "auditor.guard.proxy"
_PROPAGATOR = TraceContextTextMapPropagator()


class ProxyStats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.checked = self.blocked = self.errors = 0

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class GuardProxy:
    """The proxy server; `start` binds and serves in a thread, `stop` shuts it down."""

    def __init__(self, guard: Any, upstream: str | Upstream, *, host: str = "127.0.0.1", port: int = 8100,
                 token: str | None = None, on_block: str = "message", tracer_provider: Any = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, upstream_api_key: str | None = None,
                 timeout: float = 600.0, log: Any = None) -> None:
        if on_block not in BLOCK_MODES:
            raise ValueError(f"on_block must be one of {', '.join(BLOCK_MODES)}, got {on_block!r}")
        self.guard = guard
        self.upstream = upstream if isinstance(upstream, Upstream) else Upstream(upstream, upstream_api_key, timeout)
        self.host, self.port = host, port
        self.token = token or None
        self.on_block = on_block
        self.max_body_bytes = int(max_body_bytes)
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(SCOPE)
        self.log = log
        self.stats = ProxyStats()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> "GuardProxy":
        proxy = self

        class Handler(_Handler):
            pass

        Handler.proxy = proxy
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="auditor-guard-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "GuardProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _error(status: int, kind: str, message: str, code: str | None = None, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": kind, "code": code or kind, **extra}}


class _Handler(BaseHTTPRequestHandler):
    proxy: GuardProxy
    protocol_version = "HTTP/1.1"
    server_version = "auditor-guard"
    # a client socket read (request head, body, or an idle keep-alive connection) gives up after
    # this long, so a stalled client does not hold its thread forever
    timeout = 120

    def log_message(self, fmt: str, *args: Any) -> None:
        if self.proxy.log is not None:
            self.proxy.log(f"{self.address_string()} {fmt % args}")

    # -- plumbing --------------------------------------------------------------------------------------------
    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None,
              content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _authorized(self) -> bool:
        token = self.proxy.token
        if token is None:
            return True
        got = self.headers.get("Authorization", "")
        ok = got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip().encode(), token.encode())
        if not ok:
            self.close_connection = True
            self._send(*_error(401, "unauthorized", "missing or wrong bearer token (audit guard --token)"),
                       headers={"WWW-Authenticate": "Bearer"})
        return ok

    def _upstream_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items()}
        if self.proxy.token is not None:  # the caller's token is the proxy's, not the upstream's
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return headers

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            self._send(*_error(411, "length_required", "a request body needs Content-Length"))
            return None
        n = int(length)
        if n > self.proxy.max_body_bytes:
            self.close_connection = True
            self._send(*_error(413, "request_too_large", f"request body of {n} bytes is over the limit of "
                                                         f"{self.proxy.max_body_bytes}"))
            return None
        return self.rfile.read(n)

    # -- requests --------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        try:
            conn, resp = self.proxy.upstream.open("GET", self.path, None, self._upstream_headers())
            try:
                raw = read_body(self.proxy.upstream, resp)
            finally:
                conn.close()
        except UpstreamError as exc:
            self._send(exc.status, exc.body())
            return
        self._send(resp.status, raw, content_type=resp.getheader("Content-Type") or "application/json")

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in CHAT_PATHS:
            self.close_connection = True
            self._send(*_error(404, "not_guarded", f"audit guard proxies POST /v1/chat/completions only; {path} "
                                                   "is not guarded (call the upstream directly if it cannot make tool calls)"))
            return
        raw = self._body()
        if raw is None:
            return
        try:
            request = json.loads(raw)
            if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
                raise ValueError("the body must be a JSON object with a 'messages' list")
        except (ValueError, UnicodeDecodeError) as exc:
            self._send(*_error(400, "invalid_request", f"not a chat completion request: {exc}"))
            return
        self.proxy.stats.add(requests=1)
        ctx = _PROPAGATOR.extract({k.lower(): v for k, v in self.headers.items()})
        model = str(request.get("model") or "")
        span = self.proxy.tracer.start_span(f"auditor.guard {model}".strip(), context=ctx, kind=SpanKind.SERVER,
                                            attributes={"auditor.guard.upstream": self.proxy.upstream.base_url,
                                                        "gen_ai.request.model": model,
                                                        "auditor.guard.stream": bool(request.get("stream"))})
        self._streaming = False
        try:
            with trace.use_span(span, end_on_exit=False):
                if request.get("stream"):
                    self._stream(raw, request, span)
                else:
                    self._plain(raw, request, span)
        except Exception as exc:  # noqa: BLE001 - a bug in judging: an error the caller sees, never a pass
            body = _error(500, "guard_error", f"the guard failed: {type(exc).__name__}: {exc}")[1]
            span.record_exception(exc)
            if self._streaming:
                self.wfile.write(sse(body) + b"data: [DONE]\n\n")
                self.wfile.flush()
            else:
                self._refuse(span, 500, body)
        finally:
            span.end()

    # -- judging ---------------------------------------------------------------------------------------------
    def _judge(self, request: dict[str, Any], replies: dict[int, dict[str, Any]], span: Any) -> dict[int, list[Verdict]]:
        """Verdicts per choice; raises GuardInputError when the request's conversation is unreadable."""
        out: dict[int, list[Verdict]] = {}
        start = time.perf_counter()
        for index, message in replies.items():
            out[index] = self.proxy.guard.check_reply(request["messages"], message, request.get("tools"))
        verdicts = [v for vs in out.values() for v in vs]
        blocked = [v for v in verdicts if not v.allowed]
        self.proxy.stats.add(checked=len(verdicts), blocked=len(blocked))
        span.set_attribute("auditor.guard.checked", len(verdicts))
        span.set_attribute("auditor.guard.blocked", len(blocked))
        span.set_attribute("auditor.guard.seconds", time.perf_counter() - start)
        for v in verdicts:
            child = self.proxy.tracer.start_span(f"auditor.guard.verdict {v.tool_name}",
                                                 context=trace.set_span_in_context(span),
                                                 attributes=v.span_attributes())
            if not v.allowed:
                child.set_status(Status(StatusCode.ERROR, v.message[:500]))
            child.end()
        return out

    def _refuse(self, span: Any, status: int, body: dict[str, Any]) -> None:
        span.set_attribute("error.type", body["error"]["type"])
        span.set_status(Status(StatusCode.ERROR, body["error"]["message"][:500]))
        if status >= 500:
            self.proxy.stats.add(errors=1)
        self._send(status, body)

    def _blocked_body(self, verdicts: list[Verdict]) -> dict[str, Any]:
        blocked = [v for v in verdicts if not v.allowed]
        return _error(403, "unsupported_tool_call", explanation(verdicts), code="tool_call_blocked",
                      verdicts=[v.model_dump(mode="json") for v in blocked])[1]

    def _plain(self, raw: bytes, request: dict[str, Any], span: Any) -> None:
        up = self.proxy.upstream
        start = time.perf_counter()
        try:
            conn, resp = up.open("POST", self.path, raw, self._upstream_headers())
            try:
                body = read_body(up, resp)
            finally:
                conn.close()
            span.set_attribute("auditor.guard.upstream_seconds", time.perf_counter() - start)
            span.set_attribute("http.response.status_code", resp.status)
            if resp.status != 200:  # the upstream's own error: relayed as it is
                span.set_status(Status(StatusCode.ERROR, f"upstream answered {resp.status}"))
                self._send(resp.status, body, {"X-Auditor-Guard": "unchecked"},
                           content_type=resp.getheader("Content-Type") or "application/json")
                return
            data = parse_json(up, body, "a chat completion")
            replies = completion_replies(up, data)
        except UpstreamError as exc:
            self._refuse(span, exc.status, exc.body())
            return
        if not replies:
            self._send(200, body, {"X-Auditor-Guard": "allowed"})
            return
        try:
            verdicts = self._judge(request, replies, span)
        except GuardInputError as exc:
            self._refuse(span, *_error(400, "invalid_request", f"the guard cannot read the conversation: {exc}"))
            return
        every = [v for vs in verdicts.values() for v in vs]
        blocked = {i for i, vs in verdicts.items() if any(not v.allowed for v in vs)}
        report = {"blocked": sum(not v.allowed for v in every), "verdicts": [v.model_dump(mode="json") for v in every]}
        if not blocked:
            self._send(200, {**data, "auditor_guard": report}, {"X-Auditor-Guard": "allowed"})
        elif self.proxy.on_block == "error":
            self._refuse(span, 403, self._blocked_body(every))
        else:
            text = explanation(every)
            self._send(200, {**block_completion(data, blocked, text), "auditor_guard": report},
                       {"X-Auditor-Guard": "blocked"})

    # -- streams ---------------------------------------------------------------------------------------------
    def _start_stream(self) -> None:
        self._streaming = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _stream(self, raw: bytes, request: dict[str, Any], span: Any) -> None:
        up = self.proxy.upstream
        started = False  # response headers sent (then errors become SSE error events)
        pending: list[tuple[bytes, dict[str, Any] | None]] = []
        reply = StreamReply(up)
        conn = None

        def emit(chunks: list[bytes]) -> None:
            nonlocal started
            if not started:
                self._start_stream()
                started = True
            for c in chunks:
                self.wfile.write(c)
            self.wfile.flush()

        def fail(status: int, body: dict[str, Any]) -> None:
            if started:  # too late for a status: an error event the openai client raises
                span.set_attribute("error.type", body["error"]["type"])
                span.set_status(Status(StatusCode.ERROR, body["error"]["message"][:500]))
                self.proxy.stats.add(errors=1 if status >= 500 else 0)
                emit([sse(body), b"data: [DONE]\n\n"])
            else:
                self._refuse(span, status, body)

        try:
            start = time.perf_counter()
            conn, resp = up.open("POST", self.path, raw, self._upstream_headers())
            if resp.status != 200:
                body = read_body(up, resp)
                span.set_status(Status(StatusCode.ERROR, f"upstream answered {resp.status}"))
                self._send(resp.status, body, {"X-Auditor-Guard": "unchecked"},
                           content_type=resp.getheader("Content-Type") or "application/json")
                return
            for event, payload in events(up, resp):
                if payload is None or payload == "[DONE]":
                    if payload is None and not pending:
                        emit([event])
                    continue
                chunk = reply.add(payload)
                if pending or reply.has_calls():
                    pending.append((event, chunk))  # held until the calls are judged
                else:
                    emit([event])
            span.set_attribute("auditor.guard.upstream_seconds", time.perf_counter() - start)
            replies = reply.replies()
        except UpstreamError as exc:
            fail(exc.status, exc.body())
            return
        finally:
            if conn is not None:
                conn.close()
        if not replies:
            emit([e for e, _ in pending] + [b"data: [DONE]\n\n"])
            return
        try:
            verdicts = self._judge(request, replies, span)
        except GuardInputError as exc:
            fail(*_error(400, "invalid_request", f"the guard cannot read the conversation: {exc}"))
            return
        every = [v for vs in verdicts.values() for v in vs]
        blocked = {i for i, vs in verdicts.items() if any(not v.allowed for v in vs)}
        if not blocked:
            emit([e for e, _ in pending] + [b"data: [DONE]\n\n"])
        elif self.proxy.on_block == "error":
            fail(403, self._blocked_body(every))
        else:
            emit(blocked_events(pending, blocked, explanation(every), reply.base) + [b"data: [DONE]\n\n"])


__all__ = ["GuardProxy", "BLOCK_MODES", "CHAT_PATHS", "DEFAULT_MAX_BODY_BYTES"]
