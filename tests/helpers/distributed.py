"""Auditor factories for distributed tests (workers import them by ``module:function``; the
tests put ``tests/`` on the workers' PYTHONPATH): the tiny random model, made slow, or made to
fail on purpose."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from auditor.testing.auditors import tiny_auditor


class _Wrapped:
    """The tiny auditor, with a delay and injected failures decided by each trajectory's metadata."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.settings = inner.settings

    def run_info(self, run_id: str | None = None) -> Any:
        return self.inner.run_info(run_id)

    def audit(self, traj: Any, *, run: Any = None) -> Any:
        time.sleep(self.delay)
        meta = traj.metadata or {}
        if meta.get("poison"):
            raise ValueError(f"poisoned trajectory {traj.id}")
        crash = meta.get("crash_marker")
        if crash and not Path(crash).exists():  # the worker process dies (once), as on a segfault or OOM kill
            Path(crash).write_text("crashed")
            os._exit(1)
        marker = meta.get("flaky_marker")
        if marker and not Path(marker).exists():  # fails once, then works
            Path(marker).write_text("tried")
            raise RuntimeError(f"transient failure on {traj.id}")
        return self.inner.audit(traj, run=run)


def slow_tiny_auditor(**settings: Any) -> _Wrapped:
    """Two seconds per trajectory: long enough to kill a worker while it audits."""
    return _Wrapped(tiny_auditor(**settings), delay=2.0)


def failing_tiny_auditor(**settings: Any) -> _Wrapped:
    """Fails every attempt on ``metadata.poison``, the first on ``metadata.flaky_marker``; kills its
    own process the first time it sees ``metadata.crash_marker``."""
    return _Wrapped(tiny_auditor(**settings), delay=0.0)


def broken_auditor(**settings: Any) -> Any:
    """Cannot start (as a missing model would)."""
    raise OSError("no model at /nowhere")


class SyntheticAuditor:
    """Model-free (`auditor.testing.audits.synthetic_audit`): for the lake's logic, not its numbers."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def audit(self, traj: Any, *, run: Any = None) -> Any:
        from auditor.testing.audits import synthetic_audit

        return synthetic_audit(traj, run, arguments=True)


def synthetic_auditor(**settings: Any) -> SyntheticAuditor:
    return SyntheticAuditor(**settings)
