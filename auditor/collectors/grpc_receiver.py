"""An OTLP/gRPC trace receiver (``opentelemetry.proto.collector.trace.v1.TraceService/Export``),
the sibling of the OTLP/HTTP `auditor.collectors.receiver.OTLPReceiver`: same output (a JSONL
file of OTLP JSON exports and/or a sink such as the DuckDB store, through a shared
`SpanWriter`), same public shape (start/stop, context manager, ``stats``, ``address``).

OTLP/gRPC on port 4317 is what vLLM and most OpenTelemetry SDKs export by default, e.g. vLLM
with ``--otlp-traces-endpoint 127.0.0.1:4317`` and ``OTEL_EXPORTER_OTLP_TRACES_INSECURE=true``.

- Binds to 127.0.0.1:4317 by default, plaintext (no TLS: keep it on loopback or use a token
  behind a tunnel); ``port=0`` picks a free port (read ``.port`` after `start`).
- Optional bearer token from the ``authorization`` metadata (``Bearer <token>``), compared in
  constant time; missing or wrong -> ``UNAUTHENTICATED`` before the message is parsed.
- Message-size limit (``grpc.max_receive_message_length``, applied by gRPC after
  decompression too) -> ``RESOURCE_EXHAUSTED``. gzip/deflate requests are handled by gRPC.
- The request bytes are parsed here, not by gRPC, so a message that is not an
  ``ExportTraceServiceRequest`` gets ``INVALID_ARGUMENT`` (gRPC's own deserializer would answer
  INTERNAL). Bad spans inside a valid export (ids, times outside 0..2^63-1 ns, values nested too
  deep) are rejected through OTLP ``partial_success`` (rejected_spans + error_message), the valid
  ones kept -- the same validation as OTLP/HTTP (`auditor.collectors.otlp_request`); an export
  with no valid span -> ``INVALID_ARGUMENT``. A file/sink failure -> ``UNAVAILABLE`` (retry) or
  ``INTERNAL`` (already in the file: do not retry).
- `stop()` refuses new calls, lets calls in flight finish (``server.stop(grace)``), then flushes
  the file: every acknowledged span is on disk when it returns.
"""

from __future__ import annotations

import hmac
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from auditor.collectors.otlp_request import decode_protobuf
from auditor.collectors.receiver import (DEFAULT_MAX_BODY_BYTES, ReceiverBase, RequestError, Sink,
                                         SpanWriter)

DEFAULT_GRPC_PORT = 4317
_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# RequestError statuses (shared with the HTTP receiver) -> gRPC codes
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 500: grpc.StatusCode.INTERNAL, 503: grpc.StatusCode.UNAVAILABLE}
_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def _bind_error(host: str, port: int, exc: Exception | None) -> OSError:
    """gRPC says only "Failed to bind": find the reason (e.g. EADDRINUSE) by binding a plain socket."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as reason:
        return reason
    return OSError(f"gRPC cannot bind {host}:{port}" + (f": {exc}" if exc else ""))


class _TokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` before their message is parsed."""

    def __init__(self, receiver: "OTLPGrpcReceiver"):
        self.receiver = receiver
        self.expected = f"Bearer {receiver.token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            self.receiver._count(rejected_requests=1)
            self.receiver._log(f"{context.peer()} {_EXPORT_METHOD}: missing or wrong bearer token")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)  # no deserializer: the body stays unparsed

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        auth = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                auth = value if isinstance(value, str) else value.decode("latin-1")
                break
        if hmac.compare_digest(auth.encode("utf-8", "replace"), self.expected):
            return continuation(handler_call_details)
        return self._deny


class _TraceService:
    """``TraceService/Export`` on raw request bytes (parsed here, so bad ones are INVALID_ARGUMENT)."""

    def __init__(self, receiver: "OTLPGrpcReceiver"):
        self.receiver = receiver

    def handler(self) -> grpc.GenericRpcHandler:
        export = grpc.unary_unary_rpc_method_handler(
            self.Export, request_deserializer=None,  # bytes in
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)
        return grpc.method_handlers_generic_handler(_SERVICE, {"Export": export})

    def Export(self, request: bytes, context: grpc.ServicerContext) -> Any:  # noqa: N802 - the gRPC name
        rec = self.receiver
        rec._count(bytes=len(request))
        try:
            export = decode_protobuf(request, "otlp-grpc")
            rec.writer.write(export.spans)
        except RequestError as exc:
            rec._count(rejected_requests=1)
            rec._log(f"{context.peer()} Export: {exc.message}")
            context.abort(_CODES.get(exc.status, grpc.StatusCode.UNKNOWN), exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one call, with a message
            rec._count(rejected_requests=1)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        rejected, message = len(export.errors), export.message
        rec._count(requests=1, spans=len(export.spans), rejected_spans=rejected)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if message:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        rec._log(f"{context.peer()} Export: {len(export.spans)} spans stored, {rejected} rejected")
        return response


class OTLPGrpcReceiver(ReceiverBase):
    """OTLP/gRPC trace receiver. ``port=0`` picks a free port (read ``.port`` after `start`).

    Example::

        with OTLPGrpcReceiver(port=0, jsonl_path="run.jsonl") as rec:
            exporter = OTLPSpanExporter(endpoint=rec.address, insecure=True)  # ...proto.grpc.trace_exporter
            ...

    Pass ``writer=`` (a `SpanWriter`) instead of ``jsonl_path``/``sink`` to share the output
    with the OTLP/HTTP receiver.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_GRPC_PORT,
        jsonl_path: str | os.PathLike[str] | None = None,
        sink: Sink | None = None,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        *,
        max_workers: int = 8,
        grace: float = 10.0,
        log: Callable[[str], Any] | None = None,
        writer: SpanWriter | None = None,
    ):
        super().__init__(host, port, jsonl_path, sink, token, max_body_bytes, log, writer)
        # stats.bytes: serialized (uncompressed) message sizes
        self.max_workers = max_workers
        self.grace = grace
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def url(self) -> str:
        """``http://host:port``: the endpoint form OTEL_EXPORTER_OTLP_ENDPOINT takes (http = plaintext);
        `address` (``host:port``) is the exporter's endpoint with insecure=True."""
        return f"http://{self.address}"

    def start(self) -> "OTLPGrpcReceiver":
        if self._server is not None:
            return self
        executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="otlp-grpc")
        server = grpc.server(
            executor,
            interceptors=[_TokenInterceptor(self)] if self.token is not None else None,
            options=[
                ("grpc.max_receive_message_length", self.max_body_bytes),
                ("grpc.so_reuseport", 0),  # a busy port is an error, not a silently shared one
            ],
        )
        server.add_generic_rpc_handlers((_TraceService(self).handler(),))
        self.writer.acquire()
        try:
            try:
                port = server.add_insecure_port(self.address)
            except RuntimeError as exc:  # grpc >= 1.50 raises instead of returning 0
                raise _bind_error(self.host, self.port, exc) from exc
            if not port:
                raise _bind_error(self.host, self.port, None)
            server.start()
        except BaseException:
            server.stop(None)
            executor.shutdown(wait=False)
            self.writer.release()
            raise
        self.port = port
        self._server, self._executor = server, executor
        return self

    def stop(self) -> None:
        """Refuse new calls, let calls in flight finish (calls still running after ``grace`` seconds
        are cancelled: their clients see CANCELLED and retry), wait for every handler to return,
        then flush the file to disk and close it."""
        server = self._server
        if server is None:
            return
        server.stop(self.grace).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # every handler has returned: nothing writes any more
        self.writer.release()  # flushed to disk (closed unless another receiver shares it)
        self._server = self._executor = None

    def __enter__(self) -> "OTLPGrpcReceiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- internals (called from handler threads) -------------------------------------------------
    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for k, v in deltas.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def _log(self, line: str) -> None:
        if self.log is not None:
            self.log(line)
