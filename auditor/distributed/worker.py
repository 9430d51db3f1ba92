"""One replay worker: builds its auditor once, then audits batch after batch into store-shaped tables.

A plain class, so it runs anywhere; `auditor.distributed.ray_runner` makes it a Ray actor (one
process, one model, a GPU when it has one). Per batch it runs the one audit loop (`audit_each`),
judges each audit with the check (`check_audit`, the policy `audit trace` uses) and turns audits
and verdicts into the store's Arrow tables (`auditor.store.records.audit_record`): the rows
`Store.record_audits` would write, ready to be written as Parquet shards.

Which auditor it builds is named by a dotted path, ``"module:function"``, called with the run's
settings (``model``, ``method``, ``hops``, ``dtype``, ``max_tokens``, ``device``): by default
`auditor.audit.runs.make_auditor`. Workers are other processes, so a test substitutes the
auditor here rather than by patching (``auditor.testing.auditors:tiny_auditor`` builds a tiny
random model, no download).
"""

from __future__ import annotations

import importlib
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from auditor.distributed.manifest import TrajectoryEntry, WorkerInfo

DEFAULT_FACTORY = "auditor.audit.runs:make_auditor"


class WorkerStartError(RuntimeError):
    """A worker could not build its auditor (its message says why)."""


def load_factory(spec: str) -> Callable[..., Any]:
    """The callable a ``"module:function"`` path names (``module.function`` works too)."""
    module, sep, name = spec.partition(":")
    if not sep:
        module, _, name = spec.rpartition(".")
    if not module or not name:
        raise ValueError(f"auditor factory {spec!r}: expected 'module:function'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"auditor factory {spec!r}: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"auditor factory {spec!r} is not callable")
    return fn


@dataclass
class BatchTask:
    """A batch to audit: its trajectories as canonical JSON lines."""

    run_id: str
    batch_id: str
    documents: list[str]
    attempt: int = 1


@dataclass
class BatchResult:
    """What a worker made of a batch: the store's tables for the audited trajectories and an
    entry per trajectory (audited, or failed with its error)."""

    batch_id: str
    tables: dict[str, pa.Table]
    entries: list[TrajectoryEntry]
    worker: WorkerInfo
    seconds: float
    audits: list[Any] = field(default_factory=list)  # kept only when asked (tests, benchmarks)


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


class ReplayWorker:
    """Builds the auditor once (``factory(**settings)``) and audits batches with it.

    threads: torch CPU threads for this worker (its share of the machine's cores).
    A failure to build the auditor is kept and raised by `ready` and `audit_batch` as
    `WorkerStartError`, so the driver reports it instead of restarting the worker forever.
    """

    def __init__(self, factory: str, settings: dict[str, Any], policy: Any, name: str = "worker",
                 threads: int | None = None) -> None:
        from auditor.trajectory import trajectory_sha256  # noqa: F401 - fail early on a broken install

        self.name = name
        self.settings = dict(settings)
        self.policy = policy
        self.error: str | None = None
        self.auditor: Any = None
        start = time.perf_counter()
        try:
            if threads:
                import torch

                torch.set_num_threads(int(threads))
            self.auditor = load_factory(factory)(**self.settings)
        except Exception as exc:  # noqa: BLE001 - reported by ready(), with its type
            self.error = f"cannot start the replay: {type(exc).__name__}: {exc}"
        self.load_seconds = time.perf_counter() - start
        self._con: Any = None
        try:
            self.node = socket.gethostbyname(socket.gethostname())
        except OSError:  # pragma: no cover - no resolvable host name
            self.node = socket.gethostname()

    def info(self) -> WorkerInfo:
        device = getattr(self.auditor, "device", None)
        gpu = None
        if device and str(device).startswith("cuda"):
            import torch

            gpu = int(torch.cuda.max_memory_allocated())
        return WorkerInfo(name=self.name, node=self.node, pid=os.getpid(), device=None if device is None else str(device),
                          load_seconds=round(self.load_seconds, 3), peak_rss_bytes=_peak_rss_bytes(),
                          peak_gpu_bytes=gpu)

    def ready(self) -> WorkerInfo:
        """This worker's description once its auditor is built; `WorkerStartError` if it could not be."""
        if self.error is not None:
            raise WorkerStartError(self.error)
        return self.info()

    def _connection(self) -> Any:
        """An in-memory database with the store's schema: its `action_verdicts` columns are the
        ones the verdict rows get (`auditor.store.records.verdict_table`)."""
        if self._con is None:
            import duckdb

            from auditor.store.migrations import migrate

            self._con = duckdb.connect(":memory:")
            migrate(self._con)
        return self._con

    def audit_batch(self, task: BatchTask, keep_audits: bool = False) -> BatchResult:
        """Audit, judge and tabulate one batch. A trajectory whose audit raises is an entry with
        its error (the others go on); nothing here is written anywhere."""
        from auditor.audit.runs import audit_each
        from auditor.check.runner import check_audit
        from auditor.store.records import audit_record
        from auditor.distributed.manifest import now
        from auditor.trajectory import Trajectory, trajectory_sha256

        if self.error is not None:
            raise WorkerStartError(self.error)
        start = time.perf_counter()
        trajs = [Trajectory.model_validate_json(doc) for doc in task.documents]
        audits, verdicts, entries = [], [], []
        for out in audit_each(trajs, auditor=self.auditor, settings=self.settings, run_id=task.run_id):
            sha = trajectory_sha256(out.trajectory)
            if out.audit is None:
                entries.append(TrajectoryEntry(trajectory_id=out.trajectory.id, sha256=sha, status="failed",
                                               error=out.error, attempt=task.attempt))
                continue
            audits.append(out.audit)
            verdicts.append(check_audit(out.audit, self.policy).verdicts)
            entries.append(TrajectoryEntry(trajectory_id=out.trajectory.id, sha256=sha, status="audited",
                                           attempt=task.attempt, actions=len(out.audit.actions),
                                           seconds=round(out.audit.seconds, 4)))
        tables = audit_record(self._connection(), audits, verdicts, policy=self.policy, now=now()) if audits else {}
        return BatchResult(task.batch_id, {k: v for k, v in tables.items() if v.num_rows}, entries, self.info(),
                           time.perf_counter() - start, audits if keep_audits else [])
