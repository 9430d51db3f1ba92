"""target_logprobs: variants' target log-probabilities on a shared prefix cache equal plain forwards.

Tolerance. Both sides are float32 forwards of the same tokens that differ only in how the work is
split (a cached prefix, a batch, right-padding), so the per-token log-probs differ by rounding that
accumulates over the layers: we allow ``16·eps32·L`` per token (L layers; 3.8e-6 for the tiny
2-layer models, 5.7e-5 for SmolLM2's 30; observed: <=1e-6 and <=5e-6) plus 1e-4 of the value, and
for the sum over T target tokens the sum of those bounds (T per-token terms, 1e-4 of Σ|lp|).
A wrong position, a lost edit or a pad leaking into attention moves a log-prob by far more.
"""

from __future__ import annotations

import pytest
import torch

from auditor.attribution import Variant, VariantLogprob, target_logprobs
from auditor.attribution.ablation import target_logprobs_many
from auditor.testing import TINY_ARCHS

EPS32 = torch.finfo(torch.float32).eps
T0, T1 = 30, 36
VARIANTS = [
    Variant("remove", [(10, 14, [])]),
    Variant("replace", [(2, 5, [7, 8, 9, 10, 11])]),
    Variant("late", [(28, 30, [])]),
    Variant("two", [(1, 3, []), (20, 22, [5])]),
    Variant("noop", []),
    Variant("insert", [(29, 29, [1, 2, 3])]),
    Variant("remove-all-but-one", [(1, 30, [])]),
]


def n_layers(model) -> int:
    return model.config.get_text_config().num_hidden_layers


def plain(model, ids: torch.Tensor, variant: Variant | None, t0: int, t1: int) -> torch.Tensor:
    """Per-token target log-probs from one plain full forward over the edited sequence: [T]."""
    toks = torch.cat([variant.apply(ids[:t0]) if variant else ids[:t0], ids[t0:t1]])
    s = toks.numel() - (t1 - t0)
    with torch.no_grad():
        lp = torch.log_softmax(model(toks[None]).logits[0].float(), -1)
    return lp[torch.arange(s - 1, toks.numel() - 1), toks[s:]]


def assert_close(got: VariantLogprob, ref: torch.Tensor, layers: int) -> None:
    atol, rtol = 16 * EPS32 * layers, 1e-4
    tok = torch.tensor(got.token_logprobs, dtype=torch.float64)
    ref = ref.double()
    assert tok.shape == ref.shape
    bound = atol + rtol * ref.abs()
    assert ((tok - ref).abs() <= bound).all(), f"{got.name}: per-token diff {(tok - ref).abs().max():.2e}"
    assert abs(got.logprob - float(ref.sum())) <= float(bound.sum()), got.name
    assert got.logprob == pytest.approx(float(tok.sum()), abs=1e-9)


@pytest.mark.parametrize("arch", [*TINY_ARCHS, "olmo2"])
def test_equals_plain_forward_per_variant(arch, models):
    model = models(arch)
    ids = torch.randint(5, 300, (40,), generator=torch.Generator().manual_seed(3))
    res = target_logprobs(model, ids, range(T0, T1), VARIANTS, batch_size=3)
    assert [r.name for r in res] == ["base", *(v.name for v in VARIANTS)]
    for r, v in zip(res, [None, *VARIANTS]):
        assert_close(r, plain(model, ids, v, T0, T1), n_layers(model))
    # shifted targets: (t0 + length change) and the sequence length up to the target's end
    by = {r.name: r for r in res}
    assert (by["base"].target_start, by["base"].n_tokens) == (30, 36)
    assert (by["remove"].target_start, by["replace"].target_start, by["late"].target_start) == (26, 32, 28)
    assert (by["two"].target_start, by["insert"].target_start, by["remove-all-but-one"].target_start) == (27, 33, 1)
    assert by["noop"].token_logprobs == pytest.approx(by["base"].token_logprobs, abs=16 * EPS32 * n_layers(model))
    # the edits matter (so the comparison above can fail)
    assert abs(by["remove-all-but-one"].logprob - by["base"].logprob) > 1e-2


@pytest.mark.parametrize("arch", ["mistral", "gemma2", "gpt2"])
def test_batch_size_does_not_change_results(arch, models):
    model = models(arch)
    ids = torch.randint(5, 300, (40,), generator=torch.Generator().manual_seed(5))
    runs = [target_logprobs(model, ids, (T0, T1), VARIANTS, batch_size=b) for b in (1, 2, 3, 16)]
    tol = 16 * EPS32 * n_layers(model)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.name == b.name and a.target_start == b.target_start
            assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=tol, rel=1e-4)


def test_prefix_tokens_are_forwarded_once(models):
    """Batches are cut in order of first edit; the shared prefix grows and each token goes through once."""
    model = models("llama")
    ids = torch.randint(5, 300, (40,), generator=torch.Generator().manual_seed(5))
    seen: list[tuple[int, int]] = []
    handle = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    variants = [Variant("a", [(28, 30, [])]), Variant("b", [(25, 26, [5])])]
    try:
        target_logprobs(model, ids, range(T0, T1), variants, batch_size=8)
        # needs: b from 25 (its edit), a from 27 (its target moves to 28, predicted at 27), base from 29
        assert seen == [(1, 25), (3, 11)]
        seen.clear()
        target_logprobs(model, ids, range(T0, T1), variants, batch_size=1)
        assert seen == [(1, 25), (1, 11), (1, 2), (1, 7), (1, 2), (1, 7)]
    finally:
        handle.remove()


def test_edit_at_position_zero_runs_without_a_prefix(models):
    model = models("qwen3")
    ids = torch.randint(5, 300, (20,), generator=torch.Generator().manual_seed(1))
    v = Variant("front", [(0, 2, [9])])
    res = target_logprobs(model, ids, range(15, 20), [v])
    assert_close(res[1], plain(model, ids, v, 15, 20), n_layers(model))


def test_bad_edits_are_rejected_with_clear_errors(models):
    model = models("llama")
    ids = torch.arange(5, 45)
    with pytest.raises(ValueError, match=r"variant 'x', edit 1 \[3, 6\) comes before edit 0 \[10, 12\)"):
        Variant("x", [(10, 12, []), (3, 6, [])])
    with pytest.raises(ValueError, match=r"variant 'y', edit 1 \[11, 14\) overlaps edit 0 \[10, 12\)"):
        Variant("y", [(10, 12, []), (11, 14, [1])])
    with pytest.raises(ValueError, match=r"variant 'z', edit 0: bad span \[8, 4\)"):
        Variant("z", [(8, 4, [])])
    with pytest.raises(ValueError, match="expected \\(start, end, replacement_ids\\)"):
        Variant("w", [(1, 2)])
    for edit in [(T0, T0 + 1, []), (T0 + 2, T0 + 3, [1]), (T0 - 2, T0 + 1, [])]:
        with pytest.raises(ValueError, match="reaches the target .30, 36.: edits must end by the target's start"):
            target_logprobs(model, ids, range(T0, T1), [Variant("late", [edit])])
    with pytest.raises(ValueError, match="replacement ids must lie in"):
        target_logprobs(model, ids, range(T0, T1), [Variant("v", [(2, 3, [10**6])])])
    with pytest.raises(ValueError, match="leaves no token before the target"):
        target_logprobs(model, ids, range(T0, T1), [Variant("all", [(0, T0, [])])])
    for target in [range(0, 3), range(5, 5), range(30, 41), range(2, 10, 2)]:
        with pytest.raises(ValueError, match="target"):
            target_logprobs(model, ids, target, [])
    with pytest.raises(TypeError, match="Variant objects"):
        target_logprobs(model, ids, range(T0, T1), [(1, 2, [])])


@pytest.mark.slow
def test_embedded_model_equals_plain_forwards(embedded_model):
    model, tok = embedded_model
    torch.set_num_threads(2)
    text = ("system: you are a careful agent. user: please read the file notes.txt and tell me the third line. "
            "tool: line one, line two, the secret is 42, line four. ") * 4
    ids = torch.tensor(tok(text)["input_ids"])
    n = ids.numel()
    t0, t1 = n - 12, n - 2
    variants = [Variant("drop-user", [(8, 30, [])]), Variant("neutral", [(8, 30, tok(" hello world")["input_ids"])]),
                Variant("late", [(t0 - 10, t0 - 3, [])])]
    res = target_logprobs(model, ids, range(t0, t1), variants, batch_size=2)
    for r, v in zip(res, [None, *variants]):
        assert_close(r, plain(model, ids, v, t0, t1), n_layers(model))


MANY = [(12, 15), (30, 36), (31, 33), (20, 28), (36, 40)]


@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt2"])
def test_many_targets_equal_one_call_per_target(arch, models):
    """Each target read from a shared forward equals `target_logprobs` on that target alone, and a
    variant is scored only on targets that start at or after its last edit (None elsewhere)."""
    model = models(arch)
    ids = torch.randint(5, 300, (40,), generator=torch.Generator().manual_seed(11))
    variants = [Variant("early", [(2, 5, [7, 8])]), Variant("mid", [(16, 19, [])]), Variant("late", [(33, 36, [9])]),
                Variant("never", [(38, 40, [])]), Variant("noop", [])]
    got = target_logprobs_many(model, ids, MANY, variants, batch_size=2, max_rows=9)
    assert len(got) == 1 + len(variants) and all(len(row) == len(MANY) for row in got)
    tol = 16 * EPS32 * n_layers(model)
    for k, (t0, t1) in enumerate(MANY):
        usable = [v for v in variants if not v.edits or v.edits[-1][1] <= t0]
        alone = target_logprobs(model, ids, range(t0, t1), usable)
        want = {r.name: r for r in alone}
        for row, name in zip(got, ["base", *(v.name for v in variants)]):
            r = row[k]
            if name not in want:
                assert r is None, (name, t0)
                continue
            assert r is not None and r.name == name
            assert (r.target_start, r.n_tokens) == (want[name].target_start, want[name].n_tokens)
            assert r.token_logprobs == pytest.approx(want[name].token_logprobs, abs=tol, rel=1e-4)
    assert all(r is None for r in got[4])  # "never" edits past every target's start
    by_early = got[1]
    assert by_early[0].target_start == 11 and by_early[1].target_start == 29  # shifted by -1


def test_many_targets_run_one_forward_per_variant(models):
    """The base and each variant go through the model once for all their targets; a variant that
    can score no target is not run at all."""
    model = models("llama")
    ids = torch.randint(5, 300, (40,), generator=torch.Generator().manual_seed(2))
    seen: list[tuple[int, int]] = []
    handle = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    try:
        target_logprobs_many(model, ids, MANY, [Variant("a", [(16, 19, [])]), Variant("never", [(38, 40, [])])],
                             batch_size=1)
    finally:
        handle.remove()
    # base needs from 11 (first target at 12), "a" from its edit at 16: the prefix ids[:11], then
    # the base row to 40, then ids[11:16] for the cache, then "a" (edited, 3 shorter) to 37
    assert seen == [(1, 11), (1, 29), (1, 5), (1, 21)]


def test_many_targets_reject_bad_input(models):
    model = models("llama")
    ids = torch.arange(5, 45)
    with pytest.raises(ValueError, match="no targets"):
        target_logprobs_many(model, ids, [], [])
    with pytest.raises(ValueError, match="runs past the sequence"):
        target_logprobs_many(model, ids, [(30, 36)], [Variant("v", [(38, 41, [])])])
    with pytest.raises(ValueError, match="target"):
        target_logprobs_many(model, ids, [(0, 3)], [])


def test_reads_limit_each_variant_to_its_targets(models):
    """With `reads`, a variant is scored on its listed targets only and runs to the last one's end;
    the values equal those read without the limit."""
    model = models("llama")
    ids = torch.randint(5, 300, (40,), generator=torch.Generator().manual_seed(4))
    variants = [Variant("a", [(2, 5, [])]), Variant("b", [(16, 19, [7])])]
    full = target_logprobs_many(model, ids, MANY, variants)
    seen: list[tuple[int, int]] = []
    handle = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    try:
        part = target_logprobs_many(model, ids, MANY, variants, reads=[[0], [3, 1]], batch_size=1)
    finally:
        handle.remove()
    assert [k for k, r in enumerate(part[1]) if r is not None] == [0]
    assert [k for k, r in enumerate(part[2]) if r is not None] == [1, 3]
    assert part[1][0].token_logprobs == pytest.approx(full[1][0].token_logprobs, abs=16 * EPS32 * n_layers(model))
    assert part[2][1].token_logprobs == pytest.approx(full[2][1].token_logprobs, abs=16 * EPS32 * n_layers(model))
    # "a" needs from 2 and reads target 0 only (12..15, shifted by -3): its row runs ids[2:15] edited = 10 tokens
    assert seen[0] == (1, 2) and (1, 10) in seen
    with pytest.raises(ValueError, match="reads has 1 entries for 2 variants"):
        target_logprobs_many(model, ids, MANY, variants, reads=[[0]])
