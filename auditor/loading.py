"""Reading trajectories from files without losing anything: every problem is reported with its
place (file, line, span id, field) and every valid record is kept.

`load_path` sniffs the format: canonical trajectory JSONL (one `Trajectory` per line), OTLP
JSON span dumps, the Python SDK console format, or Aider logs; the non-canonical formats are
handled by `auditor.collectors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from auditor.trajectory import Trajectory
from auditor.actions import with_actions

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord


@dataclass(frozen=True)
class LoadIssue:
    """One thing that could not be used, and exactly where it is."""

    file: str
    message: str
    line: int | None = None
    span_id: str | None = None
    field: str | None = None
    severity: str = "error"  # "error": a record was skipped; "warning": kept, but degraded

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.span_id:
            where += f" span {self.span_id}"
        if self.field:
            where += f" field {self.field}"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    trajectories: list[Trajectory] = field(default_factory=list)
    issues: list[LoadIssue] = field(default_factory=list)
    spans: list["SpanRecord"] = field(default_factory=list)  # raw spans, kept so nothing captured is lost
    format: str = "unknown"

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    def extend(self, other: "LoadResult") -> None:
        self.trajectories.extend(other.trajectories)
        self.issues.extend(other.issues)
        self.spans.extend(other.spans)


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "<root>"


def parse_trajectory_line(text: str, file: str, line: int) -> tuple[Trajectory | None, list[LoadIssue]]:
    """Parse one canonical JSONL line; on failure return the issues naming line and field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [LoadIssue(file, f"invalid JSON: {exc.msg} at column {exc.colno}", line=line)]
    if not isinstance(data, dict):
        return None, [LoadIssue(file, f"expected a JSON object, got {type(data).__name__}", line=line)]
    try:
        return with_actions(Trajectory.model_validate(data)), []
    except ValidationError as exc:
        return None, [
            LoadIssue(file, f"{e['msg']}", line=line, field=_loc(e)) for e in exc.errors(include_url=False)
        ]


def load_trajectory_jsonl(path: str | Path) -> LoadResult:
    """Canonical form: one trajectory per line. Blank lines are fine; a truncated last line is reported."""
    path = Path(path)
    result = LoadResult(format="trajectory-jsonl")
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            traj, issues = parse_trajectory_line(raw, str(path), lineno)
            result.issues.extend(issues)
            if traj is not None:
                result.trajectories.append(traj)
    return result


def sniff_format(path: str | Path) -> str:
    """Guess a file's format from its name and first bytes."""
    path = Path(path)
    name = path.name
    if name.endswith(".aider.chat.history.md") or name.endswith(".md"):
        return "aider-chat-history"
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        head = fh.read(4096)
    stripped = head.lstrip()
    if stripped.startswith("TO LLM") or "\nTO LLM " in head[:2000]:
        return "aider-llm-history"
    first_line = stripped.split("\n", 1)[0]
    if '"resourceSpans"' in head:
        return "otlp-json"
    if stripped.startswith("{") and '"messages"' in first_line:
        return "trajectory-jsonl"
    if stripped.startswith("{") and ('"context"' in head and '"span_id"' in head):
        return "otel-console"
    if stripped.startswith("#"):
        return "aider-chat-history"
    return "trajectory-jsonl"


def load_path(path: str | Path, fmt: str | None = None) -> LoadResult:
    """Load any supported file into trajectories, keeping raw spans and reporting every issue."""
    path = Path(path)
    if not path.exists():
        return LoadResult(issues=[LoadIssue(str(path), "file not found")])
    fmt = fmt or sniff_format(path)
    if fmt == "trajectory-jsonl":
        return load_trajectory_jsonl(path)
    from auditor import collectors

    result = collectors.load_file(path, fmt)
    result.format = fmt
    return result


def load_paths(paths: list[str | Path], fmt: str | None = None) -> LoadResult:
    total = LoadResult(format=fmt or "mixed")
    for p in paths:
        total.extend(load_path(p, fmt))
    return total
