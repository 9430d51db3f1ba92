"""Hand-built audits for the report's tests: a word-level "rendering" of a trajectory with exact
token ranges and deterministic scores, no model."""

from __future__ import annotations

import math
import re
from pathlib import Path

from auditor.collectors.loading import load_path
from auditor.audit.schema import ActionAttribution, Driver, HopFlow, RunInfo, TrajectoryAudit
from auditor.trajectory import Provenance, Segment, SegmentKind, Trajectory
from auditor.actions import with_actions

ROOT = Path(__file__).resolve().parents[2]
_WORD = re.compile(r"\s*\S+|\s+")
_ROLE_KIND = {"system": SegmentKind.system, "user": SegmentKind.user_request, "tool": SegmentKind.tool_output}


def example(name: str) -> Trajectory:
    (traj,) = load_path(ROOT / "examples" / f"{name}.jsonl").trajectories
    return with_actions(traj)


def synthetic_audit(traj: Trajectory, pad_words: int = 0, hot: str = "ASSISTANT INSTRUCTION",
                    run_id: str = "run-synth") -> TrajectoryAudit:
    """Render ``traj`` word by word (ChatML-like template tokens between messages), one segment per
    message field, and score each action: tokens containing ``hot`` words get most of the mass.

    ``pad_words`` appends that many filler words to the first tool output (large-context tests)."""
    traj = with_actions(traj)
    tokens: list[str] = []
    segments: list[Segment] = []
    action_span: dict[str, tuple[int, int]] = {}
    by_call = {a.tool_call_id: a for a in traj.actions if a.tool_call_id}
    padded = False

    def emit(text: str) -> tuple[int, int]:
        start = len(tokens)
        tokens.extend(_WORD.findall(text))
        return start, len(tokens)

    for i, m in enumerate(traj.messages):
        tokens.extend(["<|im_start|>", m.role, "\n"])
        if m.reasoning:
            a, b = emit(m.reasoning)
            segments.append(Segment(id=f"{traj.id}:s{len(segments)}", kind=SegmentKind.reasoning, text=m.reasoning,
                                    label=f"reasoning #{i}", token_start=a, token_end=b,
                                    provenance=Provenance(message_index=i, field="reasoning", char_start=0,
                                                          char_end=len(m.reasoning))))
        content = m.content
        if m.role == "tool" and pad_words and not padded:
            content = content + "\n" + " ".join(f"filler{k % 97}" for k in range(pad_words))
            padded = True
        if content.strip():
            a, b = emit(content)
            kind = _ROLE_KIND.get(m.role, SegmentKind.prior_turn)
            finals = [x for x in traj.actions if x.message_index == i and x.kind.value != "tool_call"]
            if finals:  # a final answer, or code edits: the whole content stands for them
                kind = SegmentKind.action
                for x in finals:
                    action_span[x.id] = (a, b)
            segments.append(Segment(id=f"{traj.id}:s{len(segments)}", kind=kind, text=m.content,
                                    label=f'{m.role} #{i}: "{m.content[:30]}"', token_start=a, token_end=b,
                                    action_id=finals[0].id if finals else None,
                                    provenance=Provenance(message_index=i, field="content", char_start=0,
                                                          char_end=len(m.content), tool_call_id=m.tool_call_id)))
        for call in m.tool_calls:
            text = call.arguments_json()
            a, b = emit(f"<tool_call> {call.name} {text}")
            act = by_call.get(call.id)
            segments.append(Segment(id=f"{traj.id}:s{len(segments)}", kind=SegmentKind.action if act else SegmentKind.prior_turn,
                                    text=text, label=f"call {call.name}", token_start=a, token_end=b,
                                    action_id=act.id if act else None,
                                    provenance=Provenance(message_index=i, field="tool_call", tool_call_id=call.id,
                                                          tool_name=call.name, char_start=0, char_end=len(text))))
            if act:
                action_span[act.id] = (a, b)
        tokens.extend(["<|im_end|>", "\n"])

    attrs = []
    for action in traj.actions:
        out_start, out_end = action_span[action.id]
        scores = []
        for j in range(out_start):
            t = tokens[j]
            base = 0.02 + 0.01 * math.sin(j)
            if any(w in t for w in hot.split()):
                base = 2.0
            elif t.strip().lower() in {"summarize", "unread", "emails.", "not", "reply"}:
                base = 0.1
            scores.append(max(base, 0.0))
        mass: dict[str, float] = {}
        for s in segments:
            if s.kind.group != "input" or s.token_start >= out_start:
                continue
            mass[s.id] = sum(scores[s.token_start:min(s.token_end, out_start)])
        total = sum(mass.values()) or 1.0
        ranked = sorted(mass.items(), key=lambda kv: -kv[1])
        seg_by_id = {s.id: s for s in segments}
        drivers = [Driver(segment_id=sid, kind=seg_by_id[sid].kind, label=seg_by_id[sid].label, score=v, share=v / total,
                          rank=r + 1) for r, (sid, v) in enumerate(ranked)]
        hops = [HopFlow(hop=0, flow_ratio=0.3, by_kind={"system": 0.05, "user_request": 0.15, "tool_output": 0.5,
                                                         "prior_turn": 0.3}),
                HopFlow(hop=1, flow_ratio=0.1, by_kind={"system": 0.1, "user_request": 0.3, "tool_output": 0.5,
                                                         "prior_turn": 0.1})]
        attrs.append(ActionAttribution(action=action, drivers=drivers, hops=hops, token_scores=scores,
                                       context_end=out_start, output_start=out_start, output_end=out_end, seconds=0.01))
    run = RunInfo(run_id=run_id, model="synthetic", method="flashtrace", hops=1, auditor_version="test")
    return TrajectoryAudit(run=run, trajectory=traj, segments=segments, tokens=tokens, actions=attrs)
