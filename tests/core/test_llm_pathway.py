"""The imagination pathway with a scripted backend (factor order, skipping, carrying forward, aggregation, adapters),
the three LLM predictors, trajectory files, and one end-to-end run with the tiny model on CT Open-format records."""

from __future__ import annotations

import gzip
import json
import re

import pytest

import deepimagine_core.llm.llm_predictors  # noqa: F401  (registers the LLM predictors)
from deepimagine_core.evaluation.predictors import Prediction, make_predictor
from deepimagine_core.llm import tiny
from deepimagine_core.llm.backends import SamplingParams, TransformersBackend
from deepimagine_core.llm.factors import configuration_of, plan_changes
from deepimagine_core.llm.pathway import (
    IndexAnchorRetriever,
    PathwayConfig,
    render_trajectory,
    run_pathway,
)
from tests.scripted_backend import ScriptedBackend
from deepimagine_core.questions import Question


def question(nct, drug, measure, answer=None, comparator="PLACEBO_COMPARATOR", time="Week 12"):
    return Question(
        nct_id=nct,
        endpoint_key="outcome:0",
        question_index=0,
        brief_title=f"{drug} in type 2 diabetes",
        endpoint={"measure": measure, "timeFrame": time},
        arms=[
            {"label": "Active", "type": "EXPERIMENTAL", "interventionNames": [f"Drug: {drug}"]},
            {"label": "Control", "type": comparator, "interventionNames": ["Drug: placebo"]},
        ],
        meta_label="single_arm",
        options=[f"{drug} significantly better than control", f"{drug} not significantly better than control"],
        answer=answer,
    )


class FixedRetriever:
    def __init__(self, mapping):
        self.mapping = mapping

    def retrieve_many(self, questions, k):
        return [self.mapping.get(q.nct_id, [])[:k] for q in questions]


TARGET = question("NCT9", "semaglutide", "HbA1c change")
A1 = question("NCT1", "metformin", "HbA1c change", answer=0)  # differs in intervention only
A2 = question("NCT2", "metformin", "Body weight", answer=1, comparator="ACTIVE_COMPARATOR")  # intervention, arm, outcome


def step_count(messages):
    """How many imagined steps precede this prompt (read from the carried-forward result)."""
    found = re.search(r"Result before the change \((observed|imagined)\): (.*)", messages[-1]["content"])
    current = found.group(2)
    return 0 if found.group(1) == "observed" else int(current.rsplit("#", 1)[1])


def respond(messages, i):
    user = messages[-1]["content"]
    if "Factor changed:" in user:
        factor = re.search(r"Factor changed: (\w+)", user).group(1)
        return f"**DIRECTION:** up\nSIZE: small\nRESULT: after {factor} #{step_count(messages) + 1}\nEXPLANATION: x"
    if "historical trial NCT1" in user:
        return "DECISION: (0.9, 0.1)"
    return "Decision: (30%, 70%)"


def test_order_skip_carry_forward_and_aggregate():
    backend = ScriptedBackend(respond)
    retriever = FixedRetriever({"NCT9": [A1, A2]})
    [result] = run_pathway([TARGET], retriever, backend, PathwayConfig(k=2))
    t1, t2 = result.trajectories
    assert [s["factor"] for s in t1["steps"]] == ["intervention"]
    assert [s["factor"] for s in t2["steps"]] == ["intervention", "arm", "outcome"]  # default order
    assert {s["factor"]: s["reason"] for s in t2["skipped"]} == {
        "population": "unknown", "geography": "unknown", "design": "unknown"}
    assert {"factor": "outcome", "reason": "same"} in t1["skipped"]
    # carried forward: each step starts from the previous imagined result
    old, new = "Drug: metformin; Drug: placebo", "Drug: placebo; Drug: semaglutide"
    assert t2["steps"][0]["input"] == {"factor": "intervention", "old_value": old, "new_value": new, "from": old,
                                       "to": new, "current_result": A2.options[1], "numbers": "", "observed": True,
                                       "template": "step.v2"}
    assert t2["steps"][1]["input"]["observed"] is False
    assert [s["input"]["current_result"] for s in t2["steps"][1:]] == ["after intervention #1", "after arm #2"]
    assert t2["steps"][-1]["result"] == "after outcome #3"
    assert (t2["steps"][1]["direction"], t2["steps"][1]["size"]) == ("up", "small")
    # aggregation: mean over anchors of (0.9, 0.1) and (0.3, 0.7)
    assert result.parsed and result.probabilities == pytest.approx([0.6, 0.4])
    assert t1["final"]["probabilities"] == pytest.approx([0.9, 0.1]) and t1["templates"]["step"] == "step.v2"
    # batching: one call per step index (two trajectories share step 1), then one answer call for both
    assert [len(c["messages_batch"]) for c in backend.calls] == [2, 1, 1, 2]
    assert not any(k.startswith("_") for k in t1)  # working state is not stored


def test_custom_order_and_per_factor_adapters():
    backend = ScriptedBackend(respond)
    config = PathwayConfig(k=1, order=("outcome", "intervention"), adapters={"outcome": "/ad/outcome"},
                           answer_adapter="/ad/answer")
    [result] = run_pathway([TARGET], FixedRetriever({"NCT9": [A2]}), backend, config)
    steps = result.trajectories[0]["steps"]
    assert [s["factor"] for s in steps] == ["outcome", "intervention"]  # arm is not in this order: never changed
    assert [c["adapter"] for c in backend.calls] == ["/ad/outcome", None, "/ad/answer"]
    with pytest.raises(ValueError, match="unknown factors"):
        plan_changes({}, {}, ("dose",))


def test_unparsed_step_keeps_result_and_is_flagged():
    backend = ScriptedBackend(lambda m, i: "no idea" if "Factor changed:" in m[-1]["content"] else "DECISION: (1, 0)")
    [result] = run_pathway([TARGET], FixedRetriever({"NCT9": [A1]}), backend, PathwayConfig(k=1))
    step = result.trajectories[0]["steps"][0]
    assert not step["parsed"] and step["result"] == A1.options[0]
    assert "⚠ unparsed" in render_trajectory(result.trajectories[0])


def test_no_anchor_falls_back_to_direct_prompt():
    backend = ScriptedBackend(lambda m, i: "garbage")
    [result] = run_pathway([TARGET], FixedRetriever({}), backend, PathwayConfig(k=3))
    assert not result.parsed and result.probabilities == [0.5, 0.5]
    assert result.trajectories[0]["note"] == "no anchor found: direct prompt"
    assert "unparsed (uniform)" in render_trajectory(result.trajectories[0])


def test_trial_rows_add_population_geography_design():
    trial_a = {"conditions": ["Diabetes"], "countries": ["France"], "phases": ["PHASE3"], "sex": "ALL"}
    trial_t = {"conditions": ["diabetes"], "countries": ["Japan", "France"], "phases": ["PHASE3"], "sex": "ALL"}
    changes, skipped = plan_changes(configuration_of(A1, trial_a), configuration_of(TARGET, trial_t))
    assert changes == ["intervention", "geography"]
    assert {s["factor"] for s in skipped} == {"arm", "outcome", "population", "design"}


def test_index_retriever_excludes_own_trial():
    own = question("NCT9", "semaglutide", "HbA1c change", answer=0)
    other = question("NCT4", "semaglutide", "HbA1c change", answer=1, time="Week 26")
    far = question("NCT5", "aspirin", "stroke", answer=1)
    retriever = IndexAnchorRetriever([own, other, far, question("NCT6", "x", "y")])  # unanswered ones are ignored
    found = [a.nct_id for a in retriever.retrieve_many([TARGET], 3)[0]]
    assert found[0] == "NCT4" and "NCT9" not in found and "NCT6" not in found  # (NCT5 may fall under a score floor)


def test_predictors_registered_and_predict(tmp_path):
    backend = ScriptedBackend(respond)
    train = [A1, A2]
    for name in ("llm_direct", "llm_rag", "deepimagine"):
        predictor = make_predictor(name, backend=backend, k=2) if name != "llm_direct" else make_predictor(
            name, backend=backend)
        predictor.fit(train)
        [pred] = predictor.predict([TARGET])
        assert isinstance(pred, Prediction) and len(pred.probabilities) == 2 and pred.text
        assert predictor.describe()["model_id"] == "scripted" and predictor.note == ""
    # Prediction.trajectory: every anchor path as flat steps (start, skips, changes, answer), each naming its anchor
    assert [(s["anchor"], s["factor"]) for s in pred.trajectory if "skipped" not in s] == [
        ("NCT1", "start"), ("NCT1", "intervention"), ("NCT1", "answer"),
        ("NCT2", "start"), ("NCT2", "intervention"), ("NCT2", "arm"), ("NCT2", "outcome"), ("NCT2", "answer")]
    sft = make_predictor("deepimagine", backend=backend, predictor_name="deepimagine_sft", adapters={"arm": "/ad/arm"})
    assert sft.name == "deepimagine_sft" and sft.describe()["adapters"] == {"arm": "/ad/arm"}


def _ct_open_record(nct, drug, measure, answer_index):
    options = [f"The study arm {drug} has achieved statistically significant improvements over the study arm "
               f"Placebo with respect to this specific endpoint.",
               f"The study arm {drug} has not achieved statistically significant improvements over the study arm "
               f"Placebo with respect to this specific endpoint."]
    return {
        "nct_id": nct, "endpoint_key": f"{measure}|primary", "brief_title": f"{drug} versus placebo",
        "endpoint": {"measure": measure, "description": "", "timeFrame": "Week 24", "outcome_type": "primaryOutcomes"},
        "arms": [{"label": drug, "type": "EXPERIMENTAL", "interventionNames": [f"Drug: {drug}"]},
                 {"label": "Placebo", "type": "PLACEBO_COMPARATOR", "interventionNames": ["Drug: Placebo"]}],
        "meta_label": "single_arm", "question_list_of_lists": [options], "answer_list_of_lists": [options[answer_index]],
    }


def test_tiny_model_end_to_end_on_ct_open_records(tmp_path_factory, tmp_path):
    from deepimagine_core.evaluation.ct_open import load_file

    path = tmp_path / "mini.jsonl.gz"
    records = [_ct_open_record("NCT90000001", "Drug A", "HbA1c", 0), _ct_open_record("NCT90000002", "Drug B", "Pain", 1),
               _ct_open_record("NCT90000003", "Drug C", "HbA1c at week 24", 0)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in records))
    questions = load_file(path)
    model = tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")
    backend = TransformersBackend(str(model), batch_size=8)
    predictor = make_predictor("deepimagine", backend=backend, k=2,
                               step_params=SamplingParams(temperature=0.0, max_new_tokens=8),
                               params=SamplingParams(temperature=0.0, max_new_tokens=8))
    predictor.fit(questions[:2])
    preds = predictor.predict(questions[2:])
    assert len(preds) == 1 and len(preds[0].probabilities) == 2
    assert sum(preds[0].probabilities) == pytest.approx(1.0)
    steps = preds[0].trajectory
    assert [s["anchor"] for s in steps if s["factor"] == "start"] == ["NCT90000001", "NCT90000002"]
    assert [s["anchor"] for s in steps if s["factor"] == "intervention"] == ["NCT90000001", "NCT90000002"]
    parse = predictor.describe()["parse"]
    assert parse["decision"]["parsed"] + parse["decision"]["failed"] == 2  # counted, whatever the tiny model says
