"""The evaluation report: every file written, the exact evaluation.json shape, predictions and trajectories."""

import json

import pytest

from deepimagine_core.evaluation.predictors import Prediction, register_predictor
from deepimagine_core.evaluation.report import write_report
from deepimagine_core.evaluation.run import run_predictors
from tests.core.test_eval_predictors import toy_questions


class _TalkingPredictor:
    """Answers with text and a two-step trajectory, like the LLM predictors."""

    name = "talking_test"

    def fit(self, train):
        pass

    def predict(self, questions):
        out = []
        for i, q in enumerate(questions):
            text = "DECISION: (1, 1, 2)" if len(q.options) == 3 else ("garbled" if i == 0 else "DECISION: (0.7, 0.3)")
            steps = [{"factor": "arm", "imagined": "better"}, {"factor": "outcome", "imagined": "no change"}]
            out.append(Prediction.from_text(text, len(q.options), trajectory=steps))
        return out

    def describe(self):
        return {"model_id": "fake", "note": "a test double"}


register_predictor("talking_test", _TalkingPredictor, replace=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    train = toy_questions(160)
    leak = toy_questions(4, start=5000)  # trials that are also in the benchmark: must be dropped from training
    benchmarks = {"toy_open": toy_questions(40, start=5000), "historical_test": toy_questions(24, start=9000)}
    results = run_predictors(
        benchmarks, train + leak, ["majority", "logreg", "talking_test"],
        predictor_kwargs={"logreg": {"min_df": 2}}, exclude_nct_ids={q.nct_id for q in benchmarks["toy_open"]},
        n_bootstrap=50, log=lambda _msg: None,
    )
    root = tmp_path_factory.mktemp("reports")
    return results, write_report(root, results), root


def test_evaluation_json_has_the_contracted_shape(report):
    results, files, root = report
    data = json.loads((root / "evaluation.json").read_text())
    assert set(data) == {"toy_open", "historical_test"}
    for bench, predictors in data.items():
        assert set(predictors) == {"majority", "logreg", "talking_test"}
        for label, s in predictors.items():
            assert set(s["overall"]) == {"weighted_accuracy", "macro_f1", "cross_entropy"}
            assert s["n_questions"] == (40 if bench == "toy_open" else 24)
            assert set(s["categories"]) <= {"2-way_explicit", "2-way_implicit", "3-way_explicit", "3-way_implicit"}
            for cat in s["categories"].values():
                assert {"weighted_accuracy", "macro_f1", "cross_entropy", "n_questions", "intervals", "confusion"} <= set(cat)
            assert set(s["intervals"]) == {"weighted_accuracy", "macro_f1", "cross_entropy"}
            assert "n_unparsed" in s and "auc_2way_explicit" in s
            assert set(s["trial_balanced"]) == set(s["overall"])
    assert data["toy_open"]["talking_test"]["n_unparsed"] == 1
    assert data["toy_open"]["talking_test"]["predictor"]["note"] == "a test double"
    assert data["toy_open"]["majority"]["overall"]["weighted_accuracy"] == pytest.approx(0.5)
    assert data["toy_open"]["logreg"]["overall"]["weighted_accuracy"] > 0.8
    assert results.training["historical"] == {"n_questions": 160, "n_trials": 160, "n_dropped_benchmark_trials": 4,
                                              "n_dropped_unanswered": 0}


def test_predictions_one_line_per_question(report):
    _, files, root = report
    path = root / "predictions" / "toy_open" / "logreg.jsonl"
    assert path in files.predictions and len(files.predictions) == 6
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 40
    assert set(lines[0]) == {"nct_id", "endpoint_key", "question_index", "probabilities", "parsed"}
    assert sum(lines[0]["probabilities"]) == pytest.approx(1.0)


def test_figures_markdown_html_and_trajectories(report):
    _, files, root = report
    assert sorted(files.trajectories) == [root / "trajectories" / "historical_test" / "talking_test.jsonl",
                                          root / "trajectories" / "toy_open" / "talking_test.jsonl"]
    for fig in files.figures:
        assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (root / "figures" / "toy_open" / "categories.png") in files.figures
    assert (root / "figures" / "toy_open" / "confusion_logreg.png") in files.figures
    md = files.markdown.read_text()
    assert "## Benchmark: toy_open" in md and "| logreg |" in md
    assert "| trial-balanced w. acc. |" in md
    assert "figures/toy_open/reliability.png" in md
    from deepimagine_core.evaluation.selection import REFERENCE
    assert "## Reference predictor" in md and f"`{REFERENCE.name}` ({REFERENCE.label})" in md
    assert "## LLM trajectories" in md and "step 2: factor: outcome; imagined: no change" in md
    assert "data:image/png;base64," in files.markdown_embedded
    html = files.html.read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html and "figures/toy_open/categories.png" in html


def test_a_failing_predictor_is_named_not_scored_zero():
    class Broken:
        name = "broken_test"

        def fit(self, train):
            raise RuntimeError("backend unavailable")

        def predict(self, questions):
            return []

    register_predictor("broken_test", Broken, replace=True)
    with pytest.raises(RuntimeError, match="'broken_test' failed to train: RuntimeError: backend unavailable"):
        run_predictors({"b": toy_questions(4)}, toy_questions(8, start=100), ["broken_test"], n_bootstrap=0,
                       log=lambda _m: None)
