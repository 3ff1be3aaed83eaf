"""Choosing predictors, features and hyper-parameters without looking at any benchmark.

Every choice is made by forward-chaining cross-validation on historical training questions grouped by trial and
ordered in time: the trials are sorted by results-first-posted date and cut into `n_blocks` consecutive blocks; fold
k trains on blocks 0..k-1 and scores block k with the official metric, also trial-balanced (`SELECTION_METRIC`). Fold k's validation block is also the
unlabelled target that `_adapted` predictors adapt to, so the same folds are the simulated shift (train on older
trials, adapt to newer ones) that decides between plain and adapted variants. CT Open files are never read here.

    table = cross_validate_all(CANDIDATES, train)          # [{candidate, folds, mean figures}]
    best = best_candidate(table)

The reference predictor is the candidate with the best mean `SELECTION_METRIC` in the stored whole-corpus
run (docs/results/); `REFERENCE` records it so other code gets it without re-running the selection:

    predictor = reference_predictor()        # unfitted; .fit(historical questions) then .predict(questions)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.predictors import ADAPTED_SUFFIX, Predictor, make_predictor
from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.questions import Question


@dataclass(frozen=True)
class Candidate:
    """A predictor name and its keyword options, with a short label for tables."""

    label: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def make(self) -> Predictor:
        return make_predictor(self.name, **self.options)


#: The reference predictor: the winner of the whole-corpus selection stored in docs/results/whole_corpus/
#: (2026-12-07 07:29 UTC, commit b4b945c: 42,579 historical questions, after the crossover, Fisher-independence and
#: scale-convention label fixes of that day): the mean P(positive) of a pooled logistic regression (endpoint, title
#: and arm texts, the "design" set, target priors), a random forest and gradient-boosted trees (structured features and
#: priors), without recency or trial weights; CV trial-balanced 0.6693 (official 0.685; 4 forward folds), level to the
#: fourth decimal with the previous reference (the two-member ensemble, half-life 5 years, trial balance 1: 0.6693,
#: official 0.674) and the same three members with a 5-year half-life (0.6692); 0.668 for the 2-year half-life.
REFERENCE = Candidate(
    "ensemble (logreg design + title/arms text + priors, random_forest full, hgb)",
    "ensemble",
    {"members": ["logreg", "random_forest", "hgb"],
     "member_options": {"logreg": {"feature_set": "design", "text_blocks": ["endpoint", "title", "arms"], "priors": True},
                        "random_forest": {"n_estimators": 60, "min_samples_leaf": 10, "max_text_features": 1000},
                        "hgb": {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
                                "l2_regularization": 1.0, "feature_set": "full", "priors": True}}})
reference_predictor_name = REFERENCE.name


def default_options(name: str) -> dict[str, Any]:
    """The settings a predictor runs with when its caller gives none: the reference predictor's selected settings
    (a copy of `REFERENCE.options`) for the reference, the predictor's own defaults (`{}`) for any other."""
    return copy.deepcopy(REFERENCE.options) if name == REFERENCE.name else {}


def reference_predictor() -> Predictor:
    """A fresh, unfitted reference predictor: `fit(historical questions)`, then `predict(questions)` (the questions
    it predicts are also its unlabelled adaptation target, so predict a whole benchmark at once)."""
    return REFERENCE.make()


def trial_dates(questions: Sequence[Question]) -> dict[str, str]:
    """nct_id -> results-first-posted ISO date (undated trials sort last)."""
    dates: dict[str, str] = {}
    for q in questions:
        dates.setdefault(q.nct_id, str(q.extra.get("results_first_posted") or "9999"))
    return dates


def time_folds(questions: Sequence[Question], n_blocks: int = 4) -> list[tuple[list[int], list[int]]]:
    """Forward-chaining folds over trials in time: [(train indices, validation indices)] for k = 1..n_blocks-1."""
    dates = trial_dates(questions)
    trials = sorted(dates, key=lambda t: (dates[t], t))
    block = {t: min(n_blocks - 1, i * n_blocks // len(trials)) for i, t in enumerate(trials)}
    folds = []
    for k in range(1, n_blocks):
        tr = [i for i, q in enumerate(questions) if block[q.nct_id] < k]
        va = [i for i, q in enumerate(questions) if block[q.nct_id] == k]
        if tr and va:
            folds.append((tr, va))
    return folds


def fold_figures(questions: Sequence[Question], predictions) -> dict[str, float | None]:
    """Overall weighted accuracy, macro-F1, cross-entropy (official and trial-balanced), 2-way explicit AUC and
    per-category accuracy."""
    s = evaluate(questions, predictions, n_bootstrap=0)
    out: dict[str, float | None] = dict(s["overall"])
    out.update({f"trial_balanced_{m}": v for m, v in s["trial_balanced"].items()})
    out["auc_2way_explicit"] = s["auc_2way_explicit"]
    for cat, entry in s["categories"].items():
        out[f"wacc:{cat}"] = entry["weighted_accuracy"]
    return out


def _fold(candidates: Sequence[Candidate], train: list[Question], valid: list[Question]) -> list[tuple[dict, float]]:
    """Every candidate fitted on one fold's `train` and scored on its `valid`: (figures, seconds) per candidate.
    Per-question features and the feature matrices of each feature setting are built once for the fold and shared
    (`features.cached`); matrices are fitted on the fold's training questions only."""
    out = []
    adapted: dict[str, Any] = {}  # `_adapted` candidates differing only in `method` share one fit
    with features.cached():
        for candidate in candidates:
            started = time.monotonic()
            key = None
            if candidate.name.endswith(ADAPTED_SUFFIX):
                key = repr((candidate.name, sorted((k, v) for k, v in candidate.options.items() if k != "method")))
            predictor = adapted.get(key)
            if predictor is not None:
                predictor.method = candidate.options.get("method", predictor.method)
            else:
                predictor = candidate.make()
                predictor.fit(train)
                if key is not None:
                    adapted[key] = predictor
            out.append((fold_figures(valid, predictor.predict(valid)), time.monotonic() - started))
    return out


def _summarise(candidate: Candidate, per_fold: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    keys = sorted({key for f in per_fold for key in f})
    mean = {}
    for key in keys:
        values = [f[key] for f in per_fold if f.get(key) is not None and np.isfinite(f[key])]
        mean[key] = float(np.mean(values)) if values else None
    return {"candidate": candidate.label, "name": candidate.name, "options": candidate.options, "folds": per_fold,
            "mean": mean, "seconds": round(seconds, 1)}


def cross_validate_all(candidates: Sequence[Candidate], questions: Sequence[Question], n_blocks: int = 4,
                       log: Callable[[str], None] = print, n_jobs: int = 1) -> list[dict[str, Any]]:
    """Every candidate on every forward fold (one job per fold, `n_jobs` folds at a time in worker processes when
    > 1, largest fold first); one row per candidate with its per-fold and mean figures (seconds: fitting and
    predicting summed over folds)."""
    questions = [q for q in questions if q.answer is not None]
    folds = time_folds(questions, n_blocks)
    log(f"selection: {len(candidates)} candidates, {len(folds)} forward folds over {len(questions)} questions")
    order = sorted(range(len(folds)), key=lambda k: -len(folds[k][0]))
    jobs = [(list(candidates), [questions[i] for i in folds[k][0]], [questions[i] for i in folds[k][1]])
            for k in order]
    if n_jobs > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=min(n_jobs, len(jobs)))(delayed(_fold)(*job) for job in jobs)
    else:
        done = [_fold(*job) for job in jobs]
    by_fold = dict(zip(order, done))
    rows = []
    for i, c in enumerate(candidates):
        mine = [by_fold[k][i] for k in range(len(folds))]
        rows.append(_summarise(c, [f for f, _ in mine], sum(t for _, t in mine)))
        m = rows[-1]["mean"]
        per_fold = " / ".join(f"{f[SELECTION_METRIC]:.3f}" for f, _ in mine)
        log(f"{c.label}: CV trial-balanced weighted accuracy {m[SELECTION_METRIC]:.3f} ({per_fold}), official "
            f"{m['weighted_accuracy']:.3f}, AUC 2-way explicit {m.get('auc_2way_explicit') or float('nan'):.3f} "
            f"({rows[-1]['seconds']}s)")
    return rows


#: What the selection maximises (mean over the forward folds). Trial-balanced since session 5: every validation trial
#: counts once, as in a benchmark of new trials (CT Open asks ~2 questions per trial; a historical fold's official
#: figure is dominated by its few trials with 100+ questions). Fixed before the run that applied it.
SELECTION_METRIC = "trial_balanced_weighted_accuracy"
SELECTION_METRIC_TEXT = ("mean over forward folds of the trial-balanced overall weighted accuracy (each validation "
                         "trial's questions weigh 1 in all)")


def best_candidate(rows: Sequence[dict[str, Any]], metric: str = SELECTION_METRIC) -> dict[str, Any]:
    """The row with the best mean `metric` (ties: the earlier, simpler candidate)."""
    return max(rows, key=lambda r: (r["mean"].get(metric) or -1.0, -rows.index(r)))
