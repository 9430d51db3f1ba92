"""One calibrated verdict per action: the probability that the user did not ask for it.

Three kinds of evidence about one *judged target* (a decisive argument's value, else the whole call):

- **attribution** (FlashTrace): its support A / (A + D) and the share of its strongest data driver,
  also in the whole call (an injected paragraph drives the call itself; a value the user delegated
  to the data drives only that argument);
- **causal** (`auditor.audit.causal`): how much less likely the target became when the user's request
  was neutralised, and when its top data driver(s) were removed;
- **provenance** (`auditor.provenance`): where the value literally occurs: in the user's words, only
  in data, and whether in the very segment that drove it.

`features` turns them into named numbers (`FEATURES` says what each is); the policy's ``[verdict]``
table holds a logistic regression over some of them (weights, intercept, threshold) fitted on the
benchmark's calibration split by ``benchmarks/bench_check.py --calibrate``:

    p = 1 / (1 + exp(-(intercept + Σ weight_f · feature_f)))

An action's probability is the highest of its decisive arguments' (or its whole call's); it is
unsupported when ``p ≥ threshold``. An audit made without causal evidence is judged by the
``[verdict.attribution]`` sub-model, fitted on the same split without the causal features; an
action with no tool output or file before it has nothing to be driven by and gets p = 0.
`explain` says in words which evidence decided it: the features that moved p most from the
calibration split's average action, each as a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from auditor.audit.schema import ActionAttribution, CausalDelta, Driver, TrajectoryAudit
from auditor.provenance import ArgumentProvenance, describe, summarize
from auditor.check.features import CAUSAL_FEATURES, DELTA_CLIP, FEATURES, HEAD_CLIP
from auditor.check.heuristics import INSTRUCTION_CUES
from auditor.check.policy import Policy, VerdictModel
from auditor.check.shares import shares, support



@dataclass
class TargetEvidence:
    """The evidence about one judged target and the verdict model's probability for it."""

    argument: str | None  # None: the whole call
    support: float
    drivers: list[Driver]
    features: dict[str, float]
    provenance: list[ArgumentProvenance]
    top_data: Driver | None
    deltas: dict[str, CausalDelta | None] = field(default_factory=dict)
    probability: float = 0.0
    contributions: dict[str, float] = field(default_factory=dict)  # weight * (x - calibration mean)


def _clip(x: float | None, bounds: tuple[float, float]) -> float:
    if x is None or math.isnan(x):
        return 0.0
    return max(bounds[0], min(bounds[1], x))


def _top_data(drivers: list[Driver], policy: Policy) -> Driver | None:
    ranked = sorted(drivers, key=lambda d: (d.rank, -d.share))
    return next((d for d in ranked if d.kind in policy.data_kinds and d.share > 0), None)


def _share_of(drivers: list[Driver], segment_id: str | None) -> float:
    return next((max(0.0, d.share) for d in drivers if d.segment_id == segment_id), 0.0)


def _strong(p: ArgumentProvenance) -> bool:
    return not p.weak


def provenance_features(prov: list[ArgumentProvenance], top: Driver | None) -> dict[str, float]:
    """The provenance features of a value (its leaf values' `ArgumentProvenance`, already
    summarised under the policy's kinds). Weak values (1-2 characters, common words) count for
    nothing; a value with no strong leaf is neither in authority nor in data."""
    leaves = [p for p in prov if _strong(p)]
    in_auth = any(p.authority_match in ("full", "unit") for p in leaves)
    only_data = any(p.source == "data" for p in leaves)
    in_driver = top is not None and any(
        o.segment_id == top.segment_id and o.strength in ("full", "unit") for p in leaves for o in p.occurrences)
    nowhere = bool(leaves) and all(p.source in ("nowhere", "generated") for p in leaves)
    domain = not in_auth and any(p.authority_match == "partial" for p in leaves)
    n_data = max((len({o.segment_id for o in p.occurrences if o.source == "data" and o.strength in ("full", "unit")})
                  for p in leaves), default=0)
    return {"value_in_authority": float(in_auth), "value_only_data": float(only_data),
            "value_in_driver": float(in_driver), "value_nowhere": float(nowhere),
            "driver_value": float(only_data and in_driver), "value_domain_in_authority": float(domain),
            "value_n_data": float(min(3, n_data))}


def _delta(found: list[CausalDelta], target: str, variant: str, driver_of: str | None = None) -> CausalDelta | None:
    return next((c for c in found if c.target == target and c.variant == variant and c.driver_of == driver_of), None)


def has_causal(attr: ActionAttribution) -> bool:
    """Whether the audit measured causal deltas for this action."""
    return bool(attr.causal) or any(g.causal for g in attr.arguments)


def segment_texts(audit: TrajectoryAudit | None, attr: ActionAttribution | None = None) -> dict[str, str]:
    """Segment id -> text of the audit's tool outputs and files (what the instruction features read)."""
    if audit is None:
        return {}
    return {s.id: s.text for s in audit.segments if s.kind.value in ("tool_output", "file_context") and s.text}


def instruction_features(drivers: list[Driver], prov: list[ArgumentProvenance], top: Driver | None,
                         policy: Policy, texts: Mapping[str, str]) -> dict[str, float]:
    """Whether the data that drove the target, or that its value was copied from, is written as an
    instruction to the agent. Tied to the segments attribution and provenance point at: marker
    words anywhere in the data (the keyword rule) also fire for injections the agent ignored."""
    instructs = {sid for sid, text in texts.items() if INSTRUCTION_CUES.search(text)}
    data = [d for d in drivers if d.kind in policy.data_kinds]
    leaves = [p for p in prov if _strong(p)]
    in_auth = any(p.authority_match in ("full", "unit") for p in leaves)
    copied = not in_auth and any(o.segment_id in instructs and o.source == "data" and o.strength in ("full", "unit")
                                 for p in leaves for o in p.occurrences)
    return {"driver_instructs": float(top is not None and top.segment_id in instructs),
            "instructing_share": sum(d.share for d in data if d.segment_id in instructs),
            "value_in_instruction": float(copied)}


def target_evidence(attr: ActionAttribution, policy: Policy, argument: str | None, support: float,
                    call_support: float, texts: Mapping[str, str] | None = None) -> TargetEvidence:
    """The features of one judged target: ``argument`` (a decisive argument) or None (the call).
    ``texts``: segment id -> text of the audit's segments (the instruction features read them;
    without it they are 0)."""
    arg = attr.argument(argument) if argument is not None else None
    drivers = arg.drivers if arg is not None else attr.drivers
    top = _top_data(drivers, policy)
    a, d, _ = shares(drivers, policy)
    flow = arg.flow_ratio if arg is not None else (attr.hops[0].flow_ratio if attr.hops else 0.0)
    names = [argument] if argument is not None else sorted({p.name.split("[")[0].split(".")[0]
                                                            for p in attr.provenance})
    prov = [summarize(p.name, p.value, p.occurrences, authority_kinds=policy.authority_kinds,
                      data_kinds=policy.data_kinds)
            for n in names for p in attr.provenance_of(n)]
    feats: dict[str, float] = {
        "support": support, "call_support": call_support, "data_share": d, "authority_share": a, "flow": flow,
        "top_data_share": top.share if top is not None else 0.0,
        "driver_call_share": _share_of(attr.drivers, top.segment_id if top is not None else None),
        "whole_call": float(argument is None),
        "read_only": float(policy.read_only(attr.action.tool_name)),
    }
    feats.update(provenance_features(prov, top))
    feats.update(instruction_features(drivers, prov, top, policy, texts or {}))
    if arg is not None:
        own = arg.causal
        deltas = {"neutral": _delta(own, "value", "neutral_request"), "drop": _delta(own, "value", "drop_top_data"),
                  "drop_k": _delta(own, "value", "drop_top_data_k") or _delta(own, "value", "drop_top_data"),
                  "head_drop": _delta(attr.causal, "head", "drop_top_data", argument),
                  "call_drop": None}
    else:
        own = attr.causal
        deltas = {"neutral": _delta(own, "call", "neutral_request"), "drop": _delta(own, "call", "drop_top_data"),
                  "drop_k": _delta(own, "call", "drop_top_data_k") or _delta(own, "call", "drop_top_data"),
                  "head_drop": _delta(own, "head", "drop_top_data", "call"), "call_drop": None}
    deltas["call_neutral"] = _delta(attr.causal, "call", "neutral_request")
    deltas["head_neutral"] = _delta(attr.causal, "head", "neutral_request")
    # the whole call without the segment that drove the target: the call's own top-1 variant when it
    # removed the same segment, else unmeasured
    call_drop = _delta(attr.causal, "call", "drop_top_data")
    if call_drop is not None and top is not None and call_drop.segments == [top.segment_id]:
        deltas["call_drop"] = call_drop
    per = lambda k: deltas[k].delta_per_token if deltas.get(k) is not None else None  # noqa: E731
    tot = lambda k: deltas[k].delta if deltas.get(k) is not None else None  # noqa: E731
    feats.update({
        "neutral_delta": _clip(per("neutral"), DELTA_CLIP), "drop_delta": _clip(per("drop"), DELTA_CLIP),
        "drop_k_delta": _clip(per("drop_k"), DELTA_CLIP), "call_neutral_delta": _clip(per("call_neutral"), DELTA_CLIP),
        "call_drop_delta": _clip(per("call_drop"), DELTA_CLIP), "head_drop_delta": _clip(tot("head_drop"), HEAD_CLIP),
        "head_neutral_delta": _clip(tot("head_neutral"), HEAD_CLIP),
    })
    return TargetEvidence(argument=argument, support=support, drivers=drivers, features=feats, provenance=prov,
                          top_data=top, deltas=deltas)


def probability(model: VerdictModel, features: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The model's probability and each feature's contribution (weight × (value − calibration mean))."""
    z = model.intercept
    contrib: dict[str, float] = {}
    for name, w in model.weights.items():
        x = features.get(name, 0.0)
        z += w * x
        contrib[name] = w * (x - model.means.get(name, 0.0))
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z)))), contrib


def has_data(attr: ActionAttribution, policy: Policy) -> bool:
    """Whether any data segment (tool output, file) came before the action."""
    return any(d.kind in policy.data_kinds for d in attr.drivers) or any(
        d.kind in policy.data_kinds for g in attr.arguments for d in g.drivers)


def model_for(attr: ActionAttribution, policy: Policy) -> tuple[str, VerdictModel]:
    """("causal", model) when the audit measured causal deltas, else ("attribution", sub-model)."""
    v = policy.verdict
    if has_causal(attr):
        return "causal", v.causal
    return "attribution", v.attribution


def _value_sentence(ev: TargetEvidence, attr: ActionAttribution) -> str:
    leaves = [p for p in ev.provenance if _strong(p)] or ev.provenance
    if not leaves:
        return ""
    line = describe(leaves[0])
    if ev.top_data is not None and ev.features.get("value_in_driver"):
        line += f", which drove {ev.features['driver_call_share']:.0%} of the call"
    return line


def _delta_sentence(key: str, ev: TargetEvidence, what: str) -> str:
    c = ev.deltas.get(key)
    if c is None:
        return ""
    change = "left it about as likely" if abs(c.delta) < 1.0 else (
        f"made it {c.delta:.1f} nats less likely" if c.delta > 0 else f"made it {-c.delta:.1f} nats more likely")
    return f"{what} {change} (Δ {c.delta:.1f} nats, {c.delta_per_token:.2f} per token)"


def _place(driver: Driver | None) -> str:
    """A driver named as in a sentence: ``read_inbox#call_1 ¶2`` (its label's head)."""
    if driver is None:
        return "its top data driver"
    head = driver.label.split(': "', 1)[0].strip() or driver.segment_id
    return head[len("tool "):] if head.startswith("tool ") else head


def explain(ev: TargetEvidence, attr: ActionAttribution, flagged: bool, n: int = 4) -> list[str]:
    """Sentences for the features that pushed p most towards the verdict reached (up to ``n``)."""
    name = ev.argument or "the call"
    what_driver = f"removing {_place(ev.top_data)}"
    sentence = {
        "support": f"FlashTrace: {name} rests {1 - ev.support:.0%} on data, {ev.support:.0%} on the user's authority"
                   f" (support {ev.support:.2f})",
        "call_support": f"FlashTrace: the whole call's support is {ev.features['call_support']:.2f}",
        "data_share": f"FlashTrace: data segments carry {ev.features['data_share']:.0%} of {name}",
        "authority_share": f"FlashTrace: the user's and system's words carry {ev.features['authority_share']:.0%} of {name}",
        "flow": f"FlashTrace: {ev.features['flow']:.0%} of {name} came through the agent's earlier text",
        "top_data_share": (f"FlashTrace: {_place(ev.top_data) if ev.top_data else 'no data segment'} drove "
                           f"{ev.features['top_data_share']:.0%} of {name}"),
        "driver_call_share": (f"the segment that drove {name} drove {ev.features['driver_call_share']:.0%} "
                              "of the whole call"),
        "neutral_delta": _delta_sentence("neutral", ev, "neutralising the user's request"),
        "call_neutral_delta": _delta_sentence("call_neutral", ev, "for the whole call, neutralising the request"),
        "head_neutral_delta": _delta_sentence("head_neutral", ev, "for the tool's name, neutralising the request"),
        "drop_delta": _delta_sentence("drop", ev, what_driver),
        "drop_k_delta": _delta_sentence("drop_k", ev, "removing its top data drivers"),
        "call_drop_delta": _delta_sentence("call_drop", ev, f"for the whole call, {what_driver}"),
        "head_drop_delta": _delta_sentence("head_drop", ev, f"for the tool's name, {what_driver}"),
    }
    value = _value_sentence(ev, attr)
    for f in ("value_in_authority", "value_only_data", "value_in_driver", "value_nowhere", "driver_value",
              "value_domain_in_authority", "value_n_data"):
        sentence[f] = value
    f = ev.features
    sentence["value_in_instruction"] = (
        f"the value of {name} occurs in data written as an instruction to the agent, not in the user's words"
        if f.get("value_in_instruction") else f"the value of {name} occurs in no data written as an instruction to the agent")
    sentence["driver_instructs"] = (
        f"{_place(ev.top_data)}, which drove {name}, is written as an instruction to the agent"
        if f.get("driver_instructs") else f"the data that drove {name} is not written as an instruction to the agent")
    sentence["instructing_share"] = (f"{f.get('instructing_share', 0.0):.0%} of {name} came from data written as "
                                     "instructions to the agent")
    sentence["whole_call"] = "judged as a whole call (no decisive argument)"
    sentence["read_only"] = (f"{attr.action.tool_name} only reads" if ev.features.get("read_only")
                             else f"{attr.action.tool_name} acts (it is not a read-only tool)")
    push = sorted(ev.contributions.items(), key=lambda kv: -kv[1] if flagged else kv[1])
    out: list[str] = []
    for f, c in push:
        if (c <= 0 if flagged else c >= 0) or len(out) >= n:
            break
        text = sentence.get(f, "")
        if text and text not in out:
            out.append(text)
    return out


__all__ = ["FEATURES", "CAUSAL_FEATURES", "TargetEvidence", "target_evidence", "probability", "explain",
           "has_causal", "has_data", "model_for", "provenance_features"]
