"""PNG plots of an :class:`~auditor.evaluation.runner.EvalReport`: mean RISE deletion curves per
task and method, and recovery rate by method / FlashTrace hops per task."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from auditor.evaluation.runner import EvalReport


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _methods(report: "EvalReport") -> list[str]:
    return list(dict.fromkeys(r.method for r in report.records))


def plot_deletion(report: "EvalReport", path: str | Path) -> Path:
    """One panel per task: the mean normalised, monotone RISE deletion curve of each method
    (x = fraction of input tokens deleted, highest-scored first; lower area is better)."""
    plt = _plt()
    tasks = list(dict.fromkeys(r.task for r in report.records))
    methods = _methods(report)
    cols = min(len(tasks), 3) or 1
    rows = math.ceil(len(tasks) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for m in methods:
            curves = [r.rise_curve for r in report.records if r.task == task and r.method == m and r.rise_curve]
            if not curves:
                continue
            k = len(curves[0])
            mean = [sum(c[i] for c in curves) / len(curves) for i in range(k)]
            xs = [i / (k - 1) for i in range(k)]
            rise = sum(r.rise for r in report.records if r.task == task and r.method == m and r.rise_curve) / len(curves)
            style = "-" if m.startswith("flashtrace") else "--"
            ax.plot(xs, mean, style, label=f"{m} ({rise:.3f})")
        ax.set_title(f"{task}: RISE deletion")
        ax.set_xlabel("fraction of input tokens deleted")
        ax.set_ylabel("normalised log p(R, O)")
        ax.set_ylim(-0.02, 1.02)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:  # every curve undefined (deleting all inputs did not lower the log-probability)
            ax.text(0.5, 0.5, "no defined deletion curve", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_recovery(report: "EvalReport", path: str | Path) -> Path:
    """Grouped bars: recovery rate (top 10 %) per task for every method, FlashTrace per hop count."""
    plt = _plt()
    rows = [r for r in report.summary() if r.task != "mean"]
    tasks = list(dict.fromkeys(r.task for r in rows))
    methods = _methods(report)
    variants = list(dict.fromkeys(r.variant for r in rows))
    labels = [f"{t}\n({v})" if len(variants) > 1 else t for t in tasks for v in variants]
    keys = [(t, v) for t in tasks for v in variants]
    keys_present = [k for k in keys if any(r.task == k[0] and r.variant == k[1] for r in rows)]
    labels = [lab for lab, k in zip(labels, keys) if k in keys_present]
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(keys_present) + 2), 3.8))
    cmap = plt.get_cmap("tab10")
    for j, m in enumerate(methods):
        vals = []
        for t, v in keys_present:
            hit = [r.recovery for r in rows if r.task == t and r.variant == v and r.method == m]
            vals.append(hit[0] if hit and not math.isnan(hit[0]) else 0.0)
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(keys_present))]
        ax.bar(xs, vals, width, label=m, color=cmap(j % 10), hatch="" if m.startswith("flashtrace") else "//")
    ax.set_xticks(range(len(keys_present)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("recovery rate (top 10 %)")
    ax.set_ylim(0, 1.0)
    ax.set_title("Recovery of gold input tokens by method (FlashTrace by hops)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_plots(report: "EvalReport", out_dir: str | Path, prefix: str = "eval") -> list[Path]:
    """Write ``{prefix}_deletion.png`` and ``{prefix}_recovery.png`` under ``out_dir``."""
    out = Path(out_dir)
    return [plot_deletion(report, out / f"{prefix}_deletion.png"), plot_recovery(report, out / f"{prefix}_recovery.png")]
