"""The Ray part, and the only module of auditor that imports ``ray``: actors, placement, failures.

Each worker is a Ray actor wrapping `ReplayWorker` (one process, the model loaded once, the CPUs
and GPUs it reserves). Ray places the actors on the cluster's nodes, restarts one whose process
crashes (``max_restarts``) and reruns the call it was serving (``max_task_retries``). What Ray
does not cover is handled here: an actor that is gone for good (``ray.kill``, a node removed, its
restarts used up) is replaced by a new one and its batches are queued again, each trajectory
alone (so one that kills its worker cannot take others down with it); a worker that cannot build
its auditor stops the run with the reason. Each worker keeps two batches in flight, so it never
waits while the driver writes the previous one's shards.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from auditor.distributed.options import RunEvent
from auditor.distributed.worker import BatchTask, ReplayWorker, WorkerStartError

#: Batches queued on each worker at once (one running, one waiting).
DEPTH = 2
#: How a local cluster is started: no dashboard, worker logs kept out of the terminal, and workers
#: at normal priority (Ray runs workers at nice 15 by default, which on a machine shared with other
#: work starves the replay: measured +17 % per trajectory on a loaded 2-core machine).
LOCAL_INIT: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "_system_config": {"worker_niceness": 0}}


def connect(address: str | None, init: dict[str, Any]) -> bool:
    """Join ``address`` (or ``$RAY_ADDRESS``), or start a local cluster; nothing when this process is
    connected already. Returns whether this call connected (the caller then disconnects)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(**{**LOCAL_INIT, **init})
    return True


def plan_workers(workers: int | None, gpus: float | None, cpus: float, tasks: int) -> tuple[int, float]:
    """(workers, GPUs each) for the cluster as it is now."""
    res = ray.cluster_resources()
    have_gpus = float(res.get("GPU", 0))
    gpus = (1.0 if have_gpus >= 1 else 0.0) if gpus is None else float(gpus)
    if workers is None:
        workers = int(have_gpus // gpus) if gpus > 0 else int(float(res.get("CPU", 1)) // max(cpus, 1e-9))
    return max(1, min(int(workers), tasks)), gpus


def _cause(exc: RayTaskError) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def execute(tasks: list[BatchTask], commit: Callable[..., list[BatchTask]], *, options: Any, settings: dict[str, Any],
            policy: Any, auditor_factory: str, on_event: Callable[[Any], Any]) -> list[str]:
    """Audit every task on a pool of actors, committing each result as it comes: ``commit(task,
    result, workers=live)``, or ``commit(task, None, lost=why, ...)`` for a batch lost with its
    worker; it returns the tasks to try again (none with ``final=True``). Returns what happened to
    the workers, in words."""
    started_here = connect(options.address, options.init)
    events: list[str] = []
    actor_cls = ray.remote(ReplayWorker)
    handles: dict[str, Any] = {}
    try:
        n, gpus = plan_workers(options.workers, options.gpus_per_worker, options.cpus_per_worker, len(tasks))
        threads = max(1, int(options.cpus_per_worker))
        retries = max(0, int(options.retries))
        prefix = f"auditor-{tasks[0].run_id.removeprefix('run-')[:8]}"
        pending_ready: dict[Any, str] = {}
        counter = iter(range(1 << 30))

        def start() -> None:
            name = f"{prefix}-w{next(counter)}"
            handle = actor_cls.options(name=name, num_cpus=options.cpus_per_worker, num_gpus=gpus,
                                       max_restarts=retries, max_task_retries=retries).remote(
                auditor_factory, settings, policy, name, threads)
            handles[name] = handle
            pending_ready[handle.ready.remote()] = name

        for _ in range(n):
            start()
        replacements = max(1, retries) * n
        live: dict[str, int] = {}  # ready workers -> batches in flight
        inflight: dict[Any, tuple[str, BatchTask]] = {}
        queue: deque[BatchTask] = deque(tasks)
        lost: set[str] = set()

        def worker_lost(name: str, why: str) -> None:
            nonlocal replacements
            if name in lost:
                return
            lost.add(name)
            live.pop(name, None)
            handles.pop(name, None)
            note = f"worker {name} lost: {why}"
            if replacements > 0:
                replacements -= 1
                start()
                note += "; a new worker replaces it"
            events.append(note)
            on_event(RunEvent("worker_lost", note, workers=sorted(live)))

        while queue or inflight:
            for name in sorted(live) if not (options.wait_for_workers and pending_ready) else ():
                while queue and live[name] < DEPTH:
                    task = queue.popleft()
                    inflight[handles[name].audit_batch.remote(task)] = (name, task)
                    live[name] += 1
            refs = [*inflight, *pending_ready]
            if not refs:  # every worker is gone and none may replace them
                while queue:
                    commit(queue.popleft(), None, lost="WorkerLost: no worker left to audit it", final=True,
                           workers=[])
                break
            ready, _ = ray.wait(refs, num_returns=1)
            ref = ready[0]
            if ref in pending_ready:
                name = pending_ready.pop(ref)
                try:
                    info = ray.get(ref)
                except RayTaskError as exc:
                    cause = _cause(exc)
                    raise WorkerStartError(str(cause)) if isinstance(cause, WorkerStartError) else cause from None
                except RayActorError as exc:
                    worker_lost(name, f"died while starting ({type(exc).__name__})")
                    continue
                live[name] = 0
                on_event(RunEvent("worker_started", f"worker {name} ready on {info.node} ({info.device}, model "
                                  f"built in {info.load_seconds:.1f} s)", workers=sorted(live)))
                continue
            name, task = inflight.pop(ref)
            if name in live:
                live[name] -= 1
            try:
                result = ray.get(ref)
            except RayActorError as exc:
                worker_lost(name, type(exc).__name__)
                queue.extend(commit(task, None, lost=f"WorkerLost: worker {name} died while auditing this batch",
                                    workers=sorted(live)))
                continue
            except RayTaskError as exc:
                cause = _cause(exc)
                if isinstance(cause, WorkerStartError):
                    raise cause from None
                queue.extend(commit(task, None, lost=f"{type(cause).__name__}: {cause}", workers=sorted(live)))
                continue
            except RayError as exc:  # the result was lost (object store, memory monitor): do it again
                queue.extend(commit(task, None, lost=f"{type(exc).__name__}: {exc}", workers=sorted(live)))
                continue
            queue.extend(commit(task, result, workers=sorted(live)))
        return events
    finally:
        for handle in handles.values():
            ray.kill(handle)
        if started_here:
            ray.shutdown()
