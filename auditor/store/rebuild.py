"""Rebuilding a recorded audit from its rows: the inverse of `auditor.store.ingest.audit_tables`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from auditor.store.errors import NotFound
from auditor.audit.schema import (ActionAttribution, ArgumentAttribution, CausalDelta, ContextAudit, Driver,
                                  HopFlow, RunInfo, TrajectoryAudit)
from auditor.provenance import ArgumentProvenance
from auditor.trajectory import Provenance, Segment, Trajectory

Rows = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def rebuild_audit(rows: Rows, run_id: str, trajectory_id: str, action_ids: Sequence[str] | None = None) -> TrajectoryAudit:
    """Rebuild the `TrajectoryAudit` recorded for (run, trajectory), optionally only some actions;
    ``rows(sql, params)`` runs a query and returns its rows as dicts."""
    run = rows("SELECT * FROM runs WHERE run_id = ?", [run_id])
    au = rows("SELECT * FROM audits WHERE run_id = ? AND trajectory_id = ?", [run_id, trajectory_id])
    if not run or not au:
        raise NotFound(f"no audit of trajectory {trajectory_id!r} in run {run_id!r}")
    r, a = run[0], au[0]
    info = RunInfo(run_id=r["run_id"], model=r["model"], method=r["method"], hops=r["hops"],
                   auditor_version=r["auditor_version"], created_at=r["created_at"], device=r["device"],
                   dtype=r["dtype"], settings=json.loads(r["settings"]) if r["settings"] else {})
    traj = Trajectory.model_validate_json(a["trajectory"])
    key = [run_id, trajectory_id]
    segments = [
        Segment(id=s["segment_id"], kind=s["kind"], text=s["text"], label=s["label"] or "",
                action_id=s["action_id"], token_start=s["token_start"], token_end=s["token_end"],
                context_id=s.get("context_id"),
                provenance=Provenance(message_index=s["message_index"], field=s["field"],
                                      tool_call_id=s["tool_call_id"], tool_name=s["tool_name"], path=s["path"],
                                      char_start=s["char_start"], char_end=s["char_end"]))
        for s in rows("SELECT * FROM segments WHERE run_id = ? AND trajectory_id = ? ORDER BY position", key)
    ]
    wanted = set(action_ids) if action_ids is not None else None
    by_id = {x.id: x for x in traj.actions}
    drivers: dict[str, list[Driver]] = {}
    for d in rows("SELECT * FROM attributions WHERE run_id = ? AND trajectory_id = ? AND hop = 0 "
                        "ORDER BY action_id, rank", key):
        drivers.setdefault(d["action_id"], []).append(Driver(
            segment_id=d["segment_id"], kind=d["kind"], label=d["label"] or "", score=d["score"],
            share=d["share"], rank=d["rank"]))
    hops: dict[str, list[HopFlow]] = {}
    for h in rows("SELECT * FROM hop_flows WHERE run_id = ? AND trajectory_id = ? ORDER BY action_id, hop",
                        key):
        hops.setdefault(h["action_id"], []).append(HopFlow(
            hop=h["hop"], flow_ratio=h["flow_ratio"], by_kind=json.loads(h["by_kind"]) if h["by_kind"] else {}))
    arg_drivers: dict[tuple[str, str], list[Driver]] = {}
    for d in rows("SELECT * FROM argument_attributions WHERE run_id = ? AND trajectory_id = ? "
                        "ORDER BY action_id, argument, rank, segment_id", key):
        arg_drivers.setdefault((d["action_id"], d["argument"]), []).append(Driver(
            segment_id=d["segment_id"], kind=d["kind"], label=d["label"] or "", score=d["score"],
            share=d["share"], rank=d["rank"]))
    arguments: dict[str, list[ArgumentAttribution]] = {}
    for g in rows("SELECT * FROM action_arguments WHERE run_id = ? AND trajectory_id = ? "
                        "ORDER BY action_id, position, token_start, argument", key):
        arguments.setdefault(g["action_id"], []).append(ArgumentAttribution(
            name=g["argument"], token_start=g["token_start"], token_end=g["token_end"],
            drivers=arg_drivers.get((g["action_id"], g["argument"]), []),
            flow_ratio=g["flow_ratio"] if g["flow_ratio"] is not None else 0.0,
            token_scores=list(g["scores"] or []), causal=_causal(g.get("causal"))))
    scores = {s["action_id"]: s["scores"] for s in rows(
        "SELECT action_id, scores FROM token_scores WHERE run_id = ? AND trajectory_id = ?", key)}
    order_of = {c.id: i for i, c in enumerate(traj.contexts)}
    contexts = sorted((ContextAudit(context_id=c["context_id"], tokens=list(c["tokens"] or []),
                                    forward_seconds=c["forward_seconds"] or 0.0,
                                    reused_tokens=c["reused_tokens"] or 0)
                       for c in rows("SELECT * FROM audit_contexts WHERE run_id = ? AND trajectory_id = ?", key)),
                      key=lambda c: order_of.get(c.context_id, len(order_of)))
    order = {x.id: i for i, x in enumerate(traj.actions)}
    rows = sorted(rows("SELECT * FROM action_audits WHERE run_id = ? AND trajectory_id = ?", key),
                  key=lambda row: (order.get(row["action_id"], len(order)), row["action_id"]))
    actions = []
    for row in rows:
        aid = row["action_id"]
        if wanted is not None and aid not in wanted:
            continue
        if aid not in by_id:
            continue  # the action is not in the audited trajectory (cannot happen via record_audit)
        actions.append(ActionAttribution(
            action=by_id[aid], drivers=drivers.get(aid, []), hops=hops.get(aid, []),
            token_scores=list(scores.get(aid) or []), context_end=row["context_end"],
            output_start=row["output_start"], output_end=row["output_end"],
            layer_shares=json.loads(row["layer_shares"]) if row["layer_shares"] else {},
            seconds=row["seconds"], arguments=arguments.get(aid, []), causal=_causal(row.get("causal")),
            provenance=[ArgumentProvenance.model_validate({k: v for k, v in p.items() if k != "line"})
                        for p in json.loads(row.get("provenance") or "[]")]))
    extra: dict[str, Any] = {}
    if "notes" in TrajectoryAudit.model_fields:
        extra["notes"] = list(a["notes"] or [])
    return TrajectoryAudit(run=info, trajectory=traj, segments=segments, tokens=list(a["tokens"] or []),
                           actions=actions, dropped=list(a["dropped"] or []), unplaced=list(a["unplaced"] or []),
                           forward_seconds=a["forward_seconds"], seconds=a["seconds"], contexts=contexts,
                           causal_seconds=a.get("causal_seconds") or 0.0, **extra)


def _causal(doc: str | None) -> list[CausalDelta]:
    return [CausalDelta.model_validate(c) for c in json.loads(doc or "[]")]
