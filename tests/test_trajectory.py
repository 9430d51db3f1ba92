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


# -- contexts (schema version 2) ---------------------------------------------------------------------


def test_a_version_1_line_reads_as_before_with_the_version_migrated(examples_dir):
    from auditor.trajectory import SCHEMA_VERSION

    line = (examples_dir / "aider_session.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["schema_version"] == 1
    traj = Trajectory.model_validate_json(line)
    assert traj.schema_version == SCHEMA_VERSION == 2 and traj.contexts == []
    assert all(a.context_id is None for a in traj.actions)
    old = json.loads(line)
    new = json.loads(traj.to_jsonl_line())
    assert new.pop("schema_version") == 2 and new.pop("contexts") == []
    for a in new["actions"]:
        assert a.pop("context_id") is None
    old.pop("schema_version")
    assert new == old  # nothing else moved


@pytest.mark.parametrize("version", [0, 3, 2**63, True, "one"])
def test_unknown_schema_versions_are_refused(version):
    with pytest.raises(ValidationError, match="schema_version"):
        Trajectory.model_validate({"schema_version": version, "id": "t", "messages": [{"role": "user", "content": "x"}]})


def test_a_version_1_line_cannot_carry_contexts():
    from helpers.contexts import coding_session

    doc = json.loads(coding_session().to_jsonl_line())
    doc["schema_version"] = 1
    with pytest.raises(ValidationError, match="contexts need schema_version 2"):
        Trajectory.model_validate(doc)


def test_contexts_round_trip_and_actions_come_from_each_reply():
    from helpers.contexts import coding_session

    from auditor.actions import with_actions

    traj = with_actions(coding_session())
    again = Trajectory.model_validate_json(traj.to_jsonl_line())
    assert again == traj
    a0, a1 = traj.actions
    assert (a0.context_id, a0.message_index, a1.context_id, a1.message_index) == ("req1", 4, "req2", 6)
    assert "a - b" in a0.edit.search and "def mul" in a1.edit.replace
    assert traj.context("req1").reply.content[a0.char_start:a0.char_end].startswith("app/util.py")
    # request 2 re-sends the first reply in its history: context, not a second copy of the action
    assert len(traj.actions) == 2
    assert traj.context_number("req2") == 2 and traj.context_number(None) is None


def test_only_the_last_call_can_end_with_a_final_answer():
    from auditor.trajectory import Context

    def ctx(i: str, reply: str) -> Context:
        return Context(id=i, messages=[Message(role="user", content="q" + i), Message(role="assistant", content=reply)])

    traj = Trajectory(id="t", messages=[Message(role="user", content="q")],
                      contexts=[ctx("1", "thinking aloud"), ctx("2", "the answer")])
    actions = derive_actions(traj)
    assert [(a.kind, a.context_id) for a in actions] == [(ActionKind.final_answer, "2")]


def test_for_context_is_the_trajectory_that_call_saw():
    from helpers.contexts import coding_session, request_messages

    from auditor.actions import with_actions
    from auditor.trajectory import ToolDefinition

    traj = with_actions(coding_session()).model_copy(update={"tools": [ToolDefinition(name="t")]})
    sub = traj.for_context("req1")
    assert sub.id == "session:req1" and sub.contexts == [] and sub.tools == traj.tools
    assert [m.content for m in sub.messages] == [m.content for m in request_messages(1)]
    assert [(a.id, a.context_id, a.message_index) for a in sub.actions] == [("session:a0", None, 4)]
    assert traj.for_context(None).actions == [] and traj.for_context(None).messages == traj.messages
    plain = Trajectory(id="p", messages=[Message(role="user", content="x")])
    assert plain.for_context(None) is plain


def test_context_rules():
    from auditor.trajectory import Action, Context

    user = Message(role="user", content="x")
    reply = Message(role="assistant", content="y")
    with pytest.raises(ValidationError, match="last message must be the call's reply"):
        Context(id="c", messages=[reply, user])
    with pytest.raises(ValidationError, match="unknown call id"):
        Context(id="c", messages=[Message(role="tool", tool_call_id="nope", content="z"), reply])
    ctx = Context(id="c", messages=[user, reply])
    with pytest.raises(ValidationError, match="duplicate context id 'c'"):
        Trajectory(id="t", messages=[user], contexts=[ctx, ctx])
    act = Action(id="t:a0", kind=ActionKind.final_answer, message_index=1, step=0, context_id="other")
    with pytest.raises(ValidationError, match="unknown context_id 'other'"):
        Trajectory(id="t", messages=[user], contexts=[ctx], actions=[act])
    with pytest.raises(ValidationError, match=r"message_index 2 out of range \(context 'c' has 2 messages\)"):
        Trajectory(id="t", messages=[user], contexts=[ctx],
                   actions=[act.model_copy(update={"context_id": "c", "message_index": 2})])
    ok = Trajectory(id="t", messages=[user], contexts=[ctx],
                    actions=[act.model_copy(update={"context_id": "c"})])  # index 1 is in the context, not in messages
    assert ok.messages_of("c")[1].content == "y" and ok.messages_of(None) == [user]
