"""OpenAI wire format -> GenAI semantic-convention messages (``{"role", "parts"}``) and tool
definitions, for the ``gen_ai.input.messages`` / ``gen_ai.output.messages`` /
``gen_ai.tool.definitions`` span attributes: chat completions messages, and the Responses API's
``instructions``, input items and output items (whose ``status`` also gives a chat-style finish
reason). Inputs may be dicts or the openai client's pydantic objects.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from auditor.collectors.capture import as_plain, to_json


def is_given(v: Any) -> bool:
    """Not None and not openai's NOT_GIVEN / omit sentinels."""
    if v is None:
        return False
    return type(v).__name__ not in ("NotGiven", "Omit")


def get_field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for pydantic objects."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _arguments(value: Any) -> Any:
    """Tool-call arguments as an object when they are a JSON object, else verbatim."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        return parsed if isinstance(parsed, dict) else value
    return value


# -- OpenAI wire format -> GenAI semantic-convention messages ----------------------------------------------


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for p in content:
        p = as_plain(p)
        if not isinstance(p, Mapping):
            parts.append({"type": "text", "content": str(p)})
            continue
        kind = p.get("type")
        if kind in ("text", "input_text", "output_text"):  # chat; Responses input / output
            parts.append({"type": "text", "content": p.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "content": p.get("refusal", "")})
        elif kind in ("image_url", "input_image"):
            url = p.get("image_url") or ""
            url = url.get("url", "") if isinstance(url, Mapping) else str(url)  # chat: {"url"}; Responses: str
            if not url and p.get("file_id"):
                parts.append({"type": "file", "modality": "image", "file_id": p.get("file_id")})
            elif url.startswith("data:"):
                parts.append({"type": "blob", "modality": "image", "mime_type": url[5:].split(";", 1)[0],
                              "content": url.split(",", 1)[-1]})
            else:
                parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind == "input_file":
            d = {"type": "file", "file_id": p.get("file_id"), "filename": p.get("filename")}
            if p.get("file_url"):
                d["uri"] = p["file_url"]
            parts.append(d)
        elif kind == "input_audio":
            audio = p.get("input_audio") or {}
            parts.append({"type": "blob", "modality": "audio", "mime_type": f"audio/{audio.get('format', '')}",
                          "content": audio.get("data", "")})
        elif kind == "file":
            f = p.get("file") or {}
            parts.append({"type": "file", "file_id": f.get("file_id"), "filename": f.get("filename")})
        else:
            parts.append(dict(p))
    return parts


def openai_message_to_genai(message: Any) -> dict[str, Any]:
    """One OpenAI chat message (dict or pydantic) -> a GenAI ``{"role", "parts"}`` message."""
    m = as_plain(message)
    role = m.get("role", "user")
    parts: list[dict[str, Any]] = []
    reasoning = m.get("reasoning_content") or m.get("reasoning")
    if reasoning and role == "assistant":
        parts.append({"type": "reasoning", "content": reasoning})
    if role == "tool":
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("content", "") for p in _content_parts(content) if p.get("type") == "text")
        parts.append({"type": "tool_call_response", "id": m.get("tool_call_id"), "response": content or ""})
    else:
        parts.extend(_content_parts(m.get("content")))
    for call in m.get("tool_calls") or []:
        call = as_plain(call)
        fn = call.get("function") or {}
        parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name"),
                      "arguments": _arguments(fn.get("arguments"))})
    fc = m.get("function_call")
    if fc:
        fc = as_plain(fc)
        parts.append({"type": "tool_call", "id": None, "name": fc.get("name"), "arguments": _arguments(fc.get("arguments"))})
    out: dict[str, Any] = {"role": role, "parts": parts}
    if m.get("name"):
        out["name"] = m["name"]
    return out


def openai_tools_to_genai(tools: Any) -> list[dict[str, Any]]:
    out = []
    for t in tools or []:
        t = as_plain(t)
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping) or (isinstance(t, Mapping) and t.get("type") == "function" and "name" in t):
            fn = fn if isinstance(fn, Mapping) else t  # chat: {"function": {...}}; Responses: flat
            d = {"type": t.get("type", "function"), "name": fn.get("name")}
            if fn.get("description") is not None:
                d["description"] = fn.get("description")
            if fn.get("parameters") is not None:
                d["parameters"] = fn.get("parameters")
            out.append(d)
        elif isinstance(t, Mapping):
            out.append(dict(t))
    return out


def choice_output(message: Any, finish_reason: Any) -> dict[str, Any]:
    msg = openai_message_to_genai(message)
    msg["role"] = "assistant"
    msg["finish_reason"] = finish_reason or ""
    return msg


# -- OpenAI Responses API items -> GenAI semantic-convention messages ------------------------------------------

TOOL_CALL_ITEMS = {"function_call": "arguments", "custom_tool_call": "input"}
_TOOL_OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")


def _text_of(content: Any) -> str:
    """A tool output (a string or a list of content parts) as text."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = _content_parts(content)
        texts = [p.get("content", "") for p in parts if p.get("type") == "text"]
        return "".join(texts) if texts or not parts else to_json(parts)
    return to_json(as_plain(content))


def _reasoning_text(item: Mapping[str, Any]) -> str:
    """A ``reasoning`` item's text: its full reasoning text (vLLM) when present, else its summary."""
    full = [get_field(c, "text") or "" for c in item.get("content") or [] if get_field(c, "type") in ("reasoning_text", None)]
    if any(full):
        return "".join(full)
    return "\n\n".join(get_field(c, "text") or "" for c in item.get("summary") or [])


def responses_items_to_genai(items: Any) -> list[dict[str, Any]]:
    """Responses API items (input or output; dicts or pydantic) -> GenAI messages.

    Consecutive assistant-side items (assistant messages, ``function_call``, ``reasoning``, and
    other item kinds such as built-in tool calls, kept as generic parts) make one assistant
    message, so a response's output and the same items sent back as history read alike.
    """
    out: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None

    def assistant() -> list[dict[str, Any]]:
        nonlocal group
        if group is None:
            group = {"role": "assistant", "parts": []}
            out.append(group)
        return group["parts"]

    for raw in items or []:
        if isinstance(raw, str):
            group = None
            out.append({"role": "user", "parts": [{"type": "text", "content": raw}]})
            continue
        it = as_plain(raw)
        if not isinstance(it, Mapping):
            continue
        kind = it.get("type")
        role = it.get("role")
        if role is not None and kind in (None, "message"):
            if role == "assistant":
                assistant().extend(_content_parts(it.get("content")))
            else:
                group = None
                out.append({"role": role, "parts": _content_parts(it.get("content"))})
        elif kind in TOOL_CALL_ITEMS:
            assistant().append({"type": "tool_call", "id": it.get("call_id"), "name": it.get("name"),
                                "arguments": _arguments(it.get(TOOL_CALL_ITEMS[kind]))})
        elif kind in _TOOL_OUTPUT_ITEMS:
            group = None
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": it.get("call_id"),
                                                   "response": _text_of(it.get("output"))}]})
        elif kind == "reasoning":
            text = _reasoning_text(it)
            if text:
                assistant().append({"type": "reasoning", "content": text})
        else:
            assistant().append(dict(it))
    return out


def responses_input_to_genai(instructions: Any, input: Any) -> list[dict[str, Any]]:
    """``instructions`` (a system message) and ``input`` (a string: one user message) -> GenAI messages."""
    out: list[dict[str, Any]] = []
    if is_given(instructions) and instructions:
        if isinstance(instructions, str):
            out.append({"role": "system", "parts": [{"type": "text", "content": instructions}]})
        else:  # a Response object echoes instructions as a list of input items
            out.extend(responses_items_to_genai(instructions))
    if is_given(input) and input is not None:
        out.extend(responses_items_to_genai([input] if isinstance(input, str) else input))
    return out


def responses_finish_reason(status: Any, incomplete_details: Any = None, items: Any = ()) -> str:
    """A response's ``status`` as a chat-style finish reason."""
    if status == "completed":
        calls = any(get_field(i, "type") in TOOL_CALL_ITEMS for i in items or [])
        return "tool_calls" if calls else "stop"
    if status == "incomplete":
        reason = get_field(incomplete_details, "reason")
        return {"max_output_tokens": "length"}.get(reason, reason or "incomplete")
    if status == "failed":
        return "error"
    return "" if status in (None, "in_progress", "queued") else str(status)


def responses_output_to_genai(items: Any, finish_reason: str) -> list[dict[str, Any]]:
    msgs = responses_items_to_genai(items)
    for m in msgs:
        m["role"] = "assistant"
        m["finish_reason"] = finish_reason
    return msgs
