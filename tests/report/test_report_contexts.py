"""The action export and the report page's data for an audit with per-call contexts: each action
with its request, that request's messages and tokens."""

from __future__ import annotations

import json

from auditor.report.data import report_data
from auditor.report.export import action_export, audit_action_export
from auditor.report.html import write_report
from auditor.store import Store
from auditor.testing.audits import synthetic_audit, synthetic_run

from helpers.contexts import NEW, OLD, coding_session, request_messages


def _audit():
    return synthetic_audit(coding_session(), synthetic_run("run-c"), arguments=True)


def test_export_names_the_request_and_reads_its_tokens():
    audit = _audit()
    for att, k in zip(audit.actions, (1, 2)):
        data = audit_action_export(audit, att.action.id)
        ctx = data["context"]
        assert (ctx["id"], ctx["request"], ctx["requests"]) == (f"req{k}", k, 2)
        assert [m["content"] for m in ctx["messages"]] == [m.content for m in request_messages(k)]
        tokens = audit.tokens_of(f"req{k}")
        assert data["output"]["text"] == "".join(tokens[att.output_start:att.output_end])
        for seg in data["segments"]:
            assert [t["text"] for t in seg["tokens"]] == tokens[seg["token_start"]:seg["token_end"]]
    assert json.loads(json.dumps(data)) == data


def test_stored_and_in_memory_exports_agree():
    audit = _audit()
    with Store(":memory:") as store:
        store.record_audit(audit)
        for att in audit.actions:
            assert action_export(store, att.action.id) == audit_action_export(audit, att.action.id)


def test_report_has_one_entry_per_request_with_its_conversation(tmp_path):
    audit = _audit()
    data = report_data([audit])
    assert data["title"] == "session"
    first, second = data["runs"]
    assert first["trajectory"]["id"] == "session · request 1 of 2 (req1)"
    assert first["trajectory"]["context"]["request"] == 1 and first["trajectory"]["trajectory_id"] == "session"
    assert OLD in first["trajectory"]["messages"][1]["content"] and NEW in second["trajectory"]["messages"][3]["content"]
    assert [a["id"] for a in first["actions"]] == ["session:a0"] and [a["id"] for a in second["actions"]] == ["session:a1"]
    for entry, cid in ((first, "req1"), (second, "req2")):
        assert entry["tokens"] == audit.tokens_of(cid)
        assert {s["id"] for s in entry["segments"]} == {s.id for s in audit.segments if s.context_id == cid}
        assert all(s["message_index"] < len(entry["trajectory"]["messages"]) for s in entry["segments"])
    page = write_report([audit], tmp_path / "report.html")
    assert "request 2 of 2 (req2)" in page.read_text()
