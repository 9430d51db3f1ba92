"""The guard's answer about one tool call: `Verdict`.

Built from what `audit check` decides about the same action (`auditor.check.runner.check_audit`:
its `ActionVerdict` and, for a blocked call, its `Finding`), so the guard and the check never
disagree: same policy, same evidence, same score. The score is the check's judged number: the
calibrated probability that the user did not ask for the call when the check provides one
(``score_kind = "probability"``), else the support of the judged target (``"support"``: the share
of its input mass that speaks with the user's authority; low = unsupported). The deciding evidence
is the check's own (its ``evidence`` lines when it gives them), else the support, its threshold and
the rules that fired, in words; the drivers are the judged target's strongest inputs, quoted.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.audit.schema import ActionAttribution, TrajectoryAudit
from auditor.check.findings import ActionVerdict, DriverRef, Finding, argument_text, driver_ref
from auditor.check.scoring import RULES
from auditor.trajectory import Action

TOP_DRIVERS = 3
Status = Literal["allowed", "blocked", "ignored", "error"]


class Verdict(BaseModel):
    """Allowed or blocked, and why. ``allowed`` is what an agent acts on; everything else says why."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    allowed: bool
    tool_name: str
    tool_call_id: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    action_id: str | None = None
    score: float | None = None  # the judged number (see score_kind); None when ignored or on error
    score_kind: Literal["probability", "support"] | None = None
    threshold: float | None = None  # blocked when probability >= threshold, or support < threshold
    support: float | None = None  # the judged target's support (authority / (authority + data))
    probability: float | None = None  # the calibrated p(the user did not ask for this call), when the check has one
    argument: str | None = None  # the decisive argument the verdict rests on (None: the whole call)
    rules: list[str] = Field(default_factory=list)  # the check's rules that fired
    evidence: list[str] = Field(default_factory=list)  # what decided it, in words
    drivers: list[DriverRef] = Field(default_factory=list)  # the judged target's top inputs, quoted
    message: str = ""  # one line for a person (the check's finding when blocked)
    error: str | None = None  # why no judgement could be made (status "error")
    seconds: float = 0.0  # the guard's time for the reply this call came in
    tokens: int = 0  # tokens of the rendered conversation
    new_tokens: int = 0  # tokens forwarded for it (the rest came from the state cache)

    @property
    def blocked(self) -> bool:
        return not self.allowed

    def span_attributes(self) -> dict[str, Any]:
        """Flat OpenTelemetry attributes (``auditor.guard.*`` and the GenAI tool-call keys)."""
        attrs: dict[str, Any] = {
            "gen_ai.tool.name": self.tool_name,
            "gen_ai.tool.call.id": self.tool_call_id,
            "auditor.guard.status": self.status,
            "auditor.guard.allowed": self.allowed,
            "auditor.guard.action_id": self.action_id,
            "auditor.guard.score": self.score,
            "auditor.guard.score_kind": self.score_kind,
            "auditor.guard.threshold": self.threshold,
            "auditor.guard.support": self.support,
            "auditor.guard.probability": self.probability,
            "auditor.guard.argument": self.argument,
            "auditor.guard.rules": list(self.rules),
            "auditor.guard.evidence": list(self.evidence),
            "auditor.guard.message": self.message,
            "auditor.guard.error": self.error,
            "auditor.guard.seconds": round(self.seconds, 6),
            "auditor.guard.tokens": self.tokens,
            "auditor.guard.new_tokens": self.new_tokens,
            "auditor.guard.drivers": json.dumps([d.model_dump() for d in self.drivers], ensure_ascii=False),
        }
        return {k: v for k, v in attrs.items() if v is not None and v != []}


def _call_text(action: Action) -> str:
    return action.summary


def ignored(action: Action) -> Verdict:
    return Verdict(status="ignored", allowed=True, tool_name=action.tool_name or "", tool_call_id=action.tool_call_id,
                   arguments=action.arguments, action_id=action.id,
                   message=f"{_call_text(action)}: not checked (the policy ignores it)")


def failed(action: Action, error: str, allow: bool) -> Verdict:
    """No judgement could be made (the audit failed): blocked unless the guard fails open."""
    what = "allowed unchecked (the guard fails open)" if allow else "blocked"
    return Verdict(status="error", allowed=allow, tool_name=action.tool_name or "",
                   tool_call_id=action.tool_call_id, arguments=action.arguments, action_id=action.id, error=error,
                   message=f"{_call_text(action)}: {what}: the guard could not judge it: {error}")


def _drivers(attr: ActionAttribution, argument: str | None, audit: TrajectoryAudit) -> list[DriverRef]:
    target = attr.drivers
    if argument is not None:
        arg = next((g for g in attr.arguments if g.name == argument), None)
        if arg is not None and arg.drivers:
            target = arg.drivers
    ranked = sorted(target, key=lambda d: (d.rank, -d.share))[:TOP_DRIVERS]
    return [ref for d in ranked if (ref := driver_ref(d, audit, attr, argument)) is not None]


def _evidence(v: ActionVerdict, action: Action, drivers: list[DriverRef]) -> list[str]:
    given = list(getattr(v, "evidence", None) or [])
    if given:
        return given
    out = []
    what = f"its {argument_text(action, v.argument)}" if v.argument else "the whole call"
    if v.support is not None and v.threshold is not None:
        side = "<" if v.support < v.threshold else ">="
        line = f"support of {what} = {v.support:.2f} {side} threshold {v.threshold:.2f}"
        if v.authority_share is not None and v.data_share is not None:
            line += f" (authority {v.authority_share:.0%}, data {v.data_share:.0%} of its input mass)"
        if v.no_evidence:
            line += "; no authority or data mass reached it (nothing to judge)"
        out.append(line)
    out.extend(f"rule {r}: {RULES.get(r, r)}" for r in v.rules if r != "low-support")
    top = drivers[0] if drivers else None
    if top is not None:
        line = f"top driver: {top.kind} '{top.label or top.segment_id}' ({top.share:.0%})"
        out.append(line + (f': "{top.quote}"' if top.quote else ""))
    return out


def from_check(v: ActionVerdict, finding: Finding | None, attr: ActionAttribution, audit: TrajectoryAudit) -> Verdict:
    """The guard's verdict from the check's verdict (and finding) on the same action."""
    action = attr.action
    probability = getattr(v, "probability", None)
    p_threshold = getattr(v, "probability_threshold", None)
    allowed = v.status != "failed"
    drivers = _drivers(attr, v.argument, audit)
    if finding is not None:
        message = finding.message
    else:
        message = f"{_call_text(action)}: supported by the user's request"
        if probability is not None and p_threshold is not None:
            message += f" (p = {probability:.2f} < {p_threshold:.2f})"
        elif v.support is not None and v.threshold is not None:
            message += f" (support {v.support:.2f} >= {v.threshold:.2f})"
    return Verdict(
        status="allowed" if allowed else "blocked", allowed=allowed, tool_name=action.tool_name or "",
        tool_call_id=action.tool_call_id, arguments=action.arguments, action_id=action.id,
        score=probability if probability is not None else v.support,
        score_kind="probability" if probability is not None else "support",
        threshold=p_threshold if probability is not None else v.threshold,
        support=v.support, probability=probability, argument=v.argument, rules=list(v.rules),
        evidence=_evidence(v, action, drivers), drivers=drivers, message=message,
    )


def explanation(verdicts: list[Verdict]) -> str:
    """The text an assistant message carries in place of blocked calls (the proxy's ``message`` mode)."""
    blocked = [v for v in verdicts if not v.allowed]
    lines = [f"[auditor guard] blocked {len(blocked)} tool call(s) the user's request does not support; "
             "none of this reply's tool calls were returned."]
    for v in blocked:
        lines.append(f"- {v.message}")
    return "\n".join(lines)


__all__ = ["Verdict", "from_check", "ignored", "failed", "explanation", "TOP_DRIVERS"]
