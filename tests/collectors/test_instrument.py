"""OpenAIInstrumentor, tool/agent spans: a real TracerProvider with an in-memory exporter and
the real openai client against a local fake server."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from helpers.fake_openai import FakeOpenAI
from auditor.collectors.instrument import OpenAIInstrumentor, agent_span, tool_span, traced_tool

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Read notes.txt"}]
TOOLS = [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]


def _client(srv):
    return openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)


def _chat(exporter):
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert len(spans) == 1
    return spans[0]


def test_chat_span_has_genai_attributes_messages_tools_and_usage(instrumented, fake_server):
    _, exporter = instrumented
    resp = _client(fake_server).chat.completions.create(model="smollm2", messages=MSGS, tools=TOOLS,
                                                        temperature=0.2, max_tokens=64, seed=7, stop=["###"])
    span = _chat(exporter)
    a = span.attributes
    assert span.name == "chat smollm2" and span.kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "smollm2"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.seed"] == 7 and tuple(a["gen_ai.request.stop_sequences"]) == ("###",)
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == fake_server.port
    assert a["gen_ai.response.id"] == resp.id and a["gen_ai.response.model"] == "smollm2"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    assert a["gen_ai.usage.input_tokens"] == 22 and a["gen_ai.usage.output_tokens"] == 7
    inputs = json.loads(a["gen_ai.input.messages"])
    assert inputs == [{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                      {"role": "user", "parts": [{"type": "text", "content": "Read notes.txt"}]}]
    outputs = json.loads(a["gen_ai.output.messages"])
    assert outputs[0]["role"] == "assistant" and outputs[0]["finish_reason"] == "tool_calls"
    assert outputs[0]["parts"] == [{"type": "tool_call", "id": "call_2", "name": "read_file",
                                    "arguments": {"path": "notes.txt"}}]
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "read_file"


def test_traceparent_is_injected_and_names_the_chat_span(instrumented, fake_server):
    _, exporter = instrumented
    _client(fake_server).chat.completions.create(model="m", messages=MSGS, extra_headers={"X-Keep": "1"})
    span = _chat(exporter)
    hdr = fake_server.headers[0]
    version, trace_id, span_id, flags = hdr["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled (newer SDKs also set the "random" bit)
    assert trace_id == f"{span.context.trace_id:032x}" and span_id == f"{span.context.span_id:016x}"
    assert hdr["x-keep"] == "1"  # the caller's own headers survive


def test_streaming_span_ends_when_the_stream_is_consumed(instrumented, fake_server):
    _, exporter = instrumented
    stream = _client(fake_server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True,
                                                          stream_options={"include_usage": True})
    assert exporter.get_finished_spans() == ()  # still open while the agent reads
    with stream:
        chunks = list(stream)
    assert chunks and stream.response.status_code == 200  # attributes pass through
    span = _chat(exporter)
    out = json.loads(span.attributes["gen_ai.output.messages"])
    assert out[0]["parts"][0] == {"type": "tool_call", "id": "call_2", "name": "read_file",
                                  "arguments": {"path": "notes.txt"}}
    assert span.attributes["gen_ai.usage.output_tokens"] == 7
    assert span.attributes["gen_ai.response.id"].startswith("chatcmpl-")


def test_stream_closed_early_still_ends_the_span(instrumented):
    _, exporter = instrumented
    with FakeOpenAI(lambda req: {"content": "a long answer " * 20}) as srv:
        stream = _client(srv).chat.completions.create(model="m", messages=MSGS, stream=True)
        next(iter(stream))
        stream.close()
    span = _chat(exporter)
    assert span.end_time is not None


def test_stream_helper_goes_through_the_wrapper(instrumented):
    _, exporter = instrumented
    with FakeOpenAI(lambda req: {"content": "hello there"}) as srv:
        with _client(srv).chat.completions.stream(model="m", messages=MSGS) as stream:
            final = stream.get_final_completion()
    assert final.choices[0].message.content == "hello there"
    out = json.loads(_chat(exporter).attributes["gen_ai.output.messages"])
    assert out[0]["parts"] == [{"type": "text", "content": "hello there"}]


def test_async_client_streaming_and_plain(instrumented, fake_server):
    _, exporter = instrumented

    async def main():
        client = openai.AsyncOpenAI(base_url=fake_server.base_url, api_key="k", max_retries=0)
        await client.chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        stream = await client.chat.completions.create(model="m", messages=MSGS, tools=TOOLS, stream=True)
        async with stream:
            async for _ in stream:
                pass
        await client.close()

    asyncio.run(main())
    spans = [s for s in exporter.get_finished_spans() if s.name == "chat m"]
    assert len(spans) == 2
    for s in spans:
        assert json.loads(s.attributes["gen_ai.output.messages"])[0]["parts"][0]["name"] == "read_file"
    assert len({h["traceparent"] for h in fake_server.headers}) == 2


def test_server_error_marks_the_span(instrumented):
    _, exporter = instrumented
    with FakeOpenAI() as srv:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/nowhere", api_key="k", max_retries=0)
        srv.server.RequestHandlerClass.do_POST = lambda self: (self.send_error(500, "boom"))  # type: ignore[assignment]
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MSGS)
    span = _chat(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "InternalServerError"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_content_capture_switch(memory_spans, fake_server, monkeypatch, how):
    provider, exporter = memory_spans
    if how == "environment":
        monkeypatch.setenv("AUDITOR_CAPTURE_CONTENT", "0")
    with OpenAIInstrumentor(tracer_provider=provider, capture_content=(how != "argument")):
        _client(fake_server).chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
        with tool_span("read_file", "call_1", {"path": "secret.txt"}) as t:
            t.set_result("top secret")
    chat = _chat(exporter)
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"} & set(chat.attributes)
    assert chat.attributes["gen_ai.usage.input_tokens"] == 22  # metadata is still there
    tool = next(s for s in exporter.get_finished_spans() if s.name == "execute_tool read_file")
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    assert "gen_ai.tool.call.arguments" not in tool.attributes and "gen_ai.tool.call.result" not in tool.attributes


def test_uninstrument_restores_the_client(memory_spans, fake_server):
    from openai.resources.chat.completions import AsyncCompletions, Completions

    provider, exporter = memory_spans
    before = (Completions.create, AsyncCompletions.create)
    inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
    assert inst.instrument() is inst  # idempotent
    with pytest.raises(RuntimeError, match="already instrumented"):
        OpenAIInstrumentor(tracer_provider=provider).instrument()
    inst.uninstrument()
    assert (Completions.create, AsyncCompletions.create) == before
    _client(fake_server).chat.completions.create(model="m", messages=MSGS)
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in fake_server.headers[0]


def test_messages_given_as_generator_are_not_consumed(instrumented, fake_server):
    _, exporter = instrumented
    _client(fake_server).chat.completions.create(model="m", messages=(m for m in MSGS))
    assert fake_server.requests[0]["messages"] == MSGS
    assert len(json.loads(_chat(exporter).attributes["gen_ai.input.messages"])) == 2


def test_tool_span_agent_span_and_decorator(memory_spans):
    provider, exporter = memory_spans

    @traced_tool
    def read_file(path: str) -> dict:
        """Read a file."""
        return {"path": path, "text": "hi"}

    @traced_tool(name="fetch")
    async def fetch_url(url: str) -> str:
        return "<html>"

    @traced_tool
    def explode() -> None:
        raise ValueError("no disk")

    with OpenAIInstrumentor(tracer_provider=provider):
        with agent_span("coder", conversation_id="c-9", agent_id="agent-1") as root:
            assert read_file("a.py", tool_call_id="call_a") == {"path": "a.py", "text": "hi"}
            assert asyncio.run(fetch_url(url="http://x", tool_call_id="call_b")) == "<html>"
            with pytest.raises(ValueError):
                explode(tool_call_id="call_c")
            with tool_span("grep", "call_d", '{"q": "x"}') as t:
                t.set_error("no matches")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    agent = spans["invoke_agent coder"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.id"] == "agent-1" and agent.attributes["gen_ai.conversation.id"] == "c-9"
    rf = spans["execute_tool read_file"]
    assert rf.parent.span_id == agent.context.span_id == root.get_span_context().span_id
    assert rf.attributes["gen_ai.tool.call.id"] == "call_a"
    assert json.loads(rf.attributes["gen_ai.tool.call.arguments"]) == {"path": "a.py"}
    assert json.loads(rf.attributes["gen_ai.tool.call.result"]) == {"path": "a.py", "text": "hi"}
    assert rf.attributes["gen_ai.tool.description"] == "Read a file."
    assert rf.attributes["gen_ai.conversation.id"] == "c-9"
    assert spans["execute_tool fetch"].attributes["gen_ai.tool.call.id"] == "call_b"
    boom = spans["execute_tool explode"]
    assert boom.status.status_code == StatusCode.ERROR and boom.attributes["error.type"] == "ValueError"
    assert spans["execute_tool grep"].status.status_code == StatusCode.ERROR
    assert spans["execute_tool grep"].attributes["gen_ai.tool.call.arguments"] == '{"q": "x"}'


def test_raw_response_and_pydantic_history_messages(instrumented, fake_server):
    _, exporter = instrumented
    client = _client(fake_server)
    first = client.chat.completions.create(model="m", messages=MSGS, tools=TOOLS)
    history = MSGS + [first.choices[0].message,  # agents often append the pydantic message itself
                      {"role": "tool", "tool_call_id": first.choices[0].message.tool_calls[0].id, "content": "text"}]
    raw = client.chat.completions.with_raw_response.create(model="m", messages=history)
    assert raw.parse().choices[0].message.content.startswith("The file says")
    spans = [s for s in exporter.get_finished_spans() if s.name == "chat m"]
    assert len(spans) == 2
    inputs = json.loads(spans[1].attributes["gen_ai.input.messages"])
    assert inputs[2]["role"] == "assistant" and inputs[2]["parts"][0]["type"] == "tool_call"
    assert inputs[3] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_2", "response": "text"}]}
    assert "traceparent" in fake_server.headers[1]
