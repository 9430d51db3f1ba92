"""§8 metrics on hand-made cases with known answers: a perfect, a reversed and a uniform
attribution, scored against toy "models" whose log-probability is a known function of which
input tokens were deleted."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.tolerance import f32_atol

from auditor.evaluation import metrics as M

N = 100
GOLD = list(range(10, 15))  # 5 gold tokens = 5 % of the inputs
BASE = 999  # the neutral token id in these toy cases


def _gold_mask() -> list[bool]:
    return [i in GOLD for i in range(N)]


def perfect() -> torch.Tensor:
    return torch.tensor([1.0 if i in GOLD else 0.0 for i in range(N)])


def reversed_() -> torch.Tensor:
    return 1.0 - perfect()


def uniform() -> torch.Tensor:
    return torch.ones(N)


def gold_model(batch: torch.Tensor) -> torch.Tensor:
    """log p falls by 1 per deleted gold token; nothing else matters."""
    return -(batch[:, GOLD] == BASE).sum(-1).double()


def linear_model(batch: torch.Tensor) -> torch.Tensor:
    """Every input token matters equally."""
    return -(batch[:, :N] == BASE).sum(-1).double()


def run(scores, model=gold_model) -> M.DeletionResult:
    ids = torch.arange(N + 5)
    return M.deletion_test(model, ids, list(range(N)), scores, BASE)


# -- recovery ---------------------------------------------------------------------------------

def test_top_k_count():
    assert M.top_k_count(100) == 10
    assert M.top_k_count(95) == 10  # ceil(9.5)
    assert M.top_k_count(5) == 1
    assert M.top_k_count(0) == 0


def test_recovery_perfect_reversed_uniform():
    g = _gold_mask()
    assert M.recovery_rate(perfect(), g) == 1.0
    assert M.recovery_rate(reversed_(), g) == 0.0
    # uniform: all tokens tie; the 10 slots are shared equally -> expected recall k / n
    assert M.recovery_rate(uniform(), g) == pytest.approx(0.10)


def test_recovery_more_gold_than_slots():
    g = [i < 20 for i in range(N)]  # 20 gold tokens, only 10 slots
    assert M.recovery_rate(torch.tensor([1.0 if x else 0.0 for x in g]), g) == pytest.approx(0.5)


def test_recovery_partial_ties():
    # 8 clear winners (non-gold), then 4 tokens tied for the last 2 slots, 2 of them gold
    s = torch.zeros(N)
    s[:8] = 5.0
    s[[50, 51, 52, 53]] = 1.0
    g = [i in (50, 51) for i in range(N)]
    assert M.recovery_rate(s, g) == pytest.approx(0.5)  # each tied token has 2/4 chance


def test_recovery_needs_gold_and_matching_lengths():
    assert math.isnan(M.recovery_rate(torch.ones(4), [False] * 4))
    with pytest.raises(ValueError):
        M.recovery_rate(torch.ones(4), [True] * 3)


# -- curve helpers ----------------------------------------------------------------------------

def test_deletion_counts_and_auc():
    assert M.deletion_counts(100) == [5 * i for i in range(21)]
    assert M.deletion_counts(7, 20)[-1] == 7
    assert M.auc([1.0] * 21) == pytest.approx(1.0)
    assert M.auc([1 - i / 20 for i in range(21)]) == pytest.approx(0.5)


def test_normalised_curve_is_clipped_and_monotone():
    c = M.normalised_curve([0.0, 0.5, -3.0, -1.0, -2.0])  # dips below the end, bounces back
    assert c.tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.0])
    assert M.normalised_curve([-2.0, -1.0, -1.5]) is None  # deletion raised the probability
    assert math.isnan(M.rise_auc([-2.0, -1.0])[0])


# -- RISE / MAS with known answers ------------------------------------------------------------

def test_rise_perfect_is_one_step():
    r = run(perfect())
    assert r.logprobs[0] == 0 and r.logprobs[1] == -5 and r.logprobs[-1] == -5
    assert r.rise == pytest.approx(0.025)  # half a step of area
    assert r.mas == pytest.approx(0.025)  # all mass removed in step 1 too: no penalty


def test_rise_reversed_is_worst():
    r = run(reversed_())
    assert r.rise == pytest.approx(0.975)
    assert r.mas == pytest.approx(0.975)


def test_uniform_deletes_left_to_right():
    r = run(uniform())  # gold 10..14 goes at step 3 (tokens 10..14 of the left-to-right order)
    assert r.rise_curve[:4] == [1.0, 1.0, 1.0, 0.0]
    assert r.rise == pytest.approx(2.5 / 20)


def test_linear_model_any_ranking_gives_half_but_mas_penalises_magnitudes():
    # Every token matters equally: RISE cannot tell rankings apart ...
    for s in (perfect(), reversed_(), uniform()):
        assert run(s, linear_model).rise == pytest.approx(0.5)
    # ... MAS can: a uniform attribution matches the uniform response exactly,
    assert run(uniform(), linear_model).mas == pytest.approx(0.5)
    # while putting all mass on 5 tokens claims a collapse that does not happen:
    # curve = min(1, 2·(1 − x)) -> area 0.75.
    assert run(perfect(), linear_model).mas == pytest.approx(0.75)


def test_mas_density_and_negative_scores():
    counts = M.deletion_counts(N)
    d = M.mass_density(perfect(), counts)
    assert d[0] == 1.0 and d[1] == 0.0 and d[-1] == 0.0
    d0 = M.mass_density(torch.zeros(N), counts)  # no mass: falls linearly
    assert d0 == pytest.approx([1 - i / 20 for i in range(21)])
    neg = perfect() - 0.5  # negative scores carry no mass
    assert M.mass_density(neg, counts) == pytest.approx(d)


def test_endpoints_save_forward_passes():
    calls = []

    def fn(batch):
        calls.append(batch.shape[0])
        return gold_model(batch)

    full = M.deletion_test(fn, torch.arange(N + 5), list(range(N)), perfect(), BASE)
    n_full = sum(calls)
    calls.clear()
    short = M.deletion_test(fn, torch.arange(N + 5), list(range(N)), perfect(), BASE, endpoints=(0.0, -5.0))
    assert n_full == 21 and sum(calls) == 19
    assert short.rise == full.rise and short.logprobs == full.logprobs


def test_perturbed_batch_replaces_top_tokens_only_in_inputs():
    ids = torch.arange(10)
    batch = M.perturbed_batch(ids, [2, 3, 4, 5], torch.tensor([0.1, 0.9, 0.5, 0.0]), [0, 1, 2, 4], -1)
    assert batch[0].tolist() == list(range(10))
    assert batch[1].tolist() == [0, 1, 2, -1, 4, 5, 6, 7, 8, 9]
    assert batch[2].tolist() == [0, 1, 2, -1, -1, 5, 6, 7, 8, 9]
    assert batch[3].tolist() == [0, 1, -1, -1, -1, -1, 6, 7, 8, 9]


def test_model_logprob_fn_matches_full_logits():
    from auditor.testing import tiny_model

    model = tiny_model("llama")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (2, 30), generator=g)
    targets = [25, 26, 27, 28, 29]
    got = M.model_logprob_fn(model, targets)(ids)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.double(), -1)
    want = sum(logp[:, t - 1, :].gather(-1, ids[:, t:t + 1]).squeeze(-1) for t in targets)
    # float32 vs float64 log-softmax: the vocabulary and each logit's hidden * positions terms, 5 tokens summed
    terms = len(targets) * (model.config.vocab_size + model.config.hidden_size * ids.shape[1] * model.config.num_hidden_layers)
    assert torch.allclose(got, want, rtol=0, atol=f32_atol(float(want.abs().max()), terms))
