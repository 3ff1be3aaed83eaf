"""Data builders: SFT examples from natural pairs + accepted traces, GRPO prompts from approximate pairs + historical
questions, held-out evaluation examples; small tables written here in the producers' schemas."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from deepimagine_core.pairs.natural import NATURAL_PAIRS
from deepimagine_core.pairs.historical import HISTORICAL_QUESTIONS
from deepimagine_core.questions import Question
from deepimagine_core.training.data import (
    eval_examples,
    grpo_examples,
    read_jsonl,
    sft_examples,
    synthetic_pair,
    synthetic_sft_examples,
    write_jsonl,
)


def table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema=schema)


def natural_pairs() -> pa.Table:
    rows = [synthetic_pair(i, factor="arm") for i in range(3)]
    rows += [synthetic_pair(i, factor="outcome") for i in range(2)]
    rows += [synthetic_pair(9, factor="arm", split="test")]
    bad = synthetic_pair(10)
    bad["change_direction"] = None  # not comparable: no observed direction
    return table(rows + [bad], NATURAL_PAIRS)


def traces() -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"pair_id": "synthetic-arm-0", "trace": "Dose up, effect up.\nDIRECTION: down", "accepted": True},
            {"pair_id": "synthetic-arm-0", "trace": "Second view.\nDIRECTION: down", "accepted": True},
            {"pair_id": "synthetic-arm-1", "trace": "DIRECTION: same", "accepted": False},
            {"pair_id": "synthetic-outcome-0", "trace": "Later week.\nDIRECTION: down", "accepted": True},
            {"pair_id": "synthetic-arm-9", "trace": "test pair: never trained on", "accepted": True},
        ]
    )


def question_row(i: int, split: str, answer: int | None, n_options: int = 2) -> dict:
    q = Question(
        nct_id=f"NCT{i:08d}", endpoint_key=f"outcome:{i}", question_index=0, brief_title=f"Drug {i} vs placebo",
        endpoint={"measure": "Change in HbA1c", "timeFrame": "Week 12"},
        arms=[{"label": "Drug", "type": "EXPERIMENTAL"}, {"label": "Placebo", "type": "PLACEBO_COMPARATOR"}],
        meta_label="single_arm", options=[f"option {k}" for k in range(n_options)], answer=answer,
    )
    return {**q.to_row(), "split": split, "question_id": f"q{i}"}


def test_sft_examples_join_accepted_traces_of_training_pairs():
    built = sft_examples(natural_pairs(), traces(), ["arm", "outcome"])
    assert [(r["pair_id"], r["factor"]) for r in built.rows] == [
        ("synthetic-arm-0", "arm"), ("synthetic-arm-0", "arm"), ("synthetic-outcome-0", "outcome")]
    first = built.rows[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert "DIRECTION: up|down|same" in first["prompt"][1]["content"]  # the operator's step format
    assert "-0.5" not in first["prompt"][1]["content"]  # the observed result of C' is never in the prompt
    assert first["completion"] == [{"role": "assistant", "content": "Dose up, effect up.\nDIRECTION: down"}]
    assert built.counts == {"examples_arm": 2, "examples_outcome": 1, "pairs": 2}
    assert built.skipped == {"no_accepted_trace": 4, "not_train_split": 1}
    assert built.summary()["examples"] == 3


def test_sft_examples_answer_only_for_untraced_pairs_and_factor_filter():
    built = sft_examples(natural_pairs(), traces(), ["arm"], untraced="answer_only")
    by_pair = {r["pair_id"]: r["completion"][0]["content"] for r in built.rows}
    assert by_pair["synthetic-arm-1"].startswith("DIRECTION: up\n")
    assert "\nRESULT: " in by_pair["synthetic-arm-1"] and "-0.51" in by_pair["synthetic-arm-1"]  # observed C'
    assert by_pair["synthetic-arm-0"] == "Second view.\nDIRECTION: down"  # a traced pair keeps its traces
    assert built.counts["examples_answer_only"] == 2
    assert built.skipped["other_factor"] == 2 and built.skipped["not_train_split"] == 1
    assert sum(v for k, v in built.skipped.items() if k.startswith("invalid")) == 1  # no direction: counted


def test_missing_columns_are_a_clear_error():
    with pytest.raises(ValueError, match=r"'natural_pairs' lacks columns \['split'\]"):
        sft_examples([{"pair_id": "p", "factor": "arm"}], traces())
    with pytest.raises(ValueError, match="'reasoning_traces' lacks columns"):
        sft_examples(natural_pairs(), [{"pair_id": "p"}])


def approximate_pair(pair_id: str, source: str, target: str, split: str = "train") -> dict:
    """A row in the pairs team's `approximate_pairs` columns (trial level: no results of its own)."""
    return {"pair_id": pair_id, "factor": "population", "source_nct_id": source, "target_nct_id": target,
            "split": split, "similarity": 0.8, "rank": 0, "differing_attributes": ["population.conditions"],
            "differing_factors": ["population"], "difference": "conditions: type 2 diabetes → type 1 diabetes"}


def test_grpo_examples_carry_verifiable_answers():
    questions = table(
        [question_row(0, "train", 1), question_row(1, "train", 2, n_options=3), question_row(2, "test", 0),
         question_row(3, "train", None)],
        HISTORICAL_QUESTIONS,
    )
    approx = [approximate_pair("ap0", "NCT00000001", "NCT00000000"),  # T=0 asked from S=1's known result
              approximate_pair("ap1", "NCT00000000", "NCT00000009"),  # T has no question: counted, skipped
              approximate_pair("ap2", "NCT00000000", "NCT00000001", split="test")]
    built = grpo_examples(approx, questions, natural_pairs())
    by_source = {}
    for row in built.rows:
        by_source.setdefault(row["source"], []).append(row)
    direct = sorted({r["id"]: r for r in by_source["historical_questions"]}.values(), key=lambda r: r["id"])
    assert [(r["answer"], r["n_options"], r["task"]) for r in direct] == [(1, 2, "question"), (2, 3, "question")]
    assert "DECISION: (p1, p2, p3)" in direct[1]["prompt"][-1]["content"]
    # class balance: every (category, collapsed class) and every step direction as often as the largest
    assert Counter(r["balance"] for r in built.rows if r["task"] == "question") == {
        "2-way_explicit:0": 2, "3-way_explicit:0": 2}
    (transfer,) = {r["id"]: r for r in by_source["approximate_pairs"]}.values()
    text = transfer["prompt"][-1]["content"]
    assert (transfer["answer"], transfer["n_options"], transfer["factor"]) == (1, 2, "population")
    assert "historical trial NCT00000001 (observed result): option 2" in text  # the anchor's known answer
    assert "population: conditions: type 2 diabetes → type 1 diabetes" in text and "Drug 0 vs placebo" in text
    steps = by_source["natural_pairs"]
    assert {(r["task"], r["answer"]) for r in steps} == {("step", None)} and len({r["id"] for r in steps}) == 5
    assert sorted({r["id"]: r["direction"] for r in steps if r["factor"] == "arm"}.values()) == ["down", "same", "up"]
    assert {k: v for k, v in built.counts.items() if not k.startswith(("class_", "prompts_"))} == {
        "question_2-way_explicit": 1, "question_3-way_explicit": 1, "approximate_population": 1, "step_arm": 3,
        "step_outcome": 2}
    assert {k: v for k, v in built.skipped.items() if not k.startswith("natural_invalid")} == {
        "question_not_train_split": 1, "question_no_answer": 1, "approximate_without_questions": 1,
        "approximate_not_train_split": 1, "natural_not_train_split": 1}
    sampled = grpo_examples(approx, questions, max_prompts=2, seed=1)
    assert len({r["id"] for r in sampled.rows}) == 2 and sampled.skipped["over_max_prompts"] == 1
    assert grpo_examples(None, None).rows == []


def test_eval_examples_are_held_out_pairs_with_directions():
    examples = eval_examples(natural_pairs(), "arm")
    assert [(e["pair_id"], e["direction"]) for e in examples] == [("synthetic-arm-9", "down")]
    assert eval_examples(natural_pairs(), "outcome") == []
    assert len(eval_examples(natural_pairs(), "arm", split="train", limit=2)) == 2


def test_jsonl_round_trip_and_bad_lines(tmp_path):
    rows = synthetic_sft_examples(3)
    path = write_jsonl(rows, tmp_path / "data" / "sft.jsonl")
    assert read_jsonl(path) == rows
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError, match=r"sft\.jsonl:4"):
        read_jsonl(path)
