"""Support: how much of an action is backed by the user's authority rather than by data.

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

1. ``support < threshold`` for its tool (``Policy.threshold_for``) — rule ``low-support``;
2. ``rules.data_top_driver`` is on and the strongest driver the policy judges (the best ranked
   driver of an authority or data kind: a tool definition that outranks it, neutral by default,
   neither fires nor hides the rule) is a data segment — rule ``data-top-driver``;
3. more than ``rules.max_reasoning_flow`` of hop 0's mass landed on model-generated reasoning
   (``rho0 = hops[0].flow_ratio``) and that reasoning was itself driven more by data than by
   authority (hop 1's ``by_kind``: ``A1 / (A1 + D1) < threshold``) — rule ``data-driven-reasoning``.

The continuous score that benchmarks rank by is the margin ``threshold - support`` (positive =
flagged by rule 1), so ROC curves sweep one global offset over the per-tool thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.check.policy import Policy
from auditor.audit.schema import ActionAttribution, Driver, TrajectoryAudit
from auditor.trajectory import SegmentKind

RULE_LOW_SUPPORT = "low-support"
RULE_DATA_TOP_DRIVER = "data-top-driver"
RULE_REASONING = "data-driven-reasoning"

RULES: dict[str, str] = {
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

    @property
    def flagged(self) -> bool:
        return bool(self.rules)

    @property
    def margin(self) -> float:
        """threshold - support: the score benchmarks rank by (higher = less supported)."""
        return self.threshold - self.support


def _ratio(a: float, d: float) -> float | None:
    return a / (a + d) if (a + d) > 0 else None


def _segment_tokens(audit: TrajectoryAudit | None, segment_id: str) -> int:
    if audit is None:
        return 1
    try:
        seg = audit.segment(segment_id)
    except KeyError:
        return 1
    if seg.token_start is None or seg.token_end is None:
        return max(1, len(seg.text) // 4)
    return max(1, seg.token_end - seg.token_start)


def _shares(drivers: list[Driver], policy: Policy) -> tuple[float, float, float]:
    a = sum(max(0.0, x.share) for x in drivers if x.kind in policy.authority_kinds)
    d = sum(max(0.0, x.share) for x in drivers if x.kind in policy.data_kinds)
    total = sum(max(0.0, x.share) for x in drivers)
    return a, d, max(0.0, total - a - d)


def _support(drivers: list[Driver], policy: Policy, audit: TrajectoryAudit | None) -> float | None:
    a, d, _ = _shares(drivers, policy)
    if policy.weighting == "per_token":
        n_a = sum(_segment_tokens(audit, x.segment_id) for x in drivers if x.kind in policy.authority_kinds)
        n_d = sum(_segment_tokens(audit, x.segment_id) for x in drivers if x.kind in policy.data_kinds)
        a = a / n_a if n_a else 0.0
        d = d / n_d if n_d else 0.0
    return _ratio(a, d)


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
    """Apply the formula and the rules above to one explained action."""
    action_support = support_of(attr, policy, audit)
    drivers, argument, per_arg = attr.drivers, None, {}
    if policy.judge == "arguments":
        per_arg = argument_supports(attr, policy, audit)
        if per_arg:
            argument = min(per_arg, key=lambda n: per_arg[n])
            drivers = next(g for g in attr.arguments if g.name == argument).drivers
    a, d, other = _shares(drivers, policy)
    support = per_arg[argument] if argument is not None else action_support
    no_evidence = support is None
    support = 1.0 if support is None else support
    threshold = policy.threshold_for(attr.action.tool_name)

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
    if not no_evidence and support < threshold:
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
        top_data_driver=top_data,
        rules=rules,
        no_evidence=no_evidence,
        argument=argument,
        argument_supports=per_arg,
        action_support=action_support,
    )


def _kind(name: str) -> SegmentKind | None:
    try:
        return SegmentKind(name)
    except ValueError:
        return None
