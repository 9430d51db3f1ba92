"""Hand-built audits for the check's unit tests: no model, exact shares."""

from __future__ import annotations

from pathlib import Path

from auditor.collectors.loading import load_path
from auditor.audit.schema import ArgumentAttribution, ActionAttribution, Driver, HopFlow, RunInfo, TrajectoryAudit
from auditor.trajectory import Provenance, Segment, SegmentKind, Trajectory, tool_definition_text
from auditor.actions import with_actions

ROOT = Path(__file__).resolve().parents[2]

_ROLE_KIND = {"system": SegmentKind.system, "user": SegmentKind.user_request, "tool": SegmentKind.tool_output,
              "assistant": SegmentKind.prior_turn}


def segments_for(traj: Trajectory, tool_definitions: bool = False) -> list[Segment]:
    """One segment per message (id m<i>), token ranges of 10 tokens each, 4 chars per token; with
    ``tool_definitions`` also one per tool (id t<k>, kind tool_definition), after the messages."""
    segs = []
    for i, m in enumerate(traj.messages):
        text = m.content or (m.tool_calls[0].arguments_json() if m.tool_calls else "")
        segs.append(Segment(id=f"m{i}", kind=_ROLE_KIND[m.role], text=text, label=f"{m.role} message {i}",
                            provenance=Provenance(message_index=i, char_start=0, char_end=len(text)),
                            token_start=10 * i, token_end=10 * i + 10))
    if tool_definitions:
        n = len(traj.messages)
        for k, tool in enumerate(traj.tools):
            text = tool_definition_text(tool)
            segs.append(Segment(id=f"t{k}", kind=SegmentKind.tool_definition, text=text, label=f"tool def {tool.name}",
                                provenance=Provenance(field="tool_definition", tool_name=tool.name, char_start=0,
                                                      char_end=len(text)),
                                token_start=10 * (n + k), token_end=10 * (n + k) + 10))
    return segs


def _drivers(shares: dict[str, float], by_id: dict) -> list[Driver]:
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    return [Driver(segment_id=sid, kind=by_id[sid].kind, label=by_id[sid].label, score=s, share=s, rank=r + 1)
            for r, (sid, s) in enumerate(ranked)]


def build_audit(traj: Trajectory, shares: dict[int, dict[str, float]], hops: dict[int, list[HopFlow]] | None = None,
                token_scores: dict[int, list[float]] | None = None, tokens: list[str] | None = None,
                arguments: dict[int, dict[str, dict[str, float]]] | None = None,
                tool_definitions: bool = False,
                argument_token_scores: dict[int, dict[str, list[float]]] | None = None) -> TrajectoryAudit:
    """shares[step] = {segment_id: share}; actions without an entry are left out of the audit.
    arguments[step] = {argument name: {segment_id: share}} gives per-argument drivers;
    argument_token_scores[step] = {argument name: scores} their token scores.
    ``tool_definitions`` adds the tool-definition segments t<k> (see `segments_for`)."""
    traj = with_actions(traj)
    segs = segments_for(traj, tool_definitions)
    by_id = {s.id: s for s in segs}
    attrs = []
    for action in traj.actions:
        if action.step not in shares:
            continue
        drivers = _drivers(shares[action.step], by_id)
        arg_scores = (argument_token_scores or {}).get(action.step, {})
        args = [ArgumentAttribution(name=name, token_start=k, token_end=k + 1, drivers=_drivers(sh, by_id),
                                    token_scores=arg_scores.get(name, []))
                for k, (name, sh) in enumerate((arguments or {}).get(action.step, {}).items())]
        attrs.append(ActionAttribution(action=action, drivers=drivers, hops=(hops or {}).get(action.step, []),
                                       token_scores=(token_scores or {}).get(action.step, []), arguments=args))
    run = RunInfo(run_id="r1", model="hand-built", method="flashtrace", hops=1, auditor_version="test")
    return TrajectoryAudit(run=run, trajectory=traj, segments=segs, tokens=tokens or [], actions=attrs)


def example(name: str) -> Trajectory:
    (traj,) = load_path(ROOT / "examples" / f"{name}.jsonl").trajectories
    return traj


class FakeAuditor:
    """Stands in for `auditor.audit.Auditor`: returns hand-built shares per tool name."""

    def __init__(self, shares_by_tool: dict[str, dict[str, float]]):
        self.shares_by_tool = shares_by_tool
        self.seen: list[Trajectory] = []

    def audit(self, traj: Trajectory, progress=None) -> TrajectoryAudit:
        self.seen.append(traj)
        shares = {a.step: self.shares_by_tool.get(a.tool_name or a.kind.value, {"m1": 1.0}) for a in traj.actions}
        return build_audit(traj, shares)
