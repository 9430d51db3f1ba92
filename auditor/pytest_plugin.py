"""pytest plugin: assert in your own test suite that your agent's trajectories pass `audit check`.

Installed with auditor (entry point ``pytest11``), so the fixture is there without any import::

    def test_agent_runs_are_supported(audit_check):
        audit_check.assert_pass("runs/*.jsonl")            # paths, globs, Trajectory objects

    def test_injection_is_caught(audit_check):
        audit_check.assert_fail("tests/data/injected.jsonl")

or, without the fixture::

    from auditor.pytest_plugin import assert_trajectories_pass
    assert_trajectories_pass(["runs/today.jsonl"], policy="audit-policy.toml")

Options: ``--audit-policy PATH``, ``--audit-model PATH``, ``--audit-method NAME``, ``--audit-hops N``
(or the ini keys ``audit_policy``, ``audit_model``). The replay model loads once per session.
Importing this module is cheap: torch and the model load on the first check.
"""

from __future__ import annotations

from auditor.actions import with_actions

import glob
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audit import Auditor
    from auditor.check import CheckReport, Policy
    from auditor.trajectory import Trajectory

PathsOrTrajectories = Union[str, Path, "Trajectory", Iterable[Union[str, Path, "Trajectory"]]]


def _resolve_policy(policy: "Policy | str | Path | None") -> "Policy":
    from auditor.check import Policy, load_policy

    if isinstance(policy, Policy):
        return policy
    return load_policy(policy)


def _collect(items: PathsOrTrajectories) -> tuple[list[Any], list[Any]]:
    """Trajectories (with file and line where they came from files) and skipped records."""
    from auditor.check import Located, load_located
    from auditor.trajectory import Trajectory

    if isinstance(items, (str, Path, Trajectory)):
        items = [items]
    located: list[Located] = []
    skipped: list[Any] = []
    for item in items:
        if isinstance(item, Trajectory):
            located.append(Located(item))
            continue
        text = str(item)
        paths = sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        if not paths:
            raise FileNotFoundError(f"no trajectory file matches {text!r}")
        got, bad = load_located(paths)
        located.extend(got)
        skipped.extend(bad)
    return located, skipped


def _describe(report: "CheckReport") -> str:
    lines = [report.summary()]
    for f in report.findings:
        lines.append(f"  {f.location} [{f.trajectory_id}] {f.message}")
    for r in report.errors:
        lines.append(f"  not audited: {r.trajectory_id}: {r.error}")
    for s in report.skipped:
        lines.append(f"  skipped: {s.message}")
    return "\n".join(lines)


class AuditCheck:
    """Runs `audit check` from tests; holds one replay model for the whole session."""

    def __init__(
        self,
        policy: "Policy | str | Path | None" = None,
        model: Any = None,
        method: str = "flashtrace",
        hops: int = 1,
        auditor: "Auditor | None" = None,
    ) -> None:
        self.policy = policy
        self.model = model
        self.method = method
        self.hops = hops
        self._auditor = auditor

    @property
    def auditor(self) -> "Auditor":
        if self._auditor is None:
            from auditor.audit import make_auditor

            self._auditor = make_auditor(model=self.model, method=self.method, hops=self.hops)
        return self._auditor

    def __call__(self, trajectories: PathsOrTrajectories, policy: "Policy | str | Path | None" = None) -> "CheckReport":
        """Check and return the report (no assertion)."""
        from auditor.check import run_check

        located, skipped = _collect(trajectories)
        pol = _resolve_policy(policy if policy is not None else self.policy)
        needs_model = any(not pol.ignores(a) for item in located for a in with_actions(item.trajectory).actions)
        report, _ = run_check(located, pol, self.auditor if needs_model else None)
        report.skipped[:0] = skipped
        return report

    def assert_pass(
        self, trajectories: PathsOrTrajectories, policy: "Policy | str | Path | None" = None, allow_skipped: bool = False
    ) -> "CheckReport":
        """Fail the test when any action is unsupported (or, unless allowed, a record was skipped)."""
        __tracebackhide__ = True
        report = self(trajectories, policy)
        if report.exit_code(allow_skipped=allow_skipped) != 0:
            raise AssertionError("audit check failed:\n" + _describe(report))
        return report

    def assert_fail(self, trajectories: PathsOrTrajectories, policy: "Policy | str | Path | None" = None) -> "CheckReport":
        """Fail the test unless the check flags at least one action (for known-bad fixtures)."""
        __tracebackhide__ = True
        report = self(trajectories, policy)
        if not report.findings:
            raise AssertionError("audit check flagged nothing, expected a finding:\n" + _describe(report))
        return report


def assert_trajectories_pass(
    trajectories: PathsOrTrajectories,
    policy: "Policy | str | Path | None" = None,
    auditor: "Auditor | None" = None,
    allow_skipped: bool = False,
) -> "CheckReport":
    """Assert that every checked action of the trajectories is supported; return the report.

    ``auditor=None`` replays on the embedded model with FlashTrace (hops 1).
    """
    __tracebackhide__ = True
    return AuditCheck(policy=policy, auditor=auditor).assert_pass(trajectories, allow_skipped=allow_skipped)


# -- pytest hooks and fixture -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("auditor", "auditor: audit check of agent trajectories")
    group.addoption("--audit-policy", default=None, help="policy TOML for the audit_check fixture")
    group.addoption("--audit-model", default=None, help="replay model directory for the audit_check fixture")
    group.addoption("--audit-method", default=None, help="attribution method (default flashtrace)")
    group.addoption("--audit-hops", default=None, type=int, help="FlashTrace hops (default 1)")
    parser.addini("audit_policy", "policy TOML for the audit_check fixture", default=None)
    parser.addini("audit_model", "replay model directory for the audit_check fixture", default=None)


@pytest.fixture(scope="session")
def audit_check(request: pytest.FixtureRequest) -> AuditCheck:
    """An `AuditCheck` configured from the command line / ini; the model loads on first use."""
    config = request.config
    policy = config.getoption("--audit-policy") or config.getini("audit_policy") or None
    if policy and not Path(policy).exists():  # relative to the rootdir when not relative to the cwd
        policy = str(Path(str(config.rootpath)) / policy)
    return AuditCheck(
        policy=policy,
        model=config.getoption("--audit-model") or config.getini("audit_model") or None,
        method=config.getoption("--audit-method") or "flashtrace",
        hops=config.getoption("--audit-hops") if config.getoption("--audit-hops") is not None else 1,
    )
