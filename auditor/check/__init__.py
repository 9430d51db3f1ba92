"""`audit check`: flag actions the user's request does not support.

Library first: ``check_paths`` / ``check_trajectories`` replay and attribute trajectories, score
each action's support (``auditor.check.scoring``) under a ``Policy`` and return a ``CheckReport``
that ``auditor.check.formats`` turns into terminal, JUnit, SARIF, JSON or GitHub output.
"""

from __future__ import annotations

from auditor.check.findings import ActionVerdict, CheckReport, DriverRef, Finding, SkippedRecord, TrajectoryResult
from auditor.check.policy import (Policy, PolicyError, Rules, default_policy, load_policy, parse_policy, policy_from_dict,
                                  policy_from_record)
from auditor.check.runner import (
    Located,
    audit_settings,
    check_audit,
    check_audits,
    check_paths,
    check_trajectories,
    load_located,
    run_check,
)
from auditor.check.scoring import RULES, SupportScore, argument_supports, score_action, support_of

__all__ = [
    "ActionVerdict",
    "CheckReport",
    "DriverRef",
    "Finding",
    "Located",
    "Policy",
    "PolicyError",
    "RULES",
    "Rules",
    "SkippedRecord",
    "SupportScore",
    "TrajectoryResult",
    "check_audit",
    "check_audits",
    "check_paths",
    "check_trajectories",
    "default_policy",
    "load_located",
    "load_policy",
    "parse_policy",
    "policy_from_dict",
    "policy_from_record",
    "run_check",
    "score_action",
    "support_of",
    "argument_supports",
    "audit_settings",
]
