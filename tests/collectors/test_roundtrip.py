"""Round trip: an instrumented agent run (real openai client, real SDK, real exporters) ->
run.jsonl -> trajectory equal to the messages the agent exchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from helpers.agent import TOOLS, run_agent, run_agent_async
from helpers.fake_openai import FakeOpenAI
from auditor.collectors.exporters import setup_tracing
from auditor.collectors.instrument import OpenAIInstrumentor
from auditor.collectors.receiver import OTLPReceiver
from auditor.collectors.loading import load_path
from auditor.trajectory import ActionKind, Trajectory


def script(req: dict[str, Any]) -> dict[str, Any]:
    """read_file first, then answer with some reasoning (vLLM's reasoning_content)."""
    last = req["messages"][-1]
    if last["role"] == "tool":
        return {"content": "The release is on Friday.", "reasoning_content": "The note says Friday."}
    return {"content": None, "tool_calls": [
        {"id": "call_read_1", "type": "function",
         "function": {"name": "read_file", "arguments": json.dumps({"path": "notes.txt"})}}]}


def _strip(traj: Trajectory) -> list[dict[str, Any]]:
    return [m.model_dump(exclude={"metadata"}) for m in traj.messages]


def _expected(messages: list[dict[str, Any]]) -> Trajectory:
    return Trajectory.from_openai_messages("expected", messages, TOOLS)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_file_exporter_round_trip_equals_exchanged_messages(tmp_path, stream):
    path = tmp_path / "run.jsonl"
    provider = setup_tracing(jsonl=path)
    with FakeOpenAI(script) as srv, OpenAIInstrumentor(tracer_provider=provider):
        client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
        messages = run_agent(client, provider, "When is the release?", stream=stream)
    provider.shutdown()

    result = load_path(path)
    assert result.format == "otlp-json" and result.issues == []
    (traj,) = result.trajectories
    expected = _expected(messages)
    assert _strip(traj) == _strip(expected)
    assert traj.tools == expected.tools
    assert traj.content_captured is True
    assert traj.messages[-1].reasoning == "The note says Friday."
    assert traj.metadata["model"] == "smollm2"
    assert traj.metadata["conversation_id"] == "conv-test"
    assert traj.metadata["agent_name"] == "reader"
    assert len(traj.metadata["trace_id"]) == 32
    kinds = [a.kind for a in traj.actions]
    assert kinds == [ActionKind.tool_call, ActionKind.final_answer]
    assert traj.actions[0].arguments == {"path": "notes.txt"}
    # every span of the run is kept raw too
    names = sorted(s.name for s in result.spans)
    assert names == ["chat smollm2", "chat smollm2", "execute_tool read_file", "invoke_agent reader"]
    # the tool message is joined to its execute_tool span
    tool_msg = next(m for m in traj.messages if m.role == "tool")
    assert tool_msg.metadata["span_id"] in {s.span_id for s in result.spans if s.name.startswith("execute_tool")}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_async_client_round_trip(tmp_path, stream):
    path = tmp_path / "run.jsonl"
    provider = setup_tracing(jsonl=path, batch=False)

    async def main() -> list[dict[str, Any]]:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
        try:
            return await run_agent_async(client, provider, "When?", stream=stream)
        finally:
            await client.close()

    with FakeOpenAI(script) as srv, OpenAIInstrumentor(tracer_provider=provider):
        messages = asyncio.run(main())
    provider.shutdown()
    (traj,) = load_path(path).trajectories
    assert _strip(traj) == _strip(_expected(messages))
    assert traj.metadata["conversation_id"] == "conv-async"


def test_receiver_pipeline_joins_vllm_llm_request_spans(tmp_path):
    """Agent and (simulated) vLLM both export OTLP/HTTP protobuf to `OTLPReceiver`; vLLM's
    llm_request spans are children of the chat spans via the injected traceparent."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    path = tmp_path / "run.jsonl"
    with OTLPReceiver(port=0, jsonl_path=path) as rec:
        agent_provider = setup_tracing(otlp_endpoint=f"http://127.0.0.1:{rec.port}")  # /v1/traces appended
        vllm_provider = TracerProvider()
        vllm_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=rec.url)))
        with FakeOpenAI(script, vllm_provider=vllm_provider) as srv, OpenAIInstrumentor(tracer_provider=agent_provider):
            client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
            messages = run_agent(client, agent_provider, "When is the release?")
            sent = [h["traceparent"] for h in srv.headers]
        agent_provider.shutdown()
        vllm_provider.shutdown()
    result = load_path(path)
    assert result.issues == []
    (traj,) = result.trajectories
    assert _strip(traj) == _strip(_expected(messages))
    chat_spans = [s for s in result.spans if s.name == "chat smollm2"]
    # each request carried a W3C traceparent naming its chat span
    assert sorted(tp.split("-")[2] for tp in sent) == sorted(s.span_id for s in chat_spans)
    assert all(tp.split("-")[1] == traj.metadata["trace_id"] for tp in sent)
    reqs = traj.metadata["llm_requests"]
    assert [r["chat_span_id"] for r in reqs] == [s.span_id for s in sorted(chat_spans, key=lambda s: s.start_time_unix_nano)]
    assert reqs[0]["request_id"] == "chatcmpl-1" and reqs[0]["e2e"] == pytest.approx(0.034)
    assert reqs[0]["prompt_tokens"] == 22 and reqs[1]["completion_tokens"] == 7
    final = traj.messages[-1]
    assert final.metadata["llm_request"]["time_to_first_token"] == pytest.approx(0.012)
    assert final.metadata["usage"] == {"input_tokens": 44, "output_tokens": 7}


def test_content_off_gives_uncaptured_trajectory_and_warnings(tmp_path):
    path = tmp_path / "run.jsonl"
    provider = setup_tracing(jsonl=path, batch=False)
    with FakeOpenAI(script) as srv, OpenAIInstrumentor(tracer_provider=provider, capture_content=False):
        client = openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
        run_agent(client, provider, "When is the release?")
    provider.shutdown()
    result = load_path(path)
    (traj,) = result.trajectories
    assert traj.content_captured is False
    chat_ids = {s.span_id for s in result.spans if s.name.startswith("chat")}
    warned = {i.span_id for i in result.issues}
    assert warned == chat_ids and all(i.severity == "warning" for i in result.issues)
    assert all("no message content" in i.message for i in result.issues)
    # the shape of the run survives: a call to read_file (name and id from the tool span), its result slot
    assert [m.role for m in traj.messages] == ["assistant", "tool", "assistant"]
    assert traj.messages[0].tool_calls[0].name == "read_file"
    assert traj.messages[0].tool_calls[0].id == "call_read_1"
    assert traj.messages[0].metadata["content_captured"] is False
    # nothing sensitive was recorded anywhere
    raw = path.read_text()
    assert "notes.txt" not in raw and "Friday" not in raw and "careful assistant" not in raw
