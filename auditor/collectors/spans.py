"""`SpanRecord`: one span in a form every part of auditor can use, with the id, kind, status and
time helpers its converters share.

Converters, one module per format: `otlp_json` (OTLP JSON, hex or base64 ids; what ``run.jsonl``
holds), `otlp_proto` (``ExportTraceServiceRequest``, what ``/v1/traces`` receives) and
`sdk_spans` (the OpenTelemetry SDK's ``ReadableSpan`` and its console format).

Attribute values are flattened to plain Python (str, bool, int, float, bytes, lists, dicts).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import re
from datetime import datetime, timezone
from typing import Any, Iterable

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


def status_dict(code: Any, message: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": _status_code(code)}
    if message:
        out["message"] = str(message)
    return out


def parse_nanos(v: Any, field: str) -> int:
    """A time in Unix nanoseconds: an integer, or its decimal string (OTLP JSON writes int64 as one)."""
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


# -- shared by the converters --------------------------------------------------------------------


def collect_error(errors: list[SpanError] | None, exc: SpanError) -> None:
    """A bad span: collected when the caller keeps the good ones (``errors`` given), else raised."""
    if errors is None:
        raise exc
    errors.append(exc)


def group_by_resource_scope(
    spans: Iterable[SpanRecord],
) -> list[tuple[dict[str, Any], list[tuple[str, list[SpanRecord]]]]]:
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

