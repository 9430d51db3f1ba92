"""OpenAIInstrumentor on the Responses API (``client.responses.create`` / ``.stream``): a real
TracerProvider with an in-memory exporter, the real openai client against the local fake
server's ``/v1/responses`` (plain JSON and SSE events), and the span -> trajectory assembly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from helpers.agent import FILES, SYSTEM, run_tool
from helpers.agent import TOOLS as CHAT_TOOLS
from helpers.fake_openai import FakeOpenAI, tool_result
from auditor.collectors.exporters import setup_tracing
from auditor.collectors.instrument import (OpenAIInstrumentor, agent_span, openai_tools_to_genai,
                                           responses_finish_reason, tool_span)
from auditor.collectors.loading import load_path
from auditor.trajectory import ActionKind, Trajectory

TOOLS = [{"type": "function", "name": "read_file", "description": "Read a file",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}, "strict": False}]
CALL = {"type": "tool_call", "id": "call_1", "name": "read_file", "arguments": {"path": "notes.txt"}}


def _client(srv):
    return openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)


def _chat(exporter, n=1):
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert len(spans) == n
    return spans[0] if n == 1 else spans


def _msgs(span, key="gen_ai.output.messages"):
    return json.loads(span.attributes[key])


def script(req: dict[str, Any]) -> dict[str, Any]:
    """read_file first; after its result, answer with some reasoning."""
    result = tool_result(req)
    if result is not None:
        return {"content": "The release is on Friday.", "reasoning_content": "The note says Friday."}
    return {"content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "read_file", "arguments": json.dumps({"path": "notes.txt"})}}]}


@pytest.fixture
def server():
    with FakeOpenAI(script) as srv:
        yield srv


def test_tool_calling_response_span_has_attributes_messages_tools_and_usage(instrumented, server):
    _, exporter = instrumented
    resp = _client(server).responses.create(model="smollm2", instructions="Be brief.", input="Read notes.txt",
                                            tools=TOOLS, temperature=0.2, max_output_tokens=64, top_p=0.9)
    span = _chat(exporter)
    a = span.attributes
    assert span.name == "chat smollm2" and span.kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["openai.api.type"] == "responses"
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.model"] == "smollm2"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.request.top_p"] == 0.9
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == server.port
    assert a["gen_ai.response.id"] == resp.id == "resp-1" and a["gen_ai.response.model"] == "smollm2"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("tool_calls",)
    assert a["gen_ai.usage.input_tokens"] == 22 and a["gen_ai.usage.output_tokens"] == 7
    assert _msgs(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Read notes.txt"}]}]
    assert _msgs(span) == [{"role": "assistant", "parts": [CALL], "finish_reason": "tool_calls"}]
    # the flat Responses tool form is written like the chat path writes its nested form
    defs = json.loads(a["gen_ai.tool.definitions"])
    assert defs == [{"type": "function", "name": "read_file", "description": "Read a file",
                     "parameters": TOOLS[0]["parameters"]}]
    assert defs == openai_tools_to_genai([{"type": "function", "function": {
        k: TOOLS[0][k] for k in ("name", "description", "parameters")}}])


def test_item_history_and_reasoning_text_reply(instrumented, server):
    _, exporter = instrumented
    client = _client(server)
    first = client.responses.create(model="m", input="Read notes.txt", tools=TOOLS)
    history = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Read "},
                                                        {"type": "input_text", "text": "notes.txt"}]},
        *first.output,  # agents send the pydantic output items back as they are
        {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "hi there"},
    ]
    resp = client.responses.create(model="m", input=history, tools=TOOLS)
    assert resp.output_text == "The release is on Friday."
    span = _chat(exporter, 2)[1]
    assert _msgs(span, "gen_ai.input.messages") == [
        {"role": "developer", "parts": [{"type": "text", "content": "Use tools."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Read "}, {"type": "text", "content": "notes.txt"}]},
        {"role": "assistant", "parts": [CALL]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "hi there"}]}]
    assert _msgs(span) == [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "reasoning", "content": "The note says Friday."},
        {"type": "text", "content": "The release is on Friday."}]}]
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("stop",)


def test_traceparent_is_injected_and_names_the_span(instrumented, server):
    _, exporter = instrumented
    _client(server).responses.create(model="m", input="hi", extra_headers={"X-Keep": "1"})
    span = _chat(exporter)
    hdr = server.headers[0]
    version, trace_id, span_id, flags = hdr["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1
    assert trace_id == f"{span.context.trace_id:032x}" and span_id == f"{span.context.span_id:016x}"
    assert hdr["x-keep"] == "1"


def test_streaming_span_ends_when_the_stream_is_consumed(instrumented, server):
    _, exporter = instrumented
    stream = _client(server).responses.create(model="m", input="Read notes.txt", tools=TOOLS, stream=True)
    assert exporter.get_finished_spans() == ()  # still open while the agent reads
    with stream:
        events = [e.type for e in stream]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in events and stream.response.status_code == 200
    span = _chat(exporter)
    assert _msgs(span) == [{"role": "assistant", "parts": [CALL], "finish_reason": "tool_calls"}]
    assert span.attributes["gen_ai.response.id"] == "resp-1"
    assert span.attributes["gen_ai.usage.input_tokens"] == 11 and span.attributes["gen_ai.usage.output_tokens"] == 7
    assert "traceparent" in server.headers[0]


def test_stream_whose_final_event_omits_the_output_items(instrumented):
    _, exporter = instrumented
    reply = {"content": "Hello", "reasoning_content": "Greet.", "omit_final_output": True}
    with FakeOpenAI(lambda req: reply) as srv:
        with _client(srv).responses.create(model="m", input="hi", stream=True) as stream:
            completed = [e for e in stream if e.type == "response.completed"]
    assert completed and completed[0].response.output is None
    assert _msgs(_chat(exporter)) == [{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "reasoning", "content": "Greet."}, {"type": "text", "content": "Hello"}]}]


def test_stream_closed_early_still_ends_the_span_with_what_was_read(instrumented):
    _, exporter = instrumented
    with FakeOpenAI(lambda req: {"content": "a long answer " * 20}) as srv:
        stream = _client(srv).responses.create(model="m", input="hi", stream=True)
        for event in stream:
            if event.type == "response.output_text.delta":
                first_delta = event.delta
                break
        assert exporter.get_finished_spans() == ()
        stream.close()
    span = _chat(exporter)
    assert span.end_time is not None and span.status.status_code == StatusCode.UNSET
    assert span.attributes["gen_ai.response.id"] == "resp-1"
    assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("",)  # never finished
    assert _msgs(span) == [{"role": "assistant", "parts": [{"type": "text", "content": first_delta}],
                            "finish_reason": ""}]


def test_stream_helper_goes_through_the_wrapper(instrumented, server):
    _, exporter = instrumented
    client = _client(server)
    with client.responses.stream(model="m", input="Read notes.txt", tools=TOOLS) as stream:
        first = stream.get_final_response()
    history = [{"role": "user", "content": "Read notes.txt"}, *first.output,
               {"type": "function_call_output", "call_id": "call_1", "output": "Friday"}]
    with client.responses.stream(model="m", input=history, tools=TOOLS) as stream:
        final = stream.get_final_response()
    assert final.output_text == "The release is on Friday."
    spans = _chat(exporter, 2)
    assert _msgs(spans[0])[0]["parts"] == [CALL]
    assert _msgs(spans[1])[0]["parts"][1] == {"type": "text", "content": "The release is on Friday."}
    assert len({h["traceparent"] for h in server.headers}) == 2


def test_async_client_plain_streaming_and_stream_helper(instrumented, server):
    _, exporter = instrumented

    async def main():
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        await client.responses.create(model="m", input="Read notes.txt", tools=TOOLS)
        stream = await client.responses.create(model="m", input="Read notes.txt", tools=TOOLS, stream=True)
        async with stream:
            async for _ in stream:
                pass
        async with client.responses.stream(model="m", input="Read notes.txt", tools=TOOLS) as s:
            await s.get_final_response()
        await client.close()

    asyncio.run(main())
    spans = _chat(exporter, 3)
    for s in spans:
        assert _msgs(s) == [{"role": "assistant", "parts": [CALL], "finish_reason": "tool_calls"}]
        assert s.attributes["openai.api.type"] == "responses"
    assert len({h["traceparent"] for h in server.headers}) == 3


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_content_capture_switch(memory_spans, server, monkeypatch, how):
    provider, exporter = memory_spans
    if how == "environment":
        monkeypatch.setenv("AUDITOR_CAPTURE_CONTENT", "0")
    with OpenAIInstrumentor(tracer_provider=provider, capture_content=(how != "argument")) as inst:
        client = _client(server)
        client.responses.create(model="m", instructions="secret instructions", input="Read notes.txt", tools=TOOLS)
        with client.responses.stream(model="m", input="Read notes.txt", tools=TOOLS) as s:
            s.until_done()
        assert not inst._history  # no conversation kept either
    spans = _chat(exporter, 2)
    for span in spans:
        assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"} & set(span.attributes)
        assert tuple(span.attributes["gen_ai.response.finish_reasons"]) == ("tool_calls",)  # metadata stays
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in spans] == [22, 11]


def test_uninstrument_restores_responses_create_and_parse(memory_spans, server):
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.responses import AsyncResponses, Responses

    provider, exporter = memory_spans
    methods = [(cls, m) for cls in (Responses, AsyncResponses, Completions, AsyncCompletions) for m in ("create", "parse")]
    before = [getattr(cls, m) for cls, m in methods]
    inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
    for (cls, m), original in zip(methods, before):
        assert getattr(cls, m).__auditor_wrapped__ is original
    inst.uninstrument()
    assert [getattr(cls, m) for cls, m in methods] == before
    _client(server).responses.create(model="m", input="hi")
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in server.headers[0]


def test_previous_response_id_puts_the_stored_history_back(instrumented, server):
    _, exporter = instrumented
    client = _client(server)
    first = client.responses.create(model="m", instructions="Old rules.", input="Read notes.txt", tools=TOOLS)
    out = {"type": "function_call_output", "call_id": "call_1", "output": "Friday"}
    client.responses.create(model="m", instructions="New rules.", previous_response_id=first.id, input=[out])
    assert server.requests[1]["input"] == [out]  # the request itself is left as it was
    span = _chat(exporter, 2)[1]
    assert _msgs(span, "gen_ai.input.messages") == [
        {"role": "system", "parts": [{"type": "text", "content": "New rules."}]},  # instructions do not carry over
        {"role": "user", "parts": [{"type": "text", "content": "Read notes.txt"}]},
        {"role": "assistant", "parts": [CALL], "finish_reason": "tool_calls"},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "Friday"}]}]


def test_incomplete_and_failed_responses(instrumented):
    _, exporter = instrumented
    replies = iter([{"content": "cut", "status": "incomplete", "incomplete": "max_output_tokens"},
                    {"content": None, "status": "failed", "error": {"code": "server_error", "message": "boom"}}])
    with FakeOpenAI(lambda req: next(replies)) as srv:
        client = _client(srv)
        client.responses.create(model="m", input="hi")
        client.responses.create(model="m", input="hi")
    cut, failed = _chat(exporter, 2)
    assert tuple(cut.attributes["gen_ai.response.finish_reasons"]) == ("length",)
    assert _msgs(cut)[0]["parts"] == [{"type": "text", "content": "cut"}]
    assert tuple(failed.attributes["gen_ai.response.finish_reasons"]) == ("error",)
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes["error.type"] == "server_error"
    assert responses_finish_reason("incomplete", {"reason": "content_filter"}) == "content_filter"
    assert responses_finish_reason("cancelled") == "cancelled" and responses_finish_reason("in_progress") == ""


def test_parse_methods_are_traced_too(instrumented):
    from pydantic import BaseModel

    class Day(BaseModel):
        day: str

    _, exporter = instrumented
    with FakeOpenAI(lambda req: {"content": '{"day": "Friday"}'}) as srv:
        client = _client(srv)
        parsed = client.responses.parse(model="m", input="When?", text_format=Day)
        chat = client.chat.completions.parse(model="m", messages=[{"role": "user", "content": "When?"}],
                                             response_format=Day)

        async def main():
            aclient = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
            try:
                return await aclient.responses.parse(model="m", input="When?", text_format=Day)
            finally:
                await aclient.close()

        aparsed = asyncio.run(main())
        sent = [h["traceparent"] for h in srv.headers]
    assert parsed.output_parsed == aparsed.output_parsed == chat.choices[0].message.parsed == Day(day="Friday")
    spans = _chat(exporter, 3)
    assert [s.attributes["openai.api.type"] for s in spans] == ["responses", "chat_completions", "responses"]
    for s in spans:
        assert _msgs(s)[0]["parts"] == [{"type": "text", "content": '{"day": "Friday"}'}]
    assert sorted(tp.split("-")[2] for tp in sent) == sorted(f"{s.context.span_id:016x}" for s in spans)


def test_raw_response_and_generator_input(instrumented, server):
    _, exporter = instrumented
    items = ({"role": "user", "content": t} for t in ["Read", "notes.txt"])
    raw = _client(server).responses.with_raw_response.create(model="m", input=items, tools=iter(TOOLS))
    assert raw.parse().output[0].type == "function_call"
    assert [i["content"] for i in server.requests[0]["input"]] == ["Read", "notes.txt"]  # not consumed
    assert server.requests[0]["tools"][0]["name"] == "read_file"
    span = _chat(exporter)
    assert len(_msgs(span, "gen_ai.input.messages")) == 2 and "traceparent" in server.headers[0]


# -- end to end: an agent run through responses.create -> spans -> trajectory ---------------------------------


def run_responses_agent(client: Any, provider: Any, question: str, mode: str) -> None:
    """read_file via function_call, its function_call_output back, then the final answer."""
    items: list[Any] = [{"role": "user", "content": question}]
    send: list[Any] = items
    previous = None
    kw = dict(model="smollm2", instructions=SYSTEM, tools=TOOLS, temperature=0.0)
    with agent_span("reader", conversation_id="conv-resp", tracer_provider=provider):
        for _ in range(4):
            if mode == "streaming":
                with client.responses.stream(input=items, **kw) as stream:
                    resp = stream.get_final_response()
            elif mode == "previous_response_id" and previous is not None:
                resp = client.responses.create(input=send, previous_response_id=previous, **kw)
            else:
                resp = client.responses.create(input=items, **kw)
            items += resp.output
            send = []
            for call in (o for o in resp.output if o.type == "function_call"):
                with tool_span(call.name, call.call_id, call.arguments, tracer_provider=provider) as t:
                    result = run_tool(call.name, call.arguments)
                    t.set_result(result)
                send.append({"type": "function_call_output", "call_id": call.call_id, "output": result})
            if not send:
                return
            items += send
            previous = resp.id


@pytest.mark.parametrize("mode", ["plain", "streaming", "previous_response_id"])
def test_two_turn_tool_run_assembles_into_the_trajectory(tmp_path, mode):
    path = tmp_path / "run.jsonl"
    provider = setup_tracing(jsonl=path, batch=False)
    with FakeOpenAI(script) as srv, OpenAIInstrumentor(tracer_provider=provider):
        run_responses_agent(_client(srv), provider, "When is the release?", mode)
    provider.shutdown()

    result = load_path(path)
    assert result.issues == []
    (traj,) = result.trajectories
    expected = Trajectory.from_openai_messages("expected", [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "When is the release?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "read_file", "arguments": json.dumps({"path": "notes.txt"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": FILES["notes.txt"]},
        {"role": "assistant", "content": "The release is on Friday.", "reasoning_content": "The note says Friday."},
    ], CHAT_TOOLS)
    strip = lambda t: [m.model_dump(exclude={"metadata"}) for m in t.messages]  # noqa: E731
    assert strip(traj) == strip(expected)
    assert [t.name for t in traj.tools] == ["read_file"] and traj.tools[0].parameters == TOOLS[0]["parameters"]
    assert traj.content_captured is True
    assert traj.metadata["model"] == "smollm2" and traj.metadata["conversation_id"] == "conv-resp"
    assert traj.metadata["agent_name"] == "reader"
    assert traj.metadata["usage"]["output_tokens"] == 14
    # the derived actions: the tool call with its arguments, then the final answer
    assert [a.kind for a in traj.actions] == [ActionKind.tool_call, ActionKind.final_answer]
    call, answer = traj.actions
    assert call.tool_name == "read_file" and call.arguments == {"path": "notes.txt"}
    assert traj.messages[answer.message_index].content == "The release is on Friday."
    # the tool output is joined to its execute_tool span, the assistant turns to their chat spans
    tool_msg = traj.messages[3]
    assert tool_msg.content == FILES["notes.txt"]
    assert tool_msg.metadata["span_id"] in {s.span_id for s in result.spans if s.name == "execute_tool read_file"}
    chats = sorted((s for s in result.spans if s.name == "chat smollm2"), key=lambda s: s.start_time_unix_nano)
    chat_ids = [s.span_id for s in chats]
    assert [traj.messages[2].metadata["span_id"], traj.messages[4].metadata["span_id"]] == chat_ids
    assert traj.messages[4].metadata["finish_reason"] == "stop"
