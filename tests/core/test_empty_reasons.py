"""The reasons an empty table, operator or report gives (deepimagine_core.pairs.empty, evaluation.inputs,
training.sft.untrained_operators)."""

import pyarrow as pa

from deepimagine_core.evaluation.inputs import empty_reasons, evaluation_inputs, historical_split
from deepimagine_core.pairs.empty import why_no_approximate_pairs, why_no_questions, why_no_traces
from deepimagine_core.questions import Question
from deepimagine_core.store import Store
from deepimagine_core.training.recipes import load_recipe
from deepimagine_core.training.sft import untrained_operators


def test_approximate_pairs_reasons_per_factor():
    stats = {"intervention": 3, "population": 0, "population_spanning_dropped": 2, "geography": 0, "design": 0}
    reasons = why_no_approximate_pairs(stats, 12)
    assert set(reasons) == {"population", "geography", "design"}
    assert "join a training trial to a test trial" in reasons["population"]
    assert "no two of the 12 trials" in reasons["geography"]
    assert set(why_no_approximate_pairs({}, 1).values()) == {"no approximate pairs: fewer than 2 trials (1) to pair"}


def test_questions_and_traces_reasons():
    assert why_no_questions(4, 2, {}) == ""
    assert "one-arm trial (7)" in why_no_questions(0, 3, {"one-arm trial": 7, "equal values": 1})
    assert why_no_traces({"pairs_to_trace": 0, "pairs_not_train": 5}, 0) == (
        "no new traces: no training-split natural pair left to trace (5 not on the training split)")
    assert why_no_traces({"pairs_to_trace": 2}, 4) == ""


def test_untrained_operators_per_factor_and_multi():
    recipe = load_recipe("sft_cpu_tiny", {})
    assert untrained_operators(recipe, [{"factor": "arm"}]) == {"sft_outcome": "0 examples of factor outcome"}
    multi = load_recipe("sft_cpu_tiny", {"per_factor": False})
    assert untrained_operators(multi, [{"factor": "arm"}]) == {}
    assert list(untrained_operators(multi, [])) == ["sft_multi"]


def test_evaluation_empty_reasons(tmp_path):
    q = Question(nct_id="NCT1", endpoint_key="outcome:0", question_index=0, brief_title="t", endpoint={},
                 arms=[], meta_label="single_arm", options=["a", "b"], answer=0)
    other = Question(**{**q.__dict__, "question_index": 1, "answer": 1})
    store = Store(tmp_path)
    store.write_table("historical_questions", pa.Table.from_pylist([{**x.to_row(), "split": "train"} for x in (q, other)]))
    train, test, counts = historical_split(store)
    assert (len(train), len(test), counts) == (2, 0, {"train": 2})
    (reason,) = empty_reasons(train, {}, counts)
    assert reason.startswith("nothing to score: no CT Open file is configured")
    assert empty_reasons(train, {"historical_test": [q]}, counts) == []
    assert empty_reasons([], {}, {})[0].startswith("no historical questions")
    assert evaluation_inputs(store).why_empty == [reason]
    # every training answer on one side (a small source): nothing to learn a decision from, said in words
    (one_sided,) = empty_reasons(train[:1], {"historical_test": [q]}, {"train": 1})
    assert one_sided.startswith("one-sided training questions: all 1 training questions have a positive answer")
