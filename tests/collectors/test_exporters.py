"""JsonlSpanExporter and setup_tracing with real SDK pipelines."""

from __future__ import annotations

import json
import threading

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from auditor.collectors.exporters import JsonlSpanExporter, setup_tracing
from auditor.collectors.readers import read_otlp_json
from auditor.collectors.receiver import OTLPReceiver


def test_one_export_per_line_thread_safe(tmp_path):
    path = tmp_path / "sub" / "run.jsonl"
    exporter = JsonlSpanExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # one export per span, from many threads
    tracer = provider.get_tracer("t")

    def work(k: int) -> None:
        for i in range(100):
            with tracer.start_as_current_span(f"t{k}-{i}", attributes={"payload": "x" * 500}):
                pass

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    provider.shutdown()
    lines = path.read_text().splitlines()
    assert len(lines) == 600 and all(json.loads(line)["resourceSpans"] for line in lines)
    spans, issues = read_otlp_json(path)
    assert issues == [] and len({s.span_id for s in spans}) == 600
    assert exporter.spans_written == 600
    assert exporter.export([]) == SpanExportResult.SUCCESS


def test_export_after_shutdown_fails_cleanly(tmp_path, memory_spans):
    provider, mem = memory_spans
    with provider.get_tracer("t").start_as_current_span("x"):
        pass
    exporter = JsonlSpanExporter(tmp_path / "a.jsonl")
    assert exporter.export(mem.get_finished_spans()) == SpanExportResult.SUCCESS
    assert exporter.force_flush()
    exporter.shutdown()
    exporter.shutdown()
    assert exporter.export(mem.get_finished_spans()) == SpanExportResult.FAILURE
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 1


def test_setup_tracing_file_and_otlp_together(tmp_path):
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "received.jsonl") as rec:
        provider = setup_tracing(jsonl=tmp_path / "local.jsonl", otlp_endpoint=rec.url, service_name="my-agent")
        tracer = provider.get_tracer("t")
        for i in range(30):
            with tracer.start_as_current_span(f"s{i}"):
                pass
        provider.shutdown()
    local, _ = read_otlp_json(tmp_path / "local.jsonl")
    received, _ = read_otlp_json(tmp_path / "received.jsonl")
    assert sorted(s.span_id for s in local) == sorted(s.span_id for s in received)
    assert len(local) == 30 and local[0].resource["service.name"] == "my-agent"
