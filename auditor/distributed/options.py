"""How wide a distributed run goes (`RayOptions`) and what it reports as it goes (`RunEvent`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RayOptions:
    """Where and how wide to run.

    address: a running cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``); None joins
        the one this process is connected to, else ``$RAY_ADDRESS``, else starts a local one.
    workers: replay actors; None: one per GPU slot when the cluster has GPUs, else one per
        ``cpus_per_worker`` of its CPUs.
    gpus_per_worker: GPUs each actor reserves (fractions share a GPU); None: 1 when the cluster
        has GPUs, else 0.
    cpus_per_worker: CPUs each actor reserves, and its torch threads.
    batch_size: trajectories per batch (per shard): larger means fewer files, smaller means less
        work redone when a worker dies.
    retries: how many more times a failed trajectory, or a batch whose worker died, is tried.
    init: extra keywords for ``ray.init`` when a local cluster is started (``num_cpus``,
        ``include_dashboard``, ``_temp_dir``, ...).
    wait_for_workers: hand out batches only once every worker has built its auditor (benchmarks:
        all workers start together); by default a worker starts as soon as it is ready.
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    batch_size: int = 8
    retries: int = 2
    init: dict[str, Any] = field(default_factory=dict)
    wait_for_workers: bool = False


@dataclass
class RunEvent:
    """Progress, for a status line or a log: ``kind`` is started, committed, retry, worker_lost,
    worker_started or finished."""

    kind: str
    message: str
    done: int = 0
    total: int = 0
    workers: list[str] = field(default_factory=list)  # live workers' actor names
