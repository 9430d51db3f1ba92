"""auditor.audit: one trajectory in, every action explained.

- `replay`: `Auditor` renders a trajectory through the replay model's chat template, runs one
  forward pass and attributes every action (and each argument) with the chosen method.
- `runs`: many trajectories as one run (`audit_each`): the run id, resuming, one failure per
  trajectory, and `make_auditor`, the one seam where tests put a model-free auditor.
- `rollup`: engine results to drivers, hop flows and plain-dict views (`ranked_drivers`).
- `schema`: what an audit produces (`TrajectoryAudit`, `ActionAttribution`, `Driver`, ...), the
  one export the store, the report and the check all read.

Names are imported lazily so that ``from auditor.audit.schema import TrajectoryAudit`` (pydantic
only) does not load the replay machinery.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Auditor": "replay",
    "audit_trajectory": "replay",
    "ranked_drivers": "rollup",
    "AuditOutcome": "runs",
    "AuditorUnavailable": "runs",
    "audit_each": "runs",
    "make_auditor": "runs",
    "run_id_for": "runs",
    "auditor_version": "replay",
    "ActionAttribution": "schema",
    "ArgumentAttribution": "schema",
    "Driver": "schema",
    "HopFlow": "schema",
    "RunInfo": "schema",
    "TrajectoryAudit": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor.audit' has no attribute {name!r}")
    return getattr(import_module(f"auditor.audit.{module}"), name)
