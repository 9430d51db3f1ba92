"""Baselines shipped in the same API (algorithm.md §7).

- `ifr_token`: per-token IFR, exhaustively: every output token is its own one-token target
  (w = one-hot), its hop-0 distribution computed exactly as FlashTrace's span pass with |T| = 1,
  and the distributions averaged (weighted by the target weights). Cost O(|O|·N·H·d) vector work
  against FlashTrace's O(N·H·d). Targets go through in batches (`ifr_batch`) sharing the
  per-source vectors f; the result does not depend on the batch size.
- `attention_baseline`: attention column sums over the target rows (weighted), averaged over
  heads, of the last layer (``layers="last"``, the default) or the mean over all layers
  (``layers="mean"``); restricted to the inputs and normalised to sum 1.
- `loo`: leave-one-segment-out. Each segment (Target.spans, or runs of at most `segment_size`
  consecutive input tokens) is replaced by `replacement_id` and the drop of the target's
  weighted log-probability Σ_i w_i log p(tok_i | prefix) is the score of every token in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .flashtrace import DEFAULT_CHUNK, column_sums, span_pass
from .result import ResolvedTarget
from .states import StateCache, as_input_ids, model_device


@dataclass
class BaselineOutput:
    token_scores: torch.Tensor  # [N]
    hop_scores: list[torch.Tensor]
    layer_shares: dict[str, torch.Tensor]
    extra: dict


def _restrict(s: torch.Tensor, inputs: list[int], normalise: bool) -> torch.Tensor:
    out = torch.zeros_like(s)
    if inputs:
        X = torch.tensor(inputs, dtype=torch.long)
        out[X] = s[X]
    if normalise and float(out.sum()) > 0:
        out = out / out.sum()
    return out


@torch.no_grad()
def ifr_token(cache: StateCache, target: ResolvedTarget, *, chunk_size: int = DEFAULT_CHUNK,
              threshold: float = 0.0, ifr_batch: int = 8, progress=None) -> BaselineOutput:
    N = cache.n_tokens
    out_pos = target.output
    wts = torch.tensor(target.weights)
    wts = wts / wts.sum()
    total = torch.zeros(N)
    shares = {k: torch.zeros(cache.n_layers) for k in ("attention", "residual", "mlp")}
    for b0 in range(0, len(out_pos), ifr_batch):
        batch = out_pos[b0:b0 + ifr_batch]
        P = batch[-1] + 1
        W = torch.zeros(len(batch), P)
        W[torch.arange(len(batch)), torch.tensor(batch)] = 1.0
        res = span_pass(cache, W, chunk_size=chunk_size, threshold=threshold)
        bw = wts[b0:b0 + len(batch)]
        total[:P] += (bw[:, None] * res.scores).sum(0)
        shares["attention"] += (bw[:, None] * res.attention).sum(0)
        shares["residual"] += (bw[:, None] * res.residual).sum(0)
        shares["mlp"] += (bw[:, None] * res.mlp).sum(0)
        if progress is not None:
            progress(min(b0 + ifr_batch, len(out_pos)), len(out_pos))
    return BaselineOutput(_restrict(total, target.inputs, normalise=False), [total], shares, {})


@torch.no_grad()
def attention_baseline(cache: StateCache, target: ResolvedTarget, *, layers: str = "last",
                       chunk_size: int = DEFAULT_CHUNK) -> BaselineOutput:
    if layers not in ("last", "mean"):
        raise ValueError("layers must be 'last' or 'mean'")
    N, P = cache.n_tokens, target.end
    rows = torch.tensor(target.output, dtype=torch.long)
    w = torch.tensor(target.weights, device=cache.device)[None]
    w = w / w.sum()
    chosen = [cache.n_layers - 1] if layers == "last" else list(range(cache.n_layers))
    col = torch.zeros(P, device=cache.device)
    per_layer = torch.zeros(cache.n_layers)
    for l in chosen:
        A = column_sums(cache, l, rows, w, P, chunk_size)[0].mean(0)  # [P]
        col += A / len(chosen)
    s = _pad(col.cpu(), N)
    scores = _restrict(s, target.inputs, normalise=True)
    per_layer[chosen] = 1.0 / len(chosen)
    return BaselineOutput(scores, [scores], {"attention": per_layer}, {"layers": layers})


def _pad(s: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.zeros(n)
    out[: s.numel()] = s
    return out


def default_segments(inputs: list[int], segment_size: int) -> list[tuple[int, int]]:
    """Runs of consecutive input positions, cut every `segment_size` tokens."""
    segs: list[tuple[int, int]] = []
    start = prev = None
    for p in inputs:
        if start is None:
            start = prev = p
        elif p == prev + 1 and p - start < segment_size:
            prev = p
        else:
            segs.append((start, prev + 1))
            start = prev = p
    if start is not None:
        segs.append((start, prev + 1))
    return segs


def _target_logprob(model, batch_ids: torch.Tensor, target: ResolvedTarget) -> torch.Tensor:
    """Σ_i w_i log p(token_i | prefix) for each row of batch_ids [B, P]: [B] float32."""
    pos = torch.tensor(target.output, dtype=torch.long)
    if int(pos[0]) == 0:
        raise ValueError("loo needs output positions >= 1 (position 0 has no prefix to predict it)")
    keep = (pos - 1).to(batch_ids.device)
    mask = torch.ones_like(batch_ids)
    try:
        logits = model(input_ids=batch_ids, attention_mask=mask, logits_to_keep=keep, use_cache=False).logits
    except TypeError:  # models without logits_to_keep
        logits = model(input_ids=batch_ids, attention_mask=mask, use_cache=False).logits[:, keep]
    logp = torch.log_softmax(logits.float(), dim=-1)  # [B, |O|, V]
    tok = batch_ids[:, pos.to(batch_ids.device)]
    picked = logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1)  # [B, |O|]
    w = torch.tensor(target.weights, device=picked.device)
    return (picked * w).sum(-1)


@torch.no_grad()
def loo(model, input_ids, target: ResolvedTarget, *, replacement_id: int | None = None, segment_size: int = 8,
        batch_size: int = 4, progress=None) -> BaselineOutput:
    ids = as_input_ids(input_ids)[: target.end]
    device = model_device(model)
    if replacement_id is None:
        cfg = model.config
        replacement_id = next((x for x in (getattr(cfg, "pad_token_id", None), getattr(cfg, "eos_token_id", None))
                               if isinstance(x, int)), 0)
    segments = target.spans if target.spans is not None else default_segments(target.inputs, segment_size)
    segments = [(a, min(b, target.end)) for a, b in segments if a < target.end]
    base = _target_logprob(model, ids[None].to(device), target)[0]
    seg_scores: list[float] = []
    for s0 in range(0, len(segments), batch_size):
        chunk = segments[s0:s0 + batch_size]
        batch = ids[None].repeat(len(chunk), 1)
        for k, (a, b) in enumerate(chunk):
            batch[k, a:b] = replacement_id
        lp = _target_logprob(model, batch.to(device), target)
        seg_scores += (base - lp).float().cpu().tolist()
        if progress is not None:
            progress(min(s0 + batch_size, len(segments)), len(segments))
    N = as_input_ids(input_ids).numel()
    scores = torch.zeros(N)
    for (a, b), sc in zip(segments, seg_scores):
        scores[a:b] = sc
    scores = _restrict(scores, target.inputs, normalise=False)
    return BaselineOutput(scores, [scores], {}, {"segments": [list(s) for s in segments], "segment_scores": seg_scores,
                                                 "base_logprob": float(base), "replacement_id": int(replacement_id)})


__all__ = ["ifr_token", "attention_baseline", "loo", "default_segments", "BaselineOutput"]
