"""One step format for traces, operator training data and the pathway: the same pair rendered by each matches field
for field (same template id, same StepInput fields, same chat messages)."""

from __future__ import annotations

import json

import pyarrow as pa

from deepimagine_core.llm.backends import SamplingParams
from deepimagine_core.llm.pathway import PathwayConfig, run_pathway
from deepimagine_core.llm.prompts import template_id
from deepimagine_core.llm.steps import significance_change, step_messages, with_numbers
from deepimagine_core.llm.traces import generate_traces
from deepimagine_core.pairs.natural import NATURAL_PAIRS
from deepimagine_core.questions import Question
from deepimagine_core.training.data import sft_examples, synthetic_pair
from deepimagine_core.training.operator_data import rl_operator_examples
from tests.scripted_backend import ScriptedBackend
from tests.core.test_llm_pathway import FixedRetriever
from tests.core.test_training_data import approximate_pair

STEP_FIELDS = ("factor", "old_value", "new_value", "current_result", "numbers", "observed", "template")


def trial_question(nct: str, drug: str, answer: int, split: str = "train") -> Question:
    return Question(
        nct_id=nct, endpoint_key="outcome:0", question_index=0, brief_title=f"{drug} in type 2 diabetes",
        endpoint={"measure": "HbA1c change", "timeFrame": "Week 12"},
        arms=[{"label": "Active", "type": "EXPERIMENTAL", "interventionNames": [f"Drug: {drug}"]},
              {"label": "Control", "type": "PLACEBO_COMPARATOR", "interventionNames": ["Drug: placebo"]}],
        meta_label="single_arm", options=[f"{drug} significantly better", f"{drug} not significantly better"],
        answer=answer, extra={"split": split},
    )


def question_rows(*questions: Question) -> list[dict]:
    """Rows of `historical_questions`: the numbers are columns there (p-value, parameter, CI)."""
    return [{**q.to_row(), "split": q.extra["split"], "p_value": 0.01 if q.answer == 0 else 0.4,
             "param_type": "Mean Difference", "ci_lower": None, "ci_upper": None} for q in questions]


def test_natural_pair_trace_and_sft_example_share_the_step():
    pairs = pa.Table.from_pylist([synthetic_pair(1)], schema=NATURAL_PAIRS)
    traces = generate_traces(pairs, ScriptedBackend(lambda m, i: "DIRECTION: up\nSIZE: large\nRESULT: x"), 1,
                             SamplingParams(temperature=0.0, max_new_tokens=8))
    [example] = sft_examples(pairs, traces.set_column(traces.schema.get_field_index("accepted"), "accepted",
                                                      pa.array([True])), ("arm",)).rows
    trace = traces.to_pylist()[0]
    assert example["prompt"] == json.loads(trace["step_messages"])  # what SFT trains on = what the teacher explained
    assert json.loads(trace["prompt"])[-1]["content"].startswith(example["prompt"][-1]["content"])
    assert example["template"] == example["step"]["template"] == template_id("step")
    assert example["step"]["factor"] == "arm" and example["step"]["observed"] is True


def test_approximate_pair_example_matches_the_pathway_step_field_for_field():
    source, target = trial_question("NCT1", "metformin", 1), trial_question("NCT2", "semaglutide", 0)
    rows = question_rows(source, target)
    pair = {**approximate_pair("ap", "NCT1", "NCT2"), "factor": "intervention"}
    built = rl_operator_examples([pair], rows, {}, "intervention")
    example = built.rows[0]
    assert {r["id"] for r in built.rows} == {"approximate:ap"}
    assert example["direction"] == significance_change(source, target) == "up"  # not significant -> significant

    seen = []

    def respond(messages, i):
        seen.append(messages)
        return "DIRECTION: up\nSIZE: small\nRESULT: better\nEXPLANATION: x" if "Factor changed" in messages[-1][
            "content"] else "DECISION: (0.5, 0.5)"

    target_unanswered = Question(**{**target.__dict__, "answer": None})
    numbers = {q.key: {"p_value": r["p_value"], "param_type": r["param_type"]} for q, r in zip([source], rows)}
    [anchor] = with_numbers([source], numbers)  # what DeepImaginePredictor.fit does with the store's table
    [result] = run_pathway([target_unanswered], FixedRetriever({"NCT2": [anchor]}), ScriptedBackend(respond),
                           PathwayConfig(k=1))
    first = result.trajectories[0]["steps"][0]
    for name in STEP_FIELDS:
        assert first["input"][name] == example["step"][name], name
    assert first["input"]["template"] == example["template"] == template_id("step")
    assert seen[0] == example["prompt"] == step_messages_of(example)
    assert first["input"]["numbers"] == "p = 0.4 (Mean Difference)"  # the anchor's numbers, where its record has them


def step_messages_of(example: dict) -> list[dict[str, str]]:
    from deepimagine_core.llm.steps import StepInput

    fields = {k: v for k, v in example["step"].items() if k != "template"}
    return step_messages(StepInput(**fields))
