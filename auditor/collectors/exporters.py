"""Span exporters: a JSONL file (OTLP JSON, one export per line: the ``run.jsonl`` that
``audit trace`` reads) and OTLP/HTTP to any collector, wired by `setup_tracing`."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from auditor.collectors.files import flush_to_disk
from auditor.collectors.otlp_json import to_otlp_json_line
from auditor.collectors.sdk_spans import spans_from_readable


class JsonlSpanExporter(SpanExporter):
    """Appends each export as one OTLP JSON line (hex ids) to ``path``.

    Thread-safe (one lock around each write); every export is flushed to the OS before
    `export` returns, and `shutdown` closes the file. Parent folders are created."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")
        self.spans_written = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            line = to_otlp_json_line(spans_from_readable(spans))
        except Exception:  # noqa: BLE001 - an exporter must never raise into the SDK
            return SpanExportResult.FAILURE
        with self._lock:
            if self._fh is None:
                return SpanExportResult.FAILURE
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
            except OSError:
                return SpanExportResult.FAILURE
            self.spans_written += len(spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        with self._lock:
            if self._fh is not None:
                flush_to_disk(self._fh)
        return True

    def shutdown(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                self._fh.close()
                self._fh = None


def _traces_url(endpoint: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces``; a full signal URL is kept."""
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def setup_tracing(
    jsonl: str | os.PathLike[str] | None = None,
    otlp_endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    service_name: str = "auditor-agent",
    batch: bool = True,
    set_global: bool = False,
) -> TracerProvider:
    """A `TracerProvider` exporting to a JSONL file and/or an OTLP/HTTP endpoint.

    Pass the provider to `OpenAIInstrumentor(tracer_provider=...)`; call ``provider.shutdown()``
    at the end of the run to flush. ``set_global=True`` also installs it as the global provider.

    Example::

        provider = setup_tracing(jsonl="run.jsonl")
        OpenAIInstrumentor(tracer_provider=provider).instrument()
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    processor = BatchSpanProcessor if batch else SimpleSpanProcessor
    if jsonl is not None:
        provider.add_span_processor(processor(JsonlSpanExporter(jsonl)))
    if otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(processor(OTLPSpanExporter(endpoint=_traces_url(otlp_endpoint),
                                                               headers=dict(headers or {}))))
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    return provider
