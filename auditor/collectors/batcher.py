"""Batching received spans into few sink calls: a bounded queue and one flusher thread.

A receiver's requests arrive in many threads, often a few spans each; a sink such as the DuckDB
store pays per call (open the file, one transaction, close it). `SinkBatcher` gathers what the
requests hand it and calls the sink once per batch: when ``flush_spans`` spans are waiting, or
the oldest has waited ``flush_ms``, and never sooner than ``gap_ms`` after the previous call
returned (so another process can open the file in between, e.g. `audit query` while `audit
collect --db` runs). A `put` whose caller waits for its spans to be stored (``urgent``: a request
acknowledged only once its spans are in the store) is not held for the timer: the next batch
starts as soon as the previous call (and the gap) is over, and gathers whatever arrived during
that call; under load batches grow by themselves, at low load latency stays one call. The queue is bounded (``max_queued_spans``, in flight included): `put`
blocks while it is full, and fails after ``timeout`` seconds, so a sink that falls behind slows
the clients down (they retry) instead of growing memory.

Each `put` returns a `Pending` that says when its spans were stored (or why not), so a caller
can acknowledge a request only once its spans are durable. When one batch fails, its requests
are retried one by one, so a bad request fails alone instead of taking its batch with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_FLUSH_SPANS = 5000
DEFAULT_FLUSH_MS = 100.0
DEFAULT_GAP_MS = 10.0
DEFAULT_MAX_QUEUED_SPANS = 200_000


class QueueFull(Exception):
    """The batcher stayed full for the whole wait: the sink is not keeping up."""


class Pending:
    """One `put`'s spans on their way to the sink."""

    __slots__ = ("spans", "urgent", "queued_at", "error", "_done")

    def __init__(self, spans: Sequence[Any], urgent: bool = False):
        self.spans = spans
        self.urgent = urgent
        self.queued_at = time.monotonic()
        self.error: str | None = None
        self._done = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the sink call holding these spans has returned (see ``error``)."""
        return self._done.wait(timeout)

    def _finish(self, error: str | None) -> None:
        self.error = error
        self._done.set()


class SinkBatcher:
    """See the module docstring. ``on_error(message, n_spans)`` hears of every failed call."""

    def __init__(self, sink: Callable[[Sequence[Any]], Any], *, flush_spans: int = DEFAULT_FLUSH_SPANS,
                 flush_ms: float = DEFAULT_FLUSH_MS, gap_ms: float = DEFAULT_GAP_MS,
                 max_queued_spans: int = DEFAULT_MAX_QUEUED_SPANS,
                 on_error: Callable[[str, int], Any] | None = None, name: str = "span-sink",
                 after_batch: Callable[[], Any] | None = None) -> None:
        if flush_spans <= 0 or max_queued_spans <= 0 or flush_ms < 0 or gap_ms < 0:
            raise ValueError("flush_spans and max_queued_spans must be positive, flush_ms and gap_ms not negative")
        self.sink = sink
        self.flush_spans = flush_spans
        self.flush_s = flush_ms / 1000
        self.gap_s = gap_ms / 1000
        self.max_queued_spans = max_queued_spans
        self.on_error = on_error
        self.after_batch = after_batch  # called by the flusher after each batch (see `finished`)
        self.name = name
        self.calls = 0  # sink calls made (retries of a failed batch included)
        self.stored_spans = 0  # spans in calls that returned
        self.failed_spans = 0  # spans in calls that raised (after the one-by-one retry)
        self._cond = threading.Condition()
        self._queue: deque[Pending] = deque()
        self._queued = 0  # spans in the queue and in the call under way
        self._waiting = 0  # spans in the queue only
        self._urgent = 0  # urgent puts in the queue
        self._puts = 0  # puts accepted so far
        self._finished = 0  # puts whose sink call has returned or failed (always the first ones: FIFO)
        self._closing = False
        self._last_call_end = 0.0
        self._thread: threading.Thread | None = None

    # -- producers -------------------------------------------------------------------------------
    def put(self, spans: Sequence[Any], timeout: float | None = None, *, urgent: bool = False) -> Pending:
        """Queue spans for the sink; blocks while the queue is full (a batch larger than the whole
        queue waits for it to empty). Raises `QueueFull` after ``timeout`` seconds, and
        `RuntimeError` once closed. ``urgent``: the caller will wait for them (see the module)."""
        item = Pending(spans, urgent)
        n = len(spans)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closing and self._queued and self._queued + n > self.max_queued_spans:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise QueueFull(f"{self._queued} spans are waiting for the store (limit {self.max_queued_spans})")
                self._cond.wait(left)
            if self._closing:
                raise RuntimeError("the span sink is closed")
            self._queue.append(item)
            self._queued += n
            self._waiting += n
            self._urgent += urgent
            self._puts += 1
            self._cond.notify_all()
        return item

    @property
    def queued(self) -> int:
        with self._cond:
            return self._queued

    def progress(self) -> tuple[int, int]:
        """``(puts, finished)``: puts accepted so far, and how many of them have been through the
        sink (stored or failed). Batches are taken in order, so the finished ones are the first
        ``finished`` puts: a caller that noted ``puts`` at some moment knows that everything put
        before it is done once ``finished`` reaches it (what the receiver's spool rotates by)."""
        with self._cond:
            return self._puts, self._finished

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "SinkBatcher":
        with self._cond:
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return self

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far has been through the sink (True), or ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queued:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 0.5)
        return True

    def close(self) -> None:
        """Flush everything queued (without waiting for the batch to fill), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            self._thread = None

    # -- the flusher thread ----------------------------------------------------------------------
    def _take(self) -> list[Pending] | None:
        """Wait for the next batch (None: closed and empty)."""
        with self._cond:
            while True:
                if not self._queue:
                    if self._closing:
                        return None
                    self._cond.wait()
                    continue
                gap_end = self._last_call_end + self.gap_s
                full = self._waiting >= self.flush_spans or self._urgent
                due = gap_end if full else max(self._queue[0].queued_at + self.flush_s, gap_end)
                now = time.monotonic()
                if self._closing or now >= due:
                    batch = list(self._queue)
                    self._queue.clear()
                    self._waiting = self._urgent = 0
                    return batch
                self._cond.wait(due - now)

    def _call(self, spans: list[Any]) -> str | None:
        self.calls += 1
        try:
            self.sink(spans)
        except Exception as exc:  # noqa: BLE001 - reported to the waiters and on_error
            return f"{type(exc).__name__}: {exc}"
        return None

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            spans = [s for p in batch for s in p.spans]
            error = self._call(spans)
            results = [(p, error) for p in batch]
            if error is not None and len(batch) > 1:  # isolate the request that failed it
                results = [(p, self._call(list(p.spans))) for p in batch]
            with self._cond:
                for p, err in results:
                    if err is None:
                        self.stored_spans += len(p.spans)
                    else:
                        self.failed_spans += len(p.spans)
                    self._queued -= len(p.spans)
                self._finished += len(batch)
                self._last_call_end = time.monotonic()
                self._cond.notify_all()
            for p, err in results:
                if err is not None and self.on_error is not None:
                    try:
                        self.on_error(err, len(p.spans))
                    except Exception:  # noqa: BLE001 - a logger must not stop the flusher
                        pass
                p._finish(err)
            if self.after_batch is not None:
                try:
                    self.after_batch()
                except Exception:  # noqa: BLE001 - never stops the flusher
                    logging.getLogger(__name__).exception("%s: after_batch failed", self.name)
