"""Predictors: the registry, output shapes for 2- and 3-option questions, and that a learnable toy signal is learned.
Also the features they read: which option is negative, which arms are compared, names masked, no answer fields."""

import numpy as np
import pytest

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.predictors import (
    KnnHistoryPredictor,
    Prediction,
    available_predictors,
    make_predictor,
    register_predictor,
)
from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.questions import Question

MEASURES_POSITIVE = ["Change from baseline in HbA1c at week {w}", "Percent change in LDL cholesterol at week {w}",
                     "Change in fasting plasma glucose at week {w}"]
MEASURES_NEGATIVE = ["All-cause mortality", "Number of participants with surgery", "Rate of hospitalization"]


def _arm(label: str, kind: str, drug: str) -> dict:
    return {"label": label, "type": kind, "description": "", "interventionNames": [f"Drug: {drug}"],
            "interventions": [{"type": "DRUG", "name": drug, "description": "", "otherNames": []}]}


def toy_question(i: int, positive: bool, kind: str = "superiority", split: str | None = None) -> Question:
    """A question whose answer follows its endpoint wording (glycaemic/lipid → significant; death/surgery → not)."""
    rng = np.random.default_rng(i)
    pool = MEASURES_POSITIVE if positive else MEASURES_NEGATIVE
    measure = pool[int(rng.integers(len(pool)))].format(w=int(rng.integers(4, 52)))
    drug = f"drug{i:04d}"  # a new drug name per trial: must not be what the models learn
    exp, ctl = f"{drug} 10 mg", "Placebo"
    arms = [_arm(exp, "EXPERIMENTAL", drug), _arm(ctl, "PLACEBO_COMPARATOR", "placebo")]
    endpoint = {"measure": measure, "description": f"{drug} measured", "timeFrame": "Week 24", "outcome_type": "primaryOutcomes"}
    extra = {"split": split} if split else {}
    if kind == "superiority":
        options = [f"The study arm {exp} has achieved statistically significant improvements over the study arm {ctl} "
                   "with respect to this specific endpoint.",
                   f"The study arm {exp} has not achieved statistically significant improvements over the study arm "
                   f"{ctl} with respect to this specific endpoint, either because of no statistical effect or worse effect."]
        return Question(f"NCT{i:08d}", str(endpoint), 0, f"Trial of {drug}", endpoint, arms, "single_arm", options,
                        0 if positive else 1, extra)
    if kind == "comparative":
        options = [f"Study Arm {ctl} is statistically significantly worse than Study Arm {exp}.",
                   f"Study Arm {exp} is statistically significantly worse than Study Arm {ctl}.",
                   f"No statistically significant difference between Study Arm {exp} and Study Arm {ctl}."]
        return Question(f"NCT{i:08d}", str(endpoint), 0, f"Trial of {drug}", endpoint, arms, "single_arm", options,
                        0 if positive else 2, extra)
    options = ["This endpoint is met.", "This endpoint is not met."]
    return Question(f"NCT{i:08d}", str(endpoint), 0, f"Trial of {drug}", endpoint, arms, "no_arm", options,
                    0 if positive else 1, extra)


def toy_questions(n: int, start: int = 0, split: str | None = None) -> list[Question]:
    kinds = ["superiority", "superiority", "comparative", "endpoint"]
    return [toy_question(i, bool(i % 2), kinds[(i // 2) % 4], split) for i in range(start, start + n)]


def test_registry_lists_builtins_and_accepts_new_predictors():
    assert {"majority", "logreg", "random_forest", "hgb", "knn_history", "ensemble"} <= set(available_predictors())
    with pytest.raises(KeyError, match="unknown predictor 'nope'"):
        make_predictor("nope")

    class Always:
        name = "always_first"

        def __init__(self, p: float = 0.9):
            self.p = p

        def fit(self, train):
            pass

        def predict(self, questions):
            return [Prediction([self.p] + [(1 - self.p) / (len(q.options) - 1)] * (len(q.options) - 1)) for q in questions]

    register_predictor("always_first_test", Always)
    assert make_predictor("always_first_test", p=0.7).p == 0.7
    with pytest.raises(ValueError, match="already registered"):
        register_predictor("always_first_test", lambda: Always())
    register_predictor("always_first_test", lambda: Always(0.6), replace=True)
    assert make_predictor("always_first_test").p == 0.6


def test_prediction_from_text():
    p = Prediction.from_text("**DECISION:** (1, 3)", 2, trajectory=[{"step": 1}])
    assert p.parsed and p.probabilities == pytest.approx([0.25, 0.75]) and p.trajectory == [{"step": 1}]
    assert not Prediction.from_text("maybe", 3).parsed


@pytest.mark.parametrize(
    "name, kwargs",
    [("majority", {}), ("logreg", {"min_df": 2}), ("random_forest", {"n_estimators": 60, "min_df": 2}),
     ("knn_history", {"k": 15}), ("hgb", {"min_samples_leaf": 5, "max_iter": 50}),
     ("ensemble", {"member_options": {"logreg": {"min_df": 2}, "random_forest": {"n_estimators": 30, "min_df": 2},
                                      "knn_history": {"k": 15}}})],
)
def test_predictors_fit_predict_shapes_and_learn_the_toy_signal(name, kwargs):
    train, test = toy_questions(240), toy_questions(80, start=1000)
    predictor = make_predictor(name, **kwargs)
    predictor.fit(train)
    preds = predictor.predict(test)
    assert len(preds) == len(test)
    for q, p in zip(test, preds):
        assert len(p.probabilities) == len(q.options) and sum(p.probabilities) == pytest.approx(1.0)
        assert all(x > 0 for x in p.probabilities) and p.parsed
    assert predictor.predict([]) == []
    score = evaluate(test, preds, n_bootstrap=0)["overall"]["weighted_accuracy"]
    if name == "majority":
        assert score == pytest.approx(0.5)
    else:
        assert score > 0.9, f"{name} did not learn the endpoint signal: {score}"


def test_trainable_predictors_refuse_single_class_training():
    with pytest.raises(ValueError, match="all positive"):
        make_predictor("logreg", min_df=1).fit([toy_question(i, True) for i in range(10)])
    with pytest.raises(ValueError, match="no training questions with answers"):
        make_predictor("majority").fit([])


def test_knn_uses_any_index_with_the_retrieval_interface():
    class FakeIndex:
        """Returns dict hits, the way another TextIndex implementation might."""

        def fit(self, ids, texts):
            self.ids = list(ids)

        def search(self, texts, k):
            return [[{"id": self.ids[0], "score": 1.0}] for _ in texts]

    train = toy_questions(20)
    knn = KnnHistoryPredictor(k=1, prior_strength=0.0, index_factory=FakeIndex)
    knn.fit(train)
    target = features.positive_target(train[0])
    (pred,) = knn.predict([toy_question(500, True)])
    assert (pred.probabilities[0] > 0.5) == bool(target)


def test_negative_option_positive_target_and_compared_arms():
    sup, comp, end = toy_question(1, True), toy_question(3, False, "comparative"), toy_question(5, False, "endpoint")
    assert [features.negative_option(q) for q in (sup, comp, end)] == [1, 2, 1]
    assert [features.positive_target(q) for q in (sup, comp, end)] == [1, 0, 0]
    assert [a["label"] for a in features.compared_arms(comp)] == ["drug0003 10 mg", "Placebo"]
    f = features.structured_features(sup)
    assert f["arm_pair"] == "EXPERIMENTAL>PLACEBO_COMPARATOR" and f["outcome_type"] == "primaryOutcomes"
    assert {"measure_is=glycaemic", "measure_is=lipid"} & set(f)


def test_features_mask_trial_names_and_ignore_answer_fields():
    q = toy_question(7, True)
    assert "drug0007" not in features.endpoint_text(q) and "drugname" in features.endpoint_text(q)
    leaky = Question(**{**q.__dict__, "extra": {"list_of_tuples": [["a", "MET", "b"]], "no_arm_label": "met"}})
    assert features.structured_features(leaky) == features.structured_features(q)
    assert features.endpoint_text(leaky) == features.endpoint_text(q)


@pytest.mark.parametrize("text, weeks", [("Baseline, Week 12", 12), ("6 months", 6 * 4.345), ("Day 28", 4), ("", None)])
def test_time_frame_weeks(text, weeks):
    assert features.time_frame_weeks(text) == (pytest.approx(weeks) if weeks is not None else None)


def test_per_category_models_fall_back_to_a_pooled_model_for_an_unseen_category():
    predictor = make_predictor("logreg", min_df=1, per_category=True)
    predictor.fit(toy_questions(240))
    assert set(predictor.models) == {"2-way_explicit", "2-way_implicit", "3-way_explicit"}
    unseen = toy_question(9001, True, "comparative")
    unseen.meta_label = "no_arm"  # 3-way implicit: no historical source
    [p] = predictor.predict([unseen])
    assert "*" in predictor.models and len(p.probabilities) == 3 and sum(p.probabilities) == pytest.approx(1.0)
