"""`iter_load` reads a file in bounded pieces with the same result as reading it whole: the same
spans, the same trajectories (traces joined across batches exactly as the whole file joins them:
stitched calls, vLLM requests, conversation ids, tool spans traced apart), the same issues; and
what it holds does not grow with the file."""

from __future__ import annotations

import json
import random
import tracemalloc
from typing import Any

import openai

from auditor.collectors.instrument import OpenAIInstrumentor, agent_span, tool_span
from auditor.collectors.loading import load_path
from auditor.collectors.otlp_json import to_otlp_json_line
from auditor.collectors.sdk_spans import spans_from_readable
from auditor.collectors.spans import SpanRecord
from auditor.collectors.streaming import iter_load
from helpers.fake_openai import FakeOpenAI
from helpers.interop_agent import QUESTION, Wrappers, chat_agent, fake_script

TINY = {"budget_bytes": 1, "chunk_spans": 3, "chunk_trajectories": 2}  # every group of traces its own batch


def _read(path, **kw) -> tuple[list[Any], list[Any], list[Any]]:
    spans, trajs, issues = [], [], []
    for chunk in iter_load(path, **kw):
        assert len(chunk.spans) <= max(kw.get("chunk_spans", 2000), 1) + 50  # a line's spans at most beyond
        spans += chunk.spans
        trajs += chunk.trajectories
        issues += chunk.issues
    return spans, trajs, issues


def _assert_same_as_whole(path) -> list[Any]:
    whole = load_path(path)
    spans, trajs, issues = _read(path, **TINY)
    assert sorted((s.trace_id, s.span_id, s.source) for s in spans) == \
        sorted((s.trace_id, s.span_id, s.source) for s in whole.spans)
    assert sorted(t.to_jsonl_line() for t in trajs) == sorted(t.to_jsonl_line() for t in whole.trajectories)
    assert sorted(map(str, issues)) == sorted(map(str, whole.issues))
    return trajs


def test_the_sample_span_files_read_in_pieces_as_whole(data_dir):
    for name in ("otlp_genai.jsonl", "otlp_vllm_base64.jsonl", "openinference.jsonl", "openllmetry.jsonl",
                 "no_content.jsonl"):
        assert _assert_same_as_whole(data_dir / name), name


def _write(path, spans: list[SpanRecord], per_line: int, seed: int) -> None:
    """Spans in a shuffled order, ``per_line`` to an export line: traces spread over many lines."""
    spans = list(spans)
    random.Random(seed).shuffle(spans)
    path.write_text("".join(to_otlp_json_line(spans[k:k + per_line]) + "\n" for k in range(0, len(spans), per_line)))


def _client(srv: FakeOpenAI) -> Any:
    return openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)


def test_traces_joined_across_batches_as_in_the_whole_file(memory_spans, tmp_path):
    """Calls traced apart (stitched), two runs of one task (kept apart), tool spans traced on their
    own (joined by call id) and a conversation id over two traces: every join survives batches of
    one group of traces, with the lines shuffled and shared between traces."""
    provider, exporter = memory_spans
    inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
    try:
        with FakeOpenAI(fake_script) as srv:
            client = _client(srv)
            exchanged = chat_agent(client, Wrappers(False, None), "smollm2", stream=False)
            chat_agent(client, Wrappers(False, None), "smollm2", stream=True)
            for m in exchanged:  # the tools again, each under a tool span of its own trace
                for call in m.get("tool_calls") or []:
                    with tool_span(call["function"]["name"], call["id"], call["function"]["arguments"],
                                   tracer_provider=provider) as t:
                        t.set_result("again")
        with FakeOpenAI(lambda req: {"content": f"turn {len(req['messages'])}"}) as srv:
            messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
            for follow_up in (None, "And the weekday after that?"):
                if follow_up:
                    messages.append({"role": "user", "content": follow_up})
                with agent_span("chat", conversation_id="conv-a", tracer_provider=provider):
                    reply = _client(srv).chat.completions.create(model="smollm2", messages=messages)
                messages.append({"role": "assistant", "content": reply.choices[0].message.content})
    finally:
        inst.uninstrument()
    spans = spans_from_readable(exporter.get_finished_spans())
    assert len({s.trace_id for s in spans}) >= 8
    for per_line, seed in ((1, 0), (3, 1), (5, 2)):
        path = tmp_path / f"run-{per_line}.jsonl"
        _write(path, spans, per_line, seed)
        trajs = _assert_same_as_whole(path)
        assert len(trajs) == 3  # the two runs (the first with its re-run tools) and the conversation
        assert sorted(len(t.metadata.get("trace_ids", [])) for t in trajs) == [2, 2, 4]


def test_trajectory_lines_stream_and_repeats_are_read_once(tmp_path):
    from auditor.testing.audits import synthetic_trajectory

    lines = [synthetic_trajectory(k).to_jsonl_line() for k in range(5)]
    path = tmp_path / "t.jsonl"
    changed = json.loads(lines[1])
    changed["metadata"] = {"other": True}
    path.write_text("\n".join([*lines, lines[2], json.dumps(changed), "{broken"]) + "\n")
    _, trajs, issues = _read(path, chunk_trajectories=2)
    assert [t.id for t in trajs] == [f"synthetic-{k}" for k in range(5)]
    assert [(i.line, i.severity) for i in issues] == [(6, "info"), (7, "error"), (8, "error")]
    assert "repeats line 3" in issues[0].message and "already used by line 2" in issues[1].message


def _big_file(path, n_traces: int) -> None:
    """Agent-like traces of ~12 KB: a chat span with ~1 KB of messages and eight tool spans with ~1 KB
    results each, 20 spans to a line, the lines shuffled."""
    content = "You are a careful coding agent. Read the file, then fix the failing test. " * 12
    spans = []
    for k in range(n_traces):
        trace = f"{k:032x}"
        msgs = json.dumps([{"role": "user", "parts": [{"type": "text", "content": content + str(k)}]}])
        out = json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "id": f"c{k}-{j}", "name": "read_file", "arguments": {"path": f"{j}.py"}}
            for j in range(8)]}])
        spans.append(SpanRecord(trace_id=trace, span_id=f"{k:012x}0000", name="chat m", kind="CLIENT",
                                start_time_unix_nano=100 * k + 1, end_time_unix_nano=100 * k + 2,
                                attributes={"gen_ai.operation.name": "chat", "gen_ai.input.messages": msgs,
                                            "gen_ai.output.messages": out}))
        for j in range(8):
            spans.append(SpanRecord(trace_id=trace, span_id=f"{k:012x}{j + 1:04x}", name="execute_tool read_file",
                                    kind="INTERNAL", start_time_unix_nano=100 * k + 3 + j,
                                    end_time_unix_nano=100 * k + 4 + j,
                                    attributes={"gen_ai.operation.name": "execute_tool",
                                                "gen_ai.tool.call.id": f"c{k}-{j}", "gen_ai.tool.name": "read_file",
                                                "gen_ai.tool.call.result": content[::-1] + str(j)}))
    _write(path, spans, 20, 0)


def _peak(path) -> tuple[int, int]:
    """Peak Python memory while the file is read and dropped piece by piece; and the trajectories."""
    tracemalloc.start()
    n = 0
    try:
        for chunk in iter_load(path, budget_bytes=32 * 1024, chunk_spans=50):
            n += len(chunk.trajectories)
        return tracemalloc.get_traced_memory()[1], n
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path):
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    _big_file(small, 20)
    _big_file(large, 80)
    assert large.stat().st_size > 3.5 * small.stat().st_size > 0.8e6
    _peak(small)  # warm-up: imports and caches are not the file's
    peak_small, n_small = _peak(small)
    peak_large, n_large = _peak(large)
    assert (n_small, n_large) == (20, 80)
    # 4x the file; only the index grows: about 1.5 KB per trace (its hashed keys: 8 tool call ids
    # each here) against ~13 KB of file per trace
    grown = large.stat().st_size - small.stat().st_size
    assert peak_large - peak_small < 0.15 * grown, (peak_small, peak_large, grown)
    assert peak_large < large.stat().st_size  # never the whole file (a fixed floor: a piece of spans, one batch)
