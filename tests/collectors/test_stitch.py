"""One conversation traced apart is one trajectory: calls that are each their own trace (no root
span around the run) are stitched when one call's messages continue another's, or when they
share a conversation id; separate runs stay separate. Real SDK spans from auditor's own
instrumentor driving the real ``openai`` client against the fake server."""

from __future__ import annotations

from typing import Any

import openai

from auditor.collectors import assemble_trajectories
from auditor.collectors.instrument import agent_span
from auditor.collectors.sdk_spans import spans_from_readable
from helpers.fake_openai import FakeOpenAI
from helpers.interop_agent import QUESTION, Wrappers, chat_agent, fake_script


def _client(srv: FakeOpenAI) -> Any:
    return openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)


def _assemble(exporter: Any) -> tuple[list[Any], list[Any]]:
    return assemble_trajectories(spans_from_readable(exporter.get_finished_spans()))


def test_calls_traced_apart_make_one_trajectory(instrumented):
    _, exporter = instrumented
    with FakeOpenAI(fake_script) as srv:
        exchanged = chat_agent(_client(srv), Wrappers(False, None), "smollm2", stream=False)
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    traces = [format(s.context.trace_id, "032x") for s in sorted(chats, key=lambda s: s.start_time)]
    assert len(set(traces)) == 2  # each call is its own trace
    (traj,), issues = _assemble(exporter)
    assert issues == []
    assert [m.content for m in traj.messages] == [m.get("content") or "" for m in exchanged]
    assert traj.id == traces[0] and traj.metadata["trace_id"] == traces[0]
    assert traj.metadata["trace_ids"] == traces
    assistants = [m for m in traj.messages if m.role == "assistant"]
    assert [m.metadata["trace_id"] for m in assistants] == traces
    # each action once: two tool calls and the answer, not the first call's again
    assert [(a.kind.value, a.tool_call_id) for a in traj.actions] == [
        ("tool_call", "call_read_1"), ("tool_call", "call_list_2"), ("final_answer", None)]


def test_two_runs_of_the_same_task_stay_two(instrumented):
    _, exporter = instrumented
    with FakeOpenAI(fake_script) as srv:
        client = _client(srv)
        chat_agent(client, Wrappers(False, None), "smollm2", stream=False)
        chat_agent(client, Wrappers(False, None), "smollm2", stream=True)
    trajs, issues = _assemble(exporter)
    assert issues == []
    assert [len(t.messages) for t in trajs] == [6, 6]
    assert [len(t.metadata["trace_ids"]) for t in trajs] == [2, 2]
    assert not set(trajs[0].metadata["trace_ids"]) & set(trajs[1].metadata["trace_ids"])
    assert [m.content for m in trajs[0].messages] == [m.content for m in trajs[1].messages]


def _turns(client: Any, provider: Any, conversations: tuple[str, str]) -> list[dict[str, Any]]:
    """A two-turn chat: each turn its own agent run (own trace), the second sending the first's history."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    for conv, follow_up in zip(conversations, (None, "And the weekday after that?")):
        if follow_up:
            messages.append({"role": "user", "content": follow_up})
        with agent_span("chat", conversation_id=conv, tracer_provider=provider):
            reply = client.chat.completions.create(model="smollm2", messages=messages)
        messages.append({"role": "assistant", "content": reply.choices[0].message.content})
    return messages


def test_turns_of_one_conversation_join_and_other_conversations_do_not(memory_spans):
    from auditor.collectors.instrument import OpenAIInstrumentor

    provider, exporter = memory_spans
    inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
    try:
        with FakeOpenAI(lambda req: {"content": f"turn {len(req['messages'])}"}) as srv:
            client = _client(srv)
            same = _turns(client, provider, ("conv-a", "conv-a"))
            _turns(client, provider, ("conv-b", "conv-c"))  # continues its messages, but another conversation
    finally:
        inst.uninstrument()
    trajs, issues = _assemble(exporter)
    assert issues == []
    by_conv = {t.metadata["conversation_id"]: t for t in trajs}
    assert sorted(by_conv) == ["conv-a", "conv-b", "conv-c"]
    assert [m.content for m in by_conv["conv-a"].messages] == [m["content"] for m in same]
    assert len(by_conv["conv-a"].metadata["trace_ids"]) == 2
    assert [m.role for m in by_conv["conv-c"].messages] == ["user", "assistant", "user", "assistant"]
    assert "trace_ids" not in by_conv["conv-b"].metadata


def test_calls_without_content_are_not_stitched(memory_spans):
    """Nothing to compare without the messages: each call stays its own (placeholder) trajectory."""
    from auditor.collectors.instrument import OpenAIInstrumentor

    provider, exporter = memory_spans
    inst = OpenAIInstrumentor(tracer_provider=provider, capture_content=False).instrument()
    try:
        with FakeOpenAI(fake_script) as srv:
            chat_agent(_client(srv), Wrappers(False, None), "smollm2", stream=False)
    finally:
        inst.uninstrument()
    trajs, issues = _assemble(exporter)
    assert len(trajs) == 2 and not any(t.content_captured for t in trajs)
    assert len(issues) == 2 and all("unset AUDITOR_CAPTURE_CONTENT" in i.message for i in issues)


def test_tool_spans_traced_apart_join_the_calls_that_requested_them(instrumented):
    """No agent span, but each tool in `tool_span`: the tool spans are traces of their own too."""
    provider, exporter = instrumented[0].tracer_provider, instrumented[1]
    with FakeOpenAI(fake_script) as srv:
        exchanged = chat_agent(_client(srv), Wrappers(False, None), "smollm2", stream=False)
    tool_spans = []
    from auditor.collectors.instrument import tool_span
    for m in exchanged:  # the same tools run again under tool spans, after the fact
        for call in m.get("tool_calls") or []:
            with tool_span(call["function"]["name"], call["id"], call["function"]["arguments"],
                           tracer_provider=provider) as t:
                t.set_result(next(x["content"] for x in exchanged if x.get("tool_call_id") == call["id"]))
                tool_spans.append(t.span)
    (traj,), issues = _assemble(exporter)
    assert issues == []
    assert len(traj.metadata["trace_ids"]) == 4  # two calls, two tools, each its own trace
    tools = [m for m in traj.messages if m.role == "tool"]
    assert [m.metadata["span_id"] for m in tools] == [format(s.get_span_context().span_id, "016x") for s in tool_spans]
    assert [m.metadata["trace_id"] for m in tools] == [format(s.get_span_context().trace_id, "032x") for s in tool_spans]
