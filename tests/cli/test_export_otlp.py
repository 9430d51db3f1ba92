"""Verdicts back out: `audit trace --export-otlp` and `audit export --otlp` send one evaluation per
audited action to an OTLP endpoint (auditor's own receiver here), in the agent's trace, a child of
the span the action came from, carrying the GenAI evaluation result and the ``auditor.*``
attributes; what they carry is what the store recorded. Real spans (auditor's instrumentor and
the fake server), the model-free audit seam, the real SDK exporter and receiver."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

from auditor.cli import app
from auditor.collectors import assemble_trajectories
from auditor.collectors.exporters import setup_tracing
from auditor.collectors.instrument import OpenAIInstrumentor
from auditor.collectors.readers import read_otlp_json
from auditor.collectors.receiver import OTLPReceiver
from auditor.report.otlp import AUDITOR_ATTRIBUTES, EVENT_NAME, SPAN_NAME
from auditor.store import Store
from helpers.fake_openai import FakeOpenAI
from helpers.interop_agent import Wrappers, chat_agent, fake_script


def _run(path: Path, wrapped: bool) -> Path:
    provider = setup_tracing(jsonl=path, service_name="reader", batch=False)
    inst = OpenAIInstrumentor(tracer_provider=provider).instrument()
    try:
        with FakeOpenAI(fake_script) as srv:
            client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
            chat_agent(client, Wrappers(wrapped, provider), "smollm2", stream=False)
    finally:
        inst.uninstrument()
        provider.shutdown()
    return path


@pytest.fixture
def receiver():
    got: list[Any] = []
    lock = threading.Lock()

    def sink(spans):
        with lock:
            got.extend(spans)

    with OTLPReceiver(host="127.0.0.1", port=0, sink=sink) as r:
        r.received = got
        yield r


def _evaluations(spans: list[Any]) -> dict[str, Any]:
    return {s.attributes["auditor.action.id"]: s for s in spans if s.name == SPAN_NAME}


@pytest.mark.parametrize("wrapped", [True, False], ids=["agent-span", "bare"])
def test_trace_exports_each_verdict_into_the_agents_trace(tmp_path, runner, fake_auditor, db, receiver, wrapped):
    run = _run(tmp_path / "run.jsonl", wrapped)
    res = runner.invoke(app, ["trace", str(run), "--db", str(db), "--json", "--export-otlp", receiver.url])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["exported"]["evaluations"] == out["exported"]["otlp"] == 3 and out["exported"]["notes"] == []

    spans, issues = read_otlp_json(run)
    assert issues == []
    (traj,), _ = assemble_trajectories(spans)
    evals = _evaluations(receiver.received)
    assert len(evals) == len(receiver.received) == len(traj.actions) == 3
    with Store(db, read_only=True) as store:
        verdicts = store.verdicts(out["run_id"], traj.id)
    by_id = {s.span_id: s for s in spans}
    for action in traj.actions:
        ev = evals[action.id]
        a = ev.attributes
        msg = traj.messages[action.message_index]
        if action.tool_call_id and wrapped:  # parent: the tool span that ran it
            result = next(m for m in traj.messages if m.tool_call_id == action.tool_call_id)
            parent = by_id[result.metadata["span_id"]]
            assert parent.name == f"execute_tool {action.tool_name}" and a["auditor.span.tool"] == parent.span_id
        else:  # the chat span whose reply holds it (bare: in that call's own trace)
            parent = by_id[msg.metadata["span_id"]]
            assert parent.name == "chat smollm2"
        assert ev.parent_span_id == parent.span_id and ev.trace_id == parent.trace_id
        assert a["auditor.span.chat"] == msg.metadata["span_id"]
        assert ev.resource["service.name"] == "auditor" and ev.scope == "auditor.report.otlp"
        # what the store recorded for the action, as the conventions name it
        v = verdicts[action.id]
        assert a["gen_ai.evaluation.name"] == "auditor.support"
        assert a["gen_ai.evaluation.score.label"] == v["status"]
        if v["status"] == "ignored":  # the policy does not judge it: no score
            assert v["support"] is None and "gen_ai.evaluation.score.value" not in a
        else:
            assert a["gen_ai.evaluation.score.value"] == pytest.approx(v["support"], rel=1e-12)
            assert a["auditor.support.threshold"] == pytest.approx(v["threshold"], rel=1e-12)
        assert list(a["auditor.verdict.rules"]) == list(v["rules"])
        assert a["auditor.action.kind"] == action.kind.value and a["auditor.trajectory.id"] == traj.id
        assert set(a) - {"gen_ai.evaluation.name", "gen_ai.evaluation.score.label", "gen_ai.evaluation.score.value",
                         "gen_ai.evaluation.explanation"} <= set(AUDITOR_ATTRIBUTES) | {
            k for k in a if k.startswith("auditor.argument.")}
        (event,) = ev.events
        assert event["name"] == EVENT_NAME
        assert {k: v for k, v in event["attributes"].items()} == {
            k: v for k, v in a.items() if k.startswith("gen_ai.evaluation.")}
        drivers = json.loads(a["auditor.drivers"])
        assert drivers and all(d["quote"] for d in drivers)
        expl = a["gen_ai.evaluation.explanation"]
        assert expl.startswith(f"{v['status']}: ") and f"\u201c{drivers[0]['quote']}\u201d" in expl
    # per argument: support and provenance; the path the user named comes from their request
    read = evals[next(x.id for x in traj.actions if x.tool_name == "read_file")].attributes
    (path_arg,) = json.loads(read["auditor.arguments"])
    assert path_arg["name"] == "path" and path_arg["value"] == "notes.txt" and path_arg["source"] == "authority"
    assert read["auditor.argument.path.source"] == "authority" and "user request" in path_arg["provenance"]

    # auditor reading the same trace back, evaluations included, assembles the same run
    again, issues = assemble_trajectories(spans + list(receiver.received))
    assert issues == [] and [t.model_dump() for t in again] == [traj.model_dump()]


def test_export_sends_a_stored_runs_verdicts(tmp_path, runner, fake_auditor, db, receiver):
    run = _run(tmp_path / "run.jsonl", True)
    assert runner.invoke(app, ["trace", str(run), "--db", str(db)]).exit_code == 0
    res = runner.invoke(app, ["export", "--db", str(db), "--otlp", receiver.url, "--header", "x-team=audit"])
    assert res.exit_code == 0, res.output
    assert "sent 3 evaluation span(s)" in res.output
    assert len(_evaluations(receiver.received)) == 3


def test_export_errors_are_named(tmp_path, runner, fake_auditor, db, examples_dir):
    res = runner.invoke(app, ["export", "--db", str(db)])
    assert res.exit_code == 2 and "give a DIRECTORY" in res.output
    assert runner.invoke(app, ["trace", str(_run(tmp_path / "run.jsonl", True)), "--db", str(db)]).exit_code == 0
    res = runner.invoke(app, ["export", "--db", str(db), "--otlp", "http://127.0.0.1:9/v1/traces", "--header", "nokey"])
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/traces"  # nothing listens there
    res = runner.invoke(app, ["export", "--db", str(db), "--otlp", url, "--timeout", "1"])
    assert res.exit_code == 2 and url in res.output and "did not accept" in res.output


def test_trajectories_without_spans_are_left_out_with_a_note(runner, fake_auditor, db, receiver, examples_dir):
    res = runner.invoke(app, ["trace", str(examples_dir / "injected_email.jsonl"), "--db", str(db), "--json",
                              "--export-otlp", receiver.url])
    assert res.exit_code == 0, res.output
    exported = json.loads(res.stdout)["exported"]
    assert exported["otlp"] == 0 and exported["evaluations"] == 0
    assert exported["notes"] and all("no span to join" in n for n in exported["notes"])
    assert receiver.received == []
