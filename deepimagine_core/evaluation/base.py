"""What every predictor shares: the `Prediction` record, the `Predictor` protocol, and `ScoredPredictor`, the base of
the trainable CPU predictors.

A `ScoredPredictor` learns one number per question, P(positive) in the question's own category (see
`decisions`), with classes balanced within each category: the official metric is class-balanced, so a classifier
fitted to balanced classes puts its 0.5 threshold where that metric wants it under the training distribution.
`predict` turns P(positive) and the 3-way direction split into option probabilities (`decisions.option_probabilities`).
Label-shift adaptation (`shift.AdaptedPredictor`) works on the same two numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.decisions import DirectionPrior, option_probabilities
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
        decision = parse_decision(text, n_options)
        return cls(decision.probabilities, decision.parsed, text, trajectory)


@runtime_checkable
class Predictor(Protocol):
    name: str

    def fit(self, train: list[Question]) -> None: ...

    def predict(self, questions: list[Question]) -> list[Prediction]: ...


def answered(train: Sequence[Question], who: str) -> list[Question]:
    """The questions with answers; an error naming `who` when there are none."""
    out = [q for q in train if q.answer is not None]
    if not out:
        raise ValueError(f"{who}: no training questions with answers")
    return out


def balanced_weights(questions: Sequence[Question], targets: Sequence[int],
                     weights: Sequence[float] | None = None) -> np.ndarray:
    """Sample weights giving the two classes of each category equal total weight (each category keeps its size).
    With per-question `weights` (recency, importance; `weighting`), each question keeps its relative weight within
    its (category, class) cell and the cells are rebalanced the same way over the weighted totals."""
    w = np.ones(len(questions)) if weights is None else np.asarray(weights, dtype=float)
    cell: Counter = Counter()
    size: Counter = Counter()
    for q, y, wi in zip(questions, targets, w):
        cell[(q.category, y)] += wi
        size[q.category] += wi
    out = []
    for q, y, wi in zip(questions, targets, w):
        n_classes = sum(1 for c in (0, 1) if cell[(q.category, c)] > 0)
        out.append(wi * size[q.category] / (n_classes * cell[(q.category, y)]))
    return np.asarray(out, dtype=float)


def category_groups(questions: Sequence[Question], own: Iterable[str]) -> dict[str, list[int]]:
    """Question indices by category for the categories in `own` (those with their own model); the rest under "*"."""
    own = set(own)
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(q.category if q.category in own else "*", []).append(i)
    return groups


def targets(questions: Sequence[Question]) -> np.ndarray:
    return np.array([features.positive_target(q) for q in questions], dtype=int)


class ScoredPredictor:
    """Base of the trainable predictors: subclasses implement `fit_scores(train)` and `positive_scores(questions)`
    (balanced P(positive) per question); `fit` also learns the 3-way direction split."""

    name = "scored"

    def __init__(self) -> None:
        self.direction = DirectionPrior()
        self.fitted = False
        self.training_weights: tuple[list[Question], dict[int, float]] | None = None

    def set_training_weights(self, questions: Sequence[Question] | None, weights: Sequence[float] = ()) -> None:
        """Per-question weights for the next `fit` (None: none). Models that take sample weights multiply them into
        their class-balanced weights (`models.PipelinePredictor`, and an ensemble's members); others ignore them."""
        self.training_weights = None if questions is None else (
            list(questions), {id(q): float(w) for q, w in zip(questions, weights)})

    def weights_of(self, questions: Sequence[Question]) -> np.ndarray | None:
        """The weights set by `set_training_weights` for these questions (1 for others); None when none are set."""
        if self.training_weights is None:
            return None
        by_id = self.training_weights[1]
        return np.array([by_id.get(id(q), 1.0) for q in questions])

    def fit_scores(self, train: list[Question]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def positive_scores(self, questions: list[Question]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {}

    def fit(self, train: list[Question]) -> None:
        train = answered(train, self.name)
        y = targets(train)
        if len(set(y.tolist())) < 2:
            raise ValueError(f"{self.name}: training answers are all {'positive' if y[0] else 'negative'}")
        self.fit_scores(train)
        self.direction.fit(train)
        self.fitted = True

    def predictions_from_scores(self, questions: Sequence[Question], p_positive: np.ndarray) -> list[Prediction]:
        firsts = self.direction.firsts(questions)
        return [Prediction(option_probabilities(q, float(p), float(d))) for q, p, d in zip(questions, p_positive, firsts)]

    def predict(self, questions: list[Question]) -> list[Prediction]:
        if not self.fitted:
            raise RuntimeError(f"{self.name}: predict before fit")
        if not questions:
            return []
        return self.predictions_from_scores(questions, self.positive_scores(list(questions)))
