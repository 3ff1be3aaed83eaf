"""Training weights against the time shift: recency weights on constructed dates, class rebalancing under weights,
a recency-weighted model following the newer trials, gradient-boosted trees giving coherent 3-option distributions,
and covariate-shift importance weights pointing toward the target on a synthetic shift (answers never read)."""

import numpy as np
import pytest

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.base import balanced_weights, targets
from deepimagine_core.evaluation.predictors import make_predictor
from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.evaluation.weighting import (
    importance_weights,
    recency_weights,
    trial_weights,
)
from tests.core.test_eval_predictors import toy_question, toy_questions


def _dated(questions, date):
    for q in questions:
        q.extra["results_first_posted"] = date
    return questions


def test_recency_weights_halve_per_half_life_and_count_undated_as_newest():
    qs = toy_questions(5)
    for q, date in zip(qs, ["2015-06-01", "2012-06-01", "2009-06-01", None, "9999"]):
        q.extra["results_first_posted"] = date
    w = recency_weights(qs, half_life=3.0)
    assert w[0] == pytest.approx(1.0)
    assert w[1] == pytest.approx(0.5, abs=2e-3) and w[2] == pytest.approx(0.25, abs=2e-3)
    assert w[3] == 1.0 and w[4] == 1.0
    assert recency_weights(qs, half_life=1e6) == pytest.approx(np.ones(5), abs=1e-5)
    with pytest.raises(ValueError):
        recency_weights(qs, half_life=0)


def test_trial_weights_give_each_trial_the_same_total_at_power_one():
    qs = toy_questions(7)
    for q, nct in zip(qs, ["A", "A", "A", "A", "B", "B", "C"]):
        q.nct_id = nct
    w = trial_weights(qs, 1.0)
    totals = {nct: sum(wi for q, wi in zip(qs, w) if q.nct_id == nct) for nct in "ABC"}
    assert totals["A"] == pytest.approx(totals["B"]) == pytest.approx(totals["C"])
    assert w.mean() == pytest.approx(1.0)
    half = trial_weights(qs, 0.5)  # 1/sqrt(n): A's questions weigh half as much as C's
    assert half[0] / half[6] == pytest.approx(0.5)
    assert trial_weights(qs, 0.0) == pytest.approx(np.ones(7))
    with pytest.raises(ValueError):
        trial_weights(qs, -1.0)


def test_a_trial_balanced_model_is_not_ruled_by_one_large_trial():
    """One trial with 300 questions answers the opposite way to 150 one-question trials: unweighted, the large
    trial's relation wins; with trial_balance=1 every trial counts once and the many small trials' relation wins."""
    big = _flipped(toy_questions(300))
    for q in big:
        q.nct_id = "NCT_BIG"
    scores = _scores_by("trial_balance", big + toy_questions(150, start=2000))
    assert scores[1.0] > 0.9 and scores[1.0] > scores[None] + 0.2, scores


def _flipped(questions):
    """The opposite relation: glycaemic endpoints fail, mortality ones succeed."""
    for q in questions:
        q.answer = features.negative_option(q) if features.positive_target(q) else 0
    return questions


def _scores_by(option: str, train, values=(None, 1.0)) -> dict:
    """Weighted accuracy on fresh toy questions of a logreg fitted on `train` with each value of a weighting option."""
    test = toy_questions(120, start=9000)
    scores = {}
    for value in values:
        predictor = make_predictor("logreg", min_df=1, **{option: value})
        predictor.fit(train)
        assert predictor.describe().get(option) == value
        scores[value] = evaluate(test, predictor.predict(test), n_bootstrap=0)["overall"]["weighted_accuracy"]
    return scores


def test_balanced_weights_rebalance_classes_over_weighted_totals():
    qs = toy_questions(40)
    y = targets(qs)
    assert balanced_weights(qs, y, np.ones(len(qs))) == pytest.approx(balanced_weights(qs, y))
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(qs))
    out = balanced_weights(qs, y, w)
    for cat in {q.category for q in qs}:
        in_cat = np.array([q.category == cat for q in qs])
        pos, neg = out[in_cat & (y == 1)].sum(), out[in_cat & (y == 0)].sum()
        assert pos == pytest.approx(neg) and pos + neg == pytest.approx(w[in_cat].sum())
        cell = in_cat & (y == 1)  # relative weights within a cell are kept
        assert out[cell] / w[cell] == pytest.approx(np.full(cell.sum(), (out[cell] / w[cell])[0]))


def test_a_recency_weighted_model_follows_the_newer_trials():
    """Old trials (2007) answer the opposite way to new ones (2015); with a 1-year half-life the old ones weigh
    0.5^8, so the model learns the new relation, which the unweighted model cannot."""
    old = _flipped(_dated(toy_questions(300), "2007-01-01"))
    scores = _scores_by("half_life", old + _dated(toy_questions(200, start=2000), "2015-01-01"))
    assert scores[1.0] > 0.9 and scores[1.0] > scores[None] + 0.2, scores


@pytest.mark.parametrize("half_life", [None, 4.0])
def test_hgb_fits_and_gives_a_coherent_distribution_over_three_options(half_life):
    train = _dated(toy_questions(240), "2014-01-01")
    test = [toy_question(5000 + i, bool(i % 2), "comparative") for i in range(40)]
    predictor = make_predictor("hgb", min_samples_leaf=5, max_iter=50, half_life=half_life)
    predictor.fit(train)
    preds = predictor.predict(test)
    for q, p in zip(test, preds):
        probs = np.array(p.probabilities)
        assert len(probs) == 3 and probs.sum() == pytest.approx(1.0) and (probs > 0).all()
        p_significant = 1 - probs[features.negative_option(q)]
        assert (np.argmax(probs) != features.negative_option(q)) == (p_significant > 0.5)
    assert evaluate(test, preds, n_bootstrap=0)["overall"]["weighted_accuracy"] > 0.9
    assert predictor.describe()["classifier"] == "HistGradientBoostingClassifier"


def test_importance_weights_point_toward_a_shifted_target():
    """Source x ~ N(0, 1), target x ~ N(1, 1): the true density ratio is exp(x − 0.5), increasing in x. The weights
    must rise with x, move the source's weighted mean toward the target's, and stay near 1 without a shift."""
    rng = np.random.default_rng(0)
    source = rng.normal(0.0, 1.0, (3000, 1))
    target = rng.normal(1.0, 1.0, (1000, 1))
    w = importance_weights(source, target, C=10.0)
    assert w.mean() == pytest.approx(1.0)
    assert np.corrcoef(source[:, 0], np.log(w))[0, 1] > 0.95
    assert np.average(source[:, 0], weights=w) > 0.6
    same = importance_weights(source, rng.normal(0.0, 1.0, (1000, 1)), C=10.0)
    assert np.abs(same - 1).max() < 0.5 and abs(np.average(source[:, 0], weights=same)) < 0.1


def test_importance_adaptation_refits_toward_the_target_without_reading_answers():
    train = _dated(toy_questions(240), "2014-01-01")
    target = toy_questions(60, start=6000)
    truth = [q.answer for q in target]
    for q in target:
        q.answer = None
    predictor = make_predictor("ensemble_adapted", method="importance", members=["logreg", "hgb"],
                               member_options={"logreg": {"min_df": 1}, "hgb": {"min_samples_leaf": 5, "max_iter": 30}})
    predictor.fit(train)
    preds = predictor.predict(target)
    for q, a in zip(target, truth):
        q.answer = a
    assert evaluate(target, preds, n_bootstrap=0)["overall"]["weighted_accuracy"] > 0.9
    info = predictor.describe()["target"]
    assert set(info) == {q.category for q in target}
    assert all(v["method"] == "importance" and 0 < v["effective_train"] <= v["n_train"] == 240 for v in info.values())


def test_questions_read_from_a_table_row_carry_their_date_for_recency():
    import datetime as dt

    from deepimagine_core.evaluation.weighting import question_with_date

    rows = [{**q.to_row(), "results_first_posted": date}
            for q, date in zip(toy_questions(3), [dt.date(2015, 1, 1), dt.date(2012, 1, 1), None])]
    qs = [question_with_date(r) for r in rows]
    assert [q.extra.get("results_first_posted") for q in qs] == ["2015-01-01", "2012-01-01", None]
    assert recency_weights(qs, half_life=3.0) == pytest.approx([1.0, 0.5, 1.0], abs=2e-3)
