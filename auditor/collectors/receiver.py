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

from auditor.collectors.batcher import (DEFAULT_FLUSH_MS, DEFAULT_FLUSH_SPANS, DEFAULT_MAX_QUEUED_SPANS, QueueFull,
                                       SinkBatcher)
from auditor.collectors.files import flush_to_disk
from auditor.collectors.http_server import Head, HttpServer, Limits, Response
from auditor.collectors.otlp_json import to_otlp_json_line
from auditor.collectors.otlp_request import (ENCODINGS, JSON_TYPES, PROTOBUF_TYPES, RequestError, decode, decompress)
from auditor.collectors.spans import SpanRecord
from auditor.collectors.spool import Replay, SpoolFiles, replay, spool_files
from auditor.collectors.spool import lock as spool_lock
from auditor.collectors.spool import unlock as spool_unlock

__all__ = ["OTLPReceiver", "ReceiverBase", "ReceiverStats", "RequestError", "SpanWriter", "TRACES_PATH",
           "DEFAULT_MAX_BODY_BYTES", "Sink"]

TRACES_PATH = "/v1/traces"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024  # a spool under load is renamed aside past this (see SpanWriter)
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

    ``spool`` (a database path; a sink and no JSONL file): the same, with a write-ahead file next
    to the database instead of a JSONL file the user keeps (`auditor.collectors.spool`): the
    first `acquire` stores what a previous run left there, the spool is emptied as the sink
    catches up (rotated past ``rotate_bytes`` under load) and removed by the last `release`,
    unless the sink failed: then it stays, and the next start stores it.

    `write` raises `RequestError` when a batch cannot be stored: 503 (retry later: the file
    cannot be written, the sink failed or is falling behind, the writer is shutting down).
    A process killed outright (SIGKILL) loses only what it had not acknowledged, plus, with a
    JSONL file, the sink's queue (those spans are in the file: ``audit trace FILE
    --no-attribute`` imports them; with a spool, the next start does). Appends are flushed to
    the OS, not fsynced one by one: a killed process loses nothing acknowledged, a power cut may.
    """

    def __init__(self, jsonl_path: str | os.PathLike[str] | None = None, sink: Sink | None = None, *,
                 flush_spans: int = DEFAULT_FLUSH_SPANS, flush_ms: float = DEFAULT_FLUSH_MS,
                 max_queued_spans: int = DEFAULT_MAX_QUEUED_SPANS, wait_s: float = 30.0,
                 warn: Callable[[str], Any] | None = None, spool: str | os.PathLike[str] | None = None,
                 rotate_bytes: int = DEFAULT_ROTATE_BYTES):
        if spool is not None and (jsonl_path is not None or sink is None):
            raise ValueError("a spool is for a sink without a JSONL file (the file is the spool then)")
        self.jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self.sink = sink
        self.spool: SpoolFiles | None = spool_files(spool) if spool is not None else None
        self.rotate_bytes = rotate_bytes
        self.replayed: Replay | None = None  # what the first `acquire` imported from a previous run's spool
        self.wait_s = wait_s  # how long a request waits for room in the queue, and (no file) for its flush
        self.warn = warn
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self._path = self.jsonl_path if self.spool is None else self.spool.active  # appended to, if any
        self._users = 0
        self._spool_lock: IO[bytes] | None = None
        self._rotated_mark: int | None = None  # puts to finish before the rotated spool may go
        self._batcher = SinkBatcher(sink, flush_spans=flush_spans, flush_ms=flush_ms,
                                    max_queued_spans=max_queued_spans, on_error=self._sink_failed,
                                    name="span-sink",
                                    after_batch=self._spool_caught_up if self.spool is not None else None
                                    ) if sink is not None else None

    @property
    def sink_failed_spans(self) -> int:
        """Spans the sink refused (with a JSONL file or spool they are in it; without, their requests got 503)."""
        return self._batcher.failed_spans if self._batcher is not None else 0

    def _sink_failed(self, error: str, n: int) -> None:
        if self.warn is None:
            return
        if self.spool is not None:
            self.warn(f"{n} spans are kept in {self.spool.active} (the next start stores them) because the store "
                      f"failed: {error}")
        elif self.jsonl_path is not None:
            self.warn(f"{n} spans were written to {self.jsonl_path} but the sink failed: {error}")
        else:
            self.warn(f"{n} spans refused (503, the client retries): the sink failed: {error}")

    def acquire(self) -> None:
        """Open the file and start the sink (first user only). With a spool, first take its lock
        (`SpoolBusy` if another receiver has it) and store what a previous run left in it
        (``replayed``; a sink error propagates and leaves the spool as it was)."""
        with self._lock:
            if self._users == 0:
                if self.spool is not None:
                    self._open_spool()
                if self._path is not None:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = self._path.open("a", encoding="utf-8")
                if self._batcher is not None:
                    self._batcher.start()
            self._users += 1

    def _open_spool(self) -> None:
        assert self.spool is not None and self.sink is not None
        self._spool_lock = spool_lock(self.spool.lock)
        try:
            self.replayed = replay(self.spool, self.sink)
        except BaseException:
            spool_unlock(self._spool_lock, self.spool.lock)
            self._spool_lock = None
            raise
        self._rotated_mark = None

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
        if last and self.spool is not None and self._spool_lock is not None:
            self._close_spool()

    def _close_spool(self) -> None:
        """After the last flush: all stored, the spool goes; else it stays for the next start."""
        assert self.spool is not None and self._spool_lock is not None
        try:
            if not self.sink_failed_spans:
                for path in self.spool.spools:
                    path.unlink(missing_ok=True)
            elif self.warn is not None:
                kept = ", ".join(str(p) for p in self.spool.spools if p.exists())
                self.warn(f"{self.sink_failed_spans} spans the store refused are kept in {kept}: the next start "
                          "with this database stores them")
        finally:
            spool_unlock(self._spool_lock, self.spool.lock)
            self._spool_lock = None

    def _spool_caught_up(self) -> None:
        """After each batch (flusher thread): empty the spool of what the store has.

        Under the writer's lock no request appends, and every span in the spool was queued
        before it was appended; so when every put so far has finished, all the spool holds is
        stored and it is truncated. Under load the queue seldom empties: once the spool passes
        ``rotate_bytes`` it is renamed aside (new appends go to a fresh one) and removed when the
        puts made before the rename have finished. After a sink failure nothing is removed."""
        assert self._batcher is not None and self.spool is not None
        with self._lock:
            if self._fh is None or self._batcher.failed_spans:
                return
            try:
                puts, finished = self._batcher.progress()
                if self._rotated_mark is not None and finished >= self._rotated_mark:
                    self.spool.rotated.unlink(missing_ok=True)
                    self._rotated_mark = None
                if self._rotated_mark is not None:
                    return
                size = os.fstat(self._fh.fileno()).st_size
                if finished == puts:
                    if size:
                        self._fh.truncate(0)
                elif size >= self.rotate_bytes:
                    os.replace(self.spool.active, self.spool.rotated)  # no one appends meanwhile: we hold the lock
                    fresh = self.spool.active.open("a", encoding="utf-8")
                    self._fh.close()
                    self._fh = fresh
                    self._rotated_mark = puts
            except OSError as exc:
                if self.warn is not None:
                    self.warn(f"cannot rotate the spool {self.spool.active}: {exc} (it keeps growing; nothing is lost)")

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
                pending = self._batcher.put(spans, timeout=self.wait_s, urgent=self._path is None)
            except QueueFull as exc:
                raise RequestError(503, f"the store is falling behind: {exc}") from exc
            except RuntimeError as exc:
                raise RequestError(503, "the receiver is shutting down") from exc
        if self._path is not None:
            line = to_otlp_json_line(spans) + "\n"
            with self._lock:
                if self._fh is None:
                    raise RequestError(503, "the receiver is shutting down")
                try:
                    self._fh.write(line)
                    self._fh.flush()
                except OSError as exc:
                    raise RequestError(503, f"cannot write {self._path}: {exc}") from exc
            return  # durable in the file: the sink catches up behind it
        if pending is not None:
            if not pending.wait(self.wait_s):
                raise RequestError(503, f"the store did not confirm within {self.wait_s:g} s")
            if pending.error is not None:
                raise RequestError(503, f"sink failed: {pending.error}")




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
