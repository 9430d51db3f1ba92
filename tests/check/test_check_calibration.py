"""Calibration helpers and the keyword baseline (no model). The benchmark generator and its data are
tested in tests/benchmarks/test_injection_dataset.py."""

from __future__ import annotations

import math

import pytest

from auditor.check.calibration import best_threshold, confusion, low_quantile_cut, roc_auc
from auditor.check.heuristics import keyword_risk

from helpers.check import example


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
