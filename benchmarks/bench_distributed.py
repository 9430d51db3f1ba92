"""Benchmark: `audit trace --ray` against the single process, at 1 and 2 workers, on this machine.

    .venv/bin/python benchmarks/bench_distributed.py             # writes benchmarks/results/distributed.json
                                                                  # and docs/benchmarks/distributed.md
    .venv/bin/python benchmarks/bench_distributed.py --n 4       # fewer trajectories (smoke run)
    .venv/bin/python benchmarks/bench_distributed.py --factory auditor.testing.auditors:tiny_auditor

What is measured, in one run, on the same trajectories (every k-th of the injection benchmark,
``benchmarks/injection/data``) with the embedded SmolLM2-135M, FlashTrace hops 1:

- single process: what `audit trace` does per trajectory (`audit_each`, `check_audit`,
  `Store.record_audit` into a DuckDB file), torch on 1 thread;
- Ray, 1 and 2 workers (1 CPU and 1 torch thread each) on a local cluster (``num_cpus=2``):
  `audit_on_ray` into a Parquet lake, end to end and in steady state (batches handed out once every
  worker is ready, timed from then to the last commit: actor start and model load excluded), each worker's peak memory, and the
  driver's time writing shards and records.

The three configurations run in rounds, the order reversed every other round (the machine is
shared: a load that drifts through the run cancels out). From the measured per-trajectory costs it
projects N workers, labelled as a projection.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python benchmarks/bench_distributed.py"


def trajectories(n: int) -> list:
    from auditor.collectors.loading import load_paths

    trajs = load_paths(sorted((ROOT / "benchmarks" / "injection" / "data").glob("*.jsonl"))).trajectories
    step = max(1, len(trajs) // n)
    return trajs[::step][:n]


def make_single(factory: str):
    """`audit trace`'s loop in this process (audit, judge, record; 1 torch thread); the auditor is
    built once, outside the timing."""
    import torch

    from auditor.audit.runs import audit_each, run_id_for
    from auditor.check import check_audit, default_policy
    from auditor.distributed.worker import load_factory
    from auditor.store import Store

    torch.set_num_threads(1)
    settings = {"model": None, "method": "flashtrace", "hops": 1, "dtype": "float32", "max_tokens": None,
                "device": None}
    t0 = time.perf_counter()
    auditor = load_factory(factory)(**settings)
    load = time.perf_counter() - t0
    policy = default_policy()

    def run(trajs: list, workdir: Path) -> dict:
        db = workdir / f"single-{time.time_ns()}.duckdb"
        t0 = time.perf_counter()
        with Store(db) as store:
            store.add_trajectories(trajs)
            for out in audit_each(trajs, auditor=auditor, settings=settings, run_id=run_id_for(trajs, settings)):
                store.record_audit(out.audit, check_audit(out.audit, policy).verdicts, policy=policy)
        seconds = time.perf_counter() - t0
        return {"seconds": round(seconds, 2), "seconds_per_trajectory": round(seconds / len(trajs), 3),
                "per_minute": round(60 * len(trajs) / seconds, 2)}

    return run, load


def on_ray(src: Path, workers: int, factory: str, workdir: Path, batch_size: int) -> dict:
    from auditor.distributed import RayOptions, audit_on_ray

    marks: dict[str, float] = {}

    def on_event(ev) -> None:
        now = time.perf_counter()
        if ev.kind == "worker_started":
            marks["ready"] = now  # the last worker ready: every one starts then
        if ev.kind == "committed":
            marks["last_commit"] = now

    lake = workdir / f"lake-{workers}-{time.time_ns()}"
    t0 = time.perf_counter()
    run = audit_on_ray([str(src)], lake, options=RayOptions(workers=workers, cpus_per_worker=1, batch_size=batch_size,
                                                     wait_for_workers=True),
                       auditor_factory=factory, on_event=on_event)
    total = time.perf_counter() - t0
    s = run.summary
    assert s.audited == run.trajectories and not s.failed, s
    steady = marks["last_commit"] - marks["ready"]
    n = run.trajectories
    from auditor.distributed import ingest_lake
    from auditor.store import Store

    t0 = time.perf_counter()
    with Store(workdir / f"ingest-{workers}.duckdb") as store:
        ingest_lake(lake, store)
    ingest = time.perf_counter() - t0
    return {"workers": workers, "end_to_end_seconds": round(total, 2), "steady_seconds": round(steady, 2),
            "seconds_per_trajectory": round(steady / n, 3), "per_minute": round(60 * n / steady, 2),
            "per_minute_end_to_end": round(60 * n / total, 2),
            "worker_load_seconds": [w.load_seconds for w in s.workers],
            "worker_peak_rss_mib": [round((w.peak_rss_bytes or 0) / 2**20) for w in s.workers],
            "driver_commit_seconds_per_trajectory": round(s.commit_seconds / n, 4), "batches": s.batches,
            "ingest_seconds_per_trajectory": round(ingest / n, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="trajectories")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the three configurations, alternating order")
    ap.add_argument("--factory", default="auditor.audit.runs:make_auditor",
                    help="module:function the auditor is built with (default: the embedded model)")
    args = ap.parse_args(argv)

    import ray

    from auditor.distributed.ray_runner import LOCAL_INIT

    trajs = trajectories(args.n)
    workdir = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    src = workdir / "inputs.jsonl"
    src.write_text("".join(t.to_jsonl_line() + "\n" for t in trajs), encoding="utf-8")
    loads = [os.getloadavg()[0]]
    runs: dict[str, list[dict]] = {"single": [], "ray_1": [], "ray_2": []}
    try:
        single, single_load = make_single(args.factory)
        t0 = time.perf_counter()
        ray.init(num_cpus=2, _temp_dir=str(workdir / "ray"), **LOCAL_INIT)  # as `audit trace --ray` starts one
        ray_start = time.perf_counter() - t0
        try:
            for r in range(args.rounds):  # A B C, then C B A: a load that drifts through the run cancels out
                order = ["single", "ray_1", "ray_2"] if r % 2 == 0 else ["ray_2", "ray_1", "single"]
                for config in order:
                    if config == "single":
                        runs[config].append(single(trajs, workdir))
                    else:
                        runs[config].append(on_ray(src, int(config[-1]), args.factory, workdir, args.batch_size))
                    loads.append(os.getloadavg()[0])
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def mean(config: str, key: str) -> float:
        return round(sum(x[key] for x in runs[config]) / len(runs[config]), 3)

    one, two = (dict(runs[c][-1]) for c in ("ray_1", "ray_2"))
    for config, merged in (("ray_1", one), ("ray_2", two)):
        for key in ("seconds_per_trajectory", "per_minute", "per_minute_end_to_end",
                    "driver_commit_seconds_per_trajectory", "ingest_seconds_per_trajectory"):
            merged[key] = mean(config, key)
        merged["worker_load_seconds"] = [s for x in runs[config] for s in x["worker_load_seconds"]]
        merged["worker_peak_rss_mib"] = [m for x in runs[config] for m in x["worker_peak_rss_mib"]]
    single_spt = mean("single", "seconds_per_trajectory")
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "platform": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "load_averages": [round(x, 2) for x in loads], "trajectories": len(trajs), "factory": args.factory,
        "batch_size": args.batch_size, "rounds": args.rounds, "ray_init_seconds": round(ray_start, 2),
        "single_load_seconds": round(single_load, 2), "single": runs["single"],
        "single_seconds_per_trajectory": single_spt, "single_per_minute": mean("single", "per_minute"),
        "single_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "ray_1": one, "ray_2": two, "rounds_ray_1": runs["ray_1"], "rounds_ray_2": runs["ray_2"],
        "overhead_1_worker": round(one["seconds_per_trajectory"] / single_spt - 1, 4),
        "overhead_1_worker_per_round": [round(a["seconds_per_trajectory"] / b["seconds_per_trajectory"] - 1, 4)
                                        for a, b in zip(runs["ray_1"], runs["single"])],
        "speedup_2_workers": round(one["seconds_per_trajectory"] / two["seconds_per_trajectory"], 3),
        "command": COMMAND,
    }
    out = ROOT / "benchmarks" / "results" / "distributed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "docs" / "benchmarks" / "distributed.md").write_text(render(result), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


def render(r: dict) -> str:
    one, two = r["ray_1"], r["ray_2"]
    w = one["seconds_per_trajectory"]  # a worker's cost per trajectory, dispatch included
    d = max(one["driver_commit_seconds_per_trajectory"], two["driver_commit_seconds_per_trajectory"])
    ceiling = 60 / d if d else float("inf")
    rows = "\n".join(f"| {n} | {min(60 * n / w, ceiling):,.0f} | {min(60 * n / w, ceiling) * 60 * 24:,.0f} |"
                     for n in (1, 2, 4, 8, 16, 64))
    loads = ", ".join(str(x) for x in r["load_averages"])
    model = "SmolLM2-135M (embedded)" if r["factory"].endswith("make_auditor") else f"`{r['factory']}`"
    return f"""# Distributed replay on Ray: throughput, overhead, memory

Generated by `benchmarks/bench_distributed.py`; reproduce with:

```bash
{r['command']}
```

{r['trajectories']} trajectories of the injection benchmark (every k-th), {model}, FlashTrace hops 1, each
trajectory audited, judged by the default policy and recorded, in {r['rounds']} rounds of the three
configurations (the order reversed every other round, so a load that drifts through the run cancels
out; each figure is the mean over rounds). Single process: `audit trace`'s loop (DuckDB store), torch
on 1 thread. Ray: a local cluster as
`audit trace --ray` starts one (`num_cpus=2`, started in {r['ray_init_seconds']} s; workers at normal priority,
not Ray's default nice 15), workers of 1 CPU and 1 torch thread each,
{r['batch_size']} trajectories per batch, results written as Parquet shards. Steady state: batches are
handed out once every worker is ready (`RayOptions(wait_for_workers=True)`) and timed from then to the
last commit (actor start and model load excluded; they are in the end-to-end figure).

| | s / trajectory | trajectories / min (steady) | trajectories / min (end to end) | peak memory per worker (each round) |
| --- | --- | --- | --- | --- |
| single process | {r['single_seconds_per_trajectory']:.2f} | {r['single_per_minute']:.1f} | – | {r['single_peak_rss_mib']} MiB (whole process) |
| Ray, 1 worker | {one['seconds_per_trajectory']:.2f} | {one['per_minute']:.1f} | {one['per_minute_end_to_end']:.1f} | {', '.join(f'{m} MiB' for m in one['worker_peak_rss_mib'])} |
| Ray, 2 workers | {two['seconds_per_trajectory']:.2f} | {two['per_minute']:.1f} | {two['per_minute_end_to_end']:.1f} | {', '.join(f'{m} MiB' for m in two['worker_peak_rss_mib'])} |

- **Overhead of the Ray path at one worker**: {100 * r['overhead_1_worker']:+.1f} % per trajectory against the
  single process (per round: {', '.join(f"{100 * x:+.1f} %" for x in r['overhead_1_worker_per_round'])}). The work per trajectory is
  the same; the Ray path adds shipping each batch to the actor and its tables back, and writing
  Parquet, which the driver does while the worker audits the next batch.
- **Two workers**: {r['speedup_2_workers']:.2f}× the one-worker throughput. This machine has 2 cores shared with
  other work (1-minute load averages during the run: {loads}); with a load above the core count
  the second worker competes for the same cores, so read this as a lower bound.
- **Memory**: each worker holds one copy of the model and its activations (peak RSS above); building it took
  {', '.join(f'{x:.0f}' for x in one['worker_load_seconds'] + two['worker_load_seconds'])} s per worker (imports and model load, paid once per worker).
- **Driver**: {1000 * d:.1f} ms per trajectory to write its shards and manifest record. The single process
  also records into DuckDB as it goes; the lake is ingested afterwards (`audit ingest`:
  {1000 * one['ingest_seconds_per_trajectory']:.1f} ms per trajectory, opening the database included), or queried in place.

## Projection (not measured): N workers

Computed from the costs measured above, not run: each worker audits a trajectory in
w = {w} s (the one-worker steady state, dispatch included) and the driver commits one in
d = {1000 * d:.1f} ms, so N workers sustain min(N / w, 1 / d) trajectories per second: linear in N until
the driver's commit rate ({ceiling:,.0f} trajectories / min) caps it.

| workers (N) | trajectories / min (projected) | per day (projected) |
| --- | --- | --- |
{rows}

With GPU workers w is the GPU's time per trajectory (unmeasured here: this machine has no GPU), and
the table scales by the CPU/GPU speed ratio until it meets the same driver ceiling; a larger
`--batch-size` lowers d (fewer, larger files). The projection assumes the inputs and the results lake
keep up (local disk here; on a cluster, a shared filesystem or object store).

Run {r['date']}, {r['platform']}.
"""


if __name__ == "__main__":
    raise SystemExit(main())
