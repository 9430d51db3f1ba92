"""`audit_each`: one run id, resuming, one failure per trajectory, the auditor built lazily through
the one seam (`auditor.audit.runs.make_auditor`). A stand-in auditor: this is the loop's logic."""

from __future__ import annotations

import pytest

from auditor.audit import AuditorUnavailable, audit_each, run_id_for
from auditor.testing.audits import synthetic_audit, synthetic_run
from auditor.trajectory import Message, Trajectory

SEAM = "auditor.audit.runs.make_auditor"


def _traj(tid: str, **meta) -> Trajectory:
    return Trajectory(id=tid, metadata=meta, messages=[Message(role="user", content=f"hello from {tid}")])


class StandIn:
    made: list[dict] = []

    def __init__(self, **settings):
        self.settings = settings
        self.audited: list[str] = []
        self.runs: list = []
        StandIn.made.append(settings)

    def run_info(self, run_id=None):
        return synthetic_run(run_id or "random")

    def audit(self, traj, *, run=None):
        self.audited.append(traj.id)
        self.runs.append(run)
        if traj.metadata.get("explode"):
            raise RuntimeError("boom")
        return synthetic_audit(traj, synthetic_run("not-the-run-id"))


@pytest.fixture
def stand_in(monkeypatch):
    StandIn.made = []
    monkeypatch.setattr(SEAM, StandIn)
    return StandIn


def test_outcomes_in_order_with_one_run_id_and_errors_as_text(stand_in):
    trajs = [_traj("a"), _traj("b", explode=True), _traj("c")]
    seen = []
    outs = list(audit_each(trajs, settings={"method": "loo", "hops": 0}, progress=lambda *a: seen.append(a)))
    assert [(o.trajectory.id, o.index, o.status) for o in outs] == [("a", 1, "audited"), ("b", 2, "failed"),
                                                                    ("c", 3, "audited")]
    assert outs[1].error == "RuntimeError: boom" and outs[1].audit is None
    run_id = run_id_for(trajs, {"method": "loo", "hops": 0})
    assert {o.run_id for o in outs} == {run_id}
    assert [o.audit.run.run_id for o in outs if o.audit] == [run_id, run_id]
    assert stand_in.made == [{"method": "loo", "hops": 0}]  # built once, from the settings given
    assert seen == [("a", 1, 3), ("b", 2, 3), ("c", 3, 3)]


def test_resuming_skips_what_is_done_and_builds_no_auditor_for_nothing(stand_in):
    trajs = [_traj("a"), _traj("b")]
    outs = list(audit_each(trajs, run_id="run-x", skip={"a", "b"}))
    assert [o.status for o in outs] == ["resumed", "resumed"] and stand_in.made == []
    outs = list(audit_each(trajs, run_id="run-x", skip={"a"}))
    assert [o.status for o in outs] == ["resumed", "audited"] and outs[1].audit.run.run_id == "run-x"


def test_a_given_auditor_is_used_and_gets_the_run(stand_in):
    mine = StandIn(model="given")
    stand_in.made.clear()
    (out,) = audit_each([_traj("a")], auditor=mine)
    assert stand_in.made == [] and mine.audited == ["a"]
    assert mine.runs[0].run_id == out.run_id == run_id_for([_traj("a")], {"model": "given"})


def test_an_auditor_that_cannot_start_is_one_clear_error(monkeypatch):
    def broken(**kw):
        raise ValueError("unknown method 'nope'")

    monkeypatch.setattr(SEAM, broken)
    outs = audit_each([_traj("a")], settings={"method": "nope"})
    with pytest.raises(AuditorUnavailable, match="cannot start the replay: unknown method 'nope'"):
        next(outs)


def test_run_ids_hash_content_and_settings_not_the_device():
    a, b = _traj("a"), _traj("b")
    assert run_id_for([a, b]) == run_id_for([b, a]) == run_id_for([a, b], {"model": "embedded", "hops": 1})
    assert run_id_for([a]) != run_id_for([a.model_copy(update={"metadata": {"x": 1}})])
    assert run_id_for([a], {"device": "cpu"}) == run_id_for([a])
    assert len({run_id_for([a], s) for s in ({}, {"hops": 2}, {"method": "loo"}, {"arguments": False})}) == 4


def test_trace_settings_give_the_run_ids_audit_trace_derived_before():
    """Databases made before `audit_each` resume: `audit trace`'s settings hash as they did."""
    import hashlib
    import json

    from auditor import __version__
    from auditor.trajectory import trajectory_sha256

    trajs = [_traj("a"), _traj("b")]
    old_key = {"trajectories": sorted(trajectory_sha256(t) for t in trajs), "model": "embedded", "method": "flashtrace",
               "hops": 1, "dtype": "float32", "max_tokens": None, "version": __version__}
    old = "run-" + hashlib.sha256(json.dumps(old_key, sort_keys=True).encode()).hexdigest()[:16]
    settings = {"model": None, "method": "flashtrace", "hops": 1, "dtype": "float32", "max_tokens": None, "device": None}
    assert run_id_for(trajs, settings) == old
