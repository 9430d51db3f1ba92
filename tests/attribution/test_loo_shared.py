"""attribute_many(method="loo") shares its ablated forwards across targets with the same segments.

Argument targets of a tool call share their action's spans and their outputs are sub-ranges of the
call's output; the shared path must give exactly what separate `attribute(..., method="loo")`
calls give, with 1 + ceil(segments / batch_size) forwards per group instead of per target.
"""

from __future__ import annotations

import math

import pytest
import torch

from auditor.attribution import Target, attribute, attribute_many

from helpers.tolerance import f32_atol

SPANS = [(0, 4), (4, 9), (9, 13), (13, 17), (17, 20)]  # 5 segments, all before position 20


def _same(shared, alone, model):
    # scores are differences of log-probs of size ~10 from forwards of other shapes (batched, other
    # lengths): float32 rounding of a log-softmax over the vocabulary of logits that sum hidden *
    # positions terms per layer, relative to the log-probs' scale
    cfg = model.config
    terms = cfg.vocab_size + cfg.hidden_size * alone.info["n_tokens"] * cfg.num_hidden_layers
    tol = f32_atol(max(1.0, abs(alone.info["base_logprob"])), terms)
    assert torch.allclose(shared.token_scores, alone.token_scores, rtol=0, atol=tol)
    for key in ("segments", "replacement_id", "method", "hops", "n_tokens", "n_output", "n_inputs", "dtype", "device"):
        assert shared.info[key] == alone.info[key], key
    assert shared.info["shared_forward"] is True  # attribute_many marks every result shared, as before
    assert shared.info["base_logprob"] == pytest.approx(alone.info["base_logprob"], rel=0, abs=tol)
    assert shared.info["segment_scores"] == pytest.approx(alone.info["segment_scores"], rel=0, abs=tol)
    assert set(shared.info) == set(alone.info)
    assert (shared.method, shared.hops, shared.flow_ratios, shared.layer_shares, shared.target) == \
           (alone.method, alone.hops, alone.flow_ratios, alone.layer_shares, alone.target)
    assert len(shared.hop_scores) == 1 and torch.equal(shared.hop_scores[0], shared.token_scores)


class ForwardCounter:
    """Counts calls of the model's top-level forward (one per batched forward pass)."""

    def __init__(self, model):
        self.n = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module, args, out):
        self.n += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _separate(model, ids, targets, **kw):
    return [attribute(model, ids, t, method="loo", **kw) for t in targets]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_loo_shared_targets_match_separate_calls(models, ids, arch):
    model = models(arch)
    targets = [
        Target(output=range(20, 27), spans=SPANS),                      # the whole call
        Target(output=[21, 22, 23], spans=SPANS),                       # an argument inside it
        Target(output=[24, 25], spans=SPANS, weights=[2.0, 0.5]),      # weighted, another end
        Target(output=[20], spans=SPANS),                               # shortest prefix
        Target(output=[26], spans=SPANS, inputs=[0, 1, 2, 5, 6, 15]),  # restricted inputs
    ]
    kw = {"batch_size": 2, "replacement_id": 3}
    shared = attribute_many(model, ids, targets, method="loo", **kw)
    for s, a in zip(shared, _separate(model, ids, targets, **kw)):
        _same(s, a, model)
    assert shared[4].token_scores[[3, 4, 7, 16]].abs().sum() == 0  # only the target's inputs score


def test_loo_mixed_targets_match_separate_calls(models, ids):
    model = models("llama")
    targets = [
        Target(output=[22, 23], spans=SPANS),
        Target(output=[21], spans=[(0, 10), (10, 21)]),       # other spans: its own path
        Target(output=[24, 25, 26], spans=SPANS),
        Target(output=[18]),                                  # default segments (inputs 0..17)
        Target(output=[18, 19], weights=[1.0, 3.0]),          # same default segments: shares with the one above
        Target(output=[20], spans=[(2, 8), (8, 27)]),         # clipped to 20: differs from the next one
        Target(output=[25], spans=[(2, 8), (8, 27)]),
    ]
    calls = []
    shared = attribute_many(model, ids, targets, method="loo", segment_size=5, progress=lambda k, n: calls.append((k, n)))
    for s, a in zip(shared, _separate(model, ids, targets, segment_size=5)):
        _same(s, a, model)
    assert calls == [(k + 1, len(targets)) for k in range(len(targets))]
    assert all(r.info["seconds"] >= 0 and r.info["forward_seconds"] == 0.0 for r in shared)
    assert shared[0].info["seconds"] == shared[2].info["seconds"]  # the group's time split evenly


def test_loo_shared_runs_one_set_of_forwards_per_group(models, ids):
    model = models("llama")
    batch_size = 2
    group = [Target(output=range(20, 27), spans=SPANS), Target(output=[21, 22], spans=SPANS),
             Target(output=[23, 24, 25], spans=SPANS), Target(output=[26], spans=SPANS)]
    other = [Target(output=[21], spans=[(0, 10), (10, 21)])]  # 2 segments: 1 + 1 forwards
    per_group = 1 + math.ceil(len(SPANS) / batch_size)
    with ForwardCounter(model) as separate:
        _separate(model, ids, group + other, batch_size=batch_size)
    with ForwardCounter(model) as shared:
        attribute_many(model, ids, group + other, method="loo", batch_size=batch_size)
    assert separate.n == len(group) * per_group + 2  # 4 * 4 + 2 = 18
    assert shared.n == per_group + 2                  # 4 + 2 = 6


def test_loo_shared_errors(models, ids):
    model = models("llama")
    targets = [Target(output=[20], spans=SPANS), Target(output=[21], spans=SPANS)]
    with pytest.raises(TypeError, match="unexpected keyword arguments: bogus"):
        attribute_many(model, ids, targets, method="loo", bogus=1)
    with pytest.raises(ValueError, match="position 0"):
        attribute_many(model, ids, [Target(output=[0], inputs=[]), Target(output=[0, 1], inputs=[])], method="loo")
