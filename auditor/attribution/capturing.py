"""`capture`: the one entry to a forward pass that keeps what attribution needs.

A full capture is `states.capture_full`; with ``prefix=`` (a `StateCache` of a prefix of the same
ids, captured with the same model) only the new tokens run, on the prefix's keys/values
(`incremental.extend`). Kept apart from both so that neither imports the other's caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .incremental import extend
from .states import STORAGE_DTYPES, StateCache, as_input_ids, capture_full

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel


@torch.no_grad()
def capture(
    model: "PreTrainedModel",
    input_ids,
    *,
    dtype: torch.dtype | str | None = None,
    store_attention: bool = False,
    prefix: StateCache | None = None,
) -> StateCache:
    """Run one forward pass over `input_ids` and keep every state attribution needs.

    `dtype`: storage dtype of the states (float32 by default; "bfloat16" halves the memory;
    all attribution arithmetic is done in float32 either way).
    `prefix`: a cache captured (with this model) for a prefix of `input_ids`: only the new tokens
    are run, on the prefix's keys/values (see `incremental.extend`); storage dtype and stored
    attention follow the prefix.
    """
    if prefix is None:
        return capture_full(model, input_ids, dtype=dtype, store_attention=store_attention)
    ids = as_input_ids(input_ids)
    if isinstance(dtype, str):
        dtype = STORAGE_DTYPES[dtype]
    P = prefix.n_tokens
    if P > ids.numel() or not torch.equal(prefix.input_ids, ids[:P]):
        raise ValueError(f"prefix cache ({P} tokens) is not a prefix of input_ids ({ids.numel()} tokens)")
    if dtype is not None and dtype != prefix.dtype:
        raise ValueError(f"dtype {dtype} differs from the prefix cache's storage dtype {prefix.dtype}")
    if store_attention != (prefix.stored_attention is not None):
        raise ValueError("store_attention must match the prefix cache (it stores attention iff it was asked to)")
    return prefix if P == ids.numel() else extend(prefix, model, ids[P:])


__all__ = ["capture"]
