"""The instrumentor's guard hook: the real ``openai`` client against a local fake server, a real
TracerProvider, and a real `Guard` on a tiny random model. A blocked call raises
`UnsupportedToolCall` before the caller sees it (``raise``), or is only recorded on the span
(``annotate``); chat completions and the Responses API, plain, streamed and async."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry.trace import StatusCode

from auditor.collectors.guarding import EVENT_NAME
from auditor.collectors.instrument import OpenAIInstrumentor, UnsupportedToolCall
from auditor.guard import Verdict

from helpers.fake_openai import FakeOpenAI
from helpers.guarding import MSGS, TOOLS

RESPONSES_TOOLS = [{"type": "function", "name": "read_file", "description": "read a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}]


@pytest.fixture
def server():
    with FakeOpenAI() as srv:  # first turn: read_file({"path": "notes.txt"})
        yield srv


def instrument(spans, guard, mode):
    return OpenAIInstrumentor(tracer_provider=spans[0]).instrument(guard=guard, on_unsupported=mode)


def client(srv):
    return openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)


def chat_span(exporter):
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    return span


def verdict_events(span):
    return [e for e in span.events if e.name == EVENT_NAME]


def test_raise_blocks_a_chat_completion_before_the_caller_sees_it(spans, guards, server):
    inst = instrument(spans, guards["strict"], "raise")
    try:
        with pytest.raises(UnsupportedToolCall) as info:
            client(server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    finally:
        inst.uninstrument()
    v = info.value.verdict
    assert isinstance(v, Verdict) and not v.allowed and v.tool_name == "read_file" and v.tool_call_id == "call_2"
    assert info.value.verdicts == [v] and str(info.value) == v.message and v.evidence
    span = chat_span(spans[1])
    assert span.status.status_code == StatusCode.ERROR and span.attributes["error.type"] == "UnsupportedToolCall"
    assert span.attributes["auditor.guard.checked"] == 1 and span.attributes["auditor.guard.blocked"] == 1
    [event] = verdict_events(span)
    assert event.attributes["auditor.guard.allowed"] is False and event.attributes["gen_ai.tool.call.id"] == "call_2"
    assert event.attributes["auditor.guard.score"] == pytest.approx(v.score)


def test_annotate_records_the_verdict_and_returns_the_reply(spans, guards, server):
    inst = instrument(spans, guards["strict"], "annotate")
    try:
        reply = client(server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    finally:
        inst.uninstrument()
    assert reply.choices[0].message.tool_calls[0].function.name == "read_file"
    span = chat_span(spans[1])
    assert span.status.status_code != StatusCode.ERROR and span.attributes["auditor.guard.blocked"] == 1
    [event] = verdict_events(span)
    assert event.attributes["auditor.guard.status"] == "blocked"
    assert "is not supported by the user's request" in event.attributes["auditor.guard.message"]


def test_an_allowed_call_passes_with_its_verdict_recorded(spans, guards, server):
    inst = instrument(spans, guards["lenient"], "raise")
    try:
        reply = client(server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    finally:
        inst.uninstrument()
    assert reply.choices[0].message.tool_calls
    span = chat_span(spans[1])
    [event] = verdict_events(span)
    assert event.attributes["auditor.guard.allowed"] is True and span.attributes["auditor.guard.blocked"] == 0
    # a reply without tool calls is not judged
    assert "auditor.guard.checked" not in chat_span_of(spans, MSGS + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                               "function": {"name": "read_file", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "done"}], guards["lenient"], server).attributes


def chat_span_of(spans, msgs, guard, server):
    spans[1].clear()
    inst = instrument(spans, guard, "raise")
    try:
        client(server).chat.completions.create(model="m", messages=msgs, tools=TOOLS)
    finally:
        inst.uninstrument()
    return chat_span(spans[1])


def test_a_stream_raises_at_its_end_instead_of_ending(spans, guards, server):
    inst = instrument(spans, guards["strict"], "raise")
    chunks = []
    try:
        stream = client(server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True)
        with pytest.raises(UnsupportedToolCall) as info:
            for chunk in stream:
                chunks.append(chunk)
    finally:
        inst.uninstrument()
    assert chunks and info.value.verdict.tool_call_id == "call_2"
    assert json.loads(info.value.verdict.model_dump_json())["arguments"] == {"path": "notes.txt"}
    assert chat_span(spans[1]).attributes["auditor.guard.blocked"] == 1


def test_async_chat_and_stream(spans, guards, server):
    inst = instrument(spans, guards["strict"], "raise")

    async def run() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        raised = []
        try:
            await aclient.chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        except UnsupportedToolCall as exc:
            raised.append(exc.verdict.tool_call_id)
        stream = await aclient.chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True)
        try:
            async for _ in stream:
                pass
        except UnsupportedToolCall as exc:
            raised.append(exc.verdict.tool_call_id)
        await aclient.close()
        return raised

    try:
        assert asyncio.run(run()) == ["call_2", "call_2"]
    finally:
        inst.uninstrument()
    assert len([s for s in spans[1].get_finished_spans() if s.attributes.get("auditor.guard.blocked") == 1]) == 2


def test_responses_api_plain_and_streamed(spans, guards, server):
    inst = instrument(spans, guards["strict"], "raise")
    c = client(server)
    try:
        with pytest.raises(UnsupportedToolCall) as info:
            c.responses.create(model="m", instructions="you are a helpful agent", input="read the file notes",
                               tools=RESPONSES_TOOLS)
        assert info.value.verdict.tool_call_id == "call_2" and info.value.verdict.tool_name == "read_file"
        with pytest.raises(UnsupportedToolCall):
            for _ in c.responses.create(model="m", instructions="you are a helpful agent", input="read the file notes",
                                        tools=RESPONSES_TOOLS, stream=True):
                pass
    finally:
        inst.uninstrument()
    blocked = [s for s in spans[1].get_finished_spans() if s.attributes.get("auditor.guard.blocked") == 1]
    assert len(blocked) == 2


class Broken:
    def check_reply(self, messages, reply, tools=None):
        raise RuntimeError("the guard's model is gone")


def test_a_guard_that_fails_is_never_a_silent_pass(spans, server):
    inst = instrument(spans, Broken(), "raise")
    try:
        with pytest.raises(RuntimeError, match="model is gone"):
            client(server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    finally:
        inst.uninstrument()
    assert chat_span(spans[1]).status.status_code == StatusCode.ERROR
    spans[1].clear()
    inst = instrument(spans, Broken(), "annotate")  # annotate: the agent goes on; the span says the guard failed
    try:
        client(server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    finally:
        inst.uninstrument()
    assert "model is gone" in chat_span(spans[1]).attributes["auditor.guard.error"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="on_unsupported"):
        OpenAIInstrumentor().instrument(guard=Broken(), on_unsupported="block")
    with pytest.raises(TypeError, match="check_reply"):
        OpenAIInstrumentor().instrument(guard=object())
