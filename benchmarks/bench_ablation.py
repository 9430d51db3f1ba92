"""Benchmark `target_logprobs` on the embedded SmolLM2-135M: prefix-cache reuse vs full forwards.

    python benchmarks/bench_ablation.py            # full run (~3 min, one thread), writes the JSON
    python benchmarks/bench_ablation.py --quick    # small sizes, a smoke test

For each context length N (~600 and ~1,200 tokens), edit placement (*late*: each variant removes
a different 16-token segment in the last 15 % before the target; *early*: in the first 15 %) and
k = 1, 2, 4 variants, side by side in one run:

- *reuse*: one `target_logprobs(model, ids, target, k variants)` call (base + k sequences; the
  shared prefix is forwarded once and each sequence only from its first edit on). On CPU it runs
  with batch_size=1 (`--batch-size auto`): one thread gains nothing from a batch, and a batch of
  long right-padded suffixes through eager attention was 20-25 % slower than the same rows one by
  one (`batch_check` repeats the early, k=4 row of the first length in one batch of k+1);
- *full*: base + k plain forwards, one per sequence (``model(ids, logits_to_keep=T+1)``, batch 1,
  no cache), which is what scoring the variants cost before. Each sequence's full forward is timed
  once per (N, placement) and the k-subsets summed (the full path is those forwards in sequence).

The target is the last 16 tokens. Reported: seconds both ways, the ratio full / reuse, tokens
forwarded both ways (reuse counts right-padding), and the largest per-token log-prob difference
between the two (a correctness check, float32 rounding). Times are process CPU seconds by default
(robust to other jobs on the shared cores); wall seconds are in the JSON too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ablation.json"
COMMAND = "python benchmarks/bench_ablation.py"
SEGMENT = 16
TARGET = 16


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def _variants(n_ctx: int, placement: str, k: int):
    """k variants removing disjoint SEGMENT-token spans, all late (before t0) or all early."""
    from auditor.attribution import Variant

    if placement == "late":
        starts = [n_ctx - (i + 2) * SEGMENT for i in range(k)]  # the last ~15 % before the target
    else:
        starts = [SEGMENT + i * SEGMENT for i in range(k)]  # from position 16 on
    return [Variant(f"{placement}-{i}", [(s, s + SEGMENT, [])]) for i, s in enumerate(starts)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--lengths", default="600,1200")
    parser.add_argument("--ks", default="1,2,4")
    parser.add_argument("--batch-size", default="auto",
                        help="target_logprobs batch size: an int, or auto = 1 on CPU, k+1 (one batch) on a GPU")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is pure work)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default=None)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.ks = "160", "1,2"

    import torch

    torch.set_num_threads(args.threads)
    from auditor.attribution import target_logprobs
    from auditor.models import load_model

    model, _tok = load_model()
    device = next(model.parameters()).device

    def batch_for(k: int) -> int:
        if args.batch_size != "auto":
            return int(args.batch_size)
        return k + 1 if device.type == "cuda" else 1

    clock = args.clock or ("wall" if device.type == "cuda" else "cpu")
    started = time.perf_counter()
    load_start = _loadavg()
    gen = torch.Generator().manual_seed(0)
    lengths = [int(x) for x in args.lengths.split(",")]
    ks = [int(x) for x in args.ks.split(",")]
    all_ids = torch.randint(100, model.config.vocab_size - 1, (max(lengths),), generator=gen)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", flush=True)

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return out, (cpu if clock == "cpu" else wall), wall

    @torch.no_grad()
    def full_logprobs(tokens: torch.Tensor, start: int) -> torch.Tensor:
        logits = model(input_ids=tokens[None].to(device), use_cache=False, logits_to_keep=TARGET + 1).logits[0, :-1]
        lp = torch.log_softmax(logits.float(), -1)
        return lp.gather(-1, tokens[start:, None].to(lp.device))[:, 0].cpu()

    def count_tokens(fn):
        seen: list[int] = []
        h = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: seen.append(a[0].numel()))
        try:
            return fn(), sum(seen)
        finally:
            h.remove()

    rows = []
    batch_check = None
    for N in lengths:
        ids = all_ids[:N]
        t0 = N - TARGET
        target = range(t0, N)
        for placement in ("late", "early"):
            variants = _variants(t0, placement, max(ks))
            # full forwards, each sequence once (base first), timed just before the first reuse run
            # that includes it, so that both sides of a row are measured close together in time
            full_s, full_wall, full_lp, full_tok = [], [], [], []
            seqs = [None, *variants]
            for k in ks:
                for v in seqs[len(full_s): k + 1]:
                    toks = torch.cat([v.apply(ids[:t0]) if v else ids[:t0], ids[t0:]])
                    lp, s, w = timed(lambda: full_logprobs(toks, toks.numel() - TARGET))
                    full_s.append(s), full_wall.append(w), full_lp.append(lp), full_tok.append(toks.numel())
                (res, n_fwd), s, w = timed(lambda: count_tokens(
                    lambda: target_logprobs(model, ids, target, variants[:k], batch_size=batch_for(k))))
                diff = max(float((torch.tensor(r.token_logprobs) - ref).abs().max()) for r, ref in zip(res, full_lp))
                row = {
                    "context": N, "target": TARGET, "placement": placement, "k": k, "batch_size": batch_for(k),
                    "edit_starts": [v.first for v in variants[:k]],
                    "reuse_seconds": s, "reuse_wall_seconds": w,
                    "full_seconds": sum(full_s[: k + 1]), "full_wall_seconds": sum(full_wall[: k + 1]),
                    "reuse_tokens_forwarded": n_fwd, "full_tokens_forwarded": sum(full_tok[: k + 1]),
                    "max_abs_logprob_diff": diff,
                }
                row["ratio_full_over_reuse"] = row["full_seconds"] / row["reuse_seconds"]
                row["token_ratio_full_over_reuse"] = row["full_tokens_forwarded"] / row["reuse_tokens_forwarded"]
                rows.append(row)
                log(f"N={N} {placement:5s} k={k}: reuse {s:.2f}s vs full {row['full_seconds']:.2f}s "
                    f"(x{row['ratio_full_over_reuse']:.2f}); tokens {n_fwd} vs {row['full_tokens_forwarded']}; "
                    f"max |dlogp| {diff:.1e}")
            if placement == "early" and N == lengths[0] and batch_for(max(ks)) != max(ks) + 1:
                # the same work in one batch of k+1 rows, right after the row above, for comparison
                k = max(ks)
                _, s, w = timed(lambda: target_logprobs(model, ids, target, variants[:k], batch_size=k + 1))
                batch_check = {"context": N, "placement": placement, "k": k, "batch_size": k + 1,
                               "reuse_seconds": s, "reuse_wall_seconds": w,
                               "seconds_over_batch_size_1": s / rows[-1]["reuse_seconds"]}
                log(f"N={N} {placement} k={k} in one batch of {k + 1}: {s:.2f}s "
                    f"(x{batch_check['seconds_over_batch_size_1']:.2f} of batch size 1)")

    results = {
        "rows": rows,
        "batch_check": batch_check,
        "meta": {
            "model": "SmolLM2-135M-Instruct (embedded, float32, eager attention)",
            "device": str(device), "threads": args.threads, "clock": clock,
            "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "loadavg_start": load_start, "loadavg_end": _loadavg(),
            "total_seconds": time.perf_counter() - started,
            "command": " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]),
            "note": "reuse = target_logprobs (base + k variants, shared prefix KV cache, batch_size as in each row); "
                    "full = base + k plain forwards, batch 1, logits only for the target rows; each variant removes "
                    "a 16-token segment late (just before the target) or early (from position 16); batch_check = "
                    "the early, largest-k row again in one batch",
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
