"""Make a report from what the user names: a run, trajectory or action in the store, or a file.

    from auditor.report.build import report_from_store, report_from_file
    with Store("audit.duckdb", read_only=True) as store:
        result = report_from_store(store, "run-3f2a…", "report.html")
    result = report_from_file("examples/injected_email.jsonl", "report.html")   # replays first

`audit report` is a thin wrapper around these two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from auditor.audit.runs import audit_each
from auditor.check.policy import Policy, default_policy
from auditor.check.runner import audit_settings
from auditor.report.data import check_verdicts
from auditor.report.export import audit_action_export, recorded_policy
from auditor.report.html import write_report
from auditor.audit.schema import TrajectoryAudit

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.issues import LoadIssue
    from auditor.store import Store


class ReportError(ValueError):
    """Nothing to report: the reference is unknown, or the file holds no usable trajectory."""


@dataclass
class ReportResult:
    path: Path
    audits: list[TrajectoryAudit]
    selected: str | None = None  # the action the page opens on (``#action=ID``)
    issues: list["LoadIssue"] = field(default_factory=list)  # records of the file that were skipped
    failed: list[str] = field(default_factory=list)  # trajectories whose audit failed, said plainly

    @property
    def actions(self) -> int:
        return sum(len(a.actions) for a in self.audits)

    @property
    def url(self) -> str:
        uri = self.path.resolve().as_uri()
        if self.selected:
            from urllib.parse import quote

            uri += "#action=" + quote(self.selected, safe="")
        return uri


def _rows(store: "Store", sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return store.query(sql, params)[1]


def resolve_in_store(store: "Store", ref: str) -> tuple[str, list[str], str | None]:
    """``ref`` (a run id, a trajectory id or an action id) → (run id, trajectory ids, action id or None).

    A trajectory or action id means its newest run."""
    trajs = [r[0] for r in _rows(store, "SELECT trajectory_id FROM audits WHERE run_id = ? ORDER BY trajectory_id", [ref])]
    if trajs:
        return ref, trajs, None
    newest = _rows(store, "SELECT a.run_id FROM audits a JOIN runs r USING (run_id) WHERE a.trajectory_id = ? "
                          "ORDER BY r.created_at DESC, a.run_id LIMIT 1", [ref])
    if newest:
        return newest[0][0], [ref], None
    from auditor.store import NotFound

    try:
        run_id, traj_id = store.locate_action(ref)
    except NotFound:
        runs = [r["run_id"] for r in store.runs(limit=5)]
        hint = f" Recent runs: {', '.join(runs)}." if runs else " The database has no runs yet: `audit trace FILE` first."
        raise ReportError(f"{ref!r} is neither a file nor a run, trajectory or action id in {store.path}.{hint}") from None
    return run_id, [traj_id], ref


def _judged(audits: list[TrajectoryAudit], policies: list[Policy], check: bool,
            ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Per action id: the check's verdict (when ``check``) and the export, each audit judged by
    its policy, so the page's verdict and the export's judged support are the same numbers."""
    verdicts: dict[str, Any] = {}
    exports: dict[str, dict[str, Any]] = {}
    for audit, policy in zip(audits, policies):
        if check:
            verdicts.update(check_verdicts(audit, policy))
        for att in audit.actions:
            exports[att.action.id] = audit_action_export(audit, att.action.id, policy=policy)
    return verdicts, exports


def report_from_store(store: "Store", ref: str, output: str | Path, *, policy: Policy | None = None, check: bool = True,
                      title: str | None = None) -> ReportResult:
    """Write the report of a stored run (every trajectory in it), or of the newest run of a
    trajectory or action id. Each audit is judged by ``policy``, else by the policy recorded with
    its verdicts, else by the default, as `audit show` judges it."""
    run_id, traj_ids, selected = resolve_in_store(store, ref)
    audits = [store.load_audit(run_id, t) for t in traj_ids]
    policies = [policy or recorded_policy(store, run_id, t) or default_policy() for t in traj_ids]
    verdicts, exports = _judged(audits, policies, check)
    path = write_report(audits, output, verdicts=verdicts, exports=exports, title=title)
    return ReportResult(path=path, audits=audits, selected=selected)


def report_from_file(
    path: str | Path,
    output: str | Path,
    *,
    auditor: Any = None,
    settings: Mapping[str, Any] | None = None,
    fmt: str | None = None,
    policy: Policy | None = None,
    check: bool = True,
    title: str | None = None,
    progress: Callable[[str, int, int], Any] | None = None,
) -> ReportResult:
    """Load trajectories from ``path`` (any format `auditor.collectors.loading` reads), audit each
    one, and write the report. ``auditor`` is the replay engine; None builds one from ``settings``
    (model, method, hops, ...; `auditor.audit.make_auditor`) when there is something to audit, and
    raises `auditor.audit.AuditorUnavailable` when it cannot. A trajectory whose audit fails is
    named in ``failed``; the others are reported."""
    from auditor.collectors.loading import load_paths

    loaded = load_paths([Path(path)], fmt)
    if not loaded.trajectories:
        where = "; ".join(str(i) for i in loaded.issues[:3])
        raise ReportError(f"no trajectory could be read from {path}" + (f" ({where})" if where else ""))
    audits: list[TrajectoryAudit] = []
    failed: list[str] = []
    if auditor is None and check:  # the audit the policy needs to judge it (causal deltas for the verdict)
        settings = {**audit_settings(policy or default_policy()), **(settings or {})}
    for out in audit_each(loaded.trajectories, auditor=auditor, settings=settings if auditor is None else None,
                          progress=progress):
        if out.audit is not None:
            audits.append(out.audit)
        else:
            failed.append(f"{out.trajectory.id}: audit failed: {out.error}")
    if not audits:
        raise ReportError("; ".join(failed) or f"nothing to report in {path}")
    verdicts, exports = _judged(audits, [policy or default_policy()] * len(audits), check)
    out_path = write_report(audits, output, verdicts=verdicts, exports=exports, title=title)
    return ReportResult(path=out_path, audits=audits, issues=list(loaded.issues), failed=failed)
