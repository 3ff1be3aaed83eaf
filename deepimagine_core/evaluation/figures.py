"""The report's figures (PNG, Agg backend): per-category bars with bootstrap whiskers, reliability diagrams and
confusion matrices, under `reports/figures/<benchmark>/`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepimagine_core.evaluation.run import BenchmarkRun, EvaluationResults, safe_name
from deepimagine_core.questions import CATEGORIES
from deepimagine_core.store import atomic_path


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display; safe in Dagster workers and tests)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
        os.chmod(tmp, 0o644)
    plt.close(fig)
    return path


def plot_categories(runs: dict[str, BenchmarkRun], title: str):
    """Grouped bars: weighted accuracy per category and overall, one bar per predictor, bootstrap interval whiskers."""
    plt = _pyplot()

    groups = [c for c in CATEGORIES if any(c in r.scores["categories"] for r in runs.values())] + ["overall"]
    labels = list(runs)
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 0.3 * len(labels)), 3.8), layout="constrained")
    for i, label in enumerate(labels):
        s = runs[label].scores
        values, lows, highs = [], [], []
        for g in groups:
            entry = s["overall"] if g == "overall" else s["categories"].get(g)
            interval = (s["intervals"] if g == "overall" else (entry or {}).get("intervals", {})).get("weighted_accuracy")
            v = entry["weighted_accuracy"] if entry else np.nan
            values.append(v)
            lows.append(v - interval[0] if interval else 0)
            highs.append(interval[1] - v if interval else 0)
        x = np.arange(len(groups)) + (i - (len(labels) - 1) / 2) * width
        ax.bar(x, values, width, yerr=[lows, highs], capsize=2, label=label)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel("weighted accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return fig


def plot_reliability(runs: dict[str, BenchmarkRun], title: str, n_bins: int = 10):
    """Top-label reliability: accuracy of the argmax against its probability, in equal-width bins."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(4.8, 4.2), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    edges = np.linspace(0, 1, n_bins + 1)
    for label, run in runs.items():
        conf = np.array([max(p.probabilities) for p in run.predictions])
        correct = np.array([int(np.argmax(p.probabilities)) == q.answer for q, p in zip(run.questions, run.predictions)])
        bins = np.clip(np.digitize(conf, edges) - 1, 0, n_bins - 1)
        xs, ys, ns = [], [], []
        for b in range(n_bins):
            mask = bins == b
            if mask.any():
                xs.append(conf[mask].mean())
                ys.append(correct[mask].mean())
                ns.append(mask.sum())
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probability of the chosen option")
    ax.set_ylabel("fraction correct")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def plot_confusions(run: BenchmarkRun, title: str):
    """One confusion matrix per category (original options; rows = truth, columns = argmax)."""
    plt = _pyplot()

    cats = list(run.scores["categories"])
    fig, axes = plt.subplots(1, len(cats), figsize=(3.2 * len(cats), 3.2), squeeze=False, layout="constrained")
    for ax, cat in zip(axes[0], cats):
        m = np.array(run.scores["categories"][cat]["confusion"])
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", color="black" if v <= m.max() / 2 else "white")
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_xlabel("predicted option")
        ax.set_ylabel("true option")
        ax.set_title(cat, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def write_figures(reports_dir: Path, results: EvaluationResults) -> dict[str, dict[str, Path]]:
    """{benchmark: {figure key: path}}: `categories`, `reliability` and `confusion:<predictor>`."""
    figures: dict[str, dict[str, Path]] = {}
    for bench, runs in results.runs.items():
        folder = reports_dir / "figures" / safe_name(bench)
        figs = {
            "categories": _save_png(plot_categories(runs, f"{bench}: weighted accuracy per category"), folder / "categories.png"),
            "reliability": _save_png(plot_reliability(runs, f"{bench}: reliability"), folder / "reliability.png"),
        }
        for label, run in runs.items():
            figs[f"confusion:{label}"] = _save_png(
                plot_confusions(run, f"{bench} / {label}"), folder / f"confusion_{safe_name(label)}.png"
            )
        figures[bench] = figs
    return figures
