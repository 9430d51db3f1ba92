"""OTLP JSON <-> `SpanRecord`: exports as the OTel file exporter, ``run.jsonl`` and the receiver
write them (hex ids per the OTLP/JSON spec), and as protobuf-to-JSON writes them (base64 ids, which
is what vLLM's spans look like after some collectors). Output: hex ids, one export per line.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Iterable, Mapping

from auditor.collectors.spans import (SPAN_KINDS, STATUS_CODES, SpanError, SpanRecord, collect_error,
                                      group_by_resource_scope, normalize_id, normalize_kind, parse_nanos,
                                      status_dict)


# -- attribute values ------------------------------------------------------------------------------


def _any_value_json(v: Any) -> Any:
    """OTLP JSON AnyValue -> Python."""
    if not isinstance(v, Mapping):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "doubleValue" in v:
        d = v["doubleValue"]
        if isinstance(d, str):  # "NaN", "Infinity" in proto3 JSON
            try:
                return float(d)
            except ValueError:
                return d
        return d
    if "arrayValue" in v:
        return [_any_value_json(x) for x in (v["arrayValue"] or {}).get("values", []) or []]
    if "kvlistValue" in v:
        return _attrs_json((v["kvlistValue"] or {}).get("values", []) or [])
    if "bytesValue" in v:
        raw = v["bytesValue"]
        try:
            return base64.b64decode(raw)
        except (binascii.Error, ValueError, TypeError):
            return raw
    # snake_case variants (some hand-written dumps)
    for k in ("string_value", "bool_value", "int_value", "double_value"):
        if k in v:
            return _any_value_json({_camel(k): v[k]})
    return None  # empty AnyValue


def _camel(k: str) -> str:
    head, *rest = k.split("_")
    return head + "".join(p.title() for p in rest)


def _attrs_json(items: Any) -> dict[str, Any]:
    if isinstance(items, Mapping):  # already flat (non-standard but seen)
        return dict(items)
    out: dict[str, Any] = {}
    for kv in items or []:
        if isinstance(kv, Mapping) and "key" in kv:
            out[str(kv["key"])] = _any_value_json(kv.get("value", {}))
    return out


def _to_any_value(v: Any) -> dict[str, Any]:
    """Python -> OTLP JSON AnyValue."""
    t = type(v)
    if t is str:  # by far the most common: checked first, by exact type
        return {"stringValue": v}
    if t is int:
        return {"intValue": str(v)}
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return {"doubleValue": "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")}
        return {"doubleValue": v}
    if isinstance(v, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_to_any_value(x) for x in v]}}
    if isinstance(v, Mapping):
        return {"kvlistValue": {"values": [{"key": str(k), "value": _to_any_value(x)} for k, x in v.items()]}}
    if v is None:
        return {}
    return {"stringValue": str(v)}


def _attrs_to_json(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _to_any_value(v)} for k, v in attrs.items()]


# -- OTLP JSON -------------------------------------------------------------------------------------


def _scope_name(scope: Any) -> str | None:
    if isinstance(scope, Mapping):
        name = scope.get("name")
        return str(name) if name else None
    return None


def span_from_otlp_json(
    s: Mapping[str, Any], resource: dict[str, Any] | None = None, scope: str | None = None,
    source: str | None = None,
) -> SpanRecord:
    """One OTLP JSON span object (hex or base64 ids) -> SpanRecord. Raises `SpanError`."""
    if not isinstance(s, Mapping):
        raise SpanError(f"a span must be a JSON object, got {type(s).__name__}")
    raw_sid = s.get("spanId", s.get("span_id"))
    sid_text = str(raw_sid) if raw_sid is not None else None
    try:
        if raw_sid in (None, ""):
            raise SpanError("span has no spanId", field="spanId")
        span_id = normalize_id(raw_sid, 8, "spanId")
        raw_tid = s.get("traceId", s.get("trace_id"))
        if raw_tid in (None, ""):
            raise SpanError("span has no traceId", field="traceId")
        trace_id = normalize_id(raw_tid, 16, "traceId")
        parent_raw = s.get("parentSpanId", s.get("parent_span_id"))
        parent = normalize_id(parent_raw, 8, "parentSpanId") if parent_raw not in (None, "") else None
        if parent == "0" * 16:
            parent = None
        events = []
        for e in s.get("events") or []:
            if isinstance(e, Mapping):
                events.append({
                    "name": str(e.get("name", "")),
                    "time_unix_nano": parse_nanos(e.get("timeUnixNano", e.get("time_unix_nano")), "events.timeUnixNano"),
                    "attributes": _attrs_json(e.get("attributes")),
                })
        links = []
        for lk in s.get("links") or []:
            if isinstance(lk, Mapping):
                try:
                    links.append({
                        "trace_id": normalize_id(lk.get("traceId", lk.get("trace_id")), 16, "links.traceId"),
                        "span_id": normalize_id(lk.get("spanId", lk.get("span_id")), 8, "links.spanId"),
                        "attributes": _attrs_json(lk.get("attributes")),
                    })
                except SpanError:
                    continue  # a bad link does not make the span unusable
        st = s.get("status") or {}
        status = status_dict(st.get("code"), st.get("message")) if isinstance(st, Mapping) else status_dict(None)
        return SpanRecord.model_construct(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=str(s.get("name", "")),
            kind=normalize_kind(s.get("kind")),
            start_time_unix_nano=parse_nanos(s.get("startTimeUnixNano", s.get("start_time_unix_nano")), "startTimeUnixNano"),
            end_time_unix_nano=parse_nanos(s.get("endTimeUnixNano", s.get("end_time_unix_nano")), "endTimeUnixNano"),
            attributes=_attrs_json(s.get("attributes")),
            events=events,
            links=links,
            status=status,
            resource=dict(resource or {}),
            scope=scope,
            source=source,
        )
    except SpanError as exc:
        exc.span_id = exc.span_id or sid_text
        raise


def spans_from_otlp_json(
    data: Mapping[str, Any], source: str | None = None, errors: list[SpanError] | None = None,
) -> list[SpanRecord]:
    """An OTLP JSON export (``{"resourceSpans": [...]}``) -> spans.

    With ``errors`` given, a bad span is appended there and skipped (the others are kept);
    without it the first bad span raises `SpanError`. A document that is not an export raises."""
    if not isinstance(data, Mapping):
        raise SpanError(f"expected an OTLP export object, got {type(data).__name__}")
    rs_list = data.get("resourceSpans", data.get("resource_spans"))
    if rs_list is None:
        raise SpanError("not an OTLP trace export: no resourceSpans", field="resourceSpans")
    if not isinstance(rs_list, list):
        raise SpanError("resourceSpans must be a list", field="resourceSpans")
    out: list[SpanRecord] = []
    for rs in rs_list:
        if not isinstance(rs, Mapping):
            collect_error(errors, SpanError("resourceSpans entry is not an object", field="resourceSpans"))
            continue
        resource = _attrs_json((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans"))) or []:
            if not isinstance(ss, Mapping):
                collect_error(errors, SpanError("scopeSpans entry is not an object", field="scopeSpans"))
                continue
            scope = _scope_name(ss.get("scope", ss.get("instrumentationLibrary")))
            for s in ss.get("spans") or []:
                try:
                    out.append(span_from_otlp_json(s, resource, scope, source))
                except SpanError as exc:
                    collect_error(errors, exc)
    return out



def to_otlp_json(spans: Iterable[SpanRecord]) -> dict[str, Any]:
    """Spans -> one OTLP JSON export (hex ids), grouped by resource and scope."""
    return {"resourceSpans": [
        {"resource": {"attributes": _attrs_to_json(res)},
         "scopeSpans": [{"scope": {"name": name} if name else {}, "spans": [_span_json(sp) for sp in items]}
                        for name, items in scopes]}
        for res, scopes in group_by_resource_scope(spans)
    ]}


def _span_json(sp: SpanRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": sp.trace_id,
        "spanId": sp.span_id,
        "name": sp.name,
        "kind": SPAN_KINDS.index(sp.kind) if sp.kind in SPAN_KINDS else 0,
        "startTimeUnixNano": str(sp.start_time_unix_nano),
        "endTimeUnixNano": str(sp.end_time_unix_nano),
        "attributes": _attrs_to_json(sp.attributes),
    }
    if sp.parent_span_id:
        out["parentSpanId"] = sp.parent_span_id
    if sp.events:
        out["events"] = [
            {"timeUnixNano": str(e.get("time_unix_nano", 0)), "name": e.get("name", ""),
             "attributes": _attrs_to_json(e.get("attributes") or {})}
            for e in sp.events
        ]
    if sp.links:
        out["links"] = [
            {"traceId": lk["trace_id"], "spanId": lk["span_id"], "attributes": _attrs_to_json(lk.get("attributes") or {})}
            for lk in sp.links
        ]
    code = sp.status.get("code", "UNSET")
    status: dict[str, Any] = {}
    if code in STATUS_CODES and code != "UNSET":
        status["code"] = STATUS_CODES.index(code)
    if sp.status.get("message"):
        status["message"] = sp.status["message"]
    out["status"] = status
    return out


def to_otlp_json_line(spans: Iterable[SpanRecord]) -> str:
    """One OTLP JSON export on one line (no trailing newline): a line of ``run.jsonl``."""
    return json.dumps(to_otlp_json(spans), ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray)):
        return base64.b64encode(bytes(o)).decode("ascii")
    return str(o)
