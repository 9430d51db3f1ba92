"""Reading messages as libraries write them, shared by the conventions: JSON message lists (GenAI
``{"role", "parts"}`` messages or OpenAI-format ones), OpenAI content, flattened ``{prefix}{i}.{rest}``
attributes, and role names.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Mapping

from auditor.collectors.conventions.base import Msg

_ROLE_MAP = {"developer": "system", "model": "assistant", "function": "tool", "human": "user", "ai": "assistant"}


def loads(value: Any) -> Any:
    """JSON text (or bytes) -> its value, None when it is not JSON; anything else as it is."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep to be message JSON
            return None
    return value


def as_text(value: Any) -> str:
    """Text as it is, None as empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def norm_role(raw: Any) -> str:
    """A role as the trajectory names it (``developer`` -> ``system``, ``model``/``ai`` -> ``assistant`` ...)."""
    r = str(raw or "user").lower()
    return _ROLE_MAP.get(r, r)


def from_parts(m: Mapping[str, Any]) -> list[Msg]:
    """One GenAI ``{"role", "parts", "name"?, "finish_reason"?}`` message -> messages."""
    role = norm_role(m.get("role"))
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    responses: list[tuple[Any, Any]] = []
    other: list[dict[str, Any]] = []
    for p in m.get("parts") or []:
        if isinstance(p, str):
            texts.append(p)
            continue
        if not isinstance(p, Mapping):
            continue
        t = p.get("type")
        if t == "text":
            texts.append(as_text(p.get("content", p.get("text"))))
        elif t in ("reasoning", "thinking"):
            reasoning.append(as_text(p.get("content")))
        elif t == "tool_call":
            calls.append({"id": p.get("id"), "name": p.get("name"), "arguments": p.get("arguments")})
        elif t == "tool_call_response":
            responses.append((p.get("id"), p.get("response", p.get("result"))))
        else:
            other.append(dict(p))
    meta = {"parts": other} if other else {}
    if responses:
        return [Msg("tool", as_text(resp), tool_call_id=str(cid) if cid else None, name=m.get("name"), metadata=meta)
                for cid, resp in responses]
    return [Msg(role, "".join(texts), reasoning="".join(reasoning) or None, tool_calls=calls,
                 name=m.get("name") if role == "tool" else None, finish_reason=m.get("finish_reason"),
                 metadata=meta)]


def openai_content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        parsed = loads(content) if content[:1] == "[" else None
        if isinstance(parsed, list) and parsed and all(isinstance(p, Mapping) and "type" in p for p in parsed):
            return openai_content(parsed)
        return content
    if isinstance(content, list):
        return "".join(as_text(p.get("text", p.get("content", ""))) for p in content
                       if isinstance(p, Mapping) and p.get("type") in ("text", "input_text", "output_text", None))
    return as_text(content)


def from_openai(m: Mapping[str, Any], finish: Any = None) -> list[Msg]:
    """An OpenAI-format message (``content``/``tool_calls``) -> messages."""
    role = norm_role(m.get("role"))
    calls = []
    for c in m.get("tool_calls") or []:
        if isinstance(c, Mapping):
            fn = c.get("function") or {}
            calls.append({"id": c.get("id"), "name": fn.get("name", c.get("name")),
                          "arguments": fn.get("arguments", c.get("arguments"))})
    return [Msg(role, openai_content(m.get("content")),
                 reasoning=m.get("reasoning_content") or m.get("reasoning") or None,
                 tool_calls=calls, tool_call_id=m.get("tool_call_id"),
                 name=m.get("name") if role == "tool" else None,
                 finish_reason=finish or m.get("finish_reason"))]


def messages_json(value: Any) -> list[Msg] | None:
    """A JSON list of messages (GenAI parts or OpenAI format; or ``{"messages": [...]}``), None when unreadable."""
    data = loads(value)
    if data is None:
        return None
    if isinstance(data, Mapping):
        data = data.get("messages", [data])
    if not isinstance(data, list):
        return None
    out: list[Msg] = []
    for m in data:
        if not isinstance(m, Mapping):
            continue
        if "parts" in m:
            out.extend(from_parts(m))
        elif isinstance(m.get("message"), Mapping):  # {"index", "finish_reason", "message": {...}}
            out.extend(from_openai(m["message"], m.get("finish_reason")))
        else:
            out.extend(from_openai(m))
    return out


_IDX = re.compile(r"^([0-9]{1,9})\.(.+)$")


def indexed(attrs: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``{prefix}{i}.{rest}`` keys -> {i: {rest: value}}, ordered by i."""
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    n = len(prefix)
    for k, v in attrs.items():
        if k.startswith(prefix):
            m = _IDX.match(k[n:])
            if m:
                out[int(m.group(1))][m.group(2)] = v
    return dict(sorted(out.items()))


def merge_assistant_turns(msgs: list[Msg] | None) -> list[Msg] | None:
    """Consecutive assistant messages -> one (texts and reasoning joined, tool calls in order).

    For Responses API spans only: there one model turn is several output items (reasoning, a
    message, each function call), which some libraries write as one message each, while the
    turn is one assistant message in the trajectory (as the Chat Completions API has it).
    """
    if not msgs:
        return msgs
    out: list[Msg] = []
    for m in msgs:
        prev = out[-1] if out else None
        if prev is None or m.role != "assistant" or prev.role != "assistant":
            out.append(m)
            continue
        prev.content += m.content
        if m.reasoning:
            prev.reasoning = (prev.reasoning or "") + m.reasoning
        prev.tool_calls = prev.tool_calls + m.tool_calls
        prev.finish_reason = m.finish_reason or prev.finish_reason
        prev.metadata = {**prev.metadata, **m.metadata}
    return out


def summary_text(value: Any) -> str:
    """A reasoning text that a library wrote as the JSON of a Responses ``summary`` list
    (``[{"type": "summary_text", "text": ...}]``) -> the texts joined; any other text as it is."""
    if not isinstance(value, str) or not value.startswith("["):
        return as_text(value)
    data = loads(value)
    if isinstance(data, list) and data and all(isinstance(p, Mapping) and "text" in p for p in data):
        return "".join(as_text(p["text"]) for p in data)
    return value
