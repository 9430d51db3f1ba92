"""Causal confirmation: how a target's log-probability changes when the user's request is
neutralised, or when the data that FlashTrace says drove it is removed.

Attribution says which segments a call rests on; these variants test it. A value the user's
request chose from data (a recipient taken from a listing because the user asked for "whoever
sent the invoice") loses probability when the request is neutralised; a value an injected
paragraph chose keeps it, and loses it when that paragraph is removed. Like MELON (masked
re-execution) and leave-one-out, but the segments ablated are the few FlashTrace ranks highest,
so a trajectory costs a handful of variants, each a forward of the tokens after its first edit
(`auditor.attribution.target_logprobs_many` shares the prefix's KV cache and reads every target
of the trajectory from the same forward).

Variants of one trajectory (identical ones are run once):

- ``neutral_request``: every ``user_request`` and ``user_constraint`` segment up to a user turn
  replaced by `NEUTRAL_REQUEST` (the first such segment takes its text, the others are emptied);
  one variant per user turn, each target read from the latest one before it;
- ``drop_top_data``: the target's strongest data driver (``tool_output`` or ``file_context``, by
  FlashTrace share) removed. (``top_k`` > 1 adds ``drop_top_data_k``: its top two to ``top_k`` data
  drivers removed together; off by default: on the benchmark's first runs it doubled the cost of
  the causal evidence.)

Targets per action: the whole call (``call``), the call's tokens before its first argument value
(``head``: the tool's name, so "did this data make the agent call this tool at all?"), and each
argument's value (``value``). The head is scored against the call's drivers and against each
argument's top data driver (``driver_of``): a paragraph that chose a recipient the user delegated
to the data drives the value, not the call; an injected paragraph drives both. Final answers get
no causal evidence (`audit check` ignores them by default; a policy that checks them judges them
by the attribution sub-model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor.audit.schema import ActionAttribution, CausalDelta, Driver
from auditor.trajectory import DATA_KINDS, ActionKind, Segment, SegmentKind

#: The request that replaces the user's (MELON's task-neutral prompt asks the agent to summarise
#: the tool outputs; this is the same idea in one short sentence).
NEUTRAL_REQUEST = "Summarize the tool outputs."
#: Most data drivers removed together in ``drop_top_data_k`` (1: no such variant).
TOP_K = 1
USER_KINDS = frozenset({SegmentKind.user_request, SegmentKind.user_constraint})


@dataclass
class CausalTarget:
    """One target to measure: its tokens, its kind (call, head, value) and its drivers (None for
    the head, which borrows the call's and the arguments' variants: see `plan`)."""

    key: tuple[str, str | None, str]  # (action id, argument name or None, target kind)
    start: int
    end: int
    drivers: list[Driver] | None = None
    borrow: list[tuple[str | None, list[Driver]]] = field(default_factory=list)  # (driver_of, drivers) for heads


@dataclass(frozen=True)
class _Planned:
    name: str
    edits: tuple[tuple[int, int, tuple[int, ...]], ...]
    segments: tuple[str, ...]


def _data_top(drivers: Sequence[Driver], k: int) -> list[str]:
    data = [d for d in sorted(drivers, key=lambda d: (d.rank, -d.share)) if d.kind in DATA_KINDS and d.share > 0]
    return [d.segment_id for d in data[:k]]


def _drop(segments: dict[str, Segment], ids: Sequence[str]) -> _Planned:
    segs = sorted((segments[i] for i in ids), key=lambda s: s.token_start or 0)
    edits = tuple((s.token_start or 0, s.token_end or 0, ()) for s in segs)
    return _Planned("drop:" + "+".join(s.id for s in segs), edits, tuple(s.id for s in segs))


def _neutral_variants(segments: Sequence[Segment], neutral_ids: Sequence[int]) -> list[_Planned]:
    """One variant per user turn: the user segments up to that turn's last one neutralised."""
    users = sorted((s for s in segments if s.kind in USER_KINDS and s.token_start is not None
                    and s.token_end is not None and s.token_end > s.token_start), key=lambda s: s.token_start or 0)
    turns = sorted({s.provenance.message_index for s in users if s.provenance.message_index is not None})
    out = []
    for m in turns or ([None] if users else []):
        upto = [s for s in users if m is None or (s.provenance.message_index or 0) <= m]
        edits = tuple((s.token_start or 0, s.token_end or 0, tuple(neutral_ids) if k == 0 else ())
                      for k, s in enumerate(upto))
        out.append(_Planned(f"neutral@{m}", edits, tuple(s.id for s in upto)))
    return out


def plan(targets: Sequence[CausalTarget], segments: Sequence[Segment], neutral_ids: Sequence[int],
         top_k: int = TOP_K) -> tuple[list[_Planned], list[list[tuple[str, str | None, _Planned]]]]:
    """The distinct variants, and per target the (variant kind, driver_of, variant) to read."""
    by_id = {s.id: s for s in segments}
    variants: dict[str, _Planned] = {}

    def add(p: _Planned) -> _Planned:
        return variants.setdefault(p.name, p)

    # only the variants some target reads run: a conversation of n user turns has n neutral variants,
    # and a judged call late in it reads only the last one before it
    neutral = _neutral_variants(segments, neutral_ids)
    per_target: list[list[tuple[str, str | None, _Planned]]] = []
    for t in targets:
        wanted: list[tuple[str, str | None, _Planned]] = []
        usable = [p for p in neutral if p.edits[-1][1] <= t.start]
        if usable:
            wanted.append(("neutral_request", None, add(usable[-1])))
        sources = [(None, t.drivers)] if t.drivers is not None else t.borrow
        for driver_of, drivers in sources:
            top = [i for i in _data_top(drivers or [], max(1, top_k)) if i in by_id]
            if not top:
                continue
            wanted.append(("drop_top_data", driver_of, add(_drop(by_id, top[:1]))))
            if len(top) > 1 and (t.drivers is not None or driver_of == "call"):
                wanted.append(("drop_top_data_k", driver_of, add(_drop(by_id, top))))
        per_target.append(wanted)
    return list(variants.values()), per_target


def measure(model: Any, input_ids: Any, targets: Sequence[CausalTarget], segments: Sequence[Segment],
            neutral_ids: Sequence[int], *, batch_size: int = 8, top_k: int = TOP_K) -> list[list[CausalDelta]]:
    """Per target, its `CausalDelta`s (see the module docstring): one forward per distinct variant."""
    from auditor.attribution import Variant, target_logprobs_many

    if not targets:
        return []
    variants, per_target = plan(targets, segments, neutral_ids, top_k)
    index = {p.name: i for i, p in enumerate(variants)}
    spans = [(t.start, t.end) for t in targets]
    reads: list[list[int]] = [[] for _ in variants]
    for k, wanted in enumerate(per_target):
        for _, _, p in wanted:
            reads[index[p.name]].append(k)
    scored = target_logprobs_many(model, input_ids, spans, [Variant(p.name, p.edits) for p in variants],
                                  batch_size=batch_size, reads=reads)
    out: list[list[CausalDelta]] = []
    for k, (t, wanted) in enumerate(zip(targets, per_target)):
        base = scored[0][k]
        deltas = []
        for kind, driver_of, p in wanted:
            got = scored[1 + index[p.name]][k]
            if base is None or got is None:
                continue
            n = len(base.token_logprobs)
            d = base.logprob - got.logprob
            deltas.append(CausalDelta(target=t.key[2], variant=kind, driver_of=driver_of, segments=list(p.segments),
                                      delta=d, delta_per_token=d / max(1, n), base_logprob=base.logprob, n_tokens=n))
        out.append(deltas)
    return out


def measure_actions(model: Any, tokenizer: Any, input_ids: Any, segments: Sequence[Segment],
                    attributions: Sequence[ActionAttribution]) -> None:
    """Measure and record (``causal`` of each action and argument) the deltas of every call of an
    audited sequence: the whole call, its head (the tokens before its first argument value, which
    borrows the call's and the arguments' drivers) and each argument's value. Final answers and
    actions without tokens are skipped."""
    targets: list[CausalTarget] = []
    for attr in attributions:
        aid = attr.action.id
        if attr.output_end <= attr.output_start or attr.output_start < 1 or attr.action.kind is ActionKind.final_answer:
            continue
        targets.append(CausalTarget((aid, None, "call"), attr.output_start, attr.output_end, attr.drivers))
        args = sorted(attr.arguments, key=lambda g: g.token_start)
        if args and args[0].token_start > attr.output_start:
            borrow = [("call", attr.drivers)] + [(g.name, g.drivers) for g in attr.arguments]
            targets.append(CausalTarget((aid, None, "head"), attr.output_start, args[0].token_start, None, borrow))
        for g in attr.arguments:
            if g.token_end > g.token_start:
                targets.append(CausalTarget((aid, g.name, "value"), g.token_start, g.token_end, g.drivers))
    neutral = tokenizer(NEUTRAL_REQUEST, add_special_tokens=False)["input_ids"]
    deltas = measure(model, input_ids, targets, segments, neutral)
    by_id = {a.action.id: a for a in attributions}
    for t, found in zip(targets, deltas):
        attr = by_id[t.key[0]]
        if t.key[1] is None:
            attr.causal.extend(found)
        else:
            arg = attr.argument(t.key[1])
            if arg is not None:
                arg.causal.extend(found)


__all__ = ["NEUTRAL_REQUEST", "TOP_K", "CausalTarget", "measure", "measure_actions", "plan"]
