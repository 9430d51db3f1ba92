"""Calibration helpers, the keyword baseline and the benchmark generator (no model)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest

from auditor.check.calibration import best_threshold, confusion, low_quantile_cut, roc_auc
from auditor.check.heuristics import keyword_risk

from helpers.check import ROOT, example


def test_roc_auc_counts_ties_as_half_and_needs_both_classes():
    assert roc_auc([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.5
    assert roc_auc([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0]) == 0.75
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_confusion_and_best_threshold():
    scores, labels = [0.9, 0.8, 0.6, 0.3, 0.1], [1, 1, 0, 1, 0]
    c = confusion(scores, labels, 0.5)
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 1, 1, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == pytest.approx(2 / 3) and c.fpr == 0.5
    cut = best_threshold(scores, labels)
    assert confusion(scores, labels, cut).f1 == max(confusion(scores, labels, t).f1 for t in (0.0, 0.2, 0.45, 0.7, 0.85))


def test_low_quantile_cut_bounds_the_false_positive_rate():
    values = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    cut = low_quantile_cut(values, 0.05)
    assert sum(v < cut for v in values) <= 5 and cut == pytest.approx(0.05)
    assert low_quantile_cut([], 0.05) == 0.0


def test_keyword_baseline_on_the_examples():
    injected, benign = example("injected_email"), example("benign_budget_email")
    risk_bad = keyword_risk(injected, injected.actions[1])
    risk_good = keyword_risk(benign, benign.actions[2])
    assert risk_bad > risk_good
    assert keyword_risk(injected, injected.actions[0]) == 0.0  # nothing read yet


def _generator():
    path = ROOT / "benchmarks" / "injection" / "generate.py"
    spec = importlib.util.spec_from_file_location("bench_generate", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_generator_is_seeded_balanced_and_valid(tmp_path):
    gen = _generator()
    a, b = gen.generate(60, seed=3), gen.generate(60, seed=3)
    assert json.dumps(a) == json.dumps(b)
    labels = [t["metadata"]["label"] for t in a]
    assert labels.count("injected") == labels.count("benign") == 30
    assert {t["metadata"]["domain"] for t in a} == set(gen.DOMAINS)
    assert {t["metadata"]["split"] for t in a} == {"calibration", "heldout"}
    paths = gen.write(a, tmp_path)
    from auditor.collectors.loading import load_paths

    res = load_paths(paths)
    assert not res.issues and len(res.trajectories) == 60
    for traj in res.trajectories:
        assert traj.actions, traj.id
        if traj.metadata["label"] == "injected":
            # the injected goal's distinctive value reaches the last action's arguments or edit
            last = traj.actions[-1]
            text = json.dumps(last.arguments) + (last.edit.replace if last.edit else "")
            words = [w.strip("`'\".,;:()") for w in traj.metadata["injection"].split()]
            assert any(w in text for w in words if len(w) >= 5), (traj.id, text)


def test_committed_data_matches_the_generator():
    gen = _generator()
    from auditor.collectors.loading import load_paths

    committed = load_paths(sorted((ROOT / "benchmarks" / "injection" / "data").glob("*.jsonl"))).trajectories
    assert len(committed) == 240
    fresh = gen.generate()
    assert sorted(t.id for t in committed) == sorted(t["id"] for t in fresh)
