"""Loading a file in bounded pieces, for imports that must not hold the whole file in memory.

`iter_load` yields `Chunk`s: spans as they are read (a few thousand at a time), trajectories as
they are assembled, and the issues found on the way, each with its place. What it holds at any
time does not grow with the file:

- trajectory JSONL: one line at a time, trajectories yielded in small batches;
- OTLP JSON lines (``run.jsonl``, the receiver's output): a first pass reads each line, yields its
  spans and notes in a `SpanIndex` where each trace's spans are; then the traces that must be
  assembled together (`SpanIndex.components`) are read back batch by batch (about
  ``budget_bytes`` of lines each) and assembled, with the same result as assembling the whole
  file at once. Only the trajectories of one batch are in memory at a time;
- anything else (one pretty-printed OTLP document, the SDK console format, Aider logs) is read
  whole, as `auditor.collectors.loading.load_path` does, and yielded in pieces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from auditor.trajectory import Trajectory

from auditor.collectors.issues import LoadIssue
from auditor.collectors.loading import load_file, parse_trajectory_line, sniff_format
from auditor.collectors.readers import otlp_json_line
from auditor.collectors.sanitize import iter_placed_lines, line_at
from auditor.collectors.span_index import SpanIndex, batches
from auditor.collectors.spans import SpanRecord

DEFAULT_CHUNK_SPANS = 2000
DEFAULT_CHUNK_TRAJECTORIES = 100
DEFAULT_BUDGET_BYTES = 4 * 1024 * 1024


@dataclass
class Chunk:
    """A piece of a file: spans read, trajectories made (with the file and line each came from, when
    it is one line), issues found."""

    spans: list[SpanRecord] = field(default_factory=list)
    trajectories: list[Trajectory] = field(default_factory=list)
    places: list[tuple[str, int | None]] = field(default_factory=list)
    issues: list[LoadIssue] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.spans or self.trajectories or self.issues)


def iter_load(path: str | Path, fmt: str | None = None, *, chunk_spans: int = DEFAULT_CHUNK_SPANS,
              chunk_trajectories: int = DEFAULT_CHUNK_TRAJECTORIES,
              budget_bytes: int = DEFAULT_BUDGET_BYTES) -> Iterator[Chunk]:
    """The file at ``path`` as `Chunk`s (see the module docstring); ``fmt`` as `load_path` takes it."""
    path = Path(path)
    if not path.exists():
        yield Chunk(issues=[LoadIssue(str(path), "file not found")])
        return
    fmt = fmt or sniff_format(path)
    if fmt == "trajectory-jsonl":
        yield from _trajectory_lines(path, chunk_trajectories)
    elif fmt == "otlp-json" and _line_delimited(path):
        yield from _otlp_lines(path, chunk_spans, chunk_trajectories, budget_bytes)
    else:
        yield from _whole(path, fmt, chunk_spans, chunk_trajectories)


def _line_delimited(path: Path) -> bool:
    """Whether the first non-blank line is a JSON document of its own (else: one document over many lines)."""
    for _, _, _, text in iter_placed_lines(path, []):
        if text.strip():
            try:
                json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                return False
            return True
    return True


def _trajectory_lines(path: Path, per_chunk: int) -> Iterator[Chunk]:
    file = str(path)
    chunk = Chunk()
    seen: dict[str, tuple[int, str]] = {}  # id -> (first line, content hash): a few dozen bytes per trajectory
    read_issues: list[LoadIssue] = []  # invalid UTF-8, as each line is read
    try:
        for lineno, _, _, text in iter_placed_lines(path, read_issues):
            chunk.issues.extend(read_issues)
            read_issues.clear()
            if not text.strip():
                continue
            traj, issues = parse_trajectory_line(text, file, lineno)
            chunk.issues.extend(issues)
            if traj is not None:
                digest = hashlib.sha256(traj.to_jsonl_line().encode("utf-8")).hexdigest()
                first = seen.setdefault(traj.id, (lineno, digest))
                if first[0] == lineno:
                    chunk.trajectories.append(traj)
                    chunk.places.append((file, lineno))
                elif first[1] == digest:
                    chunk.issues.append(LoadIssue(file, f"trajectory {traj.id!r} repeats line {first[0]} exactly; "
                                                        "read once", line=lineno, field="id", severity="info"))
                else:
                    chunk.issues.append(LoadIssue(file, f"trajectory id {traj.id!r} is already used by line "
                                                        f"{first[0]} with different content; line {lineno} skipped",
                                                  line=lineno, field="id"))
            if len(chunk.trajectories) >= per_chunk:
                yield chunk
                chunk = Chunk()
    except OSError as exc:
        chunk.issues.append(LoadIssue(file, f"cannot read file: {exc.strerror or exc}"))
    if chunk:
        yield chunk


def _otlp_lines(path: Path, chunk_spans: int, chunk_trajectories: int, budget_bytes: int) -> Iterator[Chunk]:
    from auditor.collectors.assemble import assemble_trajectories

    file = str(path)
    index = SpanIndex()
    chunk = Chunk()
    read_issues: list[LoadIssue] = []  # invalid UTF-8, as each line is read
    try:
        for lineno, offset, size, text in iter_placed_lines(path, read_issues):  # pass 1: spans out, the index kept
            chunk.issues.extend(read_issues)
            read_issues.clear()
            if not text.strip():
                continue
            spans, issues = otlp_json_line(text, file, lineno)
            chunk.issues.extend(issues)
            if spans:
                index.record(offset, size, lineno)
                for sp in spans:
                    index.add(sp, offset)
                chunk.spans.extend(spans)
            if len(chunk.spans) >= chunk_spans:
                yield chunk
                chunk = Chunk()
    except OSError as exc:
        chunk.issues.append(LoadIssue(file, f"cannot read file: {exc.strerror or exc}"))
        yield chunk
        return
    if chunk:
        yield chunk
    with path.open("rb") as fh:  # pass 2: each batch of traces read back and assembled
        for members in batches(index.components(), budget_bytes):
            wanted = set(members)
            offsets = sorted({o for tid in members for o in index.traces[tid].records})
            spans = []
            for offset in offsets:
                line = index.lines[offset]
                got, _ = otlp_json_line(line_at(fh, offset, line), file, line)  # its issues were reported in pass 1
                spans.extend(s for s in got if s.trace_id in wanted)
            trajs, issues = assemble_trajectories(spans)
            del spans
            for k in range(0, max(len(trajs), 1), chunk_trajectories):
                part = trajs[k:k + chunk_trajectories]
                yield Chunk(trajectories=part, places=[(file, None)] * len(part), issues=issues if k == 0 else [])


def _whole(path: Path, fmt: str, chunk_spans: int, chunk_trajectories: int) -> Iterator[Chunk]:
    result = load_file(path, fmt)
    file = str(path)
    yield Chunk(issues=result.issues)
    for k in range(0, len(result.spans), chunk_spans):
        yield Chunk(spans=result.spans[k:k + chunk_spans])
    for k in range(0, len(result.trajectories), chunk_trajectories):
        part = result.trajectories[k:k + chunk_trajectories]
        yield Chunk(trajectories=part, places=[(file, None)] * len(part))
