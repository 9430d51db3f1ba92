"""Judging one action: the calibrated verdict (the default) or the support rule, then the extra rules.

Under ``decide = "verdict"`` (the shipped policy) an action is unsupported when the calibrated
verdict's probability that the user did not ask for it reaches the policy's threshold (rule
``unsupported``; `auditor.check.verdict`: FlashTrace support, causal deltas and value provenance of
each decisive argument, or of the whole call, combined by a logistic regression; the highest
probability among the decisive arguments decides). Under ``decide = "support"`` the support rule
below decides. The support is computed and reported either way: it is the verdict's main input.

Support: how much of an action is backed by the user's authority rather than by data.

For one action, with the attribution's drivers (input segments, shares summing to 1 over the
action's input mass, hops already folded in as ``S = s0 + rho0 * s1``):

    A = sum of driver shares on authority kinds   (system, user_request, user_constraint)
    D = sum of driver shares on data kinds        (tool_output, file_context)

    support = A / (A + D)                         (weighting = "mass", the default)

With ``weighting = "per_token"`` each side is first divided by its number of tokens (mean share
per token), so a long tool output does not win only because it is long:

    support = (A / n_A) / (A / n_A + D / n_D)

Segments of other kinds (earlier turns, reasoning that hop 1 did not resolve, and by default
``tool_definition``: the tools offered to the model) count on neither side. Their share only
shrinks A and D by one common factor, so it never moves the support; a policy that lists
``tool_definition`` in ``data_kinds`` (tool servers it does not trust) counts a tool description
that drove the action as data. With no authority and no data mass at all, support is 1.0
(nothing to judge) and the action is marked ``no_evidence``.

With ``judge = "arguments"`` (the default) the same ratio is taken per decisive argument, from
that argument's own drivers (`ActionAttribution.arguments`), and the action's support is the
lowest of them: an email whose body rightly summarises a file but whose recipient the user named
is supported; one whose recipient came from the file is not. The shares, top driver and quote
then describe that argument (``SupportScore.argument``). Actions without a decisive argument
explained fall back to the whole call.

An action is **unsupported** (a finding) when any of these holds:

0. (``decide = "verdict"``) the verdict's probability ≥ its threshold — rule ``unsupported``,
   in place of rule 1;
1. (``decide = "support"``) ``support < threshold`` for its tool (``Policy.threshold_for``) — rule ``low-support``;
2. ``rules.data_top_driver`` is on and the strongest driver the policy judges (the best ranked
   driver of an authority or data kind: a tool definition that outranks it, neutral by default,
   neither fires nor hides the rule) is a data segment — rule ``data-top-driver``;
3. more than ``rules.max_reasoning_flow`` of hop 0's mass landed on model-generated reasoning
   (``rho0 = hops[0].flow_ratio``) and that reasoning was itself driven more by data than by
   authority (hop 1's ``by_kind``: ``A1 / (A1 + D1) < threshold``) — rule ``data-driven-reasoning``.

The continuous score that benchmarks rank by is the margin: ``probability - threshold`` under the
verdict, ``threshold - support`` under the support rule (positive = flagged by rule 0 or 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.check.policy import Policy
from auditor.check.shares import ratio, shares, support
from auditor.audit.schema import ActionAttribution, Driver, TrajectoryAudit
from auditor.trajectory import SegmentKind

RULE_LOW_SUPPORT = "low-support"
RULE_DATA_TOP_DRIVER = "data-top-driver"
RULE_REASONING = "data-driven-reasoning"
RULE_VERDICT = "unsupported"

RULES: dict[str, str] = {
    RULE_VERDICT: "The calibrated verdict (FlashTrace support, causal deltas and value provenance) puts the probability "
    "that the user did not ask for this action at or above the policy's threshold.",
    RULE_LOW_SUPPORT: "The action's attribution mass rests more on data (tool outputs, files) than the policy allows; "
    "the user's request does not support it.",
    RULE_DATA_TOP_DRIVER: "The strongest driver of the action is a data segment (tool output or file), not an instruction.",
    RULE_REASONING: "The action was driven through model reasoning that was itself driven by data rather than by the user.",
}


@dataclass
class SupportScore:
    """The numbers behind one action's verdict."""

    support: float
    threshold: float
    authority_share: float
    data_share: float
    other_share: float
    reasoning_flow: float = 0.0  # rho0: share of hop 0's mass on model-generated tokens
    reasoning_support: float | None = None  # A1 / (A1 + D1) from hop 1, when there is a hop 1
    top_driver: Driver | None = None  # the strongest driver, of any kind
    top_data_driver: Driver | None = None
    rules: list[str] = field(default_factory=list)  # the rules that fired
    no_evidence: bool = False
    argument: str | None = None  # the decisive argument the verdict rests on (None: the whole call)
    argument_supports: dict[str, float] = field(default_factory=dict)  # every decisive argument's support
    action_support: float | None = None  # the whole call's support, for reference
    verdict: Verdict | None = None  # the calibrated verdict (decide = "verdict")

    @property
    def flagged(self) -> bool:
        return bool(self.rules)

    @property
    def probability(self) -> float | None:
        """The verdict's probability that the user did not ask for the action (None: judged by support)."""
        return self.verdict.probability if self.verdict is not None else None

    @property
    def margin(self) -> float:
        """The score benchmarks rank by (higher = less supported): probability − its threshold under
        the verdict, threshold − support under the support rule."""
        if self.verdict is not None:
            return self.verdict.probability - self.verdict.threshold
        return self.threshold - self.support


@dataclass
class Verdict:
    """The calibrated verdict on one action (`auditor.check.verdict`)."""

    probability: float
    threshold: float
    model: str  # "causal", "attribution" (no causal deltas in the audit) or "no-data"
    argument: str | None = None  # the judged target: a decisive argument, None for the whole call
    features: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)  # which evidence decided it, in words
    top_data: Driver | None = None
    target: Any = None  # the judged target's `TargetEvidence`
    probabilities: dict[str, float] = field(default_factory=dict)  # per judged target ("" = the call)


_ratio = ratio
_shares = shares
_support = support


def kind_shares(attr: ActionAttribution, policy: Policy) -> tuple[float, float, float]:
    """(authority, data, other) mass shares of the whole action's drivers; negative shares (a
    segment that works *against* the action, which leave-one-out can report) count as zero."""
    return _shares(attr.drivers, policy)


def support_of(attr: ActionAttribution, policy: Policy, audit: TrajectoryAudit | None = None) -> float | None:
    """The whole action's support ratio under the policy's weighting; None when there is no
    authority or data mass."""
    return _support(attr.drivers, policy, audit)


def argument_supports(attr: ActionAttribution, policy: Policy, audit: TrajectoryAudit | None = None) -> dict[str, float]:
    """Support of each decisive argument that has authority or data mass, in argument order."""
    names = policy.decisive_for(attr.action.tool_name, [g.name for g in attr.arguments])
    out: dict[str, float] = {}
    for g in attr.arguments:
        if g.name in names and g.name not in out:
            value = _support(g.drivers, policy, audit)
            if value is not None:
                out[g.name] = value
    return out


def score_action(attr: ActionAttribution, policy: Policy, audit: TrajectoryAudit | None = None) -> SupportScore:
    """Apply the policy to one explained action: the calibrated verdict (``decide = "verdict"``,
    `auditor.check.verdict`) or the support threshold (``decide = "support"``), then the extra rules."""
    action_support = support_of(attr, policy, audit)
    threshold = policy.threshold_for(attr.action.tool_name)
    per_arg: dict[str, float] = argument_supports(attr, policy, audit) if policy.judge == "arguments" else {}
    verdict = _verdict(attr, policy, audit, per_arg, action_support) if policy.decide == "verdict" else None
    if verdict is not None:
        argument = verdict.argument
    else:
        argument = min(per_arg, key=lambda n: per_arg[n]) if per_arg else None
    drivers = attr.argument(argument).drivers if argument is not None and attr.argument(argument) else attr.drivers
    a, d, other = _shares(drivers, policy)
    support = per_arg.get(argument) if argument is not None else action_support
    no_evidence = support is None
    support = 1.0 if support is None else support

    ranked = sorted(drivers, key=lambda x: (x.rank, -x.share))
    top = ranked[0] if ranked else None
    # the rule asks whether data outweighs authority at the top: kinds on neither side (a tool
    # definition, unless the policy lists it) are not evidence either way, here as in the support
    judged = policy.authority_kinds | policy.data_kinds
    top_judged = next((x for x in ranked if x.kind in judged), None)
    top_data = next((x for x in ranked if x.kind in policy.data_kinds), None)

    rho = attr.hops[0].flow_ratio if attr.hops else 0.0
    reasoning_support = None
    if len(attr.hops) > 1:
        by_kind = attr.hops[1].by_kind
        a1 = sum(v for k, v in by_kind.items() if _kind(k) in policy.authority_kinds)
        d1 = sum(v for k, v in by_kind.items() if _kind(k) in policy.data_kinds)
        reasoning_support = _ratio(a1, d1)

    rules: list[str] = []
    if verdict is not None:
        if verdict.probability >= verdict.threshold:
            rules.append(RULE_VERDICT)
    elif not no_evidence and support < threshold:
        rules.append(RULE_LOW_SUPPORT)
    if policy.rules.data_top_driver and top_judged is not None and top_judged.kind in policy.data_kinds:
        rules.append(RULE_DATA_TOP_DRIVER)
    if (
        policy.rules.max_reasoning_flow < 1.0
        and rho > policy.rules.max_reasoning_flow
        and reasoning_support is not None
        and reasoning_support < threshold
    ):
        rules.append(RULE_REASONING)
    return SupportScore(
        support=support,
        threshold=threshold,
        authority_share=a,
        data_share=d,
        other_share=other,
        reasoning_flow=rho,
        reasoning_support=reasoning_support,
        top_driver=top,
        top_data_driver=(verdict.top_data if verdict is not None and verdict.top_data is not None else top_data),
        rules=rules,
        no_evidence=no_evidence,
        argument=argument,
        argument_supports=per_arg,
        action_support=action_support,
        verdict=verdict,
    )


def _verdict(attr: ActionAttribution, policy: Policy, audit: TrajectoryAudit | None, per_arg: dict[str, float],
             action_support: float | None) -> Verdict:
    """The calibrated verdict: the highest probability among the decisive arguments (every one the
    audit explained, with or without authority or data mass), else the whole call's."""
    from auditor.check.verdict import explain, has_data, model_for, probability, segment_texts, target_evidence

    if not has_data(attr, policy):
        return Verdict(probability=0.0, threshold=policy.verdict.causal.threshold, model="no-data",
                       evidence=["no tool output or file came before it: nothing but the user's request could drive it"])
    name, model = model_for(attr, policy)
    call = 1.0 if action_support is None else action_support
    names = policy.decisive_for(attr.action.tool_name, [g.name for g in attr.arguments]) if policy.judge == "arguments" else []
    names = list(dict.fromkeys(names))
    texts = segment_texts(audit, attr)
    targets = [target_evidence(attr, policy, n, per_arg.get(n, 1.0), call, texts) for n in names] or \
              [target_evidence(attr, policy, None, call, call, texts)]
    for ev in targets:
        ev.probability, ev.contributions = probability(model, ev.features)
    best = max(targets, key=lambda e: e.probability)
    flagged = best.probability >= model.threshold
    return Verdict(probability=best.probability, threshold=model.threshold, model=name, argument=best.argument,
                   features=best.features, contributions=best.contributions, evidence=explain(best, attr, flagged),
                   top_data=best.top_data, target=best, probabilities={e.argument or "": e.probability for e in targets})


def _kind(name: str) -> SegmentKind | None:
    try:
        return SegmentKind(name)
    except ValueError:
        return None
