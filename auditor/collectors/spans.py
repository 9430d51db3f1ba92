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
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")

#: The latest time a span may carry: DuckDB stores nanoseconds as BIGINT (OTLP's fixed64 goes to
#: 2**64-1; no real clock does). Times are checked once, where spans are read, so the JSONL file
#: and the store get the same spans.
MAX_NANOS = 2**63 - 1
_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_DIGITS = re.compile(r"-?[0-9]+")


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
    start_time_unix_nano: int = Field(default=0, ge=0, le=MAX_NANOS)
    end_time_unix_nano: int = Field(default=0, ge=0, le=MAX_NANOS)
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
    """Hex (any case, optionally ``0x``-prefixed), base64 (standard or URL-safe, padded or not) or
    raw bytes to lowercase hex of ``nbytes`` bytes.

    The format is told by the text's length, never by stripping a prefix: for 8-byte span ids hex
    is 16 characters (18 with ``0x``) and base64 12 (11 unpadded); for 16-byte trace ids 32 (34)
    and 24 (22). So ``0XSGQd8vX9w=`` is base64 (12 characters), not hex. OTLP/JSON says hex;
    base64 is what protobuf-to-JSON converters write."""
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
    n_hex = 2 * nbytes
    if len(s) == n_hex and _HEX.fullmatch(s):
        return s.lower()
    if len(s) == n_hex + 2 and s[:2] in ("0x", "0X") and _HEX.fullmatch(s, 2):
        return s[2:].lower()
    unpadded = -(-nbytes * 4 // 3)  # 8 bytes -> 11 characters, 16 -> 22
    if len(s) in (unpadded, 4 * -(-nbytes // 3)) and _B64.fullmatch(s):
        try:
            raw = base64.b64decode((s + "=" * (-len(s) % 4)).replace("-", "+").replace("_", "/"), validate=True)
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
    if not isinstance(v, str):
        raise SpanError(f"span kind must be a number or a name, got {type(v).__name__}", field="kind")
    s = v.strip().upper()
    for prefix in ("SPAN_KIND_", "SPANKIND."):
        if s.startswith(prefix):
            s = s[len(prefix):]
    if s.isdigit():
        return normalize_kind(int(s))
    if s in SPAN_KINDS:
        return s
    raise SpanError(f"unknown span kind {v[:40]!r}", field="kind")


def _status_code(v: Any) -> str:
    if v is None or v == "":
        return "UNSET"
    if isinstance(v, int) and not isinstance(v, bool):
        return STATUS_CODES[v] if 0 <= v < 3 else "UNSET"
    if not isinstance(v, str):
        raise SpanError(f"status code must be a number or a name, got {type(v).__name__}", field="status.code")
    s = v.upper()
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


def check_nanos(n: int, field: str) -> int:
    """The one range check of span times (readers, both receivers, both sinks): 0 .. `MAX_NANOS`."""
    if not 0 <= n <= MAX_NANOS:
        raise SpanError(f"{field} {n} is out of range (0 to 2^63-1 nanoseconds since the epoch)", field=field)
    return n


def parse_nanos(v: Any, field: str) -> int:
    """A time in Unix nanoseconds: an integer, or its decimal string (OTLP JSON writes 64-bit
    integers as strings); missing is 0. Out of range, negative, NaN or not a number: `SpanError`."""
    if v is None or v == "":
        return 0
    if isinstance(v, bool):
        raise SpanError(f"{field} must be an integer", field=field)
    if isinstance(v, int):
        return check_nanos(v, field)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise SpanError(f"{field} {v} is not a finite number of nanoseconds", field=field)
        return check_nanos(int(v), field)
    if isinstance(v, str):
        text = v.strip()
        if _DIGITS.fullmatch(text):
            if len(text) > 20:  # past any 64-bit value (and Python's limit on digits for int())
                raise SpanError(f"{field} {text[:24]}... is out of range (0 to 2^63-1 nanoseconds since the epoch)",
                                field=field)
            return check_nanos(int(text), field)
        raise SpanError(f"{field} {v[:40]!r} is not a decimal number of nanoseconds", field=field)
    raise SpanError(f"{field} must be an integer or a decimal string, got {type(v).__name__}", field=field)


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
    ns = secs * 1_000_000_000 + frac_ns
    if not 0 <= ns <= MAX_NANOS:
        raise ValueError(f"{s!r} is out of range (1970 to 2262)")
    return ns


def nanos_to_iso(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 1000:06d}Z"


# -- shared by the converters --------------------------------------------------------------------


def as_object(v: Any, field: str) -> Mapping[str, Any]:
    """An optional JSON object (absent or null: empty); anything else raises `SpanError`."""
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise SpanError(f"{field} must be an object, got {type(v).__name__}", field=field)
    return v


def as_list(v: Any, field: str) -> list[Any]:
    """An optional JSON list (absent or null: empty); anything else raises `SpanError`."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise SpanError(f"{field} must be a list, got {type(v).__name__}", field=field)
    return v


def as_text(v: Any, field: str) -> str:
    """An optional string (absent or null: empty); anything else raises `SpanError`."""
    if v is None:
        return ""
    if not isinstance(v, str):
        raise SpanError(f"{field} must be a string, got {type(v).__name__}", field=field)
    return v


def unexpected(exc: BaseException, span: Any = None) -> SpanError:
    """A span a converter failed on in a way it does not foresee (a bug): rejected, with the cause.
    The fuzz tests look for this message: it must never appear."""
    sid = None
    if isinstance(span, dict):
        raw = span.get("spanId", span.get("span_id"))
        sid = raw[:64] if isinstance(raw, str) else None
    return SpanError(f"internal error reading this span ({type(exc).__name__}: {str(exc)[:200]})", span_id=sid)


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

