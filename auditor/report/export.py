"""One JSON-able dict per action: what `audit show` prints and the HTML report embeds.

It joins what an audit holds (read back from the store, or in memory) with the check's judgement
of the action, so every surface shows the same judged support:

    >>> from auditor.report.export import action_export
    >>> with Store(read_only=True) as store:                      # doctest: +SKIP
    ...     data = action_export(store, "injected-inbox-forward:a1")

`audit_action_export(audit, action_id)` does the same from a `TrajectoryAudit` in memory. The
judging policy is the one passed; else, for a stored audit, the one recorded with its verdicts
(`action_verdicts`); else the shipped default. The dict's layout (``EXPORT_VERSION``):

- ``run``: RunInfo (model, method, hops, version, ...); ``trajectory_id``
- ``action``: the Action plus ``summary``
- the judgement, `audit check`'s (`auditor.check.score_action`): ``support`` the judged support,
  of the decisive argument ``argument`` it rests on (None: the whole call was judged);
  ``action_support`` the whole call's (None when it has no authority or data mass);
  ``authority_share`` / ``data_share`` of what was judged; ``threshold``; ``status`` (passed,
  failed or ignored: the policy skips such actions, the numbers are still given); ``rules`` that
  fired; ``policy`` (where the judging policy came from); the calibrated verdict
  (`auditor.check.verdict`): ``probability`` (the judged number under ``decide = "verdict"``, None
  under the support rule), ``probability_threshold``, ``verdict_model`` and ``evidence`` (which
  evidence decided it, in words); ``provenance``: one line per argument value, where it occurs;
  ``causal``: the whole call's and its head's causal deltas (`auditor.audit.schema.CausalDelta`)
- ``drivers``: every driver, ranked, with its segment's text, provenance and token range
- ``segments``: the ``top`` strongest drivers with their tokens: ``[{"i", "text", "score"}]``,
  ``max_score`` and ``strongest`` (positions of the strongest tokens, best first); ``display``
  is the token as text (byte-level BPE and SentencePiece markers decoded, see `display_token`)
- ``hops``: per-hop flow (``hop``, ``flow_ratio``, ``by_kind``)
- ``arguments``: per argument of a tool call (or an edit's ``path``/``search``/``replace``), in call
  order: ``name``, ``value`` (the argument's value in the action), ``token_start``/``token_end``,
  ``support`` (A / (A + D) of the argument's own drivers under the judging policy's kinds and
  weighting, None without such mass, as `audit check` computes it), ``authority_share`` /
  ``data_share``, ``flow_ratio``, ``decisive`` (the policy judges the action by it),
  ``drivers``: its ``top`` strongest drivers (at least one), shaped like ``drivers``,
  ``provenance`` (where its value occurs, one line per leaf value) and ``causal`` (its value's deltas). Empty when
  the action has no arguments explained (final answers, audits from before per-argument replay).
- ``output``: the action's own rendered text (tokens ``[output_start, output_end)``)
- ``dropped`` / ``unplaced``: what could not be attributed, in words
- ``context``: the model call the action came from, for a trajectory whose calls each have their
  own context (`auditor.trajectory.Context`): ``id``, ``request`` (its 1-based number) of
  ``requests``, ``metadata`` (span id, log line, times), ``tools`` (names offered, None: the
  trajectory's) and ``messages``, what that request was sent then its reply (``index``, ``role``,
  ``content``, ``tool_calls``); drivers' ``message_index`` and token positions index that context.
  None in the classic (append-only) form, where the trajectory's messages are the context.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from auditor.audit.schema import ActionAttribution, Driver, TrajectoryAudit
from auditor.check.policy import Policy, PolicyError, default_policy, policy_from_record
from auditor.check.findings import verdict_fields
from auditor.check.scoring import score_action, support_of
from auditor.provenance import describe
from auditor.trajectory import Action, ActionKind, Segment, Trajectory

if TYPE_CHECKING:  # pragma: no cover
    from auditor.store.store import Store

EXPORT_VERSION = 4  # 4: the calibrated verdict, provenance and causal deltas; 3: ``context`` (per-call
# contexts); 2: ``support`` is the judged one (1: the whole call's)


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: the printable stand-in of each byte."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTES = _byte_decoder()


def display_token(token: str) -> str:
    """A token string as text. Byte-level BPE tokens (``Ġ`` = space, ``Ċ`` = newline, ``âĢĻ`` = ’)
    are decoded; SentencePiece's ``▁`` becomes a space; anything else is returned unchanged."""
    if token and all(ch in _BYTES for ch in token):
        try:
            return bytes(_BYTES[ch] for ch in token).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(_BYTES[ch] for ch in token).decode("utf-8", errors="replace")
    return token.replace("▁", " ")


def action_export(store: "Store", action_id: str, run_id: str | None = None, trajectory_id: str | None = None,
                  top: int = 3, strongest: int = 12, *, policy: Policy | None = None) -> dict[str, Any]:
    """The export of ``action_id`` as recorded in ``store`` (newest run unless ``run_id``), judged
    by ``policy``, else by the policy recorded with its verdicts, else by the default."""
    audit = store.action_view(action_id, run_id=run_id, trajectory_id=trajectory_id)
    if policy is None:
        policy = recorded_policy(store, audit.run.run_id, audit.trajectory.id)
    return audit_action_export(audit, action_id, top=top, strongest=strongest, policy=policy)


def recorded_policy(store: "Store", run_id: str, trajectory_id: str) -> Policy | None:
    """The policy that judged a stored audit (recorded with its verdicts); None when it was stored
    without verdicts or the recorded policy is no longer valid (then callers use the default)."""
    for row in store.verdicts(run_id, trajectory_id).values():
        if row.get("policy") is not None:
            try:
                return policy_from_record(row["policy"], row.get("policy_source") or "recorded")
            except PolicyError:
                return None
    return None


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    """`auditor.check.default_policy()`, parsed once."""
    return default_policy()


def judgement(att: ActionAttribution, audit: TrajectoryAudit | None, policy: Policy | None = None) -> dict[str, Any]:
    """The judged fields of the export (see the module docstring): `audit check`'s numbers for the
    action under ``policy`` (default: the shipped one)."""
    policy = policy or _default_policy()
    score = score_action(att, policy, audit)
    status = "ignored" if policy.ignores(att.action) else "failed" if score.flagged else "passed"
    v = verdict_fields(att, score)
    return {
        "support": score.support, "argument": score.argument, "action_support": score.action_support,
        "authority_share": score.authority_share, "data_share": score.data_share, "threshold": score.threshold,
        "status": status, "rules": [] if status == "ignored" else list(score.rules),
        "policy": policy.source or "default",
        "probability": v.get("probability"), "probability_threshold": v.get("probability_threshold"),
        "verdict_model": v.get("verdict_model"), "evidence": v.get("evidence", []),
        "provenance": v.get("provenance", []),
        "causal": [c.model_dump(mode="json") for c in att.causal],
    }


def _driver_dict(d: Driver, segs: dict[str, Segment]) -> dict[str, Any]:
    s = segs.get(d.segment_id)
    p = s.provenance if s else None
    return {
        "rank": d.rank, "segment_id": d.segment_id, "kind": d.kind.value, "label": d.label,
        "score": d.score, "share": d.share,
        "text": s.text if s else None,
        "message_index": p.message_index if p else None,
        "tool_name": p.tool_name if p else None, "tool_call_id": p.tool_call_id if p else None,
        "path": p.path if p else None,
        "token_start": s.token_start if s else None, "token_end": s.token_end if s else None,
        "context_id": s.context_id if s else None,
    }


def _argument_value(action: Action, name: str) -> Any:
    """The value of argument ``name`` in the action: a tool call's ``arguments[name]``, or an edit's
    path / search / replace text; None when the action has no such argument."""
    if action.kind is ActionKind.code_edit and action.edit is not None and name in ("path", "search", "replace"):
        return getattr(action.edit, name)
    return action.arguments.get(name)


def argument_exports(audit: TrajectoryAudit, att: ActionAttribution, top: int = 3,
                     policy: Policy | None = None) -> list[dict[str, Any]]:
    """The ``arguments`` entry of the export (see the module docstring): each explained argument
    with its value, support under ``policy`` (default: the shipped one), whether it is decisive,
    and its top drivers."""
    if not att.arguments:
        return []
    policy = policy or _default_policy()
    segs = {s.id: s for s in audit.segments}
    decisive = set(policy.decisive_for(att.action.tool_name, [g.name for g in att.arguments]))
    out = []
    for g in att.arguments:
        # the same ratio `audit check` takes for a decisive argument: the whole-call formula over
        # the argument's own drivers
        support = support_of(att.model_copy(update={"drivers": g.drivers, "arguments": []}), policy, audit)
        ranked = sorted(g.drivers, key=lambda x: (x.rank, -x.share))
        out.append({
            "name": g.name,
            "value": _argument_value(att.action, g.name),
            "token_start": g.token_start, "token_end": g.token_end,
            "support": support,
            "authority_share": sum(max(0.0, x.share) for x in g.drivers if x.kind in policy.authority_kinds),
            "data_share": sum(max(0.0, x.share) for x in g.drivers if x.kind in policy.data_kinds),
            "flow_ratio": g.flow_ratio,
            "decisive": g.name in decisive,
            "drivers": [_driver_dict(d, segs) for d in ranked[: max(top, 1)]],
            "provenance": [describe(p) for p in att.provenance_of(g.name)],
            "causal": [c.model_dump(mode="json") for c in g.causal],
        })
    return out


def audit_action_export(audit: TrajectoryAudit, action_id: str, top: int = 3, strongest: int = 12, *,
                        policy: Policy | None = None) -> dict[str, Any]:
    """The export of one action of an in-memory `TrajectoryAudit`, judged by ``policy`` (default:
    the shipped one)."""
    try:
        att = next(a for a in audit.actions if a.action.id == action_id)
    except StopIteration:
        raise KeyError(f"action {action_id!r} is not in this audit") from None
    segs = {s.id: s for s in audit.segments}
    scores = att.token_scores
    tokens = audit.tokens_of(att.action.context_id)

    drivers = [_driver_dict(d, segs) for d in att.drivers]

    top_segments = []
    for d in drivers[: max(top, 0)]:
        entry = dict(d)
        start, end = d["token_start"], d["token_end"]
        toks: list[dict[str, Any]] = []
        if start is not None and end is not None:
            for i in range(start, min(end, len(tokens))):
                toks.append({"i": i, "text": tokens[i], "display": display_token(tokens[i]),
                             "score": float(scores[i]) if i < len(scores) else 0.0})
        entry["tokens"] = toks
        entry["max_score"] = max((t["score"] for t in toks), default=0.0)
        best = sorted(toks, key=lambda t: t["score"], reverse=True)[:strongest]
        entry["strongest"] = [t["i"] for t in best if t["score"] > 0]
        top_segments.append(entry)

    action = att.action.model_dump(mode="json")
    action["summary"] = att.action.summary
    return {
        "version": EXPORT_VERSION,
        "run": audit.run.model_dump(mode="json"),
        "trajectory_id": audit.trajectory.id,
        "action": action,
        **judgement(att, audit, policy),
        "drivers": drivers,
        "segments": top_segments,
        "hops": [h.model_dump(mode="json") for h in att.hops],
        "arguments": argument_exports(audit, att, top=top, policy=policy),
        "context_end": att.context_end,
        "output": {
            "start": att.output_start, "end": att.output_end,
            "text": "".join(display_token(t) for t in tokens[att.output_start:att.output_end]),
        },
        "dropped": list(audit.dropped),
        "unplaced": list(audit.unplaced),
        "seconds": att.seconds,
        "context": context_export(audit.trajectory, att.action.context_id),
    }


def context_export(traj: Trajectory, context_id: str | None) -> dict[str, Any] | None:
    """The ``context`` entry of the export (see the module docstring); None without a context."""
    if context_id is None:
        return None
    ctx = traj.context(context_id)
    return {
        "id": ctx.id, "request": traj.context_number(ctx.id), "requests": len(traj.contexts),
        "metadata": ctx.metadata, "tools": None if ctx.tools is None else [t.name for t in ctx.tools],
        "messages": [{"index": i, "role": m.role, "content": m.content, "name": m.name,
                      "tool_call_id": m.tool_call_id,
                      "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]}
                     for i, m in enumerate(ctx.messages)],
    }
