"""auditor.collectors: turn what agents do into trajectories.

- `instrument`: OpenTelemetry capture of agent runs (`OpenAIInstrumentor`, `tool_span`,
  `traced_tool`, `agent_span`).
- `exporters`: `JsonlSpanExporter` (the ``run.jsonl`` file) and `setup_tracing`.
- `receiver`: `OTLPReceiver`, the OTLP/HTTP endpoint behind ``audit collect``.
- `grpc_receiver`: `OTLPGrpcReceiver`, the OTLP/gRPC endpoint behind ``audit collect --grpc``.
- `spans`: `SpanRecord` and converters; `assemble`: spans -> trajectories.
- `aider`: importers for Aider's chat history and LLM history logs.

`load_file(path, fmt)` is what `auditor.loading.load_path` calls for non-canonical formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from auditor.loading import LoadIssue, LoadResult

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.spans import SpanRecord
    from auditor.trajectory import Trajectory

FORMATS = ("otlp-json", "otel-console", "aider-chat-history", "aider-llm-history")


def assemble_trajectories(spans: "list[SpanRecord]") -> "tuple[list[Trajectory], list[LoadIssue]]":
    """Spans of any number of traces -> trajectories (one per agent run) and issues."""
    from auditor.collectors.assemble import assemble_trajectories as _assemble

    return _assemble(spans)


def load_file(path: str | Path, fmt: str) -> LoadResult:
    """Read one file of a non-canonical format into a `LoadResult` (spans kept in ``.spans``)."""
    path = Path(path)
    result = LoadResult(format=fmt)
    if fmt not in FORMATS:
        result.issues.append(LoadIssue(str(path), f"unknown format {fmt!r}; known: {', '.join(FORMATS)}"))
        return result
    try:
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
    result.spans.extend(spans)
    result.issues.extend(issues)
    trajs, more = assemble_trajectories(spans)
    result.trajectories.extend(trajs)
    result.issues.extend(more)
    return result


_LAZY = {
    "OpenAIInstrumentor": "instrument", "tool_span": "instrument", "traced_tool": "instrument",
    "agent_span": "instrument", "JsonlSpanExporter": "exporters", "setup_tracing": "exporters",
    "OTLPReceiver": "receiver", "OTLPGrpcReceiver": "grpc_receiver", "SpanRecord": "spans",
}


def __getattr__(name: str) -> object:
    """``from auditor.collectors import OpenAIInstrumentor`` etc., imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor.collectors' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"auditor.collectors.{module}"), name)


__all__ = ["FORMATS", "assemble_trajectories", "load_file", *_LAZY]
