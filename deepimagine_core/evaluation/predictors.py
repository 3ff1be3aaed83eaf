"""Predictors behind one interface: questions in, probabilities over each question's options out.

    predictor = make_predictor("logreg")
    predictor.fit(train_questions)            # historical questions with answers
    predictions = predictor.predict(questions)  # one Prediction per question

Built in: `majority`; `logreg`, `random_forest`, `mlp`, `hgb` (gradient-boosted trees on the structured features)
(scikit-learn over transferable features, pooled or one model per category, `models.py`; option `half_life` of
logreg/random_forest/hgb weights training questions by recency, `weighting.py`); `knn_history` (answers of the most similar historical questions, `neighbours.py`);
`ensemble` (the mean P(positive) of logreg, knn_history and random_forest). Each trainable one also comes as
`<name>_adapted`, which adapts its decision threshold to the unlabelled questions it is asked about (`shift.py`).
The reference predictor — the one the report and the README name — is chosen by time-ordered cross-validation on
historical questions (`selection.py`); get it with `selection.reference_predictor()`.

Other packages add theirs with `register_predictor(name, factory)` (the LLM predictors do when
`deepimagine_core.llm.llm_predictors` is imported, which the Dagster layer does), so the report runs every predictor the
same way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deepimagine_core.evaluation.base import (
    Prediction,
    Predictor,
    ScoredPredictor,
    answered,
    balanced_weights,
)
from deepimagine_core.evaluation.decisions import DirectionPrior
from deepimagine_core.evaluation.models import (
    HistGradientBoostingPredictor,
    LogRegPredictor,
    MLPPredictor,
    RandomForestPredictor,
)
from deepimagine_core.evaluation.neighbours import KnnHistoryPredictor, default_text_index
from deepimagine_core.evaluation.shift import AdaptedPredictor
from deepimagine_core.questions import Question

# ---- registry -----------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., Predictor]] = {}
ADAPTED_SUFFIX = "_adapted"


def register_predictor(name: str, factory: Callable[..., Predictor], *, replace: bool = False) -> None:
    """Make `make_predictor(name, **kw)` call `factory(**kw)`. Re-registering a name needs replace=True."""
    if name in _REGISTRY and not replace and _REGISTRY[name] is not factory:
        raise ValueError(f"predictor {name!r} is already registered; pass replace=True to override it")
    _REGISTRY[name] = factory


def available_predictors() -> list[str]:
    return sorted(_REGISTRY)


def make_predictor(name: str, **kwargs: Any) -> Predictor:
    if name not in _REGISTRY:
        raise KeyError(f"unknown predictor {name!r}; registered: {', '.join(available_predictors())} (the LLM "
                       "predictors register when deepimagine_core.llm.llm_predictors is imported)")
    predictor = _REGISTRY[name](**kwargs)
    if not isinstance(predictor, Predictor):
        raise TypeError(f"factory of {name!r} returned {type(predictor).__name__}, which lacks name/fit/predict")
    return predictor


def register_adapted(base: str, *, replace: bool = False) -> str:
    """Register `<base>_adapted`: `make_predictor("<base>_adapted", method=..., holdout=..., **base_kwargs)`."""

    def factory(method: str = "em_rate", holdout: float = 0.2, min_target: int = 20, **kwargs: Any) -> AdaptedPredictor:
        return AdaptedPredictor(lambda: make_predictor(base, **kwargs), method, holdout, min_target,
                                name=base + ADAPTED_SUFFIX)

    register_predictor(base + ADAPTED_SUFFIX, factory, replace=replace)
    return base + ADAPTED_SUFFIX


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
        for q in answered(train, self.name):
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


# ---- average of several -------------------------------------------------------------------------------------------


class EnsemblePredictor(ScoredPredictor):
    """The mean P(positive) of several scored predictors (default: logreg, knn_history, random_forest)."""

    name = "ensemble"

    def __init__(
        self,
        members: Sequence[str] = ("logreg", "knn_history", "random_forest"),
        member_options: dict[str, dict[str, Any]] | None = None,
    ):
        super().__init__()
        if not members:
            raise ValueError("ensemble: no member predictors named")
        self.members = [make_predictor(m, **(member_options or {}).get(m, {})) for m in members]
        for m in self.members:
            if not isinstance(m, ScoredPredictor):
                raise TypeError(f"ensemble: member {m.name!r} gives no positive_scores")

    def describe(self) -> dict[str, Any]:
        return {m.name: m.describe() for m in self.members}

    def fit_scores(self, train: list[Question]) -> None:
        for member in self.members:  # training weights (importance, `shift`) reach every member
            member.training_weights = self.training_weights
            member.fit(train)

    def positive_scores(self, questions: list[Question]) -> np.ndarray:
        return np.mean([m.positive_scores(questions) for m in self.members], axis=0)


#: The trainable predictors; each also registered as `<name>_adapted`.
SCORED = {"logreg": LogRegPredictor, "random_forest": RandomForestPredictor, "mlp": MLPPredictor,
          "hgb": HistGradientBoostingPredictor, "knn_history": KnnHistoryPredictor, "ensemble": EnsemblePredictor}

register_predictor("majority", MajorityPredictor)
for _name, _factory in SCORED.items():
    register_predictor(_name, _factory)
    register_adapted(_name)

__all__ = [
    "Prediction", "Predictor", "ScoredPredictor", "register_predictor", "register_adapted", "make_predictor",
    "available_predictors", "MajorityPredictor", "LogRegPredictor", "RandomForestPredictor",
    "MLPPredictor", "HistGradientBoostingPredictor", "KnnHistoryPredictor", "EnsemblePredictor", "AdaptedPredictor", "balanced_weights",
    "DirectionPrior", "default_text_index",
]
