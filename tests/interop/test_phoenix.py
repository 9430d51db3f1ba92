"""Seen in a real backend: a real Arize Phoenix server (its own venv, started and stopped here)
receives an OpenInference-instrumented agent run (the scripted agent inside auditor's
agent_span/tool_span, exported to Phoenix and to a file at once), `audit trace` audits the file on
the embedded model and sends the verdicts (`--export-otlp` to Phoenix's OTLP endpoint,
`--export-phoenix` for span annotations); read back through Phoenix's own REST API, each audited
action's span carries its verdict, and the evaluation spans sit under it in the agent's trace.
About a minute (Phoenix's start, the replay).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.collectors.readers import read_otlp_json
from auditor.store import Store
from helpers.interop import run_library
from helpers.phoenix import phoenix_server_module, skip_without_phoenix, span_annotations, spans, wait_for

pytestmark = [pytest.mark.phoenix, pytest.mark.slow, skip_without_phoenix]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "auditor-interop"


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = phoenix_server_module().PhoenixServer(workdir=tmp_path_factory.mktemp("phoenix"),
                                                   log_path=tmp_path_factory.mktemp("phoenix-log") / "server.log",
                                                   pid_path=tmp_path_factory.mktemp("phoenix-pid") / "server.pid")
    server.start(timeout=300)
    print(f"phoenix healthy after {server.ready_after:.1f} s")
    try:
        yield server
    finally:
        server.stop()


def test_verdicts_land_on_the_action_spans_in_phoenix(tmp_path: Path, phoenix: Any) -> None:
    run_library("openinference", tmp_path, modes=["chat"], variants=["agent"],
                extra=["--otlp", phoenix.traces_url, "--project", PROJECT])
    run_file = tmp_path / "openinference-chat-agent.spans.jsonl"
    sent, issues = read_otlp_json(run_file)
    assert issues == []
    # Phoenix has the run (it ingests asynchronously)
    got = wait_for(lambda: len(spans(phoenix.base_url, PROJECT)) >= len(sent) and spans(phoenix.base_url, PROJECT))
    assert {s["context"]["span_id"] for s in got} == {s.span_id for s in sent}

    db = tmp_path / "audit.duckdb"
    exe = Path(sys.executable).parent / "audit"
    proc = subprocess.run([str(exe), "trace", str(run_file), "--db", str(db), "--json",
                           "--export-otlp", phoenix.traces_url, "--export-phoenix", phoenix.base_url],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    (audit,) = out["audits"]
    actions = {a["action_id"]: a for a in audit["actions"]}
    assert out["exported"]["otlp"] == out["exported"]["phoenix"] == len(actions) == 3

    with Store(db, read_only=True) as store:
        verdicts = store.verdicts(out["run_id"], audit["trajectory_id"])
        traj = store.load_audit(out["run_id"], audit["trajectory_id"]).trajectory
    by_name = {s.span_id: s for s in sent}
    # the span each action came from: its tool span (tool calls), the LLM span that wrote it (answer)
    target = {}
    for a in traj.actions:
        if a.tool_call_id:
            target[a.id] = next(m.metadata["span_id"] for m in traj.messages if m.tool_call_id == a.tool_call_id)
        else:
            target[a.id] = traj.messages[a.message_index].metadata["span_id"]
    assert {by_name[t].name for t in target.values()} == {"execute_tool read_file", "execute_tool list_dir",
                                                          "ChatCompletion"}

    # read back through Phoenix's API: the evaluation spans, each a child of its action's span ...
    evals = wait_for(lambda: [s for s in spans(phoenix.base_url, PROJECT)
                              if s["name"] == "evaluation auditor.support"] or None)
    assert evals and len(evals) == 3
    for s in evals:
        a = s["attributes"]
        action = a["auditor.action.id"]
        assert s["parent_id"] == target[action] and s["context"]["trace_id"] == by_name[target[action]].trace_id
        assert a["gen_ai.evaluation.score.label"] == verdicts[action]["status"]
        assert [e["name"] for e in s["events"]] == ["gen_ai.evaluation.result"]
    # ... and each action's own span annotated with its verdict
    notes = span_annotations(phoenix.base_url, PROJECT, list(target.values()))
    assert {n["span_id"] for n in notes} == set(target.values())
    for action, span_id in target.items():
        (note,) = [n for n in notes if n["span_id"] == span_id]
        v = verdicts[action]
        assert note["name"] == "auditor.support" and note["annotator_kind"] == "CODE"
        assert note["identifier"] == f"auditor:{out['run_id']}"
        assert note["result"]["label"] == v["status"] == actions[action]["status"]
        if v["support"] is None:
            assert note["result"].get("score") is None
        else:
            assert note["result"]["score"] == pytest.approx(v["support"], rel=1e-9)
        assert note["result"]["explanation"].startswith(v["status"])
        assert note["metadata"]["auditor.action.id"] == action
