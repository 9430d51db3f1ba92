"""Reading trajectories from files without losing anything: every problem is reported with its
place (file, line, span id, field) and every valid record is kept.

`load_path` sniffs the format: canonical trajectory JSONL (one `Trajectory` per line), OTLP
JSON span dumps, the Python SDK console format, or Aider logs. `load_file` reads the
non-canonical ones (spans are assembled into trajectories and kept in ``LoadResult.spans``).

Whatever goes wrong with one record (a bug included) costs that record, never the file: it is an
error issue with its place. In trajectory JSONL a trajectory id appears once per file: an
identical repeat is read once (an ``info`` issue), a repeat with different content is an error
naming both lines and the later one is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from auditor.actions import with_actions
from auditor.trajectory import Trajectory

from auditor.collectors.issues import LoadIssue, LoadResult
from auditor.collectors.sanitize import DepthError, check_trajectory, iter_lines, loads

FORMATS = ("otlp-json", "otel-console", "aider-chat-history", "aider-llm-history")


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "<root>"


def parse_trajectory_line(text: str, file: str, line: int) -> tuple[Trajectory | None, list[LoadIssue]]:
    """Parse one canonical JSONL line; on failure return the issues naming line and field (a
    trajectory with lone surrogates is returned repaired, with a warning per field)."""
    try:
        data = loads(text)
    except json.JSONDecodeError as exc:
        return None, [LoadIssue(file, f"invalid JSON: {exc.msg} at column {exc.colno}", line=line)]
    except DepthError as exc:
        return None, [LoadIssue(file, f"the line is {exc}", line=line)]
    if not isinstance(data, dict):
        return None, [LoadIssue(file, f"expected a JSON object, got {type(data).__name__}", line=line)]
    try:
        traj = with_actions(Trajectory.model_validate(data))
    except ValidationError as exc:
        return None, [
            LoadIssue(file, f"{e['msg']}", line=line, field=_loc(e)) for e in exc.errors(include_url=False)
        ]
    except Exception as exc:  # noqa: BLE001 - one record, not the file
        return None, [LoadIssue(file, f"internal error reading this record ({type(exc).__name__}: {str(exc)[:200]})",
                                line=line)]
    return check_trajectory(traj, file, line)


def load_trajectory_jsonl(path: str | Path) -> LoadResult:
    """Canonical form: one trajectory per line. Blank lines are fine; a truncated last line is
    reported; a repeated id is read once (identical) or reported and skipped (different)."""
    path = Path(path)
    file = str(path)
    result = LoadResult(format="trajectory-jsonl")
    seen: dict[str, tuple[int, Trajectory]] = {}  # id -> (first line, its trajectory)
    try:
        for lineno, raw in iter_lines(path, result.issues):
            if not raw.strip():
                continue
            traj, issues = parse_trajectory_line(raw, file, lineno)
            result.issues.extend(issues)
            if traj is None:
                continue
            first = seen.setdefault(traj.id, (lineno, traj))
            if first[0] == lineno:
                result.trajectories.append(traj)
            elif first[1].to_jsonl_line() == traj.to_jsonl_line():
                result.issues.append(LoadIssue(file, f"trajectory {traj.id!r} repeats line {first[0]} exactly; read once",
                                               line=lineno, field="id", severity="info"))
            else:
                result.issues.append(LoadIssue(file, f"trajectory id {traj.id!r} is already used by line {first[0]} with "
                                                     f"different content; line {lineno} skipped", line=lineno, field="id"))
    except OSError as exc:
        result.issues.append(LoadIssue(file, f"cannot read file: {exc.strerror or exc}"))
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


def load_file(path: str | Path, fmt: str) -> LoadResult:
    """Read one file of a non-canonical format into a `LoadResult` (spans kept in ``.spans``)."""
    path = Path(path)
    result = LoadResult(format=fmt)
    if fmt not in FORMATS:
        result.issues.append(LoadIssue(str(path), f"unknown format {fmt!r}; known: {', '.join(FORMATS)}"))
        return result
    try:  # each reader is imported only when its format is read
        if fmt == "aider-chat-history":
            from auditor.collectors.aider import load_chat_history

            trajs, issues = load_chat_history(path)
            result.trajectories.extend(trajs)
            result.issues.extend(issues)
            return result
        if fmt == "aider-llm-history":
            from auditor.collectors.aider import load_llm_history

            trajs, issues = load_llm_history(path)
            result.trajectories.extend(trajs)
            result.issues.extend(issues)
            return result
        from auditor.collectors.readers import read_console, read_otlp_json

        spans, issues = read_otlp_json(path) if fmt == "otlp-json" else read_console(path)
    except OSError as exc:
        result.issues.append(LoadIssue(str(path), f"cannot read file: {exc.strerror or exc}"))
        return result
    except Exception as exc:  # noqa: BLE001 - readers report per record; this is a last resort
        result.issues.append(LoadIssue(str(path), f"internal error reading the file ({type(exc).__name__}: {exc})"))
        return result
    from auditor.collectors.assemble import assemble_trajectories

    result.spans.extend(spans)
    result.issues.extend(issues)
    trajs, more = assemble_trajectories(spans)
    result.trajectories.extend(trajs)
    result.issues.extend(more)
    return result


def load_path(path: str | Path, fmt: str | None = None) -> LoadResult:
    """Load any supported file into trajectories, keeping raw spans and reporting every issue."""
    path = Path(path)
    if not path.exists():
        return LoadResult(issues=[LoadIssue(str(path), "file not found")])
    fmt = fmt or sniff_format(path)
    if fmt == "trajectory-jsonl":
        return load_trajectory_jsonl(path)
    result = load_file(path, fmt)
    result.format = fmt
    return result


def load_paths(paths: list[str | Path], fmt: str | None = None) -> LoadResult:
    total = LoadResult(format=fmt or "mixed")
    for p in paths:
        total.extend(load_path(p, fmt))
    return total
