"""The report's data: the shared export embedded verbatim, the flow across hops, verdicts."""

from __future__ import annotations

import json

import pytest

from auditor.report.data import action_view, check_verdicts, flow_summary, normalize_verdict, report_data
from auditor.store.export import audit_action_export


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
    verdicts = check_verdicts(injected_audit)
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
