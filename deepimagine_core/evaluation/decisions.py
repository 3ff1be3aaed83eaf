"""From a model's two numbers to a question's option probabilities, with the argmax the metric wants.

A trainable predictor gives, per question, P(positive) — a significant / met result in the question's own category
(2-way explicit: X significantly better than Y; 2-way implicit: the endpoint is met; 3-way explicit: a significant
difference either way) — and, for 3-way questions, P(X better | significant). `option_probabilities` turns them into
one coherent distribution over the options.

3-way explicit questions are scored on the collapse "significant (options 0, 1) vs not (option 2)". The plain product
(P(sig)·d, P(sig)·(1−d), 1−P(sig)) picks "no significant difference" whenever neither direction alone beats it: at
P(sig) = 0.65 with an even split, 0.325 < 0.35, although the collapsed decision is "significant". So when
P(sig) > 0.5 the split moves toward the likelier direction just enough for it to be the argmax; P(sig) itself (the
collapsed probability the metric scores) is unchanged. When P(sig) < 0.5 the product already puts the argmax on
"no difference". At P(sig) = 0.5 exactly, the positive side wins.

`DirectionPrior` estimates P(X better | significant) from training answers, by arm-type pair when it has seen it
(Laplace-smoothed toward the pooled rate).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from deepimagine_core.evaluation import features
from deepimagine_core.questions import Question

#: The smallest margin by which the chosen option beats the runner-up after the 3-way projection.
MARGIN = 1e-3
FLOOR = 1e-6


def positive_options(question: Question) -> list[int]:
    neg = features.negative_option(question)
    return [i for i in range(len(question.options)) if i != neg]


def option_probabilities(question: Question, p_positive: float, p_first: float = 0.5) -> list[float]:
    """Probabilities over the options of `question`: `p_positive` on the positive side, split between two positive
    options as (p_first, 1 − p_first); with the 3-way argmax made consistent with the collapsed decision."""
    neg = features.negative_option(question)
    pos = positive_options(question)
    p = float(np.clip(p_positive, FLOOR, 1 - FLOOR))
    probs = np.zeros(len(question.options))
    probs[neg] = 1.0 - p
    if len(pos) == 1:
        probs[pos[0]] = p
    else:
        d = float(np.clip(p_first, 0.0, 1.0))
        first, second = (pos[0], pos[1]) if d >= 0.5 else (pos[1], pos[0])
        share = max(d, 1 - d)
        if p >= 0.5:  # the likelier direction must beat "no difference" by a margin
            needed = min(1.0, (1.0 - p + MARGIN) / p)
            share = max(share, needed)
        probs[first], probs[second] = p * share, p * (1 - share)
    probs = np.clip(probs, FLOOR, 1.0)
    return (probs / probs.sum()).tolist()


def collapsed_decision(question: Question, probabilities: Sequence[float]) -> int:
    """1 when the argmax is a positive option (significant / met), 0 when it is the negative one."""
    return int(int(np.argmax(probabilities)) != features.negative_option(question))


class DirectionPrior:
    """P(the first positive option | positive) for questions with two positive options (3-way: "Y worse than X" =
    X better), by arm-type pair where seen, shrunk toward the pooled rate with `strength` pseudo-answers."""

    def __init__(self, strength: float = 5.0) -> None:
        self.strength = strength
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.pooled = 0.5

    @staticmethod
    def _key(question: Question) -> str:
        return str(features.structured_features(question).get("arm_pair", "none"))

    def fit(self, questions: Sequence[Question]) -> "DirectionPrior":
        total: Counter = Counter()
        for q in questions:
            pos = positive_options(q)
            if q.answer is None or len(pos) != 2 or q.answer not in pos:
                continue
            first = int(q.answer == pos[0])
            self.counts[self._key(q)][first] += 1
            total[first] += 1
        self.pooled = (total[1] + 1.0) / (total[0] + total[1] + 2.0)
        return self

    def first(self, question: Question) -> float:
        if len(positive_options(question)) != 2:
            return 0.5
        c = self.counts.get(self._key(question), Counter())
        return (c[1] + self.strength * self.pooled) / (c[0] + c[1] + self.strength)

    def firsts(self, questions: Sequence[Question]) -> np.ndarray:
        return np.array([self.first(q) for q in questions])
