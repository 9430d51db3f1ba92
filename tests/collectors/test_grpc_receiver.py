"""The OTLP/gRPC receiver on a loopback port: the real OpenTelemetry SDK with its real gRPC
exporter, raw stubs for the status codes, a shared output with the HTTP receiver, shutdown."""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections import Counter

import grpc
import openai
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from helpers.agent import run_agent
from helpers.fake_openai import FakeOpenAI
from test_receiver import ListSink, post, records, stored_ids
from test_roundtrip import _expected, _strip, script
from auditor.collectors.grpc_receiver import OTLPGrpcReceiver
from auditor.collectors.instrument import OpenAIInstrumentor
from auditor.collectors.receiver import OTLPReceiver, SpanWriter
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.otlp_proto import to_otlp_proto
from auditor.collectors.loading import load_path


@pytest.fixture
def receiver(tmp_path):
    sink = ListSink()
    rec = OTLPGrpcReceiver(port=0, jsonl_path=tmp_path / "spans.jsonl", sink=sink, max_body_bytes=256 * 1024)
    rec.start()
    rec.test_sink = sink  # type: ignore[attr-defined]
    yield rec
    rec.stop()


def exporter(rec, **kw) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=rec.address, insecure=True, timeout=5, **kw)


def sdk_run(rec, n: int, name: str, **kw) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter(rec, **kw), max_export_batch_size=200,
                                                   schedule_delay_millis=50))
    tracer = provider.get_tracer(name)
    for i in range(n):
        with tracer.start_as_current_span(f"{name}-{i}", attributes={"worker": name, "i": i}):
            pass
    provider.shutdown()


def finished_spans(n: int) -> list:
    """n finished SDK spans (ReadableSpan), for calling an exporter's export() directly."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "direct"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        with provider.get_tracer("t").start_as_current_span(f"direct-{i}"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def stub_call(rec, request, metadata=None, compression=None):
    """Export through a raw stub: (response, None) or (None, RpcError)."""
    with grpc.insecure_channel(rec.address) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        try:
            return stub.Export(request, metadata=metadata, timeout=5, compression=compression), None
        except grpc.RpcError as exc:
            return None, exc


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_sdk_grpc_exporter_spans_reach_file_and_sink(receiver, compression):
    sdk_run(receiver, 50, "svc", compression=compression)
    ids = stored_ids(receiver)
    assert len(ids) == 50 and set(ids.values()) == {1}
    assert receiver.writer.flush(10)  # the sink follows the file in batches
    assert len(receiver.test_sink.spans) == 50
    s = receiver.test_sink.spans[0]
    assert s.source == "otlp-grpc" and s.resource["service.name"] == "svc" and s.attributes["worker"] == "svc"
    assert receiver.stats.spans == 50 and receiver.stats.rejected_requests == 0 and receiver.stats.requests >= 1


def test_agent_and_vllm_over_grpc_assemble_into_a_trajectory(tmp_path):
    """The round trip of test_roundtrip, with agent and (simulated) vLLM exporting OTLP/gRPC."""
    path = tmp_path / "run.jsonl"
    with OTLPGrpcReceiver(port=0, jsonl_path=path) as rec:
        agent_provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
        agent_provider.add_span_processor(BatchSpanProcessor(exporter(rec), schedule_delay_millis=50))
        vllm_provider = TracerProvider(resource=Resource.create({"service.name": "vllm"}))
        vllm_provider.add_span_processor(BatchSpanProcessor(exporter(rec), schedule_delay_millis=50))
        with FakeOpenAI(script, vllm_provider=vllm_provider) as srv, OpenAIInstrumentor(tracer_provider=agent_provider):
            client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
            messages = run_agent(client, agent_provider, "When is the release?")
        agent_provider.shutdown()
        vllm_provider.shutdown()
    result = load_path(path)
    assert result.issues == []
    (traj,) = result.trajectories
    assert _strip(traj) == _strip(_expected(messages))
    assert len(traj.metadata["llm_requests"]) == 2  # vLLM's llm_request spans joined to the chat spans


def test_bearer_token(tmp_path):
    path = tmp_path / "t.jsonl"
    with OTLPGrpcReceiver(port=0, jsonl_path=path, token="s3cret") as rec:
        spans = finished_spans(3)
        assert exporter(rec).export(spans) == SpanExportResult.FAILURE
        assert exporter(rec, headers={"authorization": "Bearer wrong"}).export(spans) == SpanExportResult.FAILURE
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret")]):
            _, err = stub_call(rec, to_otlp_proto(records(2)), metadata)
            assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert rec.stats.spans == 0 and rec.stats.rejected_requests == 5
        assert path.read_text() == ""
        assert exporter(rec, headers={"authorization": "Bearer s3cret"}).export(spans) == SpanExportResult.SUCCESS
        # the env-var form (OTEL_EXPORTER_OTLP_HEADERS) and a capitalised key are lowercased by the exporter
        assert exporter(rec, headers="Authorization=Bearer%20s3cret").export(spans) == SpanExportResult.SUCCESS
    assert len(stored_ids(rec)) == 3 and rec.stats.spans == 6


def test_oversized_message_is_resource_exhausted(receiver):
    big = to_otlp_proto(records(1, start=7))
    big.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="blob").value.string_value = "x" * 300_000
    _, err = stub_call(receiver, big)
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # a gzip bomb: small on the wire, over the limit once decompressed
    _, err = stub_call(receiver, big, compression=grpc.Compression.Gzip)
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    resp, err = stub_call(receiver, to_otlp_proto(records(2)))  # the receiver is fine afterwards
    assert err is None and not resp.HasField("partial_success")
    assert len(stored_ids(receiver)) == 2


def test_partial_success_for_a_bad_span_id(receiver):
    request = to_otlp_proto(records(3))
    request.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01\x02\x03"
    resp, err = stub_call(receiver, request)
    assert err is None
    assert resp.partial_success.rejected_spans == 1 and "span_id" in resp.partial_success.error_message
    assert Counter(span for _, span in stored_ids(receiver)) == {f"{1:016x}": 1, f"{3:016x}": 1}
    assert receiver.stats.rejected_spans == 1 and receiver.stats.spans == 2
    # nothing valid at all: INVALID_ARGUMENT, nothing stored
    request = to_otlp_proto(records(1, start=9))
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"short"
    _, err = stub_call(receiver, request)
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert receiver.stats.spans == 2 and receiver.stats.rejected_requests == 1


def test_sink_failure_is_unavailable(tmp_path):
    def broken(spans):
        raise RuntimeError("disk full")

    with OTLPGrpcReceiver(port=0, sink=broken) as rec:
        _, err = stub_call(rec, to_otlp_proto(records(1)))
        assert err.code() == grpc.StatusCode.UNAVAILABLE and "disk full" in err.details()


def test_defaults_bind_loopback_on_4317():
    params = inspect.signature(OTLPGrpcReceiver).parameters
    assert list(params)[:6] == ["host", "port", "jsonl_path", "sink", "token", "max_body_bytes"]
    assert params["host"].default == "127.0.0.1" and params["port"].default == 4317
    rec = OTLPGrpcReceiver()
    assert rec.address == "127.0.0.1:4317" and rec.url == "http://127.0.0.1:4317" and not rec.running
    with OTLPGrpcReceiver(port=0) as rec:
        assert rec.running and rec.port > 0 and rec.address == f"127.0.0.1:{rec.port}"


def test_busy_port_is_an_oserror(tmp_path):
    with OTLPGrpcReceiver(port=0) as first:
        with pytest.raises(OSError):
            OTLPGrpcReceiver(port=first.port, jsonl_path=tmp_path / "x.jsonl").start()


def test_stop_drains_calls_in_flight_and_flushes(tmp_path):
    entered = threading.Event()

    def slow(spans):
        entered.set()
        time.sleep(0.3)

    rec = OTLPGrpcReceiver(port=0, jsonl_path=tmp_path / "s.jsonl", sink=slow).start()
    result: list = []
    caller = threading.Thread(target=lambda: result.append(stub_call(rec, to_otlp_proto(records(4)))))
    caller.start()
    assert entered.wait(5)
    t0 = time.monotonic()
    rec.stop()  # while the call is in flight
    assert time.monotonic() - t0 < 3
    caller.join(5)
    (resp, err), = result
    assert err is None  # acknowledged ...
    assert len(stored_ids(rec)) == 4  # ... and on disk
    assert not rec.running
    rec.stop()  # idempotent


def test_http_and_grpc_share_one_writer(tmp_path):
    sink = ListSink()
    writer = SpanWriter(tmp_path / "both.jsonl", sink)
    with OTLPReceiver(port=0, writer=writer) as http_rec, OTLPGrpcReceiver(port=0, writer=writer) as grpc_rec:
        threads = [threading.Thread(target=sdk_run, args=(grpc_rec, 300, f"g{k}")) for k in range(2)]
        for t in threads:
            t.start()
        for k in range(20):
            assert post(http_rec, json.dumps(to_otlp_json(records(10, trace=f"{k:032x}"))).encode())[0] == 200
        for t in threads:
            t.join(30)
        grpc_rec.stop()  # the HTTP receiver still writes after the gRPC one has flushed
        assert post(http_rec, json.dumps(to_otlp_json(records(5, trace="ee" * 16))).encode())[0] == 200
    ids = stored_ids(http_rec)  # every line parses: no interleaving
    assert len(ids) == 600 + 200 + 5 and set(ids.values()) == {1}
    assert len(sink.spans) == 805
    assert Counter(s.source for s in sink.spans) == {"otlp-grpc": 600, "otlp-http": 205}
    with pytest.raises(ValueError):
        OTLPGrpcReceiver(writer=writer, jsonl_path=tmp_path / "other.jsonl")
