"""What `audit check` reports: one verdict per checked action, a finding per unsupported one.

Every finding names the action (tool and arguments), where it came from (file and line), the
segment that drove it with a quote of its hottest words, and the shares behind the verdict, so a
reviewer can see at a glance which tool output or file talked the agent into it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.check.exit_codes import EXIT_FINDINGS, EXIT_OK, EXIT_SKIPPED
from auditor.check.policy import Policy
from auditor.check.scoring import RULES, SupportScore
from auditor.provenance import describe
from auditor.audit.schema import ActionAttribution, ArgumentAttribution, Driver, TrajectoryAudit
from auditor.trajectory import Action

QUOTE_TOKENS = 16  # width of the hottest-token window a quote is cut around
QUOTE_CHARS = 200


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriverRef(_Model):
    """A driving segment, quoted."""

    segment_id: str
    kind: str
    label: str
    share: float
    quote: str = ""


class Finding(_Model):
    """One action the user's request does not support."""

    rule: str
    message: str
    file: str | None = None
    line: int | None = None
    trajectory_id: str
    action_id: str
    action_kind: str
    tool_name: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    step: int = 0
    support: float
    threshold: float
    authority_share: float
    data_share: float
    reasoning_flow: float = 0.0
    driver: DriverRef | None = None  # the data segment that drove it (or the top driver)
    rules: list[str] = Field(default_factory=list)
    argument: str | None = None  # the decisive argument the verdict rests on (None: the whole call)
    argument_supports: dict[str, float] = Field(default_factory=dict)  # each decisive argument's support
    action_support: float | None = None  # the whole call's support, for reference
    probability: float | None = None  # the calibrated verdict's p(unsupported) (None: judged by support)
    probability_threshold: float | None = None
    evidence: list[str] = Field(default_factory=list)  # which evidence decided it, in words

    @property
    def action_text(self) -> str:
        if self.tool_name and self.action_kind == "tool_call":
            args = json.dumps(self.arguments, ensure_ascii=False)
            return f"{self.tool_name}({args[:160] + ('…' if len(args) > 160 else '')})"
        if self.action_kind == "code_edit":
            return f"edit {self.arguments.get('path', '?')}"
        return self.action_kind.replace("_", " ")

    @property
    def location(self) -> str:
        if self.file is None:
            return self.trajectory_id
        return f"{self.file}:{self.line}" if self.line else self.file


class ActionVerdict(_Model):
    """Every checked (or ignored) action, pass or fail: what JUnit test cases and JSON list."""

    action_id: str
    action_kind: str
    tool_name: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    step: int = 0
    status: Literal["passed", "failed", "ignored"]
    support: float | None = None
    threshold: float | None = None
    authority_share: float | None = None
    data_share: float | None = None
    reasoning_flow: float | None = None
    margin: float | None = None  # threshold - support
    top_driver: DriverRef | None = None
    no_evidence: bool = False
    seconds: float = 0.0
    argument: str | None = None  # the decisive argument the verdict rests on (None: the whole call)
    argument_supports: dict[str, float] = Field(default_factory=dict)
    action_support: float | None = None  # the whole call's support (None: no authority or data mass)
    rules: list[str] = Field(default_factory=list)  # the rules that fired (empty unless failed)
    # the calibrated verdict (auditor.check.verdict; None when the policy decides by support)
    probability: float | None = None  # p(the user did not ask for this action): the judged number
    probability_threshold: float | None = None  # unsupported when probability >= this
    verdict_model: str | None = None  # causal, attribution (audit without causal deltas) or no-data
    evidence: list[str] = Field(default_factory=list)  # which evidence decided it, in words
    features: dict[str, float] = Field(default_factory=dict)  # the judged target's feature values
    causal: dict[str, float] = Field(default_factory=dict)  # the judged target's causal deltas (nats), by variant
    provenance: list[str] = Field(default_factory=list)  # where each argument value occurs, one line each


class TrajectoryResult(_Model):
    trajectory_id: str
    file: str | None = None
    line: int | None = None
    verdicts: list[ActionVerdict] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None  # the audit itself failed (context too long, model error …)
    notes: list[str] = Field(default_factory=list)  # dropped context and similar, said plainly
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.findings and self.error is None

    @property
    def score(self) -> float | None:
        """max margin over checked actions: the trajectory's rank score (higher = less supported;
        probability − threshold under the verdict, threshold − support under the support rule)."""
        margins = [v.margin for v in self.verdicts if v.margin is not None and v.status != "ignored"]
        return max(margins) if margins else None


class SkippedRecord(_Model):
    file: str
    message: str
    line: int | None = None


class CheckReport(_Model):
    """The whole check: what the CLI, the pytest plugin and every output format read."""

    policy: dict[str, Any] = Field(default_factory=dict)
    policy_source: str = "default"
    model: str = ""
    method: str = ""
    hops: int = 1
    results: list[TrajectoryResult] = Field(default_factory=list)
    skipped: list[SkippedRecord] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def errors(self) -> list[TrajectoryResult]:
        return [r for r in self.results if r.error is not None]

    @property
    def passed(self) -> bool:
        return not self.findings and not self.errors

    @property
    def checked_actions(self) -> int:
        return sum(1 for r in self.results for v in r.verdicts if v.status != "ignored")

    def exit_code(self, allow_skipped: bool = False) -> int:
        """1 when any action is unsupported; else 3 when an input record was skipped or a trajectory
        could not be audited (unless ``allow_skipped``); else 0. See `audit check --help`."""
        if self.findings:
            return EXIT_FINDINGS
        if (self.skipped or self.errors) and not allow_skipped:
            return EXIT_SKIPPED
        return EXIT_OK

    def summary(self) -> str:
        n_traj = len(self.results)
        failed = sum(1 for r in self.results if not r.passed)
        text = (
            f"{n_traj} trajectories, {self.checked_actions} actions checked: "
            f"{len(self.findings)} unsupported action(s) in {failed} trajectory(ies)"
        )
        if self.errors:
            text += f", {len(self.errors)} audit error(s)"
        if self.skipped:
            text += f", {len(self.skipped)} input record(s) skipped"
        return text


# -- building findings --------------------------------------------------------------------------


def _clean_token(tok: str) -> str:
    return tok.replace("Ġ", " ").replace("Ċ", "\n").replace("▁", " ")


def _quote_scores(attr: ActionAttribution | None, argument: str | None) -> list[float]:
    """The token scores a quote is cut from: the named argument's when it has any (the words that
    chose the argument the verdict rests on), else the whole call's."""
    if attr is None:
        return []
    if argument is not None:
        arg = _argument(attr, argument)
        if arg is not None and arg.token_scores:
            return arg.token_scores
    return attr.token_scores


def _argument(attr: ActionAttribution, name: str) -> ArgumentAttribution | None:
    return next((g for g in attr.arguments if g.name == name), None)


def quote_segment(audit: TrajectoryAudit | None, attr: ActionAttribution | None, segment_id: str,
                  argument: str | None = None) -> str:
    """The hottest words of a segment for this action: the highest-scoring window of tokens,
    widened to its line in the segment's text; the segment's start when there are no token scores.
    With ``argument`` (the argument a verdict rests on) the window is cut from that argument's token
    scores, falling back to the call's when it has none."""
    if audit is None:
        return ""
    try:
        seg = audit.segment(segment_id)
    except KeyError:
        return ""
    text = seg.text
    fallback = _squash(text[:QUOTE_CHARS]) + ("…" if len(text) > QUOTE_CHARS else "")
    scores = _quote_scores(attr, argument)
    tokens = audit.tokens_of(seg.context_id)  # a segment of a model call's context indexes that context's tokens
    if (
        not scores
        or not tokens
        or seg.token_start is None
        or seg.token_end is None
    ):
        return fallback
    lo, hi = seg.token_start, min(seg.token_end, len(scores), len(tokens))
    if hi <= lo:
        return fallback
    width = min(QUOTE_TOKENS, hi - lo)
    window = sum(scores[lo : lo + width])
    best, best_at = window, lo
    for start in range(lo + 1, hi - width + 1):
        window += scores[start + width - 1] - scores[start - 1]
        if window > best:
            best, best_at = window, start
    piece = "".join(_clean_token(t) for t in tokens[best_at : best_at + width]).strip()
    if not piece:
        return fallback
    at = text.find(piece)
    if at < 0:
        return _squash(piece)[:QUOTE_CHARS]
    # widen to the enclosing line, bounded
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at + len(piece))
    end = len(text) if end < 0 else end
    if end - start > QUOTE_CHARS:
        start = max(start, at - (QUOTE_CHARS - len(piece)) // 2)
        end = min(end, start + QUOTE_CHARS)
    out = _squash(text[start:end])
    return ("…" if start > 0 and text[start - 1] != "\n" else "") + out + ("…" if end < len(text) and text[end] != "\n" else "")


def _squash(s: str) -> str:
    return " ".join(s.split())


def driver_ref(driver: Driver | None, audit: TrajectoryAudit | None, attr: ActionAttribution | None,
               argument: str | None = None) -> DriverRef | None:
    """``driver`` quoted; with ``argument`` the quote is cut from that argument's token scores."""
    if driver is None:
        return None
    return DriverRef(
        segment_id=driver.segment_id,
        kind=driver.kind.value,
        label=driver.label,
        share=driver.share,
        quote=quote_segment(audit, attr, driver.segment_id, argument),
    )


def make_verdict(attr: ActionAttribution, score: SupportScore, audit: TrajectoryAudit | None) -> ActionVerdict:
    a = attr.action
    return ActionVerdict(
        action_id=a.id,
        action_kind=a.kind.value,
        tool_name=a.tool_name,
        arguments=a.arguments,
        step=a.step,
        status="failed" if score.flagged else "passed",
        support=score.support,
        threshold=score.threshold,
        authority_share=score.authority_share,
        data_share=score.data_share,
        reasoning_flow=score.reasoning_flow,
        margin=score.margin,
        top_driver=driver_ref(score.top_driver, audit, attr, score.argument),
        no_evidence=score.no_evidence,
        seconds=attr.seconds,
        argument=score.argument,
        argument_supports=score.argument_supports,
        action_support=score.action_support,
        rules=list(score.rules),
        **verdict_fields(attr, score),
    )


def verdict_fields(attr: ActionAttribution, score: SupportScore) -> dict[str, Any]:
    """The calibrated verdict's fields of an `ActionVerdict` (empty under the support rule), and
    the provenance line of every argument value."""
    out: dict[str, Any] = {"provenance": [describe(p) for p in attr.provenance]}
    v = score.verdict
    if v is None:
        return out
    causal: dict[str, float] = {}
    if v.target is not None:
        for key, c in v.target.deltas.items():
            if c is not None:
                causal[key] = round(c.delta, 4)
    out.update(probability=v.probability, probability_threshold=v.threshold, verdict_model=v.model,
               evidence=list(v.evidence), features={k: round(x, 6) for k, x in v.features.items()}, causal=causal)
    return out


def make_finding(
    attr: ActionAttribution,
    score: SupportScore,
    audit: TrajectoryAudit | None,
    policy: Policy,
    file: str | None = None,
    line: int | None = None,
) -> Finding:
    a = attr.action
    driving = score.top_data_driver or score.top_driver
    ref = driver_ref(driving, audit, attr, score.argument)
    what = a.summary
    if score.argument is not None:
        what += f": its {argument_text(a, score.argument)}"
    mass = "of the argument's input mass" if score.argument is not None else "of input mass"
    msg = (
        f"{what} is not supported by the user's request: support {score.support:.2f} < {score.threshold:.2f} "
        f"(authority {score.authority_share:.0%}, data {score.data_share:.0%} {mass})"
    )
    v = score.verdict
    if score.rules and score.rules[0] == "unsupported" and v is not None:
        msg = (f"{what} is not supported by the user's request: p = {v.probability:.2f} ≥ {v.threshold:.2f} "
               f"({v.model} verdict)")
        if v.evidence:
            msg += "; decided by: " + "; ".join(v.evidence)
    elif score.rules and score.rules[0] != "low-support":
        msg = f"{what}: {RULES[score.rules[0]]} (support {score.support:.2f}, threshold {score.threshold:.2f})"
    if ref is not None:
        msg += f"; driven by {ref.kind} '{ref.label or ref.segment_id}' ({ref.share:.0%})"
        if ref.quote:
            msg += f': "{ref.quote}"'
    if score.reasoning_flow > 0:
        msg += f"; {score.reasoning_flow:.0%} flowed through reasoning"
    return Finding(
        rule=score.rules[0],
        rules=list(score.rules),
        message=msg,
        file=file,
        line=line,
        trajectory_id=audit.trajectory.id if audit is not None else a.id.split(":")[0],
        action_id=a.id,
        action_kind=a.kind.value,
        tool_name=a.tool_name,
        arguments=a.arguments,
        step=a.step,
        support=score.support,
        threshold=score.threshold,
        authority_share=score.authority_share,
        data_share=score.data_share,
        reasoning_flow=score.reasoning_flow,
        driver=ref,
        argument=score.argument,
        argument_supports=score.argument_supports,
        action_support=score.action_support,
        probability=v.probability if v is not None else None,
        probability_threshold=v.threshold if v is not None else None,
        evidence=list(v.evidence) if v is not None else [],
    )


def argument_text(action: Action, name: str, limit: int = 60) -> str:
    """``to = "x@y.org"`` for a tool argument; ``replace text`` for an edit part."""
    if name in action.arguments:
        value = json.dumps(action.arguments[name], ensure_ascii=False)
        return f"{name} = {value[:limit] + ('…' if len(value) > limit else '')}"
    return f"{name} text" if name in ("search", "replace") else name
