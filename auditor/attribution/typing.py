"""Tensor shapes, named once (every module refers to these letters in its shape comments).

    N   tokens in the captured sequence (positions 0..N-1)
    P   prefix length of one target: max(target positions) + 1 (only positions < P matter)
    L   decoder layers
    H   query heads;  G key/value heads (GQA: head h reads kv-head h // (H // G))
    dh  head size;    d hidden size (residual width)
    B   targets processed together in one pass (1 for a span, |O| for per-token IFR batches)
    t   target rows in the current chunk;  n source positions in the current chunk

Captured per layer l (see `auditor.attribution.states.STATE_NAMES`):
    resid_pre   x[l]   [N, d]
    resid_mid   m[l]   [N, d]      post-attention state, input of the MLP block
    resid_post  y[l]   [N, d]      == x[l+1]
    attn.queries       [H, N, dh]  after q-norm and rotary, as the model's attention saw them
    attn.keys          [G, N, dh]  after k-norm and rotary
    attn.values        [G, N, dh]  (includes the v bias)
    attn.out_scale     [N]         sandwich-norm families only: 1 / rms(a[l, i])
"""

from __future__ import annotations

from typing import TypeAlias

import torch

Positions: TypeAlias = torch.Tensor  # [t] long, sorted
Weights: TypeAlias = torch.Tensor  # [B, P] float32 target weights over positions
Probs: TypeAlias = torch.Tensor  # [H, t, P] float32 attention rows
ColumnSums: TypeAlias = torch.Tensor  # [B, H, P] float32
Scores: TypeAlias = torch.Tensor  # [N] or [B, P] float32

__all__ = ["Positions", "Weights", "Probs", "ColumnSums", "Scores"]
