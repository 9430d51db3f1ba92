"""Auditing many trajectories as one run: its id, resuming it, and one failure per trajectory.

    >>> from auditor.audit import audit_each
    >>> for out in audit_each(trajectories, settings={"method": "flashtrace", "hops": 1}):  # doctest: +SKIP
    ...     print(out.trajectory.id, out.status, out.error or "")

`audit trace`, `audit check` and `audit report FILE` all audit through `audit_each`. Given no
auditor, it builds one with `make_auditor(**settings)` when the first trajectory needs auditing
(a resumed run whose trajectories are all stored loads no model). `make_auditor` is the one seam
where tests put a model-free stand-in (``monkeypatch.setattr("auditor.audit.runs.make_auditor",
...)``). The store is not imported here: resuming takes the ids of the trajectories already done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from auditor.audit.schema import TrajectoryAudit
from auditor.trajectory import Trajectory, trajectory_sha256

#: What a run id hashes besides the trajectories, with the defaults `Auditor` has; every other
#: setting given is hashed too, except those that cannot change a result (the device).
RUN_KEYS: dict[str, Any] = {"model": None, "method": "flashtrace", "hops": 1, "dtype": "float32", "max_tokens": None}
_NOT_HASHED = frozenset({"device"})

#: What makes the replay engine unusable: an unknown method, a missing model, a broken install.
_START_ERRORS = (ValueError, KeyError, RuntimeError, OSError, ImportError)


class AuditorUnavailable(RuntimeError):
    """The replay engine could not be started (its message says why); nothing was audited after it."""


def make_auditor(**settings: Any) -> Any:
    """The replay engine for ``settings`` (`Auditor`'s keywords: model, method, hops, dtype, ...)."""
    from auditor.audit.replay import Auditor

    return Auditor(**settings)


def run_id_for(trajectories: Iterable[Trajectory], settings: Mapping[str, Any] | None = None) -> str:
    """A run id derived from what is audited and how: the same trajectories (by content) and
    settings give the same id, so rerunning after a crash resumes the run instead of starting another.

    >>> from auditor.trajectory import Message, Trajectory
    >>> t = Trajectory(id="t", messages=[Message(role="user", content="hi")])
    >>> run_id_for([t], {"hops": 1}) == run_id_for([t], {"device": "cuda"}) != run_id_for([t], {"hops": 2})
    True
    """
    from auditor import __version__

    settings = dict(settings or {})
    key: dict[str, Any] = {k: settings.get(k, default) for k, default in RUN_KEYS.items()}
    key["model"] = key["model"] or "embedded"
    key.update({k: v for k, v in settings.items() if k not in RUN_KEYS and k not in _NOT_HASHED})
    key["trajectories"] = sorted(trajectory_sha256(t) for t in trajectories)
    key["version"] = __version__
    return "run-" + hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AuditOutcome:
    """What became of one trajectory of a run: its audit, the error that stopped it, or resumed
    (the run already holds its audit; the caller knows where)."""

    trajectory: Trajectory
    index: int  # 1-based position among the trajectories given
    run_id: str
    audit: TrajectoryAudit | None = None
    error: str | None = None  # "ErrorType: message" when the audit failed
    resumed: bool = False

    @property
    def status(self) -> Literal["audited", "failed", "resumed"]:
        return "resumed" if self.resumed else "failed" if self.error is not None else "audited"


def audit_each(
    trajectories: Iterable[Trajectory],
    *,
    auditor: Any = None,
    settings: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    skip: Container[str] = (),
    progress: Callable[[str, int, int], Any] | None = None,
) -> Iterator[AuditOutcome]:
    """Audit each trajectory under one run id, yielding an `AuditOutcome` per trajectory, in order.

    auditor: anything with ``audit(traj, *, run=None)`` (`Auditor`, or a stand-in); None builds
        ``make_auditor(**settings)`` when the first trajectory needs it, raising
        `AuditorUnavailable` when that fails.
    settings: how the auditor is made and what the run id hashes (`run_id_for`); by default
        the auditor's own (`Auditor.settings`).
    run_id: the run's id; None derives it (`run_id_for`).
    skip: ids of trajectories the run already holds: yielded as resumed, not audited.
    progress: called ``(trajectory_id, k, n)`` before the k-th of n trajectories is audited.

    A trajectory whose audit raises is yielded with the error as text; the others go on.
    """
    trajs = list(trajectories)
    if settings is None:
        settings = dict(getattr(auditor, "settings", None) or {})
    run_id = run_id or run_id_for(trajs, settings)
    run = None
    for k, traj in enumerate(trajs, start=1):
        if traj.id in skip:
            yield AuditOutcome(traj, k, run_id, resumed=True)
            continue
        if auditor is None:
            try:
                auditor = make_auditor(**settings)
            except _START_ERRORS as exc:
                raise AuditorUnavailable(f"cannot start the replay: {exc}") from exc
        if run is None and hasattr(auditor, "run_info"):
            run = auditor.run_info(run_id)
        if progress is not None:
            progress(traj.id, k, len(trajs))
        try:
            audit = auditor.audit(traj, run=run) if run is not None else auditor.audit(traj)
        except Exception as exc:  # noqa: BLE001 - one bad trajectory must not sink the others
            yield AuditOutcome(traj, k, run_id, error=f"{type(exc).__name__}: {exc}")
            continue
        if audit.run.run_id != run_id:
            audit = audit.model_copy(update={"run": audit.run.model_copy(update={"run_id": run_id})})
        yield AuditOutcome(traj, k, run_id, audit=audit)


__all__ = ["AuditOutcome", "AuditorUnavailable", "RUN_KEYS", "audit_each", "make_auditor", "run_id_for"]
