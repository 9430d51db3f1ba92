"""The OTLP/HTTP receiver on a loopback port: real OTLP exporters, raw bodies, bad bodies,
limits, auth, concurrency and shutdown."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
from collections import Counter

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from auditor.collectors.readers import read_otlp_json
from auditor.collectors.receiver import OTLPReceiver
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.otlp_proto import to_otlp_proto
from auditor.collectors.spans import SpanRecord


class ListSink:
    def __init__(self):
        self.spans: list[SpanRecord] = []
        self.lock = threading.Lock()

    def __call__(self, spans):
        with self.lock:
            self.spans.extend(spans)


@pytest.fixture
def receiver(tmp_path):
    sink = ListSink()
    rec = OTLPReceiver(port=0, jsonl_path=tmp_path / "spans.jsonl", sink=sink, max_body_bytes=256 * 1024)
    rec.start()
    rec.test_sink = sink  # type: ignore[attr-defined]
    yield rec
    rec.stop()


def post(rec, body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/traces"):
    conn = http.client.HTTPConnection("127.0.0.1", rec.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        answer = resp.status, resp.read(), resp.getheader("Content-Type")
    finally:
        conn.close()
    if getattr(rec, "writer", None) is not None:  # behind a JSONL file the sink follows in batches
        assert rec.writer.flush(30)
    return answer


def records(n: int, trace: str = "ab" * 16, start: int = 1) -> list[SpanRecord]:
    return [SpanRecord(trace_id=trace, span_id=f"{start + i:016x}", name=f"s{i}", kind="INTERNAL",
                       start_time_unix_nano=1_000 + i, end_time_unix_nano=2_000 + i, attributes={"i": i},
                       resource={"service.name": "test"}) for i in range(n)]


def stored_ids(rec) -> Counter:
    spans, issues = read_otlp_json(rec.jsonl_path)
    assert issues == []
    return Counter((s.trace_id, s.span_id) for s in spans)


def sdk_run(endpoint: str, n: int, name: str, compression=Compression.NoCompression, headers=None) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, compression=compression, headers=headers, timeout=10),
        max_export_batch_size=200, schedule_delay_millis=50))
    tracer = provider.get_tracer(name)
    for i in range(n):
        with tracer.start_as_current_span(f"{name}-{i}", attributes={"worker": name, "i": i}):
            pass
    provider.shutdown()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_sdk_exporter_protobuf_is_stored_in_file_and_sink(receiver, compression):
    sdk_run(receiver.url, 50, "svc", compression)
    ids = stored_ids(receiver)
    assert len(ids) == 50 and set(ids.values()) == {1}
    assert receiver.writer.flush(10)  # the sink follows the file in batches
    assert len(receiver.test_sink.spans) == 50
    s = receiver.test_sink.spans[0]
    assert s.source == "otlp-http" and s.resource["service.name"] == "svc" and s.attributes["worker"] == "svc"
    assert receiver.stats.spans == 50 and receiver.stats.rejected_requests == 0


def test_json_bodies_hex_and_base64_ids_and_gzip(receiver):
    from google.protobuf.json_format import MessageToJson

    hex_body = json.dumps(to_otlp_json(records(3))).encode()
    b64_body = MessageToJson(to_otlp_proto(records(2, trace="cd" * 16))).encode()  # base64 ids
    assert post(receiver, hex_body)[0] == 200
    status, body, ctype = post(receiver, gzip.compress(b64_body), {"Content-Encoding": "gzip"})
    assert (status, json.loads(body), ctype) == (200, {}, "application/json")
    ids = stored_ids(receiver)
    assert len(ids) == 5 and ("cd" * 16, f"{1:016x}") in ids


def test_protobuf_response_body_is_an_export_response(receiver):
    status, body, ctype = post(receiver, to_otlp_proto(records(2)).SerializeToString(),
                               {"Content-Type": "application/x-protobuf"})
    assert status == 200 and ctype == "application/x-protobuf"
    ExportTraceServiceResponse.FromString(body)


def test_partial_success_for_bad_spans_in_a_good_export(receiver):
    doc = to_otlp_json(records(3))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "not-an-id"
    status, body, _ = post(receiver, json.dumps(doc).encode())
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "spanId" in partial["errorMessage"]
    assert len(stored_ids(receiver)) == 2 and receiver.stats.rejected_spans == 1


def test_bad_bodies_get_the_right_status_and_lose_nothing_else(receiver):
    assert post(receiver, json.dumps(to_otlp_json(records(4))).encode())[0] == 200
    big = json.dumps(to_otlp_json(records(2000))).encode()
    bomb = gzip.compress(b"{" + b" " * (2 * 1024 * 1024) + b"}")
    cases = [
        (b"{not json", {}, 400),
        (b"\xff\xfe garbage", {"Content-Type": "application/x-protobuf"}, 400),
        (json.dumps({"resourceLogs": []}).encode(), {}, 400),
        (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "x", "spanId": "y"}]}]}]}).encode(), {}, 400),
        (gzip.compress(b'{"resourceSpans": []}')[:-6], {"Content-Encoding": "gzip"}, 400),
        (b"not gzip at all", {"Content-Encoding": "gzip"}, 400),
        (b"{}", {"Content-Encoding": "br"}, 415),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (big, {}, 413),
        (bomb, {"Content-Encoding": "gzip"}, 413),
    ]
    for body, headers, expected in cases:
        status, resp, _ = post(receiver, body, headers)
        assert status == expected, (headers, body[:40], resp)
    assert post(receiver, b"{}", path="/v1/logs")[0] == 404
    # no Content-Length at all
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 411")
    assert post(receiver, json.dumps(to_otlp_json(records(3, start=100))).encode())[0] == 200
    ids = stored_ids(receiver)
    assert len(ids) == 7 and set(ids.values()) == {1}
    assert receiver.writer.flush(10)  # the sink follows the file in batches
    assert len(receiver.test_sink.spans) == 7
    assert receiver.stats.rejected_requests == len(cases) + 2


def test_chunked_body(receiver):
    body = json.dumps(to_otlp_json(records(5))).encode()
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    conn.request("POST", "/v1/traces", body=iter([body[:100], body[100:]]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    assert conn.getresponse().status == 200
    conn.close()
    assert len(stored_ids(receiver)) == 5


def test_bearer_token(tmp_path):
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", token="s3cret") as rec:
        body = json.dumps(to_otlp_json(records(2))).encode()
        assert post(rec, body)[0] == 401
        assert post(rec, body, {"Authorization": "Bearer wrong"})[0] == 401
        assert post(rec, body, {"Authorization": "Bearer s3cret"})[0] == 200
        sdk_run(rec.url, 5, "authed", headers={"Authorization": "Bearer s3cret"})
        assert rec.stats.spans == 7 and rec.stats.rejected_requests == 2


def test_sink_failure_is_reported_to_the_client(tmp_path):
    def broken(spans):
        raise RuntimeError("disk full")

    with OTLPReceiver(port=0, sink=broken) as rec:
        status, body, _ = post(rec, json.dumps(to_otlp_json(records(1))).encode())
        assert status == 503 and b"disk full" in body


def test_under_load_every_span_stored_exactly_once(tmp_path):
    """Several concurrent SDK exporters (protobuf, some gzip) plus a stream of bad bodies."""
    sink = ListSink()
    workers, per_worker = 5, 800
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "load.jsonl", sink=sink) as rec:
        stop_bad = threading.Event()
        bad_statuses: list[int] = []

        def bad_sender():
            n = 0
            while not stop_bad.is_set() and n < 200:
                bad_statuses.append(post(rec, b"{broken", {})[0])
                bad_statuses.append(post(rec, b"\x0a\xff\xff", {"Content-Type": "application/x-protobuf"})[0])
                n += 1
                time.sleep(0.005)

        threads = [threading.Thread(target=sdk_run, args=(rec.url, per_worker, f"w{k}",
                                                          Compression.Gzip if k % 2 else Compression.NoCompression))
                   for k in range(workers)]
        bad = threading.Thread(target=bad_sender)
        bad.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        stop_bad.set()
        bad.join(timeout=10)
        assert not any(t.is_alive() for t in threads)
    total = workers * per_worker
    ids = stored_ids(rec)
    assert len(ids) == total and set(ids.values()) == {1}
    assert Counter((s.trace_id, s.span_id) for s in sink.spans) == ids
    names = Counter(s.resource["service.name"] for s in sink.spans)
    assert names == {f"w{k}": per_worker for k in range(workers)}
    assert bad_statuses and set(bad_statuses) == {400}
    assert rec.stats.spans == total and rec.stats.rejected_requests == len(bad_statuses)


def test_stop_flushes_and_does_not_wait_for_idle_keepalive_connections(tmp_path):
    rec = OTLPReceiver(port=0, jsonl_path=tmp_path / "s.jsonl").start()
    conn = http.client.HTTPConnection("127.0.0.1", rec.port, timeout=10)
    conn.request("POST", "/v1/traces", body=json.dumps(to_otlp_json(records(3))).encode(),
                 headers={"Content-Type": "application/json"})
    assert conn.getresponse().read() == b"{}"  # keep-alive connection now idle
    t0 = time.monotonic()
    rec.stop()
    assert time.monotonic() - t0 < 3
    assert len(stored_ids(rec)) == 3
    conn.close()
    rec.stop()  # idempotent


def test_store_sink(tmp_path):
    import auditor.store as store_mod

    store = store_mod.Store(tmp_path / "audit.duckdb")
    try:
        with OTLPReceiver(port=0, sink=store.add_spans) as rec:
            sdk_run(rec.url, 20, "stored")
            sdk_run(rec.url, 5, "stored-again")
        (n,) = store.connection.execute("SELECT count(*) FROM spans").fetchone()
        assert n == 25
    finally:
        store.close()
