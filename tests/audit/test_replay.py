"""The Python API on a tiny random model: one forward per trajectory, the X/R/O split per action,
token scores rolled up into ranked drivers and per-hop flows."""

from __future__ import annotations

import math
from importlib.metadata import version

import pytest

from auditor.audit import Auditor, audit_trajectory, ranked_drivers
from auditor.audit.schema import TrajectoryAudit
from auditor.trajectory import SegmentKind

from helpers.replay import agent_trajectory, email_trajectory


@pytest.fixture(scope="module")
def tiny():
    from auditor.testing import tiny_model, tiny_tokenizer

    return tiny_model("llama"), tiny_tokenizer()


@pytest.fixture(scope="module")
def audited(tiny):
    calls = []
    audit = Auditor(tiny, hops=1).audit(agent_trajectory(tools=False), progress=lambda d, t: calls.append((d, t)))
    return audit, calls


def test_one_action_attribution_per_action(audited):
    audit, calls = audited
    traj = audit.trajectory
    assert [a.action.id for a in audit.actions] == [a.id for a in traj.actions]
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    assert audit.unplaced == [] and audit.dropped == []
    assert len(audit.tokens) > max(s.token_end for s in audit.segments)
    assert audit.forward_seconds > 0 and audit.seconds >= audit.forward_seconds


def test_drivers_are_ranked_input_segments_before_the_action(audited):
    audit, _ = audited
    for act in audit.actions:
        out = next(s for s in audit.segments if s.action_id == act.action.id)
        assert (act.output_start, act.output_end) == (out.token_start, out.token_end)
        assert act.context_end == act.output_end == len(act.token_scores)
        expected = {s.id for s in audit.segments if s.kind.group == "input" and s.token_end <= out.token_start}
        assert {d.segment_id for d in act.drivers} == expected
        assert [d.rank for d in act.drivers] == list(range(1, len(act.drivers) + 1))
        assert all(a.score >= b.score for a, b in zip(act.drivers, act.drivers[1:]))
        assert math.isclose(sum(d.share for d in act.drivers), 1.0, rel_tol=1e-5)
        for d in act.drivers:
            seg = audit.segment(d.segment_id)
            assert d.kind is seg.kind and d.label == seg.label
            assert math.isclose(d.score, sum(act.token_scores[seg.token_start:seg.token_end]), rel_tol=1e-3, abs_tol=1e-6)
        # scores live on the inputs only: zero on template tokens, reasoning and the output
        input_pos = {p for s in audit.segments if s.id in expected for p in range(s.token_start, s.token_end)}
        assert all(v == 0 for p, v in enumerate(act.token_scores) if p not in input_pos)


def test_hop_flows(audited):
    audit, _ = audited
    for act in audit.actions:
        assert [h.hop for h in act.hops] == [0, 1]
        h0 = act.hops[0]
        assert math.isclose(sum(h0.by_kind.values()), 1.0, rel_tol=1e-5)
        assert 0.0 <= h0.flow_ratio <= 1.0
        gen = sum(v for k, v in h0.by_kind.items() if k in ("reasoning", "prior_turn"))
        assert math.isclose(gen, h0.flow_ratio, abs_tol=1e-4)
        assert set(act.layer_shares) == {"attention", "residual", "mlp"} and len(act.layer_shares["mlp"]) == 2
    first = audit.actions[0]  # after the first reasoning only
    assert "prior_turn" not in first.hops[0].by_kind
    later = audit.actions[2]  # earlier actions count as prior turns
    assert later.hops[0].by_kind.get("prior_turn", 0) > 0


def test_targets_split_x_r_o(tiny, monkeypatch):
    import auditor.attribution as attribution

    seen = {}
    real = attribution.attribute_many

    def spy(model, ids, targets, **kw):
        seen["targets"], seen["n"] = targets, len(ids)
        return real(model, ids, targets, **kw)

    monkeypatch.setattr(attribution, "attribute_many", spy)
    auditor = Auditor(tiny, hops=1)
    rendered = auditor.render(agent_trajectory(tools=False))
    Auditor(tiny, arguments=False).audit(agent_trajectory(tools=False))  # argument targets: test_replay_arguments
    kind_at = {p: s for s in rendered.segments for p in range(s.token_start, s.token_end)}
    for action, target in zip(rendered.trajectory.actions, seen["targets"]):
        out = rendered.action_segment(action.id)
        assert list(target.output) == list(range(out.token_start, out.token_end))
        assert all(p < out.token_start for p in list(target.inputs) + list(target.reasoning))
        assert {kind_at[p].kind.group for p in target.inputs} <= {"input"}
        assert {kind_at[p].kind for p in target.reasoning} <= {SegmentKind.reasoning, SegmentKind.prior_turn,
                                                              SegmentKind.action}
        assert all(kind_at[p].action_id != action.id for p in target.reasoning)


def test_one_forward_per_trajectory(tiny, monkeypatch):
    import auditor.attribution.api as api

    count = []
    real = api.capture
    monkeypatch.setattr(api, "capture", lambda *a, **k: count.append(1) or real(*a, **k))
    audit = Auditor(tiny).audit(agent_trajectory(tools=False))
    assert len(count) == 1 and len(audit.actions) == 4


def test_run_info_and_round_trip(audited):
    audit, _ = audited
    run = audit.run
    assert run.method == "flashtrace" and run.hops == 1 and run.auditor_version == version("auditor")
    assert len(run.run_id) == 32 and run.model == "llama"
    again = TrajectoryAudit.model_validate_json(audit.model_dump_json())
    assert again == audit


def test_audit_many_shares_a_run_and_shows_progress(tiny, capsys):
    trajs = [email_trajectory("e1", "From: bob\nHi there.", "bob@acme.example", "hello", "Email Bob hello."),
             email_trajectory("e2", "From: carol\nSlides.", "carol@acme.example", "thanks", "Thank Carol.")]
    audits = Auditor(tiny, hops=0).audit_many(trajs, progress=True)
    assert [a.trajectory.id for a in audits] == ["e1", "e2"]
    assert audits[0].run.run_id == audits[1].run.run_id
    assert all(len(a.actions) == 2 and [h.hop for h in a.actions[0].hops] == [0] for a in audits)
    done = []
    Auditor(tiny, hops=0).audit_many(trajs, progress=lambda d, t: done.append((d, t)))
    assert done == [(1, 2), (2, 2)]


def test_context_limit_drops_and_says_what(tiny):
    traj = agent_trajectory(tools=False)
    auditor = Auditor(tiny, max_tokens=len(Auditor(tiny).render(traj)) - 120)
    audit = auditor.audit(traj)
    assert audit.dropped and "dropped to fit max_tokens" in audit.dropped[0]
    attributed = {a.action.id for a in audit.actions}
    gone = [a.id for a in traj.actions if a.id not in attributed]
    assert gone and all(any(g in d for d in audit.dropped) for g in gone)
    assert audit.run.settings["max_tokens"] == auditor.max_tokens


def test_unknown_method_lists_valid_ones(tiny):
    with pytest.raises(ValueError, match="valid methods: flashtrace"):
        Auditor(tiny, method="nope")


def test_other_methods_and_convenience(tiny):
    audit = audit_trajectory(agent_trajectory(tools=False), model=tiny, method="attention")
    assert audit.run.method == "attention" and len(audit.actions) == 4
    assert all(math.isclose(sum(d.share for d in a.drivers), 1.0, rel_tol=1e-5) for a in audit.actions)


def test_ranked_drivers_carry_provenance(audited):
    audit, _ = audited
    table = ranked_drivers(audit, top=2)
    assert list(table) == [a.action.id for a in audit.actions]
    row = table[audit.actions[2].action.id][0]
    assert set(row) == {"rank", "share", "score", "kind", "label", "segment_id", "provenance", "text"}
    p = row["provenance"]
    msg = audit.trajectory.messages[p["message_index"]]
    assert row["rank"] == 1 and msg.content[p["char_start"]:p["char_end"]] == row["text"]


def test_chat_template_override(tiny, tmp_path):
    from helpers.replay import TEMPLATES

    model, tok = tiny
    path = tmp_path / "qwen3.jinja"
    path.write_text(TEMPLATES["qwen3"])
    auditor = Auditor(tiny, chat_template=path, hops=0)
    assert tok.chat_template != TEMPLATES["qwen3"]  # the caller's tokenizer is untouched
    audit = auditor.audit(agent_trajectory(tools=False))
    assert audit.notes == [] and audit.unplaced == []  # Qwen3 writes reasoning itself
    assert sum(s.kind is SegmentKind.reasoning for s in audit.segments) == 3
    assert len(audit.run.settings["chat_template_sha1"]) == 40


# -- tool definitions ---------------------------------------------------------------------------------


def _without_tool_definitions(monkeypatch):
    """Audit as before tool definitions were segments: their tokens are template tokens again."""
    import auditor.audit.replay as audit_mod

    real = audit_mod.segment_trajectory
    monkeypatch.setattr(audit_mod, "segment_trajectory",
                        lambda traj: [s for s in real(traj) if s.kind is not SegmentKind.tool_definition])


def test_tool_definitions_are_placed_input_drivers(tiny):
    traj = agent_trajectory()
    audit = Auditor(tiny, hops=1).audit(traj)
    defs = [s for s in audit.segments if s.kind is SegmentKind.tool_definition]
    assert [s.provenance.tool_name for s in defs] == ["read_inbox", "send_email"] and audit.unplaced == []
    first_action = min(s.token_start for s in audit.segments if s.kind is SegmentKind.action)
    assert all(s.token_end <= first_action for s in defs)
    for act in audit.actions:
        rows = [d for d in act.drivers if d.kind is SegmentKind.tool_definition]
        assert [d.segment_id for d in rows] == [d.segment_id for d in act.drivers if d.segment_id in {s.id for s in defs}]
        assert {d.segment_id for d in rows} == {s.id for s in defs}
        assert sum(d.share for d in rows) > 0
        for d in rows:
            seg = audit.segment(d.segment_id)
            assert math.isclose(d.score, sum(act.token_scores[seg.token_start:seg.token_end]), rel_tol=1e-3, abs_tol=1e-6)
        for g in act.arguments:
            assert {d.segment_id for d in g.drivers if d.kind is SegmentKind.tool_definition} == {s.id for s in defs}
        assert act.hops[0].by_kind.get("tool_definition", 0) > 0
    row = ranked_drivers(audit)[audit.actions[0].action.id]
    tool_row = next(r for r in row if r["kind"] == "tool_definition")
    assert tool_row["provenance"]["message_index"] is None and tool_row["provenance"]["field"] == "tool_definition"
    assert tool_row["text"] == next(s.text for s in defs if s.id == tool_row["segment_id"])


@pytest.mark.parametrize("method, hops", [("flashtrace", 0), ("flashtrace", 1), ("flashtrace", 2),
                                          ("attention", 1), ("loo", 1)])
def test_tool_definitions_change_no_support(tiny, monkeypatch, method, hops):
    """Making tool definitions segments moves no other segment's score (FlashTrace's hops are
    weighted by the output and by R, never by X) and so no support A / (A + D): the tool
    definitions take the mass their tokens had as template tokens, every other share shrinks by
    one factor (attention renormalises over X; loo adds ablations)."""
    from auditor.check import default_policy, score_action

    traj = agent_trajectory()
    after = Auditor(tiny, method=method, hops=hops).audit(traj)
    with monkeypatch.context() as m:
        _without_tool_definitions(m)
        before = Auditor(tiny, method=method, hops=hops).audit(traj)
    assert not [s for s in before.segments if s.kind is SegmentKind.tool_definition]
    assert before.tokens == after.tokens
    policies = [default_policy().with_overrides(judge=j, weighting=w)
                for j in ("action", "arguments") for w in ("mass", "per_token")]
    for b, a in zip(before.actions, after.actions, strict=True):
        assert a.action.id == b.action.id
        for policy in policies:
            sb, sa = score_action(b, policy, before), score_action(a, policy, after)
            assert sa.support == pytest.approx(sb.support, rel=1e-4, abs=1e-6), (a.action.id, policy.judge)
            assert sa.argument == sb.argument
        for gb, ga in zip([b, *b.arguments], [a, *a.arguments], strict=True):
            old = {d.segment_id: d for d in gb.drivers}
            new = {d.segment_id: d for d in ga.drivers if d.kind is not SegmentKind.tool_definition}
            assert set(new) == set(old)
            for sid, d in new.items():
                if method != "attention":  # attention renormalises raw scores over X; the others keep them
                    assert d.score == pytest.approx(old[sid].score, rel=1e-4, abs=1e-7)
            if method == "loo" and sum(d.score for d in ga.drivers) <= 0:
                # loo scores can be negative: when the tool definitions pull the total to zero or
                # below, every share is 0 (no evidence), as for any segment that does so
                assert all(d.share == 0 for d in ga.drivers)
                continue
            factor = sum(d.share for d in new.values())
            assert factor > 0 and (factor < 1 or method == "loo")
            for sid, d in new.items():
                assert d.share == pytest.approx(old[sid].share * factor, rel=1e-4, abs=1e-7)
        if method == "flashtrace":
            for hb, ha in zip(b.hops, a.hops, strict=True):
                assert ha.flow_ratio == pytest.approx(hb.flow_ratio, abs=1e-6)
                moved = ha.by_kind.get("template", 0) + ha.by_kind.get("tool_definition", 0)
                assert moved == pytest.approx(hb.by_kind.get("template", 0), abs=1e-5)
