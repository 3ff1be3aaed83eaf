"""Predictors behind one interface: questions in, probabilities over each question's options out.

    predictor = make_predictor("logreg")
    predictor.fit(train_questions)            # historical questions with answers
    predictions = predictor.predict(questions)  # one Prediction per question

Built in: `majority`, `logreg`, `random_forest` (scikit-learn Pipelines over transferable text and structured
features, see `features.py`), `knn_history` (answers of the most similar historical questions, through the pairs
retrieval index) and `ensemble` (the mean of logreg, knn_history and random_forest). Other packages
add theirs with `register_predictor(name, factory)` (the LLM predictors do), so the report runs every predictor the
same way.

The trainable predictors model one binary target shared by every category, "a significant / met result" (the answer
is not the question's negative option), with sample weights that balance the two classes within each category: the
official metric is class-balanced, so a classifier fitted to balanced classes puts its 0.5 threshold where that
metric wants it, whatever the base rates of the benchmark. The probability of a positive result is then spread over
the question's positive options (one for 2-way; two directions for 3-way, split by the direction frequencies seen in
training).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.scoring import parse_decision
from deepimagine_core.questions import Question


@dataclass
class Prediction:
    """Probabilities over a question's options (in option order). `parsed` is False when they stand in for output
    that could not be read (uniform); `text` is the raw model output, `trajectory` an LLM's steps (any JSON)."""

    probabilities: list[float]
    parsed: bool = True
    text: str | None = None
    trajectory: list | None = None

    @classmethod
    def from_text(cls, text: str | None, n_options: int, trajectory: list | None = None) -> "Prediction":
        """Read a model's `DECISION: (...)` answer; unreadable output becomes uniform with parsed=False."""
        probabilities, parsed = parse_decision(text, n_options)
        return cls(probabilities, parsed, text, trajectory)


@runtime_checkable
class Predictor(Protocol):
    name: str

    def fit(self, train: list[Question]) -> None: ...

    def predict(self, questions: list[Question]) -> list[Prediction]: ...


# ---- registry -----------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., Predictor]] = {}
#: Modules that register further predictors when imported (imported on the first lookup of an unknown name, so the
#: baselines never pay for the LLM stack's imports).
PLUGIN_MODULES = ("deepimagine_core.llm.llm_predictors",)


def register_predictor(name: str, factory: Callable[..., Predictor], *, replace: bool = False) -> None:
    """Make `make_predictor(name, **kw)` call `factory(**kw)`. Re-registering a name needs replace=True."""
    if name in _REGISTRY and not replace and _REGISTRY[name] is not factory:
        raise ValueError(f"predictor {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = factory


def load_plugins() -> None:
    """Import `PLUGIN_MODULES` that are installed; a plugin that fails for another reason raises."""
    import importlib

    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


def available_predictors() -> list[str]:
    return sorted(_REGISTRY)


def make_predictor(name: str, **kwargs: Any) -> Predictor:
    if name not in _REGISTRY:
        load_plugins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown predictor {name!r}; registered: {', '.join(available_predictors())}")
    predictor = _REGISTRY[name](**kwargs)
    if not isinstance(predictor, Predictor):
        raise TypeError(f"factory of {name!r} returned {type(predictor).__name__}, which lacks name/fit/predict")
    return predictor


# ---- shared helpers -----------------------------------------------------------------------------------------------


def _answered(train: Sequence[Question], who: str) -> list[Question]:
    answered = [q for q in train if q.answer is not None]
    if not answered:
        raise ValueError(f"{who}: no training questions with answers")
    return answered


def balanced_weights(questions: Sequence[Question], targets: Sequence[int]) -> np.ndarray:
    """Sample weights giving the two classes of each category equal total weight (each category keeps its size)."""
    counts = Counter((q.category, y) for q, y in zip(questions, targets))
    size = Counter(q.category for q in questions)
    weights = []
    for q, y in zip(questions, targets):
        n_classes = sum(1 for c in (0, 1) if counts[(q.category, c)] > 0)
        weights.append(size[q.category] / (n_classes * counts[(q.category, y)]))
    return np.asarray(weights, dtype=float)


class DirectionPrior:
    """For questions with two positive options (3-way: "B worse than A" vs "A worse than B"): how often each
    position was the answer among positive training answers, Laplace-smoothed."""

    def __init__(self) -> None:
        self.counts: dict[int, Counter] = defaultdict(Counter)

    def fit(self, questions: Sequence[Question]) -> "DirectionPrior":
        for q in questions:
            neg = features.negative_option(q)
            if q.answer is not None and q.answer != neg:
                self.counts[len(q.options)][q.answer] += 1
        return self

    def split(self, question: Question, p_positive: float) -> list[float]:
        """Spread P(positive) over the positive options, the rest on the negative option."""
        neg = features.negative_option(question)
        positives = [i for i in range(len(question.options)) if i != neg]
        counts = self.counts.get(len(question.options), Counter())
        raw = np.array([counts[i] + 1.0 for i in positives])
        probs = np.zeros(len(question.options))
        probs[positives] = p_positive * raw / raw.sum()
        probs[neg] = 1.0 - p_positive
        probs = np.clip(probs, 1e-6, 1.0)
        return (probs / probs.sum()).tolist()


# ---- majority -----------------------------------------------------------------------------------------------------


class MajorityPredictor:
    """The training frequency of each answer position per category (its argmax is the majority answer); unseen
    categories get uniform probabilities."""

    name = "majority"

    def __init__(self) -> None:
        self.freq: dict[str, np.ndarray] = {}

    def fit(self, train: list[Question]) -> None:
        counts: dict[str, Counter] = defaultdict(Counter)
        n_opt: dict[str, int] = {}
        for q in _answered(train, self.name):
            counts[q.category][q.answer] += 1
            n_opt[q.category] = len(q.options)
        self.freq = {}
        for cat, c in counts.items():
            raw = np.array([c[i] + 1.0 for i in range(n_opt[cat])])
            self.freq[cat] = raw / raw.sum()

    def describe(self) -> dict[str, Any]:
        return {"answer_frequencies": {c: [round(float(x), 4) for x in f] for c, f in self.freq.items()}}

    def predict(self, questions: list[Question]) -> list[Prediction]:
        out = []
        for q in questions:
            freq = self.freq.get(q.category)
            if freq is None or len(freq) != len(q.options):
                freq = np.full(len(q.options), 1.0 / len(q.options))
            out.append(Prediction(freq.tolist()))
        return out


# ---- scikit-learn pipelines over transferable features --------------------------------------------------------------


def feature_union(max_text_features: int = 20000, min_df: int = 5, feature_set: str = "full"):
    """Endpoint wording (TF-IDF, names masked, words seen in at least `min_df` questions) + structured features
    (`features.FEATURE_SETS[feature_set]`)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    text = Pipeline(
        [
            ("select", FunctionTransformer(features.endpoint_texts)),
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=(1, 2), min_df=min_df, max_features=max_text_features, sublinear_tf=True,
                    token_pattern=r"(?u)\b[a-z][a-z0-9]+\b|%|\b\d+\b",
                ),
            ),
        ]
    )
    structured = Pipeline(
        [
            ("select", FunctionTransformer(features.structured_dicts, kw_args={"feature_set": feature_set})),
            ("vectorize", DictVectorizer()),
        ]
    )
    return FeatureUnion([("endpoint_text", text), ("structured", structured)])


class BinaryPipelinePredictor:
    """A scikit-learn classifier of "positive result" over `feature_union`, class-balanced per category."""

    name = "binary_pipeline"

    def __init__(self, estimator, max_text_features: int = 20000, min_df: int = 5, feature_set: str = "full"):
        from sklearn.pipeline import Pipeline

        self.pipeline = Pipeline(
            [("features", feature_union(max_text_features, min_df, feature_set)), ("classifier", estimator)]
        )
        self.settings = {"feature_set": feature_set, "min_df": min_df, "max_text_features": max_text_features}
        self.direction = DirectionPrior()

    def describe(self) -> dict[str, Any]:
        """Settings for the report: feature set, text vocabulary, the classifier and its main parameters."""
        classifier = self.pipeline.named_steps["classifier"]
        keys = ("C", "n_estimators", "min_samples_leaf", "max_features")
        params = {k: v for k, v in classifier.get_params().items() if k in keys}
        return {**self.settings, "classifier": type(classifier).__name__, **params}

    def fit(self, train: list[Question]) -> None:
        train = _answered(train, self.name)
        y = np.array([features.positive_target(q) for q in train])
        if len(set(y)) < 2:
            raise ValueError(f"{self.name}: training answers are all {'positive' if y[0] else 'negative'}")
        self.pipeline.fit(train, y, classifier__sample_weight=balanced_weights(train, y))
        self.direction.fit(train)

    def positive_probability(self, questions: list[Question]) -> np.ndarray:
        return self.pipeline.predict_proba(questions)[:, 1]

    def predict(self, questions: list[Question]) -> list[Prediction]:
        if not questions:
            return []
        p = self.positive_probability(questions)
        return [Prediction(self.direction.split(q, float(pi))) for q, pi in zip(questions, p)]


class LogRegPredictor(BinaryPipelinePredictor):
    name = "logreg"

    def __init__(
        self, C: float = 0.3, max_text_features: int = 20000, min_df: int = 5, feature_set: str = "endpoint", seed: int = 0
    ):
        from sklearn.linear_model import LogisticRegression

        estimator = LogisticRegression(C=C, solver="saga", max_iter=3000, random_state=seed)
        super().__init__(estimator, max_text_features, min_df, feature_set)


class RandomForestPredictor(BinaryPipelinePredictor):
    name = "random_forest"

    def __init__(
        self,
        n_estimators: int = 200,
        min_samples_leaf: int = 5,
        max_features: str | float = "sqrt",
        max_text_features: int = 3000,
        min_df: int = 10,
        feature_set: str = "full",
        seed: int = 0,
        n_jobs: int = 1,
    ):
        from sklearn.ensemble import RandomForestClassifier

        forest = RandomForestClassifier(
            n_estimators=n_estimators, min_samples_leaf=min_samples_leaf, max_features=max_features,
            random_state=seed, n_jobs=n_jobs,
        )
        super().__init__(forest, max_text_features, min_df, feature_set)


# ---- nearest historical questions --------------------------------------------------------------------------------


def default_text_index():
    """The pairs team's retrieval index (`deepimagine_core.pairs.retrieval.TextIndex`: `fit(ids, texts)`,
    `search(texts, k) -> [[(id, score), ...]]`), imported on use."""
    from deepimagine_core.pairs.retrieval import TextIndex

    return TextIndex()


def _neighbour(item: Any) -> tuple[str, float]:
    """(id, similarity) from a search hit given as a pair, a dict or an object with id/score attributes."""
    if isinstance(item, (tuple, list)):
        return str(item[0]), float(item[1])
    if isinstance(item, dict):
        return str(item["id"]), float(item.get("score", item.get("similarity", 1.0)))
    return str(item.id), float(getattr(item, "score", getattr(item, "similarity", 1.0)))


class KnnHistoryPredictor:
    """P(positive) = similarity-weighted vote of the k most similar historical questions (endpoint wording and
    design, names masked), each vote divided by its class frequency in its category (class-balanced, as the metric
    is) and shrunk toward 0.5 with `prior_strength` pseudo-votes."""

    name = "knn_history"

    def __init__(self, k: int = 100, prior_strength: float = 2.0, index_factory: Callable[[], Any] | None = None):
        self.k = k
        self.prior_strength = prior_strength
        self.index_factory = index_factory or default_text_index
        self.index = None
        self.targets: dict[str, int] = {}
        self.vote_weight: dict[str, float] = {}
        self.direction = DirectionPrior()

    def describe(self) -> dict[str, Any]:
        return {"k": self.k, "prior_strength": self.prior_strength, "index": type(self.index).__name__}

    def fit(self, train: list[Question]) -> None:
        train = _answered(train, self.name)
        y = [features.positive_target(q) for q in train]
        weights = balanced_weights(train, y)
        ids = [str(i) for i in range(len(train))]
        self.targets = dict(zip(ids, y))
        self.vote_weight = dict(zip(ids, weights.tolist()))
        self.index = self.index_factory()
        self.index.fit(ids, [features.retrieval_text(q) for q in train])
        self.direction.fit(train)

    def predict(self, questions: list[Question]) -> list[Prediction]:
        if self.index is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        if not questions:
            return []
        hits = self.index.search([features.retrieval_text(q) for q in questions], self.k)
        out = []
        for q, row in zip(questions, hits):
            pos = neg = self.prior_strength / 2
            for item in row:
                nid, sim = _neighbour(item)
                w = max(sim, 0.0) * self.vote_weight[nid]
                if self.targets[nid]:
                    pos += w
                else:
                    neg += w
            p = pos / (pos + neg) if pos + neg > 0 else 0.5
            out.append(Prediction(self.direction.split(q, p)))
        return out


# ---- average of the above -----------------------------------------------------------------------------------------


class EnsemblePredictor:
    """The mean P(positive) of several predictors (default: logreg, knn_history, random_forest), spread over the
    options like theirs. Averaging models that err differently was the best setting on the historical test split
    (and on CT Open Winter 2025), so it is the reference CPU baseline."""

    name = "ensemble"

    def __init__(
        self,
        members: Sequence[str] = ("logreg", "knn_history", "random_forest"),
        member_options: dict[str, dict[str, Any]] | None = None,
    ):
        if not members:
            raise ValueError("ensemble: no member predictors named")
        self.members = [make_predictor(m, **(member_options or {}).get(m, {})) for m in members]
        self.direction = DirectionPrior()

    def describe(self) -> dict[str, Any]:
        return {m.name: m.describe() if callable(getattr(m, "describe", None)) else {} for m in self.members}

    def fit(self, train: list[Question]) -> None:
        for member in self.members:
            member.fit(train)
        self.direction.fit(_answered(train, self.name))

    def predict(self, questions: list[Question]) -> list[Prediction]:
        if not questions:
            return []
        positive = np.zeros(len(questions))
        for member in self.members:
            for i, (q, p) in enumerate(zip(questions, member.predict(questions))):
                positive[i] += 1.0 - p.probabilities[features.negative_option(q)]
        positive /= len(self.members)
        return [Prediction(self.direction.split(q, float(p))) for q, p in zip(questions, positive)]


register_predictor("majority", MajorityPredictor)
register_predictor("logreg", LogRegPredictor)
register_predictor("random_forest", RandomForestPredictor)
register_predictor("knn_history", KnnHistoryPredictor)
register_predictor("ensemble", EnsemblePredictor)

__all__ = [
    "Prediction", "Predictor", "register_predictor", "make_predictor", "available_predictors", "load_plugins",
    "MajorityPredictor", "LogRegPredictor", "RandomForestPredictor", "KnnHistoryPredictor", "EnsemblePredictor",
    "balanced_weights", "DirectionPrior",
]
