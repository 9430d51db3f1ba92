"""Which parts of a trajectory are actions to explain.

Every assistant tool call is an action; every edit block in an assistant reply is a code edit;
the trajectory's last assistant message, when it has text and neither calls nor edits, is the
final answer. Earlier text-only assistant turns are not actions: they become `prior_turn`
segments that later actions are attributed through.

A trajectory with contexts (one per model call, `Trajectory.contexts`) takes its actions from each
call's reply, the last message of its context, with ``context_id`` set: the reply's tool calls and
edit blocks, and, for the last call only, its text as the final answer when it has neither. The
history a later call re-sends holds earlier replies again; they are that call's context, not
actions of it. A context's ``metadata.edit_format``, when set, says how to read its reply.
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
    if traj.contexts:
        return _context_actions(traj, edit_format)
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


def _context_actions(traj: Trajectory, edit_format: str | None) -> list[Action]:
    actions: list[Action] = []
    for k, ctx in enumerate(traj.contexts):
        i = len(ctx.messages) - 1
        reply = ctx.reply
        here: list[dict[str, object]] = [
            dict(kind=ActionKind.tool_call, tool_call_id=c.id, tool_name=c.name, arguments=c.arguments)
            for c in reply.tool_calls]
        fmt = ctx.metadata.get("edit_format")  # a call's own format (Aider's modes differ per request)
        edits = parse_edit_blocks(reply.content, fmt if fmt in EDIT_FORMATS else edit_format) if reply.content else []
        here += [dict(kind=ActionKind.code_edit, edit=b.edit, tool_name="edit_file", arguments={"path": b.edit.path},
                      char_start=b.char_start, char_end=b.char_end) for b in edits]
        if k == len(traj.contexts) - 1 and not here and reply.content.strip():
            here.append(dict(kind=ActionKind.final_answer, char_start=0, char_end=len(reply.content)))
        for kw in here:
            step = len(actions)
            actions.append(Action(id=f"{traj.id}:a{step}", step=step, message_index=i, context_id=ctx.id,
                                  **kw))  # type: ignore[arg-type]
    return actions
