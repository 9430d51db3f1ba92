"""From engine results to an audit's numbers: drivers ranked by summed token score, per-hop
flow by segment kind, and the plain-dict view of an audit's drivers.

`Auditor.audit` (``replay``) plans the targets and runs the engine; these functions turn each
result into an `ActionAttribution`. Pure Python over the engine's tensors and the segments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from auditor.audit.schema import ActionAttribution, Driver, HopFlow, TrajectoryAudit
from auditor.trajectory import Segment, SegmentKind

if TYPE_CHECKING:  # pragma: no cover
    from auditor.segments.render import RenderedTrajectory


def compact(x: float) -> float:
    """Five significant digits: token scores are stored compact."""
    return float(f"{x:.5g}")


def positions(segments: Iterable[Segment]) -> list[int]:
    """Every token position the segments cover, in order."""
    out: list[int] = []
    for s in segments:
        out.extend(range(s.token_start or 0, s.token_end or 0))
    return out


def kind_of_positions(rendered: "RenderedTrajectory") -> list[tuple[str, Segment | None]]:
    """Per token position: the kind of the segment holding it (``template`` when none) and the segment."""
    kinds: list[tuple[str, Segment | None]] = [("template", None)] * len(rendered.input_ids)
    for s in rendered.segments:
        for p in range(s.token_start or 0, s.token_end or 0):
            kinds[p] = (s.kind.value, s)
    return kinds


def drivers_of(inputs: list[Segment], S: Any) -> list[Driver]:
    """Input segments ranked by summed token score, with shares of the total."""
    scores = [(s, float(S[s.token_start:s.token_end].sum())) for s in inputs]
    total = sum(v for _, v in scores)
    order = sorted(range(len(scores)), key=lambda k: (-scores[k][1], k))
    return [
        Driver(segment_id=scores[k][0].id, kind=scores[k][0].kind, label=scores[k][0].label,
               score=scores[k][1], share=(scores[k][1] / total) if total > 0 else 0.0, rank=r)
        for r, k in enumerate(order, 1)
    ]


def roll_up(action: Any, out: Segment, inputs: list[Segment], inter: list[Segment], result: Any,
            kinds: list[tuple[str, Segment | None]]) -> ActionAttribution:
    """One action's `ActionAttribution` from its engine result: drivers over the input segments,
    each hop's mass by kind (an earlier action counts as a prior turn), compact token scores."""
    S = result.token_scores
    drivers = drivers_of(inputs, S)
    hops: list[HopFlow] = []
    end = out.token_end or 0
    for h, hs in enumerate(result.hop_scores):
        mass: dict[str, float] = {}
        vals = hs[:end].tolist()
        for p, v in enumerate(vals):
            if v == 0.0:
                continue
            kind, seg = kinds[p]
            if seg is not None and seg.kind is SegmentKind.action and seg.id != out.id:
                kind = SegmentKind.prior_turn.value  # an earlier action is a prior turn here
            mass[kind] = mass.get(kind, 0.0) + v
        tot = sum(mass.values())
        by_kind = {k: v / tot for k, v in sorted(mass.items(), key=lambda kv: -kv[1])} if tot > 0 else {}
        rho = result.flow_ratios[h] if h < len(result.flow_ratios) else 0.0
        hops.append(HopFlow(hop=h, flow_ratio=float(rho), by_kind=by_kind))
    return ActionAttribution(
        action=action,
        drivers=drivers,
        hops=hops,
        token_scores=[compact(x) for x in S[:end].tolist()],
        context_end=end,
        output_start=out.token_start or 0,
        output_end=end,
        layer_shares={k: [float(x) for x in v.tolist()] for k, v in result.layer_shares.items()},
        seconds=float(result.info.get("seconds", 0.0)),
    )


def ranked_drivers(audit: TrajectoryAudit, top: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per action id, its drivers best first as plain dicts: rank, share, score, kind, label,
    segment id and provenance (message index, field, tool call, path, char range) and the text."""
    by_id = {s.id: s for s in audit.segments}
    out: dict[str, list[dict[str, Any]]] = {}
    for act in audit.actions:
        rows = []
        for d in act.drivers[:top]:
            seg = by_id[d.segment_id]
            rows.append({"rank": d.rank, "share": d.share, "score": d.score, "kind": d.kind.value, "label": d.label,
                         "segment_id": d.segment_id, "provenance": seg.provenance.model_dump(), "text": seg.text})
        out[act.action.id] = rows
    return out


__all__ = ["compact", "drivers_of", "kind_of_positions", "positions", "ranked_drivers", "roll_up"]
