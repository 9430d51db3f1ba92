"""Target log-probabilities of edited variants of a sequence, sharing the prefix's KV cache.

Causal confirmation of a verdict asks: how does log p(target | context) change when a segment of
the context is removed or replaced? `target_logprobs(model, ids, range(t0, t1), variants)` answers
for the base sequence and every variant at once. Each variant is a list of edits
``(start, end, replacement_ids)`` applied to ``ids[:t0]`` (all edits end by `t0`); the target tokens
``ids[t0:t1]`` are teacher-forced after the edited context and shift by the edits' length change.
`target_logprobs_many(model, ids, targets, variants)` scores many targets of one sequence (every
action and argument of a trajectory) from the same forwards: a variant is scored on each target
that starts after its last edit, so a trajectory's causal evidence costs one pass per variant.

Why it is cheap: a causal model's states for ``ids[:q]`` are the same in every sequence that starts
with ``ids[:q]``. Sequences (base included) are sorted by the first position they must forward
(their first edit, or one before their target, whichever is earlier) and cut into batches of
`batch_size`; the shared prefix cache grows batch by batch (``use_cache=True``, batch 1, each token
forwarded once), and each batch forwards only its rows' suffixes on a batch copy of that cache
(``Cache.batch_repeat_interleave``). A variant thus costs the tokens after its first edit.

Suffixes of different lengths are right-padded and run without an attention mask: every real token
sits before the pads of its row, so causal attention never lets it see one (pad rows' own outputs
are never read). Real tokens keep contiguous positions ``q, q+1, …`` right after the cache, which is
also what sliding-window masks (built on cache indices) need. Nothing here reads attention weights,
so a model loaded with eager attention (what FlashTrace's capture wants) runs these forwards with
the fused kernel (SDPA: no L x L matrix per head; ~4x faster at 2k tokens on a CPU), unless it
soft-caps attention logits (Gemma 2), which SDPA cannot. Only the target's rows of the final
hidden states go through the output head (a pre-hook gathers them per row), so memory is
``B·T·V`` logits, not ``B·S·V``; elementwise post-processing (Gemma's final soft-capping) still
applies, as the model's own forward does it after the head.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .states import as_input_ids, attention_implementation, model_device

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

Edit = tuple[int, int, tuple[int, ...]]  # (start, end, replacement_ids): ids[start:end] -> replacement


@dataclass(frozen=True)
class Variant:
    """A named list of edits of the context, in increasing, non-overlapping order.

    ``Variant("no-user", [(12, 30, [])])`` removes ``ids[12:30]``; ``(12, 30, neutral_ids)``
    replaces it; ``(12, 12, ids)`` inserts. Edits are checked here (order, overlap, shape) and
    against the target in `target_logprobs` (each must end by the target's start)."""

    name: str
    edits: tuple[Edit, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        norm: list[Edit] = []
        for k, edit in enumerate(self.edits):
            try:
                start, end, repl = edit
                start, end = int(start), int(end)
                repl = tuple(int(x) for x in (repl.tolist() if isinstance(repl, torch.Tensor) else repl))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"variant {self.name!r}, edit {k}: expected (start, end, replacement_ids), "
                                 f"got {edit!r}") from exc
            if start < 0 or end < start:
                raise ValueError(f"variant {self.name!r}, edit {k}: bad span [{start}, {end})")
            if norm and start < norm[-1][1]:
                prev = norm[-1]
                what = "overlaps" if start >= prev[0] else "comes before"
                raise ValueError(f"variant {self.name!r}, edit {k} [{start}, {end}) {what} edit {k - 1} "
                                 f"[{prev[0]}, {prev[1]}): give edits in increasing order, without overlap")
            if norm and start == end == norm[-1][1] == norm[-1][0]:
                raise ValueError(f"variant {self.name!r}, edit {k}: two insertions at position {start}; merge them")
            norm.append((start, end, repl))
        object.__setattr__(self, "edits", tuple(norm))

    @property
    def first(self) -> int | None:
        """The first position the edits touch (None without edits)."""
        return self.edits[0][0] if self.edits else None

    def apply(self, ids: torch.Tensor) -> torch.Tensor:
        """The edited 1-D sequence (edit positions refer to `ids`)."""
        parts, pos = [], 0
        for start, end, repl in self.edits:
            parts += [ids[pos:start], torch.tensor(repl, dtype=ids.dtype)]
            pos = end
        parts.append(ids[pos:])
        return torch.cat(parts)


@dataclass(frozen=True)
class VariantLogprob:
    """log p of the target tokens in one sequence: `logprob` = Σ `token_logprobs`.

    `target_start` is where the target begins in this sequence (t0 shifted by the edits) and
    `n_tokens` the sequence's length up to the target's end (its end in this sequence)."""

    name: str
    logprob: float
    token_logprobs: tuple[float, ...]
    target_start: int
    n_tokens: int


@dataclass
class _Seq:
    name: str
    tokens: torch.Tensor  # [n] edited sequence up to the end of the last target it reads
    targets: list[int]  # indices of the targets this sequence reads (those after its last edit)
    starts: list[int]  # each one's start in `tokens`
    cols: list[int]  # positions of `tokens` whose log-prob is read: the union of its targets' tokens
    need: int  # first position this sequence must forward: min(first edit, first read - 1)


def _target_range(target, n: int) -> tuple[int, int]:
    if isinstance(target, range):
        if target.step != 1:
            raise ValueError(f"target must be a contiguous range (step 1), got {target!r}")
        t0, t1 = target.start, target.stop
    else:
        t0, t1 = (int(x) for x in target)
    if not 1 <= t0 < t1 <= n:
        raise ValueError(f"target [{t0}, {t1}) must satisfy 1 <= t0 < t1 <= {n} (the sequence's length): "
                         "the first target token needs at least one token before it")
    return t0, t1


def _check_variant(v: Variant, n: int, vocab: int | None) -> None:
    if not isinstance(v, Variant):
        raise TypeError(f"variants must be Variant objects, got {type(v).__name__}")
    for k, (start, end, repl) in enumerate(v.edits):
        if end > n:
            raise ValueError(f"variant {v.name!r}, edit {k} [{start}, {end}) runs past the sequence ({n} tokens)")
        if vocab is not None and any(not 0 <= x < vocab for x in repl):
            raise ValueError(f"variant {v.name!r}, edit {k}: replacement ids must lie in [0, {vocab})")


def _sequence(name: str, ids: torch.Tensor, spans: list[tuple[int, int]], v: Variant | None,
              wanted: set[int] | None = None) -> _Seq | None:
    """The sequence of `v` (None: the base) up to the end of the last target it reads; None when it
    reads none. It reads the targets in `wanted` (default all) that start at or after its last edit."""
    last = v.edits[-1][1] if v is not None and v.edits else 0
    valid = [k for k, (t0, _) in enumerate(spans) if t0 >= last and (wanted is None or k in wanted)]
    if not valid:
        return None
    end = max(spans[k][1] for k in valid)
    tokens = v.apply(ids[:end]) if v is not None else ids[:end]
    shift = tokens.numel() - end  # every edit lies before every valid target: one common shift
    starts = [spans[k][0] + shift for k in valid]
    if min(starts) < 1:
        raise ValueError(f"variant {name!r} leaves no token before the target (nothing predicts its first token)")
    cols = sorted({p for k in valid for p in range(spans[k][0] + shift, spans[k][1] + shift)})
    first = v.first if v is not None and v.first is not None else cols[0]
    return _Seq(name, tokens, valid, starts, cols, min(first, cols[0] - 1))


def fused_attention(model) -> AbstractContextManager[None]:
    """The model's eager attention run as SDPA inside the block (the same function, fused: it never
    materialises the attention matrix); any other choice, or soft-capped logits, is left alone."""
    configs = [c for m in model.modules() if hasattr(c := getattr(m, "config", None), "_attn_implementation")]
    if (not configs or any(c._attn_implementation != "eager" for c in configs)
            or any(getattr(c, "attn_logit_softcapping", None) is not None for c in configs)):
        return nullcontext()
    return attention_implementation(configs, "sdpa")


def _forward(model, input_ids: torch.Tensor, offset: int, cache, **kw):
    B, S = input_ids.shape
    pos = torch.arange(offset, offset + S, device=input_ids.device)[None].expand(B, S)
    return model(input_ids=input_ids, position_ids=pos, cache=cache, use_cache=True, **kw)


class _GatherRows:
    """Pre-hook on the output head: keep, per row, only the hidden states at `cols` [B, C]."""

    def __init__(self, cols: torch.Tensor):
        self.cols = cols
        self.calls = 0

    def __call__(self, module, args):
        h = args[0]  # [B, S, d]
        self.calls += 1
        if h.dim() != 3 or h.shape[0] != self.cols.shape[0] or h.shape[1] <= int(self.cols.max()):
            raise RuntimeError(f"the output head received hidden states of shape {tuple(h.shape)}; expected "
                               f"[{self.cols.shape[0]}, >{int(self.cols.max())}, d]")
        idx = self.cols.to(h.device)[:, :, None].expand(-1, -1, h.shape[-1])
        return (torch.gather(h, 1, idx), *args[1:])


def _batch_logprobs(model, head, batch: list[_Seq], q: int, prefix_cache, device) -> list[torch.Tensor]:
    """Per-token log-probs (float32) of each row's `cols`, forwarding only tokens from `q` on."""
    B = len(batch)
    lens = [s.tokens.numel() - q for s in batch]
    S = max(lens)
    C = max(len(s.cols) for s in batch)
    inp = torch.zeros(B, S, dtype=torch.long)
    # logits at position p predict token p+1: token c is read at c-1; short rows repeat their last column
    cols = torch.zeros(B, C, dtype=torch.long)
    tok = torch.zeros(B, C, dtype=torch.long)
    for b, s in enumerate(batch):
        inp[b, : lens[b]] = s.tokens[q:]
        c = torch.tensor(s.cols + [s.cols[-1]] * (C - len(s.cols)))
        cols[b] = c - 1 - q
        tok[b] = s.tokens[c]
    past = None
    if prefix_cache is not None:
        past = copy.deepcopy(prefix_cache)
        past.batch_repeat_interleave(B)
    hook = _GatherRows(cols)
    handle = head.register_forward_pre_hook(hook)
    try:
        logits = _forward(model, inp.to(device), q, past).logits  # [B, C, V]
    finally:
        handle.remove()
    if hook.calls != 1 or logits.shape[:2] != (B, C):
        raise RuntimeError(f"{type(model).__name__}: the output head was not applied once to the final hidden "
                           "states; target_logprobs cannot read per-row target logits from this model")
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, tok.to(logits.device)[:, :, None])[:, :, 0]
    return [logp[b, : len(s.cols)].cpu() for b, s in enumerate(batch)]


@torch.no_grad()
def target_logprobs_many(
    model: "PreTrainedModel",
    ids,
    targets: list[range] | list[tuple[int, int]],
    variants: list[Variant],
    *,
    batch_size: int = 8,
    max_rows: int = 1024,
    reads: list[list[int]] | None = None,
) -> list[list[VariantLogprob | None]]:
    """log p of every target in the base sequence and in each variant: ``out[0]`` is the base's,
    ``out[1 + i]`` variant i's, each a list with one entry per target, in order.

    A variant is scored on a target only when the target starts at or after its last edit (its
    whole context is the edited one); otherwise the entry is None. One forward per variant serves
    every target it can score: its sequence runs to the end of the last such target, and the
    target tokens are gathered from that one forward. `reads` (one list of target indices per
    variant) limits which targets each variant is scored on, so a variant that only one early
    target needs runs only to that target's end; the base is scored on every target.

    Batches hold at most `batch_size` sequences and at most `max_rows` gathered target tokens
    (logits are rows x vocabulary), and right-padding at most a quarter of their real tokens
    (rows of very different lengths run apart); a single sequence always forms a batch. A variant
    that scores no target is not run.
    """
    if batch_size < 1 or max_rows < 1:
        raise ValueError("batch_size and max_rows must be >= 1")
    ids = as_input_ids(ids)
    n = ids.numel()
    spans = [_target_range(t, n) for t in targets]
    if not spans:
        raise ValueError("no targets given")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    variants = list(variants)
    for v in variants:
        _check_variant(v, n, vocab)
    if reads is not None and len(reads) != len(variants):
        raise ValueError(f"reads has {len(reads)} entries for {len(variants)} variants")
    wanted = [set(r) for r in reads] if reads is not None else [None] * len(variants)
    seqs = [_sequence("base", ids, spans, None)] + [_sequence(v.name, ids, spans, v, w)
                                                    for v, w in zip(variants, wanted)]
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output head (get_output_embeddings() is None)")
    device = model_device(model)

    order = sorted((k for k, s in enumerate(seqs) if s is not None), key=lambda k: seqs[k].need)  # type: ignore[union-attr]
    batches: list[list[int]] = []
    for k in order:
        cur = batches[-1] if batches else None
        if cur and len(cur) < batch_size:
            rows = [seqs[j] for j in (*cur, k)]
            q = rows[0].need  # type: ignore[union-attr]
            lens = [r.tokens.numel() - q for r in rows]  # type: ignore[union-attr]
            if (len(rows) * max(len(r.cols) for r in rows) <= max_rows  # type: ignore[union-attr]
                    and len(rows) * max(lens) <= 1.25 * sum(lens)):
                cur.append(k)
                continue
        batches.append([k])
    read: dict[int, torch.Tensor] = {}
    prefix_cache, p = None, 0  # the cache holds ids[:p], shared by every sequence still to run
    with fused_attention(model):
        for batch_idx in batches:
            q = seqs[batch_idx[0]].need  # type: ignore[union-attr]  # every row of the batch starts with ids[:q]
            if q > p:
                out = _forward(model, ids[p:q][None].to(device), p, prefix_cache, logits_to_keep=1)
                prefix_cache, p = out.cache, q
            rows = _batch_logprobs(model, head, [seqs[k] for k in batch_idx], p, prefix_cache, device)  # type: ignore[misc]
            read.update(zip(batch_idx, rows))
    result: list[list[VariantLogprob | None]] = []
    for k, s in enumerate(seqs):
        per: list[VariantLogprob | None] = [None] * len(spans)
        if s is not None:
            at = {c: i for i, c in enumerate(s.cols)}
            for j, start in zip(s.targets, s.starts):
                T = spans[j][1] - spans[j][0]
                lp = read[k][[at[c] for c in range(start, start + T)]]
                per[j] = VariantLogprob(s.name, float(lp.double().sum()), tuple(float(x) for x in lp), start,
                                        start + T)
        result.append(per)
    return result


@torch.no_grad()
def target_logprobs(
    model: "PreTrainedModel",
    ids,
    target: range | tuple[int, int],
    variants: list[Variant],
    *,
    batch_size: int = 8,
) -> list[VariantLogprob]:
    """log p(ids[t0:t1] | context) for the base sequence (first) and each variant, in order.

    `target`: ``range(t0, t1)`` (or ``(t0, t1)``) of positions in `ids`, 1 <= t0 < t1 <= len(ids).
    Each variant's edits must end by `t0`. Works on any causal LM whose forward takes a
    transformers `Cache` (``cache=``, ``position_ids=``) and applies `get_output_embeddings()` to
    its final hidden states. Results equal one plain forward per sequence to float error.
    `target_logprobs_many` scores many targets of one sequence with the same forwards.
    Batching pays on a GPU; on CPU ``batch_size=1`` is as fast or faster (benchmarks/bench_ablation.py).
    Not for concurrent use on one model: the output head is hooked while a batch runs.
    """
    ids = as_input_ids(ids)
    t0, t1 = _target_range(target, ids.numel())
    for v in variants:
        if not isinstance(v, Variant):
            raise TypeError(f"variants must be Variant objects, got {type(v).__name__}")
        for k, (start, end, _) in enumerate(v.edits):
            if start >= t0 or end > t0:
                raise ValueError(f"variant {v.name!r}, edit {k} [{start}, {end}) reaches the target [{t0}, {t1}): "
                                 "edits must end by the target's start")
    out = target_logprobs_many(model, ids, [(t0, t1)], list(variants), batch_size=batch_size, max_rows=10**9)
    return [row[0] for row in out]  # type: ignore[misc]


__all__ = ["Variant", "VariantLogprob", "Edit", "target_logprobs", "target_logprobs_many"]
