"""Benchmark the state cache on the embedded SmolLM2-135M: 16-bit storage and incremental capture.

    python benchmarks/bench_state_cache.py            # full run (~5 min, one thread), writes the JSON
    python benchmarks/bench_state_cache.py --quick    # small sizes, a smoke test

Three measurements, written to benchmarks/results/state_cache.json:

1. *Bytes per 1k tokens* of a `StateCache` stored in float32, bfloat16 and float16 (every state is
   [.., N, ..], so bytes are linear in N; measured on a 256-token capture and scaled), and whether
   32k tokens fit in 8 GB in 16-bit (bytes per token × 32,768).
2. *FlashTrace error of 16-bit storage*: on 1k- and 2k-token sequences of real text (this repo's
   README and docs), FlashTrace (1 hop; output = last 32 tokens, reasoning = the 64 before) from a
   float32 cache vs the same cache stored in bfloat16 / float16. A 16-bit capture runs the same
   float32 forward and only rounds what it keeps, so the 16-bit caches are the float32 cache cast
   (checked bit for bit against `capture(dtype=...)` on a short sequence). Reported: the largest
   |score difference| divided by the largest float32 score, and the L1 difference of the score
   vectors divided by their L1 norm.
3. *Extend by one turn vs full re-capture* as a sequence grows from ~1k to ~8k tokens in turns of
   400 tokens (states in `--dtype`, bfloat16 by default as a guard would keep them): each turn is
   an `extend`, and at checkpoints (~1k, 2k, 4k, 8k) a full `capture` of the same tokens is timed
   right after it (with the largest state difference between the two, relative to the state's
   magnitude). Once `--budget` seconds have passed the growth stops early; the last length reached
   is always compared with a full capture.

Times are process CPU seconds with one thread by default (robust to other jobs on the shared cores;
wall seconds are in the JSON too).
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
RESULTS = ROOT / "benchmarks" / "results" / "state_cache.json"
COMMAND = "python benchmarks/bench_state_cache.py"
GB = 10**9


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def _corpus_text() -> str:
    parts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "auditor").rglob("*.py"))]
    return "\n\n".join(p.read_text(errors="replace") for p in parts if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--score-lengths", default="1024,2048")
    parser.add_argument("--start", type=int, default=1000, help="first length of the growth sweep")
    parser.add_argument("--stop", type=int, default=8200, help="last length of the growth sweep")
    parser.add_argument("--turn", type=int, default=400, help="tokens per turn")
    parser.add_argument("--checkpoints", default="1000,2200,4200,8200", help="lengths where a full capture is timed")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--budget", type=float, default=210.0,
                        help="stop growing (after one last full capture) once this many wall seconds have passed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is pure work)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default=None)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if args.quick:
        args.score_lengths, args.start, args.stop, args.turn, args.checkpoints = "256", 200, 600, 200, "200,600"

    import torch

    torch.set_num_threads(args.threads)
    from auditor.attribution import StateCache, capture, extend
    from auditor.attribution.flashtrace import flashtrace
    from auditor.attribution.result import ResolvedTarget
    from auditor.models import load_model

    model, tok = load_model()
    device = next(model.parameters()).device
    clock = args.clock or ("wall" if device.type == "cuda" else "cpu")
    started = time.perf_counter()
    load_start = _loadavg()
    corpus = torch.tensor(tok(_corpus_text())["input_ids"])
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

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

    def cast(cache, dtype):
        """The cache as `capture(dtype=...)` would store it: the same float32 forward, rounded."""
        out = StateCache(input_ids=cache.input_ids, adapter=cache.adapter, dtype=dtype, device=cache.device,
                         params=cache.params)
        for name in ("resid", "mid", "queries", "keys", "values"):
            setattr(out, name, [t.to(dtype) for t in getattr(cache, name)])
        out.out_scale = None if cache.out_scale is None else [t.to(dtype) for t in cache.out_scale]
        return out

    results: dict = {}

    # ---- 1. bytes per 1k tokens, and 32k tokens in 8 GB
    probe = corpus[:256]
    full32 = capture(model, probe)
    sizes = {}
    for name, dt in dtypes.items():
        c = capture(model, probe, dtype=dt)
        sizes[name] = c.nbytes() * 1000 // probe.numel()
        if dt != torch.float32:  # the cast equals a 16-bit capture bit for bit
            ref = cast(full32, dt)
            assert all(torch.equal(c[n], ref[n]) for n in c.names()), f"cast != capture(dtype={name})"
    per_token_16 = sizes["bfloat16"] / 1000
    results["bytes_per_1k_tokens"] = sizes
    results["fit_32k_in_8GB_16bit"] = {
        "bytes_per_token": per_token_16, "tokens": 32768, "bytes": per_token_16 * 32768,
        "GB": per_token_16 * 32768 / GB, "GiB": per_token_16 * 32768 / 2**30, "fits_8GB": per_token_16 * 32768 <= 8 * GB,
        "note": "states only; the model's weights and a forward's working memory come on top",
    }
    log(f"bytes / 1k tokens: {sizes}; 32k tokens in 16-bit: {per_token_16 * 32768 / GB:.2f} GB")

    # ---- 2. FlashTrace error of 16-bit storage
    rows = []
    offset = 0
    for n in map(int, args.score_lengths.split(",")):
        ids = corpus[offset:offset + n]
        offset += n
        cache = capture(model, ids)
        target = ResolvedTarget(output=list(range(n - 32, n)), reasoning=list(range(n - 96, n - 32)),
                                inputs=list(range(n - 96)), weights=[1.0] * 32, spans=None)
        ref = flashtrace(cache, target, hops=1).token_scores
        row = {"tokens": n}
        for name in ("bfloat16", "float16"):
            got = flashtrace(cast(cache, dtypes[name]), target, hops=1).token_scores
            diff = (got - ref).abs()
            row[name] = {"max_abs_diff_over_max_score": float(diff.max() / ref.abs().max()),
                         "l1_diff_over_l1": float(diff.sum() / ref.abs().sum()),
                         "top10_overlap": len(set(got.topk(10).indices.tolist()) & set(ref.topk(10).indices.tolist()))}
        rows.append(row)
        log(f"flashtrace 16-bit error at {n} tokens: {row}")
        del cache
    results["flashtrace_16bit_error"] = rows

    # ---- 3. extend by one turn vs full re-capture as the sequence grows
    dtype = dtypes[args.dtype]
    checkpoints = {int(x) for x in args.checkpoints.split(",")}
    growth = []
    ids = corpus[: args.stop]
    if ids.numel() < args.stop:
        raise SystemExit(f"the corpus has only {ids.numel()} tokens; lower --stop")
    cache, s, w = timed(lambda: capture(model, ids[: args.start], dtype=dtype))
    n = args.start
    growth.append({"tokens": n, "full_capture_seconds": s, "full_capture_wall_seconds": w,
                   "cache_bytes": cache.nbytes()})
    log(f"growth: capture {n} tokens {s:.2f}s")
    stopped_early = False
    while n + args.turn <= args.stop:
        new = ids[n:n + args.turn]
        cache, s, w = timed(lambda: extend(cache, model, new))
        n += args.turn
        row = {"tokens": n, "extend_seconds": s, "extend_wall_seconds": w, "cache_bytes": cache.nbytes()}
        stopped_early = time.perf_counter() - started > args.budget and n + args.turn <= args.stop
        if n in checkpoints or stopped_early or n + args.turn > args.stop:  # the last length is always compared
            full, fs, fw = timed(lambda: capture(model, ids[:n], dtype=dtype))
            row.update(full_capture_seconds=fs, full_capture_wall_seconds=fw, ratio_full_over_extend=fs / s,
                       max_state_diff_rel=max(float((cache[k].float() - full[k].float()).abs().max()
                                                    / full[k].float().abs().max()) for k in full.names()))
            del full
        growth.append(row)
        log(f"growth: extend to {n} tokens {s:.2f}s" + (f"; full capture {row['full_capture_seconds']:.2f}s "
            f"(x{row['ratio_full_over_extend']:.1f})" if "full_capture_seconds" in row else ""))
        if stopped_early:
            log(f"growth: budget of {args.budget:.0f}s spent, stopped at {n} tokens")
            break
    results["growth"] = {"dtype": args.dtype, "turn": args.turn, "rows": growth, "stopped_early": stopped_early}

    results["meta"] = {
        "model": "SmolLM2-135M-Instruct (embedded, float32, eager attention)",
        "device": str(device), "threads": args.threads, "clock": clock,
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "loadavg_start": load_start, "loadavg_end": _loadavg(),
        "total_seconds": time.perf_counter() - started,
        "command": " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]),
        "corpus": "README.md, docs/**/*.md, auditor/**/*.py of this repo, tokenized and concatenated",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
