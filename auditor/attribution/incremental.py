"""Incremental capture: extend a `StateCache` by new tokens without re-running its prefix.

A runtime guard judges each new turn of a growing conversation; re-capturing the whole sequence
per turn costs O(N) forward work per turn (O(N²) over a session). `extend(cache, model, new_ids)`
runs the model over the new tokens only, with the prefix's keys/values as the model's KV cache, and
appends the new tokens' states: the result equals `capture(model, cat(cache.input_ids, new_ids))`
to float error (exactly the same arithmetic per new token, up to the order of float sums).

Why the prefix's keys can be fed back as the model's cache: `StateCache.keys`/`values` are read
inside the model's own attention call, after q/k norms and rotary and before GQA head repetition,
which is exactly what every supported family's attention passes to `Cache.update` (a test checks
the model's own `DynamicCache` against the captured keys/values per architecture). Positions come
from the cache length (``position_ids = P..P+n-1``), so rotary and absolute embeddings (GPT-2) of
the new tokens are those of a full run.

Every layer gets a plain `DynamicLayer` (all P keys, also for sliding-window layers): the capture's
attention function (`states._capture_attention`) ignores the model's mask and applies the causal
offset, sliding window and soft-capping itself from absolute positions (query i = P + r sees key j
iff j <= i and i - j < window), so it needs every key. Per layer it records the new tokens'
queries/keys/values; residual states and sandwich norms' `out_scale` come from hooks on the new
tokens' rows, as in a full capture (those are per-position quantities).

16-bit storage: keys/values fed back are cast to the model's dtype; the new tokens then attend to
16-bit-rounded prefix keys/values, so the extension differs from a full 16-bit capture by about the
storage rounding (see benchmarks/bench_state_cache.py for its effect on FlashTrace scores).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from .states import StateCache, _record_forward, as_input_ids, model_device

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel


def _model_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32  # pragma: no cover


def past_cache(cache: StateCache, model: "PreTrainedModel"):
    """The prefix's keys/values as a transformers `DynamicCache` (batch 1, model dtype, every key)."""
    from transformers import DynamicCache

    dtype = _model_dtype(model)
    data = [(k[None].to(dtype), v[None].to(dtype)) for k, v in zip(cache.keys, cache.values)]
    return DynamicCache(ddp_cache_data=data)


def _cat(old: list[torch.Tensor], new: list[torch.Tensor], dim: int) -> list[torch.Tensor]:
    return [torch.cat([a, b], dim=dim) for a, b in zip(old, new)]


@torch.no_grad()
def extend(cache: StateCache, model: "PreTrainedModel", new_ids) -> StateCache:
    """A new `StateCache` for ``cache.input_ids + new_ids``; `cache` itself is left unchanged.

    `model` must be the model the cache was captured with. The new cache keeps the prefix's
    storage dtype; `forward_seconds` is the extension's own forward time.
    """
    if cache.adapter.model is not model:
        raise ValueError("extend needs the model the cache was captured with (got another model object)")
    new = as_input_ids(new_ids)
    P, n = cache.n_tokens, new.numel()
    device = model_device(model)
    if device != cache.device:
        raise ValueError(f"the cache lives on {cache.device} but the model on {device}")
    ids = torch.cat([cache.input_ids, new])
    out = StateCache(input_ids=ids, adapter=cache.adapter, dtype=cache.dtype, device=device)
    start, cpu_start = time.perf_counter(), time.process_time()
    s = _record_forward(model, cache.adapter, new, out, cache.stored_attention is not None,
                        past=past_cache(cache, model), offset=P)
    out.forward_seconds = time.perf_counter() - start
    out.forward_cpu_seconds = time.process_time() - cpu_start
    for l, (a, b) in enumerate(zip(cache.params, s["params"])):
        if a != b:
            raise RuntimeError(f"layer {l}: attention parameters changed between capture and extension ({a} vs {b})")
    out.params = list(cache.params)
    out.resid = _cat(cache.resid, s["resid"], 0)
    out.mid = _cat(cache.mid, s["mid"], 0)
    out.queries = _cat(cache.queries, s["queries"], 1)
    out.keys = _cat(cache.keys, s["keys"], 1)
    out.values = _cat(cache.values, s["values"], 1)
    if cache.out_scale is not None:
        out.out_scale = _cat(cache.out_scale, s["out_scale"], 0)
    if cache.stored_attention is not None:
        maps = []
        for old, rows in zip(cache.stored_attention, s["attn"]):  # [H, P, P], [H, n, P+n]
            full = torch.zeros(old.shape[0], P + n, P + n, dtype=old.dtype, device=old.device)
            full[:, :P, :P] = old
            full[:, P:] = rows
            maps.append(full)
        out.stored_attention = maps
    return out


__all__ = ["extend", "past_cache"]
