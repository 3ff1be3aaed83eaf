"""Target priors (out-of-fold, smoothed, by trial) and the per-question feature memo."""

import numpy as np
import pytest

from deepimagine_core.evaluation import features
from deepimagine_core.evaluation.predictors import make_predictor
from deepimagine_core.evaluation.priors import FAMILIES, TargetPriors, _stem_classes, question_keys
from deepimagine_core.evaluation.scoring import evaluate
from tests.core.test_eval_predictors import toy_question, toy_questions


def _with_drug(q, drug: str, title: str):
    q.arms[0]["interventions"][0]["name"] = drug
    q.arms[0]["interventionNames"] = [f"Drug: {drug}"]
    q.brief_title = title
    return q


@pytest.mark.parametrize("name, cls", [("Adalimumab", "antibody"), ("sitagliptin 100 mg", "dpp4"),
                                       ("Influenza vaccine", "vaccine"), ("Ceftriaxone", "cephalosporin")])
def test_stem_classes(name, cls):
    assert cls in _stem_classes(name)
    assert not _stem_classes("placebo")


def test_keys_come_from_the_design_not_the_trial_names():
    q = _with_drug(toy_question(1, True), "sitagliptin", "Sitagliptin in Type 2 Diabetes")
    keys = question_keys(q)
    assert {"type=DRUG", "class=dpp4"} <= keys["intervention"]
    assert "diabetes" in keys["condition"] and "sitagliptin" not in keys["condition"]


def test_priors_are_out_of_fold_and_recover_a_key_that_predicts_the_answer():
    qs = []
    for i in range(400):
        positive = bool(i % 2)
        drug, title = ("sitagliptin", "Glucose lowering in diabetes") if positive else ("atorvastatin", "Stroke outcomes")
        qs.append(_with_drug(toy_question(i, positive, "endpoint"), drug, title))
    y = np.array([int(q.answer == 0) for q in qs])
    enc = TargetPriors(strength=10.0)
    oof = enc.fit_transform(qs, y)
    assert oof.shape == (400, 2 * len(FAMILIES))
    assert oof[y == 1, 1].min() > 0.3 and oof[y == 0, 1].max() < -0.3  # the class prior separates (extreme column)
    assert oof[y == 1, 0].min() > 0.1 and oof[y == 0, 0].max() < -0.1  # also on the mean with the neutral DRUG type
    # a lone trial's own answer never enters its out-of-fold encoding
    lone = _with_drug(toy_question(5000, True, "endpoint"), "uniquezumab", "A unique condition")
    out = TargetPriors().fit_transform(qs + [lone], np.append(y, 1))
    assert out[-1, 0] == pytest.approx(TargetPriors().fit_transform(qs + [lone], np.append(y, 0))[-1, 0])
    fresh = enc.transform([_with_drug(toy_question(9000, True, "endpoint"), "vildagliptin", "x")])
    assert fresh[0, 1] > 0.3  # a new DPP-4 inhibitor gets the class prior


def test_logreg_with_priors_learns_and_cached_fits_match_uncached_ones():
    train, test = toy_questions(240), toy_questions(80, start=1000)
    plain = make_predictor("logreg", min_df=2, priors=True)
    plain.fit(train)
    expected = [x for p in plain.predict(test) for x in p.probabilities]
    assert evaluate(test, plain.predict(test), n_bootstrap=0)["overall"]["weighted_accuracy"] > 0.9
    with features.cached():
        for C in (0.3, 0.3, 1.0):  # the second and third share the first one's feature matrices
            shared = make_predictor("logreg", min_df=2, priors=True, C=C)
            shared.fit(train)
            got = [x for p in shared.predict(test) for x in p.probabilities]
            if C == 0.3:
                assert np.allclose(got, expected)
        assert features._CACHE  # the memo is live inside the block ...
    assert features._CACHE is None  # ... and dropped after it


def test_memo_keeps_values_per_question_object():
    a, b = toy_question(1, True), toy_question(2, False)
    with features.cached():
        fa = features.structured_features(a)
        assert features.structured_features(a) is fa
        assert features.structured_features(b) is not fa
        assert features.endpoint_text(a) == features.endpoint_text(toy_question(1, True))


def test_identical_models_are_fitted_once_inside_a_cached_block():
    train = toy_questions(160)
    with features.cached():
        alone = make_predictor("logreg", min_df=2)
        alone.fit(train)
        ensemble = make_predictor("ensemble", members=["logreg", "knn_history"],
                                  member_options={"logreg": {"min_df": 2}, "knn_history": {"k": 15}})
        ensemble.fit(train)
        other_c = make_predictor("logreg", min_df=2, C=1.0)
        other_c.fit(train)
    assert ensemble.members[0].models["*"] is alone.models["*"]  # the same fit, shared
    assert other_c.models["*"][2] is not alone.models["*"][2]  # another C: another classifier ...
    assert other_c.models["*"][0].fitted == alone.models["*"][0].fitted  # ... on the same feature blocks
    outside = make_predictor("logreg", min_df=2)
    outside.fit(train)
    assert outside.models["*"] is not alone.models["*"]


_PRIORS_DIGEST = """
import hashlib
from deepimagine_core.evaluation.base import targets
from deepimagine_core.evaluation.priors import TargetPriors
from tests.core.test_eval_predictors import toy_questions
qs = toy_questions(300)
words = ["asthma", "diabetes", "obesity", "migraine", "psoriasis", "anemia", "gout", "sepsis", "eczema", "glaucoma"]
for i, q in enumerate(qs):  # titles of several condition words each: key sets whose iteration order a hash seed sets
    q.brief_title = " ".join(words[(i + k * 3) % len(words)] for k in range(i % 5 + 2))
enc = TargetPriors()
out = enc.fit_transform(qs, targets(qs)).tobytes() + enc.transform(qs[:50]).tobytes()
print(hashlib.sha256(out).hexdigest())
"""


def test_priors_do_not_depend_on_the_hash_seed():
    """The same questions give bit-identical priors in processes with different string hash seeds (set iteration
    order): trees split on exact values, so last-bit differences changed `hgb`'s benchmark figures between runs."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    digests = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-c", _PRIORS_DIGEST], env=env, cwd=root, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1, digests
