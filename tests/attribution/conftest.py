"""Fixtures and a deliberately naive reference implementation for the attribution tests.

The reference never uses the engine's capture or chunked recomputation: it runs the model
natively (eager attention, `output_attentions=True`), reads x/m/a with plain hooks, and sums
every per-(target, source) contribution vector explicitly. Only the value vectors v come from
the engine's cache (they are what the model's attention received; closure checks them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from auditor.attribution.adapters import ARCH_SPECS
from auditor.testing import TINY_ARCHS, tiny_model

torch.set_num_threads(2)

SEQ_LEN = 28


@pytest.fixture(scope="session")
def models():
    cache: dict[str, torch.nn.Module] = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = tiny_model(arch)
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def ids():
    return torch.randint(5, 300, (SEQ_LEN,), generator=torch.Generator().manual_seed(7))


@pytest.fixture(params=TINY_ARCHS)
def arch(request):
    return request.param


@dataclass
class Native:
    x: list[torch.Tensor]  # L+1 × [N, d]
    m: list[torch.Tensor]  # L × [N, d]
    a: list[torch.Tensor]  # L × [N, d] attention output (after o_proj, before any sandwich norm)
    probs: list[torch.Tensor]  # L × [H, N, N]


@torch.no_grad()
def native_states(model, ids: torch.Tensor) -> Native:
    spec = ARCH_SPECS[model.config.model_type]
    layers = model.get_submodule(spec.layers)
    L = len(layers)
    m: list = [None] * L
    a: list = [None] * L
    handles = []
    for l, layer in enumerate(layers):
        handles.append(getattr(layer, spec.mid).register_forward_pre_hook(
            lambda mod, args, l=l: m.__setitem__(l, args[0][0].clone())))
        handles.append(getattr(layer, spec.attn).register_forward_hook(
            lambda mod, args, out, l=l: a.__setitem__(l, out[0][0].clone())))
    try:
        out = model(ids[None], output_hidden_states=True, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    x = [h[0] for h in out.hidden_states[:L]]
    # the last hidden state is after the final norm; y[L-1] = m + mlp part, recover from the layer
    return Native(x=x, m=m, a=a, probs=[p[0] for p in out.attentions])


def head_vectors(cache, layer: int) -> torch.Tensor:
    """Naive f[h, j] = W_O[:, h-block] @ v[h // rep, j], one head at a time: [H, N, d] (no γ)."""
    weight, _ = cache.adapter.out_proj(layer)  # [d, H*dh]
    H, G, dh = cache.n_heads, cache.n_kv_heads, cache.head_dim
    v = cache.values[layer].float()
    return torch.stack([v[h // (H // G)] @ weight[:, h * dh:(h + 1) * dh].T.float() for h in range(H)])


def out_scale(cache, native: Native, layer: int) -> torch.Tensor | None:
    """Sandwich s[i] = γ / rms(a_i) [N, d] computed from the native attention output, or None."""
    gamma = cache.adapter.out_gamma(layer)
    if gamma is None:
        return None
    eps = cache.adapter.out_norm_eps(layer)
    a = native.a[layer].float()
    return gamma[None, :] * torch.rsqrt(a.pow(2).mean(-1, keepdim=True) + eps)


def naive_contributions(cache, native: Native, layer: int, rows: list[int], w: list[float]) -> torch.Tensor:
    """C[h, j] = Σ_i w_i c[l, h, i←j] with every c built explicitly: [H, P, d]."""
    f = head_vectors(cache, layer)
    s = out_scale(cache, native, layer)
    P = max(rows) + 1
    idx = torch.tensor(rows)
    alpha = native.probs[layer][:, idx, :P]  # [H, t, P], zero above the diagonal
    c = alpha.permute(1, 0, 2)[..., None] * f[None, :, :P]  # [t, H, P, d]: every c[i←j] explicitly
    if s is not None:
        c = c * s[idx][:, None, None, :]
    return (torch.tensor(w)[:, None, None, None] * c).sum(0)


def prox(z, y):
    return torch.clamp(y.abs().sum(-1) - (y - z).abs().sum(-1), min=0)


def naive_hop(cache, native: Native, rows: list[int], w: list[float]) -> torch.Tensor:
    """The hop distribution s [P] from algorithm.md §4, naively."""
    P = max(rows) + 1
    total = torch.zeros(P)
    wt = torch.tensor(w)[:, None]
    for l in range(cache.n_layers):
        M = (wt * native.m[l][rows]).sum(0)
        X = (wt * native.x[l][rows]).sum(0)
        C = naive_contributions(cache, native, l, rows, w)
        e = prox(C, M)  # [H, P]
        r = prox(X, M)
        Z = e.sum() + r
        total += e.sum(0) / Z
    return total / total.sum()


def naive_ifr_token(cache, native: Native, rows: list[int]) -> torch.Tensor:
    """Per-token IFR: the naive one-token hop for each row, averaged: [max(rows)+1]."""
    P = max(rows) + 1
    out = torch.zeros(P)
    for i in rows:
        s = naive_hop(cache, native, [i], [1.0])
        out[: s.numel()] += s / len(rows)
    return out


@pytest.fixture(scope="session")
def reference():
    # Not sys.modules[__name__]: every conftest is imported as "conftest", so that name points at
    # whichever folder's conftest was loaded last when the whole suite runs.
    import types

    return types.SimpleNamespace(**{k: v for k, v in globals().items() if callable(v) and not k.startswith("_")})
