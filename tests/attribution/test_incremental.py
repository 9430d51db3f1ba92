"""Incremental capture: extending a StateCache equals a full capture of the longer sequence.

Tolerance. The extension runs the new tokens with other matrix shapes than a full capture (an
n×K masked attention instead of a square causal one), so float32 rounding differs and accumulates
along the residual stream: we allow ``16·eps32·(L+1)`` times the tensor's largest magnitude, per
state tensor (L layers; 5.7e-6 relative for the tiny 2-layer models, 5.9e-5 for SmolLM2's 30;
observed <= 6e-7 and 3.2e-6). FlashTrace's proximities ``‖Y‖₁ − ‖Y − z‖₁`` subtract nearly equal
norms, which amplifies a relative state error (by ~17x on SmolLM2), so scores get 32 times the
state tolerance relative to the largest score (observed 6e-6 tiny, 5.4e-5 SmolLM2, i.e. >= 30x
margin). The prefix's own rows must come back bit for bit (they are copied).
"""

from __future__ import annotations

import pytest
import torch

from auditor.attribution import StateCache, capture, extend
from auditor.attribution.flashtrace import flashtrace
from auditor.attribution.result import ResolvedTarget
from auditor.testing import TINY_ARCHS, tiny_model

EPS32 = torch.finfo(torch.float32).eps
ARCHS = [*TINY_ARCHS, "olmo2"]
N = 40


def state_tol(cache: StateCache) -> float:
    return 16 * EPS32 * (cache.n_layers + 1)


def assert_states_close(got: StateCache, ref: StateCache, prefix: StateCache | None = None, rel: float | None = None):
    rel = state_tol(ref) if rel is None else rel
    assert got.n_tokens == ref.n_tokens and torch.equal(got.input_ids, ref.input_ids)
    assert got.names() == ref.names() and got.params == ref.params
    for name in ref.names():
        a, b = got[name], ref[name]
        assert a.shape == b.shape and a.dtype == b.dtype, name
        scale = b.float().abs().max().clamp_min(1e-30)
        err = (a.float() - b.float()).abs().max()
        assert err <= rel * scale, f"{name}: max diff {err:.2e} > {rel:.1e} × {scale:.2e}"
        if prefix is not None:  # the prefix's rows are copied, not recomputed
            P = prefix.n_tokens
            old = prefix[name]
            assert torch.equal(a[..., :P, :] if a.dim() == 3 else a[:P], old), f"{name}: prefix rows changed"


def seq(n: int = N, seed: int = 7) -> torch.Tensor:
    return torch.randint(5, 300, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS)
def test_model_kv_cache_holds_the_captured_keys(arch, models):
    """What the capture records as keys/values is what the model's own KV cache stores (post
    norm and rotary, before GQA repetition), so feeding them back as its cache is sound."""
    model = models(arch)
    ids = seq()
    cache = capture(model, ids)
    with torch.no_grad():
        kv = model(ids[None], use_cache=True).cache
    for l, layer in enumerate(kv.layers):
        k, v = layer.keys[0], layer.values[0]  # [G, n, dh]; sliding layers keep the last window-1
        n = k.shape[1]
        assert 0 < n <= N
        torch.testing.assert_close(k, cache.keys[l][:, N - n:], rtol=0, atol=state_tol(cache) * float(k.abs().max()))
        torch.testing.assert_close(v, cache.values[l][:, N - n:], rtol=0, atol=state_tol(cache) * float(v.abs().max()))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("P", [N - 1, 17])
def test_extend_equals_full_capture(arch, P, models):
    """Extending by 1 token and by many (past every sliding window: 16 for mistral, 8 for Gemma)."""
    model = models(arch)
    ids = seq()
    full = capture(model, ids)
    prefix = capture(model, ids[:P])
    ext = extend(prefix, model, ids[P:])
    assert_states_close(ext, full, prefix)
    assert prefix.n_tokens == P  # the prefix cache is left as it was
    # recomputed attention rows of the new tokens agree too (causal offset, window, soft-capping)
    rows = torch.arange(P, N)
    for l in range(full.n_layers):
        torch.testing.assert_close(ext.attention_rows(l, rows, N), full.attention_rows(l, rows, N), rtol=1e-4, atol=1e-5)


def assert_scores_close(a: torch.Tensor, b: torch.Tensor, cache: StateCache) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=32 * state_tol(cache) * float(b.abs().max()))


@pytest.mark.parametrize("arch", ARCHS)
def test_flashtrace_on_extended_part_equals_full_capture(arch, models):
    model = models(arch)
    ids = seq()
    full = capture(model, ids)
    ext = extend(capture(model, ids[:22]), model, ids[22:])
    target = ResolvedTarget(output=[34, 35, 36], reasoning=[25, 26, 27, 28], inputs=list(range(25)),
                            weights=[1.0, 1.0, 1.0], spans=None)
    a, b = flashtrace(ext, target, hops=1), flashtrace(full, target, hops=1)
    assert float(b.token_scores.sum()) > 0
    assert_scores_close(a.token_scores, b.token_scores, full)
    for ha, hb in zip(a.hop_scores, b.hop_scores):
        assert_scores_close(ha, hb, full)
    assert a.flow_ratios == pytest.approx(b.flow_ratios, abs=32 * state_tol(full))


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gemma3", "gpt2"])
def test_extend_twice_and_through_capture(arch, models):
    model = models(arch)
    ids = seq()
    full = capture(model, ids)
    one = capture(model, ids[:9])
    two = capture(model, ids[:26], prefix=one)
    three = capture(model, ids, prefix=two)
    assert (one.n_tokens, two.n_tokens, three.n_tokens) == (9, 26, N)
    assert_states_close(three, full, two)
    assert capture(model, ids, prefix=three) is three  # nothing new: the same cache
    assert three.forward_seconds > 0


def test_stored_attention_is_extended(models):
    model = models("gemma2")
    ids = seq()
    full = capture(model, ids, store_attention=True)
    ext = capture(model, ids, prefix=capture(model, ids[:15], store_attention=True), store_attention=True)
    for l in range(full.n_layers):
        torch.testing.assert_close(ext.stored_attention[l], full.stored_attention[l], rtol=1e-4, atol=1e-5)


def test_bad_extensions_are_rejected(models):
    model = models("llama")
    ids = seq()
    prefix = capture(model, ids[:10])
    with pytest.raises(ValueError, match="not a prefix of input_ids"):
        capture(model, torch.cat([ids[:5], ids[:30]]), prefix=prefix)
    with pytest.raises(ValueError, match="not a prefix of input_ids"):
        capture(model, ids[:5], prefix=prefix)
    with pytest.raises(ValueError, match="differs from the prefix cache's storage dtype"):
        capture(model, ids, prefix=prefix, dtype="bfloat16")
    with pytest.raises(ValueError, match="store_attention must match"):
        capture(model, ids, prefix=prefix, store_attention=True)
    with pytest.raises(ValueError, match="the model the cache was captured with"):
        extend(prefix, tiny_model("llama"), ids[10:])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("arch", ["qwen3", "gemma2"])
def test_extend_with_16_bit_storage(arch, dtype, models):
    """The prefix's 16-bit keys/values are cast back to the model's float32 for the new tokens. The
    new tokens then see rounded keys/values, so they differ from a full 16-bit capture by the
    prefix's rounding carried through attention (<= eps/2 relative) plus their own output rounding
    (<= eps/2): we allow 2 eps of the format relative to each tensor's magnitude (observed <= 0.75)."""
    model = models(arch)
    ids = seq()
    prefix = capture(model, ids[:20], dtype=dtype)
    ext = capture(model, ids, prefix=prefix)
    full = capture(model, ids, dtype=dtype)
    assert ext.dtype == getattr(torch, dtype) and ext.nbytes() == full.nbytes()
    assert_states_close(ext, full, prefix, rel=2 * torch.finfo(getattr(torch, dtype)).eps)


@pytest.mark.slow
def test_embedded_model_extension(embedded_model):
    model, tok = embedded_model
    torch.set_num_threads(2)
    text = ("system: you are a careful agent. user: please read the file notes.txt and tell me the third line. "
            "tool: line one, line two, the secret is 42, line four. assistant: the third line says 42. ") * 3
    ids = torch.tensor(tok(text)["input_ids"])
    n = ids.numel()
    full = capture(model, ids)
    prefix = capture(model, ids[: n - 40])
    by_one = capture(model, ids[: n - 39], prefix=prefix)
    ext = capture(model, ids, prefix=by_one)
    assert_states_close(ext, full, by_one)
    target = ResolvedTarget(output=list(range(n - 8, n)), reasoning=list(range(n - 30, n - 8)),
                            inputs=list(range(n - 30)), weights=[1.0] * 8, spans=None)
    a, b = flashtrace(ext, target, hops=1), flashtrace(full, target, hops=1)
    assert_scores_close(a.token_scores, b.token_scores, full)
