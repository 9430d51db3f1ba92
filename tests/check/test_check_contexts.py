"""The check and the provenance index on an audit with per-call contexts: each action is judged
and quoted from its own request's segments and tokens."""

from __future__ import annotations

from auditor.check import check_audit, default_policy
from auditor.check.findings import quote_segment
from auditor.provenance import ProvenanceIndex
from auditor.testing.audits import synthetic_audit

from helpers.contexts import NEW, OLD, coding_session


def test_each_action_is_judged_and_quoted_within_its_request():
    audit = synthetic_audit(coding_session(), arguments=True)
    result = check_audit(audit, default_policy())
    assert {v.action_id for v in result.verdicts} == {"session:a0", "session:a1"}
    for att in audit.actions:
        top = att.drivers[0]
        seg = audit.segment(top.segment_id)
        assert seg.context_id == att.action.context_id
        quote = quote_segment(audit, att, top.segment_id)
        assert quote and quote.strip("…") in " ".join(seg.text.split())
    # the hottest words of each request's file message: the file as that request carried it
    files = {att.action.context_id: next(s for s in audit.segments if s.context_id == att.action.context_id
                                         and "added these files" in s.text) for att in audit.actions}
    assert OLD.strip() in files["req1"].text and NEW.strip() in files["req2"].text


def test_provenance_counts_only_the_actions_own_context():
    audit = synthetic_audit(coding_session())
    index = ProvenanceIndex(audit.segments)
    for att in audit.actions:
        seen = {audit.segments[i].context_id for i in index.in_scope(att.action)}
        assert seen == {att.action.context_id}
    first = audit.actions[0].action
    found = index.locate("return a + b", before=first)
    assert found == []  # request 1 was never sent the fixed line
    assert index.locate("return a - b", before=first)
