"""scikit-learn predictors over transferable features: `logreg`, `random_forest`, `mlp` (the paper's feed-forward
baseline).

Each learns P(positive) — "significant / met" in the question's own category — with classes balanced within each
category. `per_category=True` fits one model per category, so each learns its own label meaning
(2-way explicit: X significantly better than Y; 2-way implicit: endpoint met; 3-way explicit: a significant
difference either way); categories with too few training questions of both classes, and categories never seen in
training (3-way implicit has no historical source), fall back to one pooled model with the category as a feature.

Features (`features.py`): TF-IDF blocks over masked text (`text_blocks`: endpoint wording, brief title, compared
arms' descriptions) plus a structured dict (`feature_set`), and with `priors=True` the smoothed out-of-fold target
priors of intervention classes and title (condition) words (`priors.py`). Inside `features.cached()` (a CV fold) the
fitted feature matrices are shared by every candidate with the same feature settings fitted on the same questions.
Which blocks, which set, pooled or per category and the hyper-parameters are chosen by time-ordered cross-validation on historical questions (`selection`); the defaults
are the winners of the stored whole-corpus selection (docs/results/whole_corpus/summary.md): pooled models beat
per-category ones there (logreg 0.617 against 0.614), and the "design" set beat the others for logreg.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.base import ScoredPredictor, balanced_weights, category_groups, targets
from deepimagine_core.evaluation.priors import TargetPriors
from deepimagine_core.questions import Question

TOKEN_PATTERN = r"(?u)\b[a-z][a-z0-9]+\b|%|\b\d+\b"


def feature_union(
    max_text_features: int = 20000, min_df: int = 5, feature_set: str = "full",
    text_blocks: Sequence[str] = ("endpoint",),
):
    """TF-IDF per text block (names masked, words seen in at least `min_df` questions; the endpoint block gets
    `max_text_features`, the others a quarter of it) + structured features (`features.FEATURE_SETS[feature_set]`)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    parts = []
    for block in text_blocks:
        if block not in features.TEXT_BLOCKS:
            raise ValueError(f"unknown text block {block!r}; choose from {sorted(features.TEXT_BLOCKS)}")
        size = max_text_features if block == "endpoint" else max(100, max_text_features // 4)
        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, max_features=size, sublinear_tf=True,
                                token_pattern=TOKEN_PATTERN)
        parts.append((f"{block}_text", Pipeline([("select", FunctionTransformer(features.TEXT_BLOCKS[block])),
                                                 ("tfidf", tfidf)])))
    structured = Pipeline(
        [
            ("select", FunctionTransformer(features.structured_dicts, kw_args={"feature_set": feature_set})),
            ("vectorize", DictVectorizer()),
        ]
    )
    return FeatureUnion([*parts, ("structured", structured)])


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
        priors: bool = False,
    ):
        super().__init__()
        self.estimator_factory = estimator_factory
        self.settings = {"feature_set": feature_set, "text_blocks": list(text_blocks), "min_df": min_df,
                         "max_text_features": max_text_features, "per_category": per_category, "priors": priors}
        self.models: dict[str, Any] = {}  # category -> (feature union, TargetPriors or None, classifier); "*" = pooled
        self._pooled_data: tuple[list[Question], np.ndarray] | None = None

    def describe(self) -> dict[str, Any]:
        """Settings for the report: features, the classifier and its main parameters, the models fitted."""
        classifier = self.estimator_factory()
        keys = ("C", "n_estimators", "min_samples_leaf", "max_features", "hidden_layer_sizes", "alpha")
        params = {k: v for k, v in classifier.get_params().items() if k in keys}
        return {**self.settings, "classifier": type(classifier).__name__, **params, "models": sorted(self.models)}

    def _fit_one(self, questions: list[Question], y: np.ndarray):
        """The feature union (+ the out-of-fold target priors when `priors`) fitted on `questions` — shared with every
        candidate of the same feature settings fitted on the same questions inside `features.cached()` — then the
        classifier; returns (union, priors or None, classifier)."""
        s = self.settings
        settings = (s["max_text_features"], s["min_df"], s["feature_set"], tuple(s["text_blocks"]))

        def fit_union():
            union = feature_union(*settings)
            return union, union.fit_transform(questions, y)

        union, X = features.shared("feature_union", settings, questions, fit_union)
        encoder = None
        if s["priors"]:
            def fit_priors():
                enc = TargetPriors()
                return enc, enc.fit_transform(questions, y)

            encoder, P = features.shared("priors", "priors", questions, fit_priors)
            X = _with_priors(X, P)
        classifier = self.estimator_factory()
        classifier.fit(X, y, sample_weight=balanced_weights(questions, y))
        return union, encoder, classifier

    @staticmethod
    def _scores(model, questions: list[Question]) -> np.ndarray:
        union, encoder, classifier = model
        X = features.shared("transform", id(union), questions, lambda: union.transform(questions), keep=union)
        if encoder is not None:
            X = _with_priors(X, features.shared("transform", id(encoder), questions,
                                                lambda: encoder.transform(questions), keep=encoder))
        return classifier.predict_proba(X)[:, 1]

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
                 priors: bool = False):
        from sklearn.linear_model import LogisticRegression

        super().__init__(lambda: LogisticRegression(C=C, solver="liblinear", max_iter=2000, random_state=seed),
                         max_text_features, min_df, feature_set, text_blocks, per_category, priors)


class RandomForestPredictor(PipelinePredictor):
    name = "random_forest"

    def __init__(self, n_estimators: int = 200, min_samples_leaf: int = 5, max_features: str | float = "sqrt",
                 max_text_features: int = 3000, min_df: int = 10, feature_set: str = "full",
                 text_blocks: Sequence[str] = ("endpoint",), per_category: bool = False, seed: int = 0, n_jobs: int = 1):
        from sklearn.ensemble import RandomForestClassifier

        super().__init__(
            lambda: RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                                           max_features=max_features, random_state=seed, n_jobs=n_jobs),
            max_text_features, min_df, feature_set, text_blocks, per_category)


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
