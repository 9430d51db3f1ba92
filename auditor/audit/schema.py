"""What an audit produces, as pydantic models: the one export that the store, the terminal view,
the HTML report and the CI check all read, so they never disagree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from auditor.provenance import ArgumentProvenance
from auditor.trajectory import Action, Segment, SegmentKind, Trajectory


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Driver(_Model):
    """One segment's share in explaining an action."""

    segment_id: str
    kind: SegmentKind
    label: str
    score: float  # summed token scores of the segment (final input importance S)
    share: float  # score / total input mass of the action, in [0, 1]
    rank: int  # 1 = strongest


class HopFlow(_Model):
    """How mass moved at one hop: the share that landed on generated tokens (rho) and per kind."""

    hop: int
    flow_ratio: float  # rho_k: share of the hop's mass on intermediate (model-generated) tokens
    by_kind: dict[str, float] = Field(default_factory=dict)  # share of the hop's mass per segment kind


class CausalDelta(_Model):
    """How much less likely a target became when part of its context was changed (`auditor.audit.causal`).

    ``delta = base log p − variant log p`` of the target's tokens, in nats, summed over them
    (``delta_per_token`` divides by their number): positive when the change made the target less
    likely. ``variant`` is ``neutral_request`` (every user request and constraint before the target
    replaced by one neutral request, `auditor.audit.causal.NEUTRAL_REQUEST`), ``drop_top_data`` (the
    strongest data driver removed) or ``drop_top_data_k`` (the top two or three data drivers
    removed). ``driver_of`` says whose drivers were removed: None for the target's own, else
    ``call`` or an argument's name (the call's ``head`` is scored against each argument's driver).
    ``target`` is ``call`` (the whole call), ``head`` (the call's tokens before its first argument
    value: the tool's name) or ``value`` (an argument's value).
    """

    target: str
    variant: str
    driver_of: str | None = None
    segments: list[str] = Field(default_factory=list)  # the segment ids changed
    delta: float
    delta_per_token: float
    base_logprob: float
    n_tokens: int


class ArgumentAttribution(_Model):
    """The explanation of one argument of an action, from the same forward pass as the action.

    ``name`` is a tool-call argument (``to``, ``statement``) or a code edit's ``path``,
    ``search`` or ``replace``; the target is the tokens of its value, ``[token_start, token_end)``
    of the rendered sequence, and the action's tokens before it count as reasoning (hop 1 sends
    their mass on to what drove them). Drivers are ranked like the action's and sum to 1 likewise.
    """

    name: str
    token_start: int
    token_end: int
    drivers: list[Driver]
    flow_ratio: float = 0.0  # rho_0: share of hop 0's mass on model-generated tokens
    # Token scores for this argument's target, compact like the action's: positions
    # [0, token_start) of the rendered sequence (the context plus the call's tokens before the value).
    token_scores: list[float] = Field(default_factory=list)
    causal: list[CausalDelta] = Field(default_factory=list)  # with Auditor(causal=True): target "value"

    def share_of(self, kinds: set[SegmentKind] | frozenset[SegmentKind]) -> float:
        return sum(d.share for d in self.drivers if d.kind in kinds)

    def delta(self, variant: str, driver_of: str | None = None) -> CausalDelta | None:
        """This value's causal delta under ``variant`` (None when it was not measured)."""
        return next((c for c in self.causal if c.variant == variant and c.driver_of == driver_of), None)


class ActionAttribution(_Model):
    """The explanation of one action (and, for tool calls and edits, of each argument)."""

    action: Action
    drivers: list[Driver]  # ranked, input segments only
    hops: list[HopFlow] = Field(default_factory=list)
    # Token scores over the action's context, compact: positions [0, context_end) of the rendered
    # sequence; segment token ranges index into this list.
    token_scores: list[float] = Field(default_factory=list)
    context_end: int = 0
    output_start: int = 0
    output_end: int = 0
    layer_shares: dict[str, list[float]] = Field(default_factory=dict)
    seconds: float = 0.0
    arguments: list[ArgumentAttribution] = Field(default_factory=list)  # per argument, in call order
    # where each argument value literally occurs before the action (one entry per leaf value:
    # ``to``, ``to[1]``, ``a.b``), as `auditor.provenance.provenance_of` finds it
    provenance: list[ArgumentProvenance] = Field(default_factory=list)
    # with Auditor(causal=True): deltas of the whole call (target "call") and of its head ("head")
    causal: list[CausalDelta] = Field(default_factory=list)

    def argument(self, name: str) -> ArgumentAttribution | None:
        return next((a for a in self.arguments if a.name == name), None)

    def provenance_of(self, name: str) -> list[ArgumentProvenance]:
        """The provenance of argument ``name``'s leaf values (``to``, or ``to[0]``, ``to[1]``, ...)."""
        return [p for p in self.provenance if p.name == name or p.name.startswith((name + "[", name + "."))]

    def delta(self, target: str, variant: str, driver_of: str | None = None) -> CausalDelta | None:
        """The call's (``target="call"``) or its head's causal delta under ``variant``."""
        return next((c for c in self.causal if c.target == target and c.variant == variant
                     and c.driver_of == driver_of), None)

    def top(self, n: int = 3) -> list[Driver]:
        return self.drivers[:n]

    def share_of(self, kinds: set[SegmentKind] | frozenset[SegmentKind]) -> float:
        return sum(d.share for d in self.drivers if d.kind in kinds)


class RunInfo(_Model):
    """What was audited, how, and with what: enough to reproduce it."""

    run_id: str
    model: str
    method: str
    hops: int
    auditor_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    device: str = "cpu"
    dtype: str = "float32"
    settings: dict[str, Any] = Field(default_factory=dict)


class ContextAudit(_Model):
    """One model call's context (`auditor.trajectory.Context`) as the replay rendered it: the token
    strings that its segments' token ranges (segments with this ``context_id``) and its actions'
    token positions index."""

    context_id: str
    tokens: list[str] = Field(default_factory=list)
    forward_seconds: float = 0.0
    # leading tokens whose states came from a prefix this context shares with another context of
    # the trajectory (run once, `auditor.audit.prefixes`), not from running them again
    reused_tokens: int = 0


class TrajectoryAudit(_Model):
    """One trajectory, rendered and attributed: the shared data export.

    A trajectory with contexts (one per model call) is replayed one context at a time: each
    context's segments carry its ``context_id`` (ids ``{trajectory}:{context}:s{n}``) and their
    token ranges index that context's tokens in ``contexts``; an action's token positions
    (``output_start``, ``token_scores``, ...) index the tokens of its own context
    (`tokens_of`). ``tokens`` is the rendering of the trajectory's own messages, for the actions and
    segments without a context: all of them in the classic (append-only) case, where ``contexts``
    is empty and the audit is what it always was. ``dropped`` and ``unplaced`` of a context say
    which request they are about.
    """

    run: RunInfo
    trajectory: Trajectory
    segments: list[Segment]  # with token ranges set
    tokens: list[str] = Field(default_factory=list)  # rendered token strings (for heatmaps)
    actions: list[ActionAttribution] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)  # what a context limit forced out, said plainly
    unplaced: list[str] = Field(default_factory=list)  # segments that could not be located in tokens
    notes: list[str] = Field(default_factory=list)  # how the template was used (fallbacks), said plainly
    forward_seconds: float = 0.0
    causal_seconds: float = 0.0  # the causal variants' forwards (Auditor(causal=True)), within `seconds`
    seconds: float = 0.0
    contexts: list[ContextAudit] = Field(default_factory=list)  # per model call; empty: the classic form

    def segment(self, segment_id: str) -> Segment:
        for s in self.segments:
            if s.id == segment_id:
                return s
        raise KeyError(segment_id)

    def tokens_of(self, context_id: str | None) -> list[str]:
        """The rendered tokens of one context (None: the trajectory's own messages, ``tokens``)."""
        if context_id is None:
            return self.tokens
        for c in self.contexts:
            if c.context_id == context_id:
                return c.tokens
        raise KeyError(f"audit of {self.trajectory.id!r} holds no context {context_id!r}")

    def segments_of(self, context_id: str | None) -> list[Segment]:
        """The segments of one context (None: of the trajectory's own messages), in order."""
        return [s for s in self.segments if s.context_id == context_id]
