"""StateCacheStore: longest-prefix reuse, LRU eviction within a byte budget, thread safety."""

from __future__ import annotations

import threading

import pytest
import torch

from auditor.attribution import StateCacheStore, capture
from auditor.testing import tiny_model

EPS32 = torch.finfo(torch.float32).eps


@pytest.fixture()
def model(models):
    return models("llama")


@pytest.fixture()
def ids():
    return torch.randint(5, 300, (48,), generator=torch.Generator().manual_seed(11))


def per_token(model, ids) -> int:
    """A cache's bytes are linear in its tokens (every state is [.., N, ..])."""
    one, two = capture(model, ids[:1]).nbytes(), capture(model, ids[:2]).nbytes()
    assert two == 2 * one
    return one


def test_longest_prefix_reuse_is_counted_and_exact(model, ids):
    store = StateCacheStore(10**9)
    a = store.get_or_capture(model, ids[:10])
    assert store.stats.as_dict() == dict(hits=0, extensions=0, misses=1, reused_tokens=0, extended_tokens=0,
                                         captured_tokens=10, evictions=0, oversized=0, truncations=0)
    b = store.get_or_capture(model, ids[:30])  # extends the 10-token entry by 20
    assert store.get_or_capture(model, ids[:30]) is b  # exact hit
    c = store.get_or_capture(model, ids[:22])  # a prefix of the 30-token entry: its first 22 rows, no forward
    d = store.get_or_capture(model, ids)  # extends the 30-token entry, not the 10 one
    s = store.stats
    assert (s.hits, s.extensions, s.misses, s.truncations) == (2, 2, 1, 0)
    assert s.extended_tokens == 20 + 18 and s.reused_tokens == 10 + 30 + 22 + 30 and s.captured_tokens == 10
    assert len(store) == 3 and store.nbytes == sum(x.nbytes() for x in (a, b, d))  # the slice is not stored
    assert c.n_tokens == 22 and torch.equal(c.mid[0], b.mid[0][:22])
    full = capture(model, ids)
    for name in full.names():
        torch.testing.assert_close(d[name], full[name], rtol=0, atol=48 * EPS32 * float(full[name].abs().max()))
    # a sequence that shares no stored prefix is a miss; another model never reuses this one's states
    store.get_or_capture(model, torch.flip(ids, [0]))
    other = tiny_model("llama", seed=1)
    e = store.get_or_capture(other, ids[:10])
    assert e.adapter.model is other and not torch.equal(e.mid[0], a.mid[0])
    assert store.stats.misses == 3


def test_a_diverging_sequence_extends_the_shared_part(model, ids):
    """A template that renders the last turn differently once another follows: the new sequence
    shares only a prefix with the stored one; the shared rows are reused, the rest is forwarded,
    and the result equals a full capture."""
    store = StateCacheStore(10**9)
    old = torch.cat([ids[:30], torch.tensor([7, 8, 9])])
    store.get_or_capture(model, old)
    new = store.get_or_capture(model, ids)
    s = store.stats
    assert (s.misses, s.extensions, s.truncations) == (1, 1, 1)
    assert s.reused_tokens == 30 and s.extended_tokens == ids.numel() - 30
    full = capture(model, ids)
    for name in full.names():
        torch.testing.assert_close(new[name], full[name], rtol=0, atol=48 * EPS32 * float(full[name].abs().max()))
    assert store.longest_common(model, torch.tensor([2, 3]))== (None, 0)  # ids are >= 5: nothing shared


def test_a_short_reused_part_is_captured_whole_when_asked(model, ids):
    """max_new_ratio: a long new part on a short shared one is a full capture (cheaper), not an extension."""
    store = StateCacheStore(10**9, max_new_ratio=1.0)
    store.get_or_capture(model, ids[:10])
    store.get_or_capture(model, ids[:30])  # 20 new on 10 reused: captured whole
    store.get_or_capture(model, ids[:45])  # 15 new on 30 reused: extended
    s = store.stats
    assert (s.misses, s.extensions, s.captured_tokens, s.extended_tokens) == (2, 1, 40, 15)
    with pytest.raises(ValueError):
        StateCacheStore(10**9, max_new_ratio=0)


def test_head_is_the_prefix_capture(model, ids):
    full = capture(model, ids)
    head, short = full.head(17), capture(model, ids[:17])
    assert head.n_tokens == 17 and full.head(ids.numel()) is full
    for name in short.names():
        torch.testing.assert_close(head[name], short[name], rtol=0, atol=48 * EPS32 * float(short[name].abs().max()))
    with pytest.raises(ValueError):
        full.head(0)


def test_lru_eviction_order_and_budget(model, ids):
    unit = per_token(model, ids)
    store = StateCacheStore(30 * unit)  # room for 30 tokens of states
    seqs = {k: torch.cat([torch.tensor([k]), ids[:9]]) for k in (1, 2, 3, 4)}  # 10 tokens, distinct first token
    for k in (1, 2, 3):
        store.get_or_capture(model, seqs[k])
    assert store.nbytes == 30 * unit and store.stats.evictions == 0
    store.get_or_capture(model, seqs[1])  # touch 1: now 2 is least recently used
    store.get_or_capture(model, seqs[4])  # evicts 2
    assert store.get(model, seqs[2]) is None
    assert all(store.get(model, seqs[k]) is not None for k in (1, 3, 4))  # order now: 1, 3, 4
    assert store.stats.evictions == 1 and store.nbytes == 30 * unit
    big = torch.cat([seqs[3], ids[9:24]])  # 25 tokens: extends 3, then must evict 1, 3 and 4 (20 + 25 > 30)
    store.get_or_capture(model, big)
    assert store.keys() == [(id(model), 25)] and store.nbytes == 25 * unit <= store.budget_bytes
    assert store.stats.evictions == 4
    # larger than the whole budget: returned, not stored, nothing evicted
    huge = store.get_or_capture(model, ids[:31])
    assert huge.n_tokens == 31 and store.stats.oversized == 1 and store.keys() == [(id(model), 25)]


def test_concurrent_requests_capture_once(model, ids):
    store = StateCacheStore(10**9)
    got: list = []
    barrier = threading.Barrier(4)

    def ask(n):
        barrier.wait()
        got.append(store.get_or_capture(model, ids[:n]))

    threads = [threading.Thread(target=ask, args=(n,)) for n in (40, 40, 40, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(g is got[0] for g in got)
    assert (store.stats.misses, store.stats.hits) == (1, 3)


def test_16_bit_store_and_bad_budget(model, ids):
    with pytest.raises(ValueError, match="budget_bytes must be positive"):
        StateCacheStore(0)
    store = StateCacheStore(10**9, dtype="bfloat16")
    a = store.get_or_capture(model, ids[:20])
    b = store.get_or_capture(model, ids)
    assert a.dtype == b.dtype == torch.bfloat16 and store.stats.extensions == 1
    assert b.nbytes() * 2 == capture(model, ids).nbytes()
