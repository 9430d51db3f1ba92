"""The OpenTelemetry Python SDK's spans -> `SpanRecord`: ``ReadableSpan`` (what exporters receive)
and the console format (``span.to_json()``, what ``ConsoleSpanExporter`` prints).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from auditor.collectors.spans import (SPAN_KINDS, SpanError, SpanRecord, iso_to_nanos, normalize_id, normalize_kind,
                                      status_dict)


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
            status=status_dict(st.get("status_code"), st.get("description")) if isinstance(st, Mapping) else status_dict(None),
            resource=resource,
            scope=None,
            source=source,
        )
    except SpanError as exc:
        exc.span_id = exc.span_id or (str(sid_raw) if sid_raw else None)
        raise
