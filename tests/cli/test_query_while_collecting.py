"""`audit collect --db` holds the database file only while it flushes a batch, so `audit query`
(another process) answers while the receiver runs and receives spans; and a request is
acknowledged only once its spans are durable, so not even kill -9 loses one: in the spool next
to the database (the default; the next start stores what a killed receiver left there), or with
--no-spool in the database itself (a query then sees every span acknowledged before it)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from auditor.collectors.otlp_json import to_otlp_json
from auditor.collectors.spans import SpanRecord

AUDIT = [sys.executable, "-c", "from auditor.cli import main; main()"]


def _spans(k: int, n: int) -> list[SpanRecord]:
    return [SpanRecord(trace_id=f"{k:032x}", span_id=f"{k:08x}{i:08x}", name=f"s{i}", kind="INTERNAL",
                       start_time_unix_nano=1_000 + i, end_time_unix_nano=2_000 + i, attributes={"i": i})
            for i in range(n)]


def _start_collect(db: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([*AUDIT, "collect", "--port", "0", "--db", str(db), "--flush-ms", "50", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    line = proc.stdout.readline()  # "listening on http://127.0.0.1:PORT/v1/traces -> DB"
    assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
    return proc, int(line.split(":")[2].split("/")[0])


class _Poster:
    """Posts batches of spans in a thread until stopped; counts the acknowledged spans."""

    def __init__(self, port: int, per_request: int = 20):
        self.port, self.per_request = port, per_request
        self.acked = 0
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        k = 0
        while not self.stop.is_set():
            body = json.dumps(to_otlp_json(_spans(k, self.per_request))).encode()
            try:
                conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
            except OSError:
                return  # the receiver went away (kill -9)
            self.statuses.append(resp.status)
            if resp.status == 200:
                self.acked += self.per_request
            k += 1
        conn.close()


def _count(db: Path) -> int:
    out = subprocess.run([*AUDIT, "query", "SELECT count(*) AS n FROM spans", "--db", str(db), "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]["n"]


@pytest.mark.parametrize("spool", [True, False], ids=["spool", "no-spool"])
def test_query_answers_while_collect_db_receives_spans(tmp_path, spool):
    db = tmp_path / "live.duckdb"
    proc, port = _start_collect(db, tmp_path, *([] if spool else ["--no-spool"]))
    poster = _Poster(port)
    try:
        poster.thread.start()
        counts = []
        for _ in range(2):
            acked_before = poster.acked
            counts.append(_count(db))  # a separate process opens the database the receiver writes
            assert poster.thread.is_alive()  # ... while spans keep arriving
            if not spool:  # acknowledged once stored: every span acknowledged before the query is in it
                assert counts[-1] >= acked_before
        poster.stop.set()
        poster.thread.join(30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        poster.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert set(poster.statuses) == {200}
    assert counts == sorted(counts) and counts[-1] > 0
    assert _count(db) == poster.acked  # SIGTERM flushed the rest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.duckdb"]  # no spool left after a clean stop


@pytest.mark.parametrize("spool", [True, False], ids=["spool", "no-spool"])
def test_kill_9_loses_no_acknowledged_span(tmp_path, spool):
    db = tmp_path / "killed.duckdb"
    proc, port = _start_collect(db, tmp_path, *([] if spool else ["--no-spool"]))
    poster = _Poster(port)
    try:
        poster.thread.start()
        deadline = time.monotonic() + 60
        while poster.acked < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
        proc.wait(timeout=30)
        poster.thread.join(30)
    finally:
        poster.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert poster.acked >= 400
    if spool:  # what the store had not taken is in the spool: the next start stores it first
        assert (tmp_path / "killed.duckdb.spool.jsonl").exists()
        proc, _ = _start_collect(db, tmp_path)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        assert "a previous run left in" in proc.stderr.read()  # said, with the count
        assert not (tmp_path / "killed.duckdb.spool.jsonl").exists()
    stored = _count(db)
    # what was acknowledged is stored; a request in flight at the kill may be stored unacknowledged
    assert poster.acked <= stored <= poster.acked + poster.per_request
