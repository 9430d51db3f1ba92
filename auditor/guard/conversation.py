"""What a guard is asked about -> the trajectory it audits.

A guard is called with the conversation the model saw (OpenAI chat messages, GenAI
``{"role", "parts"}`` messages as the instrumentor records them for the Responses API, or
`auditor.trajectory.Message` objects; pydantic objects from the ``openai`` client are read as
their dicts), the reply that carries the tool calls and the tools offered. Bad input is the
caller's bug: it raises `GuardInputError` naming the message, never a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from auditor.actions import with_actions
from auditor.collectors.capture import as_plain
from auditor.collectors.conventions.parsing import from_openai, from_parts
from auditor.collectors.genai_messages import openai_tools_to_genai
from auditor.trajectory import Action, ActionKind, Message, ToolCall, ToolDefinition, Trajectory


class GuardInputError(ValueError):
    """A conversation, reply, tool call or tool list the guard cannot read; the message says where."""


def _message(raw: Any, where: str) -> list[Message]:
    if isinstance(raw, Message):
        return [raw]
    m = as_plain(raw)
    if not isinstance(m, Mapping) or "role" not in m:
        raise GuardInputError(f"{where}: expected a chat message with a role, got {type(raw).__name__}")
    msgs = from_parts(m) if "parts" in m else from_openai(m)
    out = []
    for k, msg in enumerate(msgs):
        calls = []
        for j, c in enumerate(msg.tool_calls):
            if not c.get("name"):
                raise GuardInputError(f"{where}: tool call {j} has no function name")
            try:
                calls.append(ToolCall(id=str(c.get("id") or f"call_{where}_{j}"), name=str(c["name"]),
                                      arguments=c.get("arguments") or {}))
            except (ValidationError, ValueError) as exc:
                raise GuardInputError(f"{where}: tool call {j} ({c.get('name')}): {exc}") from None
        role = msg.role if msg.role in ("system", "user", "assistant", "tool") else None
        if role is None:
            raise GuardInputError(f"{where}: unknown role {msg.role!r}")
        try:
            out.append(Message(role=role, content=msg.content, reasoning=msg.reasoning if role == "assistant" else None,
                               tool_calls=calls if role == "assistant" else [],
                               tool_call_id=msg.tool_call_id if role == "tool" else None,
                               name=msg.name if role == "tool" else None))
        except ValidationError as exc:
            raise GuardInputError(f"{where}: {exc.errors()[0]['msg']}") from None
    return out


def read_messages(messages: Sequence[Any], where: str = "messages") -> list[Message]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise GuardInputError(f"{where}: expected a list of chat messages, got {type(messages).__name__}")
    out: list[Message] = []
    for i, m in enumerate(messages):
        out.extend(_message(m, f"{where}[{i}]"))
    return out


def read_tools(tools: Sequence[Any] | None) -> list[ToolDefinition]:
    """OpenAI tool definitions (chat ``{"type": "function", "function": {...}}`` or Responses' flat
    ones; other tool kinds, such as built-in tools, are not function definitions and are skipped)."""
    out = []
    for i, t in enumerate(openai_tools_to_genai(tools or [])):
        if t.get("type", "function") != "function" or not t.get("name"):
            continue
        try:
            out.append(ToolDefinition(name=str(t["name"]), description=str(t.get("description") or ""),
                                      parameters=t.get("parameters") or {}))
        except ValidationError as exc:
            raise GuardInputError(f"tools[{i}]: {exc.errors()[0]['msg']}") from None
    return out


def tool_call_message(tool_call: Any) -> dict[str, Any]:
    """One tool call (chat ``{"id", "type", "function": {"name", "arguments"}}``, a flat
    ``{"id"/"call_id", "name", "arguments"}``, a `ToolCall` or an ``openai`` object) as the
    assistant message that makes it."""
    if isinstance(tool_call, ToolCall):
        return {"role": "assistant", "content": "", "tool_calls": [
            {"id": tool_call.id, "type": "function", "function": {"name": tool_call.name,
                                                                  "arguments": tool_call.arguments}}]}
    c = as_plain(tool_call)
    if not isinstance(c, Mapping):
        raise GuardInputError(f"tool_call: expected a tool call object, got {type(tool_call).__name__}")
    fn = c.get("function") if isinstance(c.get("function"), Mapping) else c
    call = {"id": c.get("id") or c.get("call_id"), "type": "function",
            "function": {"name": fn.get("name"), "arguments": fn.get("arguments")}}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def _same_call(call: ToolCall, wanted: dict[str, Any]) -> bool:
    fn = wanted["function"]
    if wanted.get("id"):
        return call.id == wanted["id"]
    probe = ToolCall(id="probe", name=str(fn.get("name") or "?"), arguments=fn.get("arguments") or {})
    return call.name == probe.name and call.arguments == probe.arguments


def split_reply(messages: Sequence[Any], tool_call: Any) -> tuple[list[Any], Any]:
    """(the conversation before the reply, the reply that makes ``tool_call``): the last assistant
    message when it makes this call (same id; without an id, same name and arguments) and only
    tool results follow it (an agent that appended the reply, and maybe the results of the
    reply's earlier calls, before running this one); else ``messages`` and a reply of this call alone."""
    wanted = tool_call_message(tool_call)["tool_calls"][0]
    msgs = list(messages)
    for i in range(len(msgs) - 1, -1, -1):
        role = msgs[i].role if isinstance(msgs[i], Message) else (as_plain(msgs[i]) or {}).get("role")
        if role == "tool":
            continue
        if role == "assistant":
            parsed = _message(msgs[i], f"messages[{i}]")
            if any(_same_call(c, wanted) for m in parsed for c in m.tool_calls):
                return msgs[:i], msgs[i]
        break
    return msgs, tool_call_message(tool_call)


def same_call_index(reply: Any, tool_call: Any) -> int:
    """Which of ``reply``'s tool calls is ``tool_call`` (by id, else by name and arguments)."""
    wanted = tool_call_message(tool_call)["tool_calls"][0]
    calls = [c for m in _message(reply, "reply") for c in m.tool_calls]
    return next((k for k, c in enumerate(calls) if _same_call(c, wanted)), len(calls) - 1)


def conversation(messages: Sequence[Any], reply: Any, tools: Sequence[Any] | None = None,
                 conversation_id: str = "guard") -> tuple[Trajectory, list[Action]]:
    """The trajectory ``messages + [reply]`` (tools offered: ``tools``) and the tool-call actions
    of ``reply``, in call order (what the guard judges)."""
    history = read_messages(messages)
    replies = _message(reply, "reply")
    if len(replies) != 1 or replies[0].role != "assistant":
        raise GuardInputError("reply: expected one assistant message")
    if not replies[0].tool_calls:
        raise GuardInputError("reply: the assistant message carries no tool calls")
    try:
        traj = Trajectory(id=conversation_id, source="guard", messages=[*history, *replies], tools=read_tools(tools))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise GuardInputError(f"messages: {err['msg']}") from None
    traj = with_actions(traj)
    last = len(traj.messages) - 1
    judged = [a for a in traj.actions if a.message_index == last and a.kind == ActionKind.tool_call]
    return traj, judged


__all__ = ["GuardInputError", "conversation", "split_reply", "same_call_index", "read_messages", "read_tools", "tool_call_message"]
