"""A bounded, thread-safe store of `StateCache`s keyed by token prefix, for a runtime guard.

A guard judges each new turn of a growing conversation. `StateCacheStore.get_or_capture(model, ids)`
returns the states of `ids`: the stored cache if `ids` was seen, else the stored cache sharing the
longest token prefix with `ids` (a stored prefix, or one that diverges later: `StateCache.head`)
extended by the new tokens (`incremental.extend`: only the new tokens are forwarded), else a full
capture; the result is stored. Entries are keyed by (model, storage dtype, length, SHA-256 of
the ids) and compared token by token on a hash match. The store holds at most `budget_bytes` of
states (`StateCache.nbytes()`), evicting the least recently used entries first; a cache larger
than the whole budget is returned but not stored.

Why one lock held across the forward pass: `capture`/`extend` switch the model's attention
implementation and install hooks on its modules, so two captures on one model must not overlap
anyway; holding the lock makes lookup, capture and eviction one atomic step (two threads asking for
the same turn capture it once).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch

from .incremental import extend
from .capturing import capture
from .states import StateCache, as_input_ids

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

_Key = tuple[int, str, int, str]  # (id(model), dtype, n_tokens, sha256 of the ids)


@dataclass
class StoreStats:
    """Counters since the store was made (or `reset_stats`)."""

    hits: int = 0  # exact sequence found
    extensions: int = 0  # a stored prefix was extended
    misses: int = 0  # nothing usable stored: full capture
    reused_tokens: int = 0  # tokens served from stored caches (hits and extended prefixes)
    extended_tokens: int = 0  # new tokens forwarded by extensions
    captured_tokens: int = 0  # tokens forwarded by full captures
    evictions: int = 0
    oversized: int = 0  # caches returned but not stored (larger than the budget)
    truncations: int = 0  # extensions that started inside a longer stored cache (diverging sequences)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _digest(ids: torch.Tensor) -> str:
    return hashlib.sha256(ids.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class StateCacheStore:
    """LRU store of state caches bounded by `budget_bytes`; see the module docstring.

    `dtype`: storage dtype of the caches it captures (float32 by default; "bfloat16" stores twice
    as many tokens in the same budget). `max_new_ratio`: extend only when the new tokens are at
    most this many times the reused ones, else capture whole (None: always extend)."""

    def __init__(self, budget_bytes: int, *, dtype: torch.dtype | str | None = None,
                 max_new_ratio: float | None = None):
        if budget_bytes <= 0:
            raise ValueError("budget_bytes must be positive")
        if max_new_ratio is not None and max_new_ratio <= 0:
            raise ValueError("max_new_ratio must be positive (or None: always extend)")
        # An extension attends with an explicit causal offset (no fused causal kernel), so a long new
        # part on a short reused one costs more than capturing everything: with max_new_ratio set,
        # a sequence is extended only when its new tokens are at most that many times the reused ones.
        self.max_new_ratio = max_new_ratio
        if isinstance(dtype, str):
            dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        self.budget_bytes = int(budget_bytes)
        self.dtype: torch.dtype = dtype or torch.float32
        self.stats = StoreStats()
        self._entries: OrderedDict[_Key, StateCache] = OrderedDict()  # least recently used first
        self._nbytes = 0
        self._lock = threading.RLock()

    # ---- size
    @property
    def nbytes(self) -> int:
        """Bytes of states held now (always <= budget_bytes)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[tuple[int, int]]:
        """(id(model), n_tokens) of the entries, least recently used first (for inspection)."""
        with self._lock:
            return [(k[0], k[2]) for k in self._entries]

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = StoreStats()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    # ---- lookup
    def _key(self, model, ids: torch.Tensor, dtype: torch.dtype) -> _Key:
        return (id(model), _dtype_name(dtype), int(ids.numel()), _digest(ids))

    def _find(self, key: _Key, ids: torch.Tensor) -> StateCache | None:
        cache = self._entries.get(key)
        if cache is None or not torch.equal(cache.input_ids, ids):  # a hash collision is not a hit
            return None
        self._entries.move_to_end(key)
        return cache

    def get(self, model: "PreTrainedModel", ids) -> StateCache | None:
        """The stored cache of exactly `ids` (marked most recently used), or None."""
        ids = as_input_ids(ids)
        with self._lock:
            return self._find(self._key(model, ids, self.dtype), ids)

    def longest_prefix(self, model: "PreTrainedModel", ids) -> StateCache | None:
        """The stored cache of the longest prefix of `ids` (possibly `ids` itself), or None."""
        ids = as_input_ids(ids)
        with self._lock:
            dtype = _dtype_name(self.dtype)
            lengths = sorted({k[2] for k in self._entries if k[0] == id(model) and k[1] == dtype
                              and k[2] <= ids.numel()}, reverse=True)
            for n in lengths:
                found = self._find(self._key(model, ids[:n], self.dtype), ids[:n])
                if found is not None:
                    return found
            return None

    # ---- insertion
    def put(self, cache: StateCache) -> bool:
        """Store `cache` (most recently used), evicting LRU entries to stay within the budget.
        Returns False (and stores nothing) if the cache alone exceeds the budget."""
        size = cache.nbytes()
        with self._lock:
            key = self._key(cache.adapter.model, cache.input_ids, cache.dtype)
            old = self._entries.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes()
            if size > self.budget_bytes:
                self.stats.oversized += 1
                return False
            while self._entries and self._nbytes + size > self.budget_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._nbytes -= evicted.nbytes()
                self.stats.evictions += 1
            self._entries[key] = cache
            self._nbytes += size
            return True

    def longest_common(self, model: "PreTrainedModel", ids) -> tuple[StateCache | None, int]:
        """The stored cache sharing the longest token prefix with `ids`, and that prefix's length
        (0 and None when no entry of this model and dtype shares a first token). Prefers the
        shorter entry on a tie (less to slice away)."""
        ids = as_input_ids(ids)
        best, best_k = None, 0
        with self._lock:
            dtype = _dtype_name(self.dtype)
            for key, cache in self._entries.items():
                if key[0] != id(model) or key[1] != dtype:
                    continue
                m = min(cache.n_tokens, ids.numel())
                differ = torch.nonzero(cache.input_ids[:m] != ids[:m])
                k = int(differ[0, 0]) if differ.numel() else m
                if k > best_k or (k == best_k and best is not None and cache.n_tokens < best.n_tokens):
                    best, best_k = cache, k
            if best is not None and best_k > 0:
                self._entries.move_to_end(self._key(model, best.input_ids, self.dtype))
                return best, best_k
            return None, 0

    def get_or_capture(self, model: "PreTrainedModel", ids) -> StateCache:
        """States of `ids`: stored; or the part of a stored cache that `ids` shares (its longest
        common token prefix: a stored prefix of `ids`, or a sequence that diverges from `ids` after
        some tokens, as when a chat template renders the last turn differently once another follows)
        extended by the rest; or a full capture. The result is stored, except a slice of a longer
        stored cache (`StateCache.head`: views that keep the longer cache alive), which is returned."""
        ids = as_input_ids(ids)
        with self._lock:
            found, k = self.longest_common(model, ids)
            if found is not None and k == ids.numel():
                self.stats.hits += 1
                self.stats.reused_tokens += k
                return found.head(k)
            if found is not None and self.max_new_ratio is not None and ids.numel() - k > self.max_new_ratio * k:
                found = None  # cheaper to capture it whole
            if found is not None:
                if k < found.n_tokens:
                    self.stats.truncations += 1
                cache = extend(found.head(k), model, ids[k:])
                self.stats.extensions += 1
                self.stats.reused_tokens += k
                self.stats.extended_tokens += ids.numel() - k
            else:
                cache = capture(model, ids, dtype=self.dtype)
                self.stats.misses += 1
                self.stats.captured_tokens += ids.numel()
            self.put(cache)
            return cache


__all__ = ["StateCacheStore", "StoreStats"]
