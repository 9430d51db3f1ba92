"""A real OpenTelemetry SDK pipeline into memory, for tests that read the spans they made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@contextmanager
def in_memory_tracing() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """(provider, exporter): a TracerProvider feeding an in-memory exporter, shut down after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider, exporter
    finally:
        provider.shutdown()
