"""Which parts of a trajectory are actions to explain.

Every assistant tool call is an action; every edit block in an assistant reply is a code edit;
the trajectory's last assistant message, when it has text and neither calls nor edits, is the
final answer. Earlier text-only assistant turns are not actions: they become `prior_turn`
segments that later actions are attributed through.
"""

from __future__ import annotations

from auditor.edits import EDIT_FORMATS, parse_edit_blocks
from auditor.trajectory import Action, ActionKind, Trajectory


def with_actions(traj: Trajectory) -> Trajectory:
    """``traj`` itself when it lists its actions, else a copy with actions derived from its
    messages; ``metadata.edit_format`` (an Aider edit format: diff, whole, udiff, ...) says how to
    read code edits in assistant replies. The one place actions are derived for a loaded trajectory."""
    if traj.actions:
        return traj
    fmt = traj.metadata.get("edit_format") if isinstance(traj.metadata, dict) else None
    known = fmt if fmt in EDIT_FORMATS else None  # Aider's other modes (architect, ask) hold no edit blocks of their own
    return traj.model_copy(update={"actions": derive_actions(traj, known)})


def derive_actions(traj: Trajectory, edit_format: str | None = None) -> list[Action]:
    actions: list[Action] = []

    def add(**kw: object) -> None:
        step = len(actions)
        actions.append(Action(id=f"{traj.id}:a{step}", step=step, **kw))  # type: ignore[arg-type]

    last_assistant = max((i for i, m in enumerate(traj.messages) if m.role == "assistant"), default=-1)
    for i, msg in enumerate(traj.messages):
        if msg.role != "assistant":
            continue
        for call in msg.tool_calls:
            add(kind=ActionKind.tool_call, message_index=i, tool_call_id=call.id, tool_name=call.name,
                arguments=call.arguments)
        edits = parse_edit_blocks(msg.content, edit_format) if msg.content else []
        for block in edits:
            add(kind=ActionKind.code_edit, message_index=i, edit=block.edit, tool_name="edit_file",
                arguments={"path": block.edit.path}, char_start=block.char_start, char_end=block.char_end)
        if i == last_assistant and not msg.tool_calls and not edits and msg.content.strip():
            add(kind=ActionKind.final_answer, message_index=i, char_start=0, char_end=len(msg.content))
    return actions
