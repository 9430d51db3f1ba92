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
  `loo_shared` runs targets with the same segments on one set of ablated forwards.
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


def loo_segments(target: ResolvedTarget, segment_size: int) -> list[tuple[int, int]]:
    """The segments loo ablates for `target`: its spans (or default runs of its inputs), clipped to target.end."""
    segments = target.spans if target.spans is not None else default_segments(target.inputs, segment_size)
    return [(a, min(b, target.end)) for a, b in segments if a < target.end]


def _token_logprobs(model, batch_ids: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """log p(batch_ids[:, p] | batch_ids[:, :p]) for each row of batch_ids [B, P] and each p: [B, |positions|] float32."""
    pos = torch.tensor(positions, dtype=torch.long)
    if int(pos[0]) == 0:
        raise ValueError("loo needs output positions >= 1 (position 0 has no prefix to predict it)")
    keep = (pos - 1).to(batch_ids.device)
    mask = torch.ones_like(batch_ids)
    try:
        logits = model(input_ids=batch_ids, attention_mask=mask, logits_to_keep=keep, use_cache=False).logits
    except TypeError:  # models without logits_to_keep
        logits = model(input_ids=batch_ids, attention_mask=mask, use_cache=False).logits[:, keep]
    logp = torch.log_softmax(logits.float(), dim=-1)  # [B, |positions|, V]
    tok = batch_ids[:, pos.to(batch_ids.device)]
    return logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def loo(model, input_ids, target: ResolvedTarget, *, replacement_id: int | None = None, segment_size: int = 8,
        batch_size: int = 4, progress=None) -> BaselineOutput:
    """Leave-one-segment-out for one target: 1 + ceil(segments / batch_size) forwards over ids[:target.end]."""
    return loo_shared(model, input_ids, [target], replacement_id=replacement_id, segment_size=segment_size,
                      batch_size=batch_size, progress=progress)[0]


@torch.no_grad()
def loo_shared(model, input_ids, targets: list[ResolvedTarget], *, replacement_id: int | None = None,
               segment_size: int = 8, batch_size: int = 4, progress=None) -> list[BaselineOutput]:
    """`loo` for several targets with the same segments (`loo_segments`), sharing the forwards.

    Why: the per-argument targets of a tool call share their action's segments (Target.spans) and
    their outputs are sub-ranges of the call's output, so one ablated forward per segment over the
    longest prefix serves them all: in a causal model the logits at p-1 depend only on ids[:p], and
    every (clipped) segment ends by every target's end, so each target sees exactly the ablated
    prefix that its own `loo` would build. Cost: 1 + ceil(segments / batch_size) forwards for the
    group instead of per target. Each output equals `loo(model, input_ids, target, ...)`.
    """
    segments = loo_segments(targets[0], segment_size)
    if any(loo_segments(t, segment_size) != segments for t in targets[1:]):
        raise ValueError("loo_shared needs targets with the same segments")
    ids = as_input_ids(input_ids)[: max(t.end for t in targets)]
    device = model_device(model)
    if replacement_id is None:
        cfg = model.config
        replacement_id = next((x for x in (getattr(cfg, "pad_token_id", None), getattr(cfg, "eos_token_id", None))
                               if isinstance(x, int)), 0)
    positions = sorted({p for t in targets for p in t.output})
    column = {p: k for k, p in enumerate(positions)}
    cols = [torch.tensor([column[p] for p in t.output], dtype=torch.long) for t in targets]
    wts = [torch.tensor(t.weights) for t in targets]

    def logprobs(batch: torch.Tensor) -> list[torch.Tensor]:  # per target: Σ_i w_i log p(tok_i | prefix), [B]
        picked = _token_logprobs(model, batch.to(device), positions)
        return [(picked[:, c.to(picked.device)] * w.to(picked.device)).sum(-1) for c, w in zip(cols, wts)]

    base = [lp[0] for lp in logprobs(ids[None])]
    seg_scores: list[list[float]] = [[] for _ in targets]
    for s0 in range(0, len(segments), batch_size):
        chunk = segments[s0:s0 + batch_size]
        batch = ids[None].repeat(len(chunk), 1)
        for k, (a, b) in enumerate(chunk):
            batch[k, a:b] = replacement_id
        for k, lp in enumerate(logprobs(batch)):
            seg_scores[k] += (base[k] - lp).float().cpu().tolist()
        if progress is not None:
            progress(min(s0 + batch_size, len(segments)), len(segments))
    N = as_input_ids(input_ids).numel()
    outs = []
    for t, b, ss in zip(targets, base, seg_scores):
        scores = torch.zeros(N)
        for (a, e), sc in zip(segments, ss):
            scores[a:e] = sc
        scores = _restrict(scores, t.inputs, normalise=False)
        outs.append(BaselineOutput(scores, [scores], {}, {"segments": [list(s) for s in segments], "segment_scores": ss,
                                                          "base_logprob": float(b), "replacement_id": int(replacement_id)}))
    return outs


__all__ = ["ifr_token", "attention_baseline", "loo", "loo_shared", "loo_segments", "default_segments",
           "BaselineOutput"]
