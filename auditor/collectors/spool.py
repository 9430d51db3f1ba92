"""The write-ahead spool of `audit collect --db` (without ``--jsonl``): where a request's spans
are made durable before it is acknowledged, while the store catches up behind.

Storing a request in DuckDB before answering it costs a whole flush (open the file, one
transaction, close it: tens of milliseconds) per batch of whatever arrived meanwhile, which caps
the receiver at a few thousand spans per second. Appending one OTLP JSON line to a file costs
microseconds. So the receiver appends each request to ``<db>.spool.jsonl`` (the same line
`--jsonl` writes), acknowledges it, and the store follows in batches; `SpanWriter` rotates the
spool once the store has caught up with it and removes it on a clean stop. What is left there
(the receiver was killed, the store failed) is imported by the next start (`replay`: spans are
unique on (trace_id, span_id), so spans stored twice are stored once).

Files, all next to the database:

- ``<db>.spool.jsonl``: the spool being appended to;
- ``<db>.spool.1.jsonl``: the previous one, rotated away while the store works through it;
- ``<db>.spool.lock``: held (``flock``) by the receiver that owns the spool, so two receivers
  on one database refuse instead of rotating each other's spans away.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from auditor.collectors.issues import LoadIssue
from auditor.collectors.readers import otlp_json_line
from auditor.collectors.sanitize import iter_lines
from auditor.collectors.spans import SpanRecord

try:  # POSIX; elsewhere the spool works unlocked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["SpoolBusy", "SpoolFiles", "Replay", "spool_files", "replay", "lock", "unlock"]

REPLAY_CHUNK_SPANS = 5000


class SpoolBusy(RuntimeError):
    """Another receiver holds the spool of this database."""


@dataclass(frozen=True)
class SpoolFiles:
    active: Path  # appended to
    rotated: Path  # the previous spool, until the store has it all
    lock: Path

    @property
    def spools(self) -> tuple[Path, Path]:
        """Oldest first: the order `replay` imports them in."""
        return self.rotated, self.active


def spool_files(db: str | os.PathLike[str]) -> SpoolFiles:
    db = Path(db)
    return SpoolFiles(active=db.with_name(db.name + ".spool.jsonl"),
                      rotated=db.with_name(db.name + ".spool.1.jsonl"),
                      lock=db.with_name(db.name + ".spool.lock"))


def lock(path: Path) -> IO[bytes]:
    """Take the spool's lock file (created if needed) or raise `SpoolBusy`. The file is
    removed by `unlock`; a lock taken on a file that was removed meanwhile is taken again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = path.open("ab")
        if fcntl is None:
            return fh
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise SpoolBusy(f"another receiver is spooling into this database (it holds {path})") from None
        try:
            same = os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fh
        fh.close()  # its owner removed it between our open and our lock: take the new one


def unlock(fh: IO[bytes], path: Path) -> None:
    """Remove the lock file, then release it (in this order, see `lock`)."""
    try:
        path.unlink(missing_ok=True)
    finally:
        fh.close()


@dataclass
class Replay:
    """What `replay` found in the spools left behind."""

    files: list[Path] = field(default_factory=list)
    spans: int = 0  # read
    stored: int = 0  # new to the store (the rest was stored before the receiver stopped)
    issues: list[LoadIssue] = field(default_factory=list)  # lines that could not be read (a torn last line)


def _chunks(path: Path, issues: list[LoadIssue], size: int) -> Iterator[list[SpanRecord]]:
    file = str(path)
    chunk: list[SpanRecord] = []
    for lineno, text in iter_lines(path, issues):
        if not text.strip():
            continue
        spans, bad = otlp_json_line(text, file, lineno)
        issues.extend(bad)
        chunk.extend(spans)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def replay(files: SpoolFiles, sink: Callable[[Sequence[SpanRecord]], Any], *,
           chunk_spans: int = REPLAY_CHUNK_SPANS) -> Replay:
    """Store what spools a previous receiver left (oldest first, ``chunk_spans`` at a time, so a
    large spool is never held whole), then empty them. ``sink`` returns how many spans were new
    (`auditor.store.store.append_spans` does). If it raises, the spools are left as they are and
    the error propagates: nothing is lost, the next start tries again."""
    out = Replay()
    for path in files.spools:
        if not path.exists() or path.stat().st_size == 0:
            continue
        out.files.append(path)
        for chunk in _chunks(path, out.issues, chunk_spans):
            added = sink(chunk)
            out.spans += len(chunk)
            out.stored += int(added) if isinstance(added, int) else 0
    for path in out.files:  # all stored: only now may they go
        path.unlink(missing_ok=True)
    return out
