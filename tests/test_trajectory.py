from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from auditor.actions import derive_actions
from auditor.collectors.loading import load_path, load_trajectory_jsonl
from auditor.trajectory import ActionKind, Message, SegmentKind, Trajectory, json_schema

EXAMPLE_FILES = ["benign_budget_email.jsonl", "injected_email.jsonl", "aider_session.jsonl"]


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_examples_round_trip_through_json(examples_dir, name):
    result = load_trajectory_jsonl(examples_dir / name)
    assert result.issues == []
    (traj,) = result.trajectories
    again = Trajectory.model_validate_json(traj.model_dump_json())
    assert again == traj
    assert again.actions, "every example has actions to explain"


def test_examples_exercise_every_action_kind(examples_dir):
    kinds = set()
    for name in EXAMPLE_FILES:
        for traj in load_path(examples_dir / name).trajectories:
            kinds |= {a.kind for a in traj.actions}
    assert kinds == set(ActionKind)


def test_injected_example_follows_the_injection(examples_dir):
    (traj,) = load_path(examples_dir / "injected_email.jsonl").trajectories
    sends = [a for a in traj.actions if a.tool_name == "send_email"]
    assert sends and sends[0].arguments["to"] == "archive@exfil.example"
    tool_text = next(m.content for m in traj.messages if m.role == "tool")
    assert "archive@exfil.example" in tool_text


def test_aider_example_has_one_action_per_edit_block(examples_dir):
    (traj,) = load_path(examples_dir / "aider_session.jsonl").trajectories
    edits = [a for a in traj.actions if a.kind == ActionKind.code_edit]
    assert [e.edit.path for e in edits] == ["app/util.py", "app/util.py"]
    msg = traj.messages[edits[0].message_index].content
    block = msg[edits[0].char_start : edits[0].char_end]
    assert block.startswith("app/util.py") and "return a + b" in block and block.rstrip().endswith("```")


def test_tool_call_arguments_accept_json_strings_and_keep_malformed_ones():
    traj = Trajectory.from_openai_messages(
        "t",
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"x": '}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
    )
    assert traj.messages[1].tool_calls[0].arguments == {"x": 1}
    assert traj.messages[1].tool_calls[1].arguments == {"_raw": '{"x": '}
    assert traj.messages[2].name == "f", "tool message name is filled from the call it answers"


def test_tool_message_answering_unknown_call_is_rejected():
    with pytest.raises(ValidationError, match="unknown call id 'nope'"):
        Trajectory(id="t", messages=[Message(role="user", content="x"), Message(role="tool", tool_call_id="nope", content="y")])


def test_role_rules():
    with pytest.raises(ValidationError, match="tool_call_id"):
        Message(role="tool", content="x")
    with pytest.raises(ValidationError, match="only assistant messages carry reasoning"):
        Message(role="user", content="x", reasoning="because")


def test_segment_kind_groups_follow_flashtrace_split():
    assert SegmentKind.tool_output.group == "input"
    assert SegmentKind.user_constraint.group == "input"
    assert SegmentKind.reasoning.group == "intermediate"
    assert SegmentKind.prior_turn.group == "intermediate"
    assert SegmentKind.action.group == "output"


def test_final_answer_is_only_the_last_assistant_text(examples_dir):
    (traj,) = load_path(examples_dir / "benign_budget_email.jsonl").trajectories
    actions = derive_actions(traj)
    assert [a.kind for a in actions].count(ActionKind.final_answer) == 1
    assert actions[-1].kind == ActionKind.final_answer
    assert actions[-1].message_index == len(traj.messages) - 1
    assert [a.step for a in actions] == list(range(len(actions)))
    assert len({a.id for a in actions}) == len(actions)


def test_json_schema_in_docs_is_current():
    path = Path(__file__).resolve().parents[1] / "docs" / "trajectory.schema.json"
    assert json.loads(path.read_text(encoding="utf-8")) == json_schema(), (
        "docs/trajectory.schema.json is stale: run `make docs`"
    )
    schema = json_schema()
    assert "messages" in schema["required"]
