"""The report's data: the shared export embedded verbatim, the flow across hops, verdicts."""

from __future__ import annotations

import json

import pytest

from auditor.report.data import action_view, check_verdicts, flow_summary, normalize_verdict, report_data
from auditor.report.export import audit_action_export


def _json(obj):
    return json.loads(json.dumps(obj, default=str))


def test_each_action_embeds_the_shared_export_verbatim(injected_audit):
    data = report_data([injected_audit])
    (run,) = data["runs"]
    assert [a["id"] for a in run["actions"]] == [a.action.id for a in injected_audit.actions]
    for entry in run["actions"]:
        assert entry["export"] == _json(audit_action_export(injected_audit, entry["id"]))


def test_exports_passed_in_are_used_unchanged(injected_audit):
    aid = injected_audit.actions[1].action.id
    marker = {"version": 1, "action": {"id": aid}, "drivers": [], "marker": True}
    (run,) = report_data([injected_audit], exports={aid: marker})["runs"]
    assert run["actions"][1]["export"] is marker


def test_run_data_carries_conversation_segments_and_tokens_once(injected_audit):
    (run,) = report_data([injected_audit])["runs"]
    assert len(run["trajectory"]["messages"]) == len(injected_audit.trajectory.messages)
    assert run["tokens"] == injected_audit.tokens
    call = run["trajectory"]["messages"][4]["tool_calls"][0]
    assert call["name"] == "send_email" and call["arguments"]["to"] == "archive@exfil.example"
    seg = run["segments"][0]
    assert {"id", "kind", "group", "message_index", "field", "char_start", "char_end", "token_start", "token_end"} <= set(seg)


def test_view_scores_cover_the_context_and_top_tokens_are_the_hot_ones(injected_audit):
    att = injected_audit.actions[1]
    view = action_view(injected_audit, att)
    assert len(view["token_scores"]) == att.context_end
    assert view["top_tokens"][0]["score"] == max(view["token_scores"])
    assert any("INSTRUCTION" in t["text"] for t in view["top_tokens"])
    assert sum(view["by_kind"].values()) == pytest.approx(1.0, abs=1e-4)
    assert view["by_kind"]["tool_output"] > 0.5


def test_flow_summary_conserves_mass():
    hops = [{"hop": 0, "flow_ratio": 0.3, "by_kind": {"tool_output": 0.4, "user_request": 0.1, "prior_turn": 0.3,
                                                        "template": 0.2}},
            {"hop": 1, "flow_ratio": 0.5, "by_kind": {"system": 0.25, "prior_turn": 0.5, "action": 0.25}}]
    f = flow_summary(hops)
    assert f["direct"] == pytest.approx(0.5)
    assert f["via_reasoning"] == pytest.approx(0.3 * 0.25)
    assert f["unresolved"] == pytest.approx(0.15)
    assert f["to_input"] + f["to_other"] + f["unresolved"] == pytest.approx(1.0)
    # without a per-kind split everything that is not carried on counts as input
    g = flow_summary([{"hop": 0, "flow_ratio": 0.2, "by_kind": {}}])
    assert g["direct"] == pytest.approx(0.8) and g["unresolved"] == pytest.approx(0.2)
    assert flow_summary([])["direct"] is None


@pytest.mark.parametrize("raw, status", [
    ({"status": "passed", "support": 0.9}, "supported"),
    ({"status": "failed", "support": 0.1}, "unsupported"),
    ({"status": "ignored"}, "ignored"),
    ({"passed": False}, "unsupported"),
    ({}, "unknown"),
])
def test_normalize_verdict(raw, status):
    v = normalize_verdict(raw)
    assert v["status"] == status
    if "support" in raw:
        assert v["support"] == raw["support"]
    assert normalize_verdict(None) is None


def test_check_verdicts_flag_the_injected_send_email(injected_audit):
    from auditor.check import default_policy

    verdicts = check_verdicts(injected_audit, default_policy().with_overrides(decide="support"))
    send = injected_audit.actions[1].action.id
    assert verdicts[send]["status"] == "unsupported"
    assert verdicts[send]["rules"] and verdicts[send]["messages"]
    assert verdicts[injected_audit.actions[0].action.id]["status"] == "supported"


def test_report_degrades_without_the_check(injected_audit, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "auditor.check", None)  # import fails as if the package were absent
    assert check_verdicts(injected_audit) == {}
    (run,) = report_data([injected_audit], verdicts={})["runs"]
    assert all(a["verdict"] is None for a in run["actions"])


@pytest.fixture(scope="module")
def tiny_audit():
    """The injected example (4 tools offered) audited on a tiny random model: tool definitions are segments."""
    from auditor.audit import Auditor
    from auditor.testing import tiny_model, tiny_tokenizer
    from helpers.report import example

    return Auditor((tiny_model("llama"), tiny_tokenizer()), hops=1).audit(example("injected_email"))


def test_tool_definitions_are_listed_with_their_segments(tiny_audit):
    (run,) = report_data([tiny_audit])["runs"]
    tools = tiny_audit.trajectory.tools
    defs = run["trajectory"]["tool_definitions"]
    assert [d["name"] for d in defs] == run["trajectory"]["tools"] == [t.name for t in tools]
    segs = [s for s in run["segments"] if s["kind"] == "tool_definition"]
    assert [(s["tool_name"], s["field"], s["message_index"], s["group"]) for s in segs] == \
        [(t.name, "tool_definition", None, "input") for t in tools]
    by_id = {s.id: s for s in tiny_audit.segments}
    assert [by_id[s["id"]].text for s in segs] == [d["text"] for d in defs]
    send = next(a for a in run["actions"] if a["export"]["action"]["tool_name"] == "send_email")
    assert send["view"]["by_kind"]["tool_definition"] > 0
    assert sum(send["view"]["by_group"].values()) == pytest.approx(1.0, abs=1e-4)
    rows = [d for d in send["export"]["drivers"] if d["kind"] == "tool_definition"]
    assert len(rows) == len(tools) and all(d["message_index"] is None and d["tool_name"] for d in rows)
