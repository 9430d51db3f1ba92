"""An OTLP/HTTP trace receiver (``POST /v1/traces``) that appends what it receives to a JSONL
file (OTLP JSON, one export per line) and/or hands the spans to a sink (the DuckDB store).
Its OTLP/gRPC sibling (port 4317, the default of vLLM and most OpenTelemetry SDKs) is
`auditor.collectors.grpc_receiver.OTLPGrpcReceiver`; both can share one `SpanWriter` (same
file, same sink), which is what ``audit collect --grpc`` does.

- Bodies: protobuf (``application/x-protobuf``) or JSON (``application/json``, hex or base64
  ids), optionally gzip- or deflate-compressed; built on the ``opentelemetry-proto`` messages.
- Binds to 127.0.0.1 by default; optional bearer token (401 without it); a body-size limit,
  checked before and after decompression (413); malformed bodies get 400 and change nothing;
  spans with bad ids inside an otherwise valid export are rejected through OTLP partial success.
- `stop()` stops accepting, lets requests in flight finish, closes idle keep-alive connections
  and flushes the file: every acknowledged span is on disk when it returns.

vLLM (``--otlp-traces-endpoint http://127.0.0.1:4318/v1/traces`` with
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf``) and any OpenTelemetry Collector
(``otlphttp`` exporter) can point at it. For vLLM's default OTLP/gRPC export use the gRPC
receiver (``audit collect --grpc``; vLLM: ``--otlp-traces-endpoint 127.0.0.1:4317`` with
``OTEL_EXPORTER_OTLP_TRACES_INSECURE=true``).
"""

from __future__ import annotations

import hmac
import json
import os
import select
import socket
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Callable, Sequence
from urllib.parse import urlsplit

from auditor.collectors.batcher import (DEFAULT_FLUSH_MS, DEFAULT_FLUSH_SPANS, DEFAULT_MAX_QUEUED_SPANS, QueueFull,
                                       SinkBatcher)
from auditor.collectors.files import flush_to_disk
from auditor.collectors.otlp_json import spans_from_otlp_json, to_otlp_json_line
from auditor.collectors.otlp_proto import spans_from_otlp_proto
from auditor.collectors.spans import SpanError, SpanRecord

TRACES_PATH = "/v1/traces"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
Sink = Callable[[Sequence[SpanRecord]], Any]


class ReceiverBase:
    """What the OTLP/HTTP and OTLP/gRPC receivers share: their options, the writer both append
    through (given, or built from ``jsonl_path``/``sink``), the stats and the bound address."""

    _server: Any = None

    def __init__(self, host: str, port: int, jsonl_path: str | os.PathLike[str] | None, sink: Sink | None,
                 token: str | None, max_body_bytes: int, log: Callable[[str], Any] | None,
                 writer: "SpanWriter | None") -> None:
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if writer is not None and (jsonl_path is not None or sink is not None):
            raise ValueError("pass either writer or jsonl_path/sink, not both")
        self.writer = writer if writer is not None else SpanWriter(jsonl_path, sink)
        self.host = host
        self.port = port
        self.jsonl_path: Path | None = self.writer.jsonl_path
        self.sink = self.writer.sink
        self.token = token or None
        self.max_body_bytes = int(max_body_bytes)
        self.log = log
        self.stats = ReceiverStats()
        self._stats_lock = threading.Lock()

    @property
    def address(self) -> str:
        """``host:port`` actually bound (after `start`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ReceiverStats:
    requests: int = 0  # accepted export requests
    spans: int = 0  # spans stored
    rejected_requests: int = 0  # requests answered with 4xx/5xx
    rejected_spans: int = 0  # spans refused inside accepted requests (partial success)
    bytes: int = 0  # request body bytes received (compressed)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SpanWriter:
    """Where received spans go: a JSONL file (one OTLP JSON export per line) and/or a sink.

    Thread-safe, so several receivers (OTLP/HTTP and OTLP/gRPC) can share one file without
    interleaving lines. Each receiver `acquire`s it on start and `release`s it on stop; every
    release flushes the file and the sink's queue, the last one closes both.

    The sink is fed through a `SinkBatcher` (one call per batch of many requests: every
    ``flush_spans`` spans or ``flush_ms`` ms behind a JSONL file; without one, as soon as the
    previous batch is stored, since requests wait for it), so a sink that pays per call (the
    DuckDB store: open the file, one transaction, close it) keeps up and holds its file only
    while flushing.
    A request is acknowledged once its spans are durable: written to the JSONL file when there
    is one (the sink then catches up behind it; a sink failure is reported through ``warn`` and
    counted in ``sink_failed_spans``, the spans stay in the file), else stored by the sink.

    `write` raises `RequestError` when a batch cannot be stored: 503 (retry later: the file
    cannot be written, the sink failed or is falling behind, the writer is shutting down).
    A process killed outright (SIGKILL) loses only what it had not acknowledged, plus, with a
    JSONL file, the sink's queue (those spans are in the file: ``audit trace FILE
    --no-attribute`` imports them).
    """

    def __init__(self, jsonl_path: str | os.PathLike[str] | None = None, sink: Sink | None = None, *,
                 flush_spans: int = DEFAULT_FLUSH_SPANS, flush_ms: float = DEFAULT_FLUSH_MS,
                 max_queued_spans: int = DEFAULT_MAX_QUEUED_SPANS, wait_s: float = 30.0,
                 warn: Callable[[str], Any] | None = None):
        self.jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self.sink = sink
        self.wait_s = wait_s  # how long a request waits for room in the queue, and (no file) for its flush
        self.warn = warn
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._users = 0
        self._batcher = SinkBatcher(sink, flush_spans=flush_spans, flush_ms=flush_ms,
                                    max_queued_spans=max_queued_spans, on_error=self._sink_failed,
                                    name="span-sink") if sink is not None else None

    @property
    def sink_failed_spans(self) -> int:
        """Spans the sink refused (with a JSONL file they are in the file; without, their requests got 503)."""
        return self._batcher.failed_spans if self._batcher is not None else 0

    def _sink_failed(self, error: str, n: int) -> None:
        if self.warn is None:
            return
        if self.jsonl_path is not None:
            self.warn(f"{n} spans were written to {self.jsonl_path} but the sink failed: {error}")
        else:
            self.warn(f"{n} spans refused (503, the client retries): the sink failed: {error}")

    def acquire(self) -> None:
        with self._lock:
            if self._users == 0:
                if self.jsonl_path is not None:
                    self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = self.jsonl_path.open("a", encoding="utf-8")
                if self._batcher is not None:
                    self._batcher.start()
            self._users += 1

    def release(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            last = self._users == 0
            if self._fh is not None:
                flush_to_disk(self._fh)
                if last:
                    self._fh.close()
                    self._fh = None
        if self._batcher is not None:  # outside the lock: the flusher's last calls must not wait on it
            if last:
                self._batcher.close()  # flushes what is queued, then stops
            else:
                self._batcher.drain()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every span written so far has been through the sink (False: ``timeout``
        passed first) and flush the file to disk."""
        with self._lock:
            if self._fh is not None:
                flush_to_disk(self._fh)
        return self._batcher.drain(timeout) if self._batcher is not None else True

    def write(self, spans: Sequence[SpanRecord]) -> None:
        if not spans:
            return
        pending = None
        if self._batcher is not None:  # room first: a full queue refuses before the file is touched
            try:
                pending = self._batcher.put(spans, timeout=self.wait_s, urgent=self.jsonl_path is None)
            except QueueFull as exc:
                raise RequestError(503, f"the store is falling behind: {exc}") from exc
            except RuntimeError as exc:
                raise RequestError(503, "the receiver is shutting down") from exc
        if self.jsonl_path is not None:
            line = to_otlp_json_line(spans) + "\n"
            with self._lock:
                if self._fh is None:
                    raise RequestError(503, "the receiver is shutting down")
                try:
                    self._fh.write(line)
                    self._fh.flush()
                except OSError as exc:
                    raise RequestError(503, f"cannot write {self.jsonl_path}: {exc}") from exc
            return  # durable in the file: the sink catches up behind it
        if pending is not None:
            if not pending.wait(self.wait_s):
                raise RequestError(503, f"the store did not confirm within {self.wait_s:g} s")
            if pending.error is not None:
                raise RequestError(503, f"sink failed: {pending.error}")


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads: in-flight requests finish
    allow_reuse_address = True
    request_queue_size = 128
    receiver: "OTLPReceiver"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "auditor-otlp"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.receiver.read_timeout)
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        if self.server.receiver.log is not None:
            self.server.receiver.log(format % args)

    def handle(self) -> None:
        self.close_connection = True
        while self._wait_for_request():
            try:
                self.handle_one_request()
            except (ConnectionError, TimeoutError, socket.timeout):
                break
            if self.close_connection:
                break

    def _wait_for_request(self) -> bool:
        """Idle keep-alive connections poll for the next request so that stop() never waits on them."""
        rec = self.server.receiver
        deadline = time.monotonic() + rec.idle_timeout
        while True:
            try:
                if rec._stopping.is_set():
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    return bool(readable)
                readable, _, _ = select.select([self.connection], [], [], 0.1)
            except (OSError, ValueError):
                return False
            if readable:
                return True
            if time.monotonic() > deadline:
                return False

    # -- responses -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, as_json: bool, close: bool = False) -> None:
        self.server.receiver._count(rejected_requests=1)
        code = {400: 3, 401: 16, 404: 5, 411: 3, 413: 8, 415: 3, 500: 13, 503: 14}.get(status, 2)
        if as_json:
            body = json.dumps({"code": code, "message": message}).encode()
            self._send(status, body, "application/json", close)
            return
        try:
            from google.rpc import status_pb2

            body = status_pb2.Status(code=code, message=message).SerializeToString()
        except ImportError:  # pragma: no cover - googleapis-common-protos comes with the OTLP exporter
            body = message.encode()
        self._send(status, body, "application/x-protobuf", close)

    def do_GET(self) -> None:  # noqa: N802
        if urlsplit(self.path).path in ("/", "/healthz"):
            self._send(200, b"auditor OTLP receiver: POST /v1/traces\n", "text/plain")
        else:
            self._error(404, "not found; OTLP traces go to POST /v1/traces", True)

    def do_PUT(self) -> None:  # noqa: N802
        self._error(405, "use POST", True, close=True)

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._post()
        except (ConnectionError, TimeoutError, socket.timeout):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a bug must cost one request, not the connection silently
            self.close_connection = True
            try:
                self._error(500, f"internal error: {type(exc).__name__}: {exc}", True, close=True)
            except OSError:
                pass

    def _post(self) -> None:
        rec = self.server.receiver
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        as_json = ctype == "application/json"
        if urlsplit(self.path).path.rstrip("/") != TRACES_PATH:
            self._discard_or_close()
            self._error(404, f"unknown path {self.path}; OTLP traces go to {TRACES_PATH}", as_json)
            return
        if rec.token is not None:
            auth = self.headers.get("Authorization") or ""
            if not hmac.compare_digest(auth.encode(), f"Bearer {rec.token}".encode()):
                self._discard_or_close()
                self._error(401, "missing or wrong bearer token", as_json)
                return
        try:
            raw = self._read_body()
            rec._count(bytes=len(raw))
            body = _decompress(raw, self.headers.get("Content-Encoding"), rec.max_body_bytes)
            spans, rejected, reason = rec._parse(body, ctype)
        except RequestError as exc:
            self._error(exc.status, exc.message, as_json, close=exc.status in (411, 413))
            return
        try:
            rec._store(spans)
        except RequestError as exc:
            self._error(exc.status, exc.message, as_json)
            return
        rec._count(requests=1, spans=len(spans), rejected_spans=rejected)
        if as_json:
            resp: dict[str, Any] = {}
            if rejected:
                resp["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": reason}
            self._send(200, json.dumps(resp).encode(), "application/json")
        else:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

            msg = ExportTraceServiceResponse()
            if rejected:
                msg.partial_success.rejected_spans = rejected
                msg.partial_success.error_message = reason
            self._send(200, msg.SerializeToString(), "application/x-protobuf")

    # -- body ------------------------------------------------------------------------------------
    def _discard_or_close(self) -> None:
        """Read and drop a small body so the connection can be reused; else close it."""
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= self.server.receiver.max_body_bytes:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _read_body(self) -> bytes:
        limit = self.server.receiver.max_body_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "Content-Length required")
        try:
            n = int(length)
        except ValueError as exc:
            raise RequestError(400, f"bad Content-Length {length!r}") from exc
        if n < 0:
            raise RequestError(400, "bad Content-Length")
        if n > limit:
            if n <= 4 * limit:  # drain so the client can read the answer instead of a reset
                remaining = n
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise RequestError(413, f"body of {n} bytes exceeds the limit of {limit} bytes")
        data = self.rfile.read(n)
        if len(data) != n:
            raise RequestError(400, f"body truncated: {len(data)} of {n} bytes")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip() or b"x", 16)
            except ValueError as exc:
                raise RequestError(400, "bad chunked encoding") from exc
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > limit:
                raise RequestError(413, f"body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)


def _decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    enc = (encoding or "identity").strip().lower()
    if enc in ("identity", ""):
        return raw
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or none)")
    wbits = 16 + zlib.MAX_WBITS if enc in ("gzip", "x-gzip") else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(raw, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise RequestError(413, f"decompressed body exceeds the limit of {limit} bytes")
        out += d.flush()
    except zlib.error as exc:
        raise RequestError(400, f"body is not valid {enc}: {exc}") from exc
    if len(out) > limit:
        raise RequestError(413, f"decompressed body exceeds the limit of {limit} bytes")
    if not d.eof:
        raise RequestError(400, f"{enc} body is truncated")
    return out


class OTLPReceiver(ReceiverBase):
    """OTLP/HTTP trace receiver. ``port=0`` picks a free port (read ``.port`` after `start`).

    Example::

        with OTLPReceiver(port=0, jsonl_path="run.jsonl") as rec:
            exporter = OTLPSpanExporter(endpoint=rec.url)
            ...

    Pass ``writer=`` (a `SpanWriter`) instead of ``jsonl_path``/``sink`` to share the output
    with another receiver (e.g. the OTLP/gRPC one).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4318,
        jsonl_path: str | os.PathLike[str] | None = None,
        sink: Sink | None = None,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        idle_timeout: float = 30.0,
        read_timeout: float = 30.0,
        log: Callable[[str], Any] | None = None,
        writer: SpanWriter | None = None,
    ):
        super().__init__(host, port, jsonl_path, sink, token, max_body_bytes, log, writer)
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}{TRACES_PATH}"

    def start(self) -> "OTLPReceiver":
        if self._server is not None:
            return self
        self.writer.acquire()
        server_cls = _Server
        if ":" in self.host:
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            server = server_cls((self.host, self.port), _Handler)
        except OSError:
            self.writer.release()
            raise
        server.receiver = self
        self.port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"otlp-receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, finish requests in flight, close idle connections, flush and close."""
        server = self._server
        if server is None:
            return
        server.shutdown()  # the accept loop ends
        self._stopping.set()  # idle keep-alive connections end
        server.server_close()  # joins handler threads (requests in flight complete)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.writer.release()  # flushed to disk (closed unless another receiver shares it)
        self._server = None

    def __enter__(self) -> "OTLPReceiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- internals (called from handler threads) -------------------------------------------------
    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for k, v in deltas.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _parse(self, body: bytes, ctype: str) -> tuple[list[SpanRecord], int, str]:
        errors: list[SpanError] = []
        if ctype == "application/json" or (ctype == "" and body.lstrip()[:1] == b"{"):
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RequestError(400, f"invalid JSON body: {exc}") from exc
            try:
                spans = spans_from_otlp_json(data, source="otlp-http", errors=errors)
            except SpanError as exc:
                raise RequestError(400, str(exc)) from exc
        elif ctype in ("application/x-protobuf", "application/protobuf", ""):
            from google.protobuf.message import DecodeError
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

            try:
                req = ExportTraceServiceRequest.FromString(body)
            except (DecodeError, ValueError) as exc:
                raise RequestError(400, f"invalid protobuf body: {exc}") from exc
            spans = spans_from_otlp_proto(req, source="otlp-http", errors=errors)
        else:
            raise RequestError(415, f"unsupported Content-Type {ctype!r} (use application/x-protobuf or application/json)")
        if errors and not spans:
            raise RequestError(400, f"no valid span in the export: {errors[0]}")
        reason = f"{len(errors)} span(s) rejected, first: {errors[0]}" if errors else ""
        return spans, len(errors), reason

    def _store(self, spans: list[SpanRecord]) -> None:
        self.writer.write(spans)
