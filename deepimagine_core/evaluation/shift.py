"""Adapting a trained predictor to a benchmark's questions without their answers (`<name>_adapted`).

Why: history (2008–2016 results) and CT Open (2025) differ. On CT Open files the ranking of 2-way explicit questions
transfers (AUC 0.74–0.77) but the scores sit lower as a whole: at 0.5 only 23–30% are predicted positive.

What `AdaptedPredictor` does, per category, with the benchmark's questions as the unlabelled target:
1. Calibrate on history: the base model is fitted on the older (1 − holdout) of the training trials and scored on the
   newest `holdout` fraction; Platt scaling there gives P_source(positive | score), the source prior pi_s, the
   source AUC, and the mean calibrated score of each class.
2. Estimate the target prior without labels: EM of Saerens, Latinne & Decaestecker (2002) on the calibrated scores,
   with a Beta pseudo-count toward pi_s and a clip to [0.02, 0.98] — naive EM on uncalibrated scores runs to 0 or 1 —
   or soft black-box shift estimation (Lipton, Wang & Smola 2018): pi_t = (mean score − m0) / (m1 − m0).
   An estimate that reaches the clip is not used (the source prior is kept, and `estimate_at_clip` records it): with
   weakly separating scores (m1 − m0 ≈ 0.1) a small shift of the mean score drives BBSE to 0 or 1.
3. Decide. The metric is class-balanced accuracy, whose best decision under pure label shift does not move (the
   balanced posterior p(y|x)/pi(y) is the same in both domains), so a prior estimate alone cannot fix the threshold.
   What moves it is a shift of the scores themselves. So the threshold is placed on the target's own score
   distribution: predict positive for the top r of the target's questions, r = the positive rate a binormal score
   model with the source AUC would give at its balanced-accuracy optimum when the prior is pi_t:
   r = 1 − Phi(d/2) + pi_t (2 Phi(d/2) − 1), d = sqrt(2) Phi^-1(AUC). (r stays near 0.5 for weak scores, nears pi_t
   for strong ones.) Output probabilities are sigmoid(a (logit(score) − threshold)), a = the Platt slope.

Methods: `em_rate` (steps 1–3), `bbse_rate` (BBSE prior), `median` (r = 0.5), `calibrated` (step 1 only: the
balanced posterior after Platt scaling, no target information), and `importance` — covariate shift rather than label
shift: the base model is refitted on the training questions weighted by p(target | x) / p(source | x) from a domain
classifier of training against target questions (`weighting.domain_weights`, features only), and its balanced
P(positive) is the output (no threshold moved; a base that takes no sample weights, such as knn_history, is refitted
unchanged). The method shipped as `_adapted` is chosen by a
simulated shift on history (`selection`). A category with fewer than `min_target` target questions keeps the
`calibrated` output. Answers of the target questions are never read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from deepimagine_core.evaluation import weighting
from deepimagine_core.evaluation.base import ScoredPredictor, targets
from deepimagine_core.evaluation.calibration import auc, logit, platt, sigmoid
from deepimagine_core.questions import Question

METHODS = ("em_rate", "bbse_rate", "median", "calibrated", "importance")
PRIOR_CLIP = (0.02, 0.98)


def em_prior(p_source: Sequence[float], pi_source: float, pseudo: float = 10.0, clip: tuple[float, float] = PRIOR_CLIP,
             max_iter: int = 500, tol: float = 1e-7) -> tuple[float, int]:
    """Target prior of the positive class by EM (Saerens et al. 2002) from posteriors calibrated under prior
    `pi_source`; MAP with `pseudo` pseudo-questions at pi_source, then clipped. Returns (prior, iterations)."""
    p = np.clip(np.asarray(p_source, dtype=float), 1e-6, 1 - 1e-6)
    pi_s = float(np.clip(pi_source, *clip))
    pi = pi_s
    for it in range(1, max_iter + 1):
        w1, w0 = pi / pi_s * p, (1 - pi) / (1 - pi_s) * (1 - p)
        post = w1 / (w1 + w0)
        new = float(np.clip((post.sum() + pseudo * pi_s) / (p.size + pseudo), *clip))
        if abs(new - pi) < tol:
            return new, it
        pi = new
    return pi, max_iter


def bbse_prior(p_target: Sequence[float], mean_pos: float, mean_neg: float,
               clip: tuple[float, float] = PRIOR_CLIP) -> float:
    """Soft black-box shift estimate (Lipton et al. 2018): E_t[score] = pi m1 + (1 − pi) m0, solved for pi."""
    gap = mean_pos - mean_neg
    if abs(gap) < 1e-6:
        return 0.5
    return float(np.clip((float(np.mean(p_target)) - mean_neg) / gap, *clip))


def at_clip(prior: float, clip: tuple[float, float] = PRIOR_CLIP) -> bool:
    """True when a prior estimate ran to a bound of the clip: the estimator is not identified there (weakly
    separating scores turn a small shift of their mean into a prior of 0 or 1), so it is not used."""
    return prior <= clip[0] + 1e-9 or prior >= clip[1] - 1e-9


def balanced_rate(prior: float, source_auc: float) -> float:
    """Share predicted positive at the balanced-accuracy optimum of an equal-variance binormal score model."""
    a = float(np.clip(source_auc, 0.5, 0.999))
    half = NormalDist().inv_cdf(a) * np.sqrt(2) / 2
    phi = NormalDist().cdf(half)
    return float(np.clip(1 - phi + prior * (2 * phi - 1), 0.01, 0.99))


@dataclass
class SourceStats:
    """Per category, from the newest slice of history: Platt (a, b), prior, AUC, class means of calibrated scores."""

    a: float = 1.0
    b: float = 0.0
    prior: float = 0.5
    auc: float = 0.5
    mean_pos: float = 0.5
    mean_neg: float = 0.5
    n: int = 0

    @classmethod
    def fit(cls, scores: np.ndarray, y: np.ndarray) -> "SourceStats":
        a, b = platt(scores, y)
        p = sigmoid(a * logit(scores) + b)
        prior = float(np.clip(y.mean(), *PRIOR_CLIP)) if y.size else 0.5
        has_both = 0 < y.sum() < y.size
        return cls(a, b, prior, auc(scores, y) if has_both else 0.5,
                   float(p[y == 1].mean()) if has_both else 0.5, float(p[y == 0].mean()) if has_both else 0.5, y.size)


def time_holdout(train: Sequence[Question], fraction: float) -> tuple[list[Question], list[Question]]:
    """(older, newer): the newest `fraction` of trials by `extra['results_first_posted']` (undated trials sort last,
    ties by NCT id)."""
    date = {}
    for q in train:
        date.setdefault(q.nct_id, str(q.extra.get("results_first_posted") or "9999"))
    trials = sorted(date, key=lambda t: (date[t], t))
    newer = set(trials[int(round(len(trials) * (1 - fraction))):])
    return [q for q in train if q.nct_id not in newer], [q for q in train if q.nct_id in newer]


class AdaptedPredictor(ScoredPredictor):
    """A `ScoredPredictor` (made by `base_factory`) whose decisions adapt to the questions it is asked about."""

    def __init__(self, base_factory: Callable[[], ScoredPredictor], method: str = "em_rate", holdout: float = 0.2,
                 min_target: int = 20, name: str | None = None):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown adaptation method {method!r}; choose from {METHODS}")
        self.base_factory = base_factory
        self.base = base_factory()
        self.name = name or f"{self.base.name}_adapted"
        self.method, self.holdout, self.min_target = method, holdout, min_target
        self.stats: dict[str, SourceStats] = {}
        self.last_adaptation: dict[str, dict[str, float]] = {}
        self._train: list[Question] = []

    def describe(self) -> dict[str, Any]:
        return {"base": self.base.describe(), "method": self.method, "holdout": self.holdout,
                "source": {c: vars(s) for c, s in self.stats.items()}, "target": self.last_adaptation}

    def fit_scores(self, train: list[Question]) -> None:
        self._train = list(train)  # the source of the `importance` refit
        older, newer = time_holdout(train, self.holdout)
        self.stats = {}
        if older and newer and len(set(targets(older).tolist())) == 2:
            probe = self.base_factory()
            probe.fit(older)
            scores, y = probe.positive_scores(newer), targets(newer)
            for category in sorted({q.category for q in newer}):
                m = np.array([q.category == category for q in newer])
                self.stats[category] = SourceStats.fit(scores[m], y[m])
        self.base.fit(train)

    def positive_scores(self, questions: list[Question]) -> np.ndarray:
        if self.method == "importance" and len(questions) >= self.min_target:
            return self._importance_scores(questions)
        raw = self.base.positive_scores(questions)
        out = np.zeros(len(questions))
        self.last_adaptation = {}
        for category in sorted({q.category for q in questions}):
            m = np.array([q.category == category for q in questions])
            out[m], self.last_adaptation[category] = self.adapt(raw[m], self.stats.get(category, SourceStats()))
        return out

    def adapt(self, scores: np.ndarray, s: SourceStats) -> tuple[np.ndarray, dict[str, float]]:
        """Adapted balanced P(positive) for one category's target scores, and what was estimated."""
        z = logit(scores)
        calibrated = sigmoid(s.a * z + s.b - logit([s.prior])[0])
        info: dict[str, float] = {"n": int(z.size), "source_prior": s.prior, "source_auc": s.auc}
        if self.method == "calibrated" or z.size < self.min_target:
            return calibrated, {**info, "method": "calibrated"}
        if self.method == "median":
            prior, rate = float("nan"), 0.5
        else:
            p_source = sigmoid(s.a * z + s.b)
            if self.method == "em_rate":
                prior, _ = em_prior(p_source, s.prior)
            else:
                prior = bbse_prior(p_source, s.mean_pos, s.mean_neg)
            if not at_clip(prior):
                rate = balanced_rate(prior, s.auc)
            else:  # not identified (scores too weak for the shift seen): keep the source prior, say so
                info["estimate_at_clip"] = prior
                prior, rate = s.prior, balanced_rate(s.prior, s.auc)
        threshold = float(np.quantile(z, 1 - rate))
        slope = max(s.a, 0.05)
        info.update(method=self.method, target_prior=prior, positive_rate=rate, threshold_logit=threshold)
        return sigmoid(slope * (z - threshold)), info

    def _importance_scores(self, questions: list[Question]) -> np.ndarray:
        """The base refitted on the training questions weighted toward `questions` (covariate shift), scored on them."""
        w = weighting.domain_weights(self._train, questions)
        model = self.base_factory()
        model.set_training_weights(self._train, w)
        model.fit(self._train)
        ess = float(w.sum() ** 2 / (w ** 2).sum())
        self.last_adaptation = {
            category: {"method": "importance", "n": sum(q.category == category for q in questions),
                       "n_train": len(w), "effective_train": round(ess, 1), "weight_min": float(w.min()),
                       "weight_max": float(w.max())}
            for category in sorted({q.category for q in questions})}
        return model.positive_scores(questions)
