"""The recorded coding session (examples/runs/coder_session.jsonl: three requests to vLLM, the file
changing between them) replayed on the embedded SmolLM2: each edit within its own request."""

from __future__ import annotations

import pytest

from auditor.audit import Auditor
from auditor.collectors.loading import load_paths
from auditor.model_registry import EMBEDDED_NAME
from auditor.trajectory import SegmentKind

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session(embedded_model, examples_dir):
    (traj,) = load_paths([examples_dir / "runs" / "coder_session.jsonl"]).trajectories
    auditor = Auditor(embedded_model, model_name=EMBEDDED_NAME)
    return auditor, traj, auditor.audit(traj)


def _util(audit, act):
    segs = {s.id: s for s in audit.segments}
    return [segs[d.segment_id] for d in act.drivers if segs[d.segment_id].provenance.path == "app/util.py"]


def test_each_edit_is_explained_by_the_file_its_request_carried(session):
    _, traj, audit = session
    assert audit.unplaced == [] and audit.dropped == []
    assert [c.context_id for c in audit.contexts] == ["req1", "req2", "req3"]
    fix, mul, test_import, test_mul = audit.actions
    (old,) = _util(audit, fix)
    (new,) = _util(audit, test_mul)
    assert "return a - b" in old.text and "def mul" not in old.text
    assert "def mul" in new.text and "return a - b" not in new.text
    for act in audit.actions:
        assert {audit.segment(d.segment_id).context_id for d in act.drivers} == {act.action.context_id}


def test_the_test_edit_copies_its_number_from_the_test_file_it_was_sent(session):
    """The model wrote `assert mul(2, 3) == 5`: the 5 of `assert add(2, 3) == 5` in the test file
    request 3 carried, which ranks among the top drivers of the replacement text."""
    _, _, audit = session
    test_mul = audit.actions[3]
    assert "mul(2, 3) == 5" in test_mul.action.edit.replace
    replace = test_mul.argument("replace")
    top = [audit.segment(d.segment_id) for d in replace.drivers[:3]]
    assert any(s.kind is SegmentKind.file_context and s.provenance.path == "tests/test_util.py" for s in top), \
        [(d.label, round(d.share, 3)) for d in replace.drivers[:5]]


def test_rebuilt_from_the_last_request_the_first_edit_had_no_file_before_it(session):
    """Before contexts the run was its last request's conversation, where the first reply sits in
    the history before the files: the fix of add() had no app/util.py among its drivers."""
    auditor, traj, audit = session
    flat = auditor.audit(traj.model_copy(update={"contexts": [], "actions": []}))
    first = flat.actions[0]
    assert first.action.edit.search == "    return a - b\n"
    assert _util(flat, first) == [] and len(_util(audit, audit.actions[0])) == 1
