"""auditor.guard: stop an unsupported tool call before it runs.

The same evidence and policy as `audit check`, asked before a tool executes instead of after the
run: `Guard.check(messages, tool_call, tools) -> Verdict` (allowed or blocked, the judged score,
the deciding evidence, the top drivers quoted). Where agents plug it in:

- the OpenAI instrumentor: ``OpenAIInstrumentor().instrument(guard=Guard(), on_unsupported="raise")``
  (raises `UnsupportedToolCall`, or ``"annotate"``: records the verdicts on the span);
- `audit guard`: an OpenAI-compatible HTTP proxy in front of vLLM (`auditor.guard.proxy`);
- `guarded`: a decorator for tool functions, for agents without the OpenAI client.

A conversation that grows a turn at a time is captured incrementally (the states of its prefix are
kept in a `StateCacheStore`, within a memory budget; only the new tokens are forwarded).

Names are imported on first use (the proxy needs no model until it judges).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Guard": "guard",
    "DEFAULT_STATE_BUDGET": "guard",
    "Verdict": "verdict",
    "GuardInputError": "conversation",
    "guarded": "decorator",
    "guard_context": "decorator",
    "GuardProxy": "proxy",
    "UnsupportedToolCall": "auditor.collectors.guarding",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor.guard' has no attribute {name!r}")
    path = module if module.startswith("auditor") else f"auditor.guard.{module}"
    return getattr(import_module(path), name)
