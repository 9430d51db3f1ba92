"""The interop comparison once against the real vLLM server (the session's, `helpers.vllm`): the
same scripted agent under auditor's instrumentor and the three third-party OpenAI
instrumentations, ``bare`` (every call its own trace, how these libraries are used), plain chat
completions and the streamed Responses API (the fake-server test covers every mode; these two
cover both APIs and both ways of reading a reply at half the time); vLLM's own ``llm_request``
spans are collected and assembled with each library's spans.

On a real server, tool call ids are random and the replies come from the model: runs are
compared with their tool call ids replaced by their order of appearance, and each library's run
must have exchanged exactly the messages auditor's run did (greedy decoding). Then each library's
trajectory equals auditor's but for the documented gaps (`helpers.interop_gaps`), and vLLM's
span joined every call it recorded. A few minutes (the server's start, once per session, and
6 model calls per library).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from auditor.collectors.conventions import response_id_of, span_role
from auditor.collectors.conventions.vllm import response_ids
from auditor.collectors.receiver import OTLPReceiver
from auditor.collectors.spans import SpanRecord
from helpers.interop import assemble, normalise, read_spans, run_library, truth
from helpers.interop_agent import LIBRARIES
from helpers.interop_gaps import CONVENTION, expected, expected_warnings, instruments
from helpers.vllm import skip_without_vllm

pytestmark = [pytest.mark.vllm, skip_without_vllm]

MODES = ("chat", "responses_stream")


def _canonical_ids(value: Any, ids: dict[str, str] | None = None) -> Any:
    """Tool call ids -> ``call#1``, ``call#2``, ... in order of appearance (the same run twice on
    a real server differs only in them)."""
    ids = {} if ids is None else ids
    if isinstance(value, list):
        return [_canonical_ids(v, ids) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("id", "tool_call_id") and isinstance(v, str):
                v = ids.setdefault(v, f"call#{len(ids) + 1}")
            out[k] = _canonical_ids(v, ids)
        return out
    return value


def canonical(norm: dict[str, Any]) -> dict[str, Any]:
    ids: dict[str, str] = {}
    msgs = _canonical_ids(norm["messages"], ids)
    return {**norm, "messages": msgs, "actions": _canonical_ids(norm["actions"], ids)}


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory, vllm_server: Any) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("interop-vllm")
    server_spans: list[SpanRecord] = []
    lock = threading.Lock()

    # only spans of requests made from here on: vLLM's exporter may still deliver an earlier
    # module's spans (it batches and retries) once something listens on its port again
    since = time.time_ns()

    def sink(spans: Any) -> None:
        with lock:
            server_spans.extend(s for s in spans if (s.start_time_unix_nano or 0) >= since)

    timings: dict[str, float] = {}
    with OTLPReceiver(host="127.0.0.1", port=vllm_server.otlp_port, sink=sink):
        for library in LIBRARIES:
            t0 = time.monotonic()
            summary = run_library(library, out, base_url=vllm_server.base_url, modes=MODES, variants=["bare"])
            timings[library] = round(time.monotonic() - t0, 1)
            errors = {k: v["error"] for k, v in summary["runs"].items() if v["error"]}
            assert not errors, errors
        # vLLM exports in batches: wait until every request the agents made has its span
        calls = sum(m["role"] == "assistant" for p in out.glob("*.agent.json")
                    for m in json.loads(p.read_text())["messages"])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with lock:
                got = sum(1 for s in server_spans if span_role(s) == "llm_request")
            if got >= calls:
                break
            time.sleep(1)
    print(json.dumps({"seconds_per_library": timings, "calls": calls, "llm_request_spans": got}))
    assert got == calls, f"vLLM exported {got} llm_request spans for {calls} requests"
    return {"out": out, "server_spans": [s for s in server_spans if span_role(s) == "llm_request"]}


def _load(captures: dict[str, Any], stem: str) -> tuple[list[Any], list[Any], list[dict[str, Any]], int]:
    """The run's spans plus vLLM's spans of its requests (same trace, or named by a response id)."""
    out = captures["out"]
    spans = read_spans(out / f"{stem}.spans.jsonl") if (out / f"{stem}.spans.jsonl").stat().st_size else []
    traces = {s.trace_id for s in spans}
    responses = {rid for s in spans if (rid := response_id_of(s))}
    server = [s for s in captures["server_spans"] if s.trace_id in traces or set(response_ids(s)) & responses]
    trajs, issues = assemble(spans + server)
    exchanged = json.loads((out / f"{stem}.agent.json").read_text())["messages"]
    return trajs, issues, exchanged, len(server)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("library", LIBRARIES)
def test_library_on_vllm_assembles_like_auditor(captures: dict[str, Any], library: str, mode: str) -> None:
    (ref_traj,), ref_issues, ref_exchanged, _ = _load(captures, f"auditor-{mode}-bare")
    assert ref_issues == []
    ref = canonical(normalise(ref_traj))
    assert ref["messages"] == _canonical_ids(truth(ref_exchanged))
    assert [a["kind"] for a in ref["actions"]] == ["tool_call", "tool_call", "final_answer"]
    trajs, issues, exchanged, joined = _load(captures, f"{library}-{mode}-bare")
    # greedy decoding: the same requests got the same replies
    assert _canonical_ids(truth(exchanged)) == _canonical_ids(truth(ref_exchanged))
    calls = sum(m["role"] == "assistant" for m in exchanged)
    if not instruments(library, mode):
        assert trajs == [] and joined == 0  # no client span, so vLLM's cannot be told apart either
        return
    (traj,) = trajs
    assert canonical(normalise(traj)) == expected(library, mode, ref)
    want = expected_warnings(library, mode)
    assert len(issues) == len(want) and all(w in i.message for w, i in zip(want, issues)), [i.message for i in issues]
    meta = traj.metadata
    assert meta["conventions"] == [CONVENTION[library]]
    assert meta["chat_spans"] == calls and len(meta["trace_ids"]) == calls
    assert joined == calls and len(meta["llm_requests"]) == calls  # vLLM's span joined every call
    for r in meta["llm_requests"]:
        assert r["e2e"] > 0 and r["prompt_tokens"] > 0
