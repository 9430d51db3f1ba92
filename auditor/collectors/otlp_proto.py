"""OTLP protobuf <-> `SpanRecord`: the ``ExportTraceServiceRequest`` that ``/v1/traces`` (HTTP)
and the gRPC ``TraceService`` receive, and that any OTLP receiver accepts. The protobuf classes
are imported only when a request is decoded from bytes or built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auditor.collectors.spans import (SPAN_KINDS, STATUS_CODES, SpanError, SpanRecord, check_nanos, collect_error,
                                      group_by_resource_scope, status_dict, unexpected)
from auditor.trajectory import MAX_NESTING


# -- attribute values ------------------------------------------------------------------------------
# Nesting is bounded as for OTLP JSON: the span is level 1, its attributes 2, a list or map value 3.


def _any_value_proto(v: Any, field: str, level: int) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which in ("array_value", "kvlist_value") and level > MAX_NESTING:
        raise SpanError(f"{field}: nested deeper than {MAX_NESTING} levels (the limit)", field=field)
    if which == "array_value":
        return [_any_value_proto(x, field, level + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value_proto(kv.value, field, level + 1) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _attrs_proto(items: Iterable[Any], field: str = "attributes", level: int = 2) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in items:
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":  # the common case, inlined
            out[kv.key] = v.string_value
        elif which in ("array_value", "kvlist_value"):
            out[kv.key] = _any_value_proto(v, f"{field}.{kv.key}", level + 1)
        else:
            out[kv.key] = getattr(v, which) if which is not None else None
    return out


def _set_any_value_proto(target: Any, v: Any) -> None:
    if isinstance(v, bool):
        target.bool_value = v
    elif isinstance(v, int):
        target.int_value = v
    elif isinstance(v, float):
        target.double_value = v
    elif isinstance(v, (bytes, bytearray)):
        target.bytes_value = bytes(v)
    elif isinstance(v, (list, tuple)):
        arr = target.array_value
        arr.SetInParent()
        for x in v:
            _set_any_value_proto(arr.values.add(), x)
    elif isinstance(v, Mapping):
        kvl = target.kvlist_value
        kvl.SetInParent()
        for k, x in v.items():
            kv = kvl.values.add()
            kv.key = str(k)
            _set_any_value_proto(kv.value, x)
    elif v is not None:
        target.string_value = str(v)


# -- OTLP protobuf -----------------------------------------------------------------------------------


def _span_from_proto(s: Any, resource: dict[str, Any], scope: str | None, source: str | None) -> SpanRecord:
    if len(s.trace_id) != 16:
        raise SpanError(f"trace_id has {len(s.trace_id)} bytes, expected 16", field="trace_id")
    if len(s.span_id) != 8:
        raise SpanError(f"span_id has {len(s.span_id)} bytes, expected 8", field="span_id")
    if s.parent_span_id and len(s.parent_span_id) != 8:
        raise SpanError("parent_span_id must have 8 bytes", field="parent_span_id")
    parent = s.parent_span_id.hex() if s.parent_span_id else None
    if parent == "0" * 16:
        parent = None
    return SpanRecord.model_construct(
        trace_id=s.trace_id.hex(),
        span_id=s.span_id.hex(),
        parent_span_id=parent,
        name=s.name,
        kind=SPAN_KINDS[s.kind] if 0 <= s.kind < len(SPAN_KINDS) else "UNSPECIFIED",
        start_time_unix_nano=check_nanos(s.start_time_unix_nano, "start_time_unix_nano"),
        end_time_unix_nano=check_nanos(s.end_time_unix_nano, "end_time_unix_nano"),
        attributes=_attrs_proto(s.attributes),
        events=[{"name": e.name, "time_unix_nano": check_nanos(e.time_unix_nano, f"events.{i}.time_unix_nano"),
                 "attributes": _attrs_proto(e.attributes, f"events.{i}.attributes", 4)}
                for i, e in enumerate(s.events)],
        links=[{"trace_id": lk.trace_id.hex(), "span_id": lk.span_id.hex(),
                "attributes": _attrs_proto(lk.attributes, f"links.{i}.attributes", 4)}
               for i, lk in enumerate(s.links) if len(lk.trace_id) == 16 and len(lk.span_id) == 8],
        status=status_dict(s.status.code, s.status.message),
        resource=resource,
        scope=scope,
        source=source,
    )


def spans_from_otlp_proto(request: Any, source: str | None = "otlp-http",
                          errors: list[SpanError] | None = None) -> list[SpanRecord]:
    """`ExportTraceServiceRequest` (or its serialized bytes: ``DecodeError`` when they are not one)
    -> spans. With ``errors`` given, a bad span (ids of the wrong length, a time past 2^63-1 ns,
    values nested too deep) is appended there and skipped; without it the first one raises."""
    if isinstance(request, (bytes, bytearray, memoryview)):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(bytes(request))
    out: list[SpanRecord] = []
    for rs in request.resource_spans:
        try:
            resource: dict[str, Any] | SpanError = _attrs_proto(rs.resource.attributes, "resource.attributes")
        except SpanError as exc:
            resource = exc
        for ss in rs.scope_spans:
            scope = ss.scope.name or None
            for s in ss.spans:
                try:
                    if isinstance(resource, SpanError):
                        raise SpanError(str(resource), field=resource.field)
                    out.append(_span_from_proto(s, resource, scope, source))
                except SpanError as exc:
                    exc.span_id = s.span_id.hex() or None
                    collect_error(errors, exc)
                except Exception as exc:  # noqa: BLE001 - a reader bug costs one span, with a message
                    err = unexpected(exc)
                    err.span_id = s.span_id.hex() or None
                    collect_error(errors, err)
    return out


def to_otlp_proto(spans: Iterable[SpanRecord]) -> Any:
    """Spans -> `ExportTraceServiceRequest` (for sending to any OTLP receiver)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    for res, scopes in group_by_resource_scope(spans):
        rs = req.resource_spans.add()
        for k, v in res.items():
            a = rs.resource.attributes.add()
            a.key = k
            _set_any_value_proto(a.value, v)
        for scope_name, items in scopes:
            ss = rs.scope_spans.add()
            if scope_name:
                ss.scope.name = scope_name
            for sp in items:
                s = ss.spans.add()
                s.trace_id = bytes.fromhex(sp.trace_id)
                s.span_id = bytes.fromhex(sp.span_id)
                if sp.parent_span_id:
                    s.parent_span_id = bytes.fromhex(sp.parent_span_id)
                s.name = sp.name
                s.kind = SPAN_KINDS.index(sp.kind) if sp.kind in SPAN_KINDS else 0
                s.start_time_unix_nano = sp.start_time_unix_nano
                s.end_time_unix_nano = sp.end_time_unix_nano
                for k, v in sp.attributes.items():
                    a = s.attributes.add()
                    a.key = k
                    _set_any_value_proto(a.value, v)
                for e in sp.events:
                    ev = s.events.add()
                    ev.name = e.get("name", "")
                    ev.time_unix_nano = int(e.get("time_unix_nano", 0))
                    for k, v in (e.get("attributes") or {}).items():
                        a = ev.attributes.add()
                        a.key = k
                        _set_any_value_proto(a.value, v)
                for lk in sp.links:
                    link = s.links.add()
                    link.trace_id = bytes.fromhex(lk["trace_id"])
                    link.span_id = bytes.fromhex(lk["span_id"])
                code = sp.status.get("code", "UNSET")
                s.status.code = STATUS_CODES.index(code) if code in STATUS_CODES else 0
                if sp.status.get("message"):
                    s.status.message = str(sp.status["message"])
    return req
