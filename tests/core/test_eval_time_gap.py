"""The time-gap curve: training windows placed `gap` years from a fixed validation block, equal numbers of trials,
validation trials never trained on; a line fitted to the figures finds a drift built into constructed questions and
finds none where there is none."""

from typing import ClassVar

import pytest

from deepimagine_core.evaluation.predictors import make_predictor
from deepimagine_core.evaluation.time_gap import (
    figures_by_period,
    gap_curve,
    gap_trend,
    gap_window,
    trial_years,
)
from deepimagine_core.evaluation.weighting import date_years
from tests.core.test_eval_predictors import toy_questions
from tests.core.test_eval_weighting import _flipped


def spread(questions, first=2008, years=8):
    """Date the questions evenly from `first` over `years` years, in order."""
    n = len(questions)
    for i, q in enumerate(questions):
        y = first + years * i / n
        q.extra["results_first_posted"] = f"{int(y)}-{1 + int((y % 1) * 12):02d}-15"
    return questions


class Recording:
    """A majority-like predictor remembering the trials it was fitted on."""

    fits: ClassVar[list] = []

    def fit(self, train):
        Recording.fits.append(sorted({q.nct_id for q in train}))

    def predict(self, questions):
        return [[1 / len(q.options)] * len(q.options) for q in questions]


def test_windows_hold_the_gap_equal_sizes_and_never_the_validation_trials():
    qs = spread(toy_questions(800))
    years = trial_years(qs)
    validation = {t for t, y in years.items() if y >= date_years("2015-01-01")}
    Recording.fits = []
    rows = gap_curve(qs, validation, Recording, gaps=(0, 2, 7), width=2.0, n_trials=150, seeds=(0, 1))
    scored = [r for r in rows if "skipped" not in r]
    assert [r["gap"] for r in scored] == [0, 0, 2, 2] and len(Recording.fits) == 4
    v_start = min(years[t] for t in validation)
    for row, trials in zip(scored, Recording.fits):
        assert len(trials) == 150 and not set(trials) & validation
        assert all(v_start - row["gap"] - 2.0 <= years[t] < v_start - row["gap"] for t in trials)
    assert Recording.fits[0] != Recording.fits[1]  # the seeds draw different trials
    skipped = [r for r in rows if r["gap"] == 7]  # [2006, 2008): at most the first days of 2008
    assert len(skipped) == 2 and all(r["pool_trials"] < 150 and "150 needed" in r["skipped"] for r in skipped)

    backward = gap_curve(qs, {t for t, y in years.items() if y < date_years("2010-01-01")}, Recording, gaps=(1,),
                         width=2.0, n_trials=100, seeds=(0,), direction="backward")
    lo, hi = gap_window([date_years("2009-12-15")], 1, 2.0, "backward")
    assert backward[0]["n_trials"] == 100 and all(lo < years[t] <= hi for t in Recording.fits[-1])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="direction"):
        gap_window([2015.0], 1, 2.0, "sideways")
    with pytest.raises(ValueError, match="gap must be"):
        gap_window([2015.0], -1, 2.0, "forward")
    with pytest.raises(ValueError, match="no dated validation"):
        gap_curve(spread(toy_questions(10)), {"NCT_NONE"}, Recording)
    with pytest.raises(ValueError, match="figure must be"):
        gap_trend([], "speed")


def _curve(questions):
    years = trial_years(questions)
    validation = {t for t, y in years.items() if y >= date_years("2015-01-01")}
    return gap_curve(questions, validation, lambda: make_predictor("logreg", min_df=1), gaps=(0, 2, 4), width=2.0,
                     n_trials=120, seeds=(0, 1))


def test_the_trend_finds_a_drift_built_into_the_questions_and_none_in_stationary_ones():
    stationary = gap_trend(_curve(spread(toy_questions(960))))
    assert stationary["n"] == 6 and abs(stationary["slope"]) < 0.02, stationary

    drifting = spread(toy_questions(960))
    cut = date_years("2012-01-01")
    _flipped([q for q in drifting if date_years(q.extra["results_first_posted"]) < cut])  # the old relation is reversed
    trend = gap_trend(_curve(drifting))
    assert trend["by_gap"][0.0] > 0.9 and trend["by_gap"][4.0] < 0.2, trend
    assert trend["slope"] < -0.15 and trend["r"] < -0.9, trend


def test_gap_trend_is_the_least_squares_line_and_figures_by_period_groups_by_date():
    rows = [{"gap": 0, "trial_balanced": 0.7}, {"gap": 1, "trial_balanced": 0.68}, {"gap": 2, "trial_balanced": 0.66},
            {"gap": 3, "skipped": "too few"}]
    trend = gap_trend(rows)
    assert trend["slope"] == pytest.approx(-0.02) and trend["intercept"] == pytest.approx(0.7)
    assert trend["n"] == 3 and trend["r"] == pytest.approx(-1.0)
    assert gap_trend(rows[:1])["slope"] is None

    qs = spread(toy_questions(200), first=2016, years=8)
    predictor = make_predictor("logreg", min_df=1)
    predictor.fit(toy_questions(200, start=5000))
    out = figures_by_period(predictor, qs, [("2016-01-01", "2020-01-01"), ("2020-01-01", "2024-01-01"),
                                            ("2030-01-01", "2031-01-01")], n_bootstrap=50)
    assert [r["n_questions"] for r in out] == [100, 100, 0]
    assert out[0]["weighted_accuracy"] > 0.9 and out[0]["weighted_accuracy_interval"] is not None
    assert "weighted_accuracy" not in out[2]
