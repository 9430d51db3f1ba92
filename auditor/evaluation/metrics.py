"""Faithfulness metrics, exactly as ``algorithm.md`` §8 defines them.

- :func:`recovery_rate`: fraction of gold input tokens that land in the top 10 % of input tokens
  by score. ``k = ceil(0.1 · |X|)`` (at least 1). Ties at the cut are resolved in expectation:
  the tokens tied with the k-th score share the remaining slots equally, so a uniform attribution
  scores exactly ``k / |X|`` instead of whatever a sort happens to put first.
- :func:`rise_auc`: RISE deletion. Input tokens are ranked by score (descending; ties keep
  position order, so a uniform attribution deletes left to right); in 20 steps the top 5 %,
  10 %, … 100 % are replaced by a neutral token; at each step the score is the teacher-forced
  log-probability of the generated tokens (reasoning and output). The 21 values (step 0 =
  unperturbed … step 20 = fully perturbed) are normalised to ``[0, 1]`` between the unperturbed
  and the fully perturbed value, clipped to ``[0, 1]``, made monotone with a running minimum, and
  the area under the curve is taken with the trapezoid rule over ``x = 0, 0.05, …, 1``. Lower is
  better: a perfect attribution whose top 5 % carries everything scores 0.025, the reverse 0.975.
- :func:`mas_auc`: MAS deletion. The same normalised monotone curve ``s'``, then
  ``clip(s' + |s' − density|, 0, 1)`` with ``density = 1 − (attribution mass removed so far) /
  (total mass)``, min-max scaled, and its area. Mass uses the non-negative part of the scores
  (leave-one-out can give negative scores); with no positive mass the density falls linearly.
  Lower is better.

When deleting every input token does not lower the log-probability (unperturbed ≤ fully
perturbed), the normalisation is undefined and RISE/MAS are NaN (the runner counts them and
averages the rest).

Shapes: ``scores`` and ``gold`` are over the input positions only (``[n_inputs]``); curves have
``steps + 1`` points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

STEPS = 20
TOP_FRACTION = 0.10

#: Maps a batch of token sequences ``[B, N]`` to their teacher-forced log-probabilities ``[B]``.
LogProbFn = Callable[[torch.Tensor], torch.Tensor]


def _as_tensor(x: Sequence[float] | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64).flatten()
    return torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)


def top_k_count(n: int, fraction: float = TOP_FRACTION) -> int:
    """How many tokens "the top ``fraction``" of ``n`` tokens is: ``ceil(fraction · n)``, at least 1."""
    if n <= 0:
        return 0
    return max(1, math.ceil(fraction * n - 1e-9))


def recovery_rate(
    scores: Sequence[float] | torch.Tensor,
    gold: Sequence[bool] | torch.Tensor,
    fraction: float = TOP_FRACTION,
) -> float:
    """Recall of gold input tokens within the top ``fraction`` of input tokens by score.

    ``scores`` and ``gold`` are aligned over the input tokens ``X`` only. Ties at the cut share
    the remaining slots (the expected recall under random tie-breaking). NaN when there is no
    gold token.
    """
    s = _as_tensor(scores)
    g = torch.as_tensor(gold, dtype=torch.bool).flatten()
    if s.numel() != g.numel():
        raise ValueError(f"scores ({s.numel()}) and gold ({g.numel()}) must have the same length")
    n_gold = int(g.sum())
    if n_gold == 0 or s.numel() == 0:
        return float("nan")
    k = top_k_count(s.numel(), fraction)
    kth = torch.sort(s, descending=True).values[k - 1]
    above = s > kth
    tied = s == kth
    slots = k - int(above.sum())
    hits = float((above & g).sum())
    n_tied = int(tied.sum())
    if n_tied:
        hits += float((tied & g).sum()) * slots / n_tied
    return hits / n_gold


def deletion_order(scores: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Indices into the inputs, highest score first; ties keep position order (stable)."""
    s = _as_tensor(scores)
    return torch.sort(s, descending=True, stable=True).indices


def deletion_counts(n: int, steps: int = STEPS) -> list[int]:
    """Tokens removed after each step: ``round(i · n / steps)`` for ``i = 0..steps`` (0 … n)."""
    return [int(round(i * n / steps)) for i in range(steps + 1)]


def auc(curve: Sequence[float] | torch.Tensor) -> float:
    """Trapezoid area under a curve sampled at ``len(curve)`` evenly spaced points of ``[0, 1]``."""
    c = torch.as_tensor(curve, dtype=torch.float64).flatten()
    if c.numel() < 2:
        return float(c.sum()) if c.numel() else float("nan")
    return float(((c[1:] + c[:-1]) / 2).sum() / (c.numel() - 1))


def normalised_curve(logprobs: Sequence[float] | torch.Tensor) -> torch.Tensor | None:
    """Deletion curve scaled to 1 at the unperturbed and 0 at the fully perturbed value, clipped
    to [0, 1] and made monotone (running minimum). None when the scale is undefined."""
    lp = torch.as_tensor(logprobs, dtype=torch.float64).flatten()
    top, bottom = lp[0], lp[-1]
    span = top - bottom
    if not torch.isfinite(span) or span <= 1e-9:
        return None
    c = ((lp - bottom) / span).clamp(0.0, 1.0)
    return torch.cummin(c, dim=0).values


def rise_auc(logprobs: Sequence[float] | torch.Tensor) -> tuple[float, list[float]]:
    """RISE deletion score (lower is better) and its normalised monotone curve."""
    c = normalised_curve(logprobs)
    if c is None:
        return float("nan"), []
    return auc(c), c.tolist()


def mass_density(scores: Sequence[float] | torch.Tensor, counts: Sequence[int]) -> list[float]:
    """``1 − share of attribution mass removed`` after each step of the deletion order."""
    s = _as_tensor(scores)
    order = deletion_order(s)
    mass = s.clamp(min=0.0)[order]
    total = float(mass.sum())
    n = s.numel()
    out = []
    for k in counts:
        if total > 0:
            out.append(1.0 - float(mass[:k].sum()) / total)
        else:
            out.append(1.0 - (k / n if n else 1.0))
    return [min(1.0, max(0.0, v)) for v in out]


def mas_auc(logprobs: Sequence[float] | torch.Tensor, density: Sequence[float]) -> tuple[float, list[float]]:
    """MAS deletion score (lower is better) and its curve, from the raw log-probabilities and the
    mass density (:func:`mass_density`)."""
    c = normalised_curve(logprobs)
    if c is None:
        return float("nan"), []
    d = torch.as_tensor(density, dtype=torch.float64).flatten()
    if d.numel() != c.numel():
        raise ValueError(f"density has {d.numel()} points, the curve {c.numel()}")
    m = (c + (c - d).abs()).clamp(0.0, 1.0)
    lo, hi = m.min(), m.max()
    if hi - lo > 1e-12:
        m = (m - lo) / (hi - lo)
    return auc(m), m.tolist()


@dataclass
class DeletionResult:
    """Everything one deletion test produces (both RISE and MAS read the same forward passes)."""

    counts: list[int]
    logprobs: list[float]
    rise: float
    mas: float
    rise_curve: list[float] = field(default_factory=list)
    mas_curve: list[float] = field(default_factory=list)
    density: list[float] = field(default_factory=list)


def perturbed_batch(
    input_ids: torch.Tensor,
    input_positions: Sequence[int] | torch.Tensor,
    scores: Sequence[float] | torch.Tensor,
    counts: Sequence[int],
    baseline_id: int,
) -> torch.Tensor:
    """``[len(counts), N]``: the sequence with the top ``counts[i]`` inputs replaced by ``baseline_id``."""
    ids = torch.as_tensor(input_ids).flatten()
    pos = torch.as_tensor(list(input_positions) if not torch.is_tensor(input_positions) else input_positions,
                          dtype=torch.long).flatten()
    ranked = pos[deletion_order(scores)]
    batch = ids.unsqueeze(0).repeat(len(counts), 1)
    for row, k in enumerate(counts):
        if k:
            batch[row, ranked[:k]] = baseline_id
    return batch


def deletion_test(
    logprob_fn: LogProbFn,
    input_ids: torch.Tensor,
    input_positions: Sequence[int] | torch.Tensor,
    scores: Sequence[float] | torch.Tensor,
    baseline_id: int,
    *,
    steps: int = STEPS,
    batch_size: int = 4,
    endpoints: tuple[float, float] | None = None,
) -> DeletionResult:
    """Run the RISE/MAS deletion test for one attribution.

    ``scores`` are over ``input_positions`` (the input tokens X). ``endpoints`` may pass the
    unperturbed and fully perturbed log-probabilities, which do not depend on the attribution,
    to save two forward passes per method.
    """
    n = len(input_positions)
    counts = deletion_counts(n, steps)
    todo = list(range(len(counts)))
    values: dict[int, float] = {}
    if endpoints is not None:
        values[0], values[len(counts) - 1] = endpoints
        todo = todo[1:-1]
    batch = perturbed_batch(input_ids, input_positions, scores, [counts[i] for i in todo], baseline_id)
    for start in range(0, len(todo), batch_size):
        lp = logprob_fn(batch[start:start + batch_size])
        for j, v in enumerate(lp.tolist()):
            values[todo[start + j]] = float(v)
    logprobs = [values[i] for i in range(len(counts))]
    density = mass_density(scores, counts)
    rise, rise_curve = rise_auc(logprobs)
    mas, mas_curve = mas_auc(logprobs, density)
    return DeletionResult(counts, logprobs, rise, mas, rise_curve, mas_curve, density)


def model_logprob_fn(model, target_positions: Sequence[int]) -> LogProbFn:
    """Teacher-forced ``Σ_{t ∈ targets} log p(ids[t] | ids[:t])`` for a causal LM, batched.

    Only the logits from the first target's predecessor onward are computed (targets are the
    generated tail of the sequence), via ``logits_to_keep`` where the model supports it.
    """
    targets = torch.as_tensor(list(target_positions), dtype=torch.long)
    if targets.numel() == 0:
        raise ValueError("no target positions to score")
    first = int(targets.min())
    if first < 1:
        raise ValueError("a target position must have a predecessor (position >= 1)")

    @torch.no_grad()
    def fn(batch: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        ids = batch.to(device)
        n = ids.shape[1]
        keep = n - (first - 1)
        try:
            logits = model(input_ids=ids, logits_to_keep=keep, use_cache=False).logits
            offset = n - logits.shape[1]
        except TypeError:  # a model without logits_to_keep
            logits = model(input_ids=ids, use_cache=False).logits
            offset = 0
        logp = torch.log_softmax(logits.float(), dim=-1)  # [B, kept, V]
        rows = (targets - 1 - offset).to(device)
        picked = logp[:, rows, :].gather(-1, ids[:, targets.to(device)].unsqueeze(-1)).squeeze(-1)
        return picked.sum(-1).double().cpu()

    return fn
