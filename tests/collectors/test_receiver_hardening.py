"""The receivers under hostile or broken input: every malformed body gets a 4xx (never a status a
client retries), bad spans are counted in partial success with the same validation for the file
and the store, ids are parsed by format, and idle or stalled connections cannot keep an
authenticated client out."""

from __future__ import annotations

import json
import resource
import socket
import time

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from test_receiver import ListSink, post, records, stored_ids
from auditor.collectors.grpc_receiver import OTLPGrpcReceiver
from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.otlp_proto import to_otlp_proto
from auditor.collectors.receiver import OTLPReceiver

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def receiver(tmp_path):
    sink = ListSink()
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "spans.jsonl", sink=sink) as rec:
        rec.test_sink = sink  # type: ignore[attr-defined]
        yield rec


def _doc(n: int = 1, **span_fields) -> dict:
    doc = to_otlp_json(records(n))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(span_fields)
    return doc


def _body(doc) -> bytes:
    return json.dumps(doc).encode() if not isinstance(doc, (bytes, str)) else (doc.encode() if isinstance(doc, str) else doc)


def _nested_attr(levels: int) -> dict:
    value: dict = {"stringValue": "leaf"}
    for _ in range(levels):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


@pytest.mark.parametrize("name, doc", [
    ("nested 5000 levels", '{"resourceSpans": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("attribute nested 100 levels", _doc(attributes=[{"key": "deep", "value": _nested_attr(100)}])),
    ("NaN start time", _doc(startTimeUnixNano=float("nan"))),
    ("Infinity end time", _doc(endTimeUnixNano=float("inf"))),
    ("resource is a number", {"resourceSpans": [{**to_otlp_json(records(1))["resourceSpans"][0], "resource": 5}]}),
    ("spans is a number", {"resourceSpans": [{"scopeSpans": [{"spans": 7}]}]}),
    ("attributes is a float", _doc(attributes=1.5)),
    ("events is an int", _doc(events=3)),
    ("time past 2^64", _doc(startTimeUnixNano="123456789012345678901234567890")),
])
def test_malformed_bodies_get_400_and_store_nothing(receiver, name, doc):
    status, body, _ = post(receiver, _body(doc))
    assert status == 400, (name, body)
    assert json.loads(body)["code"] == 3  # INVALID_ARGUMENT
    assert receiver.test_sink.spans == [] and receiver.stats.spans == 0


def test_base64_id_that_starts_with_0X_is_base64(receiver):
    doc = _doc(spanId="0XSGQd8vX9w=")  # 12 characters: base64 of 8 bytes, not "0x" + hex
    status, body, _ = post(receiver, _body(doc))
    assert (status, json.loads(body)) == (200, {})
    assert [s.span_id for s in receiver.test_sink.spans] == ["d1748641df2f5fdc"]
    assert ("ab" * 16, "d1748641df2f5fdc") in stored_ids(receiver)


def test_out_of_range_times_are_rejected_in_partial_success_for_both_sinks(receiver):
    doc = to_otlp_json(records(5))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["startTimeUnixNano"] = "123456789012345678901234567890"
    spans[1]["endTimeUnixNano"] = "-5"
    spans[2]["startTimeUnixNano"] = str(2**63)  # one past what DuckDB's BIGINT holds
    spans[3]["events"] = [{"name": "e", "timeUnixNano": str(2**64 - 1)}]
    status, body, _ = post(receiver, _body(doc))
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "4"
    assert f"span {spans[0]['spanId']} startTimeUnixNano" in partial["errorMessage"]
    assert "out of range" in partial["errorMessage"]
    kept = spans[4]["spanId"]
    assert [s.span_id for s in receiver.test_sink.spans] == [kept]
    assert [sid for _, sid in stored_ids(receiver)] == [kept]  # the file holds what the sink holds
    assert receiver.stats.rejected_spans == 4


def test_protobuf_time_past_int64_is_rejected_in_partial_success(receiver):
    request = to_otlp_proto(records(2))
    request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**64 - 1
    status, body, _ = post(receiver, request.SerializeToString(), {"Content-Type": "application/x-protobuf"})
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert partial.rejected_spans == 1 and "start_time_unix_nano" in partial.error_message
    assert len(receiver.test_sink.spans) == 1


def test_lone_surrogate_is_stored_as_replacement_char_with_a_warning(tmp_path):
    """--db only (no file): the store gets the span, the client a 200 with a warning, never a 503."""
    import auditor.store as store_mod

    store = store_mod.Store(tmp_path / "audit.duckdb")
    try:
        with OTLPReceiver(port=0, sink=store.add_spans) as rec:
            body = _body(_doc(name="x")).replace(b'"name": "x"', b'"name": "a\\ud800b"')
            status, resp, _ = post(rec, body)
        assert status == 200, resp
        partial = json.loads(resp)["partialSuccess"]
        assert partial["rejectedSpans"] == "0" and "surrogate" in partial["errorMessage"]
        assert "name" in partial["errorMessage"]
        names = [r[0] for r in store.connection.execute("SELECT name FROM spans").fetchall()]
        assert names == ["a\ufffdb"]
    finally:
        store.close()


# -- connections ------------------------------------------------------------------------------


def _idle_connections(port: int, n: int, partial_head: bool = False) -> list[socket.socket]:
    out = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if partial_head and i % 2:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # never finished
        out.append(s)
    return out


def test_idle_unauthenticated_connections_do_not_block_an_authenticated_request(tmp_path):
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", token="tok", max_connections=16,
                      header_timeout=60) as rec:
        idle = _idle_connections(rec.port, 100, partial_head=True)
        try:
            status, _, _ = post(rec, _body(to_otlp_json(records(3))), {"Authorization": "Bearer tok"})
            assert status == 200
            assert rec.stats.spans == 3 and rec.stats.evicted_connections >= 100 - 16
        finally:
            for s in idle:
                s.close()


def test_more_than_1024_descriptors_still_get_answers(tmp_path):
    """The old receiver select()ed on each connection: past descriptor 1024 it closed requests
    without a word. Here the receiver's own sockets sit above 1024 (the test holds the others)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 3000:
        pytest.skip(f"needs 3000 open files, the limit is {soft}")
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", token="tok", header_timeout=60) as rec:
        idle = _idle_connections(rec.port, 1100)
        try:
            for k in range(3):
                status, _, _ = post(rec, _body(to_otlp_json(records(2, start=10 * k + 1))), {"Authorization": "Bearer tok"})
                assert status == 200
            assert rec.stats.spans == 6 and rec.stats.evicted_connections > 0
        finally:
            for s in idle:
                s.close()


def test_when_every_connection_is_busy_a_new_one_gets_503_with_retry_after(tmp_path):
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", max_connections=2) as rec:
        busy = []
        for _ in range(2):  # past the head: authenticated, the body still coming
            s = socket.create_connection(("127.0.0.1", rec.port), timeout=5)
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{")
            busy.append(s)
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", rec.port), timeout=5) as s:
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer, answer
        assert rec.stats.refused_connections == 1
        for s in busy:
            s.close()


def test_a_stalled_head_is_closed_after_header_timeout(tmp_path):
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", header_timeout=0.5) as rec:
        with socket.create_connection(("127.0.0.1", rec.port), timeout=5) as s:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
            t0 = time.monotonic()
            answer = s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3


def test_the_token_is_checked_before_any_body_byte(tmp_path):
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", token="tok", read_timeout=30) as rec:
        with socket.create_connection(("127.0.0.1", rec.port), timeout=5) as s:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            t0 = time.monotonic()
            answer = s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 401") and time.monotonic() - t0 < 2


# -- gRPC -------------------------------------------------------------------------------------


def _raw_call(rec, payload: bytes):
    with grpc.insecure_channel(rec.address) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        try:
            return call(payload, timeout=5), None
        except grpc.RpcError as exc:
            return None, exc


def test_grpc_malformed_protobuf_is_invalid_argument(tmp_path):
    sink = ListSink()
    with OTLPGrpcReceiver(port=0, sink=sink) as rec:
        for payload in (b"\xff\xfe garbage", b"\x0a\x05\x0a\x03\xff\xff\xff", b"\x0a" * 3):
            response, err = _raw_call(rec, payload)
            assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (payload, response)
        request = to_otlp_proto(records(3))
        request.resource_spans[0].scope_spans[0].spans[1].end_time_unix_nano = 2**64 - 1
        response, err = _raw_call(rec, request.SerializeToString())
        assert err is None and response.partial_success.rejected_spans == 1
        assert "end_time_unix_nano" in response.partial_success.error_message
        assert len(sink.spans) == 2 and rec.stats.rejected_requests == 3


def test_expect_100_continue(tmp_path):
    body = _body(to_otlp_json(records(2)))
    with OTLPReceiver(port=0, jsonl_path=tmp_path / "t.jsonl", max_body_bytes=len(body) + 10) as rec:
        with socket.create_connection(("127.0.0.1", rec.port), timeout=5) as s:
            head = (f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            s.sendall(head)
            assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue")
            s.sendall(body)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", rec.port), timeout=5) as s:  # too large: no go-ahead
            s.sendall(head.replace(f"Length: {len(body)}".encode(), b"Length: 99999"))
            assert s.recv(4096).startswith(b"HTTP/1.1 413")
        assert rec.stats.spans == 2
