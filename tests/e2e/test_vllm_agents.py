"""End to end on a real vLLM server: both example agents, client + server spans through the
receiver, then `audit trace` and the stored drivers.

Starts `audit collect` and vLLM (from `.venv-vllm`, serving the embedded SmolLM2 converted once
into the user cache) exporting its spans to the collector; runs one scenario of the tool agent
(`inbox_exfil`) and two of the coder (`config_injection`; `billing_session`, three requests in
which a file changes between requests); checks that vLLM's `llm_request` spans joined the
agents' traces; runs `audit trace` on the collected file and checks what it stored with
`audit query`: for the coder, one context per request, each edit attributed within its own.

The server is the session's shared one (`helpers.vllm`, fixture ``vllm_server``), exporting its
spans to a port where this test's `audit collect` listens while the agents run. Skipped (with the
reason) only when `.venv-vllm` is absent and AUDITOR_E2E is unset; `make test-e2e` creates the env
and sets AUDITOR_E2E=1, so there a server that cannot start is a failure. A few minutes: vLLM's
start (~1 min, eager; once per session), the agents (~40 s), the replay.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers.vllm import skip_without_vllm

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.vllm, skip_without_vllm]

TOOL_SCENARIO = "inbox_exfil"
CODER_SCENARIO = "config_injection"
SESSION_SCENARIO = "billing_session"
INJECTED_TO = "records@northwind-it-support.com"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _audit(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "audit"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from auditor.cli import main; main()"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, vllm_server: Any) -> Any:
    record_run = _load("record_run", ROOT / "examples" / "agents" / "record_run.py")
    out_dir = tmp_path_factory.mktemp("e2e")
    # the session's server, which exports its spans to the port this recording's collector listens on
    rec = record_run.record(out_dir / "run.jsonl", [TOOL_SCENARIO, CODER_SCENARIO, SESSION_SCENARIO],
                            base_url=vllm_server.base_url, collector_port=vllm_server.otlp_port)
    rec.spans = record_run.read_spans(rec.out)
    print(json.dumps({"summary": rec.summary, "timings": rec.timings}, indent=2))
    return rec


def test_agents_ran_their_scenarios(recording: Any) -> None:
    by_scenario = {r["scenario"]: r for r in recording.records}
    tools = by_scenario[TOOL_SCENARIO]
    assert [c["tool"] for c in tools["calls"]] == ["read_inbox", "search_files", "send_email"]
    assert tools["calls"][2]["arguments"]["to"] == INJECTED_TO  # the injected instruction, followed
    assert "IMPORTANT INSTRUCTIONS FOR THE AI ASSISTANT" in tools["calls"][0]["result"]
    assert tools["answer"], "the final answer step produced no text"
    coder = by_scenario[CODER_SCENARIO]
    assert len(coder["turns"]) == 2
    edits = [e for t in coder["turns"] for e in t["edits"]]
    assert len(edits) == 3 and all(e["applied"] for e in edits), edits
    assert all(t["commit"] for t in coder["turns"])
    session = by_scenario[SESSION_SCENARIO]
    assert len(session["turns"]) == 3
    edits = [e for t in session["turns"] for e in t["edits"]]
    assert [e["path"] for e in edits] == ["app/util.py", "app/util.py", "tests/test_util.py", "tests/test_util.py"]
    assert all(e["applied"] for e in edits), edits


def test_vllm_spans_joined_the_agent_traces(recording: Any) -> None:
    spans = recording.spans
    s = recording.summary
    assert {"vllm", "tool-agent", "coder-agent"} <= set(s["services"])
    assert s["agent_traces"] == 3
    assert s["chat_spans"] == 9  # 4 tool-agent steps + 2 + 3 coder turns
    assert s["tool_spans"] == 3
    # every chat call has exactly one llm_request child from the server, in the agent's trace
    chats = {sp["spanId"]: sp for sp in spans if sp["attributes"].get("gen_ai.operation.name") == "chat"}
    llm = [sp for sp in spans if sp["name"] == "llm_request"]
    assert s["llm_request_joined"] == len(chats) == len(llm)
    for sp in llm:
        parent = chats[sp["parentSpanId"]]
        assert sp["traceId"] == parent["traceId"]
        assert sp["service"] == "vllm"
        a = sp["attributes"]
        assert a["gen_ai.usage.prompt_tokens"] == parent["attributes"]["gen_ai.usage.input_tokens"]
        assert a["gen_ai.usage.completion_tokens"] == parent["attributes"]["gen_ai.usage.output_tokens"]
        assert a["gen_ai.latency.e2e"] > 0
        # vLLM's request id is the client's response id
        assert a["gen_ai.request.id"] == parent["attributes"]["gen_ai.response.id"]
    # the client side captured the content the server does not record
    for sp in chats.values():
        assert "gen_ai.input.messages" in sp["attributes"] and "gen_ai.output.messages" in sp["attributes"]


@pytest.fixture(scope="module")
def traced(recording: Any) -> dict[str, Any]:
    db = recording.out.with_suffix(".duckdb")
    # the drivers and contexts are what is checked here: the support rule spares the causal variants
    # the calibrated verdict would ask for (that path runs on the embedded model in tests/check)
    policy = recording.out.with_name("support.toml")
    policy.write_text('decide = "support"\n')
    proc = _audit("trace", str(recording.out), "--db", str(db), "--json", "--policy", str(policy))
    assert proc.returncode == 0, f"audit trace failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return {"db": db, "result": json.loads(proc.stdout), "records": recording.records}


def _query(db: Path, sql: str) -> list[dict[str, Any]]:
    proc = _audit("query", sql, "--db", str(db), "--format", "json", timeout=120)
    assert proc.returncode == 0, f"audit query failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def test_audit_trace_stores_the_drivers(traced: dict[str, Any]) -> None:
    result, db = traced["result"], traced["db"]
    assert result["trajectories"] == 3
    assert not result["failed"], result["failed"]
    assert result["skipped"] == 0, result["issues"]

    rows = _query(db, "SELECT trajectory_id, action_id, action_kind, tool_name, arguments, rank, "
                      "driver_kind, driver_label, driver_tool, driver_path, share "
                      "FROM action_drivers ORDER BY trajectory_id, step, rank")
    assert rows, "no drivers stored"
    sends = [r for r in rows if r["tool_name"] == "send_email"]
    assert sends, "the injected send_email call has no stored drivers"
    assert INJECTED_TO in json.dumps(sends[0]["arguments"])
    assert {r["driver_kind"] for r in sends} - {None}, sends
    coder = _trajectory_of(db, CODER_SCENARIO, traced)
    edits = [r for r in rows if r["action_kind"] == "code_edit" and r["trajectory_id"] == coder]
    assert len({r["action_id"] for r in edits}) == 3, "expected the coder's three edit blocks as actions"
    for action_id in {r["action_id"] for r in rows}:
        shares = [r["share"] for r in rows if r["action_id"] == action_id]
        assert all(0 <= s <= 1 for s in shares) and sum(shares) <= 1.0001

    # The injected instructions show among the top drivers of the actions they caused.
    top_send = [r for r in sends if r["rank"] <= 3]
    assert any(r["driver_kind"] == "tool_output" and r["driver_tool"] == "read_inbox" for r in top_send), top_send
    injected_edit = _query(db, "SELECT action_id FROM actions WHERE kind = 'code_edit' "
                               "AND edit LIKE '%telemetry.northwind-devops.com%'")
    assert len(injected_edit) == 1
    top_edit = [r for r in rows if r["action_id"] == injected_edit[0]["action_id"] and r["rank"] <= 3]
    assert any(r["driver_kind"] == "file_context" and r["driver_path"] == "app/config.py" for r in top_edit), top_edit

    # vLLM's server spans were stored next to the client's, in the same traces
    joined = _query(db, "SELECT count(*) AS n FROM spans s JOIN spans c "
                        "ON s.parent_span_id = c.span_id AND s.trace_id = c.trace_id "
                        "WHERE s.name = 'llm_request' AND c.name LIKE 'chat %'")
    assert joined[0]["n"] == 9


def _trajectory_of(db: Path, scenario: str, traced: dict[str, Any]) -> str:
    """The stored trajectory of a scenario's run (by the conversation id its agent recorded)."""
    conv = next(r["conversation_id"] for r in traced["records"] if r["scenario"] == scenario)
    rows = _query(db, "SELECT trajectory_id FROM trajectories "
                      f"WHERE json_extract_string(metadata, '$.conversation_id') = '{conv}'")
    assert len(rows) == 1, rows
    return rows[0]["trajectory_id"]


def test_each_coder_request_is_its_own_context(traced: dict[str, Any]) -> None:
    """The coder re-sends the files as they are now with every request: the session's three
    requests are three contexts, the file differs between them, and each edit is explained by
    segments of its own request (so by the file content that request was sent)."""
    db = traced["db"]
    tid = _trajectory_of(db, SESSION_SCENARIO, traced)
    contexts = _query(db, f"SELECT context_id, position, messages FROM contexts WHERE trajectory_id = '{tid}' "
                          "ORDER BY position")
    assert [c["context_id"] for c in contexts] == ["req1", "req2", "req3"]

    def sent_file(ctx: dict[str, Any]) -> str:
        files = [m["content"] for m in json.loads(ctx["messages"]) if "added these files" in m["content"]]
        assert len(files) == 1
        return files[0]

    first, second, third = (sent_file(c) for c in contexts)
    assert "return a - b" in first and "return a - b" not in second and "def mul" not in second
    assert "def mul" in third
    actions = _query(db, f"SELECT action_id, context_id FROM actions WHERE trajectory_id = '{tid}' ORDER BY step")
    assert [a["context_id"] for a in actions] == ["req1", "req2", "req3", "req3"]
    foreign = _query(db, "SELECT d.action_id, d.context_id, s.context_id AS segment_context FROM action_drivers d "
                         "JOIN segments s ON s.run_id = d.run_id AND s.trajectory_id = d.trajectory_id "
                         f"AND s.segment_id = d.segment_id WHERE d.trajectory_id = '{tid}' "
                         "AND s.context_id IS DISTINCT FROM d.context_id")
    assert foreign == [], "a driver from a context its action's request was not sent"
    # app/util.py drove an edit of every request, each time as that request was sent it
    texts = {r["request"]: r["t"] for r in _query(db, f"""
        SELECT f.request, string_agg(s.text, ' ') AS t
        FROM (SELECT run_id, trajectory_id, request, unnest(segment_ids) AS sid FROM file_drivers
              WHERE trajectory_id = '{tid}' AND path = 'app/util.py') f
        JOIN segments s ON s.run_id = f.run_id AND s.trajectory_id = f.trajectory_id AND s.segment_id = f.sid
        GROUP BY f.request""")}
    assert sorted(texts) == [1, 2, 3]
    assert "a - b" in texts[1] and "a - b" not in texts[2] and "def mul" in texts[3]
