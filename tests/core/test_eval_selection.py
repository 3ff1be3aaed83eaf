"""Selection: forward-chaining folds grouped by trial and ordered in time; CV over candidates; the reference API."""

import pytest

from deepimagine_core.evaluation.base import ScoredPredictor
from deepimagine_core.evaluation.selection import (
    Candidate,
    best_candidate,
    cross_validate_all,
    reference_predictor,
    reference_predictor_name,
    time_folds,
)
from tests.core.test_eval_predictors import toy_questions


def dated(n: int, start: int = 0):
    qs = toy_questions(n, start)
    for i, q in enumerate(qs):
        q.extra["results_first_posted"] = f"{2008 + (i * 8) // n}-{1 + i % 12:02d}-15"
    return qs


def test_folds_train_on_the_past_and_never_split_a_trial():
    qs = dated(120)
    for q in qs[:10]:  # several questions of one trial
        q.nct_id = "NCT_SHARED"
    folds = time_folds(qs, n_blocks=4)
    assert len(folds) == 3
    for k, (tr, va) in enumerate(folds):
        latest_train = max(str(qs[i].extra["results_first_posted"]) for i in tr)
        assert all(str(qs[i].extra["results_first_posted"]) >= latest_train or qs[i].nct_id == "NCT_SHARED"
                   for i in va)
        assert not {qs[i].nct_id for i in tr} & {qs[i].nct_id for i in va}
        if k:
            assert len(tr) > len(folds[k - 1][0])  # forward chaining: the training past grows


def test_cross_validation_ranks_a_learning_model_above_majority():
    rows = cross_validate_all([Candidate("majority", "majority"), Candidate("logreg", "logreg", {"min_df": 1})],
                              dated(300), n_blocks=3, log=lambda _: None)
    assert [r["candidate"] for r in rows] == ["majority", "logreg"]
    assert rows[0]["mean"]["weighted_accuracy"] == pytest.approx(0.5)
    assert rows[1]["mean"]["weighted_accuracy"] > 0.9 and len(rows[1]["folds"]) == 2
    assert best_candidate(rows)["candidate"] == "logreg"


def test_reference_predictor_is_a_fresh_scored_predictor():
    predictor = reference_predictor()
    assert predictor.name == reference_predictor_name and isinstance(predictor, ScoredPredictor)
    assert predictor is not reference_predictor()


def test_adapted_candidates_sharing_one_fit_score_as_if_fitted_alone():
    qs = dated(240)
    methods = ("median", "calibrated")
    cands = [Candidate(m, "logreg_adapted", {"min_df": 1, "method": m}) for m in methods]
    together = cross_validate_all(cands, qs, n_blocks=3, log=lambda _: None)
    for m, row in zip(methods, together):
        alone = cross_validate_all([Candidate(m, "logreg_adapted", {"min_df": 1, "method": m})], qs, n_blocks=3,
                                   log=lambda _: None)[0]
        assert row["folds"] == alone["folds"]


def test_the_reference_is_the_winner_of_the_stored_whole_corpus_selection():
    """`REFERENCE` is copied by hand from the stored run: it must stay the candidate that run selected."""
    import json
    from pathlib import Path

    from deepimagine_core.evaluation.selection import REFERENCE

    stored = json.loads((Path(__file__).parents[2] / "docs/results/whole_corpus/summary.json").read_text())["selection"]
    assert (REFERENCE.label, REFERENCE.name, REFERENCE.options) == (
        stored["reference"], stored["reference_name"], stored["reference_options"])
