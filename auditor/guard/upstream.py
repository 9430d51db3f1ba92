"""The proxy's side of the upstream server: one request over ``http.client``, its errors said
plainly, and the server-sent events of a streamed reply read one at a time.

Every way the upstream can fail ends in an `UpstreamError` with the HTTP status the proxy answers
(502: unreachable, reset or malformed; 504: too slow) and a message naming the upstream, so a
caller never mistakes a failure for a reply with no tool calls.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

#: Request headers the proxy passes on (lower-cased); hop-by-hop and length headers are its own.
FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate", "baggage", "openai-organization",
                     "openai-project", "user-agent", "accept", "x-request-id")


class UpstreamError(Exception):
    """The upstream did not give a usable answer. ``status``: what the proxy answers; ``kind``:
    upstream_unavailable, upstream_timeout or upstream_malformed."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "code": self.kind}}


class Upstream:
    """An OpenAI-compatible server at ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 600.0):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path  # "/v1": the proxy's /v1/<rest> goes to <prefix>/<rest>
        self.api_key = api_key
        self.timeout = float(timeout)

    def target(self, path: str) -> str:
        rest = path[3:] if path == "/v1" or path.startswith("/v1/") else path
        return self.prefix + rest

    def open(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request; return the connection and the response (headers read, body not)."""
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        out = {k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS}
        if self.api_key:
            out = {k: v for k, v in out.items() if k.lower() != "authorization"}
            out["Authorization"] = f"Bearer {self.api_key}"
        if body is not None:
            out["Content-Type"] = "application/json"
        try:
            conn.request(method, self.target(path), body=body, headers=out)
            return conn, conn.getresponse()
        except BaseException as exc:
            conn.close()
            raise self.error(exc) from exc

    def error(self, exc: BaseException) -> UpstreamError:
        if isinstance(exc, UpstreamError):
            return exc
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return UpstreamError(504, "upstream_timeout", f"upstream {self.base_url} did not answer within {self.timeout:g} s")
        if isinstance(exc, (ConnectionError, OSError, http.client.HTTPException)):
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return UpstreamError(502, "upstream_unavailable", f"upstream {self.base_url} is unreachable or dropped the "
                                 f"connection: {why}")
        return UpstreamError(502, "upstream_unavailable", f"upstream {self.base_url} failed: {type(exc).__name__}: {exc}")


def read_body(upstream: Upstream, response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read()
    except BaseException as exc:  # noqa: BLE001 - reset mid-body, timeout
        raise upstream.error(exc) from exc


def parse_json(upstream: Upstream, raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UpstreamError(502, "upstream_malformed", f"upstream {upstream.base_url} returned {what} that is not JSON "
                            f"({exc.msg if hasattr(exc, 'msg') else exc}): {raw[:120]!r}") from None


def events(upstream: Upstream, response: http.client.HTTPResponse) -> Iterator[tuple[bytes, str | None]]:
    """A text/event-stream body, one event at a time: (its raw bytes, its data text or None for an
    event without data such as a comment). Ends after ``data: [DONE]``; a stream that stops
    before it (the upstream died mid-reply) raises `UpstreamError`."""
    buf: list[bytes] = []
    data: list[str] = []
    while True:
        try:
            line = response.readline()
        except BaseException as exc:  # noqa: BLE001
            raise upstream.error(exc) from exc
        if not line:
            raise UpstreamError(502, "upstream_malformed", f"upstream {upstream.base_url} ended the stream without "
                                "'data: [DONE]' (the reply is incomplete)")
        buf.append(line)
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text.startswith("data:"):
            data.append(text[5:].removeprefix(" "))
        if text == "":
            raw, payload = b"".join(buf), ("\n".join(data) if data else None)
            buf, data = [], []
            yield raw, payload
            if payload == "[DONE]":
                return


__all__ = ["Upstream", "UpstreamError", "events", "read_body", "parse_json", "FORWARDED_HEADERS"]
