"""Benchmark `audit check` on the injection benchmark v2 and calibrate its verdict.

    python benchmarks/bench_check.py --replay flashtrace --jobs 2     # audits (resumable; hours on 2 cores)
    python benchmarks/bench_check.py --replay attention --every 3     # baselines on a subset of runs
    python benchmarks/bench_check.py --replay loo --every 5
    python benchmarks/bench_check.py --calibrate                      # fit the verdict on calibration, write the policy
    python benchmarks/bench_check.py                                  # analyse: check.json, check_raw.jsonl, the doc
    python benchmarks/bench_check.py --reuse                          # analyse from check_raw.jsonl alone

See `check_replay.py` (the replay passes) and `check_analysis.py` (features, figures, the page).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "injection"))


def benchmark_runs(split: str = "all", every: int = 1, limit: int = 0) -> list:
    """The benchmark's runs, calibration first, sorted by id; every n-th within each split."""
    from dataset import load_runs  # type: ignore[import-not-found]

    runs = load_runs()
    out = []
    for name in ("calibration", "heldout"):
        if split not in ("all", name):
            continue
        mine = sorted((r for r in runs if r.split == name), key=lambda r: r.id)[::every]
        out.extend(mine[:limit] if limit else mine)
    return out


def _work(args: tuple) -> None:
    import check_replay  # type: ignore[import-not-found]

    name, ids, shard, threads = args
    by_id = {r.id: r for r in benchmark_runs()}
    check_replay.replay_shard(name, [by_id[i] for i in ids], shard, threads)


def replay(name: str, runs: list, jobs: int, threads: int) -> None:
    import random

    # a seeded shuffle within each split: an interrupted pass leaves a sample of every domain
    ids = []
    for split in ("calibration", "heldout"):
        mine = [r.id for r in runs if r.split == split]
        random.Random(7).shuffle(mine)
        ids += mine
    import json
    import time

    import check_replay  # type: ignore[import-not-found]

    work = [(name, ids[k::jobs], k, threads) for k in range(jobs)]
    t0 = time.time()
    if jobs == 1:
        _work(work[0])
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(jobs) as pool:
            pool.map(_work, work)
    check_replay.AUDITS.mkdir(parents=True, exist_ok=True)
    with (check_replay.AUDITS / "passes.jsonl").open("a") as fh:  # wall time of each pass, for the page
        fh.write(json.dumps({"pass": name, "runs": len(ids), "jobs": jobs, "started": t0,
                             "seconds": time.time() - t0}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description="Benchmark and calibrate audit check (injection benchmark v2).")
    ap.add_argument("--replay", choices=("flashtrace", "attention", "loo"), help="run a replay pass")
    ap.add_argument("--split", default="all", choices=("all", "calibration", "heldout"))
    ap.add_argument("--every", type=int, default=1, help="replay every n-th run of each split")
    ap.add_argument("--limit", type=int, default=0, help="at most N runs per split (smoke runs)")
    ap.add_argument("--jobs", type=int, default=1, help="replay processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--calibrate", action="store_true", help="fit the verdict on calibration and write the policy")
    ap.add_argument("--reuse", action="store_true", help="analyse from benchmarks/results/check_raw.jsonl alone")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks/check.md")
    ap.add_argument("--calibration-only", action="store_true",
                    help="analyse the calibration split alone (choose and fit; no held-out figures, no page)")
    args = ap.parse_args()
    if args.replay:
        replay(args.replay, benchmark_runs(args.split, args.every, args.limit), args.jobs, args.threads)
        return
    import check_analysis  # type: ignore[import-not-found]

    check_analysis.main(calibrate=args.calibrate, reuse=args.reuse, doc=not args.no_doc,
                        calibration_only=args.calibration_only)


if __name__ == "__main__":
    main()
