"""The official CT Open metric against hand-computed cases, DECISION parsing, and trial-level bootstrap."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from deepimagine_core.evaluation.predictors import Prediction
from deepimagine_core.evaluation.scoring import evaluate, normalise, parse_decision
from deepimagine_core.questions import Question


def q(nct: str, answer: int, n_options: int = 2, meta: str = "single_arm", index: int = 0) -> Question:
    return Question(nct, "ep", index, "", {}, [], meta, [f"option {i}" for i in range(n_options)], answer)


def onehot(k: int, n: int = 2, p: float = 0.8) -> list[float]:
    rest = (1 - p) / (n - 1)
    return [p if i == k else rest for i in range(n)]


@pytest.mark.parametrize(
    "text, n, expected, parsed",
    [
        ("DECISION: (0.3, 0.7)\n\nREASON: ...", 2, [0.3, 0.7], True),
        ("**DECISION:** (3, 7)", 2, [0.3, 0.7], True),
        ("```python\nDECISION: (30%, 70%)\n```", 2, [0.3, 0.7], True),
        ("## DECISION: [1, 1, 2]", 3, [0.25, 0.25, 0.5], True),
        ("DECISION: (0.9, 0.1) ... on reflection DECISION: (0.2, 0.8)", 2, [0.2, 0.8], True),
        ("decision: (1, 0)", 2, [1 - 1e-12, 1e-12], True),
        ("DECISION: (0.2, 0.3, 0.5)", 2, [0.5, 0.5], False),  # wrong number of options
        ("DECISION: (high, low)", 2, [0.5, 0.5], False),
        ("DECISION: (-1, 2)", 2, [0.5, 0.5], False),
        ("DECISION: (0, 0, 0)", 3, [1 / 3] * 3, False),
        ("I cannot tell.", 3, [1 / 3] * 3, False),
        (None, 2, [0.5, 0.5], False),
    ],
)
def test_parse_decision(text, n, expected, parsed):
    decision = parse_decision(text, n)
    assert decision.parsed is parsed
    assert decision.probabilities == pytest.approx(expected, abs=1e-9)


def test_two_way_hand_case():
    truths, preds = [0, 0, 0, 1], [0, 1, 0, 1]
    p_true = [0.8, 0.2, 0.8, 0.8]
    questions = [q(f"NCT{i}", t) for i, t in enumerate(truths)]
    r = evaluate(questions, [onehot(p) for p in preds], n_bootstrap=0)
    cat = r["categories"]["2-way_explicit"]
    # recall: class 0 = 2/3, class 1 = 1/1 -> 5/6; F1: class 0 = 0.8, class 1 = 2/3
    assert cat["weighted_accuracy"] == pytest.approx(5 / 6)
    assert cat["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert cat["cross_entropy"] == pytest.approx(np.mean([-math.log(p) for p in p_true]))
    assert cat["confusion"] == [[2, 1], [0, 1]]
    assert r["overall"] == {k: pytest.approx(cat[k]) for k in ("weighted_accuracy", "macro_f1", "cross_entropy")}
    assert set(r["categories"]) == {"2-way_explicit"}  # missing categories are absent, not zero


def test_three_way_explicit_collapse():
    truths, preds = [0, 1, 2, 2], [1, 0, 2, 0]
    questions = [q(f"NCT{i}", t, 3) for i, t in enumerate(truths)]
    r = evaluate(questions, [onehot(p, 3) for p in preds], n_bootstrap=0)
    cat = r["categories"]["3-way_explicit"]
    # collapsed truth [1,1,0,0], prediction [1,1,0,1]: recall 1 = 1, recall 0 = 1/2
    assert cat["weighted_accuracy"] == pytest.approx(0.75)
    # F1: class 1 precision 2/3 recall 1 -> 0.8; class 0 precision 1 recall 1/2 -> 2/3
    assert cat["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # without the collapse the two swapped directions would count as errors (accuracy 0.25 per class mean)
    assert cat["confusion"] == [[0, 1, 0], [1, 0, 0], [1, 0, 1]]
    assert cat["cross_entropy"] == pytest.approx(np.mean([-math.log(0.1), -math.log(0.1), -math.log(0.8), -math.log(0.1)]))


def test_three_way_implicit_is_not_collapsed():
    questions = [q("NCT1", 0, 3, "no_arm"), q("NCT2", 1, 3, "no_arm")]
    r = evaluate(questions, [onehot(1, 3), onehot(1, 3)], n_bootstrap=0)
    assert r["categories"]["3-way_implicit"]["weighted_accuracy"] == pytest.approx(0.5)


def test_overall_is_the_plain_mean_over_present_categories():
    questions = [q("NCT1", 0), q("NCT2", 1), q("NCT3", 0, 2, "no_arm"), q("NCT4", 0, 2, "no_arm"),
                 q("NCT5", 2, 3), q("NCT6", 0, 3)]
    preds = [onehot(0), onehot(0), onehot(0), onehot(1), onehot(2, 3), onehot(2, 3)]
    r = evaluate(questions, preds, n_bootstrap=0)
    accs = {c: v["weighted_accuracy"] for c, v in r["categories"].items()}
    assert accs == pytest.approx({"2-way_explicit": 0.5, "2-way_implicit": 0.5, "3-way_explicit": 0.5})
    assert set(accs) == {"2-way_explicit", "2-way_implicit", "3-way_explicit"}  # 3-way implicit missing
    assert r["overall"]["weighted_accuracy"] == pytest.approx(0.5)
    assert r["overall"]["cross_entropy"] == pytest.approx(np.mean([v["cross_entropy"] for v in r["categories"].values()]))


def test_unparsed_predictions_are_uniform_and_counted():
    questions = [q("NCT1", 0), q("NCT2", 1)]
    preds = [Prediction.from_text("no idea", 2), Prediction.from_text("DECISION: (0.1, 0.9)", 2)]
    r = evaluate(questions, preds, n_bootstrap=0)
    assert r["n_unparsed"] == 1 and r["n_questions"] == 2
    assert r["categories"]["2-way_explicit"]["cross_entropy"] == pytest.approx((math.log(2) - math.log(0.9)) / 2)


def test_auc_two_way_explicit_hand_case():
    questions = [q("NCT1", 0), q("NCT2", 1), q("NCT3", 0), q("NCT4", 1)]
    scores = [0.9, 0.8, 0.3, 0.1]  # P(option 0); positives 0.9 and 0.3 against negatives 0.8 and 0.1 -> 3 of 4 pairs
    r = evaluate(questions, [[s, 1 - s] for s in scores], n_bootstrap=0)
    assert r["auc_2way_explicit"] == pytest.approx(0.75)


def test_matches_sklearn_on_random_predictions():
    rng = np.random.default_rng(3)
    truths = rng.integers(0, 2, 200)
    probs = rng.dirichlet([1, 1], 200)
    questions = [q(f"NCT{i}", int(t)) for i, t in enumerate(truths)]
    r = evaluate(questions, probs.tolist(), n_bootstrap=0)
    preds = probs.argmax(1)
    assert r["overall"]["macro_f1"] == pytest.approx(f1_score(truths, preds, average="macro", zero_division=0))
    recalls = [np.mean(preds[truths == c] == c) for c in (0, 1)]
    assert r["overall"]["weighted_accuracy"] == pytest.approx(np.mean(recalls))


def test_bootstrap_resamples_trials_and_is_seeded():
    rng = np.random.default_rng(0)
    questions, preds = [], []
    for t in range(60):
        for i in range(3):  # three questions per trial
            answer = int(rng.integers(0, 2))
            questions.append(q(f"NCT{t:03d}", answer, index=i))
            preds.append(onehot(answer if rng.random() < 0.7 else 1 - answer))
    a = evaluate(questions, preds, n_bootstrap=200, seed=5)
    b = evaluate(questions, preds, n_bootstrap=200, seed=5)
    assert a["intervals"] == b["intervals"] and a["n_trials"] == 60
    lo, hi = a["intervals"]["weighted_accuracy"]
    assert lo < a["overall"]["weighted_accuracy"] < hi and hi - lo < 0.4
    assert a["bootstrap"]["unit"].startswith("trial")
    assert a["categories"]["2-way_explicit"]["auc_interval"] is not None


def test_bad_predictions_raise():
    with pytest.raises(ValueError, match="2 options"):
        evaluate([q("NCT1", 0)], [[0.2, 0.3, 0.5]], n_bootstrap=0)
    with pytest.raises(ValueError, match="1 questions but 2"):
        evaluate([q("NCT1", 0)], [[0.5, 0.5], [0.5, 0.5]], n_bootstrap=0)
    with pytest.raises(ValueError):
        normalise([float("nan"), 1.0])


def test_trial_balanced_figures_count_each_trial_once():
    """One trial with four questions all answered right, two one-question trials answered wrong: officially the
    right answers dominate; trial-balanced, the big trial counts as much as each small one."""
    questions = [q("NCT_BIG", 0, index=i) for i in range(3)] + [q("NCT_BIG", 1, index=3)]
    questions += [q("NCT_A", 0), q("NCT_B", 1)]
    preds = [onehot(0)] * 3 + [onehot(1)] + [onehot(1), onehot(0)]
    r = evaluate(questions, preds, n_bootstrap=50)
    # official: class 0 recall 3/4, class 1 recall 1/2 -> 0.625
    assert r["overall"]["weighted_accuracy"] == pytest.approx(0.625)
    # trial-balanced: big-trial questions weigh 1/4 each: class 0 recall (3/4) / (3/4 + 1) = 3/7,
    # class 1 recall (1/4) / (1/4 + 1) = 1/5
    assert r["trial_balanced"]["weighted_accuracy"] == pytest.approx((3 / 7 + 1 / 5) / 2)
    lo, hi = r["trial_balanced_intervals"]["weighted_accuracy"]
    assert lo <= r["trial_balanced"]["weighted_accuracy"] <= hi
    one_each = [q(f"NCT{i}", t) for i, t in enumerate([0, 0, 1])]
    same = evaluate(one_each, [onehot(0), onehot(1), onehot(1)], n_bootstrap=0)
    assert same["trial_balanced"] == pytest.approx(same["overall"])  # one question per trial: the same figures
