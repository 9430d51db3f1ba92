"""The OpenTelemetry Python SDK's spans -> `SpanRecord`: ``ReadableSpan`` (what exporters receive)
and the console format (``span.to_json()``, what ``ConsoleSpanExporter`` prints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auditor.collectors.sanitize import too_deep
from auditor.collectors.spans import (SPAN_KINDS, SpanError, SpanRecord, as_list, as_object, as_text, iso_to_nanos,
                                      normalize_id, normalize_kind, status_dict)
from auditor.trajectory import MAX_NESTING


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
        status=status_dict(status.status_code.name if status is not None else None,
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


def _plain_attrs(v: Any, field: str, level: int) -> dict[str, Any]:
    attrs = dict(as_object(v, field))
    if too_deep(attrs, MAX_NESTING, level):
        raise SpanError(f"{field}: nested deeper than {MAX_NESTING} levels (the limit)", field=field)
    return attrs


def _console_time(v: Any, field: str) -> int:
    if v in (None, ""):
        return 0
    if not isinstance(v, str):
        raise SpanError(f"{field} must be an ISO-8601 string, got {type(v).__name__}", field=field)
    try:
        return iso_to_nanos(v)
    except (ValueError, OverflowError) as exc:
        raise SpanError(f"bad timestamp: {exc}", field=field) from None


def span_from_console(d: Mapping[str, Any], source: str | None = None) -> SpanRecord:
    """One ``span.to_json()`` object (ConsoleSpanExporter) -> SpanRecord. Raises `SpanError`
    naming the field for anything of the wrong type, out of range or nested too deep."""
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
        st = as_object(d.get("status"), "status")
        start = _console_time(d.get("start_time"), "start_time")
        end = _console_time(d.get("end_time"), "end_time")
        events = []
        for i, e in enumerate(as_list(d.get("events"), "events")):
            e = as_object(e, f"events.{i}")
            try:
                ts = _console_time(e.get("timestamp"), f"events.{i}.timestamp")
            except SpanError:
                ts = 0
            events.append({"name": as_text(e.get("name"), f"events.{i}.name"), "time_unix_nano": ts,
                           "attributes": _plain_attrs(e.get("attributes"), f"events.{i}.attributes", 4)})
        links = []
        for i, lk in enumerate(as_list(d.get("links"), "links")):
            lk = as_object(lk, f"links.{i}")
            c = as_object(lk.get("context"), f"links.{i}.context")
            attrs = _plain_attrs(lk.get("attributes"), f"links.{i}.attributes", 4)
            try:
                links.append({"trace_id": normalize_id(c.get("trace_id"), 16), "span_id": normalize_id(c.get("span_id"), 8),
                              "attributes": attrs})
            except SpanError:
                continue  # a link to a span we cannot name does not make this span unusable
        res = as_object(d.get("resource"), "resource")
        code = st.get("status_code")
        return SpanRecord.model_construct(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_id if parent_id != "0" * 16 else None,
            name=as_text(d.get("name"), "name"),
            kind=normalize_kind(d.get("kind")),
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=_plain_attrs(d.get("attributes"), "attributes", 2),
            events=events,
            links=links,
            status=status_dict(code, as_text(st.get("description"), "status.description")),
            resource=_plain_attrs(res.get("attributes"), "resource.attributes", 2),
            scope=None,
            source=source,
        )
    except SpanError as exc:
        exc.span_id = exc.span_id or (sid_raw[:64] if isinstance(sid_raw, str) and sid_raw else None)
        raise
