"""The runner end to end on a tiny random model: spans map to the right tokens, every method
yields metrics in range, the report serialises and plots."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from auditor.evaluation import metrics as M
from auditor.evaluation import runner as R
from auditor.evaluation.tasks import generate
from auditor.evaluation.traces import gold_trace, render_prompt


@pytest.fixture(scope="module")
def tiny():
    from auditor.testing import tiny_model, tiny_tokenizer

    return tiny_model("llama"), tiny_tokenizer()


def _real_tokenizer():
    from auditor.model_registry import embedded_model_dir

    d = embedded_model_dir()
    if not (d / "tokenizer.json").is_file():
        pytest.skip("the embedded model is not provisioned (audit models --provision)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(d, local_files_only=True)


def _check_layout(tok, prep: R.Prepared):
    ex = prep.trace.example
    rendered, start = render_prompt(tok, ex.prompt)
    offsets = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    gold_pos = [p for p, g in zip(prep.inputs, prep.gold) if g]
    # every gold token lies in a gold span, and every gold span has tokens
    spans = [(a + start, b + start) for a, b in ex.gold_spans]
    for p in gold_pos:
        a, b = offsets[p]
        assert any(a < e and b > s for s, e in spans)
    for s, e in spans:
        assert any(s <= offsets[p][0] < e or s < offsets[p][1] <= e for p in gold_pos)
    # X, R, O partition the tail of the sequence in order
    assert prep.inputs == sorted(prep.inputs) and prep.reasoning[0] > prep.inputs[-1]
    assert prep.output[0] == prep.reasoning[-1] + 1 and prep.output[-1] == prep.input_ids.numel() - 1
    # loo spans are disjoint, inside X, and cover the gold tokens
    flat = [i for a, b in prep.spans for i in range(a, b)]
    assert len(flat) == len(set(flat)) and set(flat) <= set(prep.inputs)
    assert set(gold_pos) <= set(flat)
    return gold_pos


def test_prepare_maps_gold_spans_tiny(tiny):
    _, tok = tiny
    for name in ("mq-q2", "vt-h2-c2"):
        ex = generate(name, 1, length=80, count_tokens=lambda s: len(tok(s, add_special_tokens=False)["input_ids"]))[0]
        prep = R.prepare(tok, gold_trace(tok, ex))
        assert _check_layout(tok, prep)


def test_prepare_maps_gold_spans_smollm2_tokenizer():
    tok = _real_tokenizer()
    count = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    for name in ("mq-q2", "mv-v2", "vt-h2-c3"):
        ex = generate(name, 1, length=256, count_tokens=count)[0]
        prep = R.prepare(tok, gold_trace(tok, ex))
        gold_pos = _check_layout(tok, prep)
        decoded = tok.decode(prep.input_ids[gold_pos])
        for text in ex.gold_texts():
            assert text in decoded
        assert 230 <= len(prep.inputs) <= 262  # about the asked length
    assert R.neutral_token_id(tok) == tok(" ", add_special_tokens=False)["input_ids"][0]


def test_method_specs():
    specs = R.method_specs(["flashtrace", "loo", "attention"], [0, 1, 2])
    assert [s.label for s in specs] == ["flashtrace-h0", "flashtrace-h1", "flashtrace-h2", "loo", "attention"]
    assert all(s.hops == 0 for s in specs if s.method != "flashtrace")


def test_oracle_attribution_scores_best(tiny):
    """A fake method that knows the gold tokens: recovery is as high as the slots allow."""
    model, tok = tiny
    count = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    traces = [gold_trace(tok, ex) for ex in generate("mq-q1", 2, length=120, count_tokens=count)]
    preps = {R.prepare(tok, t).input_ids.numel(): R.prepare(tok, t) for t in traces}

    def oracle(model, ids, target, method, hops, **kw):
        prep = preps[ids.numel()]
        s = torch.zeros(ids.numel())
        s[[p for p, g in zip(prep.inputs, prep.gold) if g]] = 1.0
        if method == "reversed":
            s[prep.inputs] = 1.0 - s[prep.inputs]
        return SimpleNamespace(token_scores=s, flow_ratios=[])

    recs = R.evaluate_traces(model, tok, traces, [R.MethodSpec("oracle"), R.MethodSpec("reversed")],
                             attribute=oracle)
    assert not [r.error for r in recs if r.error]
    for r in recs:
        prep = next(p for p in preps.values() if p.trace.example.uid == r.uid)
        k = M.top_k_count(len(prep.inputs))
        want = min(1.0, k / sum(prep.gold)) if r.method == "oracle" else 0.0
        assert r.recovery == pytest.approx(want)


def test_run_eval_end_to_end_tiny(tiny, tmp_path):
    from auditor.evaluation.plots import save_plots

    model, tok = tiny
    report = R.run_eval(["mq-q2", "vt-h1-c2"], method=["flashtrace", "ifr-token", "loo", "attention"], hops=[0, 1],
                        n=1, length=60, variant="gold", model=model, tokenizer=tok)
    labels = {r.method for r in report.records}
    assert labels == {"flashtrace-h0", "flashtrace-h1", "ifr-token", "loo", "attention"}
    assert not [r.error for r in report.records if r.error]
    for r in report.records:
        assert 0.0 <= r.recovery <= 1.0
        assert math.isnan(r.rise) or 0.0 <= r.rise <= 1.0
        assert math.isnan(r.mas) or 0.0 <= r.mas <= 1.0
        assert r.seconds >= 0 and len(r.logprobs) == M.STEPS + 1
    ft1 = [r for r in report.records if r.method == "flashtrace-h1"]
    assert all(len(r.flow_ratios) >= 1 for r in ft1)
    rows = report.summary()
    assert {r.task for r in rows} == {"mq-q2", "vt-h1-c2", "mean"}
    path = report.save_json(tmp_path / "eval.json")
    data = json.loads(path.read_text())
    assert data["settings"]["tasks"] == ["mq-q2", "vt-h1-c2"] and len(data["records"]) == len(report.records)
    again = R.EvalReport.from_dict(data)
    assert [(r.method, r.recovery) for r in again.records] == [(r.method, r.recovery) for r in report.records]
    for p in save_plots(report, tmp_path):
        assert p.stat().st_size > 1000
