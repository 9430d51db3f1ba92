"""Span -> trajectory assembly.

Spans are grouped by trace (and split by conversation id when one trace holds several
conversations), ordered by time, and the message list is rebuilt from the last ``chat`` span that
captured content: its input messages plus its output. Tool spans are joined by call id, vLLM's
``llm_request`` spans are attached to the chat span they belong to (parent span id, else
``gen_ai.request.id`` = the chat span's response id; ``{response id}_{n}`` for the Responses API).

One conversation traced apart is put back together. Instrumentation libraries used without a
root span around the run (the official OpenAI instrumentation, OpenInference, OpenLLMetry, or
auditor's own without `agent_span`) make every LLM call its own trace; assembled one trace at a
time, each call would be a trajectory and each a prefix of the next, every action counted again.
So groups are stitched: those sharing a conversation id, and a group whose first call's input
messages begin with everything an earlier group's last call saw and answered (same roles, texts
and tool call ids; the earlier one ended before it started) continues that one. The trajectory
keeps the first group's key; ``metadata.trace_ids`` lists the traces, and each message joined to a
span (assistant: its chat span; tool: its tool span) names that span's ``trace_id`` in its metadata.
Tool spans that are traces of their own (a tool span with no run span around it) join the group
whose messages name their call ids.

The same call traced by several libraries at once (e.g. ``opentelemetry-instrument`` loads every
installed OpenAI instrumentation) is kept once: chat spans of one trace with the same response id
are one call, the one that captured most is kept, and a warning says so.

When tool results answer ids that no call in the turn before them has, while that turn's calls go
unanswered (OpenLLMetry names Responses API calls by their item id ``fc_...``, not the
``call_id`` the results answer), the calls are re-keyed: by the tool span that ran them (same
name and arguments), else in order; a warning says so.

How each library names things (OpenTelemetry GenAI current and legacy, OpenInference,
OpenLLMetry, vLLM) is in `auditor.collectors.conventions`; which spans make one run (dedupe,
conversations, stitching) in `auditor.collectors.grouping`; this module builds the trajectories.

A chat span without content still yields a trajectory (``content_captured=False``) whose
assistant messages are placeholders holding the tool calls seen in tool spans, plus a warning
`LoadIssue` naming the span.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from pydantic import ValidationError

from auditor.actions import with_actions
from auditor.trajectory import Message, ToolCall, Trajectory

from auditor.collectors.conventions import (Msg, agent_name_of, content_switch, conversation_of, model_of,
                                            response_id_of, span_role, tool_info, usage_of)
from auditor.collectors.conventions.parsing import as_text, loads
from auditor.collectors.conventions.vllm import is_llm_request, llm_request_figures, response_ids
from auditor.collectors.grouping import Chat, Key, dedupe_calls, parse_chat_span, sid, split_conversations, stitch
from auditor.collectors.issues import LoadIssue
from auditor.collectors.sanitize import check_trajectory
from auditor.collectors.spans import SpanRecord


def _issue(sp: SpanRecord, message: str, severity: str = "warning", fld: str | None = None) -> LoadIssue:
    file, line = sp.where()
    return LoadIssue(file, message, line=line, span_id=sp.span_id, field=fld, severity=severity)



# -- assembly ----------------------------------------------------------------------------------------------------


def _ms(sp: SpanRecord) -> float:
    return round(sp.duration_ns / 1e6, 3)


def _chat_meta(chat: Chat, vllm: dict[str, dict[str, Any]], stitched: bool = False) -> dict[str, Any]:
    sp = chat.span
    meta: dict[str, Any] = {"span_id": sp.span_id, "start_time_unix_nano": sp.start_time_unix_nano,
                            "duration_ms": _ms(sp)}
    if stitched:  # the trajectory spans several traces: say which one this call is in
        meta["trace_id"] = sp.trace_id
    if model_of(sp):
        meta["model"] = model_of(sp)
    if usage_of(sp):
        meta["usage"] = usage_of(sp)
    if sp.span_id in vllm:
        meta["llm_request"] = vllm[sp.span_id]
    if sp.status_code == "ERROR":
        meta["error"] = sp.status.get("message", "error")
    return meta


def _window(chats: list[Chat], tools: list[SpanRecord], i: int) -> list[SpanRecord]:
    """Tool spans that ran after chat i started and before chat i+1 started."""
    start = chats[i].span.start_time_unix_nano
    end = chats[i + 1].span.start_time_unix_nano if i + 1 < len(chats) else None
    return [t for t in tools if t.start_time_unix_nano >= start and (end is None or t.start_time_unix_nano < end)]


def _placeholders(chat: Chat | None, window: list[SpanRecord], meta: dict[str, Any]) -> list[Msg]:
    """Messages for a chat span without content: the calls seen in tool spans, no text."""
    calls = []
    results = []
    for t in window:
        info = tool_info(t)
        cid = str(info["call_id"] or f"span-{t.span_id}")
        calls.append({"id": cid, "name": info["name"], "arguments": info["arguments"]})
        results.append(Msg("tool", as_text(info["result"]) if info["result"] is not None else "", tool_call_id=cid,
                            metadata={"span_id": t.span_id, "duration_ms": _ms(t),
                                      "content_captured": info["result"] is not None}))
    out = [Msg("assistant", "", tool_calls=calls, metadata={**meta, "content_captured": False})]
    return out + results


def _to_messages(msgs: list[Msg], issues: list[LoadIssue], span_for_issues: SpanRecord) -> list[Message]:
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


def _same_arguments(a: Any, b: Any) -> bool:
    a = loads(a) if isinstance(a, str) else a
    b = loads(b) if isinstance(b, str) else b
    return a == b


def _rekey_calls(msgs: list[Msg], tools: list[SpanRecord]) -> dict[str, str]:
    """Re-key tool calls to the ids their results answer, where the two disagree (see the module
    docstring); returns {old id: new id} and changes ``msgs`` in place."""
    requested = {str(c.get("id")) for m in msgs for c in m.tool_calls if c.get("id")}
    infos = [tool_info(t) for t in tools]
    mapping: dict[str, str] = {}
    i = 0
    while i < len(msgs):
        if msgs[i].role != "assistant" or not msgs[i].tool_calls:
            i += 1
            continue
        calls = msgs[i].tool_calls
        j = i + 1
        while j < len(msgs) and msgs[j].role == "tool":
            j += 1
        results = [r.tool_call_id for r in msgs[i + 1:j] if r.tool_call_id]
        ids = {str(c.get("id")) for c in calls}
        unknown = [r for r in results if r not in ids]
        unanswered = [c for c in calls if str(c.get("id")) not in set(results)]
        # 1. the tool span that ran the call (same name and arguments) names the id it answers
        free = set(unknown) | {str(info["call_id"]) for info in infos
                               if info["call_id"] and str(info["call_id"]) not in requested}
        for c in list(unanswered):
            match = next((str(info["call_id"]) for info in infos if str(info["call_id"]) in free
                          and info["name"] == c.get("name") and _same_arguments(info["arguments"], c.get("arguments"))),
                         None)
            if match is not None:
                mapping[str(c.get("id"))] = match
                c["id"] = match
                free.discard(match)
                unanswered.remove(c)
                if match in unknown:
                    unknown.remove(match)
        # 2. else in order, when every unanswered call has exactly one unknown result
        if unknown and len(unknown) == len(unanswered):
            for c, rid in zip(unanswered, unknown):
                mapping[str(c.get("id"))] = rid
                c["id"] = rid
        i = j
    return mapping


def _build(key: str, spans: list[SpanRecord], vllm: dict[str, dict[str, Any]],
           issues: list[LoadIssue], parsed: dict[Key, Chat]) -> Trajectory | None:
    spans = sorted(spans, key=lambda s: (s.start_time_unix_nano, s.end_time_unix_nano))
    roles = {s.span_id: span_role(s) for s in spans}
    chats = [parsed.get((s.trace_id, s.span_id)) or parse_chat_span(s) for s in spans if roles[s.span_id] == "chat"]
    tools = [s for s in spans if roles[s.span_id] == "tool"]
    agents = [s for s in spans if roles[s.span_id] == "agent"]
    orphans = [s for s in spans if roles[s.span_id] == "llm_request"]  # matched ones were taken out before
    for o in orphans:  # vLLM requests with no client-side chat span: content cannot be known
        chats.append(Chat(o, None, None, None, "vllm"))
        issues.append(_issue(o, "vLLM llm_request span has no matching client chat span; vLLM records no prompt "
                                "or completion text, so this request's content was not captured (instrument the "
                                "client with OpenAIInstrumentor)"))
    chats.sort(key=lambda c: c.span.start_time_unix_nano)
    if not chats and not tools:
        return None
    trace_id = spans[0].trace_id
    trace_ids = list(dict.fromkeys(s.trace_id for s in spans))
    stitched = len(trace_ids) > 1

    def chat_meta(c: Chat) -> dict[str, Any]:
        return _chat_meta(c, vllm, stitched)

    for c in chats:
        if not c.has_content and c.convention != "vllm":
            switch = content_switch(c.span)
            issues.append(_issue(c.span, f"chat span {c.span.name!r} has no message content (content capture was off "
                                         "in the instrumentation); its text cannot be attributed, the trajectory is "
                                         "kept without it" + (f"; to capture it: {switch}" if switch else "")))
    with_content = [i for i, c in enumerate(chats) if c.has_content]
    msgs: list[Msg] = []
    base_index = with_content[-1] if with_content else None
    if base_index is not None:
        base = chats[base_index]
        msgs = list(base.inputs or [])
        rekeyed = _rekey_calls(msgs, tools)
        if rekeyed:
            for c in chats:
                for o in c.outputs or []:
                    for call in o.tool_calls:
                        call["id"] = rekeyed.get(str(call.get("id")), call.get("id"))
            issues.append(_issue(base.span, f"{len(rekeyed)} tool call id(s) re-keyed to the ids their results answer "
                                            f"({', '.join(f'{a} -> {b}' for a, b in rekeyed.items())}): the "
                                            "instrumentation recorded other ids for the calls than for their results "
                                            "(as OpenLLMetry does for Responses API function calls)"))
        # assistant messages in the history <- the chat spans that produced them
        remaining = {i: chats[i] for i in with_content if i != base_index and chats[i].outputs}
        for m in msgs:
            if m.role != "assistant":
                continue
            for i, c in list(remaining.items()):
                if c.outputs and c.outputs[0].key() == m.key():
                    m.metadata = {**chat_meta(c), **m.metadata}
                    del remaining[i]
                    break
        if base.outputs:
            out = base.outputs[0]
            out.role = "assistant"
            out.metadata = {**chat_meta(base), **out.metadata}
            if len(base.outputs) > 1:
                out.metadata["other_choices"] = len(base.outputs) - 1
            msgs.append(out)
        # later chat spans without content (and the first ones, if nothing had content)
        for i in range(base_index + 1, len(chats)):
            msgs.extend(_placeholders(chats[i], _window(chats, tools, i), chat_meta(chats[i])))
    elif chats:
        for i, c in enumerate(chats):
            msgs.extend(_placeholders(c, _window(chats, tools, i), chat_meta(c)))
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
        cid = tool_info(t)["call_id"]
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
                if stitched:
                    m.metadata.setdefault("trace_id", t.trace_id)
                m.metadata.setdefault("duration_ms", _ms(t))
                if t.status_code == "ERROR":
                    m.metadata["error"] = t.status.get("message", "error")
    for cid, t in by_call.items():
        if cid in requested and cid not in answered:  # ran, but its result never went back to the model
            info = tool_info(t)
            msgs.append(Msg("tool", as_text(info["result"]) if info["result"] is not None else "", tool_call_id=cid,
                             metadata={"span_id": t.span_id, "duration_ms": _ms(t), "from_tool_span": True,
                                       "content_captured": info["result"] is not None,
                                       **({"trace_id": t.trace_id} if stitched else {})}))
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
    if not tool_defs and any(c.has_content for c in chats) and any(m.tool_calls for m in messages):
        issues.append(_issue(anchor, "no chat span recorded the tool definitions offered to the model (the official "
                                     "opentelemetry-instrumentation-openai-v2 does not record them): the replayed "
                                     "prompt lacks the tool schemas the model saw, and no action can be traced to a "
                                     "tool's description"))
    meta: dict[str, Any] = {"trace_id": trace_id}
    if stitched:
        meta["trace_ids"] = trace_ids
    model = next((model_of(c.span) for c in reversed(chats) if model_of(c.span)), None)
    if model:
        meta["model"] = model
    conv = next((conversation_of(s) for s in spans if conversation_of(s)), None)
    if conv:
        meta["conversation_id"] = conv
    if agents:
        meta["agent_name"] = agent_name_of(agents[0])
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
        for k, v in usage_of(c.span).items():
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

    chat_spans = [s for s in spans if span_role(s) == "chat"]
    parsed = {sid(s): parse_chat_span(s) for s in chat_spans}
    alias = dedupe_calls(chat_spans, parsed, issues)  # one call traced by several libraries -> kept once
    if alias:
        spans = [s for s in spans if sid(s) not in alias]
        chat_spans = [s for s in chat_spans if sid(s) not in alias]

    # vLLM llm_request -> chat span: parent link (traceparent), else request id = response id
    chat_by_id = {s.span_id: s for s in chat_spans}
    chat_by_response = {rid: s for s in chat_spans if (rid := response_id_of(s))}
    vllm: dict[str, dict[str, Any]] = {}
    consumed: dict[str, str] = {}
    for s in spans:
        try:
            if not is_llm_request(s):
                continue
            parent = alias.get((s.trace_id, s.parent_span_id or ""), (s.trace_id, s.parent_span_id or ""))[1]
            chat = chat_by_id.get(parent) or next((chat_by_response[r] for r in response_ids(s) if r in chat_by_response), None)
            if chat is not None:
                vllm[chat.span_id] = llm_request_figures(s)
                consumed[s.span_id] = chat.span_id
        except Exception as exc:  # noqa: BLE001 - this span stays unmatched; the trace is still assembled
            issues.append(_issue(s, f"vLLM request figures unreadable ({type(exc).__name__}: {str(exc)[:200]})"))

    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for s in spans:
        if s.span_id in consumed:
            continue  # lives on with its chat span
        by_trace[s.trace_id].append(s)

    groups: list[tuple[str, list[SpanRecord]]] = []
    for trace_id, members in by_trace.items():
        for key, part in split_conversations(trace_id, members):
            groups.append((key, part))
    groups.sort(key=lambda g: min(s.start_time_unix_nano for s in g[1]))
    out = []
    for key, part in stitch(groups, parsed):
        try:
            traj = _build(key, part, vllm, issues, parsed)
        except Exception as exc:  # noqa: BLE001 - one trace, not the file
            first = min(part, key=lambda s: s.start_time_unix_nano)
            issues.append(_issue(first, f"trace {key}: internal error assembling it ({type(exc).__name__}: "
                                        f"{str(exc)[:200]})", "error"))
            continue
        if traj is None:
            continue
        anchor = min(part, key=lambda s: s.start_time_unix_nano)
        file, line = anchor.where()
        traj, more = check_trajectory(traj, file, line, anchor.span_id)
        issues.extend(more)
        if traj is not None:
            out.append(traj)
    return out, issues


