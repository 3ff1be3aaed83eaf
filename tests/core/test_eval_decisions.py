"""Option probabilities: a coherent 3-way distribution whose argmax agrees with the collapsed metric."""

import numpy as np
import pytest

from deepimagine_core.evaluation.decisions import DirectionPrior, collapsed_decision, option_probabilities
from deepimagine_core.evaluation.scoring import evaluate
from tests.core.test_eval_predictors import toy_question


def three_way():
    return toy_question(1, True, "comparative")  # options: X better, Y better, no significant difference (last)


def test_significant_at_065_with_an_even_split_does_not_answer_no_difference():
    q = three_way()
    probs = option_probabilities(q, 0.65, 0.5)
    assert int(np.argmax(probs)) != 2 and collapsed_decision(q, probs) == 1
    assert sum(probs) == pytest.approx(1.0)
    assert probs[0] + probs[1] == pytest.approx(0.65, abs=1e-6)  # P(significant) is kept
    assert probs[2] == pytest.approx(0.35, abs=1e-6)


@pytest.mark.parametrize("p_sig", [0.5, 0.51, 0.55, 0.65, 0.8, 0.99])
@pytest.mark.parametrize("split", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_collapsed_argmax_follows_p_significant(p_sig, split):
    q = three_way()
    assert collapsed_decision(q, option_probabilities(q, p_sig, split)) == 1
    assert collapsed_decision(q, option_probabilities(q, 1 - p_sig - 0.01, split)) == 0


def test_the_likelier_direction_wins_and_a_clear_split_is_untouched():
    q = three_way()
    assert int(np.argmax(option_probabilities(q, 0.7, 0.3))) == 1
    probs = option_probabilities(q, 0.9, 0.8)
    assert probs == pytest.approx([0.72, 0.18, 0.1], abs=1e-5)


def test_two_way_is_the_plain_probability():
    q = toy_question(2, True, "superiority")
    assert option_probabilities(q, 0.3) == pytest.approx([0.3, 0.7])


def test_three_way_metric_on_constructed_cases_is_above_chance():
    """Significant questions at P(sig) = 0.65, even split; non-significant at 0.35: all right after the collapse."""
    questions, preds = [], []
    for i in range(20):
        q = toy_question(100 + i, bool(i % 2), "comparative")
        questions.append(q)
        preds.append(option_probabilities(q, 0.65 if q.answer != 2 else 0.35, 0.5))
    assert evaluate(questions, preds, n_bootstrap=0)["categories"]["3-way_explicit"]["weighted_accuracy"] == 1.0


def test_direction_prior_learns_the_usual_winner():
    train = []
    for i in range(30):
        q = toy_question(200 + i, True, "comparative")
        q.answer = 0 if i % 5 else 1  # X (experimental) better 80% of the time
        train.append(q)
    prior = DirectionPrior().fit(train)
    assert 0.7 < prior.first(three_way()) < 0.85
    assert prior.first(toy_question(3, True, "superiority")) == 0.5
