"""`SinkBatcher`: many small puts become few sink calls; a failing request fails alone; a full
queue pushes back; closing flushes what is queued."""

from __future__ import annotations

import threading
import time

import pytest

from auditor.collectors.batcher import QueueFull, SinkBatcher


class Recorder:
    def __init__(self, delay: float = 0.0, bad: object = None):
        self.calls: list[list[object]] = []
        self.delay, self.bad = delay, bad
        self.lock = threading.Lock()

    def __call__(self, spans):
        time.sleep(self.delay)
        if self.bad is not None and self.bad in spans:
            raise ValueError(f"bad span {self.bad}")
        with self.lock:
            self.calls.append(list(spans))


def test_many_puts_become_few_calls_and_each_waiter_hears_back():
    sink = Recorder(delay=0.05)
    b = SinkBatcher(sink, flush_spans=1000, flush_ms=30, gap_ms=0).start()
    pending = []
    threads = [threading.Thread(target=lambda k=k: pending.append(b.put([(k, i) for i in range(10)])))
               for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(10) and p.error is None for p in pending)
    b.close()
    stored = [s for call in sink.calls for s in call]
    assert sorted(stored) == sorted((k, i) for k in range(40) for i in range(10))
    assert len(sink.calls) < 40  # batched across puts
    assert b.stored_spans == 400 and b.failed_spans == 0 and b.queued == 0


def test_flush_by_count_does_not_wait_for_the_timer():
    sink = Recorder()
    b = SinkBatcher(sink, flush_spans=5, flush_ms=60_000, gap_ms=0).start()
    p = b.put(list(range(5)))
    assert p.wait(5) and sink.calls == [[0, 1, 2, 3, 4]]
    q = b.put([5])  # below the count: waits for the timer, or close()
    assert not q.wait(0.2)
    b.close()
    assert q.wait(0) and sink.calls[-1] == [5]


def test_a_bad_request_fails_alone():
    sink = Recorder(bad="poison")
    errors = []
    b = SinkBatcher(sink, flush_spans=100, flush_ms=100, gap_ms=0, on_error=lambda m, n: errors.append((m, n)))
    good1, bad, good2 = b.put(["a", "b"]), b.put(["c", "poison"]), b.put(["d"])  # queued before the thread runs
    b.start()
    for p in (good1, bad, good2):
        assert p.wait(5)
    b.close()
    assert good1.error is None and good2.error is None
    assert bad.error == "ValueError: bad span poison" and errors == [(bad.error, 2)]
    assert sorted(s for call in sink.calls for s in call) == ["a", "b", "d"]
    assert b.failed_spans == 2 and b.stored_spans == 3


def test_a_full_queue_pushes_back_then_refuses():
    release = threading.Event()
    b = SinkBatcher(lambda spans: release.wait(10), flush_spans=1, flush_ms=0, gap_ms=0, max_queued_spans=10).start()
    first = b.put(list(range(8)))  # taken by the (blocked) sink call: still counts against the limit
    t0 = time.monotonic()
    with pytest.raises(QueueFull):
        b.put(list(range(5)), timeout=0.3)
    assert time.monotonic() - t0 >= 0.3
    small = b.put([1, 2], timeout=1)  # fits beside the first
    release.set()
    assert first.wait(5) and small.wait(5)
    big = b.put(list(range(50)), timeout=5)  # larger than the queue: admitted once it is empty
    assert big.wait(5) and big.error is None
    b.close()
    with pytest.raises(RuntimeError):
        b.put([1])


def test_calls_are_spaced_by_the_gap():
    ends, starts = [], []

    def sink(spans):
        starts.append(time.monotonic())
        ends.append(time.monotonic())

    b = SinkBatcher(sink, flush_spans=1, flush_ms=0, gap_ms=50).start()
    for i in range(4):
        b.put([i]).wait(5)
    b.close()
    assert all(s - e >= 0.049 for e, s in zip(ends, starts[1:]))
