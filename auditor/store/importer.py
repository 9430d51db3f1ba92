"""Importing files into the store in bounded batches, surviving any record the store cannot take.

`import_file` streams a file (`auditor.collectors.streaming.iter_load`) into the store: spans and
trajectories are written in batches (one transaction each: never one per file, never the whole
file in memory). A batch the database refuses (an integer out of a column's range, a key that
clashes, anything a reader let through) is rolled back and split in halves until the record at
fault is alone: that record becomes an issue naming its place, the others are stored. So one bad
record costs itself, never its batch ("Current transaction is aborted" never reaches a user).

DuckDB keeps what it writes cached up to its memory limit (80% of the machine's memory by
default) and holds committed rows in memory until a checkpoint (every 16 MB of log), so an
import left alone peaks far above what it needs. `MemoryCap` lowers both for the import
(``IMPORT_MEMORY_MB``, 64 MB, and a checkpoint every 4 MB), so DuckDB writes its blocks out
instead of holding them; a batch that needs more (a large store's primary-key indexes stay in
memory) meets an out-of-memory error, and the cap doubles and the batch runs again, up to the
original limit. Both settings are restored afterwards. (docs/benchmarks/store.md measures it.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from auditor.collectors.issues import LoadIssue
from auditor.collectors.spans import SpanRecord
from auditor.collectors.streaming import Chunk, iter_load
from auditor.trajectory import Trajectory

T = TypeVar("T")
MAX_BATCH_SPANS = 1000
MAX_BATCH_TRAJECTORIES = 50
IMPORT_MEMORY_MB = 64
IMPORT_CHECKPOINT = "4MB"


class MemoryCap:
    """DuckDB's memory limit lowered for an import, raised when a batch needs more (see the module)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, start_mb: int = IMPORT_MEMORY_MB) -> None:
        self.con = con
        self.original = self._limit()
        with duckdb.connect(":memory:") as fresh:
            self.default = fresh.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        self.checkpoint = str(con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0])
        self.ceiling_mb = _megabytes(self.original)
        self.mb = min(start_mb, self.ceiling_mb)
        self.raised = 0
        while True:  # what the connection holds already may not fit under the start: begin above it
            try:
                self._set(self.mb)
                break
            except duckdb.OutOfMemoryException:
                if self.mb >= self.ceiling_mb:
                    raise
                self.mb = min(self.mb * 2, self.ceiling_mb)
        con.execute(f"SET checkpoint_threshold = '{IMPORT_CHECKPOINT}'")

    def _limit(self) -> str:
        return str(self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    def _set(self, mb: float) -> None:
        self.con.execute(f"SET memory_limit = '{int(mb)}MB'")

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, again with twice the memory while DuckDB runs out, up to the original limit."""
        while True:
            try:
                return fn(*args)
            except duckdb.OutOfMemoryException:
                if self.mb >= self.ceiling_mb:
                    raise
                self.mb = min(self.mb * 2, self.ceiling_mb)
                self.raised += 1
                self._set(self.mb)

    def restore(self) -> None:
        if self.original == self.default:
            self.con.execute("RESET memory_limit")
        else:
            self.con.execute(f"SET memory_limit = '{self.original}'")
        self.con.execute(f"SET checkpoint_threshold = '{self.checkpoint}'")


def _megabytes(setting: str) -> float:
    number, _, unit = setting.strip().partition(" ")
    scale = {"bytes": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 2**20,
             "KB": 1e3 / 2**20, "MB": 1e6 / 2**20, "GB": 1e9 / 2**20, "TB": 1e12 / 2**20}.get(unit, 1)
    try:
        return float(number) * scale
    except ValueError:
        return float("inf")


@dataclass
class ImportStats:
    spans_read: int = 0
    spans_added: int = 0  # new in the store
    trajectories: int = 0  # read (stored, or refused: see issues)
    trajectories_changed: int = 0  # new or changed in the store
    batches: int = 0  # transactions that committed
    issues: list[LoadIssue] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")


def store_robustly(write: Callable[[list[T]], int], records: Sequence[T]) -> tuple[int, int, list[tuple[T, str]]]:
    """``write(records)`` in one transaction; when it raises, each half is retried the same way
    until the records at fault are alone. Returns (what ``write`` counted, transactions that
    committed, [(record, why)] for each record refused)."""
    if not records:
        return 0, 0, []
    try:
        return write(list(records)), 1, []
    except Exception as exc:  # noqa: BLE001 - whatever the database refuses costs one record
        if len(records) == 1:
            text = " ".join(str(exc).split())
            return 0, 0, [(records[0], f"the store refused it: {type(exc).__name__}: {text[:300]}")]
    mid = len(records) // 2
    n1, b1, f1 = store_robustly(write, records[:mid])
    n2, b2, f2 = store_robustly(write, records[mid:])
    return n1 + n2, b1 + b2, f1 + f2


class Importer:
    """Writes what `iter_load` yields to ``store`` in batches (see the module). ``on_stored`` sees
    each trajectory once it is in the store (e.g. to audit it next)."""

    def __init__(self, store: Any, *, max_spans: int = MAX_BATCH_SPANS, max_trajectories: int = MAX_BATCH_TRAJECTORIES,
                 on_stored: Callable[[Trajectory], Any] | None = None, cap: MemoryCap | None = None) -> None:
        self.store = store
        self.cap = cap
        self.max_spans = max_spans
        self.max_trajectories = max_trajectories
        self.on_stored = on_stored
        self.stats = ImportStats()
        self._spans: list[SpanRecord] = []
        self._trajs: list[tuple[Trajectory, str, int | None]] = []

    def add(self, chunk: Chunk) -> None:
        self.stats.issues.extend(chunk.issues)
        self.stats.spans_read += len(chunk.spans)
        self._spans.extend(chunk.spans)
        if len(self._spans) >= self.max_spans:
            self._flush_spans()
        self.stats.trajectories += len(chunk.trajectories)
        self._trajs.extend((t, f, line) for t, (f, line) in zip(chunk.trajectories, chunk.places))
        if len(self._trajs) >= self.max_trajectories:
            self._flush_trajectories()

    def flush(self) -> None:
        self._flush_spans()
        self._flush_trajectories()

    def _capped(self, write: Callable[[list[Any]], int]) -> Callable[[list[Any]], int]:
        return write if self.cap is None else (lambda batch: self.cap.run(write, batch))

    def _flush_spans(self) -> None:
        spans, self._spans = self._spans, []
        added, batches, refused = store_robustly(self._capped(self.store.add_spans), spans)
        self.stats.spans_added += added
        self.stats.batches += batches
        for sp, why in refused:
            file, line = sp.where()
            self.stats.issues.append(LoadIssue(file or "<spans>", why, line=line, span_id=sp.span_id))

    def _flush_trajectories(self) -> None:
        items, self._trajs = self._trajs, []
        changed, batches, refused = store_robustly(
            self._capped(lambda b: self.store.add_trajectories([t for t, _, _ in b])), items)
        self.stats.trajectories_changed += changed
        self.stats.batches += batches
        bad = set()
        for (traj, file, line), why in refused:
            bad.add(id(traj))
            self.stats.issues.append(LoadIssue(file, f"trajectory {traj.id!r}: {why}", line=line, field="id"))
        if self.on_stored is not None:
            for traj, _, _ in items:
                if id(traj) not in bad:
                    self.on_stored(traj)


def import_file(store: Any, path: str | Path, fmt: str | None = None, *,
                on_stored: Callable[[Trajectory], Any] | None = None,
                on_issue: Callable[[LoadIssue], Any] | None = None, **load_kw: Any) -> ImportStats:
    """Stream ``path`` into ``store`` (see the module); ``on_issue`` hears each issue (reading or
    storing) as it is found, ``on_stored`` each trajectory the store took. ``load_kw`` goes to
    `iter_load` (chunk and budget sizes)."""
    cap = MemoryCap(store.connection) if not getattr(store, "in_memory", False) else None
    imp = Importer(store, on_stored=on_stored, cap=cap)
    told = 0
    try:
        for chunk in iter_load(path, fmt, **load_kw):
            imp.add(chunk)
            if on_issue is not None:
                for issue in imp.stats.issues[told:]:
                    on_issue(issue)
            told = len(imp.stats.issues)
        imp.flush()
    finally:
        if cap is not None:
            cap.restore()
    if on_issue is not None:
        for issue in imp.stats.issues[told:]:
            on_issue(issue)
    return imp.stats
