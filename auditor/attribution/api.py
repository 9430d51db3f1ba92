"""The public calls: `attribute`, `attribute_many`, `list_methods`.

    >>> import torch
    >>> from auditor.attribution import Target, attribute, attribute_many
    >>> from auditor.testing import tiny_model                  # a tiny random llama, no download
    >>> model, input_ids = tiny_model("llama"), torch.arange(2, 50)
    >>> result = attribute(model, input_ids, Target(output=range(40, 48)), method="flashtrace", hops=1)
    >>> result.token_scores.shape                               # a score per position, inputs before 40
    torch.Size([48])
    >>> results = attribute_many(model, input_ids, [Target(output=range(40, 48)), Target(output=range(20, 24))])
    >>> len(results)                                            # two targets, one forward
    2

Methods live in a registry (`METHODS`); each declares whether it works from the one-forward
`StateCache` (flashtrace, ifr-token, attention) or needs the model itself (loo).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .baselines import attention_baseline, ifr_token, loo, loo_segments, loo_shared
from .flashtrace import DEFAULT_CHUNK, flashtrace
from .memory import PeakMemory
from .result import AttributionResult, ResolvedTarget, Target
from .capturing import capture
from .states import StateCache, as_input_ids, model_device


@dataclass(frozen=True)
class Method:
    name: str
    uses_cache: bool
    run: Callable[..., Any]
    description: str


def _run_flashtrace(cache: StateCache, target: ResolvedTarget, hops: int, chunk_size: int, kw: dict):
    out = flashtrace(cache, target, hops, chunk_size=chunk_size, threshold=float(kw.pop("threshold", 0.0)))
    return out.token_scores, out.hop_scores, out.flow_ratios, out.layer_shares, {}


def _run_ifr(cache: StateCache, target: ResolvedTarget, hops: int, chunk_size: int, kw: dict):
    out = ifr_token(cache, target, chunk_size=chunk_size, threshold=float(kw.pop("threshold", 0.0)),
                    ifr_batch=int(kw.pop("ifr_batch", 8)), progress=kw.pop("progress", None))
    return out.token_scores, out.hop_scores, [], out.layer_shares, out.extra


def _run_attention(cache: StateCache, target: ResolvedTarget, hops: int, chunk_size: int, kw: dict):
    out = attention_baseline(cache, target, layers=kw.pop("layers", "last"), chunk_size=chunk_size)
    return out.token_scores, out.hop_scores, [], out.layer_shares, out.extra


def _loo_options(kw: dict) -> dict:
    """Pop loo's options from kw (the per-target and the shared path read them alike)."""
    return {"replacement_id": kw.pop("replacement_id", None), "segment_size": int(kw.pop("segment_size", 8)),
            "batch_size": int(kw.pop("batch_size", 4)), "progress": kw.pop("progress", None)}


def _run_loo(model, input_ids, target: ResolvedTarget, hops: int, chunk_size: int, kw: dict):
    out = loo(model, input_ids, target, **_loo_options(kw))
    return out.token_scores, out.hop_scores, [], out.layer_shares, out.extra


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("flashtrace", True, _run_flashtrace, "span-wise IFR with recursive hops (one pass per hop)"),
        Method("ifr-token", True, _run_ifr, "per-token IFR for every output token, averaged (exhaustive)"),
        Method("loo", False, _run_loo, "leave-one-segment-out: drop of the target log-probability"),
        Method("attention", True, _run_attention, "attention column sums over the target (last layer or mean)"),
    )
}


def list_methods() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown attribution method {name!r}; valid methods: {', '.join(METHODS)}") from None


def _versions() -> dict[str, str]:
    import transformers

    from importlib.metadata import PackageNotFoundError, version

    try:
        auditor_version = version("auditor")
    except PackageNotFoundError:  # pragma: no cover
        auditor_version = "unknown"
    return {"auditor": auditor_version, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def _dtype_name(dtype) -> str:
    if dtype is None:
        return "float32"
    return str(dtype).replace("torch.", "")


def _check_cache(cache: StateCache, ids: torch.Tensor, end: int) -> None:
    if cache.n_tokens < end or not torch.equal(cache.input_ids[:end], ids[:end]):
        raise ValueError("the given cache was captured for a different sequence (or a shorter prefix)")


def _one(model, ids: torch.Tensor, target: Target, method: Method, hops: int, chunk_size: int, dtype,
         cache: StateCache | None, kw: dict, forward_seconds: float, shared: bool) -> AttributionResult:
    rt = target.resolved(ids.numel())
    kw = dict(kw)
    start = time.perf_counter()
    cpu_start = time.process_time()
    device = model_device(model) if model is not None else cache.device  # type: ignore[union-attr]
    with PeakMemory(device) as pm:
        if method.uses_cache:
            own_cache = cache is None
            if own_cache:
                cache = capture(model, ids[: rt.end], dtype=dtype, store_attention=kw.pop("attention", "recompute") == "store")
                forward_seconds = cache.forward_seconds
            else:
                kw.pop("attention", None)
                _check_cache(cache, ids, rt.end)
            scores, hop_scores, rhos, shares, extra = method.run(cache, rt, hops, chunk_size, kw)
        else:
            kw.pop("attention", None)
            scores, hop_scores, rhos, shares, extra = method.run(model, ids, rt, hops, chunk_size, kw)
            forward_seconds = 0.0
    _check_consumed(method, kw)
    with_cache = method.uses_cache and cache is not None
    return _result(ids, target, rt, method, hops, chunk_size, (scores, hop_scores, rhos, shares, extra),
                   dtype=cache.dtype if with_cache else next(model.parameters()).dtype, device=device,
                   seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start,
                   forward_seconds=forward_seconds, shared=shared, peak_bytes=pm.peak_bytes,
                   cache_bytes=cache.nbytes() if with_cache else 0)


def _check_consumed(method: Method, kw: dict) -> None:
    if kw:
        raise TypeError(f"method {method.name!r} got unexpected keyword arguments: {', '.join(sorted(kw))}")


def _result(ids: torch.Tensor, target: Target, rt: ResolvedTarget, method: Method, hops: int, chunk_size: int,
            outputs: tuple, *, dtype, device, seconds: float, cpu_seconds: float, forward_seconds: float,
            shared: bool, peak_bytes: int, cache_bytes: int) -> AttributionResult:
    scores, hop_scores, rhos, shares, extra = outputs
    n = ids.numel()
    info: dict[str, Any] = {
        "method": method.name,
        "hops": hops if method.name == "flashtrace" else 0,
        "n_tokens": n,
        "n_output": len(rt.output),
        "n_reasoning": len(rt.reasoning),
        "n_inputs": len(rt.inputs),
        "dtype": _dtype_name(dtype),
        "device": str(device),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "forward_seconds": forward_seconds,
        "shared_forward": shared,
        "peak_memory_bytes": int(peak_bytes),
        "cache_bytes": int(cache_bytes),
        "chunk_size": chunk_size,
        "versions": _versions(),
        **extra,
    }
    return AttributionResult(
        method=method.name,
        hops=info["hops"],
        token_scores=_fit(scores, n),
        hop_scores=[_fit(h, n) for h in hop_scores],
        flow_ratios=[float(r) for r in rhos],
        layer_shares={k: v.detach().float().cpu() for k, v in shares.items()},
        info=info,
        target=target.to_dict(),
    )


def _loo_groups(resolved: list[ResolvedTarget], segment_size: int) -> list[list[int]]:
    """Indices of targets with identical loo segments, groups of two or more (see `loo_shared`)."""
    by_key: dict[tuple, list[int]] = {}
    for k, rt in enumerate(resolved):
        by_key.setdefault(tuple(loo_segments(rt, segment_size)), []).append(k)
    return [g for g in by_key.values() if len(g) > 1]


def _loo_group(model, ids: torch.Tensor, targets: list[Target], resolved: list[ResolvedTarget], group: list[int],
               method: Method, hops: int, chunk_size: int, kw: dict) -> dict[int, AttributionResult]:
    """Results of one `_loo_groups` group from one set of forwards; each target's info["seconds"],
    info["cpu_seconds"] are the group's time split evenly and info["peak_memory_bytes"] is the group's peak."""
    kw = dict(kw)
    kw.pop("attention", None)
    options = _loo_options(kw)
    _check_consumed(method, kw)
    device = model_device(model)
    start, cpu_start = time.perf_counter(), time.process_time()
    with PeakMemory(device) as pm:
        outs = loo_shared(model, ids, [resolved[k] for k in group], **options)
    seconds = (time.perf_counter() - start) / len(group)
    cpu_seconds = (time.process_time() - cpu_start) / len(group)
    return {k: _result(ids, targets[k], resolved[k], method, hops, chunk_size,
                       (o.token_scores, o.hop_scores, [], o.layer_shares, o.extra),
                       dtype=next(model.parameters()).dtype, device=device, seconds=seconds, cpu_seconds=cpu_seconds,
                       forward_seconds=0.0, shared=True, peak_bytes=pm.peak_bytes, cache_bytes=0)
            for k, o in zip(group, outs)}


def _fit(s: torch.Tensor, n: int) -> torch.Tensor:
    s = s.detach().float().cpu()
    if s.numel() == n:
        return s
    out = torch.zeros(n)
    out[: min(n, s.numel())] = s[:n]
    return out


def attribute(
    model,
    input_ids,
    target: Target,
    method: str = "flashtrace",
    hops: int = 1,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    dtype: torch.dtype | str | None = None,
    cache: StateCache | None = None,
    **kw: Any,
) -> AttributionResult:
    """Explain `target` (positions of `input_ids`) with `method`.

    hops: recursive hops through the reasoning (FlashTrace; 0 = output only, the paper uses 1).
    chunk_size: rows/sources handled at once; results do not depend on it, memory does.
    dtype: storage dtype of the captured states ("bfloat16" halves memory; sums stay float32).
    cache: a `StateCache` from `capture(model, input_ids)` to reuse (no new forward).
    kw: method options: threshold (flashtrace/ifr-token), attention="store" (keep full maps,
        tests only), ifr_batch, layers ("last"/"mean" for attention), replacement_id,
        segment_size, batch_size, progress (loo/ifr-token).
    """
    m = get_method(method)
    ids = as_input_ids(input_ids)
    return _one(model, ids, target, m, hops, chunk_size, dtype, cache, kw, 0.0, shared=cache is not None)


def attribute_many(
    model,
    input_ids,
    targets: Sequence[Target],
    method: str = "flashtrace",
    hops: int = 1,
    *,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    dtype: torch.dtype | str | None = None,
    cache: StateCache | None = None,
    **kw: Any,
) -> list[AttributionResult]:
    """Explain many targets of one sequence with ONE forward pass (for cache-based methods):
    each target is a prefix of `input_ids`, and a causal model's states for a prefix are the
    states of the full sequence. Returns one result per target, in order; each result's
    info["forward_seconds"] is the shared forward's time and info["shared_forward"] is True.

    loo: targets with the same segments (e.g. the per-argument targets of a tool call, which share
    their action's spans) share their ablated forwards (`loo_shared`); the results equal separate
    `attribute(..., method="loo")` calls, and info["seconds"] is the group's time split evenly.
    """
    m = get_method(method)
    ids = as_input_ids(input_ids)
    targets = list(targets)
    if not targets:
        return []
    resolved = [t.resolved(ids.numel()) for t in targets]
    forward_seconds = 0.0
    if m.uses_cache and cache is None:
        end = max(r.end for r in resolved)
        cache = capture(model, ids[:end], dtype=dtype, store_attention=kw.get("attention", "recompute") == "store")
        forward_seconds = cache.forward_seconds
    elif cache is not None:
        forward_seconds = cache.forward_seconds
    groups = _loo_groups(resolved, int(kw.get("segment_size", 8))) if m.name == "loo" else []
    group_of = {k: g for g in groups for k in g}
    done: dict[int, AttributionResult] = {}
    results = []
    for k, t in enumerate(targets):
        if k in group_of:
            if k not in done:
                done.update(_loo_group(model, ids, targets, resolved, group_of[k], m, hops, chunk_size, kw))
            results.append(done.pop(k))
        else:
            results.append(_one(model, ids, t, m, hops, chunk_size, dtype, cache, kw, forward_seconds, shared=True))
        if progress is not None:
            progress(k + 1, len(targets))
    return results


__all__ = ["attribute", "attribute_many", "list_methods", "get_method", "METHODS", "Method"]
