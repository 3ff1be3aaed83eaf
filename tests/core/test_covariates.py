"""Covariate shift between question sets (evaluation.covariates): shares, differences, domain AUC, report lines."""

from __future__ import annotations

import random

import pytest

from deepimagine_core.evaluation import covariates
from deepimagine_core.questions import Question

SUPERIORITY = ["X achieved significant improvements over Y.", "X has not achieved significant improvements over Y."]


def _question(i: int, *, outcome_type: str = "primaryOutcomes", measure: str = "Change in HbA1c",
              y_type: str = "PLACEBO_COMPARATOR", answer: int | None = 0) -> Question:
    arms = [{"label": "Drug A", "type": "EXPERIMENTAL", "description": "drug a daily", "interventions": []},
            {"label": "Control", "type": y_type, "description": "control daily", "interventions": []}]
    return Question(nct_id=f"NCT{i:08d}", endpoint_key="outcome:0", question_index=0, brief_title="A trial",
                    endpoint={"measure": measure, "description": "", "timeFrame": "12 weeks",
                              "outcome_type": outcome_type},
                    arms=arms, meta_label="single_arm", options=list(SUPERIORITY), answer=answer,
                    extra={"arm_x": "Drug A", "arm_y": "Control"})


def test_feature_rates_count_shares_per_category_and_overall():
    qs = [_question(i, outcome_type="primaryOutcomes" if i < 3 else "secondaryOutcomes") for i in range(4)]
    rates = covariates.feature_rates(qs)
    assert rates["all"]["n"] == rates["2-way_explicit"]["n"] == 4
    assert rates["all"]["rates"]["outcome_type=primaryOutcomes"] == pytest.approx(0.75)
    assert rates["all"]["rates"]["outcome_type=secondaryOutcomes"] == pytest.approx(0.25)
    assert rates["all"]["text"]["endpoint_words"] > 0


def test_largest_differences_put_the_shifted_feature_first():
    source = covariates.feature_rates([_question(i) for i in range(10)])
    target = covariates.feature_rates([_question(i, outcome_type="secondaryOutcomes") for i in range(10)])
    rows = covariates.largest_differences(source, target, top=2)
    first = rows[0]
    assert first["feature"] in {"outcome_type=primaryOutcomes", "outcome_type=secondaryOutcomes"}
    assert abs(first["difference"]) == pytest.approx(1.0)
    assert {r["category"] for r in rows} == {"2-way_explicit", "all"}


def _mixed(n: int, p_secondary: float, p_active: float, seed: int) -> list[Question]:
    rng = random.Random(seed)
    return [_question(i, outcome_type="secondaryOutcomes" if rng.random() < p_secondary else "primaryOutcomes",
                      y_type="ACTIVE_COMPARATOR" if rng.random() < p_active else "PLACEBO_COMPARATOR")
            for i in range(n)]


def test_domain_auc_tells_shifted_sets_apart_and_not_alike_ones():
    source = _mixed(400, 0.8, 0.2, seed=1)
    shifted = _mixed(100, 0.1, 0.9, seed=2)
    alike = _mixed(100, 0.8, 0.2, seed=3)
    assert covariates.domain_auc(source, shifted) > 0.75  # two binary features that overlap: the best is ~0.85
    assert covariates.domain_auc(source, alike) < 0.65
    assert covariates.domain_auc(source, alike[:3]) is None  # too few for 5 folds


def test_answers_are_never_read():
    source = _mixed(60, 0.5, 0.5, seed=4)
    target = _mixed(30, 0.2, 0.7, seed=5)
    first = covariates.covariate_shift(source, target)
    for q in (*source, *target):
        q.answer = None if q.answer == 0 else 0
    assert covariates.covariate_shift(source, target) == first


def test_corpus_shifts_and_report_lines():
    train, test = _mixed(80, 0.8, 0.2, seed=6), _mixed(40, 0.6, 0.3, seed=7)
    bench = _mixed(40, 0.1, 0.9, seed=8)
    shifts = covariates.corpus_shifts(train, test, {"winter": bench})
    assert list(shifts) == ["historical_test", "winter"]
    assert shifts["winter"]["categories"]["all"]["source_n"] == 120  # train + test against the benchmark
    assert shifts["historical_test"]["categories"]["all"]["source_n"] == 80
    text = "\n".join(covariates.shift_lines(shifts))
    assert "## Covariate shift" in text
    assert f"{shifts['winter']['domain_auc']:.3f}" in text
    assert "`outcome_type=secondaryOutcomes`" in text
    assert covariates.shift_lines({}) == []
