"""`audit trace --ray` as a library call: inputs in, a results lake of Parquet shards out.

    from auditor.distributed import RayOptions, audit_on_ray
    run = audit_on_ray(["s3://agent-runs/2026-12-01/"], "s3://audits/lake",
                       options=RayOptions(address="auto", workers=8))
    run.summary.audited, run.summary.failed        # what was done; each failure with its error

The driver reads the inputs, assembles trajectories and derives the run id exactly as `audit
trace` does (`run_id_for`: same inputs and settings, same run). It skips every trajectory the lake
already holds an audit of under the same settings and policy (by content hash, across runs),
cuts the rest into batches, and hands them to a pool of Ray actors (`ray_runner`), each of which
builds the auditor once. As each batch comes back its shards and then its manifest record are
written (`manifest`), so whatever was committed survives a crash of anything: a rerun does only
what is missing. A trajectory whose audit fails is queued again (``retries`` times, alone), then
recorded as failed with its error; a worker that dies is replaced and its batches are redone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from auditor.distributed import manifest as mf
from auditor.distributed.locations import Location, load_inputs, open_location
from auditor.distributed.options import RayOptions, RunEvent
from auditor.distributed.worker import DEFAULT_FACTORY, BatchResult, BatchTask

#: Settings a run takes, with `audit trace`'s defaults (its run id hashes them the same way).
DEFAULT_SETTINGS: dict[str, Any] = {"model": None, "method": "flashtrace", "hops": 1, "dtype": "float32",
                                    "max_tokens": None, "device": None}


@dataclass
class LakeRun:
    """What `audit_on_ray` did: the run summary (also written to ``_runs/<run_id>.json``) and the
    input issues (file:line, span, field), as `audit trace` reports them."""

    results: str
    summary: mf.RunSummary
    issues: list[Any]
    trajectories: int


def _committer(root: Location, summary: mf.RunSummary, retries: int,
               on_event: Callable[[RunEvent], Any], total: int) -> Callable[..., list[BatchTask]]:
    """Commit a worker's result (shards, then the record) and return what must be tried again."""
    done = {"n": 0}

    def commit(task: BatchTask, result: BatchResult | None, lost: str | None = None, final: bool = False,
               workers: list[str] | None = None) -> list[BatchTask]:
        from auditor.trajectory import Trajectory, trajectory_sha256

        began = time.perf_counter()
        trajs = [Trajectory.model_validate_json(d) for d in task.documents]
        shas = [trajectory_sha256(t) for t in trajs]
        docs = dict(zip(shas, task.documents))  # content hash -> document
        entries: list[mf.TrajectoryEntry]
        if result is None:  # the worker died with the batch: every trajectory failed this attempt
            entries = [mf.TrajectoryEntry(trajectory_id=t.id, sha256=sha, status="failed", error=lost,
                                          attempt=task.attempt) for t, sha in zip(trajs, shas)]
        else:
            entries = result.entries
        again: list[BatchTask] = []
        for e in entries:
            if e.status == "failed" and task.attempt <= retries and not final:
                e.final = False
                again.append(BatchTask(task.run_id, mf.batch_id(task.run_id, summary.settings_key, [e.sha256]),
                                       [docs[e.sha256]], task.attempt + 1))
        shards, rows = {}, {}
        if result is not None:
            for table, data in sorted(result.tables.items()):
                rel = f"{table}/{task.batch_id}.parquet"
                folder = root.join(table)
                root.fs.create_dir(folder.path, recursive=True)
                pq.write_table(data, root.join(rel).path, filesystem=root.fs)
                shards[table], rows[table] = rel, data.num_rows
        record = mf.BatchRecord(batch_id=task.batch_id, attempt=task.attempt, run_id=task.run_id,
                                settings_key=summary.settings_key, committed_at=mf.now(), shards=shards, rows=rows,
                                trajectories=entries,
                                worker=None if result is None else result.worker,
                                seconds=None if result is None else round(result.seconds, 4))
        mf.write_json(root.join(mf.MANIFEST_DIR, mf.record_name(task.batch_id, task.attempt)), record)
        summary.batches += 1
        summary.commit_seconds = round(summary.commit_seconds + time.perf_counter() - began, 4)
        summary.audited += sum(e.status == "audited" for e in entries)
        summary.failed.extend(e for e in entries if e.status == "failed" and e.final)
        done["n"] += sum(e.status == "audited" or e.final for e in entries)
        if result is not None:
            known = {w.name: w for w in summary.workers}
            known[result.worker.name] = result.worker  # its latest figures (peak memory so far)
            summary.workers = list(known.values())
        for e in entries:
            if e.status == "failed":
                what = "queued again" if not e.final else "given up"
                on_event(RunEvent("retry" if not e.final else "failed",
                                  f"{e.trajectory_id}: {e.error} (attempt {e.attempt}, {what})", done["n"], total,
                                  list(workers or [])))
        on_event(RunEvent("committed", f"batch {task.batch_id}: {len(entries)} trajector"
                          f"{'y' if len(entries) == 1 else 'ies'}", done["n"], total, list(workers or [])))
        return again

    return commit


def audit_on_ray(
    inputs: list[str | os.PathLike[str]],
    results: str | os.PathLike[str],
    *,
    settings: Mapping[str, Any] | None = None,
    policy: Any = None,
    fmt: str | None = None,
    options: RayOptions | None = None,
    auditor_factory: str = DEFAULT_FACTORY,
    force: bool = False,
    on_event: Callable[[RunEvent], Any] | None = None,
) -> LakeRun:
    """Audit ``inputs`` (files, globs, directories, URIs) on Ray into the results lake ``results``.

    settings: `audit trace`'s replay settings (model, method, hops, dtype, max_tokens, device).
    policy: the check policy the actions are judged by (default: the shipped one).
    auditor_factory: ``"module:function"`` the workers build their auditor with (see `worker`).
    force: audit again what the lake already holds (the newer commit wins in every reader).

    Raises `auditor.distributed.worker.WorkerStartError` when the workers cannot build the
    auditor (nothing is audited), and ImportError when Ray is not installed.
    """
    from auditor.audit.runs import run_id_for
    from auditor.check import audit_settings, default_policy
    from auditor.distributed import ray_runner
    from auditor.trajectory import trajectory_sha256

    options = options or RayOptions()
    policy = policy or default_policy()
    # what the policy judges by (causal deltas when its verdict reads them), as `audit trace` asks
    settings = {**DEFAULT_SETTINGS, **audit_settings(policy), **dict(settings or {})}
    on_event = on_event or (lambda ev: None)
    started = time.perf_counter()
    loaded = load_inputs([os.fspath(i) for i in inputs], fmt)
    trajs = loaded.trajectories
    root = open_location(results)
    root.fs.create_dir(root.path, recursive=True)
    run_id = run_id_for(trajs, settings)
    key = mf.settings_key(settings, policy)
    summary = mf.RunSummary(run_id=run_id, settings_key=key, settings=dict(settings),
                            policy_source=getattr(policy, "source", None) or "default",
                            auditor_factory=auditor_factory, started_at=mf.now(), trajectories=len(trajs))
    have = set() if force else mf.audited_keys(mf.read_records(root))
    todo = []
    for t in trajs:
        sha = trajectory_sha256(t)
        if (key, sha) in have:
            summary.resumed += 1
        else:
            todo.append((t, sha))
    size = max(1, int(options.batch_size))
    tasks = [BatchTask(run_id, mf.batch_id(run_id, key, [s for _, s in chunk]), [t.to_jsonl_line() for t, _ in chunk])
             for chunk in (todo[i:i + size] for i in range(0, len(todo), size))]
    total = len(todo)
    mf.write_json(root.join(mf.RUNS_DIR, f"{run_id}.json"), summary)
    if tasks:
        commit = _committer(root, summary, max(0, int(options.retries)), on_event, total)
        summary.events.extend(ray_runner.execute(tasks, commit, options=options, settings=settings, policy=policy,
                                                 auditor_factory=auditor_factory, on_event=on_event))
    summary.finished_at = mf.now()
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.status = "complete" if not summary.failed else "incomplete"
    mf.write_json(root.join(mf.RUNS_DIR, f"{run_id}.json"), summary)
    on_event(RunEvent("finished", f"run {run_id}: {summary.audited} audited, {summary.resumed} already in the "
                      f"lake, {len(summary.failed)} failed", total, total))
    return LakeRun(results=root.uri, summary=summary, issues=list(loaded.issues), trajectories=len(trajs))
