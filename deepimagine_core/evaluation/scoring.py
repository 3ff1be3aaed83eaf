"""CT Open's official metric, re-implemented from the benchmark's README, plus trial-level bootstrap intervals.

Official rules (data/ct_open/README.md):
- A model answers `DECISION: (p1, p2[, p3])`; the scores are normalised to probabilities (then clipped at 1e-12 and
  renormalised); the prediction is the argmax. `parse_decision` is the project's one DECISION parser (the LLM
  predictors, the pathway and the GRPO rewards use it too). Output we cannot parse counts as uniform probabilities, and is
  counted (`n_unparsed`), never dropped.
- Each question falls in one category, `{2,3}-way_{implicit,explicit}` (option count and meta_label).
- Per category: class-balanced accuracy ("weighted accuracy": mean per-class recall over the classes present in the
  truth), macro-F1 (over the labels present in truth or prediction, 0 where undefined) and the mean cross-entropy of
  the true option.
- In `3-way_explicit`, options 0 and 1 (a significant difference either way) map to 1 and option 2 (no significant
  difference) to 0 before accuracy and F1; cross-entropy uses the original three options.
- Overall = the plain mean of each figure over the categories present.

Note: the published evaluation script renames the categories before testing for `3-way_explicit`, so as written it
never applies the collapse; we follow the README's stated rule.

Intervals: percentile bootstrap over TRIALS (nct ids), because the questions of one trial are not independent. Every
figure is computed from per-trial confusion counts, so a thousand resamples take milliseconds.

Trial-balanced figures (not part of the official metric): the same figures with each question weighted by 1 / (its
trial's number of questions), so every trial counts once. A CT Open file asks about 2 questions per trial, history
up to 361: on historical questions the official figure is dominated by a few large trials.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from deepimagine_core.questions import CATEGORIES, Question

METRICS = ("weighted_accuracy", "macro_f1", "cross_entropy")
PROB_FLOOR = 1e-12

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*%?"
_DECISION = re.compile(r"decision\s*[:：=]?\s*[\(\[\{<]?\s*((?:" + _NUMBER + r"\s*[,;/\s]\s*)+" + _NUMBER + r")", re.I)


class HasProbabilities(Protocol):
    probabilities: Sequence[float]
    parsed: bool


def normalise(scores: Sequence[float]) -> np.ndarray:
    """Scores -> probabilities the official way: divide by the sum, clip at 1e-12, renormalise."""
    raw = np.asarray(scores, dtype=np.float64)
    if raw.ndim != 1 or raw.size == 0 or not np.all(np.isfinite(raw)) or np.any(raw < 0) or raw.sum() <= 0:
        raise ValueError(f"scores must be finite, non-negative and not all zero, got {list(scores)!r}")
    probs = np.clip(raw / raw.sum(), PROB_FLOOR, 1.0)
    return probs / probs.sum()


def uniform(n_options: int) -> list[float]:
    return [1.0 / n_options] * n_options


def strip_markdown(text: str) -> str:
    """Remove formatting that models wrap answers in: code fences, bold/italics, inline code, headings, bullets, and
    a closed <think> block (the answer after it is what counts)."""
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    text = re.sub(r"```[a-zA-Z]*", "\n", text)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    text = re.sub(r"^\s*(?:#+|>+|[-*•]\s|\d+[.)]\s)\s*", "", text, flags=re.M)
    return text


@dataclass(frozen=True)
class Decision:
    probabilities: list[float]  # normalised the official way; uniform when not parsed
    parsed: bool
    error: str = ""  # why it was not parsed


def parse_decision(text: str | None, n_options: int) -> Decision:
    """The last `DECISION: (p1, ...)` in a model's output as probabilities over `n_options` options. Markdown noise is
    ignored (`strip_markdown`); brackets are optional; scores may be any non-negative numbers or percentages, separated
    by commas, semicolons, slashes or spaces. Anything else, including the wrong number of scores, gives uniform
    probabilities with parsed=False and the reason."""
    matches = _DECISION.findall(strip_markdown(text or ""))
    if not matches:
        return Decision(uniform(n_options), False, "no DECISION found")
    raw = re.findall(_NUMBER, matches[-1])
    values = [float(v.replace("%", "").strip()) * (0.01 if v.strip().endswith("%") else 1.0) for v in raw]
    if len(values) != n_options:
        return Decision(uniform(n_options), False, f"DECISION has {len(values)} numbers for {n_options} options")
    if any(v < 0 for v in values):
        return Decision(uniform(n_options), False, "negative probability")
    if sum(values) <= 0:
        return Decision(uniform(n_options), False, "probabilities sum to 0")
    return Decision(normalise(values).tolist(), True)


# ----------------------------------------------------------------------------------------------------------------
# Per-category figures from confusion counts


def binary_collapse(labels: np.ndarray, category: str) -> np.ndarray:
    """The 3-way-explicit collapse (0,1 -> 1 significant; 2 -> 0 no difference); other categories unchanged."""
    if category == "3-way_explicit":
        return np.where(labels == 2, 0, 1)
    return labels


def _figures_from_counts(conf: np.ndarray, ce_sum: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised over leading axes: conf [..., k, k] (rows = truth), ce_sum/n [...]."""
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    rows, cols = conf.sum(-1), conf.sum(-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(rows > 0, diag / np.where(rows > 0, rows, 1), 0.0)
        precision = np.where(cols > 0, diag / np.where(cols > 0, cols, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1), 0.0)
        present_true = rows > 0
        present_any = (rows + cols) > 0
        wacc = np.where(present_true.sum(-1) > 0, (recall * present_true).sum(-1) / np.maximum(present_true.sum(-1), 1), np.nan)
        mf1 = np.where(present_any.sum(-1) > 0, (f1 * present_any).sum(-1) / np.maximum(present_any.sum(-1), 1), np.nan)
        ce = np.where(n > 0, ce_sum / np.where(n > 0, n, 1), np.nan)
    return {"weighted_accuracy": wacc, "macro_f1": mf1, "cross_entropy": ce}


@dataclass
class _Category:
    """Per-trial sufficient statistics of one category: the bootstrap only reweights trials."""

    name: str
    k: int  # labels after the collapse
    conf: np.ndarray  # [n_trials, k, k]
    ce_sum: np.ndarray  # [n_trials]
    n: np.ndarray  # [n_trials]


def _check(questions: Sequence[Question], predictions: Sequence[Any]) -> tuple[list[np.ndarray], np.ndarray]:
    if len(questions) != len(predictions):
        raise ValueError(f"{len(questions)} questions but {len(predictions)} predictions")
    probs, parsed = [], []
    for q, p in zip(questions, predictions):
        values = getattr(p, "probabilities", p)
        if q.answer is None:
            raise ValueError(f"question {q.key} has no answer: it cannot be scored")
        if len(values) != len(q.options):
            raise ValueError(f"prediction for {q.key} has {len(values)} probabilities for {len(q.options)} options")
        probs.append(normalise(values))
        parsed.append(bool(getattr(p, "parsed", True)))
    return probs, np.asarray(parsed, dtype=bool)


def _category_stats(questions, probs, trial_index: dict[str, int]) -> dict[str, _Category]:
    n_trials = len(trial_index)
    stats: dict[str, _Category] = {}
    for q, p in zip(questions, probs):
        cat = q.category
        if cat not in stats:
            k = 2 if cat == "3-way_explicit" else len(q.options)
            stats[cat] = _Category(cat, k, np.zeros((n_trials, k, k)), np.zeros(n_trials), np.zeros(n_trials))
        c = stats[cat]
        t = trial_index[q.nct_id]
        true = int(binary_collapse(np.array([q.answer]), cat)[0])
        pred = int(binary_collapse(np.array([int(np.argmax(p))]), cat)[0])
        c.conf[t, true, pred] += 1
        c.ce_sum[t] += -math.log(max(float(p[q.answer]), PROB_FLOOR))
        c.n[t] += 1
    return {name: stats[name] for name in CATEGORIES if name in stats}


def _weighted(stats: dict[str, _Category], weights: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Figures per category (and overall) for trial weights [B, n_trials]."""
    out = {}
    for name, c in stats.items():
        out[name] = _figures_from_counts(
            np.einsum("bt,tij->bij", weights, c.conf), weights @ c.ce_sum, weights @ c.n
        )
    out["overall"] = {m: np.nanmean(np.stack([out[c][m] for c in stats]), axis=0) for m in METRICS}
    return out


def _auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC per row of weights [B, n]; NaN where one class is absent."""
    pos, neg = scores[positive], scores[~positive]
    if pos.size == 0 or neg.size == 0:
        return np.full(weights.shape[0], np.nan)
    pair = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
    wp, wn = weights[:, positive], weights[:, ~positive]
    num = np.einsum("bp,pn,bn->b", wp, pair, wn)
    den = wp.sum(1) * wn.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def evaluate(
    questions: Sequence[Question],
    predictions: Sequence[HasProbabilities] | Sequence[Sequence[float]],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The official figures for one predictor on one benchmark, with bootstrap intervals over trials.

    Returns {overall: {weighted_accuracy, macro_f1, cross_entropy}, intervals: {metric: [lo, hi]} (of overall),
    trial_balanced and trial_balanced_intervals (the same figures with each trial's questions weighing 1 in all: a
    benchmark's figure is dominated by no trial with many questions),
    categories: {category: {the three figures, n_questions, labels, confusion, classes, intervals, auc (2-way)}},
    n_questions, n_trials, n_unparsed, auc_2way_explicit, auc_2way_explicit_interval, bootstrap: {...}}.
    """
    if not questions:
        raise ValueError("no questions to score")
    probs, parsed = _check(questions, predictions)
    trials = sorted({q.nct_id for q in questions})
    trial_index = {t: i for i, t in enumerate(trials)}
    stats = _category_stats(questions, probs, trial_index)
    point = _weighted(stats, np.ones((1, len(trials))))
    q_trial = np.array([trial_index[q.nct_id] for q in questions])
    per_trial = 1.0 / np.bincount(q_trial, minlength=len(trials))  # trial-balanced: each trial's questions weigh 1
    point_tb = _weighted(stats, per_trial[None, :])

    rng = np.random.default_rng(seed)
    boot_w = rng.multinomial(len(trials), np.full(len(trials), 1 / len(trials)), size=n_bootstrap).astype(float)
    boot = _weighted(stats, boot_w) if n_bootstrap > 0 else None
    boot_tb = _weighted(stats, boot_w * per_trial[None, :]) if n_bootstrap > 0 else None

    def interval(values: np.ndarray | None) -> list[float] | None:
        if values is None:
            return None
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None
        return [float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))]

    result: dict[str, Any] = {
        "overall": {m: float(point["overall"][m][0]) for m in METRICS},
        "intervals": {m: interval(boot["overall"][m] if boot else None) for m in METRICS},
        "trial_balanced": {m: float(point_tb["overall"][m][0]) for m in METRICS},
        "trial_balanced_intervals": {m: interval(boot_tb["overall"][m] if boot_tb else None) for m in METRICS},
        "categories": {},
        "n_questions": len(questions),
        "n_trials": len(trials),
        "n_unparsed": int((~parsed).sum()),
        "bootstrap": {"samples": n_bootstrap, "seed": seed, "alpha": alpha, "unit": "trial (nct_id)"},
    }
    for name, c in stats.items():
        members = [i for i, q in enumerate(questions) if q.category == name]
        n_opt = 3 if name.startswith("3") else 2
        conf_full = np.zeros((n_opt, n_opt), dtype=int)
        for i in members:
            conf_full[questions[i].answer, int(np.argmax(probs[i]))] += 1
        entry = {m: float(point[name][m][0]) for m in METRICS}
        entry.update(
            n_questions=len(members),
            n_unparsed=int((~parsed[members]).sum()),
            labels=list(range(n_opt)),
            confusion=conf_full.tolist(),  # original options, rows = truth, columns = argmax
            classes={
                str(k): {
                    "count": int(conf_full[k].sum()),
                    "accuracy": float(conf_full[k, k] / conf_full[k].sum()),
                    "cross_entropy": float(
                        np.mean([-math.log(max(probs[i][k], PROB_FLOOR)) for i in members if questions[i].answer == k])
                    ),
                }
                for k in range(n_opt)
                if conf_full[k].sum() > 0
            },
            intervals={m: interval(boot[name][m] if boot else None) for m in METRICS},
        )
        if n_opt == 2:
            scores = np.array([probs[i][0] for i in members])
            positive = np.array([questions[i].answer == 0 for i in members])
            w_point = np.ones((1, len(members)))
            auc_point = _auc(scores, positive, w_point)[0]
            entry["auc"] = None if np.isnan(auc_point) else float(auc_point)
            entry["auc_interval"] = (
                interval(_auc(scores, positive, boot_w[:, q_trial[members]])) if n_bootstrap > 0 else None
            )
        result["categories"][name] = entry
    explicit = result["categories"].get("2-way_explicit", {})
    result["auc_2way_explicit"] = explicit.get("auc")
    result["auc_2way_explicit_interval"] = explicit.get("auc_interval")
    return result
