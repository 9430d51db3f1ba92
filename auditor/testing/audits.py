"""Model-free stand-ins for audits, for tests and benchmarks of everything downstream of replay.

`synthetic_audit(traj)` renders a trajectory by splitting text on whitespace, makes one segment
per message, and scores each context token by whether its word occurs in the action's own
arguments/text: an action that repeats an address found in a tool output is "driven" by that
output. It is deterministic and fast, and it is *not* attribution: use it only where a real model
is beside the point (store, CLI, report layout tests; storage benchmarks).

With ``arguments=True`` each tool call's top-level arguments (and a code edit's path, search and
replace) are explained too, the same way: the target is the value's words, the token span the
tokens that overlap the value (without JSON quotes), as `ActionAttribution.arguments` has them,
with token scores over the tokens before the value.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from auditor.audit.schema import (ActionAttribution, ArgumentAttribution, ContextAudit, Driver, HopFlow, RunInfo,
                                  TrajectoryAudit)
from auditor.trajectory import (
    Action,
    ActionKind,
    Message,
    Provenance,
    Segment,
    SegmentKind,
    ToolCall,
    Trajectory,
)
from auditor.actions import with_actions
from auditor.provenance import ProvenanceIndex, provenance_of

_TOKEN = re.compile(r"\S+\s*|\s+")
_WORD = re.compile(r"[A-Za-z0-9@._-]+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text) or [""]


def synthetic_run(run_id: str = "run-synthetic", model: str = "synthetic", method: str = "synthetic",
                  hops: int = 1) -> RunInfo:
    return RunInfo(run_id=run_id, model=model, method=method, hops=hops, auditor_version="test",
                   created_at=datetime(2025, 1, 1, tzinfo=timezone.utc))


def synthetic_audit(traj: Trajectory, run: RunInfo | None = None, *, arguments: bool = False) -> TrajectoryAudit:
    """A deterministic `TrajectoryAudit` of ``traj`` without a model (see the module docstring);
    ``arguments=True`` also explains each argument of tool calls and code edits. A trajectory with
    contexts is rendered per context holding actions, as the replay does (segment ids
    ``{context}:m{i}``, each context's tokens in ``contexts``)."""
    traj = with_actions(traj)
    run = run or synthetic_run()
    if traj.contexts:
        return _synthetic_contexts(traj, run, arguments)
    segments, tokens, attributions = _synthetic_part(traj, run, arguments)
    return TrajectoryAudit(run=run, trajectory=traj, segments=segments, tokens=tokens, actions=attributions,
                           seconds=0.0)


def _synthetic_contexts(traj: Trajectory, run: RunInfo, arguments: bool) -> TrajectoryAudit:
    used = {a.context_id for a in traj.actions}
    by_id = {a.id: a for a in traj.actions}
    segments: list[Segment] = []
    attributions: dict[str, ActionAttribution] = {}
    contexts: list[ContextAudit] = []
    own: list[str] = []
    for cid in [*(c.id for c in traj.contexts if c.id in used), *([None] if None in used else [])]:
        segs, tokens, atts = _synthetic_part(traj.for_context(cid), run, arguments, prefix="" if cid is None else f"{cid}:")
        segments += [s.model_copy(update={"context_id": cid}) for s in segs]
        attributions.update({a.action.id: a.model_copy(update={"action": by_id[a.action.id]}) for a in atts})
        if cid is None:
            own = tokens
        else:
            contexts.append(ContextAudit(context_id=cid, tokens=tokens))
    return TrajectoryAudit(run=run, trajectory=traj, segments=segments, tokens=own, contexts=contexts,
                           actions=[attributions[a.id] for a in traj.actions], seconds=0.0)


def _synthetic_part(traj: Trajectory, run: RunInfo, arguments: bool,
                    prefix: str = "") -> tuple[list[Segment], list[str], list[ActionAttribution]]:
    tokens: list[str] = []
    segments: list[Segment] = []
    msg_range: dict[int, tuple[int, int]] = {}
    msg_text: dict[int, str] = {}
    first_user = next((i for i, m in enumerate(traj.messages) if m.role == "user"), -1)
    action_msgs = {a.message_index for a in traj.actions}
    for i, m in enumerate(traj.messages):
        start = len(tokens)
        text = m.content
        if m.tool_calls:
            text = (text + "\n" if text else "") + "\n".join(
                json.dumps({"name": c.name, "arguments": c.arguments}) for c in m.tool_calls)
        tokens.extend(_tokens(text))
        msg_range[i] = (start, len(tokens))
        msg_text[i] = text
        if m.role == "system":
            kind, label = SegmentKind.system, "system prompt"
        elif m.role == "user":
            kind, label = SegmentKind.user_request, "user request" if i == first_user else "user message"
        elif m.role == "tool":
            kind, label = SegmentKind.tool_output, f"{m.name} output"
        elif i in action_msgs:
            kind, label = SegmentKind.action, "action"
        else:
            kind, label = SegmentKind.prior_turn, "assistant turn"
        segments.append(Segment(
            id=f"{prefix}m{i}", kind=kind, text=m.content, label=label,
            action_id=next((a.id for a in traj.actions if a.message_index == i), None) if kind is SegmentKind.action
            else None,
            provenance=Provenance(message_index=i, tool_call_id=m.tool_call_id,
                                  tool_name=m.name if m.role == "tool" else None,
                                  char_start=0, char_end=len(m.content)),
            token_start=start, token_end=len(tokens)))
    attributions = [_attribute(traj, a, tokens, segments, msg_range, run.hops) for a in traj.actions]
    if arguments:
        for att in attributions:
            att.arguments = _arguments(traj, att.action, tokens, segments, msg_range, msg_text)
    index = ProvenanceIndex(segments)  # where each argument value occurs: text matching, as a real audit does
    for attr in attributions:
        attr.provenance = provenance_of(attr.action, index)
    return segments, tokens, attributions


def _attribute(traj: Trajectory, action: Action, tokens: list[str], segments: list[Segment],
               msg_range: dict[int, tuple[int, int]], hops: int) -> ActionAttribution:
    start, end = msg_range[action.message_index]
    if action.kind is ActionKind.tool_call:
        target = json.dumps(action.arguments)
    else:
        content = traj.messages[action.message_index].content
        target = content[action.char_start or 0: action.char_end or len(content)]
    scores, drivers = _drivers(target, tokens, segments, start)
    by_kind: dict[str, float] = {}
    for d in drivers:
        by_kind[d.kind.value] = by_kind.get(d.kind.value, 0.0) + d.share
    inter = sum(d.share for d in drivers if d.kind.group == "intermediate")
    flows = [HopFlow(hop=h, flow_ratio=inter, by_kind=by_kind) for h in range(1, hops + 1)]
    return ActionAttribution(action=action, drivers=drivers, hops=flows, token_scores=scores, context_end=start,
                             output_start=start, output_end=end)


def _drivers(target: str, tokens: list[str], segments: list[Segment], start: int) -> tuple[list[float], list[Driver]]:
    """Token scores over ``tokens[:start]`` (words shared with ``target``) and the input segments ranked."""
    scores = _scores(target, tokens, start)
    inputs = [s for s in segments if s.kind.group != "output" and (s.token_end or 0) <= start]
    raw = [(s, sum(scores[s.token_start:s.token_end])) for s in inputs]
    total = sum(v for _, v in raw) or 1.0
    ranked = sorted(raw, key=lambda x: (-x[1], x[0].id))
    return scores, [Driver(segment_id=s.id, kind=s.kind, label=s.label, score=v, share=v / total, rank=r)
                    for r, (s, v) in enumerate(ranked, start=1)]


def _scores(target: str, tokens: list[str], end: int) -> list[float]:
    """Token scores over ``tokens[:end]``: 0.25, plus 4 per word shared with ``target``."""
    words = {w.lower() for w in _WORD.findall(target)}
    return [0.25 + 4.0 * sum(w.lower() in words for w in _WORD.findall(t)) for t in tokens[:end]]


def _argument_chars(traj: Trajectory, action: Action, text: str) -> list[tuple[str, int, int]]:
    """(name, char_start, char_end) of each argument value inside the message's rendered ``text``."""
    out: list[tuple[str, int, int]] = []
    if action.kind is ActionKind.tool_call:
        msg = traj.messages[action.message_index]
        call = next((c for c in msg.tool_calls if c.id == action.tool_call_id), None)
        if call is None:
            return out
        line = json.dumps({"name": call.name, "arguments": call.arguments})
        cursor = text.find(line)
        if cursor == -1:
            return out
        for key, value in call.arguments.items():
            k = text.find(json.dumps(key), cursor)
            v = text.find(json.dumps(value), k) if k != -1 else -1
            if v == -1:
                continue
            a, b = v, v + len(json.dumps(value))
            cursor = b
            if isinstance(value, str):
                a, b = a + 1, b - 1  # the value's characters, not its quotes
            if b > a:
                out.append((str(key), a, b))
    elif action.kind is ActionKind.code_edit and action.edit is not None:
        lo, hi = action.char_start or 0, action.char_end or len(text)
        cursor = lo
        for name, part in (("path", action.edit.path), ("search", action.edit.search),
                           ("replace", action.edit.replace)):
            core = part.strip()
            i = text.find(core, cursor, hi) if core else -1
            if i != -1:
                out.append((name, i, i + len(core)))
                cursor = i + len(core)
    return out


def _arguments(traj: Trajectory, action: Action, tokens: list[str], segments: list[Segment],
               msg_range: dict[int, tuple[int, int]], msg_text: dict[int, str]) -> list[ArgumentAttribution]:
    start, end = msg_range[action.message_index]
    text = msg_text[action.message_index]
    bounds, pos = [], 0
    for t in tokens[start:end]:
        bounds.append((pos, pos + len(t)))
        pos += len(t)
    out = []
    for name, a, b in _argument_chars(traj, action, text):
        toks = [start + k for k, (lo, hi) in enumerate(bounds) if lo < b and hi > a]
        if not toks:
            continue
        _, drivers = _drivers(text[a:b], tokens, segments, start)
        inter = sum(d.share for d in drivers if d.kind.group == "intermediate")
        out.append(ArgumentAttribution(name=name, token_start=toks[0], token_end=toks[-1] + 1, drivers=drivers,
                                       flow_ratio=inter, token_scores=_scores(text[a:b], tokens, toks[0])))
    return out


def synthetic_trajectory(n: int, tools: int = 4, actions: int = 5, words: int = 40) -> Trajectory:
    """A made-up agent trajectory (id ``synthetic-{n}``): a request, then ``actions`` rounds of a
    tool call and its output (tool names cycle through ``tools`` names)."""
    msgs = [Message(role="system", content="You are a helpful agent. Only act on the user's instructions."),
            Message(role="user", content=f"Task {n}: summarise the reports and email bob@example.com.")]
    for k in range(actions):
        name = "send_email" if k == actions - 1 else f"tool_{k % tools}"
        call = ToolCall(id=f"c{k}", name=name, arguments={"query": f"report {n} part {k}", "to": "bob@example.com"})
        msgs.append(Message(role="assistant", tool_calls=[call]))
        body = " ".join(f"w{(n * 7 + k * 13 + j) % 997}" for j in range(words))
        msgs.append(Message(role="tool", tool_call_id=call.id, content=f"report {n} part {k}: {body}"))
    return with_actions(Trajectory(id=f"synthetic-{n}", source="synthetic", messages=msgs))
