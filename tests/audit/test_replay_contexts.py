"""Replay by context on a tiny random model: a file changes between two requests of a coding
session, and each edit is explained within the messages its own request was sent.

Who drives an edit on a random model is arbitrary; what is tested is where the drivers come from
(the request's own context, the file content as that request carried it) and that each context's
numbers are exactly those of auditing that call on its own.
"""

from __future__ import annotations

import math

import pytest

from auditor.actions import with_actions
from auditor.audit import Auditor
from auditor.audit.schema import TrajectoryAudit
from auditor.trajectory import Context, Message, SegmentKind, Trajectory

from helpers.contexts import NEW, OLD, PATH, coding_session, flattened_session, request_messages


@pytest.fixture(scope="module")
def tiny():
    from auditor.testing import tiny_model, tiny_tokenizer

    return tiny_model("llama"), tiny_tokenizer()


@pytest.fixture(scope="module")
def auditor(tiny):
    return Auditor(tiny, hops=1, model_name="tiny-llama")


@pytest.fixture(scope="module")
def audited(auditor):
    calls: list[tuple[int, int]] = []
    audit = auditor.audit(coding_session(), progress=lambda d, t: calls.append((d, t)))
    return audit, calls


def _file_drivers(audit: TrajectoryAudit, act) -> list:
    """The action's drivers that are the file's content (not Aider's note around it)."""
    segs = {s.id: s for s in audit.segments}
    return [segs[d.segment_id] for d in act.drivers if segs[d.segment_id].provenance.path == PATH]


def test_each_action_names_its_request_and_is_attributed_in_it(audited):
    audit, calls = audited
    a0, a1 = audit.actions
    assert (a0.action.context_id, a1.action.context_id) == ("req1", "req2")
    assert [c.context_id for c in audit.contexts] == ["req1", "req2"]
    assert audit.tokens == []  # no action is explained in the trajectory's own messages
    for act in (a0, a1):
        ctx = act.action.context_id
        own = {s.id for s in audit.segments if s.context_id == ctx}
        assert {d.segment_id for d in act.drivers} <= own and act.drivers
        assert all(d.segment_id.startswith(f"session:{ctx}:s") for d in act.drivers)
        tokens = audit.tokens_of(ctx)
        assert act.output_end <= len(tokens) and len(act.token_scores) == act.context_end
        assert math.isclose(sum(d.share for d in act.drivers), 1.0, rel_tol=1e-5)
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)


def test_old_edit_is_driven_by_old_content_new_edit_by_new(audited):
    audit, _ = audited
    a0, a1 = audit.actions
    (old,) = _file_drivers(audit, a0)
    (new,) = _file_drivers(audit, a1)
    assert old.kind is new.kind is SegmentKind.file_context
    assert OLD.strip() in old.text and "a + b" not in old.text
    assert NEW.strip() in new.text and "a - b" not in new.text
    assert old.id != new.id and old.provenance.path == new.provenance.path == PATH  # two drivers, one file


def test_no_driver_holds_text_its_request_was_not_sent(audited):
    audit, _ = audited
    traj = audit.trajectory
    segs = {s.id: s for s in audit.segments}
    for act in audit.actions:
        sent = traj.context(act.action.context_id).prompt
        for d in act.drivers:
            seg = segs[d.segment_id]
            msg = sent[seg.provenance.message_index]
            assert msg.content[seg.provenance.char_start:seg.provenance.char_end] == seg.text
    # request 1 never saw the fixed file, so nothing of it drives the first edit
    assert not any("a + b" in segs[d.segment_id].text for d in audit.actions[0].drivers)


def _numbers(att):
    return ([(d.segment_id, d.score, d.share) for d in att.drivers], att.token_scores,
            [(g.name, [(d.segment_id, d.score, d.share) for d in g.drivers]) for g in att.arguments])


def test_each_context_gives_exactly_the_audit_of_that_call_alone(tiny):
    """Without prefix reuse each context is one whole forward: the very numbers of auditing that
    call on its own."""
    exact = Auditor(tiny, hops=1, model_name="tiny-llama", prefix_cache_bytes=0)
    audit = exact.audit(coding_session())
    assert [c.reused_tokens for c in audit.contexts] == [0, 0]
    traj = audit.trajectory
    for act in audit.actions:
        alone = exact.audit(traj.for_context(act.action.context_id))
        (same,) = [a for a in alone.actions if a.action.id == act.action.id]
        assert alone.tokens == audit.tokens_of(act.action.context_id)
        assert _numbers(same) == _numbers(act)


def _close(a, b) -> bool:
    """Equal up to float32 sums taken in another order (and the 5 digits token scores keep)."""
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-7)
    return a == b


def test_shared_prefixes_are_run_once_and_change_nothing_but_float_error(tiny, audited):
    """The two requests share their head (the system prompt): request 2 reuses its states, and its
    numbers are those of a whole forward to float error."""
    audit, _ = audited
    assert audit.contexts[0].reused_tokens == 0 and audit.contexts[1].reused_tokens >= 16
    sent = audit.tokens_of("req2")
    assert sent[:audit.contexts[1].reused_tokens] == audit.tokens_of("req1")[:audit.contexts[1].reused_tokens]
    exact = Auditor(tiny, hops=1, model_name="tiny-llama", prefix_cache_bytes=0).audit(coding_session())
    for a, b in zip(audit.actions, exact.actions):
        assert _close(_numbers(a), _numbers(b))


def test_rebuilt_from_the_last_request_the_first_edit_misses_the_file_it_edited(auditor, audited):
    """What a trajectory rebuilt from the last chat span said: request 2 re-sends the first reply
    in its history, before the files, so the first edit had no file among its drivers (and a
    collector ordering it after the files would have given it the new content)."""
    audit, _ = audited
    flat = auditor.audit(flattened_session())
    first = flat.actions[0]
    assert first.action.edit and "a - b" in first.action.edit.search
    assert _file_drivers(flat, first) == []
    assert len(_file_drivers(audit, audit.actions[0])) == 1


def test_audit_round_trips_through_json(audited):
    audit, _ = audited
    again = TrajectoryAudit.model_validate_json(audit.model_dump_json())
    assert again == audit
    assert again.trajectory.contexts[0].reply.content.startswith("Fix the sign.")


def test_actions_without_a_context_use_the_trajectorys_messages(auditor):
    """A trajectory may mix: calls recorded with their context, and actions in its own messages."""
    traj = with_actions(coding_session("mixed"))
    own_actions = with_actions(Trajectory(id="mixed", messages=request_messages(2),
                                          metadata={"edit_format": "diff"})).actions
    last = own_actions[-1].model_copy(update={"id": "mixed:own", "step": 2})
    mixed = traj.model_copy(update={"actions": [*traj.actions[:1], last]})
    audit = auditor.audit(Trajectory.model_validate_json(mixed.model_dump_json()))
    assert [c.context_id for c in audit.contexts] == ["req1"]  # req2 holds no action: not replayed
    assert audit.tokens and {s.context_id for s in audit.segments} == {"req1", None}
    own_att = next(a for a in audit.actions if a.action.id == "mixed:own")
    assert own_att.action.context_id is None
    assert all(d.segment_id.startswith("mixed:s") for d in own_att.drivers)


def test_unused_contexts_and_replies_without_actions_are_not_replayed(auditor):
    talk = Context(id="q", messages=[Message(role="user", content="what is 2 + 2"),
                                     Message(role="assistant", content="4")])
    traj = coding_session("extra")
    traj = traj.model_copy(update={"contexts": [talk, *traj.contexts]})
    traj = Trajectory.model_validate_json(traj.model_dump_json())
    audit = auditor.audit(traj)
    assert [c.context_id for c in audit.contexts] == ["req1", "req2"]
    assert [a.action.context_id for a in audit.actions] == ["req1", "req2"]
    assert audit.trajectory.context_number("req2") == 3
