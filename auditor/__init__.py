"""auditor: explain what drove each action of an LLM agent.

The objects you script with are here, each imported on first use (PEP 562), so ``import auditor``
stays light: no torch, transformers, DuckDB or OpenTelemetry until a name that needs them is used.

    >>> import auditor
    >>> traj = auditor.Trajectory(id="t1", messages=[auditor.Message(role="user", content="hi")])
    >>> traj.id, "Auditor" in auditor.__all__
    ('t1', True)

A session, file to verdicts (the README's "In Python" section pairs each `audit` command with
its call)::

    result = auditor.load("examples/injected_email.jsonl")          # any supported format
    report = auditor.check_trajectories(result.trajectories)        # replay, attribute, judge
    print(report.summary(), report.exit_code())
    policy = auditor.load_policy()                                  # the shipped policy
    with auditor.Store("audit.duckdb") as store:                    # what `audit trace` does
        for out in auditor.audit_each(result.trajectories):
            if out.audit is not None:
                store.record_audit(out.audit, auditor.check_audit(out.audit, policy).verdicts, policy=policy)

Data flow, one subpackage per stage: ``collectors`` (spans → trajectories) → ``segments``
(trajectory → segments → tokens) → ``attribution`` (FlashTrace) → ``audit`` (`Auditor`) →
``check`` / ``store`` (verdicts, DuckDB) → ``report`` → ``guard`` (the check before a tool runs)
→ ``cli``. The shared contract is ``trajectory``; ``tests/test_layout.py`` keeps the imports
flowing that way.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from auditor.collectors.loading import LoadResult

#: Public name -> the module that defines it (imported when the name is first used).
_EXPORTS: dict[str, str] = {
    "__version__": "auditor._version",
    # the contract
    "Trajectory": "auditor.trajectory",
    "Message": "auditor.trajectory",
    "ToolCall": "auditor.trajectory",
    "ToolDefinition": "auditor.trajectory",
    "Context": "auditor.trajectory",
    # capture
    "OpenAIInstrumentor": "auditor.collectors.instrument",
    "traced_tool": "auditor.collectors.instrument",
    "setup_tracing": "auditor.collectors.exporters",
    # attribution and audits
    "attribute": "auditor.attribution.api",
    "attribute_many": "auditor.attribution.api",
    "Auditor": "auditor.audit.replay",
    "audit_each": "auditor.audit.runs",
    "TrajectoryAudit": "auditor.audit.schema",
    # the check
    "Policy": "auditor.check.policy",
    "load_policy": "auditor.check.policy",
    "check_paths": "auditor.check.runner",
    "check_trajectories": "auditor.check.runner",
    "check_audit": "auditor.check.runner",
    "CheckReport": "auditor.check.findings",
    # the guard (before a tool runs)
    "Guard": "auditor.guard.guard",
    "GuardProxy": "auditor.guard.proxy",
    "guarded": "auditor.guard.decorator",
    "UnsupportedToolCall": "auditor.collectors.guarding",
    # the store and the report
    "Store": "auditor.store.store",
    "action_export": "auditor.report.export",
    "write_report": "auditor.report.html",
    "report_from_file": "auditor.report.build",
    "report_from_store": "auditor.report.build",
}

__all__ = sorted([*_EXPORTS, "load"])


def load(*paths: str | Path, fmt: str | None = None) -> "LoadResult":
    """Read trajectories from files of any supported format (sniffed, or ``fmt``): canonical JSONL,
    OTLP JSON and console span dumps, Aider logs. Returns a `LoadResult`: ``.trajectories``, and
    ``.issues`` naming the file, line and span of every record that was skipped (nothing else is lost)."""
    from auditor.collectors.loading import load_paths

    return load_paths(list(paths), fmt)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
