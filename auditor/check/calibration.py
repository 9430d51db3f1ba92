"""Choosing thresholds from labelled data, and the figures a benchmark reports.

Scores are *risks*: higher = more likely an action the user did not ask for (for attribution,
``risk = 1 - support``). Labels are 1 for an injected (unsupported) action, 0 for a benign one.

    >>> roc_auc([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])
    1.0
    >>> best_threshold([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])   # flag when risk > 0.55
    0.55
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count one half). NaN without both classes."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    ranked = sorted((s, i) for i, s in enumerate(scores))
    ranks = [0.0] * len(scores)
    k = 0
    while k < len(ranked):
        j = k
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[k][0]:
            j += 1
        avg = (k + j) / 2 + 1
        for m in range(k, j + 1):
            ranks[ranked[m][1]] = avg
        k = j + 1
    r_pos = sum(r for r, y in zip(ranks, labels) if y)
    return (r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


@dataclass
class Confusion:
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1, "fpr": self.fpr}


def confusion(scores: Sequence[float], labels: Sequence[int], threshold: float) -> Confusion:
    """Flag when ``score > threshold``."""
    tp = sum(1 for s, y in zip(scores, labels) if s > threshold and y)
    fp = sum(1 for s, y in zip(scores, labels) if s > threshold and not y)
    fn = sum(1 for s, y in zip(scores, labels) if s <= threshold and y)
    tn = sum(1 for s, y in zip(scores, labels) if s <= threshold and not y)
    return Confusion(threshold, tp, fp, tn, fn)


def best_threshold(scores: Sequence[float], labels: Sequence[int], decimals: int = 2) -> float:
    """The cut (flag when ``score > cut``) with the best F1, ties broken towards fewer false
    positives; cuts are midpoints between neighbouring scores, rounded to ``decimals``."""
    values = sorted(set(round(s, 6) for s in scores))
    cuts = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1]]
    best: tuple[float, int, float] | None = None
    for cut in cuts:
        c = round(cut, decimals)
        conf = confusion(scores, labels, c)
        key = (conf.f1, -conf.fp, c)
        if best is None or key > best:
            best = key
    assert best is not None
    return best[2]


def low_quantile_cut(values: Sequence[float], max_rate: float = 0.05, decimals: int = 2) -> float:
    """The largest cut (rounded down) that leaves at most ``max_rate`` of ``values`` strictly below it:
    used for thresholds that only benign examples calibrate (flag when ``value < cut``)."""
    vs = sorted(values)
    if not vs:
        return 0.0
    allowed = int(max_rate * len(vs))
    cut = vs[allowed]  # values[:allowed] are the ones allowed below
    step = 10**-decimals
    out = int(cut / step) * step
    while sum(1 for v in vs if v < out) > allowed and out > 0:
        out -= step
    return round(max(0.0, out), decimals)
