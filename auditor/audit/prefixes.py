"""Forward each prefix that the contexts of one trajectory share once.

The contexts of a coding session share long prefixes: the system prompt, a repository map, the
history up to the turn where the current files are re-sent. For each rendered context this finds
the longest prefix it shares with another context of the same trajectory; its states come from a
`StateCacheStore` (stored once, or an earlier shared prefix extended by the new tokens:
`StateCacheStore.get_or_capture`) and the context's own tokens are run on top of them
(`capture(prefix=...)`), so a shared prefix goes through the model once per trajectory. An
extension's states equal a full capture's up to the order of float sums
(`auditor.attribution.incremental`), so the attributions agree to float error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

#: Shared prefixes shorter than this (tokens) are run again rather than cached.
MIN_SHARED = 16
#: Memory for the shared prefixes' states of one trajectory (least recently used evicted first).
DEFAULT_BUDGET_BYTES = 2 * 1024**3


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` have in common."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shared_prefixes(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Per sequence, the longest prefix it shares with any other one.

    >>> shared_prefixes([[1, 2, 3, 4], [1, 2, 9], [7]])
    [2, 2, 0]
    """
    return [max((common_prefix(a, b) for j, b in enumerate(sequences) if j != k), default=0)
            for k, a in enumerate(sequences)]


class PrefixCaches:
    """The states of each of ``sequences`` (token ids), built on the shared prefixes; the model
    must be one the attribution engine supports. ``cache_for(k)`` returns the `StateCache` of
    sequence ``k`` (None when it shares too little to be worth it: the engine then captures it
    whole), the tokens whose states were reused rather than run, and the seconds it took."""

    def __init__(self, model: Any, sequences: Sequence[Sequence[int]], budget_bytes: int = DEFAULT_BUDGET_BYTES):
        from auditor.attribution import StateCacheStore

        self.model = model
        self.sequences = [list(s) for s in sequences]
        self.shared = shared_prefixes(self.sequences)
        self.store = StateCacheStore(budget_bytes)

    def cache_for(self, k: int) -> tuple[Any, int, float]:
        from auditor.attribution import capture

        ids, shared = self.sequences[k], self.shared[k]
        if shared < MIN_SHARED:
            return None, 0, 0.0
        start = time.perf_counter()
        reused = self.store.stats.reused_tokens
        prefix = self.store.get_or_capture(self.model, ids[:shared])
        reused = self.store.stats.reused_tokens - reused
        cache = capture(self.model, ids, prefix=prefix)
        return cache, reused, time.perf_counter() - start


__all__ = ["DEFAULT_BUDGET_BYTES", "MIN_SHARED", "PrefixCaches", "common_prefix", "shared_prefixes"]
