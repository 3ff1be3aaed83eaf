"""Label-shift adaptation: the prior estimators recover a known prior on synthetic shift, the guard stops EM from
collapsing, the adapted predictor follows a shifted score distribution, and it never reads the target's answers."""

import numpy as np
import pytest

from deepimagine_core.evaluation.calibration import auc, platt, sigmoid
from deepimagine_core.evaluation.predictors import make_predictor
from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.evaluation.shift import SourceStats, balanced_rate, bbse_prior, em_prior, time_holdout
from tests.core.test_eval_predictors import toy_questions


def synthetic(n: int, prior: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a calibrated classifier under source prior 0.5: x | y ~ N(±1, 1), score = P(y=1 | x) = sigmoid(2x)."""
    y = (rng.random(n) < prior).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    return sigmoid(2 * x), y


@pytest.mark.parametrize("true_prior", [0.15, 0.3, 0.5, 0.8])
def test_em_and_bbse_recover_a_known_prior(true_prior):
    rng = np.random.default_rng(0)
    source_scores, source_y = synthetic(4000, 0.5, rng)
    stats = SourceStats.fit(source_scores, source_y)
    target_scores, _ = synthetic(4000, true_prior, rng)
    p = sigmoid(stats.a * np.log(target_scores / (1 - target_scores)) + stats.b)
    em, _ = em_prior(p, stats.prior, pseudo=1.0)
    assert em == pytest.approx(true_prior, abs=0.04)
    assert bbse_prior(p, stats.mean_pos, stats.mean_neg) == pytest.approx(true_prior, abs=0.04)


def test_the_guard_keeps_em_off_zero_and_one():
    """Overconfident, uncalibrated scores drive naive EM (no pseudo-count) to the edge; the guard holds it inside."""
    rng = np.random.default_rng(1)
    scores = np.clip(rng.beta(0.2, 0.6, 300), 1e-6, 1 - 1e-6)  # mostly near 0 and 1, shifted low
    naive, _ = em_prior(scores, 0.5, pseudo=0.0, clip=(1e-9, 1 - 1e-9))
    guarded, _ = em_prior(scores, 0.5)
    assert naive < 0.35
    assert 0.02 <= guarded <= 0.98 and guarded > naive


def test_platt_recovers_slope_and_bias():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 20000)
    y = (rng.random(z.size) < sigmoid(0.5 * z - 1.0)).astype(int)
    a, b = platt(sigmoid(z), y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.08)
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_balanced_rate_is_half_for_chance_scores_and_nears_the_prior_for_strong_ones():
    assert balanced_rate(0.2, 0.5) == pytest.approx(0.5)
    assert balanced_rate(0.2, 0.99) == pytest.approx(0.2, abs=0.06)
    assert 0.2 < balanced_rate(0.2, 0.75) < 0.5


def test_time_holdout_takes_the_newest_trials():
    qs = toy_questions(40)
    for i, q in enumerate(qs):
        q.extra["results_first_posted"] = f"20{10 + i % 8:02d}-01-01"
    older, newer = time_holdout(qs, 0.25)
    assert max(q.extra["results_first_posted"] for q in older) <= min(q.extra["results_first_posted"] for q in newer)
    assert len(newer) == 10 and not {q.nct_id for q in older} & {q.nct_id for q in newer}


def test_adapted_predictor_follows_a_shifted_target_and_never_reads_answers():
    train = toy_questions(320)
    for i, q in enumerate(train):
        q.extra["results_first_posted"] = f"2014-{1 + i % 12:02d}-01"
    target = toy_questions(120, start=5000)
    truth = [q.answer for q in target]
    for q in target:  # the target's answers are gone before prediction
        q.answer = None
    predictor = make_predictor("logreg_adapted", method="em_rate", min_df=1)
    predictor.fit(train)
    preds = predictor.predict(target)
    assert len(preds) == len(target) and all(abs(sum(p.probabilities) - 1) < 1e-9 for p in preds)
    for q, a in zip(target, truth):
        q.answer = a
    assert evaluate(target, preds, n_bootstrap=0)["overall"]["weighted_accuracy"] > 0.9
    assert set(predictor.describe()["target"]) == {q.category for q in target}


@pytest.mark.parametrize("method", ["em_rate", "bbse_rate", "median", "calibrated", "importance"])
def test_every_method_runs_on_a_category_too_small_to_adapt(method):
    train = toy_questions(200)
    predictor = make_predictor("logreg_adapted", method=method, min_df=1, min_target=50)
    predictor.fit(train)
    preds = predictor.predict(toy_questions(8, start=7000))
    assert len(preds) == 8
    assert all(v["method"] == "calibrated" for v in predictor.describe()["target"].values())


def test_a_prior_estimate_at_the_clip_is_not_used():
    """Weakly separating source scores (class means 0.52 vs 0.42) and a target whose scores sit a little lower: BBSE
    runs to the clip; the adapted decision then keeps the source prior's rate and records the estimate."""
    stats = SourceStats(a=1.0, b=0.0, prior=0.5, auc=0.62, mean_pos=0.52, mean_neg=0.42, n=500)
    target = np.random.default_rng(3).normal(0.38, 0.05, 200).clip(0.01, 0.99)
    assert bbse_prior(target, stats.mean_pos, stats.mean_neg) == pytest.approx(0.02)
    predictor = make_predictor("logreg_adapted", method="bbse_rate", min_df=1)
    _, info = predictor.adapt(target, stats)
    assert info["estimate_at_clip"] == pytest.approx(0.02)
    assert info["target_prior"] == 0.5 and info["positive_rate"] == pytest.approx(balanced_rate(0.5, 0.62))
    _, inside = predictor.adapt(np.random.default_rng(4).normal(0.47, 0.05, 200).clip(0.01, 0.99), stats)
    assert "estimate_at_clip" not in inside and 0.02 < inside["target_prior"] < 0.98
