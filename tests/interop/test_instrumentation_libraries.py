"""The same scripted agent run under auditor's own instrumentor and the three OpenAI
instrumentations teams already use (the official ``opentelemetry-instrumentation-openai-v2``,
OpenInference, OpenLLMetry), against the suite's fake OpenAI server (which also plays vLLM's
``llm_request`` span): every library's spans assemble into the trajectory auditor's instrumentor
gives, except for the documented gaps (`helpers.interop_gaps`), asserted.

Every chat mode (plain, streaming; Responses API plain and streaming), each ``bare`` (the
library's spans only: every call its own trace) and inside auditor's ``agent_span``/``tool_span``.
Each library runs in its own interpreter (OpenLLMetry cannot uninstrument). ~20 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.interop import assemble, normalise, read_spans, run_library, truth
from helpers.interop_agent import LIBRARIES, MODES, VARIANTS
from helpers.interop_gaps import CONVENTION, expected, expected_warnings, instruments

ALL_AT_ONCE = "official+openinference+openllmetry"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interop-fake")
    for library in LIBRARIES:
        summary = run_library(library, out)
        errors = {k: v["error"] for k, v in summary["runs"].items() if v["error"]}
        assert not errors, errors  # no library breaks the agent
    run_library(ALL_AT_ONCE, out, modes=["chat"], variants=["agent"])
    return out


def _load(out: Path, stem: str) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    agent = json.loads((out / f"{stem}.agent.json").read_text())
    spans = read_spans(out / f"{stem}.spans.jsonl")
    trajs, issues = assemble(spans)
    return trajs, issues, agent["messages"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", MODES)
def test_auditor_instrumentor_captures_what_the_agent_exchanged(captures: Path, mode: str, variant: str) -> None:
    (traj,), issues, exchanged = _load(captures, f"auditor-{mode}-{variant}")
    assert issues == []
    ref = normalise(traj)
    assert ref["messages"] == truth(exchanged)
    assert ref["content_captured"] and [t["name"] for t in ref["tools"]] == ["read_file", "list_dir"]
    assert [(a["kind"], a["tool_call_id"]) for a in ref["actions"]] == [
        ("tool_call", "call_read_1"), ("tool_call", "call_list_2"), ("final_answer", None)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("library", [lib for lib in LIBRARIES if lib != "auditor"])
def test_library_assembles_like_auditor(captures: Path, library: str, mode: str, variant: str) -> None:
    (ref_traj,), _, ref_exchanged = _load(captures, f"auditor-{mode}-{variant}")
    trajs, issues, exchanged = _load(captures, f"{library}-{mode}-{variant}")
    assert truth(exchanged) == truth(ref_exchanged)  # the same run (the fake server is scripted)
    if not instruments(library, mode):
        # no chat span: vLLM's two requests, and in the agent variant auditor's tool spans, are all
        # that is left; no trajectory holds a message to or from the model, only the tools' results
        assert trajs and not any(t.content_captured for t in trajs)
        msgs = [m for t in trajs for m in t.messages]
        assert not any(m.content for m in msgs if m.role != "tool")
        assert [m.content for m in msgs if m.role == "tool"] == (
            [m["content"] for m in exchanged if m["role"] == "tool"] if variant == "agent" else [])
        assert sum("llm_request span has no matching client chat span" in i.message for i in issues) == 2
        return
    (traj,) = trajs  # one trajectory, bare or not: calls traced apart are stitched
    assert normalise(traj) == expected(library, mode, normalise(ref_traj))
    assert [i.severity for i in issues] == ["warning"] * len(issues)
    want = expected_warnings(library, mode)
    assert len(issues) == len(want) and all(w in i.message for w, i in zip(want, issues)), [i.message for i in issues]
    meta = traj.metadata
    assert meta["conventions"] == [CONVENTION[library]]
    assert meta["chat_spans"] == 2
    # vLLM's llm_request span joined each call (traceparent, else the response id)
    assert len(meta["llm_requests"]) == 2
    assert len(meta.get("trace_ids", [meta["trace_id"]])) == (2 if variant == "bare" else 1)
    assert meta["usage"] == ref_traj.metadata["usage"]
    if variant == "agent":
        assert meta["agent_name"] == "reader" and meta["conversation_id"] == "conv-interop"
        tool_msgs = [m for m in traj.messages if m.role == "tool"]
        assert all(m.metadata.get("span_id") for m in tool_msgs)  # auditor's tool spans joined


def test_three_libraries_at_once_keep_each_call_once(captures: Path) -> None:
    """What ``opentelemetry-instrument`` does with all three installed: each call traced thrice."""
    (ref_traj,), _, _ = _load(captures, "auditor-chat-agent")
    (traj,), issues, _ = _load(captures, f"{ALL_AT_ONCE}-chat-agent")
    assert [i.message.split(":")[0] for i in issues] == [
        "3 chat spans trace the same call (response 'chatcmpl-1'", "3 chat spans trace the same call (response 'chatcmpl-2'"]
    assert normalise(traj) == normalise(ref_traj)  # one keeps the tools and reasoning the official one lacks
    assert traj.metadata["chat_spans"] == 2 and len(traj.metadata["llm_requests"]) == 2
    assert traj.metadata["usage"] == ref_traj.metadata["usage"]  # not tripled
