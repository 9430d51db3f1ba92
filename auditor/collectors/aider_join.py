"""Join an Aider session's two records: ``.aider.chat.history.md`` (what the user typed and read,
per launch) and the ``--llm-history-file`` log (the exact messages of every request).

    trajs, issues = join_aider(".aider.chat.history.md", [".aider.llm.history"])

Each chat-history session stays one trajectory (its ``messages`` are the user-facing turns) and
gains one `Context` per model call of the session: the call's prompt exactly as the log has it
(system prompt, repository map, the files as they were at that request), then its reply. An
assistant reply of the chat history is matched to the call whose response is the same text (in
order; whitespace and blank lines aside, else the closest of the next few calls at 90 % similarity
or more), and its actions (edit blocks) become actions of that call's context. What cannot be
matched is reported, never dropped:

- a chat reply with no call (the log started later, or was cut): a warning; its actions stay in
  the chat history's conversation (``context_id`` None), explained there as before;
- a call with no chat reply (Aider's own requests: a commit message, a summary; a retry): an
  info note; it is kept as a context of the session it falls in (by the calls around it, else by
  time), and any edit block in its reply is an action of it.

Calls are numbered across the logs given, in order: ``req1``, ``req2``, ...
"""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from auditor.actions import derive_actions
from auditor.collectors.aider import call_context, load_chat_history, read_llm_calls
from auditor.collectors.issues import LoadIssue
from auditor.collectors.sanitize import check_trajectory
from auditor.trajectory import Action, ActionKind, Context, Trajectory

#: How far ahead of the last matched call a reply is looked for when no call has its exact text,
#: and how similar (difflib ratio) the closest must be.
LOOKAHEAD = 3
MIN_SIMILARITY = 0.9


def _norm(text: str) -> str:
    """A reply as both records write it: Aider strips the chat copy and the log drops trailing
    blanks per line."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None


def _align(sessions: list[Trajectory], calls: list[Context]) -> dict[tuple[int, int], int]:
    """(session, message index) of each chat reply -> index of its call, in order."""
    found: dict[tuple[int, int], int] = {}
    replies = [_norm(c.reply.content) for c in calls]
    pos = 0
    for si, s in enumerate(sessions):
        for mi, m in enumerate(s.messages):
            if m.role != "assistant":
                continue
            want = _norm(m.content)
            j = next((j for j in range(pos, len(calls)) if replies[j] == want), None)
            if j is None:
                near = [(difflib.SequenceMatcher(None, replies[j], want).ratio(), j)
                        for j in range(pos, min(pos + LOOKAHEAD, len(calls)))]
                best = max(near, default=(0.0, -1))
                j = best[1] if best[0] >= MIN_SIMILARITY else None
            if j is not None:
                found[(si, mi)] = j
                pos = j + 1
    return found


def _owners(sessions: list[Trajectory], calls: list[Context], matched: dict[tuple[int, int], int]) -> list[int]:
    """The session each call belongs to: its reply's; else the session of the matched calls around it
    (the one before, else after); else the last session started before it was sent; else the first."""
    owner: list[int | None] = [None] * len(calls)
    for (si, _), j in matched.items():
        owner[j] = si
    starts = [_time(s.metadata.get("started_at")) for s in sessions]
    out = []
    for j, o in enumerate(owner):
        if o is None:
            before = next((owner[i] for i in range(j - 1, -1, -1) if owner[i] is not None), None)
            after = next((owner[i] for i in range(j + 1, len(owner)) if owner[i] is not None), None)
            o = before if before is not None else after
            sent = _time(calls[j].metadata.get("sent_at"))
            if o is None and sent is not None:
                o = max((k for k, t in enumerate(starts) if t is not None and t <= sent), default=None)
        out.append(o if o is not None else 0)
    return out


def _call_actions(tid: str, ctx: Context, fmt: str | None, final: bool) -> list[Action]:
    """The actions of one call's reply (a final answer only when ``final``)."""
    probe = Trajectory(id=tid, messages=[m.model_copy() for m in ctx.messages], contexts=[ctx])
    return [a for a in derive_actions(probe, fmt) if final or a.kind is not ActionKind.final_answer]


def _joined(session: Trajectory, calls: list[tuple[int, Context]], matched: dict[int, int],
            llm_files: list[str]) -> Trajectory:
    """Session ``k`` with its calls (global index, context) as contexts; ``matched`` maps a chat
    message index to the global index of its call."""
    fmt = session.metadata.get("edit_format")
    contexts = [ctx.model_copy(update={"metadata": {**ctx.metadata, **({"edit_format": fmt} if fmt and "edit_format"
                                                                       not in ctx.metadata else {})}})
                for _, ctx in calls]
    by_global = {g: ctx for (g, _), ctx in zip(calls, contexts)}
    last_reply = max((i for i, m in enumerate(session.messages) if m.role == "assistant"), default=-1)
    actions: list[Action] = []
    emitted: set[int] = set()

    def calls_before(g: int | None) -> None:
        """Actions of the unmatched calls before call ``g`` (None: all left), in call order."""
        for h, ctx in by_global.items():
            if (g is None or h < g) and h not in emitted and h not in matched.values():
                emitted.add(h)
                actions.extend(_call_actions(session.id, ctx, fmt, final=False))

    for mi, m in enumerate(session.messages):
        if m.role != "assistant":
            continue
        if mi in matched:
            g = matched[mi]
            calls_before(g)
            emitted.add(g)
            actions.extend(_call_actions(session.id, by_global[g], fmt, final=mi == last_reply))
        else:
            actions.extend(a.model_copy(update={"context_id": None}) for a in session.actions if a.message_index == mi)
    calls_before(None)
    actions = [a.model_copy(update={"id": f"{session.id}:a{n}", "step": n}) for n, a in enumerate(actions)]
    meta = {**session.metadata, "format": "aider", "llm_history": llm_files, "requests": len(contexts)}
    return Trajectory(id=session.id, source=session.source, metadata=meta, tools=session.tools,
                      messages=session.messages, contexts=contexts, actions=actions,
                      content_captured=session.content_captured)


def join_aider(chat_path: str | Path, llm_paths: list[str | Path]) -> tuple[list[Trajectory], list[LoadIssue]]:
    """The chat history's sessions, each with the contexts of its calls from the LLM logs (see the
    module docstring)."""
    chat_file = str(chat_path)
    sessions, issues = load_chat_history(chat_path)
    calls: list[Context] = []
    for p in llm_paths:
        file = str(p)
        parsed, more = read_llm_calls(p)
        issues.extend(more)
        for k, c in enumerate(parsed):
            ctx = call_context(file, k, c, issues)
            if ctx is not None:
                meta = {**ctx.metadata, "file": file}
                calls.append(ctx.model_copy(update={"id": f"req{len(calls) + 1}", "metadata": meta}))
    if not calls or not sessions:
        if not calls:
            issues.append(LoadIssue(chat_file, "no completed model call in the LLM history: the chat history is read "
                                               "alone", severity="warning"))
        return sessions, issues
    matched = _align(sessions, calls)
    for si, s in enumerate(sessions):
        for mi, m in enumerate(s.messages):
            if m.role == "assistant" and (si, mi) not in matched:
                issues.append(LoadIssue(chat_file, "assistant reply has no model call in the LLM history (matched by "
                                                   "its text); its actions are explained within the chat history's "
                                                   "conversation", line=m.metadata.get("line"), severity="warning"))
    owners = _owners(sessions, calls, matched)
    taken = set(matched.values())
    for j, ctx in enumerate(calls):
        if j not in taken:
            issues.append(LoadIssue(ctx.metadata["file"], f"model call {ctx.id} is not in the chat history (an Aider "
                                                          "request of its own, e.g. a commit message or a summary); "
                                                          f"kept as a context of session {sessions[owners[j]].id}",
                                    line=ctx.metadata.get("line"), severity="info"))
    out = []
    files = [str(p) for p in llm_paths]
    for si, s in enumerate(sessions):
        mine = [(j, calls[j]) for j in range(len(calls)) if owners[j] == si]
        if not mine:
            out.append(s)
            continue
        by_message = {mi: j for (sj, mi), j in matched.items() if sj == si}
        try:
            joined, more = check_trajectory(_joined(s, mine, by_message, files), chat_file, s.metadata.get("line"))
        except Exception as exc:  # noqa: BLE001 - this session is read alone; the others are joined
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
            joined, more = None, [LoadIssue(chat_file, f"session {s.id} could not be joined with its calls "
                                                       f"({str(why)[:200]}); read alone", line=s.metadata.get("line"))]
        issues.extend(more)
        out.append(joined if joined is not None else s)
    return out, issues
