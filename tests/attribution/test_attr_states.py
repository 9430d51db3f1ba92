"""Capture: state names, decomposition closure against the model's own states, architectures."""

from __future__ import annotations

import pytest
import torch

from auditor.attribution import LAYER_STATE_NAMES, UnsupportedArchitecture, capture
from auditor.attribution.flashtrace import source_vectors
from auditor.testing import TINY_ARCHS, tiny_model

from helpers.tolerance import assert_close_f32


def test_state_names_are_pinned(models, ids):
    cache = capture(models("llama"), ids)
    assert LAYER_STATE_NAMES == (
        "resid_pre", "resid_mid", "resid_post", "attn.queries", "attn.keys", "attn.values", "attn.out_scale",
    )
    assert cache.names() == [
        "layers.0.resid_pre", "layers.0.resid_mid", "layers.0.resid_post",
        "layers.0.attn.queries", "layers.0.attn.keys", "layers.0.attn.values",
        "layers.1.resid_pre", "layers.1.resid_mid", "layers.1.resid_post",
        "layers.1.attn.queries", "layers.1.attn.keys", "layers.1.attn.values",
    ]
    N = ids.numel()
    assert cache["layers.1.resid_mid"].shape == (N, 64)
    assert cache["layers.0.attn.queries"].shape == (4, N, 16)
    assert cache["layers.0.attn.keys"].shape == (2, N, 16)
    assert torch.equal(cache["layers.0.resid_post"], cache["layers.1.resid_pre"])
    gemma = capture(models("gemma2"), ids)
    assert "layers.1.attn.out_scale" in gemma.names() and gemma["layers.1.attn.out_scale"].shape == (N,)
    with pytest.raises(KeyError):
        cache["layers.9.resid_mid"]
    with pytest.raises(KeyError):
        cache["layers.0.attn.out_scale"]


@pytest.mark.parametrize("arch", [*TINY_ARCHS, "olmo2"])
def test_closure_every_layer_and_position(arch, models, ids, reference):
    """x + s ⊙ (Σ_h Σ_j α·f + b_O) equals the model's own m (native eager run), everywhere."""
    model = models(arch)
    cache = capture(model, ids)
    native = reference.native_states(model, ids)
    N = ids.numel()
    d = model.config.hidden_size
    for l in range(cache.n_layers):
        # the captured states are the model's own: a residual state sums, per layer so far, matmuls
        # over the hidden size and attention over the positions
        terms = (l + 1) * d * N
        assert_close_f32(cache.resid[l], native.x[l], terms=terms)
        assert_close_f32(cache.mid[l], native.m[l], terms=terms)
        probs = cache.attention_rows(l, torch.arange(N), N)  # recomputed
        f = source_vectors(cache, l, 0, N)  # [H, N, d], γ folded in
        a = torch.einsum("hij,hjd->id", probs, f)
        bias = cache.out_bias(l)
        gamma = cache.adapter.out_gamma(l)
        if bias is not None:
            a = a + (bias if gamma is None else bias * gamma)
        if cache.out_scale is not None:
            a = a * cache.out_scale[l][:, None]
        assert_close_f32(cache.resid[l] + a, native.m[l], terms=terms * cache.n_heads)  # + Σ over heads and j
    # the last state too
    out = model(ids[None], output_hidden_states=True)
    assert out.hidden_states[-1].shape[1] == N  # (after the final norm; not compared)


def test_capture_leaves_the_model_alone(models, ids):
    model = models("qwen3")
    before = model(ids[None]).logits
    capture(model, ids)
    assert model.config._attn_implementation == "eager"
    torch.testing.assert_close(model(ids[None]).logits, before)


def test_recomputed_rows_match_native_attention(arch, models, ids, reference):
    model = models(arch)
    cache = capture(model, ids)
    native = reference.native_states(model, ids)
    rows = torch.tensor([3, 11, 20, 27])
    for l in range(cache.n_layers):
        # a softmax over the positions of q·k products over the head size, from states of l layers
        terms = (l + 1) * model.config.hidden_size * ids.numel()
        assert_close_f32(cache.attention_rows(l, rows, ids.numel()), native.probs[l][:, rows], terms=terms, scale=1.0)


def test_bfloat16_storage(models, ids):
    model = models("llama")
    cache = capture(model, ids, dtype="bfloat16")
    assert cache.mid[0].dtype == torch.bfloat16
    full = capture(model, ids)
    assert cache.nbytes() * 2 == full.nbytes()


def test_unsupported_architecture_names_what_is_missing(ids):
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model("gpt_neox", vocab_size=400, hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=64)
    neox = AutoModelForCausalLM.from_config(cfg)
    with pytest.raises(UnsupportedArchitecture, match="gpt_neox.*supported: .*llama"):
        capture(neox, ids)
    broken = tiny_model("llama")
    del broken.model.layers[1].post_attention_layernorm
    with pytest.raises(UnsupportedArchitecture, match="layer 1: post-attention module `post_attention_layernorm`"):
        capture(broken, ids)
