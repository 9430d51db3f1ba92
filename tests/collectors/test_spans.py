"""SpanRecord and its converters: OTLP JSON (hex and base64 ids), OTLP protobuf, the SDK's
ReadableSpan and console format, each fed from a real SDK pipeline where one exists."""

from __future__ import annotations

import base64
import json

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from auditor.collectors.otlp_json import spans_from_otlp_json, to_otlp_json, to_otlp_json_line
from auditor.collectors.otlp_proto import spans_from_otlp_proto, to_otlp_proto
from auditor.collectors.sdk_spans import span_from_console, spans_from_readable
from auditor.collectors.spans import SpanError, SpanRecord, iso_to_nanos, normalize_id


def _make_spans(provider):
    tracer = provider.get_tracer("test.scope")
    with tracer.start_as_current_span("root", attributes={"s": "v", "i": 3, "f": 1.5, "b": True,
                                                          "arr": ["x", "y"], "ints": [1, 2]}) as root:
        root.add_event("checkpoint", {"step": 1})
        with tracer.start_as_current_span("child", kind=SpanKind.SERVER, links=[Link(root.get_span_context(), {"why": "test"})]) as ch:
            ch.set_status(Status(StatusCode.ERROR, "bad"))


def test_ids_hex_0x_base64_and_bytes_normalise():
    hex_tid = "5b8aa5a2d2c872e8321cf37308d69df2"
    raw = bytes.fromhex(hex_tid)
    assert normalize_id(hex_tid.upper(), 16) == hex_tid
    assert normalize_id("0x" + hex_tid, 16) == hex_tid
    assert normalize_id(base64.b64encode(raw).decode(), 16) == hex_tid
    assert normalize_id(base64.urlsafe_b64encode(raw).decode().rstrip("="), 16) == hex_tid
    assert normalize_id(raw, 16) == hex_tid
    sid = "00f067aa0ba902b7"
    assert normalize_id(base64.b64encode(bytes.fromhex(sid)).decode(), 8) == sid
    with pytest.raises(SpanError, match="neither 16 hex"):
        normalize_id("nope", 8, "spanId")
    with pytest.raises(SpanError):
        normalize_id(b"\x00" * 7, 8)


def test_spanrecord_validates_direct_construction():
    r = SpanRecord(trace_id="0x" + "AB" * 16, span_id="q83vEjRWeJA=", parent_span_id="0" * 16, kind="SpanKind.CLIENT")
    assert r.trace_id == "ab" * 16 and r.span_id == "abcdef1234567890"
    assert r.parent_span_id is None and r.kind == "CLIENT" and r.status == {"code": "UNSET"}
    assert SpanRecord(trace_id="a" * 32, span_id="b" * 16, kind=2).kind == "SERVER"
    assert SpanRecord(trace_id="a" * 32, span_id="b" * 16, kind="SPAN_KIND_PRODUCER").kind == "PRODUCER"
    with pytest.raises(ValueError):
        SpanRecord(trace_id="a" * 31, span_id="b" * 16)


def test_readable_span_to_record_and_back_through_otlp_json(memory_spans):
    provider, exporter = memory_spans
    _make_spans(provider)
    recs = spans_from_readable(exporter.get_finished_spans())
    child, root = recs
    assert root.attributes == {"s": "v", "i": 3, "f": 1.5, "b": True, "arr": ["x", "y"], "ints": [1, 2]}
    assert root.events[0]["name"] == "checkpoint" and root.events[0]["attributes"] == {"step": 1}
    assert child.parent_span_id == root.span_id and child.kind == "SERVER"
    assert child.status == {"code": "ERROR", "message": "bad"}
    assert child.links == [{"trace_id": root.trace_id, "span_id": root.span_id, "attributes": {"why": "test"}}]
    assert root.scope == "test.scope" and root.resource["telemetry.sdk.name"] == "opentelemetry"
    line = to_otlp_json_line(recs)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == child.trace_id  # hex on the wire
    back = spans_from_otlp_json(doc)
    assert [b.model_dump() for b in back] == [r.model_dump() for r in recs]


def test_sdk_protobuf_encoding_parses_to_the_same_records(memory_spans):
    provider, exporter = memory_spans
    _make_spans(provider)
    finished = exporter.get_finished_spans()
    request = encode_spans(finished)  # exactly what OTLPSpanExporter sends
    from_proto = spans_from_otlp_proto(request.SerializeToString(), source=None)
    from_sdk = spans_from_readable(finished)
    assert [p.model_dump() for p in from_proto] == [s.model_dump() for s in from_sdk]
    # and our own encoder round-trips
    again = spans_from_otlp_proto(to_otlp_proto(from_sdk), source=None)
    assert [a.model_dump(exclude={"links"}) for a in again] == [s.model_dump(exclude={"links"}) for s in from_sdk]


def test_protobuf_to_json_base64_ids_are_accepted(memory_spans):
    """protobuf's own JSON mapping writes bytes (ids) as base64, like vLLM's spans via some collectors."""
    from google.protobuf.json_format import MessageToDict

    provider, exporter = memory_spans
    _make_spans(provider)
    finished = exporter.get_finished_spans()
    doc = MessageToDict(encode_spans(finished))
    assert not all(c in "0123456789abcdef" for c in doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"])
    recs = spans_from_otlp_json(doc)
    assert [r.model_dump() for r in recs] == [s.model_dump() for s in spans_from_readable(finished)]


def test_console_format_from_the_sdk(memory_spans):
    provider, exporter = memory_spans
    _make_spans(provider)
    finished = exporter.get_finished_spans()
    for span in finished:
        rec = span_from_console(json.loads(span.to_json()))
        sdk = spans_from_readable([span])[0]
        assert rec.trace_id == sdk.trace_id and rec.span_id == sdk.span_id
        assert rec.parent_span_id == sdk.parent_span_id and rec.kind == sdk.kind
        assert rec.attributes == sdk.attributes and rec.status == sdk.status
        # console times are printed to the microsecond
        assert abs(rec.start_time_unix_nano - sdk.start_time_unix_nano) < 1000


def test_iso_times_are_exact():
    assert iso_to_nanos("2026-01-01T00:00:00.000001Z") == 1767225600_000_001_000
    assert iso_to_nanos("2026-01-01T00:00:00Z") == 1767225600_000_000_000


def test_bad_spans_inside_an_export_are_reported_and_the_rest_kept():
    good = {"traceId": "a" * 32, "spanId": "b" * 16, "name": "ok", "kind": "SPAN_KIND_CLIENT",
            "startTimeUnixNano": "5", "endTimeUnixNano": "9",
            "attributes": [{"key": "n", "value": {"intValue": "42"}},
                           {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "x", "value": {"doubleValue": 1}}]}}},
                           {"key": "raw", "value": {"bytesValue": "aGk="}}, {"key": "empty", "value": {}}]}
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [
        good, {"traceId": "a" * 32, "name": "no id"}, {"traceId": "zz", "spanId": "c" * 16},
        {"traceId": "a" * 32, "spanId": "d" * 16, "startTimeUnixNano": "soon"}]}]}]}
    errors: list[SpanError] = []
    recs = spans_from_otlp_json(doc, errors=errors)
    assert [r.name for r in recs] == ["ok"]
    assert recs[0].attributes == {"n": 42, "kv": {"x": 1}, "raw": b"hi", "empty": None}
    assert recs[0].kind == "CLIENT" and recs[0].duration_ns == 4
    assert [e.field for e in errors] == ["spanId", "traceId", "startTimeUnixNano"]
    assert errors[1].span_id == "c" * 16
    with pytest.raises(SpanError):
        spans_from_otlp_json(doc)  # strict without an errors list
    with pytest.raises(SpanError, match="no resourceSpans"):
        spans_from_otlp_json({"resource_logs": []})


def test_to_otlp_json_groups_by_resource_and_scope():
    a = SpanRecord(trace_id="1" * 32, span_id="1" * 16, resource={"service.name": "a"}, scope="x")
    b = SpanRecord(trace_id="1" * 32, span_id="2" * 16, resource={"service.name": "a"}, scope="y")
    c = SpanRecord(trace_id="1" * 32, span_id="3" * 16, resource={"service.name": "b"}, scope="x")
    doc = to_otlp_json([a, b, c])
    assert len(doc["resourceSpans"]) == 2
    assert [len(ss["spans"]) for ss in doc["resourceSpans"][0]["scopeSpans"]] == [1, 1]
    assert json.loads(SpanRecord(trace_id="1" * 32, span_id="4" * 16, attributes={"b": b"\xff"}).model_dump_json())
