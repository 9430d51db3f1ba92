"""The report's data: what the HTML page embeds, built from `TrajectoryAudit`s.

Per action the page embeds the one shared export, ``auditor.report.export.audit_action_export`` —
the dict `audit show` prints — verbatim, so the terminal and the page never disagree. Beside it
sits a ``view`` with what only a picture needs (token scores over the whole context for the
heatmap, the output → reasoning → input flow across hops, shares summed per kind), derived from
the same audit, and the CI check's ``verdict`` when `auditor.check` is there.

`report_data(audits)` wraps one or more audits: per run the conversation (and the tools offered,
each the text of its ``tool_definition`` segment), the segments with their token ranges, the token
strings once, and the actions.

Plain Python over the pydantic models: no model, no I/O.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from auditor.audit.schema import ActionAttribution, TrajectoryAudit
from auditor.check import RULES, check_audit, default_policy
from auditor.report.export import audit_action_export
from auditor.trajectory import SegmentKind, tool_definition_text

REPORT_VERSION = 1
TOP_TOKENS = 12
SCORE_DIGITS = 4  # significant digits kept for token scores in the export (keeps large reports small)


def _sig(x: float, digits: int = SCORE_DIGITS) -> float:
    """Round to `digits` significant digits; non-finite values become 0."""
    if not math.isfinite(x) or x == 0.0:
        return 0.0
    return float(f"{x:.{digits}g}")


def _round(x: float, nd: int = 6) -> float:
    return round(float(x), nd) if math.isfinite(x) else 0.0


def _input_share(by_kind: Mapping[str, float], rho: float) -> float:
    """The share of one hop's mass on input segments (X); without a per-kind split, 1 - rho."""
    if not by_kind:
        return 1.0 - rho
    total = 0.0
    for kind, share in by_kind.items():
        try:
            if SegmentKind(kind).group == "input":
                total += float(share)
        except ValueError:  # "template" and other non-segment buckets
            continue
    return min(max(total, 0.0), 1.0 - rho)


def flow_summary(hops: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Where the action's attribution mass ended up across hops: the paper's output → reasoning →
    input flow.

    At hop k, of the mass still unexplained (``incoming``, 1 at hop 0) a share ``rho_k`` (the flow
    ratio) lands on model-generated tokens and is carried to hop k+1, the input kinds' share of
    ``by_kind`` lands on the input, and the rest (template tokens, the action's own tokens) is not
    propagated. So the input receives ``prod_{j<k} rho_j * input_k`` at hop k and ``prod_k rho_k``
    is left unresolved in the reasoning after the last hop.
    """
    steps = []
    carried = 1.0
    for h in sorted(hops, key=lambda h: h["hop"]):
        rho = min(max(float(h["flow_ratio"]), 0.0), 1.0)
        inp = _input_share(h.get("by_kind") or {}, rho)
        steps.append({"hop": int(h["hop"]), "incoming": _round(carried), "to_input": _round(carried * inp),
                      "to_reasoning": _round(carried * rho), "to_other": _round(carried * max(0.0, 1.0 - rho - inp))})
        carried *= rho
    if not steps:
        return {"steps": [], "to_input": None, "to_other": None, "unresolved": None, "direct": None,
                "via_reasoning": None}
    to_input = sum(s["to_input"] for s in steps)
    return {"steps": steps, "to_input": _round(to_input), "to_other": _round(sum(s["to_other"] for s in steps)),
            "unresolved": _round(carried), "direct": steps[0]["to_input"],
            "via_reasoning": _round(to_input - steps[0]["to_input"])}


_STATUS = {"passed": "supported", "pass": "supported", "ok": "supported", "failed": "unsupported",
           "fail": "unsupported", "flagged": "unsupported"}


def normalize_verdict(verdict: Any) -> dict[str, Any] | None:
    """Turn whatever the check returns for one action into a small dict the views show.

    Accepts None, a dict, or a pydantic model / object with attributes. The result always has
    ``status`` ("supported", "unsupported", "ignored" or "unknown"); other keys are kept when they
    are JSON-friendly (support share, threshold, reasons, shares by kind...).
    """
    if verdict is None:
        return None
    if hasattr(verdict, "model_dump"):
        data = verdict.model_dump(mode="json")
    elif isinstance(verdict, Mapping):
        data = dict(verdict)
    else:
        data = {k: getattr(verdict, k) for k in dir(verdict) if not k.startswith("_") and not callable(getattr(verdict, k))}
    status = data.get("status") or data.get("verdict")
    if status is None and "passed" in data:
        status = "supported" if data["passed"] else "unsupported"
    if status is None and "supported" in data and isinstance(data["supported"], bool):
        status = "supported" if data["supported"] else "unsupported"
    if status is None and "flagged" in data:
        status = "unsupported" if data["flagged"] else "supported"
    if hasattr(status, "value"):
        status = status.value
    raw = str(status or "unknown").lower()
    # an already normalized verdict keeps the check's own word
    out = {"status": _STATUS.get(raw, raw), "check_status": str(data.get("check_status") or raw)}
    for key, value in data.items():
        if key in ("status", "verdict", "check_status"):
            continue
        if isinstance(value, (str, int, float, bool, type(None), list, dict)):
            out[key] = value
    return out


def action_view(audit: TrajectoryAudit, att: ActionAttribution) -> dict[str, Any]:
    """What the page draws besides the export: driver shares summed per kind and group, the flow
    across hops (`flow_summary`), the strongest tokens, and the token scores over the context
    (rounded to `SCORE_DIGITS` significant digits). All of it is derived from the same audit."""
    by_kind: dict[str, float] = {}
    for d in att.drivers:
        by_kind[d.kind.value] = by_kind.get(d.kind.value, 0.0) + d.share
    by_group: dict[str, float] = {}
    for kind, share in by_kind.items():
        g = SegmentKind(kind).group
        by_group[g] = by_group.get(g, 0.0) + share
    scores = att.token_scores[: att.context_end] if att.context_end else list(att.token_scores)
    top: list[dict[str, Any]] = []
    if scores:
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:TOP_TOKENS]
        tokens = audit.tokens
        top = [{"i": i, "text": tokens[i] if i < len(tokens) else "", "score": _sig(scores[i])}
               for i in order if scores[i] > 0]
    hops = [h.model_dump(mode="json") for h in att.hops]
    return {
        "by_kind": {k: _round(v) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
        "by_group": {k: _round(v) for k, v in by_group.items()},
        "flow": flow_summary(hops),
        "top_tokens": top,
        "token_scores": [_sig(x) for x in scores],
    }


def _export_of(audit: TrajectoryAudit, action_id: str) -> dict[str, Any]:
    """The one per-action export (``auditor.report.export.audit_action_export``, under the default
    policy), as JSON would carry it."""
    return _finite(json.loads(json.dumps(audit_action_export(audit, action_id), default=str)))


def _finite(obj: Any) -> Any:
    """NaN/inf (which JSON cannot carry) become None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _message_dict(i: int, m: Any) -> dict[str, Any]:
    return {
        "index": i,
        "role": m.role,
        "content": m.content,
        "reasoning": m.reasoning,
        "name": m.name,
        "tool_call_id": m.tool_call_id,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls],
    }


def run_data(
    audit: TrajectoryAudit,
    verdicts: Mapping[str, Any] | None = None,
    exports: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One run as the report embeds it: the conversation, the segments, the token strings once, and
    per action ``{"export": <the shared export>, "view": <action_view>, "verdict": <normalized>}``.

    ``exports`` (action id → export dict, e.g. from ``auditor.report.export.action_export``) are
    embedded verbatim; missing ones are built from ``audit`` with the same function (default policy)."""
    verdicts = verdicts or {}
    exports = exports or {}
    traj = audit.trajectory
    actions = []
    for att in audit.actions:
        aid = att.action.id
        export = exports.get(aid)
        if export is None:
            export = _export_of(audit, aid)
        actions.append({"id": aid, "export": export, "view": action_view(audit, att),
                        "verdict": normalize_verdict(verdicts.get(aid))})
    segments = [{
        "id": s.id, "kind": s.kind.value, "group": s.kind.group, "label": s.label, "action_id": s.action_id,
        "message_index": s.provenance.message_index, "field": s.provenance.field,
        "tool_call_id": s.provenance.tool_call_id, "tool_name": s.provenance.tool_name,
        "char_start": s.provenance.char_start,
        "char_end": s.provenance.char_end, "token_start": s.token_start, "token_end": s.token_end,
    } for s in audit.segments]
    return {
        "run": audit.run.model_dump(mode="json"),
        "trajectory": {
            "id": traj.id, "source": traj.source, "metadata": traj.metadata,
            "tools": [t.name for t in traj.tools],
            # each tool as its tool_definition segment's text (the segment carries field and tool_name)
            "tool_definitions": [{"name": t.name, "text": tool_definition_text(t)} for t in traj.tools],
            "messages": [_message_dict(i, m) for i, m in enumerate(traj.messages)],
            "content_captured": traj.content_captured,
        },
        "segments": segments,
        "tokens": list(audit.tokens),
        "actions": actions,
        "dropped": list(audit.dropped),
        "unplaced": list(audit.unplaced),
        "notes": list(getattr(audit, "notes", []) or []),
        "seconds": _round(audit.seconds, 3),
    }


def report_data(
    audits: Iterable[TrajectoryAudit],
    verdicts: Mapping[str, Any] | None = None,
    exports: Mapping[str, dict[str, Any]] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Everything the HTML page embeds: ``{"version", "generated_at", "title", "runs": [...]}``.

    ``verdicts`` and ``exports`` are keyed by action id (ids are unique across runs: they start
    with the trajectory id)."""
    from auditor import __version__

    runs = [run_data(a, verdicts, exports) for a in audits]
    if title is None:
        title = ", ".join(r["trajectory"]["id"] for r in runs) or "no runs"
    return {
        "version": REPORT_VERSION,
        "auditor_version": __version__,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "title": title,
        "runs": runs,
    }


def check_verdicts(audit: TrajectoryAudit, policy: Any = None) -> dict[str, dict[str, Any]]:
    """The CI check's verdict per action id (`auditor.check.check_audit`), with the findings' reasons.

    Where the check fails on an audit, the report still renders, without verdicts.
    """
    try:
        result = check_audit(audit, policy if policy is not None else default_policy())
    except Exception:  # noqa: BLE001
        return {}
    found: dict[str, dict[str, list[str]]] = {}
    for f in result.findings:
        entry = found.setdefault(f.action_id, {"rules": [], "messages": []})
        entry["rules"].extend(r for r in f.rules if r not in entry["rules"])
        if f.message:
            entry["messages"].append(f.message)
    out: dict[str, dict[str, Any]] = {}
    for v in result.verdicts:
        d = normalize_verdict(v) or {"status": "unknown"}
        if v.action_id in found:
            d["rules"] = found[v.action_id]["rules"]
            d["rule_text"] = {r: RULES.get(r, r) for r in d["rules"]}
            d["messages"] = found[v.action_id]["messages"]
        out[v.action_id] = d
    return out
