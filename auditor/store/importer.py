"""Importing files into the store in bounded batches, surviving any record the store cannot take.

`import_file` streams a file (`auditor.collectors.streaming.iter_load`) into the store: spans and
trajectories are written in batches (one transaction each: never one per file, never the whole
file in memory). A batch the database refuses (an integer out of a column's range, a key that
clashes, anything a reader let through) is rolled back and split in halves until the record at
fault is alone: that record becomes an issue naming its place, the others are stored. So one bad
record costs itself, never its batch ("Current transaction is aborted" never reaches a user).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from auditor.collectors.issues import LoadIssue
from auditor.collectors.spans import SpanRecord
from auditor.collectors.streaming import Chunk, iter_load
from auditor.trajectory import Trajectory

T = TypeVar("T")
MAX_BATCH_SPANS = 5000
MAX_BATCH_TRAJECTORIES = 200


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
                 on_stored: Callable[[Trajectory], Any] | None = None) -> None:
        self.store = store
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

    def _flush_spans(self) -> None:
        spans, self._spans = self._spans, []
        added, batches, refused = store_robustly(self.store.add_spans, spans)
        self.stats.spans_added += added
        self.stats.batches += batches
        for sp, why in refused:
            file, line = sp.where()
            self.stats.issues.append(LoadIssue(file or "<spans>", why, line=line, span_id=sp.span_id))

    def _flush_trajectories(self) -> None:
        items, self._trajs = self._trajs, []
        changed, batches, refused = store_robustly(lambda b: self.store.add_trajectories([t for t, _, _ in b]), items)
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
    imp = Importer(store, on_stored=on_stored)
    told = 0
    for chunk in iter_load(path, fmt, **load_kw):
        imp.add(chunk)
        if on_issue is not None:
            for issue in imp.stats.issues[told:]:
                on_issue(issue)
        told = len(imp.stats.issues)
    imp.flush()
    if on_issue is not None:
        for issue in imp.stats.issues[told:]:
            on_issue(issue)
    return imp.stats
