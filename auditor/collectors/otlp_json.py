"""OTLP JSON <-> `SpanRecord`: exports as the OTel file exporter, ``run.jsonl`` and the receiver
write them (hex ids per the OTLP/JSON spec), and as protobuf-to-JSON writes them (base64 ids, which
is what vLLM's spans look like after some collectors). Output: hex ids, one export per line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from auditor.collectors.sanitize import DepthError, clean, holds_lone_surrogate, loads, may_hold_surrogates
from auditor.collectors.spans import (SPAN_KINDS, STATUS_CODES, SpanError, SpanRecord, collect_error,
                                      group_by_resource_scope, normalize_id, normalize_kind, parse_nanos,
                                      status_dict, unexpected, as_list, as_object, as_text)
from auditor.trajectory import MAX_NESTING


# -- attribute values ------------------------------------------------------------------------------
# Reading checks types as it goes: a value of the wrong JSON type raises `SpanError` naming the
# field (relative to the span), and containers may not nest deeper than `MAX_NESTING` counted from
# the span (the span is level 1, its attributes 2, a list or map value 3, ...).

_INT64 = (-(2**63), 2**63 - 1)


def _too_deep(field: str) -> SpanError:
    return SpanError(f"{field}: nested deeper than {MAX_NESTING} levels (the limit)", field=field)


def _any_value_json(v: Any, field: str, level: int) -> Any:
    """OTLP JSON AnyValue -> Python; ``level``: the nesting level a list or map value would take."""
    if not isinstance(v, Mapping):  # a bare value (non-standard but seen)
        return _bare(v, field, level)
    if "stringValue" in v:
        sv = v["stringValue"]
        if not isinstance(sv, str):
            raise SpanError(f"{field}.stringValue must be a string, got {type(sv).__name__}", field=field)
        return sv
    if "boolValue" in v:
        bv = v["boolValue"]
        if not isinstance(bv, bool):
            raise SpanError(f"{field}.boolValue must be true or false, got {type(bv).__name__}", field=field)
        return bv
    if "intValue" in v:
        iv = v["intValue"]
        if isinstance(iv, str) and _INT_TEXT.fullmatch(iv.strip()):
            iv = int(iv.strip())
        if not isinstance(iv, int) or isinstance(iv, bool) or not _INT64[0] <= iv <= _INT64[1]:
            raise SpanError(f"{field}.intValue must be a 64-bit integer (or its decimal string)", field=field)
        return iv
    if "doubleValue" in v:
        d = v["doubleValue"]
        if isinstance(d, str):  # "NaN", "Infinity", "-Infinity" (proto3 JSON), or a number as text
            try:
                return float(d)
            except ValueError:
                raise SpanError(f"{field}.doubleValue {d[:40]!r} is not a number", field=field) from None
        if isinstance(d, bool) or not isinstance(d, (int, float)):
            raise SpanError(f"{field}.doubleValue must be a number, got {type(d).__name__}", field=field)
        return float(d)
    if "arrayValue" in v:
        if level > MAX_NESTING:
            raise _too_deep(field)
        values = _values(v["arrayValue"], f"{field}.arrayValue")
        return [_any_value_json(x, f"{field}.arrayValue.values.{i}", level + 1) for i, x in enumerate(values)]
    if "kvlistValue" in v:
        if level > MAX_NESTING:
            raise _too_deep(field)
        return _attrs_json(_values(v["kvlistValue"], f"{field}.kvlistValue"), f"{field}.kvlistValue.values", level)
    if "bytesValue" in v:
        raw = v["bytesValue"]
        try:
            if not isinstance(raw, str):
                raise TypeError
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise SpanError(f"{field}.bytesValue must be base64 text", field=field) from None
    # snake_case variants (some hand-written dumps)
    for k in ("string_value", "bool_value", "int_value", "double_value"):
        if k in v:
            return _any_value_json({_camel(k): v[k]}, field, level)
    return None  # empty AnyValue


_INT_TEXT = re.compile(r"-?[0-9]{1,19}")


def _bare(v: Any, field: str, level: int) -> Any:
    """A plain JSON value where an AnyValue belongs (and the values of a flat attribute object):
    kept, under the rules AnyValue has (64-bit integers, bounded nesting), so that what is kept
    can be written as OTLP and read back."""
    if isinstance(v, int) and not isinstance(v, bool):
        if not _INT64[0] <= v <= _INT64[1]:
            raise SpanError(f"{field} must be a 64-bit integer", field=field)
        return v
    if isinstance(v, (list, dict)):
        if level > MAX_NESTING:
            raise _too_deep(field)
        if isinstance(v, list):
            return [_bare(x, f"{field}.{i}", level + 1) for i, x in enumerate(v)]
        return {k: _bare(x, f"{field}.{k}", level + 1) for k, x in v.items()}
    return v


def _values(container: Any, field: str) -> list[Any]:
    """The ``values`` list of an ArrayValue / KeyValueList (absent or null: empty)."""
    if container is None:
        return []
    if not isinstance(container, Mapping):
        raise SpanError(f"{field} must be an object with values, got {type(container).__name__}", field=field)
    values = container.get("values")
    if values is None:
        return []
    if not isinstance(values, list):
        raise SpanError(f"{field}.values must be a list, got {type(values).__name__}", field=field)
    return values


def _camel(k: str) -> str:
    head, *rest = k.split("_")
    return head + "".join(p.title() for p in rest)


def _attrs_json(items: Any, field: str = "attributes", level: int = 2) -> dict[str, Any]:
    """A list of ``{"key", "value"}`` (or, non-standard, a flat object) -> a dict at ``level``."""
    if items is None:
        return {}
    if level > MAX_NESTING:
        raise _too_deep(field)
    if isinstance(items, Mapping):  # already flat (non-standard but seen)
        return _bare(dict(items), field, level)
    if not isinstance(items, list):
        raise SpanError(f"{field} must be a list of key-value objects, got {type(items).__name__}", field=field)
    out: dict[str, Any] = {}
    for i, kv in enumerate(items):
        if not isinstance(kv, Mapping) or not isinstance(kv.get("key"), str):
            raise SpanError(f"{field}.{i} must be an object with a string key", field=f"{field}.{i}")
        out[kv["key"]] = _any_value_json(kv.get("value"), f"{field}.{i}.value", level + 1)
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


def _get(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    return d[camel] if camel in d else d.get(snake)


def _scope_name(scope: Any) -> str | None:
    return as_text(as_object(scope, "scope").get("name"), "scope.name") or None


def _resource(rs: Mapping[str, Any]) -> dict[str, Any]:
    return _attrs_json(as_object(rs.get("resource"), "resource").get("attributes"), "resource.attributes", 2)


def _event(e: Any, i: int) -> dict[str, Any]:
    field = f"events.{i}"
    e = as_object(e, field)
    return {"name": as_text(e.get("name"), f"{field}.name"),
            "time_unix_nano": parse_nanos(_get(e, "timeUnixNano", "time_unix_nano"), f"{field}.timeUnixNano"),
            "attributes": _attrs_json(e.get("attributes"), f"{field}.attributes", 4)}


def _link(lk: Any, i: int) -> dict[str, Any] | None:
    field = f"links.{i}"
    lk = as_object(lk, field)
    attrs = _attrs_json(lk.get("attributes"), f"{field}.attributes", 4)
    try:
        return {"trace_id": normalize_id(_get(lk, "traceId", "trace_id"), 16, f"{field}.traceId"),
                "span_id": normalize_id(_get(lk, "spanId", "span_id"), 8, f"{field}.spanId"), "attributes": attrs}
    except SpanError:
        return None  # a link to a span we cannot name does not make this span unusable


def span_from_otlp_json(
    s: Mapping[str, Any], resource: dict[str, Any] | None = None, scope: str | None = None,
    source: str | None = None,
) -> SpanRecord:
    """One OTLP JSON span object (hex or base64 ids) -> SpanRecord. Raises `SpanError` naming the
    field for anything of the wrong type, out of range or nested too deep."""
    if not isinstance(s, Mapping):
        raise SpanError(f"a span must be a JSON object, got {type(s).__name__}")
    raw_sid = _get(s, "spanId", "span_id")
    sid_text = raw_sid[:64] if isinstance(raw_sid, str) else None
    try:
        if raw_sid in (None, ""):
            raise SpanError("span has no spanId", field="spanId")
        span_id = normalize_id(raw_sid, 8, "spanId")
        raw_tid = _get(s, "traceId", "trace_id")
        if raw_tid in (None, ""):
            raise SpanError("span has no traceId", field="traceId")
        trace_id = normalize_id(raw_tid, 16, "traceId")
        parent_raw = _get(s, "parentSpanId", "parent_span_id")
        parent = normalize_id(parent_raw, 8, "parentSpanId") if parent_raw not in (None, "") else None
        if parent == "0" * 16:
            parent = None
        st = as_object(s.get("status"), "status")
        message = as_text(st.get("message"), "status.message")
        links = [lk for i, x in enumerate(as_list(s.get("links"), "links")) if (lk := _link(x, i)) is not None]
        return SpanRecord.model_construct(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=as_text(s.get("name"), "name"),
            kind=normalize_kind(s.get("kind")),
            start_time_unix_nano=parse_nanos(_get(s, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
            end_time_unix_nano=parse_nanos(_get(s, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
            attributes=_attrs_json(s.get("attributes"), "attributes", 2),
            events=[_event(e, i) for i, e in enumerate(as_list(s.get("events"), "events"))],
            links=links,
            status=status_dict(st.get("code"), message),
            resource=dict(resource or {}),
            scope=scope,
            source=source,
        )
    except SpanError as exc:
        exc.span_id = exc.span_id or sid_text
        raise


def _span_ids(spans: Any) -> list[str | None]:
    """The span ids of a list of spans (as written), for errors that reject them all."""
    if not isinstance(spans, list):
        return [None]
    return [str(_get(sp, "spanId", "span_id"))[:64] if isinstance(sp, Mapping) else None for sp in spans] or []


def spans_from_otlp_json(
    data: Mapping[str, Any], source: str | None = None, errors: list[SpanError] | None = None,
) -> list[SpanRecord]:
    """An OTLP JSON export (``{"resourceSpans": [...]}``) -> spans.

    With ``errors`` given, a bad span is appended there and skipped (the others are kept); a bad
    resource or scope rejects each of its spans (one error per span, so counts stay right);
    without ``errors`` the first bad span raises `SpanError`. A document that is not an export raises."""
    if not isinstance(data, Mapping):
        raise SpanError(f"expected an OTLP export object, got {type(data).__name__}")
    rs_list = _get(data, "resourceSpans", "resource_spans")
    if rs_list is None:
        raise SpanError("not an OTLP trace export: no resourceSpans", field="resourceSpans")
    if not isinstance(rs_list, list):
        raise SpanError("resourceSpans must be a list", field="resourceSpans")
    out: list[SpanRecord] = []
    for r, rs in enumerate(rs_list):
        if not isinstance(rs, Mapping):
            collect_error(errors, SpanError(f"resourceSpans.{r} is not an object", field=f"resourceSpans.{r}"))
            continue
        ss_list = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans")))
        if ss_list is not None and not isinstance(ss_list, list):
            collect_error(errors, SpanError(f"resourceSpans.{r}.scopeSpans must be a list, got {type(ss_list).__name__}",
                                            field="scopeSpans"))
            continue
        try:
            resource: dict[str, Any] | SpanError = _resource(rs)
        except SpanError as exc:
            resource = exc
        for k, ss in enumerate(ss_list or []):
            if not isinstance(ss, Mapping):
                collect_error(errors, SpanError(f"resourceSpans.{r}.scopeSpans.{k} is not an object", field="scopeSpans"))
                continue
            spans = ss.get("spans")
            try:
                if isinstance(resource, SpanError):
                    raise resource
                scope = _scope_name(ss.get("scope", ss.get("instrumentationLibrary")))
                spans = as_list(spans, "spans")
            except SpanError as exc:  # the whole scope is unusable: each of its spans is rejected
                for sid in _span_ids(spans):
                    collect_error(errors, SpanError(str(exc), span_id=sid, field=exc.field))
                continue
            for s in spans:
                try:
                    out.append(span_from_otlp_json(s, resource, scope, source))
                except SpanError as exc:
                    collect_error(errors, exc)
                except Exception as exc:  # noqa: BLE001 - a reader bug costs one span, with a message
                    collect_error(errors, unexpected(exc, s))
    return out


def locate(data: Any, path: str) -> tuple[str | None, str]:
    """(span id, field within the span) of a dotted path into an OTLP JSON export, for reports;
    (None, path) when the path is outside any span."""
    parts = path.split(".")
    for i in range(len(parts) - 1):
        if parts[i] == "spans" and parts[i + 1].isdigit():
            node = data
            try:
                for p in parts[: i + 2]:
                    node = node[int(p)] if isinstance(node, list) else node[p]
            except (KeyError, IndexError, TypeError, ValueError):
                return None, path
            sid = _get(node, "spanId", "span_id") if isinstance(node, Mapping) else None
            return (str(sid)[:64] if sid is not None else None), ".".join(parts[i + 2:])
    return None, path


def parse_otlp_json(text: str | bytes, source: str | None = None, errors: list[SpanError] | None = None,
                    warnings: list[SpanError] | None = None) -> list[SpanRecord]:
    """OTLP JSON text (one export) -> spans, for untrusted input: nesting too deep for the parser
    raises `SpanError`; lone surrogates are replaced by U+FFFD (one warning per string, naming the
    span and field, in ``warnings``). Raises ``json.JSONDecodeError`` for text that is not JSON."""
    try:
        data = loads(text)
    except DepthError as exc:
        raise SpanError(f"the export is {exc}") from None
    if may_hold_surrogates(text) and holds_lone_surrogate(data):
        data, paths = clean(data)
        for path in paths:
            sid, field = locate(data, path)
            if warnings is not None:
                warnings.append(SpanError("lone UTF-16 surrogate replaced by U+FFFD", span_id=sid, field=field))
    return spans_from_otlp_json(data, source=source, errors=errors)


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
