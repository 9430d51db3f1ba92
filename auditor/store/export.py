"""One JSON-able dict per action: what `audit show` prints and the HTML report renders.

    >>> from auditor.store import Store, action_export
    >>> with Store(read_only=True) as store:
    ...     data = action_export(store, "injected-inbox-forward:a1")

`audit_action_export(audit, action_id)` does the same from a `TrajectoryAudit` in memory (no
store needed). The dict's layout (``EXPORT_VERSION``):

- ``run``: RunInfo (model, method, hops, version, ...); ``trajectory_id``
- ``action``: the Action plus ``summary``
- ``authority_share`` / ``data_share``: summed shares of authority / data segment kinds, and
  ``support`` = A / (A + D) (1.0 when both are 0), the number `unsupported_actions` and
  `audit check` compare with the threshold
- ``drivers``: every driver, ranked, with its segment's text, provenance and token range
- ``segments``: the ``top`` strongest drivers with their tokens: ``[{"i", "text", "score"}]``,
  ``max_score`` and ``strongest`` (positions of the strongest tokens, best first); ``display``
  is the token as text (byte-level BPE and SentencePiece markers decoded, see `display_token`)
- ``hops``: per-hop flow (``hop``, ``flow_ratio``, ``by_kind``)
- ``arguments``: per argument of a tool call (or an edit's ``path``/``search``/``replace``), in call
  order: ``name``, ``value`` (the argument's value in the action), ``token_start``/``token_end``,
  ``support`` (A / (A + D) of the argument's own drivers under `default_policy`'s kinds and
  weighting, None without such mass, as `audit check` computes it), ``authority_share`` /
  ``data_share``, ``flow_ratio``, ``decisive`` (the default policy judges the action by it) and
  ``drivers``: its ``top`` strongest drivers (at least one), shaped like ``drivers``. Empty when
  the action has no arguments explained (final answers, audits from before per-argument replay).
- ``output``: the action's own rendered text (tokens ``[output_start, output_end)``)
- ``dropped`` / ``unplaced``: what could not be attributed, in words
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditor.audit.schema import ActionAttribution, Driver, TrajectoryAudit
from auditor.trajectory import AUTHORITY_KINDS, DATA_KINDS, Action, ActionKind, Segment

if TYPE_CHECKING:  # pragma: no cover
    from auditor.check.policy import Policy
    from auditor.store.store import Store

EXPORT_VERSION = 1


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
                  top: int = 3, strongest: int = 12) -> dict[str, Any]:
    """The export of ``action_id`` as recorded in ``store`` (newest run unless ``run_id``)."""
    audit = store.action_view(action_id, run_id=run_id, trajectory_id=trajectory_id)
    return audit_action_export(audit, action_id, top=top, strongest=strongest)


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
    }


_POLICY: "Policy | None" = None


def _default_policy() -> "Policy":
    """`auditor.check.default_policy()`, parsed once (imported lazily: the check imports the store's
    neighbours, not the other way round)."""
    global _POLICY
    if _POLICY is None:
        from auditor.check.policy import default_policy

        _POLICY = default_policy()
    return _POLICY


def _argument_value(action: Action, name: str) -> Any:
    """The value of argument ``name`` in the action: a tool call's ``arguments[name]``, or an edit's
    path / search / replace text; None when the action has no such argument."""
    if action.kind is ActionKind.code_edit and action.edit is not None and name in ("path", "search", "replace"):
        return getattr(action.edit, name)
    return action.arguments.get(name)


def argument_exports(audit: TrajectoryAudit, att: ActionAttribution, top: int = 3) -> list[dict[str, Any]]:
    """The ``arguments`` entry of the export (see the module docstring): each explained argument
    with its value, support under the default policy, whether it is decisive, and its top drivers."""
    if not att.arguments:
        return []
    from auditor.check.scoring import support_of

    policy = _default_policy()
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
        })
    return out


def audit_action_export(audit: TrajectoryAudit, action_id: str, top: int = 3, strongest: int = 12) -> dict[str, Any]:
    """The export of one action of an in-memory `TrajectoryAudit`."""
    try:
        att = next(a for a in audit.actions if a.action.id == action_id)
    except StopIteration:
        raise KeyError(f"action {action_id!r} is not in this audit") from None
    segs = {s.id: s for s in audit.segments}
    scores = att.token_scores
    tokens = audit.tokens

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

    authority, data = att.share_of(AUTHORITY_KINDS), att.share_of(DATA_KINDS)
    action = att.action.model_dump(mode="json")
    action["summary"] = att.action.summary
    return {
        "version": EXPORT_VERSION,
        "run": audit.run.model_dump(mode="json"),
        "trajectory_id": audit.trajectory.id,
        "action": action,
        "authority_share": authority,
        "data_share": data,
        "support": authority / (authority + data) if authority + data > 0 else 1.0,
        "drivers": drivers,
        "segments": top_segments,
        "hops": [h.model_dump(mode="json") for h in att.hops],
        "arguments": argument_exports(audit, att, top=top),
        "context_end": att.context_end,
        "output": {
            "start": att.output_start, "end": att.output_end,
            "text": "".join(display_token(t) for t in tokens[att.output_start:att.output_end]),
        },
        "dropped": list(audit.dropped),
        "unplaced": list(audit.unplaced),
        "seconds": att.seconds,
    }
