"""Per-call contexts from chat spans: whether a run's calls were one append-only conversation, and
when not, one `Context` per chat span (its input messages, then its reply) with the actions taken
from each reply.

An append-only run (every call was sent the previous call's messages and reply as the start of
its own) keeps the classic form: the last conversation holds what each call saw. Otherwise (a
coding agent re-sending the files as they are now, an agent that drops or summarises turns) each
chat span with content and a reply is a context, ids ``req1``, ``req2``, ... in time order, and
each action names the call whose reply holds it. `auditor.collectors.assemble` decides and passes
in how it validates messages and describes spans, so the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from auditor.actions import derive_actions
from auditor.trajectory import Action, Context, Message, ToolDefinition, Trajectory

from auditor.collectors.conventions import Msg
from auditor.collectors.grouping import Chat
from auditor.collectors.issues import LoadIssue
from auditor.collectors.spans import SpanRecord

ToMessages = Callable[[list[Msg], list[LoadIssue], SpanRecord], list[Message]]
Issue = Callable[..., LoadIssue]


def _reply_key(m: Msg) -> tuple[Any, ...]:
    return ("assistant", *m.key()[1:])


def append_only(chats: list[Chat]) -> bool:
    """Whether every chat span with content was sent the previous one's messages and reply as the
    start of its own (so the last conversation holds what each call saw)."""
    sent: list[tuple[Any, ...]] | None = None
    for c in chats:
        if not c.has_content:
            continue
        keys = [m.key() for m in c.inputs or []]
        if sent is not None and keys[:len(sent)] != sent:
            return False
        sent = keys + ([_reply_key(c.outputs[0])] if c.outputs else [])
    return True


def build_contexts(chats: list[Chat], tools: list[ToolDefinition], base_index: int | None, issues: list[LoadIssue],
                   *, meta_of: Callable[[Chat], dict[str, Any]], to_messages: ToMessages,
                   issue: Issue) -> list[Context]:
    """One context per chat span with content and a reply (see the module docstring); ``tools``
    are the trajectory's (a span offering the same ones leaves its context's None). Problems with
    the last span's messages (``base_index``) are reported once, for the trajectory's own messages."""
    out: list[Context] = []
    for i, c in enumerate(chats):
        if not c.has_content:
            continue
        if not c.outputs:
            issues.append(issue(c.span, "chat span has input messages but no reply: no context of its own (what "
                                        "it did is unknown)"))
            continue
        first = c.outputs[0]
        reply = replace(first, role="assistant", metadata={**meta_of(c), **first.metadata})
        found: list[LoadIssue] = []
        msgs = to_messages([replace(m) for m in c.inputs or []] + [reply], found, c.span)
        if i != base_index:
            issues.extend(found)
        try:
            out.append(Context(id=f"req{len(out) + 1}", messages=msgs,
                               tools=c.tools if c.tools and c.tools != tools else None,
                               metadata={"chat_span_index": i, **meta_of(c)}))
        except ValidationError as exc:
            issues.append(issue(c.span, f"chat span's context rejected ({exc.errors()[0]['msg']}); its actions are "
                                        "not explained"))
    return out


def context_actions(traj: Trajectory) -> list[Action]:
    """The actions of each context's reply, then the tool calls of placeholder turns (chat spans
    without content after the last one with content) in the trajectory's own messages."""
    actions = derive_actions(traj)
    flat = derive_actions(traj.model_copy(update={"contexts": []}))
    actions += [a for a in flat if traj.messages[a.message_index].metadata.get("content_captured") is False]
    return [a.model_copy(update={"id": f"{traj.id}:a{k}", "step": k}) for k, a in enumerate(actions)]
