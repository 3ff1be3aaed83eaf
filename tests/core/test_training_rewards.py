"""GRPO rewards are pure functions: checked here on hand-written completions, without any model."""

from __future__ import annotations

import math

import pytest

from deepimagine_core.training.rewards import (
    PROB_FLOOR,
    REWARDS,
    completion_text,
    correctness_reward,
    direction_agreement_reward,
    format_reward,
    neg_cross_entropy_reward,
    reward_functions,
)


def chat(text: str) -> list[dict[str, str]]:
    """A completion as TRL passes it for conversational prompts."""
    return [{"role": "assistant", "content": text}]


STEP_GOOD = "The dose doubles, so the effect grows.\nDIRECTION: up\nSIZE: moderate\nRESULT: larger drop\nEXPLANATION: x"
QUESTION_GOOD = "Reasoning...\n**DECISION: (0.8, 0.2)**"


def test_format_reward_wants_the_format_of_the_task():
    completions = [chat(QUESTION_GOOD), chat(STEP_GOOD), chat(STEP_GOOD), chat("DECISION: (0.1, 0.2, 0.7)"), "junk"]
    tasks = ["question", "step", "question", "question", None]
    n_options = [2, None, 2, 2, None]
    assert format_reward(completions, task=tasks, n_options=n_options) == [1.0, 1.0, 0.0, 0.0, 0.0]
    # without task columns, either format counts
    assert format_reward([QUESTION_GOOD, STEP_GOOD, "nothing"]) == [1.0, 1.0, 0.0]


def test_correctness_reward_scores_the_argmax_and_skips_rows_without_answer():
    completions = [chat("DECISION: (0.8, 0.2)"), chat("DECISION: (30%, 70%)"), chat("no decision"), chat(STEP_GOOD)]
    scores = correctness_reward(completions, answer=[0, 0, 1, None], n_options=[2, 2, 2, None])
    assert scores == [1.0, 0.0, 0.0, None]


def test_neg_cross_entropy_is_log_prob_of_truth_with_a_floor():
    completions = [chat("DECISION: (0.8, 0.2)"), chat("DECISION: (0.2, 0.3, 0.5)"), chat("DECISION: (1, 0)"),
                   chat("garbled"), chat(STEP_GOOD)]
    scores = neg_cross_entropy_reward(completions, answer=[0, 2, 1, 0, None], n_options=[2, 3, 2, 2, None])
    assert scores[0] == pytest.approx(math.log(0.8))
    assert scores[1] == pytest.approx(math.log(0.5))
    assert scores[2] == pytest.approx(math.log(PROB_FLOOR))  # certain and wrong: the floor, not -inf
    assert scores[3] == pytest.approx(math.log(PROB_FLOOR))  # unparsable: the floor
    assert scores[4] is None
    # a confident right answer beats a hedge, which beats a wrong one
    hedge, right, wrong = neg_cross_entropy_reward(
        ["DECISION: (0.5, 0.5)", "DECISION: (0.9, 0.1)", "DECISION: (0.1, 0.9)"], answer=[0, 0, 0], n_options=[2] * 3
    )
    assert right > hedge > wrong


def test_direction_agreement_compares_with_the_observed_direction():
    completions = [chat(STEP_GOOD), chat("DIRECTION: down"), chat("no direction"), chat(QUESTION_GOOD)]
    scores = direction_agreement_reward(completions, direction=["up", "up", "same", None])
    assert scores == [1.0, 0.0, 0.0, None]


def test_rewards_accept_plain_string_completions_and_reject_odd_shapes():
    assert completion_text("DIRECTION: up") == "DIRECTION: up"
    assert completion_text(chat("x")) == "x"
    with pytest.raises(TypeError):
        completion_text(42)


def test_registry_and_weights_follow_the_recipe_order():
    funcs, weights = reward_functions({"correctness": 1.0, "format": 0.25})
    assert funcs == [REWARDS["correctness"], REWARDS["format"]] and weights == [1.0, 0.25]
    assert set(REWARDS) == {"format", "correctness", "neg_cross_entropy", "direction_agreement"}
    with pytest.raises(KeyError, match="unknown rewards"):
        reward_functions({"vibes": 1.0})


def test_rewards_ignore_extra_trainer_kwargs():
    # GRPOTrainer also passes prompts, completion_ids, trainer_state and every other dataset column
    extra = dict(prompts=[[]], completion_ids=[[1, 2]], trainer_state=None, id=["q1"], source=["historical_questions"])
    for name, func in REWARDS.items():
        out = func([chat(QUESTION_GOOD)], task=["question"], answer=[0], n_options=[2], direction=[None], **extra)
        assert len(out) == 1, name
