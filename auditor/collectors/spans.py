"""`SpanRecord`: one span in a form every part of auditor can use, and converters to and from
the span formats agents and servers emit.

Sources: OTLP protobuf (`ExportTraceServiceRequest`, what `/v1/traces` receives), OTLP JSON
(hex ids per the OTLP/JSON spec, or base64 ids as protobuf-to-JSON writes them, which is what
vLLM's spans look like after some collectors), the SDK's `ReadableSpan`, and the Python SDK
console format (`span.to_json()`). Output: OTLP JSON with hex ids, one export per line.

Attribute values are flattened to plain Python (str, bool, int, float, bytes, lists, dicts).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")

_HEX = re.compile(r"^[0-9a-f]*$")


class SpanError(ValueError):
    """A span (or export) that cannot be read; the message names the field."""

    def __init__(self, message: str, span_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.span_id = span_id
        self.field = field


class SpanRecord(BaseModel):
    """One finished span. Ids are lowercase hex; times are Unix nanoseconds."""

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    trace_id: str = Field(description="32 lowercase hex characters")
    span_id: str = Field(description="16 lowercase hex characters")
    parent_span_id: str | None = None
    name: str = ""
    kind: str = "INTERNAL"
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)
    status: dict[str, Any] = Field(default_factory=lambda: {"code": "UNSET"})
    resource: dict[str, Any] = Field(default_factory=dict)
    scope: str | None = None
    source: str | None = None  # "file:line" or "otlp-http"

    @field_validator("trace_id", mode="before")
    @classmethod
    def _trace_id(cls, v: Any) -> str:
        return normalize_id(v, 16, "trace_id")

    @field_validator("span_id", mode="before")
    @classmethod
    def _span_id(cls, v: Any) -> str:
        return normalize_id(v, 8, "span_id")

    @field_validator("parent_span_id", mode="before")
    @classmethod
    def _parent(cls, v: Any) -> str | None:
        if v in (None, "", b""):
            return None
        out = normalize_id(v, 8, "parent_span_id")
        return None if out == "0" * 16 else out

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        return normalize_kind(v)

    # -- convenience -------------------------------------------------------------------------
    @property
    def duration_ns(self) -> int:
        return max(0, self.end_time_unix_nano - self.start_time_unix_nano)

    @property
    def status_code(self) -> str:
        return str(self.status.get("code", "UNSET"))

    def where(self) -> tuple[str, int | None]:
        """(file, line) from ``source`` for issue reports."""
        src = self.source or "<spans>"
        head, sep, tail = src.rpartition(":")
        if sep and tail.isdigit():
            return head, int(tail)
        return src, None


# -- ids, kinds, status --------------------------------------------------------------------------


def normalize_id(value: Any, nbytes: int, field: str = "id") -> str:
    """Hex (any case, optional ``0x``), base64 (standard or URL-safe, padded or not) or raw bytes
    to lowercase hex of ``nbytes`` bytes. Lengths tell hex and base64 apart unambiguously."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != nbytes:
            raise SpanError(f"{field} has {len(value)} bytes, expected {nbytes}", field=field)
        return bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0 or value >= 1 << (8 * nbytes):
            raise SpanError(f"{field} out of range", field=field)
        return f"{value:0{2 * nbytes}x}"
    if not isinstance(value, str):
        raise SpanError(f"{field} must be a string, got {type(value).__name__}", field=field)
    s = value.strip()
    if s[:2].lower() == "0x":
        s = s[2:]
    if len(s) == 2 * nbytes and _HEX.match(s.lower()):
        return s.lower()
    # base64: 8 bytes -> 12 chars (11 unpadded), 16 bytes -> 24 (22 unpadded)
    try:
        padded = s + "=" * (-len(s) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == nbytes:
        return raw.hex()
    raise SpanError(f"{field} {value!r} is neither {2 * nbytes} hex characters nor base64 of {nbytes} bytes",
                    field=field)


def normalize_kind(v: Any) -> str:
    if v is None or v == "":
        return "UNSPECIFIED"
    if isinstance(v, int) and not isinstance(v, bool):
        if 0 <= v < len(SPAN_KINDS):
            return SPAN_KINDS[v]
        raise SpanError(f"span kind {v} out of range 0..5", field="kind")
    s = str(v).strip().upper()
    for prefix in ("SPAN_KIND_", "SPANKIND."):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if s.isdigit():
        return normalize_kind(int(s))
    if s in SPAN_KINDS:
        return s
    raise SpanError(f"unknown span kind {v!r}", field="kind")


def _status_code(v: Any) -> str:
    if v is None or v == "":
        return "UNSET"
    if isinstance(v, int) and not isinstance(v, bool):
        return STATUS_CODES[v] if 0 <= v < 3 else "UNSET"
    s = str(v).upper()
    for prefix in ("STATUS_CODE_", "STATUSCODE."):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if s.isdigit():
        return _status_code(int(s))
    return s if s in STATUS_CODES else "UNSET"


def _status(code: Any, message: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": _status_code(code)}
    if message:
        out["message"] = str(message)
    return out


def _nanos(v: Any, field: str) -> int:
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise SpanError(f"{field} must be an integer", field=field)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v.strip())
    raise SpanError(f"{field} {v!r} is not a decimal number of nanoseconds", field=field)


def iso_to_nanos(s: str | None) -> int:
    """ISO-8601 (as the SDK console exporter writes it, ``...Z``) to Unix nanoseconds, exactly."""
    if not s:
        return 0
    text = s.strip().replace("Z", "+00:00")
    frac_ns = 0
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if m and m.group(2):
        digits = m.group(2)[1:]
        frac_ns = int((digits + "000000000")[:9])
        text = m.group(1) + m.group(3)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        secs = calendar.timegm(dt.utctimetuple())
    else:
        secs = calendar.timegm(dt.timetuple())
    return secs * 1_000_000_000 + frac_ns


def nanos_to_iso(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 1000:06d}Z"


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


def _any_value_proto(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value_proto(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value_proto(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)


def _attrs_proto(items: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in items:
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":  # the common case, inlined
            out[kv.key] = v.string_value
        elif which in ("array_value", "kvlist_value"):
            out[kv.key] = _any_value_proto(v)
        else:
            out[kv.key] = getattr(v, which) if which is not None else None
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
                    "time_unix_nano": _nanos(e.get("timeUnixNano", e.get("time_unix_nano")), "events.timeUnixNano"),
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
        status = _status(st.get("code"), st.get("message")) if isinstance(st, Mapping) else _status(None)
        return SpanRecord.model_construct(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=str(s.get("name", "")),
            kind=normalize_kind(s.get("kind")),
            start_time_unix_nano=_nanos(s.get("startTimeUnixNano", s.get("start_time_unix_nano")), "startTimeUnixNano"),
            end_time_unix_nano=_nanos(s.get("endTimeUnixNano", s.get("end_time_unix_nano")), "endTimeUnixNano"),
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
            _fail(errors, SpanError("resourceSpans entry is not an object", field="resourceSpans"))
            continue
        resource = _attrs_json((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans"))) or []:
            if not isinstance(ss, Mapping):
                _fail(errors, SpanError("scopeSpans entry is not an object", field="scopeSpans"))
                continue
            scope = _scope_name(ss.get("scope", ss.get("instrumentationLibrary")))
            for s in ss.get("spans") or []:
                try:
                    out.append(span_from_otlp_json(s, resource, scope, source))
                except SpanError as exc:
                    _fail(errors, exc)
    return out


def _fail(errors: list[SpanError] | None, exc: SpanError) -> None:
    if errors is None:
        raise exc
    errors.append(exc)


def _group(spans: Iterable[SpanRecord]) -> list[tuple[dict[str, Any], list[tuple[str, list[SpanRecord]]]]]:
    """Spans grouped by resource, then by scope, in first-seen order."""
    groups: dict[str, tuple[dict[str, Any], dict[str, list[SpanRecord]]]] = {}
    keys: dict[int, str] = {}  # spans of one export share their resource dict: serialise it once
    for sp in spans:
        rkey = keys.get(id(sp.resource))
        if rkey is None:
            rkey = keys[id(sp.resource)] = json.dumps(sp.resource, sort_keys=True, default=str)
        _, scopes = groups.setdefault(rkey, (sp.resource, {}))
        scopes.setdefault(sp.scope or "", []).append(sp)
    return [(res, list(scopes.items())) for res, scopes in groups.values()]


def to_otlp_json(spans: Iterable[SpanRecord]) -> dict[str, Any]:
    """Spans -> one OTLP JSON export (hex ids), grouped by resource and scope."""
    return {"resourceSpans": [
        {"resource": {"attributes": _attrs_to_json(res)},
         "scopeSpans": [{"scope": {"name": name} if name else {}, "spans": [_span_json(sp) for sp in items]}
                        for name, items in scopes]}
        for res, scopes in _group(spans)
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


# -- OTLP protobuf -----------------------------------------------------------------------------------


def spans_from_otlp_proto(request: Any, source: str | None = "otlp-http",
                          errors: list[SpanError] | None = None) -> list[SpanRecord]:
    """`ExportTraceServiceRequest` (or its serialized bytes) -> spans."""
    if isinstance(request, (bytes, bytearray, memoryview)):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(bytes(request))
    out: list[SpanRecord] = []
    for rs in request.resource_spans:
        resource = _attrs_proto(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope.name or None
            for s in ss.spans:
                sid = s.span_id.hex()
                try:
                    if len(s.trace_id) != 16:
                        raise SpanError(f"trace_id has {len(s.trace_id)} bytes, expected 16", sid, "trace_id")
                    if len(s.span_id) != 8:
                        raise SpanError(f"span_id has {len(s.span_id)} bytes, expected 8", sid, "span_id")
                    if s.parent_span_id and len(s.parent_span_id) != 8:
                        raise SpanError("parent_span_id must have 8 bytes", sid, "parent_span_id")
                except SpanError as exc:
                    _fail(errors, exc)
                    continue
                parent = s.parent_span_id.hex() if s.parent_span_id else None
                if parent == "0" * 16:
                    parent = None
                out.append(SpanRecord.model_construct(
                    trace_id=s.trace_id.hex(),
                    span_id=sid,
                    parent_span_id=parent,
                    name=s.name,
                    kind=SPAN_KINDS[s.kind] if 0 <= s.kind < len(SPAN_KINDS) else "UNSPECIFIED",
                    start_time_unix_nano=s.start_time_unix_nano,
                    end_time_unix_nano=s.end_time_unix_nano,
                    attributes=_attrs_proto(s.attributes),
                    events=[{"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": _attrs_proto(e.attributes)}
                            for e in s.events],
                    links=[{"trace_id": lk.trace_id.hex(), "span_id": lk.span_id.hex(),
                            "attributes": _attrs_proto(lk.attributes)} for lk in s.links],
                    status=_status(s.status.code, s.status.message),
                    resource=resource,
                    scope=scope,
                    source=source,
                ))
    return out


def to_otlp_proto(spans: Iterable[SpanRecord]) -> Any:
    """Spans -> `ExportTraceServiceRequest` (for sending to any OTLP receiver)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    for res, scopes in _group(spans):
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


# -- SDK ReadableSpan ---------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def span_from_readable(span: Any, source: str | None = None) -> SpanRecord:
    """An SDK `ReadableSpan` (what exporters receive) -> SpanRecord."""
    ctx = span.context
    parent = span.parent.span_id if span.parent is not None else None
    status = span.status
    scope = span.instrumentation_scope.name if span.instrumentation_scope is not None else None
    return SpanRecord.model_construct(
        trace_id=f"{ctx.trace_id:032x}",
        span_id=f"{ctx.span_id:016x}",
        parent_span_id=f"{parent:016x}" if parent else None,
        name=span.name,
        kind=_sdk_kind(span.kind),
        start_time_unix_nano=int(span.start_time or 0),
        end_time_unix_nano=int(span.end_time or 0),
        attributes=_plain(dict(span.attributes or {})),
        events=[{"name": e.name, "time_unix_nano": int(e.timestamp or 0), "attributes": _plain(dict(e.attributes or {}))}
                for e in span.events],
        links=[{"trace_id": f"{lk.context.trace_id:032x}", "span_id": f"{lk.context.span_id:016x}",
                "attributes": _plain(dict(lk.attributes or {}))} for lk in span.links],
        status=_status(status.status_code.name if status is not None else None,
                       status.description if status is not None else None),
        resource=_plain(dict(span.resource.attributes)) if span.resource is not None else {},
        scope=scope or None,
        source=source,
    )


def _sdk_kind(kind: Any) -> str:
    """The SDK's SpanKind (INTERNAL=0 ... CONSUMER=4, unlike OTLP's numbering) -> name."""
    if kind is None:
        return "INTERNAL"
    name = getattr(kind, "name", None)
    if name is None and isinstance(kind, int):
        from opentelemetry.trace import SpanKind

        try:
            name = SpanKind(kind).name
        except ValueError:
            return "UNSPECIFIED"
    return name if name in SPAN_KINDS else "UNSPECIFIED"


def spans_from_readable(spans: Iterable[Any], source: str | None = None) -> list[SpanRecord]:
    return [span_from_readable(s, source) for s in spans]


# -- Python SDK console format ---------------------------------------------------------------------------


def span_from_console(d: Mapping[str, Any], source: str | None = None) -> SpanRecord:
    """One ``span.to_json()`` object (ConsoleSpanExporter) -> SpanRecord. Raises `SpanError`."""
    if not isinstance(d, Mapping):
        raise SpanError(f"a console span must be a JSON object, got {type(d).__name__}")
    ctx = d.get("context")
    if not isinstance(ctx, Mapping):
        raise SpanError("console span has no context", field="context")
    sid_raw = ctx.get("span_id")
    try:
        span_id = normalize_id(sid_raw, 8, "context.span_id")
        trace_id = normalize_id(ctx.get("trace_id"), 16, "context.trace_id")
        parent = d.get("parent_id")
        parent_id = normalize_id(parent, 8, "parent_id") if parent not in (None, "") else None
        st = d.get("status") or {}
        try:
            start = iso_to_nanos(d.get("start_time"))
            end = iso_to_nanos(d.get("end_time"))
        except ValueError as exc:
            raise SpanError(f"bad timestamp: {exc}", field="start_time") from exc
        events = []
        for e in d.get("events") or []:
            if isinstance(e, Mapping):
                try:
                    ts = iso_to_nanos(e.get("timestamp"))
                except ValueError:
                    ts = 0
                events.append({"name": str(e.get("name", "")), "time_unix_nano": ts,
                               "attributes": dict(e.get("attributes") or {})})
        links = []
        for lk in d.get("links") or []:
            c = (lk or {}).get("context") or {}
            try:
                links.append({"trace_id": normalize_id(c.get("trace_id"), 16), "span_id": normalize_id(c.get("span_id"), 8),
                              "attributes": dict(lk.get("attributes") or {})})
            except SpanError:
                continue
        res = d.get("resource") or {}
        resource = dict(res.get("attributes") or {}) if isinstance(res, Mapping) else {}
        return SpanRecord.model_construct(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_id if parent_id != "0" * 16 else None,
            name=str(d.get("name", "")),
            kind=normalize_kind(d.get("kind")),
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=dict(d.get("attributes") or {}),
            events=events,
            links=links,
            status=_status(st.get("status_code"), st.get("description")) if isinstance(st, Mapping) else _status(None),
            resource=resource,
            scope=None,
            source=source,
        )
    except SpanError as exc:
        exc.span_id = exc.span_id or (str(sid_raw) if sid_raw else None)
        raise
