"""The public API: method registry, targets, the result object, baselines."""

from __future__ import annotations

import pytest
import torch

from helpers.tolerance import assert_close_f32, f32_atol, model_terms
from auditor.attribution import AttributionResult, Target, attribute, attribute_many, capture, list_methods

INFO_KEYS = {"method", "hops", "n_tokens", "n_output", "n_reasoning", "dtype", "device", "seconds",
             "forward_seconds", "peak_memory_bytes", "chunk_size", "versions"}


def test_method_registry():
    assert list_methods() == ["flashtrace", "ifr-token", "loo", "attention"]
    with pytest.raises(ValueError, match="valid methods: flashtrace, ifr-token, loo, attention"):
        attribute(None, [1, 2, 3], Target(output=[2]), method="shap")


def test_result_fields_and_round_trip(models, ids, tmp_path):
    res = attribute(models("mistral"), ids.tolist(), Target(output=[24, 25], reasoning=[18, 19, 20]), hops=1)
    assert res.method == "flashtrace" and res.hops == 1
    assert res.token_scores.shape == (ids.numel(),) and res.token_scores.dtype == torch.float32
    assert len(res.hop_scores) == 2 and len(res.flow_ratios) == 2
    assert set(res.layer_shares) == {"attention", "residual", "mlp"}
    assert all(v.shape == (2,) for v in res.layer_shares.values())
    # per layer, attention and residual shares split one normalised sum over heads and positions
    assert_close_f32(res.layer_shares["attention"] + res.layer_shares["residual"], torch.ones(2),
                     terms=model_terms(models("mistral"), ids.numel()))
    assert INFO_KEYS <= set(res.info)
    assert res.info["n_output"] == 2 and res.info["n_reasoning"] == 3 and res.info["dtype"] == "float32"
    assert res.info["forward_seconds"] > 0 and res.info["peak_memory_bytes"] >= 0
    # inputs default to everything before the output that is not reasoning
    assert res.token_scores[18:21].abs().sum() == 0 and res.token_scores[24:].abs().sum() == 0
    assert res.token_scores[21:24].sum() > 0 and res.token_scores[:18].sum() > 0
    loaded = AttributionResult.load(res.save(tmp_path / "r.json"))
    assert torch.equal(loaded.token_scores, res.token_scores)  # saved exactly
    assert loaded.flow_ratios == res.flow_ratios and loaded.info == res.info
    assert loaded.target["reasoning"] == [18, 19, 20]
    assert "top 3" in res.show(k=3)


def test_target_validation(models, ids):
    model = models("llama")
    bad = [
        Target(output=[]),
        Target(output=[40]),
        Target(output=[5, 5]),
        Target(output=[10], reasoning=[10]),
        Target(output=[10], inputs=[3, 10]),
        Target(output=[10, 11], weights=[1.0]),
        Target(output=[10], spans=[(4, 2)]),
    ]
    for t in bad:
        with pytest.raises(ValueError):
            attribute(model, ids, t)
    with pytest.raises(TypeError, match="unexpected keyword"):
        attribute(model, ids, Target(output=[10]), method="flashtrace", bogus=1)


def test_cache_reuse_and_mismatch(models, ids):
    model = models("llama")
    cache = capture(model, ids)
    a = attribute(model, ids, Target(output=[20, 21]), cache=cache)
    b = attribute(model, ids, Target(output=[20, 21]))
    assert torch.equal(a.token_scores, b.token_scores)  # the same capture, the same arithmetic
    other = ids.clone()
    other[3] += 1
    with pytest.raises(ValueError, match="different sequence"):
        attribute(model, other, Target(output=[20]), cache=cache)
    assert attribute_many(model, ids, []) == []


def test_attention_baseline(models, ids):
    model = models("qwen2")
    t = Target(output=[20, 21, 22])
    last = attribute(model, ids, t, method="attention")
    mean = attribute(model, ids, t, method="attention", layers="mean")
    for r in (last, mean):
        assert r.token_scores.sum() == pytest.approx(1.0, abs=f32_atol(1.0, ids.numel()))  # normalised over positions
        assert r.token_scores[20:].abs().sum() == 0 and len(r.hop_scores) == 1 and torch.equal(r.hop_scores[0], r.token_scores) and r.flow_ratios == []
    assert not torch.allclose(last.token_scores, mean.token_scores)


def test_loo_baseline(models, ids):
    model = models("gpt2")
    t = Target(output=[20, 21], spans=[(0, 5), (5, 12), (12, 20)])
    res = attribute(model, ids, t, method="loo")
    assert res.info["segments"] == [[0, 5], [5, 12], [12, 20]]
    # by hand: replace segment 2 and measure the drop of the target log-probability
    def logp(seq):
        with torch.no_grad():
            logits = model(seq[None]).logits[0].log_softmax(-1)
        return sum(float(logits[i - 1, seq[i]]) for i in (20, 21))
    seq = ids[:22].clone()
    base = logp(seq)
    seq[5:12] = model.config.pad_token_id
    # log-probs of two tokens from forwards of other shapes (batched ablations): a log-softmax over the
    # vocabulary of logits that sum hidden * positions terms per layer
    terms = model.config.vocab_size + model.config.hidden_size * 22 * model.config.num_hidden_layers
    assert float(res.token_scores[7]) == pytest.approx(base - logp(seq), abs=f32_atol(abs(base) + 1, terms))
    assert torch.all(res.token_scores[5:12] == res.token_scores[5])
    # default segments: runs of at most segment_size input tokens
    auto = attribute(model, ids, Target(output=[20]), method="loo", segment_size=6)
    assert auto.info["segments"] == [[0, 6], [6, 12], [12, 18], [18, 20]]
