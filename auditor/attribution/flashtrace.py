"""FlashTrace: span-wise aggregation (one hop) and recursive hops, per docs spec algorithm.md.

For a target T with weights w (a row of `weights` [B, P]; B targets go through one pass), at
every layer l:

    M_T = Σ_i w_i m[l,i],  X_T = Σ_i w_i x[l,i],  Y_T = Σ_i w_i y[l,i]            [B, d]
    A[h, j] = Σ_{i∈T} w_i r_i α[l,h,i,j]     column sums of recomputed attention rows, in row
                                               chunks (r_i = 1/rms(a_i) for sandwich norms, else 1)
    f[h, j] = W_O[h] v[g(h), j]  (γ folded into W_O for sandwich norms), in source chunks
    C = A · f,  e[h, j] = prox(C, M_T),  r = prox(X_T, M_T),  Z = Σ e + r
    share[l, j] = Σ_h e[h, j] / Z

and s[j] = Σ_l share[l, j], renormalised to sum 1 over the prefix 0..P-1.

Choices the spec leaves open (documented here, as it asks):
- The output bias b_O is in M_T (it is part of the model's m) but in no source's C.
- `threshold` τ zeroes raw proximities e below τ (the residual proximity r is never thresholded).
- Layer shares reported per layer: attention = Σ e / Z, residual = r / Z (they sum to 1), and
  mlp = prox(MLP_T, Y_T) / (prox(MLP_T, Y_T) + prox(M_T, Y_T)) with MLP_T = Y_T − M_T: the
  MLP's share of the layer output against the post-attention state it was added to.
- Z = 0 (nothing moved at a layer) gives that layer zero shares. A hop whose target is empty
  (no reasoning, or no mass on it) has s^k = 0 and rho_k = 0.

Working memory per layer: A is [B, H, P]; one row chunk of attention [H, chunk, P]; one source
chunk of contributions [B, H, chunk, d]. Nothing grows with |T| and no N×N map is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .result import ResolvedTarget
from .states import StateCache

DEFAULT_CHUNK = 256


@dataclass
class SpanPass:
    scores: torch.Tensor  # [B, P] s, renormalised per target (sums to 1 where any mass)
    attention: torch.Tensor  # [B, L]
    residual: torch.Tensor  # [B, L]
    mlp: torch.Tensor  # [B, L]
    layer_token: torch.Tensor | None = None  # [B, L, P] share[l, j] (only if keep_layers)


def _l1(z: torch.Tensor) -> torch.Tensor:
    return z.abs().sum(-1)


def prox(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """prox(z, Y) = max(0, ‖Y‖₁ − ‖Y − z‖₁) over the last dimension."""
    return (_l1(y) - _l1(y - z)).clamp_min(0)


def column_sums(cache: StateCache, layer: int, rows: torch.Tensor, w_rows: torch.Tensor, prefix: int,
                chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """A[b, h, j] = Σ_t w_rows[b, t] α[layer, h, rows[t], j] for j < prefix: [B, H, P] float32.

    Attention rows are recomputed (or sliced from stored maps) `chunk_size` rows at a time."""
    B = w_rows.shape[0]
    A = torch.zeros(B, cache.n_heads, prefix, device=cache.device)
    for c0 in range(0, rows.numel(), chunk_size):
        r = rows[c0:c0 + chunk_size]
        probs = cache.attention_rows(layer, r, prefix)  # [H, t, P]
        A += torch.einsum("bt,htp->bhp", w_rows[:, c0:c0 + chunk_size], probs)
        del probs
    return A


def source_vectors(cache: StateCache, layer: int, j0: int, j1: int, w_out: torch.Tensor | None = None) -> torch.Tensor:
    """f[h, j] = W_O[h] · v[g(h), j] for sources j0..j1-1: [H, n, d] float32 (γ folded in)."""
    w_out = cache.out_heads(layer) if w_out is None else w_out  # [H, dh, d]
    H, G = cache.n_heads, cache.n_kv_heads
    v = cache.values[layer][:, j0:j1].float()  # [G, n, dh]
    if G != H:
        v = v.repeat_interleave(H // G, dim=0)
    return torch.bmm(v, w_out)


def aggregate_layer(cache: StateCache, layer: int, weights: torch.Tensor, prefix: int,
                    chunk_size: int = DEFAULT_CHUNK):
    """Target aggregates of one layer, walking the target rows `chunk_size` at a time.

    Returns M_T, X_T, Y_T [B, d] (weighted sums of m, x, y over the target rows) and the
    attention column sums A [B, H, P] with weights w·r (r = 1/rms(a) for sandwich norms)."""
    rows_all = torch.nonzero((weights != 0).any(0)).squeeze(1)
    B, d = weights.shape[0], cache.hidden_size
    M = torch.zeros(B, d, device=cache.device)
    X = torch.zeros(B, d, device=cache.device)
    Y = torch.zeros(B, d, device=cache.device)
    A = torch.zeros(B, cache.n_heads, prefix, device=cache.device)
    for c0 in range(0, rows_all.numel(), chunk_size):
        rows = rows_all[c0:c0 + chunk_size]
        rows_d = rows.to(cache.device)
        w = weights[:, rows].to(cache.device)  # [B, t]
        M += w @ cache.mid[layer][rows_d].float()
        X += w @ cache.resid[layer][rows_d].float()
        Y += w @ cache.resid[layer + 1][rows_d].float()
        if cache.out_scale is not None:
            w = w * cache.out_scale[layer][rows_d].float()
        probs = cache.attention_rows(layer, rows, prefix)  # [H, t, P]
        A += torch.einsum("bt,htp->bhp", w, probs)
        del probs  # free before the next chunk is built: at most one chunk alive
    return M, X, Y, A


@torch.no_grad()
def span_pass(
    cache: StateCache,
    weights: torch.Tensor,  # [B, P] target weights over positions (B targets at once)
    *,
    chunk_size: int = DEFAULT_CHUNK,
    threshold: float = 0.0,
    keep_layers: bool = False,
) -> SpanPass:
    """One hop for B targets at once (each row of `weights` is one target)."""
    weights = weights.float()
    B, P = weights.shape
    if P > cache.n_tokens:
        raise ValueError(f"target reaches position {P - 1} but the cache holds {cache.n_tokens} tokens")
    L, H, d = cache.n_layers, cache.n_heads, cache.hidden_size
    dev = cache.device
    total = torch.zeros(B, P, device=dev)
    attn_share = torch.zeros(B, L)
    resid_share = torch.zeros(B, L)
    mlp_share = torch.zeros(B, L)
    layer_token = torch.zeros(B, L, P) if keep_layers else None
    # source chunk sized so one [B, H, n, d] block stays about chunk_size·H·d floats
    src_chunk = max(1, chunk_size // B)
    for l in range(L):
        M, X, Y, A = aggregate_layer(cache, l, weights, P, chunk_size)  # [B, d] ×3, [B, H, P]
        w_out = cache.out_heads(l)
        M_norm = _l1(M)  # [B]
        E = torch.zeros(B, P, device=dev)
        for j0 in range(0, P, src_chunk):
            j1 = min(P, j0 + src_chunk)
            f = source_vectors(cache, l, j0, j1, w_out)  # [H, n, d]
            C = A[:, :, j0:j1, None] * f.unsqueeze(0)  # [B, H, n, d]
            C.sub_(M[:, None, None, :]).abs_()
            e = (M_norm[:, None, None] - C.sum(-1)).clamp_min_(0)  # [B, H, n]
            if threshold > 0:
                e = torch.where(e < threshold, torch.zeros_like(e), e)
            E[:, j0:j1] = e.sum(1)
            del f, C, e  # at most one source chunk alive
        r = prox(X, M)  # [B]
        Z = E.sum(-1) + r
        safe = torch.where(Z > 0, Z, torch.ones_like(Z))
        share = torch.where((Z > 0)[:, None], E / safe[:, None], torch.zeros_like(E))
        total += share
        attn_share[:, l] = (share.sum(-1)).cpu()
        resid_share[:, l] = torch.where(Z > 0, r / safe, torch.zeros_like(r)).cpu()
        p_mlp, p_mid = prox(Y - M, Y), prox(M, Y)
        denom = p_mlp + p_mid
        mlp_share[:, l] = torch.where(denom > 0, p_mlp / torch.where(denom > 0, denom, torch.ones_like(denom)),
                                      torch.zeros_like(denom)).cpu()
        if layer_token is not None:
            layer_token[:, l] = share.cpu()
    mass = total.sum(-1, keepdim=True)
    scores = torch.where(mass > 0, total / torch.where(mass > 0, mass, torch.ones_like(mass)), torch.zeros_like(total))
    return SpanPass(scores.cpu(), attn_share, resid_share, mlp_share, layer_token)


@dataclass
class HopsOutput:
    token_scores: torch.Tensor  # [N] S on X
    hop_scores: list[torch.Tensor]  # K+1 × [N]
    flow_ratios: list[float]  # K+1
    layer_shares: dict[str, torch.Tensor]  # hop 0, [L] each


def _pad(s: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.zeros(n)
    out[: s.numel()] = s
    return out


def _ratio(s: torch.Tensor, positions: list[int]) -> float:
    tot = float(s.sum())
    if tot <= 0 or not positions:
        return 0.0
    return float(s[torch.tensor(positions, dtype=torch.long)].sum()) / tot


@torch.no_grad()
def flashtrace(
    cache: StateCache,
    target: ResolvedTarget,
    hops: int = 1,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    threshold: float = 0.0,
) -> HopsOutput:
    """Hop 0 explains the output; hops 1..K explain the reasoning with weights from the previous
    hop; S[j] = s^0[j] + Σ_k (Π_{m<k} rho_m) s^k[j] on the inputs."""
    if hops < 0:
        raise ValueError("hops must be >= 0")
    N = cache.n_tokens
    w0 = torch.zeros(1, target.end)
    w0[0, torch.tensor(target.output)] = torch.tensor(target.weights)
    first = span_pass(cache, w0, chunk_size=chunk_size, threshold=threshold)
    s = _pad(first.scores[0], N)
    hop_scores = [s]
    rhos = [_ratio(s, target.reasoning)]
    X = torch.tensor(target.inputs, dtype=torch.long)
    S = torch.zeros(N)
    S[X] = s[X]
    coef = 1.0
    R = torch.tensor(target.reasoning, dtype=torch.long)
    for _ in range(1, hops + 1):
        coef *= rhos[-1]
        prev = hop_scores[-1]
        wr = prev[R] if R.numel() else torch.zeros(0)
        if R.numel() == 0 or float(wr.sum()) <= 0:
            hop_scores.append(torch.zeros(N))
            rhos.append(0.0)
            continue
        end = int(R.max()) + 1
        wk = torch.zeros(1, end)
        wk[0, R] = wr / wr.sum()
        sk = _pad(span_pass(cache, wk, chunk_size=chunk_size, threshold=threshold).scores[0], N)
        hop_scores.append(sk)
        rhos.append(_ratio(sk, target.reasoning))
        S[X] += coef * sk[X]
    shares = {"attention": first.attention[0], "residual": first.residual[0], "mlp": first.mlp[0]}
    return HopsOutput(S, hop_scores, rhos, shares)


__all__ = ["span_pass", "flashtrace", "aggregate_layer", "column_sums", "source_vectors", "prox", "SpanPass", "HopsOutput", "DEFAULT_CHUNK"]
