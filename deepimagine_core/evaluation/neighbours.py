"""`knn_history`: P(positive) from the answers of the most similar historical questions of the same category."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.base import ScoredPredictor, balanced_weights, category_groups, targets
from deepimagine_core.questions import Question


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


class KnnHistoryPredictor(ScoredPredictor):
    """P(positive) = similarity-weighted vote of the k most similar historical questions (endpoint wording and
    design, names masked), each vote divided by its class frequency in its category (class-balanced, as the metric
    is) and shrunk toward 0.5 with `prior_strength` pseudo-votes. Neighbours come from the question's own category
    (its own label meaning) when that category has at least `min_category` training questions, else from all."""

    name = "knn_history"

    def __init__(self, k: int = 100, prior_strength: float = 2.0, min_category: int = 50,
                 index_factory: Callable[[], Any] | None = None):
        super().__init__()
        self.k = k
        self.prior_strength = prior_strength
        self.min_category = min_category
        self.index_factory = index_factory or default_text_index
        self.indexes: dict[str, Any] = {}
        self.targets: dict[str, int] = {}
        self.vote_weight: dict[str, float] = {}

    def describe(self) -> dict[str, Any]:
        return {"k": self.k, "prior_strength": self.prior_strength, "indexes": sorted(self.indexes)}

    def fit_scores(self, train: list[Question]) -> None:
        y = targets(train).tolist()
        weights = balanced_weights(train, y)
        ids = [str(i) for i in range(len(train))]
        self.targets = dict(zip(ids, y))
        self.vote_weight = dict(zip(ids, weights.tolist()))
        texts = [features.retrieval_text(q) for q in train]
        groups = {"*": list(range(len(train)))}
        for category, n in Counter(q.category for q in train).items():
            if n >= self.min_category:
                groups[category] = [i for i, q in enumerate(train) if q.category == category]
        self.indexes = {}
        for key, idx in groups.items():
            index = self.index_factory()
            index.fit([ids[i] for i in idx], [texts[i] for i in idx])
            self.indexes[key] = index

    def positive_scores(self, questions: list[Question]) -> np.ndarray:
        out = np.zeros(len(questions))
        for key, idx in category_groups(questions, self.indexes).items():
            hits = self.indexes[key].search([features.retrieval_text(questions[i]) for i in idx], self.k)
            for i, row in zip(idx, hits):
                pos = neg = self.prior_strength / 2
                for item in row:
                    nid, sim = _neighbour(item)
                    w = max(sim, 0.0) * self.vote_weight[nid]
                    if self.targets[nid]:
                        pos += w
                    else:
                        neg += w
                out[i] = pos / (pos + neg) if pos + neg > 0 else 0.5
        return out
