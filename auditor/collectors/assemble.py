"""Span -> trajectory assembly.

Spans are grouped by trace (and split by ``gen_ai.conversation.id`` when one trace holds
several conversations), ordered by time, and the message list is rebuilt from the last
``chat`` span that captured content: its input messages plus its output. Tool spans are
joined by call id, vLLM's ``llm_request`` spans are attached to the chat span they belong to
(parent span id, else ``gen_ai.request.id`` = ``gen_ai.response.id``).

Accepted conventions: OpenTelemetry GenAI (``gen_ai.input.messages`` / ``gen_ai.output.messages``
/ ``gen_ai.system_instructions`` / ``gen_ai.tool.definitions``), the older flattened
``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` form (OpenLLMetry), ``gen_ai.content.prompt``
span events, and OpenInference (``llm.input_messages.N.message.*``).

A chat span without content still yields a trajectory (``content_captured=False``) whose
assistant messages are placeholders holding the tool calls seen in tool spans, plus a warning
`LoadIssue` naming the span.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

from auditor.collectors.issues import LoadIssue
from auditor.trajectory import Message, ToolCall, ToolDefinition, Trajectory

from auditor.collectors.spans import SpanRecord
from auditor.actions import with_actions

CHAT_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}
_ROLE_MAP = {"developer": "system", "model": "assistant", "function": "tool", "human": "user", "ai": "assistant"}
_VLLM_FIGURES = {
    "gen_ai.request.id": "request_id",
    "gen_ai.usage.prompt_tokens": "prompt_tokens",
    "gen_ai.usage.completion_tokens": "completion_tokens",
    "gen_ai.latency.time_to_first_token": "time_to_first_token",
    "gen_ai.latency.e2e": "e2e",
    "gen_ai.latency.time_in_queue": "time_in_queue",
    "gen_ai.latency.time_in_model_prefill": "time_in_model_prefill",
    "gen_ai.latency.time_in_model_decode": "time_in_model_decode",
    "gen_ai.latency.time_in_model_inference": "time_in_model_inference",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.n": "n",
    "gen_ai.response.finish_reasons": "finish_reasons",
}


# -- classification -----------------------------------------------------------------------------------------


def is_llm_request(sp: SpanRecord) -> bool:
    return sp.name == "llm_request" or any(k.startswith("gen_ai.latency.") for k in sp.attributes)


def span_role(sp: SpanRecord) -> str | None:
    """"chat", "tool", "agent", "llm_request" or None (a span the assembly does not use)."""
    a = sp.attributes
    if is_llm_request(sp):
        return "llm_request"
    op = str(a.get("gen_ai.operation.name", "")).lower()
    oi = str(a.get("openinference.span.kind", "")).upper()
    tl = str(a.get("traceloop.span.kind", "")).lower()
    if op == "execute_tool" or oi == "TOOL" or tl == "tool" or sp.name.startswith("execute_tool"):
        return "tool"
    if op in ("invoke_agent", "create_agent") or oi == "AGENT" or tl in ("agent", "workflow"):
        return "agent"
    if op in CHAT_OPERATIONS or oi == "LLM" or str(a.get("llm.request.type", "")).lower() in ("chat", "completion"):
        return "chat"
    for k in a:
        if k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages.")) \
                or k in ("gen_ai.input.messages", "gen_ai.output.messages"):
            return "chat"
    if sp.name.startswith("chat ") and sp.kind == "CLIENT":
        return "chat"
    return None


# -- message parsing -----------------------------------------------------------------------------------------


@dataclass
class _Msg:
    """A message before validation (so one bad message is reported, not fatal)."""

    role: str
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    finish_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        return (self.role, self.content, tuple(c.get("id") for c in self.tool_calls))


def _loads(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _role(raw: Any) -> str:
    r = str(raw or "user").lower()
    return _ROLE_MAP.get(r, r)


def _from_parts(m: Mapping[str, Any]) -> list[_Msg]:
    """One GenAI ``{"role", "parts", "name"?, "finish_reason"?}`` message -> messages."""
    role = _role(m.get("role"))
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
            texts.append(_as_text(p.get("content", p.get("text"))))
        elif t in ("reasoning", "thinking"):
            reasoning.append(_as_text(p.get("content")))
        elif t == "tool_call":
            calls.append({"id": p.get("id"), "name": p.get("name"), "arguments": p.get("arguments")})
        elif t == "tool_call_response":
            responses.append((p.get("id"), p.get("response", p.get("result"))))
        else:
            other.append(dict(p))
    meta = {"parts": other} if other else {}
    if responses:
        return [_Msg("tool", _as_text(resp), tool_call_id=str(cid) if cid else None, name=m.get("name"), metadata=meta)
                for cid, resp in responses]
    return [_Msg(role, "".join(texts), reasoning="".join(reasoning) or None, tool_calls=calls,
                 name=m.get("name") if role == "tool" else None, finish_reason=m.get("finish_reason"),
                 metadata=meta)]


def _openai_content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        parsed = _loads(content) if content[:1] == "[" else None
        if isinstance(parsed, list) and parsed and all(isinstance(p, Mapping) and "type" in p for p in parsed):
            return _openai_content(parsed)
        return content
    if isinstance(content, list):
        return "".join(_as_text(p.get("text", p.get("content", ""))) for p in content
                       if isinstance(p, Mapping) and p.get("type") in ("text", "input_text", "output_text", None))
    return _as_text(content)


def _from_openai(m: Mapping[str, Any], finish: Any = None) -> list[_Msg]:
    """An OpenAI-format message (``content``/``tool_calls``) -> messages."""
    role = _role(m.get("role"))
    calls = []
    for c in m.get("tool_calls") or []:
        if isinstance(c, Mapping):
            fn = c.get("function") or {}
            calls.append({"id": c.get("id"), "name": fn.get("name", c.get("name")),
                          "arguments": fn.get("arguments", c.get("arguments"))})
    return [_Msg(role, _openai_content(m.get("content")),
                 reasoning=m.get("reasoning_content") or m.get("reasoning") or None,
                 tool_calls=calls, tool_call_id=m.get("tool_call_id"),
                 name=m.get("name") if role == "tool" else None,
                 finish_reason=finish or m.get("finish_reason"))]


def _messages_json(value: Any) -> list[_Msg] | None:
    data = _loads(value)
    if data is None:
        return None
    if isinstance(data, Mapping):
        data = data.get("messages", [data])
    if not isinstance(data, list):
        return None
    out: list[_Msg] = []
    for m in data:
        if not isinstance(m, Mapping):
            continue
        if "parts" in m:
            out.extend(_from_parts(m))
        elif isinstance(m.get("message"), Mapping):  # {"index", "finish_reason", "message": {...}}
            out.extend(_from_openai(m["message"], m.get("finish_reason")))
        else:
            out.extend(_from_openai(m))
    return out


_IDX = re.compile(r"^(\d+)\.(.+)$")


def _indexed(attrs: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``{prefix}{i}.{rest}`` keys -> {i: {rest: value}}, ordered by i."""
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    n = len(prefix)
    for k, v in attrs.items():
        if k.startswith(prefix):
            m = _IDX.match(k[n:])
            if m:
                out[int(m.group(1))][m.group(2)] = v
    return dict(sorted(out.items()))


def _openllmetry(attrs: Mapping[str, Any], prefix: str) -> list[_Msg] | None:
    items = _indexed(attrs, prefix)
    if not items:
        return None
    out = []
    for _, d in items.items():
        calls = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
                 for c in _indexed(d, "tool_calls.").values()]
        if not calls and d.get("function_call.name"):
            calls = [{"id": None, "name": d["function_call.name"], "arguments": d.get("function_call.arguments")}]
        role = _role(d.get("role", "assistant" if prefix.startswith("gen_ai.completion") else "user"))
        out.append(_Msg(role, _openai_content(d.get("content")), tool_calls=calls,
                        tool_call_id=d.get("tool_call_id"), name=d.get("name") if role == "tool" else None,
                        finish_reason=d.get("finish_reason"), reasoning=d.get("reasoning") or None))
    return out


def _openinference(attrs: Mapping[str, Any], prefix: str) -> list[_Msg] | None:
    items = _indexed(attrs, prefix)
    if not items:
        return None
    out = []
    for _, d in items.items():
        content = d.get("message.content")
        if content is None:
            parts = _indexed(d, "message.contents.")
            content = "".join(_as_text(p.get("message_content.text")) for p in parts.values()
                              if p.get("message_content.type", "text") == "text")
        calls = [{"id": c.get("tool_call.id"), "name": c.get("tool_call.function.name"),
                  "arguments": c.get("tool_call.function.arguments")}
                 for c in _indexed(d, "message.tool_calls.").values()]
        role = _role(d.get("message.role"))
        out.append(_Msg(role, _as_text(content), tool_calls=calls, tool_call_id=d.get("message.tool_call_id"),
                        name=d.get("message.name") if role == "tool" else None))
    return out


@dataclass
class _Chat:
    span: SpanRecord
    inputs: list[_Msg] | None
    outputs: list[_Msg] | None
    tools: list[ToolDefinition] | None
    convention: str

    @property
    def has_content(self) -> bool:
        return bool(self.inputs) or bool(self.outputs)


def _tool_definitions(a: Mapping[str, Any]) -> list[ToolDefinition] | None:
    raw = a.get("gen_ai.tool.definitions")
    defs: list[dict[str, Any]] = []
    if raw is not None:
        data = _loads(raw)
        if isinstance(data, list):
            defs = [d for d in data if isinstance(d, Mapping)]
    if not defs:
        for d in _indexed(a, "llm.request.functions.").values():  # OpenLLMetry
            defs.append({"name": d.get("name"), "description": d.get("description"),
                         "parameters": _loads(d.get("parameters")) or {}})
    if not defs:
        for d in _indexed(a, "llm.tools.").values():  # OpenInference
            schema = _loads(d.get("tool.json_schema"))
            if isinstance(schema, Mapping):
                defs.append(dict(schema))
    out = []
    for d in defs:
        fn = d.get("function") if isinstance(d.get("function"), Mapping) else d
        name = fn.get("name")
        if not name:
            continue
        params = fn.get("parameters")
        params = _loads(params) if isinstance(params, str) else params
        out.append(ToolDefinition(name=str(name), description=str(fn.get("description") or ""),
                                  parameters=params if isinstance(params, dict) else {}))
    return out or None


def parse_chat_span(sp: SpanRecord) -> _Chat:
    """Input/output messages and tool definitions of one chat span, in whatever convention."""
    a = sp.attributes
    inputs = outputs = None
    convention = "none"
    if "gen_ai.input.messages" in a or "gen_ai.output.messages" in a or "gen_ai.system_instructions" in a:
        convention = "gen_ai"
        inputs = _messages_json(a["gen_ai.input.messages"]) if "gen_ai.input.messages" in a else None
        outputs = _messages_json(a["gen_ai.output.messages"]) if "gen_ai.output.messages" in a else None
        sys_raw = a.get("gen_ai.system_instructions")
        if sys_raw is not None:
            data = _loads(sys_raw)
            text = ("".join(_as_text(p.get("content")) for p in data if isinstance(p, Mapping))
                    if isinstance(data, list) else _as_text(sys_raw))
            inputs = inputs or []
            if not any(m.role == "system" for m in inputs):
                inputs.insert(0, _Msg("system", text))
    elif any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in a):
        convention = "openllmetry"
        inputs = _openllmetry(a, "gen_ai.prompt.")
        outputs = _openllmetry(a, "gen_ai.completion.")
    elif any(k.startswith(("llm.input_messages.", "llm.output_messages.")) for k in a):
        convention = "openinference"
        inputs = _openinference(a, "llm.input_messages.")
        outputs = _openinference(a, "llm.output_messages.")
    else:
        for ev in sp.events:  # GenAI 1.26-style content events
            ea = ev.get("attributes") or {}
            if ev.get("name") == "gen_ai.content.prompt" and "gen_ai.prompt" in ea:
                inputs, convention = _messages_json(ea["gen_ai.prompt"]), "gen_ai-events"
            elif ev.get("name") == "gen_ai.content.completion" and "gen_ai.completion" in ea:
                outputs, convention = _messages_json(ea["gen_ai.completion"]), "gen_ai-events"
        if convention == "none" and str(a.get("openinference.span.kind", "")).upper() == "LLM":
            if "input.value" in a:  # OpenInference without flattened messages
                inputs = _messages_json(a["input.value"])
                convention = "openinference" if inputs else convention
    return _Chat(sp, inputs, outputs, _tool_definitions(a), convention)


# -- helpers on spans ------------------------------------------------------------------------------------------


def _first(a: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        v = a.get(k)
        if v not in (None, ""):
            return v
    return None


def _model(sp: SpanRecord) -> str | None:
    v = _first(sp.attributes, "gen_ai.request.model", "gen_ai.response.model", "llm.model_name", "llm.request.model")
    return str(v) if v is not None else None


def _usage(sp: SpanRecord) -> dict[str, int]:
    a = sp.attributes
    out = {}
    i = _first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
               "llm.usage.prompt_tokens")
    o = _first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
               "llm.usage.completion_tokens")
    for k, v in (("input_tokens", i), ("output_tokens", o)):
        try:
            if v is not None:
                out[k] = int(v)
        except (TypeError, ValueError):
            pass
    return out


def _tool_info(sp: SpanRecord) -> dict[str, Any]:
    a = sp.attributes
    name = _first(a, "gen_ai.tool.name", "tool.name", "tool_call.function.name", "traceloop.entity.name")
    if name is None and sp.name.startswith("execute_tool "):
        name = sp.name[len("execute_tool "):]
    return {
        "call_id": _first(a, "gen_ai.tool.call.id", "tool_call.id", "tool.call.id"),
        "name": str(name or sp.name or "tool"),
        "arguments": _first(a, "gen_ai.tool.call.arguments", "tool_call.function.arguments", "input.value",
                            "traceloop.entity.input"),
        "result": _first(a, "gen_ai.tool.call.result", "output.value", "traceloop.entity.output"),
    }


def _conversation(sp: SpanRecord) -> str | None:
    v = _first(sp.attributes, "gen_ai.conversation.id", "session.id")
    return str(v) if v is not None else None


def _issue(sp: SpanRecord, message: str, severity: str = "warning", fld: str | None = None) -> LoadIssue:
    file, line = sp.where()
    return LoadIssue(file, message, line=line, span_id=sp.span_id, field=fld, severity=severity)


def _vllm_figures(sp: SpanRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"span_id": sp.span_id}
    for k, name in _VLLM_FIGURES.items():
        if k in sp.attributes:
            out[name] = sp.attributes[k]
    return out


# -- assembly ----------------------------------------------------------------------------------------------------


def _ms(sp: SpanRecord) -> float:
    return round(sp.duration_ns / 1e6, 3)


def _chat_meta(chat: _Chat, vllm: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sp = chat.span
    meta: dict[str, Any] = {"span_id": sp.span_id, "start_time_unix_nano": sp.start_time_unix_nano,
                            "duration_ms": _ms(sp)}
    if _model(sp):
        meta["model"] = _model(sp)
    if _usage(sp):
        meta["usage"] = _usage(sp)
    if sp.span_id in vllm:
        meta["llm_request"] = vllm[sp.span_id]
    if sp.status_code == "ERROR":
        meta["error"] = sp.status.get("message", "error")
    return meta


def _window(chats: list[_Chat], tools: list[SpanRecord], i: int) -> list[SpanRecord]:
    """Tool spans that ran after chat i started and before chat i+1 started."""
    start = chats[i].span.start_time_unix_nano
    end = chats[i + 1].span.start_time_unix_nano if i + 1 < len(chats) else None
    return [t for t in tools if t.start_time_unix_nano >= start and (end is None or t.start_time_unix_nano < end)]


def _placeholders(chat: _Chat | None, window: list[SpanRecord], meta: dict[str, Any]) -> list[_Msg]:
    """Messages for a chat span without content: the calls seen in tool spans, no text."""
    calls = []
    results = []
    for t in window:
        info = _tool_info(t)
        cid = str(info["call_id"] or f"span-{t.span_id}")
        calls.append({"id": cid, "name": info["name"], "arguments": info["arguments"]})
        results.append(_Msg("tool", _as_text(info["result"]) if info["result"] is not None else "", tool_call_id=cid,
                            metadata={"span_id": t.span_id, "duration_ms": _ms(t),
                                      "content_captured": info["result"] is not None}))
    out = [_Msg("assistant", "", tool_calls=calls, metadata={**meta, "content_captured": False})]
    return out + results


def _to_messages(msgs: list[_Msg], issues: list[LoadIssue], span_for_issues: SpanRecord) -> list[Message]:
    """Validate messages one by one; drop (and report) what cannot be a valid message."""
    out: list[Message] = []
    known: set[str] = set()
    for i, m in enumerate(msgs):
        calls = []
        for c in m.tool_calls:
            try:
                calls.append(ToolCall(id=str(c.get("id") or f"call_{i}_{len(calls)}"), name=str(c.get("name") or "unknown"),
                                      arguments=c.get("arguments") or {}))
            except (ValidationError, ValueError) as exc:
                issues.append(_issue(span_for_issues, f"message {i}: tool call dropped: {exc}", "warning"))
        role = m.role if m.role in ("system", "user", "assistant", "tool") else "user"
        if role != m.role:
            issues.append(_issue(span_for_issues, f"message {i}: unknown role {m.role!r} read as user", "warning"))
        if role == "tool" and (not m.tool_call_id or m.tool_call_id not in known):
            issues.append(_issue(span_for_issues,
                                 f"message {i}: tool result for unknown call id {m.tool_call_id!r} dropped "
                                 "(the history holding the call was not captured)", "warning"))
            continue
        meta = dict(m.metadata)
        if m.finish_reason:
            meta.setdefault("finish_reason", m.finish_reason)
        try:
            msg = Message(role=role, content=m.content, reasoning=m.reasoning if role == "assistant" else None,
                          tool_calls=calls if role == "assistant" else [], tool_call_id=m.tool_call_id if role == "tool" else None,
                          name=m.name if role == "tool" else None, metadata=meta)
        except ValidationError as exc:
            issues.append(_issue(span_for_issues, f"message {i} dropped: {exc.errors()[0]['msg']}", "warning"))
            continue
        known.update(c.id for c in msg.tool_calls)
        out.append(msg)
    return out


def _build(key: str, spans: list[SpanRecord], vllm: dict[str, dict[str, Any]],
           issues: list[LoadIssue]) -> Trajectory | None:
    spans = sorted(spans, key=lambda s: (s.start_time_unix_nano, s.end_time_unix_nano))
    roles = {s.span_id: span_role(s) for s in spans}
    chats = [parse_chat_span(s) for s in spans if roles[s.span_id] == "chat"]
    tools = [s for s in spans if roles[s.span_id] == "tool"]
    agents = [s for s in spans if roles[s.span_id] == "agent"]
    orphans = [s for s in spans if roles[s.span_id] == "llm_request"]  # matched ones were taken out before
    for o in orphans:  # vLLM requests with no client-side chat span: content cannot be known
        chats.append(_Chat(o, None, None, None, "vllm"))
        issues.append(_issue(o, "vLLM llm_request span has no matching client chat span; vLLM records no prompt "
                                "or completion text, so this request's content was not captured (instrument the "
                                "client with OpenAIInstrumentor)"))
    chats.sort(key=lambda c: c.span.start_time_unix_nano)
    if not chats and not tools:
        return None
    trace_id = spans[0].trace_id

    for c in chats:
        if not c.has_content and c.convention != "vllm":
            issues.append(_issue(c.span, f"chat span {c.span.name!r} has no message content (content capture was off "
                                         "in the instrumentation); its text cannot be attributed, the trajectory is "
                                         "kept without it"))
    with_content = [i for i, c in enumerate(chats) if c.has_content]
    msgs: list[_Msg] = []
    base_index = with_content[-1] if with_content else None
    if base_index is not None:
        base = chats[base_index]
        msgs = list(base.inputs or [])
        # assistant messages in the history <- the chat spans that produced them
        remaining = {i: chats[i] for i in with_content if i != base_index and chats[i].outputs}
        for m in msgs:
            if m.role != "assistant":
                continue
            for i, c in list(remaining.items()):
                if c.outputs and c.outputs[0].key() == m.key():
                    m.metadata = {**_chat_meta(c, vllm), **m.metadata}
                    del remaining[i]
                    break
        if base.outputs:
            out = base.outputs[0]
            out.role = "assistant"
            out.metadata = {**_chat_meta(base, vllm), **out.metadata}
            if len(base.outputs) > 1:
                out.metadata["other_choices"] = len(base.outputs) - 1
            msgs.append(out)
        # later chat spans without content (and the first ones, if nothing had content)
        for i in range(base_index + 1, len(chats)):
            msgs.extend(_placeholders(chats[i], _window(chats, tools, i), _chat_meta(chats[i], vllm)))
    elif chats:
        for i, c in enumerate(chats):
            msgs.extend(_placeholders(c, _window(chats, tools, i), _chat_meta(c, vllm)))
        early = [t for t in tools if t.start_time_unix_nano < chats[0].span.start_time_unix_nano]
        if early:
            msgs = _placeholders(None, early, {}) + msgs
    else:
        issues.append(_issue(tools[0], f"trace {trace_id} has tool spans but no chat span; the model's side of the "
                                       "run was not captured", "warning"))
        msgs = _placeholders(None, tools, {})

    # join tool spans by call id
    by_call: dict[str, SpanRecord] = {}
    for t in tools:
        cid = _tool_info(t)["call_id"]
        if cid:
            by_call[str(cid)] = t
    requested: dict[str, int] = {}
    answered: set[str] = set()
    for idx, m in enumerate(msgs):
        for c in m.tool_calls:
            if c.get("id"):
                requested[str(c["id"])] = idx
        if m.role == "tool" and m.tool_call_id:
            answered.add(m.tool_call_id)
            t = by_call.get(m.tool_call_id)
            if t is not None:
                m.metadata.setdefault("span_id", t.span_id)
                m.metadata.setdefault("duration_ms", _ms(t))
                if t.status_code == "ERROR":
                    m.metadata["error"] = t.status.get("message", "error")
    for cid, t in by_call.items():
        if cid in requested and cid not in answered:  # ran, but its result never went back to the model
            info = _tool_info(t)
            msgs.append(_Msg("tool", _as_text(info["result"]) if info["result"] is not None else "", tool_call_id=cid,
                             metadata={"span_id": t.span_id, "duration_ms": _ms(t), "from_tool_span": True,
                                       "content_captured": info["result"] is not None}))
        elif cid not in requested and with_content:
            issues.append(_issue(t, f"tool span {t.name!r} has call id {cid!r} that no captured assistant message "
                                    "requested", "warning"))

    anchor = chats[-1].span if chats else tools[0]
    messages = _to_messages(msgs, issues, anchor)
    if not messages:
        issues.append(_issue(anchor, f"trace {trace_id}: no usable message could be rebuilt", "error"))
        return None

    content_captured = bool(chats) and all(c.has_content for c in chats)
    tool_defs = next((c.tools for c in reversed(chats) if c.tools), None) or []
    meta: dict[str, Any] = {"trace_id": trace_id}
    model = next((_model(c.span) for c in reversed(chats) if _model(c.span)), None)
    if model:
        meta["model"] = model
    conv = next((_conversation(s) for s in spans if _conversation(s)), None)
    if conv:
        meta["conversation_id"] = conv
    if agents:
        a = agents[0].attributes
        meta["agent_name"] = _first(a, "gen_ai.agent.name", "traceloop.entity.name") or agents[0].name
        meta["agent_span_id"] = agents[0].span_id
    svc = spans[0].resource.get("service.name")
    if svc:
        meta["service_name"] = svc
    meta["conventions"] = sorted({c.convention for c in chats if c.convention != "none"})
    meta["chat_spans"] = len(chats)
    meta["tool_spans"] = len(tools)
    reqs = [{"chat_span_id": c.span.span_id, **vllm[c.span.span_id]} for c in chats if c.span.span_id in vllm]
    if reqs:
        meta["llm_requests"] = reqs
    totals: dict[str, int] = defaultdict(int)
    for c in chats:
        for k, v in _usage(c.span).items():
            totals[k] += v
    if totals:
        meta["usage"] = dict(totals)
    meta["start_time_unix_nano"] = spans[0].start_time_unix_nano
    meta["end_time_unix_nano"] = max(s.end_time_unix_nano for s in spans)
    src = spans[0].source
    if src:
        meta["source"] = src
    try:
        traj = Trajectory(id=key, source="otel", metadata=meta, tools=tool_defs, messages=messages,
                          content_captured=content_captured)
        return with_actions(traj)
    except ValidationError as exc:
        issues.append(_issue(anchor, f"trace {trace_id}: trajectory rejected: {exc.errors()[0]['msg']}", "error"))
        return None


def assemble_trajectories(spans: Iterable[SpanRecord]) -> tuple[list[Trajectory], list[LoadIssue]]:
    """Spans (any order, any number of traces) -> one trajectory per agent run, plus issues."""
    spans = list(spans)
    issues: list[LoadIssue] = []
    # de-duplicate (the same export appended twice must not double the messages)
    seen: dict[tuple[str, str], SpanRecord] = {}
    for s in spans:
        seen.setdefault((s.trace_id, s.span_id), s)
    spans = list(seen.values())

    # vLLM llm_request -> chat span: parent link (traceparent), else request id = response id
    chat_by_id = {s.span_id: s for s in spans if span_role(s) == "chat"}
    chat_by_response = {str(s.attributes["gen_ai.response.id"]): s for s in chat_by_id.values()
                        if s.attributes.get("gen_ai.response.id")}
    vllm: dict[str, dict[str, Any]] = {}
    consumed: dict[str, str] = {}
    for s in spans:
        if not is_llm_request(s):
            continue
        chat = chat_by_id.get(s.parent_span_id or "") or chat_by_response.get(str(s.attributes.get("gen_ai.request.id")))
        if chat is not None:
            vllm[chat.span_id] = _vllm_figures(s)
            consumed[s.span_id] = chat.span_id

    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for s in spans:
        if s.span_id in consumed:
            continue  # lives on with its chat span
        by_trace[s.trace_id].append(s)

    groups: list[tuple[str, list[SpanRecord]]] = []
    for trace_id, members in by_trace.items():
        for key, part in _split_conversations(trace_id, members):
            groups.append((key, part))
    groups.sort(key=lambda g: min(s.start_time_unix_nano for s in g[1]))
    out = []
    for key, part in groups:
        traj = _build(key, part, vllm, issues)
        if traj is not None:
            out.append(traj)
    return out, issues


def _split_conversations(trace_id: str, spans: list[SpanRecord]) -> list[tuple[str, list[SpanRecord]]]:
    """One group per conversation when a trace holds several; spans without an id (own or
    inherited from an ancestor) join the conversation whose chat span ran last before them."""
    by_id = {s.span_id: s for s in spans}

    def conv(s: SpanRecord) -> str | None:
        seen = 0
        cur: SpanRecord | None = s
        while cur is not None and seen < 64:
            c = _conversation(cur)
            if c:
                return c
            cur = by_id.get(cur.parent_span_id or "")
            seen += 1
        return None

    convs = {s.span_id: conv(s) for s in spans}
    chat_convs = [convs[s.span_id] for s in sorted(spans, key=lambda x: x.start_time_unix_nano)
                  if span_role(s) == "chat" and convs[s.span_id]]
    if len(set(chat_convs)) < 2:
        return [(trace_id, spans)]
    parts: dict[str, list[SpanRecord]] = {c: [] for c in dict.fromkeys(chat_convs)}
    chats = sorted((s for s in spans if span_role(s) == "chat" and convs[s.span_id]), key=lambda x: x.start_time_unix_nano)
    for s in spans:
        c = convs[s.span_id]
        if c is None or c not in parts:
            before = [x for x in chats if x.start_time_unix_nano <= s.start_time_unix_nano]
            c = convs[(before[-1] if before else chats[0]).span_id]
        parts[c].append(s)
    return [(f"{trace_id}:{c}", members) for c, members in parts.items() if members]
