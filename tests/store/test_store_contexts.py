"""Per-call contexts in the store: each action's request, each segment's context, each context's
messages and tokens, and drivers grouped by file across requests (`file_drivers`)."""

from __future__ import annotations

import json

import pytest

from auditor.store import Store
from auditor.testing.audits import synthetic_audit, synthetic_run

from helpers.contexts import NEW, OLD, PATH, coding_session


@pytest.fixture
def recorded(store):
    audit = synthetic_audit(coding_session(), synthetic_run("run-c"), arguments=True)
    store.record_audit(audit)
    return store, audit


def test_contexts_actions_and_segments_are_stored_with_their_call(recorded):
    store, audit = recorded
    _, rows = store.query("SELECT context_id, position, n_messages, messages, tools FROM contexts ORDER BY position")
    assert [(r[0], r[1], r[2]) for r in rows] == [("req1", 1, 5), ("req2", 2, 7)]
    assert OLD in json.loads(rows[0][3])[1]["content"] and NEW in json.loads(rows[1][3])[3]["content"]
    assert rows[0][4] is None  # the trajectory's tools
    _, rows = store.query("SELECT action_id, context_id, message_index FROM actions ORDER BY step")
    assert rows == [("session:a0", "req1", 4), ("session:a1", "req2", 6)]
    _, rows = store.query("SELECT DISTINCT context_id FROM segments ORDER BY 1")
    assert rows == [("req1",), ("req2",)]
    _, rows = store.query("SELECT context_id, n_tokens FROM audit_contexts ORDER BY context_id")
    assert rows == [(c.context_id, len(c.tokens)) for c in audit.contexts]


def test_a_stored_audit_with_contexts_rebuilds_exactly(recorded):
    store, audit = recorded
    loaded = store.load_audit("run-c", "session")
    assert loaded == audit
    assert loaded.tokens_of("req2") == audit.contexts[1].tokens and loaded.tokens == []
    view = store.action_view("session:a1")
    assert [a.action.context_id for a in view.actions] == ["req2"] and len(view.contexts) == 2


def test_action_drivers_name_the_request_and_file_drivers_group_by_file(recorded):
    store, _ = recorded
    _, rows = store.query("SELECT DISTINCT action_id, context_id, request, requests FROM action_drivers ORDER BY 1")
    assert rows == [("session:a0", "req1", 1, 2), ("session:a1", "req2", 2, 2)]


def test_file_drivers_sum_a_files_segments_per_action_and_group_across_requests(store):
    """On a real replay (tiny random model): the file sent in request 1 and in request 2 is two
    segments, one per request, and one path."""
    from auditor.audit import Auditor
    from auditor.testing import tiny_model, tiny_tokenizer

    audit = Auditor((tiny_model("llama"), tiny_tokenizer()), model_name="tiny").audit(coding_session())
    store.record_audit(audit)
    _, rows = store.query("SELECT action_id, context_id, request, path, share, segment_ids FROM file_drivers "
                          "ORDER BY action_id")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("session:a0", "req1", 1, PATH), ("session:a1", "req2", 2, PATH)]
    segs = {s.id: s for s in audit.segments}
    for (aid, cid, _, _, share, ids), act in zip(rows, audit.actions):
        assert all(segs[i].context_id == cid and segs[i].provenance.path == PATH for i in ids)
        assert share == pytest.approx(sum(d.share for d in act.drivers if segs[d.segment_id].provenance.path == PATH),
                                      rel=1e-9, abs=1e-12)
    (old,), (new,) = rows[0][5], rows[1][5]
    assert OLD.strip() in segs[old].text and NEW.strip() in segs[new].text
    _, rows = store.query("SELECT path, count(*), count(DISTINCT request) FROM file_drivers GROUP BY path")
    assert rows == [(PATH, 2, 2)]


def test_an_append_only_run_has_no_contexts_and_no_request(store, example_audits):
    store.record_audits(example_audits)
    _, rows = store.query("SELECT count(*) FROM contexts")
    assert rows == [(0,)]
    _, rows = store.query("SELECT DISTINCT context_id, request, requests FROM action_drivers")
    assert rows == [(None, None, 0)]


def test_a_changed_trajectory_replaces_its_contexts(store):
    traj = coding_session()
    store.add_trajectories([traj])
    fewer = traj.model_copy(update={"contexts": traj.contexts[1:], "actions": []})
    store.add_trajectories([fewer])
    _, rows = store.query("SELECT context_id FROM contexts")
    assert rows == [("req2",)]
    _, rows = store.query("SELECT action_id, context_id FROM actions")
    assert rows == [("session:a0", "req2")]
