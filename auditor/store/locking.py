"""Opening the DuckDB file while another process may hold it.

DuckDB lets one process write a database file, and no other process read it meanwhile (a file
lock, even for read-only connections). `audit collect --db` therefore holds the file only while
it flushes a batch of spans (a fraction of a second, every few hundred milliseconds), and every
open here retries a lock conflict for a bounded time (``AUDITOR_LOCK_WAIT`` seconds, default
10) before saying who holds the file. A long writer (`audit trace` replaying a model) holds it
for its whole run: readers then get the message instead of waiting forever.
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import Any

import duckdb

from auditor.store.errors import StoreError

LOCK_WAIT_ENV = "AUDITOR_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 10.0
_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


class StoreLocked(StoreError):
    """Another process held the database file for longer than the lock wait."""


def lock_wait() -> float:
    """Seconds an open waits for another process to release the file (``$AUDITOR_LOCK_WAIT``)."""
    try:
        return max(0.0, float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT)))
    except ValueError:
        return DEFAULT_LOCK_WAIT


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect(path: str, *, read_only: bool = False, config: dict[str, Any] | None = None,
            wait: float | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that retries a lock held by another process for up to ``wait`` seconds
    (default `lock_wait()`), polling every few milliseconds (jittered, so a reader finds the
    gaps between a collector's flushes), then raises `StoreLocked` naming the holder."""
    wait = lock_wait() if wait is None else wait
    deadline = time.monotonic() + wait
    delay = 0.002
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreLocked(_locked_message(path, exc, wait)) from exc
            time.sleep(min(left, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, 0.02)


def _locked_message(path: str, exc: BaseException, wait: float) -> str:
    found = _HOLDER.search(str(exc))
    holder = f"process {found['pid']} ({os.path.basename(found['exe'])})" if found else "another process"
    return (f"{path} is in use by {holder} and stayed locked for {wait:g} s. DuckDB lets one process at a "
            "time open a database file: `audit collect --db` holds it only while flushing (retry), "
            "`audit trace` and `audit check --db` for their whole run (wait for them, or query a copy "
            f"of the file); set {LOCK_WAIT_ENV}=SECONDS to wait longer")
