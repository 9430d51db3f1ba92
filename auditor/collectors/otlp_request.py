"""One OTLP export request's body -> spans, for both receivers (HTTP and gRPC), so that both
answer the same input the same way:

- a body that is not an export (not JSON or protobuf, truncated compression, nesting deeper than
  the parser allows, no ``resourceSpans``) or that holds no valid span: `RequestError` 400 (gRPC
  INVALID_ARGUMENT) -- bad data is never answered with a status a client retries;
- a bad span inside a valid export (an id of the wrong length or alphabet, a time outside
  0..2^63-1 ns or not a number, a field of the wrong type, values nested too deep): rejected and
  counted in OTLP ``partial_success`` with a message naming the first; the others are stored;
- a lone UTF-16 surrogate in JSON text: read as U+FFFD, the span kept, and said in
  ``partial_success.error_message`` (``rejected_spans`` 0 when nothing was rejected, as the OTLP
  spec allows for warnings).

What reaches the writer (file and store alike) therefore holds valid ids, times within 0..2^63-1,
valid Unicode and values nested at most `MAX_NESTING` levels.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from auditor.collectors.otlp_json import parse_otlp_json
from auditor.collectors.otlp_proto import spans_from_otlp_proto
from auditor.collectors.spans import SpanError, SpanRecord


class RequestError(Exception):
    """A request that is refused as a whole; ``status`` is the HTTP status (gRPC maps it)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


JSON_TYPES = ("application/json",)
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
ENCODINGS = ("identity", "", "gzip", "x-gzip", "deflate")


@dataclass
class Export:
    spans: list[SpanRecord] = field(default_factory=list)
    errors: list[SpanError] = field(default_factory=list)  # rejected spans
    warnings: list[SpanError] = field(default_factory=list)  # kept, but changed (lone surrogates)

    @property
    def message(self) -> str:
        """``partial_success.error_message``: empty when everything was stored as sent."""
        parts = []
        if self.errors:
            parts.append(f"{len(self.errors)} span(s) rejected, first: {describe(self.errors[0])}")
        if self.warnings:
            parts.append(f"{len(self.warnings)} string(s) held a lone UTF-16 surrogate, stored as U+FFFD, first: "
                         f"{describe(self.warnings[0])}")
        return "; ".join(parts)


def describe(err: SpanError) -> str:
    where = " ".join(p for p in (f"span {err.span_id}" if err.span_id else "", err.field or "") if p)
    return f"{where}: {err}" if where else str(err)


def decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    enc = (encoding or "identity").strip().lower()
    if enc in ("identity", ""):
        return raw
    if enc not in ENCODINGS:
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or none)")
    wbits = 16 + zlib.MAX_WBITS if enc in ("gzip", "x-gzip") else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(raw, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise RequestError(413, f"decompressed body exceeds the limit of {limit} bytes")
        out += d.flush()
    except zlib.error as exc:
        raise RequestError(400, f"body is not valid {enc}: {exc}") from exc
    if len(out) > limit:
        raise RequestError(413, f"decompressed body exceeds the limit of {limit} bytes")
    if not d.eof:
        raise RequestError(400, f"{enc} body is truncated")
    return out


def decode_json(body: bytes, source: str) -> Export:
    out = Export()
    try:
        out.spans = parse_otlp_json(body, source=source, errors=out.errors, warnings=out.warnings)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"invalid JSON body: {exc}") from exc
    except SpanError as exc:
        raise RequestError(400, describe(exc)) from exc
    return _checked(out)


def decode_protobuf(body: bytes | object, source: str) -> Export:
    """Serialized ``ExportTraceServiceRequest`` bytes (or the message itself) -> spans."""
    from google.protobuf.message import DecodeError

    out = Export()
    try:
        out.spans = spans_from_otlp_proto(body, source=source, errors=out.errors)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise RequestError(400, f"invalid protobuf body: {exc}") from exc
    return _checked(out)


def decode(body: bytes, content_type: str, source: str) -> Export:
    """A (decompressed) body of the given media type -> `Export`; `RequestError` for the whole."""
    if content_type in JSON_TYPES or (content_type == "" and body.lstrip()[:1] == b"{"):
        return decode_json(body, source)
    if content_type in PROTOBUF_TYPES or content_type == "":
        return decode_protobuf(body, source)
    raise RequestError(415, f"unsupported Content-Type {content_type!r} (use application/x-protobuf or application/json)")


def _checked(out: Export) -> Export:
    if out.errors and not out.spans:
        raise RequestError(400, f"no valid span in the export: {describe(out.errors[0])}"
                                + (f" ({len(out.errors)} rejected)" if len(out.errors) > 1 else ""))
    return out
