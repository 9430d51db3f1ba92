"""Tolerances for float32 results computed two ways (another summation order, chunking, stored vs
recomputed attention, another batch shape, a naive reference).

How: float32 rounds each operation to a relative error of at most ``EPS32`` (2^-23); a quantity
built from ``terms`` rounded terms of magnitude up to ``scale`` accumulates that error like a
random walk, about ``EPS32 * sqrt(terms) * scale``, and two evaluation orders differ by about as
much again. ``c`` covers the walk's tail and the few roundings around the sums (products,
divisions, normalisation): with 8 the largest difference seen on the tiny architectures of
`auditor.testing` (every test in tests/attribution) is about a tenth of the tolerance, while a
real error (a wrong row, a missed head, a dropped scale) is 1e-3 or more.

So the tolerance grows with the magnitude compared and with the number of terms behind it, and
is never a number that happened to hold once: a loaded machine changes no rounding, and a larger
model (more terms) gets a proportionally larger tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

EPS32 = float(torch.finfo(torch.float32).eps)


def f32_atol(scale: float, terms: int, c: float = 8.0) -> float:
    """``c * EPS32 * sqrt(terms) * scale``: see the module docstring."""
    return c * EPS32 * math.sqrt(max(terms, 1)) * scale


def scale_of(*values: torch.Tensor | Sequence[float] | float) -> float:
    """The largest magnitude among ``values`` (tensors, lists, numbers); 1e-30 when all are zero."""
    best = 0.0
    for v in values:
        t = torch.as_tensor(v).detach().to(torch.float64)
        if t.numel():
            best = max(best, float(t.abs().max()))
    return max(best, 1e-30)


def assert_close_f32(actual: torch.Tensor, expected: torch.Tensor, *, terms: int, scale: float | None = None,
                     c: float = 8.0) -> None:
    """``actual`` equals ``expected`` within `f32_atol` (``scale``: by default the larger
    magnitude of the two)."""
    atol = f32_atol(scale if scale is not None else scale_of(actual, expected), terms, c)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0.0,
                               msg=lambda m: f"{m}\n(float32 tolerance {atol:.3g} for {terms} terms)")


def model_terms(cache_or_model, positions: int) -> int:
    """Terms behind one attribution score: each layer's proximity sums the hidden size, over every
    head and source position, and the layers are summed: hidden * heads * positions * layers."""
    cfg = getattr(cache_or_model, "config", None)
    if cfg is not None:
        hidden = cfg.hidden_size if hasattr(cfg, "hidden_size") else cfg.n_embd
        heads = cfg.num_attention_heads if hasattr(cfg, "num_attention_heads") else cfg.n_head
        layers = cfg.num_hidden_layers if hasattr(cfg, "num_hidden_layers") else cfg.n_layer
    else:  # a StateCache
        hidden = cache_or_model.n_heads * cache_or_model.head_dim
        heads, layers = cache_or_model.n_heads, cache_or_model.n_layers
    return hidden * heads * positions * layers
