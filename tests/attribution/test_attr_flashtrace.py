"""FlashTrace against a naive reference: span linearity, one-token = per-token IFR, chunking,
stored vs recomputed attention, hops, one forward for K targets."""

from __future__ import annotations

import pytest
import torch

from auditor.attribution import Target, attribute, attribute_many, capture
from auditor.attribution.flashtrace import column_sums, source_vectors, span_pass
from auditor.attribution.states import StateCache

from helpers.tolerance import assert_close_f32, f32_atol, model_terms

OUT = [22, 23, 25, 27]
W = [1.0, 0.5, 2.0, 1.0]


def test_span_linearity(arch, models, ids, reference):
    """C[l,h,j] = A[l,h,j]·f[l,h,j] equals Σ_i w_i c[l,h,i←j] summed naively."""
    model = models(arch)
    cache = capture(model, ids)
    native = reference.native_states(model, ids)
    P = OUT[-1] + 1
    rows = torch.tensor(OUT)
    for l in range(cache.n_layers):
        w = torch.tensor(W)[None]
        if cache.out_scale is not None:
            w = w * cache.out_scale[l][rows]
        A = column_sums(cache, l, rows, w, P, chunk_size=3)[0]  # [H, P]
        C = A[:, :, None] * source_vectors(cache, l, 0, P)  # [H, P, d]
        # each C[h, j] sums the target rows' weighted contributions, each an out-projection over the hidden size
        assert_close_f32(C, reference.naive_contributions(cache, native, l, OUT, W), terms=len(OUT) * model.config.hidden_size)


def test_span_scores_match_naive_reference(arch, models, ids, reference):
    model = models(arch)
    native = reference.native_states(model, ids)
    res = attribute(model, ids, Target(output=OUT, weights=W), hops=0)
    expected = reference.naive_hop(capture(model, ids), native, OUT, W)
    terms = model_terms(model, len(expected))
    assert_close_f32(res.hop_scores[0][: len(expected)], expected, terms=terms)
    assert float(res.hop_scores[0].sum()) == pytest.approx(1.0, abs=f32_atol(1.0, len(expected)))  # normalised


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt2"])
def test_one_token_span_equals_per_token_ifr(arch, models, ids, reference):
    model = models(arch)
    cache = capture(model, ids)
    native = reference.native_states(model, ids)
    terms = model_terms(model, ids.numel())
    for i in (9, 26):
        span = attribute(model, ids, Target(output=[i]), hops=0, cache=cache)
        ifr = attribute(model, ids, Target(output=[i]), method="ifr-token", cache=cache)
        naive = reference.naive_ifr_token(cache, native, [i])
        assert_close_f32(span.hop_scores[0][: i + 1], naive, terms=terms)
        assert_close_f32(ifr.hop_scores[0], span.hop_scores[0], terms=terms)
        assert_close_f32(ifr.token_scores, span.token_scores, terms=terms)
    # several tokens: the average of the naive per-token distributions, whatever the batch size
    many = [attribute(model, ids, Target(output=OUT), method="ifr-token", cache=cache, ifr_batch=b) for b in (1, 3)]
    naive = reference.naive_ifr_token(cache, native, OUT)
    for r in many:
        assert_close_f32(r.hop_scores[0][: len(naive)], naive, terms=terms * len(OUT))


def test_results_do_not_depend_on_chunks_or_stored_attention(arch, models, ids):
    model = models(arch)
    target = Target(output=OUT, reasoning=list(range(12, 20)), weights=W)
    base = attribute(model, ids, target, hops=2, chunk_size=256)
    variants = [attribute(model, ids, target, hops=2, chunk_size=c) for c in (3,)]
    variants.append(attribute(model, ids, target, hops=2, chunk_size=4, attention="store"))
    terms = model_terms(model, ids.numel())  # chunks and stored attention change only summation orders
    for v in variants:
        for a, b in zip(v.hop_scores, base.hop_scores):
            assert_close_f32(a, b, terms=terms)
        assert_close_f32(v.token_scores, base.token_scores, terms=terms)
        assert v.flow_ratios == pytest.approx(base.flow_ratios, abs=f32_atol(1.0, terms))  # ratios of hop sums


def test_working_memory_does_not_grow_with_the_target(models, ids, monkeypatch):
    cache = capture(models("llama"), ids)
    calls = []
    real = StateCache.attention_rows

    def spy(self, layer, rows, prefix):
        calls.append(rows.numel())
        return real(self, layer, rows, prefix)

    monkeypatch.setattr(StateCache, "attention_rows", spy)
    span_pass(cache, torch.ones(1, ids.numel()), chunk_size=4)
    assert max(calls) == 4 and sum(calls) == ids.numel() * cache.n_layers


def test_hops_follow_the_recursion(models, ids):
    model = models("qwen3")
    cache = capture(model, ids)
    R = list(range(14, 20))
    target = Target(output=[24, 25, 26], reasoning=R)
    res = attribute(model, ids, target, hops=2, cache=cache)
    assert len(res.hop_scores) == 3 and len(res.flow_ratios) == 3
    N = ids.numel()
    # hop 0 by hand
    w0 = torch.zeros(1, 27)
    w0[0, [24, 25, 26]] = 1
    s0 = span_pass(cache, w0).scores[0]
    torch.testing.assert_close(res.hop_scores[0][:27], s0)
    rho0 = float(s0[R].sum() / s0.sum())
    assert res.flow_ratios[0] == pytest.approx(rho0, abs=f32_atol(1.0, 27))  # a ratio of two sums of 27 scores
    # hop 1: target R weighted by s0 on R (normalised)
    w1 = torch.zeros(1, 20)
    w1[0, R] = s0[R] / s0[R].sum()
    s1 = span_pass(cache, w1).scores[0]
    torch.testing.assert_close(res.hop_scores[1][:20], s1)
    rho1 = float(s1[R].sum() / s1.sum())
    w2 = torch.zeros(1, 20)
    w2[0, R] = s1[R] / s1[R].sum()
    s2 = span_pass(cache, w2).scores[0]
    X = [i for i in range(24) if i not in R]
    s0, s1, s2 = (torch.nn.functional.pad(s, (0, N - s.numel())) for s in (s0, s1, s2))
    expected = torch.zeros(N)
    expected[X] = s0[X] + rho0 * s1[X] + rho0 * rho1 * s2[X]
    torch.testing.assert_close(res.token_scores, expected)
    assert res.token_scores[R].abs().sum() == 0 and res.token_scores[24:].abs().sum() == 0
    # no reasoning: later hops are empty
    plain = attribute(model, ids, Target(output=[24, 25]), hops=1, cache=cache)
    assert plain.flow_ratios == [0.0, 0.0] and plain.hop_scores[1].abs().sum() == 0


@pytest.mark.parametrize("method", ["flashtrace", "ifr-token", "attention"])
def test_one_forward_for_many_targets_equals_separate_prefix_runs(models, ids, method):
    model = models("gemma3")
    targets = [
        Target(output=[10, 11], reasoning=[6, 7]),
        Target(output=[20, 21, 22], reasoning=[14, 15, 16], weights=[1, 2, 1]),
        Target(output=[27], inputs=[0, 1, 2, 3, 4, 5]),
    ]
    forwards = []
    handle = model.base_model.register_forward_hook(lambda *a: forwards.append(1))
    try:
        many = attribute_many(model, ids, targets, method=method, hops=1, progress=lambda d, t: None)
        assert len(forwards) == 1
        separate = [attribute(model, ids[: max(t.output) + 1], t, method=method, hops=1) for t in targets]
    finally:
        handle.remove()
    terms = model_terms(model, ids.numel())  # one forward over all vs a prefix: other matmul shapes
    for a, b in zip(many, separate):
        n = b.token_scores.numel()
        assert_close_f32(a.token_scores[:n], b.token_scores, terms=terms)
        assert a.token_scores[n:].abs().sum() == 0
        assert a.flow_ratios == pytest.approx(b.flow_ratios, abs=f32_atol(1.0, terms))
        assert a.info["shared_forward"] and a.info["n_tokens"] == ids.numel()


def test_bfloat16_is_close_to_float32(models, ids):
    model = models("llama")
    t = Target(output=OUT, reasoning=[10, 11, 12])
    full = attribute(model, ids, t, hops=1)
    half = attribute(model, ids, t, hops=1, dtype="bfloat16")
    assert half.info["dtype"] == "bfloat16"
    assert (half.token_scores - full.token_scores).abs().max() < 0.02


def test_threshold_zeroes_small_proximities(models, ids):
    model = models("llama")
    cache = capture(model, ids)
    w = torch.zeros(1, 24)
    w[0, 20:24] = 1
    plain = span_pass(cache, w, keep_layers=True)
    cut = span_pass(cache, w, threshold=1e9, keep_layers=True)
    assert plain.layer_token is not None and plain.layer_token.shape == (1, cache.n_layers, 24)
    assert cut.scores.abs().sum() == 0 and torch.all(cut.residual == 1)
