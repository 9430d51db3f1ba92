"""Property-based fuzzing of the receivers over real connections (Hypothesis draws every choice
in ``benchmarks/fuzzing.py``): mutated OTLP JSON and protobuf bodies POSTed to a running
`OTLPReceiver`, and protobuf bytes sent to a running `OTLPGrpcReceiver`. Every malformed body gets
a 4xx (INVALID_ARGUMENT), never a 5xx; bad spans are counted in partial success; valid spans are
stored exactly once; what is stored can be written and read back.

Examples per test: ``AUDITOR_FUZZ_EXAMPLES`` (default 25, derandomized).
"""

from __future__ import annotations

import http.client
import json
import os

import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import fuzzing  # benchmarks/ is on pytest's pythonpath
from test_receiver import ListSink
from auditor.collectors.grpc_receiver import OTLPGrpcReceiver
from auditor.collectors.readers import read_otlp_json
from auditor.collectors.receiver import OTLPReceiver

EXAMPLES = int(os.environ.get("AUDITOR_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 100,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def http_receiver(tmp_path_factory):
    sink = ListSink()
    with OTLPReceiver(port=0, jsonl_path=tmp_path_factory.mktemp("fuzz") / "spans.jsonl", sink=sink) as rec:
        rec.test_sink = sink  # type: ignore[attr-defined]
        yield rec
    spans, issues = read_otlp_json(rec.jsonl_path)  # the file holds exactly what the sink got
    assert issues == [] and len(spans) == len(sink.spans)


@pytest.fixture(scope="module")
def grpc_receiver():
    sink = ListSink()
    with OTLPGrpcReceiver(port=0, sink=sink) as rec:
        rec.test_sink = sink  # type: ignore[attr-defined]
        yield rec


def _post(rec, body: bytes, ctype: str) -> tuple[int, int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", rec.port, timeout=30)
    try:
        conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        raw, status = resp.read(), resp.status
    finally:
        conn.close()
    if status != 200:
        return status, 0, raw.decode("utf-8", "replace")
    if ctype == "application/json":
        partial = json.loads(raw).get("partialSuccess", {})
        return status, int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", "")
    partial = ExportTraceServiceResponse.FromString(raw).partial_success
    return status, partial.rejected_spans, partial.error_message


@FUZZ
@given(st.data())
def test_otlp_json_bodies(http_receiver, data):
    rng = fuzzing.DrawRng(data)
    doc = fuzzing.export(rng, rng.randint(0, 10**6))
    sent = len(fuzzing.export_spans(doc))
    body, verdict = fuzzing.mutate_export(rng, doc)
    verdict = fuzzing.http_verdict_for_json(verdict)
    before = len(http_receiver.test_sink.spans)
    status, rejected, message = _post(http_receiver, body, "application/json")
    f = fuzzing.check_answer(verdict, status, rejected, message, http_receiver.test_sink.spans[before:],
                             fuzzing.present_spans(body), sent, verdict.what)
    assert not f.all(), body[:300]


@FUZZ
@given(st.data())
def test_otlp_protobuf_bodies(http_receiver, data):
    rng = fuzzing.DrawRng(data)
    doc = fuzzing.export(rng, rng.randint(0, 10**6))
    body, verdict = fuzzing.mutate_protobuf(rng, doc)
    before = len(http_receiver.test_sink.spans)
    status, rejected, message = _post(http_receiver, body, "application/x-protobuf")
    f = fuzzing.check_answer(verdict, status, rejected, message, http_receiver.test_sink.spans[before:],
                             fuzzing.protobuf_present(body), len(fuzzing.export_spans(doc)), verdict.what)
    assert not f.all(), body[:300]


@FUZZ
@given(st.data())
def test_grpc_export_bytes(grpc_receiver, data):
    rng = fuzzing.DrawRng(data)
    doc = fuzzing.export(rng, rng.randint(0, 10**6))
    body, verdict = fuzzing.mutate_protobuf(rng, doc)
    before = len(grpc_receiver.test_sink.spans)
    rejected, message = 0, ""
    with grpc.insecure_channel(grpc_receiver.address) as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                   request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        try:
            response = call(body, timeout=30)
            status, rejected, message = 200, response.partial_success.rejected_spans, response.partial_success.error_message
        except grpc.RpcError as exc:
            status = 400 if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else 500
            message = f"{exc.code().name}: {exc.details()}"
    f = fuzzing.check_answer(verdict, status, rejected, message, grpc_receiver.test_sink.spans[before:],
                             fuzzing.protobuf_present(body), len(fuzzing.export_spans(doc)), verdict.what)
    assert not f.all(), body[:300]


@pytest.fixture(scope="module")
def strict_receiver(tmp_path_factory):
    sink = ListSink()
    with OTLPReceiver(port=0, jsonl_path=tmp_path_factory.mktemp("heads") / "spans.jsonl", sink=sink, token="tok",
                      header_timeout=1, read_timeout=1, max_body_bytes=4096) as rec:
        yield rec


HEAD_PARTS = [b"POST /v1/traces HTTP/1.1\r\n", b"GET /healthz HTTP/1.0\r\n", b"POST /v1/traces HTTP/2.0\r\n", b"BREW / X\r\n",
              b"Authorization: Bearer tok\r\n", b"Authorization: Bearer nope\r\n", b"Content-Type: application/json\r\n",
              b"Content-Type: application/x-protobuf\r\n", b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
              b"Content-Length: 99999999999999999999\r\n", b"Content-Length: 7\r\n", b"Transfer-Encoding: chunked\r\n",
              b"Content-Encoding: gzip\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n", b": no name\r\n",
              b"Bad Header\r\n", b"X: " + b"y" * 70000 + b"\r\n", b"\r\n", b"{}\r\n", b"5\r\nhello\r\n0\r\n\r\n",
              b"zz\r\n", b"\xff\xfe\r\n"]


@FUZZ
@given(st.lists(st.sampled_from(HEAD_PARTS) | st.binary(max_size=40), min_size=1, max_size=8))
def test_malformed_requests_get_an_answer_that_is_never_a_5xx(strict_receiver, parts):
    import socket

    with socket.create_connection(("127.0.0.1", strict_receiver.port), timeout=10) as s:
        try:
            s.sendall(b"".join(parts) + b"\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the receiver may answer (and close) before all is sent
            pass
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
    statuses = [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert all(status < 500 for status in statuses if status != 100), answer[:300]
    event(f"answered {statuses[-1] if statuses else None}")
