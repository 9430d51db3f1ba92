"""An OTLP/HTTP trace receiver (``POST /v1/traces``) that appends what it receives to a JSONL
file (OTLP JSON, one export per line) and/or hands the spans to a sink (the DuckDB store).
Its OTLP/gRPC sibling (port 4317, the default of vLLM and most OpenTelemetry SDKs) is
`auditor.collectors.grpc_receiver.OTLPGrpcReceiver`; both can share one `SpanWriter` (same
file, same sink), which is what ``audit collect --grpc`` does.

- Bodies: protobuf (``application/x-protobuf``) or JSON (``application/json``, hex or base64
  ids), optionally gzip- or deflate-compressed; built on the ``opentelemetry-proto`` messages.
- Binds to 127.0.0.1 by default; optional bearer token, checked as soon as a request's head is
  in, before any body byte is read (401); a body-size limit, checked before and after
  decompression (413).
- Bad input never gets a status a client would retry, and one validation serves the file and
  the sink alike (`auditor.collectors.otlp_request`): a body that is not an export gets 400 and
  changes nothing; bad spans inside a valid export (ids, times outside 0..2^63-1 ns, wrong types,
  nesting) are rejected through OTLP partial success; lone surrogates are stored as U+FFFD and
  said in the partial-success message. Ids are hex per OTLP/JSON, or base64 as some converters
  write them, told apart by length (`auditor.collectors.spans.normalize_id`).
- Connections (`auditor.collectors.http_server`): one event loop holds them all (no thread per
  idle connection, no ``select()`` limit), at most ``max_connections`` (the longest-waiting one
  without a request under way makes room, else 503 + Retry-After, logged), request heads within
  ``header_timeout``, idle keep-alive connections closed after ``idle_timeout``.
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
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Callable, Sequence
from urllib.parse import urlsplit

from auditor.collectors.files import flush_to_disk
from auditor.collectors.http_server import Head, HttpServer, Limits, Response
from auditor.collectors.otlp_json import to_otlp_json_line
from auditor.collectors.otlp_request import (ENCODINGS, JSON_TYPES, PROTOBUF_TYPES, RequestError, decode, decompress)
from auditor.collectors.spans import SpanRecord

__all__ = ["OTLPReceiver", "ReceiverBase", "ReceiverStats", "RequestError", "SpanWriter", "TRACES_PATH",
           "DEFAULT_MAX_BODY_BYTES", "Sink"]

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


@dataclass
class ReceiverStats:
    requests: int = 0  # accepted export requests
    spans: int = 0  # spans stored
    rejected_requests: int = 0  # requests answered with 4xx/5xx
    rejected_spans: int = 0  # spans refused inside accepted requests (partial success)
    bytes: int = 0  # request body bytes received (compressed)
    evicted_connections: int = 0  # closed to make room (connection limit reached)
    refused_connections: int = 0  # answered 503 (connection limit reached, every connection busy)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SpanWriter:
    """Where received spans go: a JSONL file (one OTLP JSON export per line) and/or a sink.

    Thread-safe, one batch at a time, so several receivers (OTLP/HTTP and OTLP/gRPC) can share
    one file without interleaving lines. Each receiver `acquire`s it on start and `release`s it
    on stop; every release flushes the file to disk, the last one closes it. `write` raises
    `RequestError` (503: retry later, 500: do not retry) when a batch cannot be stored.
    """

    def __init__(self, jsonl_path: str | os.PathLike[str] | None = None, sink: Sink | None = None):
        self.jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self.sink = sink
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._users = 0

    def acquire(self) -> None:
        with self._lock:
            if self._users == 0 and self.jsonl_path is not None:
                self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.jsonl_path.open("a", encoding="utf-8")
            self._users += 1

    def release(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._fh is not None:
                flush_to_disk(self._fh)
                if self._users == 0:
                    self._fh.close()
                    self._fh = None

    def write(self, spans: Sequence[SpanRecord]) -> None:
        if not spans:
            return
        line = to_otlp_json_line(spans) + "\n" if self.jsonl_path is not None else None
        with self._lock:
            if line is not None:
                if self._fh is None:
                    raise RequestError(503, "the receiver is shutting down")
                try:
                    self._fh.write(line)
                    self._fh.flush()
                except OSError as exc:
                    raise RequestError(503, f"cannot write {self.jsonl_path}: {exc}") from exc
            if self.sink is not None:
                try:
                    self.sink(spans)
                except Exception as exc:  # noqa: BLE001 - report to the client, keep serving
                    if line is not None:  # already safe in the file: a retry would duplicate it there
                        raise RequestError(500, f"spans written to {self.jsonl_path}, but the sink failed: {exc}") from exc
                    raise RequestError(503, f"sink failed: {exc}") from exc




_RPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 408: 4, 411: 3, 413: 8, 415: 3, 431: 8, 500: 13, 503: 14}
_log = logging.getLogger(__name__)


class _OtlpApp:
    """What `OTLPReceiver` answers (the HTTP side is `HttpServer`'s)."""

    def __init__(self, receiver: "OTLPReceiver"):
        self.rec = receiver
        self.expected = f"Bearer {receiver.token}".encode() if receiver.token is not None else None

    def check_head(self, head: Head) -> Response | None:
        path = urlsplit(head.target).path
        if head.method == "GET":
            if path in ("/", "/healthz"):
                return Response(200, b"auditor OTLP receiver: POST /v1/traces\n", "text/plain")
            return self.error(head, 404, "not found; OTLP traces go to POST /v1/traces")
        if head.method != "POST":
            return self.error(head, 405, "use POST")
        if path.rstrip("/") != TRACES_PATH:
            return self.error(head, 404, f"unknown path {head.target[:200]}; OTLP traces go to {TRACES_PATH}")
        if self.expected is not None:
            auth = (head.get("authorization") or "").encode("latin-1")
            if not hmac.compare_digest(auth, self.expected):
                return self.error(head, 401, "missing or wrong bearer token")
        ctype = _media_type(head)
        if ctype and ctype not in JSON_TYPES + PROTOBUF_TYPES:
            return self.error(head, 415, f"unsupported Content-Type {ctype[:100]!r} (use application/x-protobuf or "
                                         "application/json)")
        enc = (head.get("content-encoding") or "").strip().lower()
        if enc not in ENCODINGS:
            return self.error(head, 415, f"unsupported Content-Encoding {enc[:100]!r} (use gzip, deflate or none)")
        return None

    def handle(self, head: Head, body: bytes) -> Response:
        rec = self.rec
        rec._count(bytes=len(body))
        try:
            data = decompress(body, head.get("content-encoding"), rec.max_body_bytes)
            export = decode(data, _media_type(head), "otlp-http")
            rec.writer.write(export.spans)
        except RequestError as exc:
            return self.error(head, exc.status, exc.message)
        rejected, message = len(export.errors), export.message
        rec._count(requests=1, spans=len(export.spans), rejected_spans=rejected)
        if _media_type(head) in JSON_TYPES or (not _media_type(head) and data.lstrip()[:1] == b"{"):
            resp: dict[str, Any] = {}
            if message:
                resp["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
            return Response(200, json.dumps(resp).encode(), "application/json")
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        msg = ExportTraceServiceResponse()
        if message:
            msg.partial_success.rejected_spans = rejected
            msg.partial_success.error_message = message
        return Response(200, msg.SerializeToString(), "application/x-protobuf")

    def error(self, head: Head | None, status: int, message: str) -> Response:
        """An OTLP error answer: ``google.rpc.Status``, as JSON or protobuf like the request."""
        self.rec._count(rejected_requests=1)
        if status >= 500 and status != 503:
            _log.error("OTLP/HTTP receiver: %s", message)
        code = _RPC_CODES.get(status, 2)
        if head is None or _media_type(head) in JSON_TYPES or _media_type(head) not in PROTOBUF_TYPES:
            return Response(status, json.dumps({"code": code, "message": message}).encode(), "application/json")
        from google.rpc import status_pb2

        return Response(status, status_pb2.Status(code=code, message=message).SerializeToString(), "application/x-protobuf")


def _media_type(head: Head) -> str:
    return (head.get("content-type") or "").split(";", 1)[0].strip().lower()


class OTLPReceiver(ReceiverBase):
    """OTLP/HTTP trace receiver. ``port=0`` picks a free port (read ``.port`` after `start`).

    Example::

        with OTLPReceiver(port=0, jsonl_path="run.jsonl") as rec:
            exporter = OTLPSpanExporter(endpoint=rec.url)
            ...

    Pass ``writer=`` (a `SpanWriter`) instead of ``jsonl_path``/``sink`` to share the output
    with another receiver (e.g. the OTLP/gRPC one). Capacity events (the connection limit) go to
    ``warn`` (default: this module's logger), one line per 10 s at most.
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
        header_timeout: float = 10.0,
        max_connections: int = 512,
        workers: int = 8,
        log: Callable[[str], Any] | None = None,
        warn: Callable[[str], Any] | None = None,
        writer: SpanWriter | None = None,
    ):
        super().__init__(host, port, jsonl_path, sink, token, max_body_bytes, log, writer)
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.limits = Limits(max_body_bytes=self.max_body_bytes, max_connections=max_connections,
                             header_timeout=header_timeout, idle_timeout=idle_timeout, read_timeout=read_timeout,
                             workers=workers)
        self.warn = warn if warn is not None else _log.warning
        self._server: HttpServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}{TRACES_PATH}"

    def start(self) -> "OTLPReceiver":
        if self._server is not None:
            return self
        self.writer.acquire()
        server = HttpServer(_OtlpApp(self), self.host, self.port, self.limits, log=self.log, warn=self.warn,
                            count=self._count, name="otlp-http")
        try:
            server.start()
        except BaseException:
            self.writer.release()
            raise
        self.port = server.port
        self._server = server
        return self

    def stop(self) -> None:
        """Stop accepting, finish requests in flight, close idle connections, flush and close."""
        server = self._server
        if server is None:
            return
        try:
            server.stop(grace=self.limits.read_timeout)
        finally:
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
