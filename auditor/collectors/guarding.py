"""Judging tool calls before the caller sees them: the seam between the collectors and a guard.

The collectors stand below the guard (`auditor.guard`, which needs the audit and the check), so
they never import it: `OpenAIInstrumentor.instrument(guard=..., on_unsupported=...)` takes any
object with a ``check_reply(messages, reply, tools)`` method (`ToolCallJudge`) returning one
verdict per tool call of ``reply`` (objects with ``allowed`` and, optionally,
``span_attributes()``). `UnsupportedToolCall` is defined here so that both the instrumentor (which
raises it) and the guard (which raises it from ``@guarded`` tools) can use it.

What a verdict leaves on the ``chat`` span: one ``auditor.guard.verdict`` event per tool call
(the verdict's ``span_attributes()``), and ``auditor.guard.checked`` / ``auditor.guard.blocked``
counts. With ``on_unsupported="raise"`` a blocked call also marks the span as an error
(``error.type`` = ``UnsupportedToolCall``) and the call raises `UnsupportedToolCall`; with
``"annotate"`` the span only records the verdicts and the caller gets the response unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.trace import Status, StatusCode

from auditor.collectors.capture import as_plain
from auditor.collectors.genai_messages import TOOL_CALL_ITEMS, get_field, responses_input_to_genai, responses_output_to_genai

GUARD_MODES = ("raise", "annotate")
EVENT_NAME = "auditor.guard.verdict"


class UnsupportedToolCall(Exception):
    """A tool call the guard blocked: ``verdict`` is the first blocked call's verdict,
    ``verdicts`` every blocked one of the reply (each says why, with its evidence)."""

    def __init__(self, verdict: Any, verdicts: Sequence[Any] | None = None):
        self.verdict = verdict
        self.verdicts = list(verdicts) if verdicts is not None else [verdict]
        super().__init__(_describe(verdict))


def _describe(verdict: Any) -> str:
    message = getattr(verdict, "message", None)
    if message:
        return str(message)
    name = getattr(verdict, "tool_name", None) or "tool call"
    return f"{name} is not supported by the user's request"


class ToolCallJudge(Protocol):
    """What the instrumentor needs from a guard (`auditor.guard.Guard` is one)."""

    def check_reply(self, messages: Sequence[Any], reply: Any, tools: Sequence[Any] | None = None) -> Sequence[Any]: ...


def validate_mode(mode: str) -> str:
    if mode not in GUARD_MODES:
        raise ValueError(f"on_unsupported must be one of {', '.join(GUARD_MODES)}, got {mode!r}")
    return mode


def _attributes(verdict: Any) -> dict[str, Any]:
    attrs = getattr(verdict, "span_attributes", None)
    if callable(attrs):
        return {k: v for k, v in attrs().items() if v is not None}
    return {"auditor.guard.allowed": bool(getattr(verdict, "allowed", False))}


def judge(judge_: ToolCallJudge, span: Any, messages: Sequence[Any], replies: Sequence[Any], tools: Any,
          mode: str) -> UnsupportedToolCall | None:
    """Judge the tool calls of each reply (assistant messages that carry calls), record the
    verdicts on ``span``; return the exception to raise (``mode="raise"`` and a call blocked)."""
    checked: list[Any] = []
    for reply in replies:
        verdicts = list(judge_.check_reply(list(messages), reply, tools))
        checked.extend(verdicts)
    if not checked:
        return None
    blocked = [v for v in checked if not getattr(v, "allowed", False)]
    for v in checked:
        span.add_event(EVENT_NAME, _attributes(v))
    span.set_attribute("auditor.guard.checked", len(checked))
    span.set_attribute("auditor.guard.blocked", len(blocked))
    if blocked and mode == "raise":
        error = UnsupportedToolCall(blocked[0], blocked)
        span.set_attribute("error.type", "UnsupportedToolCall")
        span.set_status(Status(StatusCode.ERROR, str(error)[:500]))
        return error
    return None


def _has_calls(message: Any) -> bool:
    return bool(get_field(message, "tool_calls"))


def chat_replies(response: Any) -> list[dict[str, Any]]:
    """The assistant messages of a chat completion that carry tool calls (one per choice)."""
    out = []
    for choice in get_field(response, "choices") or []:
        message = as_plain(get_field(choice, "message"))
        if isinstance(message, dict) and _has_calls(message):
            out.append({"role": "assistant", **message})
    return out


def chat_history(kwargs: dict[str, Any]) -> list[Any]:
    return [as_plain(m) for m in kwargs.get("messages") or []]


def responses_conversation(history: list[dict[str, Any]], instructions: Any,
                           items: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(messages before the reply, [the reply]) of a Responses API call as GenAI messages: the
    conversation the model saw and its output's tool-calling assistant message, if any."""
    if not any(get_field(i, "type") in TOOL_CALL_ITEMS for i in items or []):
        return [], []
    inputs = responses_input_to_genai(instructions, None) + list(history)
    outputs = responses_output_to_genai(items, "tool_calls")
    calls = [m for m in outputs if any(p.get("type") == "tool_call" for p in m.get("parts", []))]
    if not calls:
        return [], []
    reply = calls[-1]
    before = outputs[:outputs.index(reply)]
    return inputs + before, [reply]


__all__ = ["UnsupportedToolCall", "ToolCallJudge", "GUARD_MODES", "EVENT_NAME", "judge", "chat_replies",
           "chat_history", "responses_conversation", "validate_mode"]
