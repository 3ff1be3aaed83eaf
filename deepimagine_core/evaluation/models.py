"""scikit-learn predictors over transferable features: `logreg`, `random_forest`, `mlp` (the paper's feed-forward
baseline), `hgb` (gradient-boosted trees on the structured features and priors, no text).

Each learns P(positive) — "significant / met" in the question's own category — with classes balanced within each
category. `per_category=True` fits one model per category, so each learns its own label meaning
(2-way explicit: X significantly better than Y; 2-way implicit: endpoint met; 3-way explicit: a significant
difference either way); categories with too few training questions of both classes, and categories never seen in
training (3-way implicit has no historical source), fall back to one pooled model with the category as a feature.

Features (`features.py`): TF-IDF blocks over masked text (`text_blocks`: endpoint wording, brief title, compared
arms' descriptions) plus a structured dict (`feature_set`), and with `priors=True` the smoothed out-of-fold target
priors of intervention classes and title (condition) words (`priors.py`). Inside `features.cached()` (a CV fold) the
fitted feature matrices are shared by every candidate with the same feature settings fitted on the same questions.
Training questions can be weighted by recency (`half_life` in years, `weighting.recency_weights`), by trial size
(`trial_balance`, `weighting.trial_weights`) and by weights set
with `set_training_weights` (covariate-shift importance, `shift`); the classes are rebalanced over the weighted totals.
Which blocks, which set, pooled or per category and the hyper-parameters are chosen by time-ordered cross-validation
on historical questions (`selection`). In the stored whole-corpus selection (docs/results/whole_corpus/summary.md)
pooled beat per-category (logreg design 0.631 against 0.610), the "design" and "full" sets were within 0.002, and
title/arm texts plus priors scored best for logreg (0.643; 0.646 with recency weights); the logreg defaults (pooled, "design", C = 0.3) are the
plain, text-free variant.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepimagine_core.evaluation import features, weighting
from deepimagine_core.evaluation.base import ScoredPredictor, balanced_weights, category_groups, targets
from deepimagine_core.evaluation.priors import TargetPriors
from deepimagine_core.questions import Question

TOKEN_PATTERN = r"(?u)\b[a-z][a-z0-9]+\b|%|\b\d+\b"


class FeatureBlocks:
    """TF-IDF per text block (names masked, words seen in at least `min_df` questions; the endpoint block gets
    `max_text_features`, the others a quarter of it) + structured features (`features.FEATURE_SETS[feature_set]`),
    side by side. Inside `features.cached()` each block is fitted once per training set and shared by every
    candidate that uses it (and its transform of a question set is computed once)."""

    def __init__(self, max_text_features: int = 20000, min_df: int = 5, feature_set: str = "full",
                 text_blocks: Sequence[str] = ("endpoint",)):
        for block in text_blocks:
            if block not in features.TEXT_BLOCKS:
                raise ValueError(f"unknown text block {block!r}; choose from {sorted(features.TEXT_BLOCKS)}")
        if feature_set not in features.FEATURE_SETS:
            raise ValueError(f"unknown feature set {feature_set!r}; choose from {sorted(features.FEATURE_SETS)}")
        self.specs = [("text", b, max_text_features if b == "endpoint" else max(100, max_text_features // 4), min_df)
                      for b in text_blocks] + [("structured", feature_set, 0, 0)]
        self.fitted: list[Any] = []

    @staticmethod
    def _inputs(spec, questions: Sequence[Question]):
        kind, arg = spec[0], spec[1]
        return features.TEXT_BLOCKS[arg](questions) if kind == "text" else features.structured_dicts(questions, arg)

    @staticmethod
    def _vectoriser(spec):
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.feature_extraction.text import TfidfVectorizer

        if spec[0] == "structured":
            return DictVectorizer()
        return TfidfVectorizer(ngram_range=(1, 2), min_df=spec[3], max_features=spec[2], sublinear_tf=True,
                               token_pattern=TOKEN_PATTERN)

    def fit_transform(self, questions: Sequence[Question]):
        from scipy import sparse

        blocks = []
        for spec in self.specs:
            def fit(spec=spec):
                vectoriser = self._vectoriser(spec)
                return vectoriser, vectoriser.fit_transform(self._inputs(spec, questions))

            blocks.append(features.shared("block", spec, questions, fit))
        self.fitted = [v for v, _ in blocks]
        return sparse.hstack([X for _, X in blocks], format="csr")

    def transform(self, questions: Sequence[Question]):
        from scipy import sparse

        return sparse.hstack([features.shared("transform", id(v), questions,
                                              lambda v=v, spec=spec: v.transform(self._inputs(spec, questions)), keep=v)
                              for spec, v in zip(self.specs, self.fitted)], format="csr")


#: Target priors are mean residuals (about ±0.3); this puts them on about the scale of the other features' weights.
PRIOR_SCALE = 4.0


def _with_priors(X, P: np.ndarray):
    from scipy import sparse

    return sparse.hstack([X, sparse.csr_matrix(P * PRIOR_SCALE)], format="csr")


class PipelinePredictor(ScoredPredictor):
    """A scikit-learn classifier of "positive result" over `feature_union`, one per category (or pooled)."""

    name = "pipeline"
    #: A category gets its own model when it has at least this many training questions of each class.
    MIN_PER_CLASS = 30

    def __init__(
        self, estimator_factory: Callable[[], Any], max_text_features: int = 20000, min_df: int = 5,
        feature_set: str = "full", text_blocks: Sequence[str] = ("endpoint",), per_category: bool = True,
        priors: bool = False, half_life: float | None = None, dense: bool = False,
        trial_balance: float | None = None,
    ):
        super().__init__()
        self.estimator_factory = estimator_factory
        self.settings = {"feature_set": feature_set, "text_blocks": list(text_blocks), "min_df": min_df,
                         "max_text_features": max_text_features, "per_category": per_category, "priors": priors}
        if half_life is not None:  # (only when set, so the cache keys of unweighted fits stay as they were)
            self.settings["half_life"] = float(half_life)
        if trial_balance is not None:
            self.settings["trial_balance"] = float(trial_balance)
        self.dense = dense
        self.models: dict[str, Any] = {}  # category -> (feature union, TargetPriors or None, classifier); "*" = pooled
        self._pooled_data: tuple[list[Question], np.ndarray] | None = None

    def describe(self) -> dict[str, Any]:
        """Settings for the report: features, the classifier and its main parameters, the models fitted."""
        classifier = self.estimator_factory()
        keys = ("C", "n_estimators", "min_samples_leaf", "max_features", "hidden_layer_sizes", "alpha", "max_iter",
                "learning_rate", "max_leaf_nodes", "l2_regularization")
        params = {k: v for k, v in classifier.get_params().items() if k in keys}
        return {**self.settings, "classifier": type(classifier).__name__, **params, "models": sorted(self.models)}

    def _fit_one(self, questions: list[Question], y: np.ndarray):
        """The feature blocks (+ the out-of-fold target priors when `priors`) fitted on `questions`, then the
        classifier; returns (blocks, priors or None, classifier). Inside `features.cached()` the blocks are shared
        with every candidate of the same feature settings fitted on the same questions, and the whole fit with any
        identical model (same classifier parameters, seed included, and features) — an ensemble member and the same
        predictor on its own, an adapted predictor's base and the plain predictor."""
        extra = self.weights_of(questions)
        weights = self._sample_weights(questions, y, extra)
        digest = None if extra is None else zlib.crc32(np.ascontiguousarray(weights).tobytes())
        key = (repr(self.estimator_factory()), sorted(self.settings.items()), digest)
        return features.shared("model", key, questions, lambda: self._fit_new(questions, y, weights))

    def _sample_weights(self, questions: list[Question], y: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        """Class-balanced weights, times the recency weights (`half_life`), the trial-balance weights
        (`trial_balance`) and any weights set by `set_training_weights` (covariate-shift importance) before the
        classes are rebalanced."""
        w = np.ones(len(questions)) if extra is None else extra
        if self.settings.get("half_life"):
            w = w * weighting.recency_weights(questions, self.settings["half_life"])
        if self.settings.get("trial_balance"):
            w = w * weighting.trial_weights(questions, self.settings["trial_balance"])
        return balanced_weights(questions, y, w)

    def _fit_new(self, questions: list[Question], y: np.ndarray, weights: np.ndarray):
        s = self.settings
        union = FeatureBlocks(s["max_text_features"], s["min_df"], s["feature_set"], s["text_blocks"])
        X = union.fit_transform(questions)
        encoder = None
        if s["priors"]:
            def fit_priors():
                enc = TargetPriors()
                return enc, enc.fit_transform(questions, y)

            encoder, P = features.shared("priors", "priors", questions, fit_priors)
            X = _with_priors(X, P)
        classifier = self.estimator_factory()
        classifier.fit(X.toarray() if self.dense else X, y, sample_weight=weights)
        return union, encoder, classifier

    def _scores(self, model, questions: list[Question]) -> np.ndarray:
        union, encoder, classifier = model
        X = union.transform(questions)
        if encoder is not None:
            X = _with_priors(X, features.shared("transform", id(encoder), questions,
                                                lambda: encoder.transform(questions), keep=encoder))
        return classifier.predict_proba(X.toarray() if self.dense else X)[:, 1]

    def fit_scores(self, train: list[Question]) -> None:
        y = targets(train)
        self.models, self._pooled_data = {}, (train, y)
        if not self.settings["per_category"]:
            self.models["*"] = self._fit_one(train, y)
            return
        counts = Counter((q.category, int(t)) for q, t in zip(train, y))
        for category in sorted({q.category for q in train}):
            if min(counts[(category, 0)], counts[(category, 1)]) < self.MIN_PER_CLASS:
                continue
            idx = [i for i, q in enumerate(train) if q.category == category]
            self.models[category] = self._fit_one([train[i] for i in idx], y[idx])

    def positive_scores(self, questions: list[Question]) -> np.ndarray:
        out = np.zeros(len(questions))
        for key, idx in category_groups(questions, [c for c in self.models if c != "*"]).items():
            if key not in self.models:  # the pooled fallback, fitted the first time a category needs it
                self.models[key] = self._fit_one(*self._pooled_data)
            out[idx] = self._scores(self.models[key], [questions[i] for i in idx])
        return out


class LogRegPredictor(PipelinePredictor):
    name = "logreg"

    def __init__(self, C: float = 0.3, max_text_features: int = 20000, min_df: int = 5, feature_set: str = "design",
                 text_blocks: Sequence[str] = ("endpoint",), per_category: bool = False, seed: int = 0,
                 priors: bool = False, half_life: float | None = None, trial_balance: float | None = None):
        from sklearn.linear_model import LogisticRegression

        super().__init__(lambda: LogisticRegression(C=C, solver="liblinear", max_iter=2000, random_state=seed),
                         max_text_features, min_df, feature_set, text_blocks, per_category, priors, half_life,
                         trial_balance=trial_balance)


class RandomForestPredictor(PipelinePredictor):
    name = "random_forest"

    def __init__(self, n_estimators: int = 200, min_samples_leaf: int = 5, max_features: str | float = "sqrt",
                 max_text_features: int = 3000, min_df: int = 10, feature_set: str = "full",
                 text_blocks: Sequence[str] = ("endpoint",), per_category: bool = False, seed: int = 0, n_jobs: int = 1,
                 half_life: float | None = None, trial_balance: float | None = None):
        from sklearn.ensemble import RandomForestClassifier

        super().__init__(
            lambda: RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                                           max_features=max_features, random_state=seed, n_jobs=n_jobs),
            max_text_features, min_df, feature_set, text_blocks, per_category, half_life=half_life,
            trial_balance=trial_balance)


class MLPPredictor(PipelinePredictor):
    """The feed-forward baseline: one hidden ReLU layer over the same sparse features, early stopping on a
    held-out tenth, L2 penalty `alpha`."""

    name = "mlp"

    def __init__(self, hidden: int = 64, alpha: float = 1e-3, max_iter: int = 60, max_text_features: int = 5000,
                 min_df: int = 5, feature_set: str = "endpoint", text_blocks: Sequence[str] = ("endpoint",),
                 per_category: bool = False, seed: int = 0):
        from sklearn.neural_network import MLPClassifier

        super().__init__(
            lambda: MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=max_iter, early_stopping=True,
                                  n_iter_no_change=5, random_state=seed),
            max_text_features, min_df, feature_set, text_blocks, per_category)


class HistGradientBoostingPredictor(PipelinePredictor):
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) over the structured features (+ target
    priors), no text: conservative settings — shallow trees (`max_leaf_nodes`), a small `learning_rate`, L2 on the
    leaf values, a fixed number of rounds (no early stopping: its random validation split would mix trials and
    times)."""

    name = "hgb"

    def __init__(self, max_iter: int = 200, learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 40, l2_regularization: float = 1.0, feature_set: str = "full",
                 priors: bool = True, per_category: bool = False, seed: int = 0, half_life: float | None = None,
                 trial_balance: float | None = None):
        from sklearn.ensemble import HistGradientBoostingClassifier

        super().__init__(
            lambda: HistGradientBoostingClassifier(
                max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization, early_stopping=False,
                random_state=seed),
            feature_set=feature_set, text_blocks=(), per_category=per_category, priors=priors, half_life=half_life,
            dense=True, trial_balance=trial_balance)
