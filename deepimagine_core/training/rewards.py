"""Verifiable rewards for GRPO, open-r1 style: pure functions `(completions, **kwargs) -> list[float | None]`.

TRL's GRPOTrainer calls every reward with the sampled `completions` (a string, or a one-message list in the
conversational format) and, as keyword lists aligned with them, every column of the training dataset. Our GRPO
dataset (see `training.data.grpo_examples`) has these columns:

    task        "question" (a CT Open-style question answered with DECISION probabilities) or "step" (a local
                counterfactual step answered with DIRECTION)
    answer      index of the true option (question rows; None on step rows)
    n_options   number of options (question rows)
    category    the question's CT Open category (question rows; the 3-way explicit collapse depends on it)
    direction   observed direction of change, up | down | same (step rows; None on question rows): a natural pair's
                measured change, or an approximate pair's change of significance (`llm.steps.significance_change`)

A reward returns None for rows it does not apply to; TRL then leaves it out of that row's weighted sum. Weights come
from the recipe (`Recipe.reward_weights`), names from `REWARDS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from deepimagine_core.llm import parsing

RewardFunc = Callable[..., list[float | None]]

# Probabilities are clipped at this floor, so one confident wrong answer costs at most -log(floor) ≈ 6.9.
PROB_FLOOR = 1e-3


def decision_probabilities(text: str, n_options: int | None) -> list[float] | None:
    """DECISION probabilities read by the project's one parser (`evaluation.scoring.parse_decision`), or None when the
    text has no valid DECISION with `n_options` scores (None `n_options`: any 2 or 3)."""
    for k in (n_options,) if n_options else (2, 3):
        decision = parsing.parse_decision(text, int(k))
        if decision.parsed:
            return decision.probabilities
    return None


def parse_direction(text: str) -> str | None:
    """up | down | same from the step format's DIRECTION line, else None."""
    return parsing.parse_step(text).direction


def completion_text(completion: Any) -> str:
    """The generated text of one completion: plain string, or the last message of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    raise TypeError(f"unexpected completion shape: {type(completion).__name__}")


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    values = kwargs.get(name)
    return [None] * n if values is None else list(values)


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion ends in the answer format its task asks for, else 0.0.

    Question rows need `DECISION: (p1, ..., pk)` with exactly `n_options` valid probabilities; step rows need a
    `DIRECTION:` line. Rows without a task accept either format.
    """
    n = len(completions)
    tasks, n_options = _column(kwargs, "task", n), _column(kwargs, "n_options", n)
    scores = []
    for completion, task, k in zip(completions, tasks, n_options):
        text = completion_text(completion)
        has_decision = decision_probabilities(text, k) is not None
        has_direction = parse_direction(text) is not None
        ok = {"question": has_decision, "step": has_direction}.get(task, has_decision or has_direction)
        scores.append(1.0 if ok else 0.0)
    return scores


def collapse(option: int, category: str | None) -> int:
    """The class the benchmark scores: in 3-way explicit questions options 0 and 1 (a significant difference either
    way) are one class, option 2 (none) the other; other categories keep their options."""
    if category == "3-way_explicit":
        return 0 if option == 2 else 1
    return option


def correctness_reward(completions: list[Any], **kwargs: Any) -> list[float | None]:
    """1.0 when the argmax of the DECISION probabilities is the true option after the benchmark's 3-way collapse (the
    `category` column), 0.0 otherwise (unparsable included); None on rows without an answer. Class balance comes
    from the data (`training.data.grpo_examples` resamples every (category, class) to the same count)."""
    n = len(completions)
    answers, n_options = _column(kwargs, "answer", n), _column(kwargs, "n_options", n)
    categories = _column(kwargs, "category", n)
    scores: list[float | None] = []
    for completion, answer, k, category in zip(completions, answers, n_options, categories):
        if answer is None:
            scores.append(None)
            continue
        probs = decision_probabilities(completion_text(completion), k)
        if probs is None:
            scores.append(0.0)
            continue
        chosen = max(range(len(probs)), key=probs.__getitem__)
        scores.append(1.0 if collapse(chosen, category) == collapse(answer, category) else 0.0)
    return scores


def neg_cross_entropy_reward(completions: list[Any], **kwargs: Any) -> list[float | None]:
    """log p(true option) from the DECISION probabilities (the negative cross-entropy the benchmark scores), clipped at
    log(PROB_FLOOR); an unparsable answer gets that floor. None on rows without an answer."""
    n = len(completions)
    answers, n_options = _column(kwargs, "answer", n), _column(kwargs, "n_options", n)
    floor = math.log(PROB_FLOOR)
    scores: list[float | None] = []
    for completion, answer, k in zip(completions, answers, n_options):
        if answer is None:
            scores.append(None)
            continue
        probs = decision_probabilities(completion_text(completion), k)
        if probs is None or not 0 <= answer < len(probs):
            scores.append(floor)
        else:
            scores.append(max(floor, math.log(max(probs[answer], PROB_FLOOR))))
    return scores


def direction_agreement_reward(completions: list[Any], **kwargs: Any) -> list[float | None]:
    """1.0 when a step prediction's DIRECTION equals the observed direction of change, else 0.0; None on rows
    without an observed direction (question rows)."""
    n = len(completions)
    directions = _column(kwargs, "direction", n)
    scores: list[float | None] = []
    for completion, observed in zip(completions, directions):
        if observed is None:
            scores.append(None)
            continue
        predicted = parse_direction(completion_text(completion))
        scores.append(1.0 if predicted is not None and predicted == observed else 0.0)
    return scores


REWARDS: dict[str, RewardFunc] = {
    "format": format_reward,
    "correctness": correctness_reward,
    "neg_cross_entropy": neg_cross_entropy_reward,
    "direction_agreement": direction_agreement_reward,
}


def reward_functions(weights: dict[str, float]) -> tuple[list[RewardFunc], list[float]]:
    """The reward functions named in `weights` (recipe order) and their weights, as GRPOConfig wants them."""
    unknown = sorted(set(weights) - set(REWARDS))
    if unknown:
        raise KeyError(f"unknown rewards {unknown}; known: {sorted(REWARDS)}")
    names = list(weights)
    return [REWARDS[name] for name in names], [float(weights[name]) for name in names]
