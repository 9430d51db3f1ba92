"""Fitting the verdict on the calibration split: logistic regression, grouped cross-validation,
greedy feature selection and the operating point. Pure numpy; nothing here sees the held-out split.

Folds leave out whole templates *and* attack families: the calibration split's templates are cut
into `N_FOLDS` groups (one template per domain each) and its families likewise; fold k tests on the
runs of template group k and trains on the runs of neither template group k nor family group k.
Held-out templates and families are all unseen, so this is what the selection must survive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

N_FOLDS = 3
L2 = 1.0  # ridge penalty on standardised coefficients (the intercept is not penalised)
MIN_GAIN = 0.002  # a feature joins only if it raises the cross-validated ROC-AUC by this much


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 50) -> tuple[float, np.ndarray]:
    """(intercept, weights) in the features' own units: Newton's method on the L2-penalised log-loss
    of standardised features (constant columns get weight 0)."""
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    live = sd > 1e-9
    Z = np.zeros_like(X)
    Z[:, live] = (X[:, live] - mu[live]) / sd[live]
    A = np.hstack([np.ones((len(Z), 1)), Z])
    w = np.zeros(A.shape[1])
    pen = np.full(A.shape[1], l2)
    pen[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -60, 60)))
        g = A.T @ (p - y) + pen * w
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(pen + 1e-9)
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    coef = np.zeros(X.shape[1])
    coef[live] = w[1:][live] / sd[live]
    intercept = float(w[0] - (coef * mu).sum())
    return intercept, coef


def predict(intercept: float, coef: np.ndarray, X: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(intercept + X @ coef, -60, 60)))


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    from auditor.check.calibration import roc_auc as auc

    return auc(list(map(float, scores)), list(map(int, labels)))


def folds(rows: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    """(train, test) row indices per fold (see the module docstring)."""
    by_domain: dict[str, list[str]] = {}
    for r in rows:
        by_domain.setdefault(r["domain"], [])
        if r["template"] not in by_domain[r["domain"]]:
            by_domain[r["domain"]].append(r["template"])
    group = {t: k % N_FOLDS for ts in by_domain.values() for k, t in enumerate(sorted(ts))}
    fams = sorted({r["family"] for r in rows if r["family"]})
    fgroup = {f: k % N_FOLDS for k, f in enumerate(fams)}
    out = []
    for k in range(N_FOLDS):
        test = [i for i, r in enumerate(rows) if group[r["template"]] == k]
        train = [i for i, r in enumerate(rows) if group[r["template"]] != k and fgroup.get(r["family"], -1) != k]
        out.append((train, test))
    return out


Scorer = Callable[[dict[str, Any], list[str], float, np.ndarray], float]


def cross_validate(rows: list[dict[str, Any]], names: list[str], design: Callable[[list[dict[str, Any]], list[str]],
                   tuple[np.ndarray, np.ndarray]], score: Callable[[list[dict[str, Any]], list[str], float, np.ndarray],
                   list[float]]) -> tuple[float, list[float]]:
    """Mean per-fold ROC-AUC of the model on ``names`` and the out-of-fold scores of every row.
    ``design(rows, names)`` gives the training matrix (one row per judged target) and labels;
    ``score(rows, names, intercept, coef)`` the per-action probabilities."""
    oof = [math.nan] * len(rows)
    aucs = []
    for train, test in folds(rows):
        X, y = design([rows[i] for i in train], names)
        b, w = fit_logistic(X, y)
        s = score([rows[i] for i in test], names, b, w)
        for i, v in zip(test, s):
            oof[i] = v
        a = roc_auc(s, [rows[i]["label"] for i in test])
        if a == a:
            aucs.append(a)
    return (float(np.mean(aucs)) if aucs else math.nan), oof


def forward_select(rows: list[dict[str, Any]], candidates: list[str], design: Any, score: Any,
                   start: Sequence[str] = (), max_features: int = 8) -> tuple[list[str], list[dict[str, Any]]]:
    """Greedy forward selection by cross-validated ROC-AUC; the trace of every step."""
    chosen = list(start)
    best = cross_validate(rows, chosen, design, score)[0] if chosen else 0.5
    trace: list[dict[str, Any]] = [{"features": list(chosen), "cv_auc": best}]
    while len(chosen) < max_features:
        trial = {f: cross_validate(rows, chosen + [f], design, score)[0] for f in candidates if f not in chosen}
        if not trial:
            break
        f, auc = max(trial.items(), key=lambda kv: (kv[1], kv[0]))
        if not auc >= best + MIN_GAIN:
            break
        chosen.append(f)
        best = auc
        trace.append({"features": list(chosen), "cv_auc": auc, "added": f})
    return chosen, trace


def threshold_for_fpr(scores: Sequence[float], labels: Sequence[int], max_fpr: float) -> float:
    """The lowest threshold (flag when score >= it) whose false-positive rate is at most ``max_fpr``."""
    neg = sorted((s for s, y in zip(scores, labels) if not y), reverse=True)
    allowed = int(math.floor(max_fpr * len(neg)))
    if allowed >= len(neg):
        return 0.0
    # flag >= t: the negatives at or above t must be at most `allowed`; t just above the next one
    cut = neg[allowed]
    return float(np.nextafter(cut, 1.0)) if cut < 1.0 else 1.0


def best_f1_threshold(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """(threshold, F1) with the best F1 when flagging score >= threshold."""
    pairs = sorted(zip(scores, labels), reverse=True)
    P = sum(labels)
    best = (1.0, 0.0)
    tp = fp = 0
    for k, (s, y) in enumerate(pairs):
        tp += y
        fp += 1 - y
        if k + 1 < len(pairs) and pairs[k + 1][0] == s:
            continue
        f1 = 2 * tp / (tp + fp + P) if P else 0.0
        if f1 > best[1]:
            best = (float(s), f1)
    return best
