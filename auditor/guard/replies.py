"""Chat completion replies as the proxy sees them: checked for the shape the guard needs, rebuilt
from a stream's chunks, and rewritten when a call is blocked.

A reply whose shape is wrong (no ``choices`` list, a message that is not an object, a tool call
without a function name or with arguments that are neither a string nor an object, a chunk that is
not JSON) is `UpstreamError` 502 ``upstream_malformed`` naming the field: a malformed reply is never
passed on as if it had no tool calls.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from auditor.guard.upstream import Upstream, UpstreamError


def _bad(upstream: Upstream, where: str, what: str) -> UpstreamError:
    return UpstreamError(502, "upstream_malformed", f"upstream {upstream.base_url} returned a malformed chat "
                         f"completion: {where} {what}")


def _check_calls(upstream: Upstream, calls: Any, where: str) -> None:
    if calls is None:
        return
    if not isinstance(calls, list):
        raise _bad(upstream, where, "is not a list")
    for k, c in enumerate(calls):
        here = f"{where}[{k}]"
        if not isinstance(c, Mapping) or not isinstance(c.get("function"), Mapping):
            raise _bad(upstream, here, "has no function object")
        fn = c["function"]
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad(upstream, f"{here}.function.name", "is missing or not a string")
        if not isinstance(fn.get("arguments"), (str, Mapping)):
            raise _bad(upstream, f"{here}.function.arguments", "is neither a string nor an object")


def completion_replies(upstream: Upstream, data: Any) -> dict[int, dict[str, Any]]:
    """Choice index -> its assistant message, for the choices whose message carries tool calls."""
    if not isinstance(data, Mapping) or not isinstance(data.get("choices"), list):
        raise _bad(upstream, "the body", "has no 'choices' list")
    out = {}
    for k, choice in enumerate(data["choices"]):
        if not isinstance(choice, Mapping) or not isinstance(choice.get("message"), Mapping):
            raise _bad(upstream, f"choices[{k}].message", "is not an object")
        msg = choice["message"]
        _check_calls(upstream, msg.get("tool_calls"), f"choices[{k}].message.tool_calls")
        if msg.get("tool_calls"):
            out[int(choice.get("index", k))] = {"role": "assistant", **msg}
    return out


def block_completion(data: dict[str, Any], blocked: set[int], text: str) -> dict[str, Any]:
    """The reply with each blocked choice's message replaced by ``text`` (no tool calls)."""
    out = copy.deepcopy(data)
    for k, choice in enumerate(out["choices"]):
        if int(choice.get("index", k)) in blocked:
            choice["message"] = {"role": "assistant", "content": text}
            choice["finish_reason"] = "stop"
    return out


class StreamReply:
    """Chat completion chunks -> each choice's assistant message (content, reasoning, tool calls)."""

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.choices: dict[int, dict[str, Any]] = {}
        self.base: dict[str, Any] = {}

    def add(self, payload: str) -> dict[str, Any]:
        """Read one event's data; return the chunk. Raises `UpstreamError` when it is malformed."""
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise UpstreamError(502, "upstream_malformed", f"upstream {self.upstream.base_url} sent a stream event "
                                f"that is not JSON ({exc.msg}): {payload[:120]!r}") from None
        if not isinstance(chunk, Mapping):
            raise _bad(self.upstream, "a stream chunk", "is not an object")
        if "error" in chunk and "choices" not in chunk:
            return dict(chunk)  # the upstream's own error event: relayed as it is
        if not isinstance(chunk.get("choices", []), list):
            raise _bad(self.upstream, "a stream chunk's choices", "is not a list")
        for key in ("id", "object", "created", "model"):
            if key in chunk and key not in self.base:
                self.base[key] = chunk[key]
        for c in chunk.get("choices", []):
            if not isinstance(c, Mapping) or not isinstance(c.get("delta", {}), Mapping):
                raise _bad(self.upstream, "a stream chunk's choice", "has no delta object")
            st = self.choices.setdefault(int(c.get("index", 0)), {"content": [], "reasoning": [], "calls": {}})
            delta = c.get("delta") or {}
            if delta.get("content"):
                st["content"].append(str(delta["content"]))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                st["reasoning"].append(str(reasoning))
            calls = delta.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                raise _bad(self.upstream, "a stream chunk's tool_calls", "is not a list")
            for tc in calls or []:
                if not isinstance(tc, Mapping) or not isinstance(tc.get("index", 0), int):
                    raise _bad(self.upstream, "a streamed tool call", "has no integer index")
                call = st["calls"].setdefault(tc.get("index", 0), {"id": None, "name": "", "arguments": []})
                if tc.get("id"):
                    call["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    call["name"] += str(fn["name"])
                if fn.get("arguments"):
                    call["arguments"].append(str(fn["arguments"]))
        return dict(chunk)

    def has_calls(self) -> bool:
        return any(st["calls"] for st in self.choices.values())

    def replies(self) -> dict[int, dict[str, Any]]:
        out = {}
        for index, st in sorted(self.choices.items()):
            if not st["calls"]:
                continue
            calls = []
            for k, call in sorted(st["calls"].items()):
                if not call["name"]:
                    raise _bad(self.upstream, f"streamed tool call {k} of choice {index}", "never got a function name")
                calls.append({"id": call["id"], "type": "function",
                              "function": {"name": call["name"], "arguments": "".join(call["arguments"])}})
            msg: dict[str, Any] = {"role": "assistant", "content": "".join(st["content"]) or None, "tool_calls": calls}
            if st["reasoning"]:
                msg["reasoning_content"] = "".join(st["reasoning"])
            out[index] = msg
        return out


def sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def blocked_events(pending: list[tuple[bytes, dict[str, Any] | None]], blocked: set[int], text: str,
                   base: dict[str, Any]) -> list[bytes]:
    """The held-back events of a stream with every blocked choice's deltas dropped, then, per
    blocked choice, ``text`` as its content and ``finish_reason = "stop"``."""
    out = []
    for raw, chunk in pending:
        if chunk is None or not chunk.get("choices"):
            out.append(raw)
            continue
        kept = [c for c in chunk["choices"] if int(c.get("index", 0)) not in blocked]
        if kept:
            out.append(sse({**chunk, "choices": kept}))
    head = {k: base[k] for k in ("id", "object", "created", "model") if k in base}
    for index in sorted(blocked):
        out.append(sse({**head, "choices": [{"index": index, "delta": {"role": "assistant", "content": text},
                                             "finish_reason": None}]}))
        out.append(sse({**head, "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]}))
    return out


__all__ = ["completion_replies", "block_completion", "StreamReply", "blocked_events", "sse"]
