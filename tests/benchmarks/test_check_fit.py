"""The benchmark's fitting code (benchmarks/check_fit.py): the logistic regression, the folds that
leave out templates and families, and the operating points."""

from __future__ import annotations

import numpy as np
import pytest

import check_fit as fit


def test_logistic_regression_recovers_the_weights_in_the_features_units():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(2.0, 3.0, 20000), rng.integers(0, 2, 20000), np.full(20000, 5.0)])
    z = -1.0 + 0.8 * X[:, 0] - 2.0 * X[:, 1]
    y = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(float)
    b, w = fit.fit_logistic(X, y, l2=1e-6)
    # sampling error of 20,000 draws: a few hundredths; the constant column gets no weight
    assert b == pytest.approx(-1.0, abs=0.08) and w[0] == pytest.approx(0.8, abs=0.03)
    assert w[1] == pytest.approx(-2.0, abs=0.08) and w[2] == 0.0
    p = fit.predict(b, w, X)
    assert abs(p.mean() - y.mean()) < 1e-3  # the intercept matches the base rate at the optimum


def test_folds_test_on_unseen_templates_and_train_without_their_families():
    rows = [{"domain": d, "template": f"{d}-{t}", "family": f"f{k}" if k % 3 else None}
            for d in "ab" for t in range(3) for k in range(6)]
    folds = fit.folds(rows)
    assert len(folds) == fit.N_FOLDS
    tested = sorted(i for _, test in folds for i in test)
    assert tested == list(range(len(rows)))  # every row is tested once
    for train, test in folds:
        templates = {rows[i]["template"] for i in test}
        assert len(templates) == 2 and {t.split("-")[0] for t in templates} == {"a", "b"}  # one per domain
        assert not templates & {rows[i]["template"] for i in train}
        fams = {rows[i]["family"] for i in train}
        assert len({r["family"] for r in rows if r["family"]} - fams) >= 1  # a family group is held out


def test_operating_points():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    labels = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    t = fit.threshold_for_fpr(scores, labels, 1 / 7)  # one of 7 negatives may be flagged
    assert sum(s >= t and not y for s, y in zip(scores, labels)) == 1 and t <= 0.7
    t0 = fit.threshold_for_fpr(scores, labels, 0.0)
    assert sum(s >= t0 and not y for s, y in zip(scores, labels)) == 0 and t0 > 0.7
    thr, f1 = fit.best_f1_threshold(scores, labels)
    assert thr == 0.6 and f1 == pytest.approx(2 * 3 / (4 + 3))
