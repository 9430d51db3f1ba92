"""auditor.collectors: turn what agents do into trajectories.

- `loading`: `load_path(s)` reads any supported file (format sniffed) into a `LoadResult`;
  `load_file(path, fmt)` the non-canonical formats (`FORMATS`). `issues`: `LoadIssue`, `LoadResult`.
- `instrument`: OpenTelemetry capture of agent runs (`OpenAIInstrumentor`, `tool_span`,
  `traced_tool`, `agent_span`); with a guard, `UnsupportedToolCall` (`guarding`).
- `exporters`: `JsonlSpanExporter` (the ``run.jsonl`` file) and `setup_tracing`.
- `receiver`: `OTLPReceiver`, the OTLP/HTTP endpoint behind ``audit collect`` (its connections:
  `http_server`); `grpc_receiver`: `OTLPGrpcReceiver`, the OTLP/gRPC one (``--grpc``); both
  validate requests through `otlp_request`.
- `sanitize`: the rules every reader and receiver applies to untrusted input (nesting depth,
  lone surrogates, invalid UTF-8, line splitting).
- `spans`: `SpanRecord`; `readers`: span dump files; `assemble`: spans -> trajectories.
- `aider`: importers for Aider's chat history and LLM history logs.

Nothing is imported until it is first used: ``from auditor.collectors import load_file`` loads
only what reading files needs, not OpenTelemetry or openai.
"""

from __future__ import annotations

_LAZY = {
    "FORMATS": "loading", "load_file": "loading", "assemble_trajectories": "assemble",
    "OpenAIInstrumentor": "instrument", "tool_span": "instrument", "traced_tool": "instrument",
    "agent_span": "instrument", "UnsupportedToolCall": "guarding", "JsonlSpanExporter": "exporters", "setup_tracing": "exporters",
    "OTLPReceiver": "receiver", "OTLPGrpcReceiver": "grpc_receiver", "SpanRecord": "spans",
}


def __getattr__(name: str) -> object:
    """``from auditor.collectors import OpenAIInstrumentor`` etc., imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor.collectors' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"auditor.collectors.{module}"), name)


__all__ = list(_LAZY)
