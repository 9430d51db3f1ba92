"""The HTTP/1.1 side of the OTLP/HTTP receiver: connections, heads, bodies and limits, on asyncio.

One event-loop thread holds every connection (epoll: no ``select()`` limit on descriptor numbers,
no thread per idle connection); handlers run in a small thread pool. What the receiver does with a
request is the `App`'s business; this module only guarantees that:

- at most ``max_connections`` connections are open. A new one beyond that closes the connection
  that has waited longest without a request under way (never one past its token check), or, when
  every connection is busy, is answered 503 with ``Retry-After`` and closed; either is logged
  (rate-limited) through ``warn``. So idle or stalled clients cannot keep others out;
- a new connection's request head must be complete within ``header_timeout`` (a keep-alive one
  may idle ``idle_timeout`` first, then has ``header_timeout``); body reads time out after
  ``read_timeout`` without progress;
- `App.check_head` sees each head as soon as it is in, before any body byte is read: the token
  is checked there, and a refused request never costs a body read (the connection is closed
  after the answer, draining a little so the client can read it);
- bodies are limited to ``max_body_bytes`` (413), need a length (411) and may be chunked;
  ``Expect: 100-continue`` is honoured once the head is accepted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Protocol

_LINE_LIMIT = 64 * 1024  # one head line, and the whole head
_MAX_HEADERS = 100
_LINGER_BYTES = 1 << 20
_LINGER_SECONDS = 2.0


@dataclass
class Head:
    """A request line and its headers (names lower-cased)."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    peer: str

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def has_body(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower() or (self.get("content-length") or "0") != "0"

    @property
    def keep_alive(self) -> bool:
        conn = (self.get("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    def encode(self, close: bool) -> bytes:
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {self.status} {reason}", "Server: auditor-otlp", f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body)}", *(f"{k}: {v}" for k, v in self.headers)]
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class App(Protocol):
    def check_head(self, head: Head) -> Response | None:
        """On the event loop, as soon as the head is in: an answer that ends the request (its body
        is never read), or None to read the body and call `handle`. Must be quick."""

    def handle(self, head: Head, body: bytes) -> Response:
        """In a worker thread: the request with its body."""

    def error(self, head: Head | None, status: int, message: str) -> Response:
        """The answer to a request this module refuses (bad head, no length, too large, too slow, ...)."""


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Limits:
    max_body_bytes: int
    max_connections: int = 512
    header_timeout: float = 10.0
    idle_timeout: float = 30.0
    read_timeout: float = 30.0
    workers: int = 8


class _Conn:
    __slots__ = ("writer", "state", "since", "peer")

    def __init__(self, writer: asyncio.StreamWriter, peer: str):
        self.writer = writer
        self.state = "new"  # new | idle | head (evictable) | busy (past check_head)
        self.since = time.monotonic()
        self.peer = peer


def _peer(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    if isinstance(info, tuple) and len(info) >= 2:
        return f"{info[0]}:{info[1]}"
    return str(info)


class HttpServer:
    """`App` behind HTTP/1.1 on ``host:port`` (``port=0``: a free one, read ``.port`` after `start`)."""

    def __init__(self, app: App, host: str, port: int, limits: Limits, *, log: Callable[[str], Any] | None = None,
                 warn: Callable[[str], Any] | None = None, count: Callable[..., Any] | None = None,
                 name: str = "http"):
        """``log``: one line per request; ``warn``: capacity events; ``count(evicted_connections=1)``
        / ``count(refused_connections=1)``: statistics."""
        self.app, self.host, self.port, self.limits = app, host, port, limits
        self.log, self.warn, self.name = log, warn, name
        self.count = count or (lambda **kw: None)
        self._conns: dict[_Conn, None] = {}
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._server: asyncio.base_events.Server | None = None
        self._warned_at = 0.0
        self._unwarned = 0

    # -- lifecycle (called from any thread) ------------------------------------------------------
    def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._stopping = False
        self._loop = asyncio.new_event_loop()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix=f"{self.name}-worker")
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(sock), self._loop).result()

    async def _listen(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=_LINE_LIMIT)

    def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, close connections with no request under way, let requests in flight
        finish (up to ``grace`` seconds), then end the loop and the workers."""
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(grace), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            loop.close()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._loop = self._thread = self._pool = self._server = None

    async def _shutdown(self, grace: float) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            if conn.state in ("new", "idle"):
                conn.writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)

    # -- connections -----------------------------------------------------------------------------
    def _admit(self, conn: _Conn) -> bool:
        if len(self._conns) < self.limits.max_connections:
            self._conns[conn] = None
            return True
        waiting = [c for c in self._conns if c.state != "busy"]
        if waiting:
            victim = min(waiting, key=lambda c: c.since)
            del self._conns[victim]
            victim.writer.transport.abort()
            self.count(evicted_connections=1)
            self._warn(f"connection limit ({self.limits.max_connections}) reached: closed the connection from "
                       f"{victim.peer} that waited longest without a request ({time.monotonic() - victim.since:.1f} s)")
            self._conns[conn] = None
            return True
        self.count(refused_connections=1)
        self._warn(f"connection limit ({self.limits.max_connections}) reached and every connection is busy: "
                   f"{conn.peer} answered 503")
        return False

    def _warn(self, message: str) -> None:
        """At most one line per 10 seconds, with the count of those not shown."""
        now = time.monotonic()
        if now - self._warned_at < 10:
            self._unwarned += 1
            return
        if self._unwarned:
            message += f" ({self._unwarned} more such events in the last {now - self._warned_at:.0f} s)"
        self._warned_at, self._unwarned = now, 0
        if self.warn is not None:
            self.warn(message)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer, _peer(writer))
        if self._stopping or not self._admit(conn):
            busy = self.app.error(None, 503, "too many connections; retry later")
            busy.headers = (*busy.headers, ("Retry-After", "1"))
            writer.write(busy.encode(close=True))
            writer.close()
            return
        try:
            first = True
            while not self._stopping:
                conn.state, conn.since = ("new" if first else "idle"), time.monotonic()
                try:
                    async with asyncio.timeout(self.limits.header_timeout if first else self.limits.idle_timeout):
                        byte = await reader.read(1)
                except TimeoutError:
                    break
                if not byte:
                    break
                conn.state = "head"
                if not await self._one(conn, reader, writer, byte, first):
                    break
                first = False
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            self._conns.pop(conn, None)
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _one(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_byte: bytes,
                   fresh: bool) -> bool:
        """One request; whether the connection stays open."""
        limits = self.limits
        try:
            budget = limits.header_timeout - (time.monotonic() - conn.since if fresh else 0)
            async with asyncio.timeout(max(budget, 0.001)):
                head = await self._read_head(reader, first_byte, conn.peer)
        except TimeoutError:
            await self._answer(writer, None, self.app.error(None, 408, "request head not received in time"), True)
            return False
        except _Refused as exc:
            await self._answer(writer, None, self.app.error(None, exc.status, exc.message), True)
            return False
        response = self.app.check_head(head)
        if response is not None:  # refused before any body byte is read
            close = response.close or head.has_body or not head.keep_alive or self._stopping
            await self._answer(writer, head, response, close)
            if close and head.has_body:
                await self._linger(reader, writer)
            return not close
        conn.state = "busy"
        try:
            body = await self._read_body(reader, writer, head)
        except _Refused as exc:
            await self._answer(writer, head, self.app.error(head, exc.status, exc.message), True)
            return False
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._pool, self._handle, head, body)
        close = response.close or not head.keep_alive or self._stopping
        await self._answer(writer, head, response, close)
        return not close

    def _handle(self, head: Head, body: bytes) -> Response:
        try:
            return self.app.handle(head, body)
        except Exception as exc:  # noqa: BLE001 - a bug costs one request, with a message
            return self.app.error(head, 500, f"internal error: {type(exc).__name__}: {exc}")

    async def _answer(self, writer: asyncio.StreamWriter, head: Head | None, response: Response, close: bool) -> None:
        if self.log is not None:
            line = f"{head.method} {head.target} {head.version}" if head else "-"
            self.log(f'{_peer(writer)} "{line}" {response.status} {len(response.body)}')
        writer.write(response.encode(close))
        async with asyncio.timeout(self.limits.read_timeout):
            await writer.drain()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After refusing a request whose body is still coming: stop writing and read a little of
        what is sent, so that closing does not reset the connection before the client reads the
        answer."""
        try:
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(_LINGER_SECONDS):
                got = 0
                while got < _LINGER_BYTES:
                    chunk = await reader.read(1 << 16)
                    if not chunk:
                        break
                    got += len(chunk)
        except (TimeoutError, ConnectionError, OSError):
            pass

    # -- heads and bodies ------------------------------------------------------------------------
    async def _read_line(self, reader: asyncio.StreamReader) -> bytes:
        try:
            line = await reader.readline()
        except ValueError:  # longer than the stream's limit
            raise _Refused(431, "request head line too long") from None
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        return line

    async def _read_head(self, reader: asyncio.StreamReader, first: bytes, peer: str) -> Head:
        line = first + await self._read_line(reader)
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Refused(400, "malformed request line")
        headers: dict[str, str] = {}
        size = len(line)
        while True:
            line = await self._read_line(reader)
            if line in (b"\r\n", b"\n"):
                break
            size += len(line)
            if size > _LINE_LIMIT or len(headers) >= _MAX_HEADERS:
                raise _Refused(431, "request head too large")
            name, sep, value = line.decode("latin-1").partition(":")
            name = name.lower()
            if not sep or not name or name != name.strip() or " " in name:
                raise _Refused(400, "malformed header line")
            value = value.strip()
            if name in headers:
                if name in ("content-length", "authorization", "content-type", "content-encoding") and headers[name] != value:
                    raise _Refused(400, f"conflicting {name} headers")
                value = headers[name] if headers[name] == value else f"{headers[name]}, {value}"
            headers[name] = value
        return Head(parts[0], parts[1], parts[2], headers, peer)

    async def _read_exactly(self, reader: asyncio.StreamReader, n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            async with asyncio.timeout(self.limits.read_timeout):
                chunk = await reader.read(min(n, 1 << 20))
            if not chunk:
                raise _Refused(400, "body truncated: the connection closed before Content-Length bytes came")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    async def _read_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head) -> bytes:
        limit = self.limits.max_body_bytes
        expects = (head.get("expect") or "").lower() == "100-continue"  # the client waits for a go-ahead
        try:
            if "chunked" in (head.get("transfer-encoding") or "").lower():
                if expects:
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return await self._read_chunked(reader, limit)
            length = head.get("content-length")
            if length is None:
                raise _Refused(411, "Content-Length required")
            if not length.isascii() or not length.isdigit():
                raise _Refused(400, f"bad Content-Length {length[:40]!r}")
            n = int(length) if len(length) < 19 else 1 << 62
            if n > limit:
                if not expects:
                    await self._discard(reader, min(n, 4 * limit))  # so the client can read the answer
                raise _Refused(413, f"body of {n} bytes exceeds the limit of {limit} bytes")
            if expects:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return await self._read_exactly(reader, n)
        except TimeoutError:
            raise _Refused(408, f"body not received in time (nothing for {self.limits.read_timeout:g} s)") from None
        except asyncio.IncompleteReadError:
            raise _Refused(400, "body truncated") from None

    async def _discard(self, reader: asyncio.StreamReader, n: int) -> None:
        try:
            while n > 0:
                async with asyncio.timeout(self.limits.read_timeout):
                    chunk = await reader.read(min(n, 1 << 20))
                if not chunk:
                    return
                n -= len(chunk)
        except TimeoutError:
            return

    async def _read_chunked(self, reader: asyncio.StreamReader, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            async with asyncio.timeout(self.limits.read_timeout):
                line = await self._read_line(reader)
            size_text = line.split(b";", 1)[0].strip()
            try:
                if not size_text or len(size_text) > 16:
                    raise ValueError
                size = int(size_text, 16)
            except ValueError:
                raise _Refused(400, "bad chunked encoding") from None
            if size == 0:
                while True:  # trailers
                    async with asyncio.timeout(self.limits.read_timeout):
                        line = await self._read_line(reader)
                    if line in (b"\r\n", b"\n"):
                        return b"".join(parts)
            total += size
            if total > limit:
                raise _Refused(413, f"body exceeds the limit of {limit} bytes")
            parts.append(await self._read_exactly(reader, size))
            async with asyncio.timeout(self.limits.read_timeout):
                await self._read_line(reader)
