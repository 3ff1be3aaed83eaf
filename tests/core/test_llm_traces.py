"""Reasoning traces: verdict logic with a scripted teacher, training split only, re-runs skip done pairs, counts."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from deepimagine_core.llm.backends import SamplingParams
from deepimagine_core.pairs.natural import NATURAL_PAIRS
from tests.scripted_backend import ScriptedBackend
from deepimagine_core.llm.traces import (
    TRACES_SCHEMA,
    acceptance_by_factor,
    generate_traces,
    pair_view,
    select_pairs,
    verdict,
)


def context(dose: str, group: str) -> str:
    return json.dumps({
        "nct_id": "NCT01", "brief_title": "Drug X in type 2 diabetes", "conditions": ["Diabetes"], "phases": ["PHASE2"],
        "arm": {"label": group, "type": "EXPERIMENTAL", "interventionNames": ["Drug: X"]},
        "group": {"id": "OG000", "title": group, "description": None},
        "dose": {"values": [float(dose)], "unit": "mg", "frequency": "daily", "route": None, "text": f"{dose} mg daily"},
        "outcome": {"title": "Change in HbA1c", "description": "From baseline", "time_frame": "Week 12",
                    "type": "PRIMARY", "param_type": "MEAN", "unit": "percent", "dispersion_type": "SD"},
        "class_title": None, "category_title": None,
    })


def result(value: float) -> str:
    return json.dumps({"value": value, "value_raw": str(value), "dispersion": 0.9, "dispersion_type": "SD",
                       "lower": None, "upper": None, "n": 40, "param_type": "MEAN", "unit": "percent"})


def natural_pairs_table() -> pa.Table:
    """Rows in the pairs team's `natural_pairs` schema."""
    rows = [
        # pair_id, factor, split, change_direction, change_band
        ("p-up", "arm", "train", "up", "large"),
        ("p-down", "arm", "train", "down", None),
        ("p-same", "outcome", "train", "same", "same"),
        ("p-test", "arm", "test", "up", "small"),
    ]
    return pa.Table.from_pylist(
        [
            {
                "pair_id": pid, "factor": factor, "split": split, "source_nct_id": "NCT01", "target_nct_id": "NCT01",
                "is_dose_ranging": factor == "arm", "difference": "dose: 10 mg daily → 20 mg daily",
                "source_context": context("10", "X 10 mg"), "target_context": context("20", "X 20 mg"),
                "source_result": result(-0.5), "target_result": result(-0.9), "source_value": -0.5,
                "target_value": -0.9, "comparable": direction is not None, "change_direction": direction,
                "change_band": band,
            }
            for pid, factor, split, direction, band in rows
        ],
        schema=NATURAL_PAIRS,
    )


def teacher(messages, i):
    """Sample 0 says up/large, sample 1 says down/small, sample 2 is unparseable."""
    return ["Higher dose, more effect.\n**DIRECTION:** up\nSIZE: large\nRESULT: bigger fall\nEXPLANATION: dose.",
            "DIRECTION: down\nSIZE: small\nRESULT: smaller\nEXPLANATION: saturation.",
            "I am not sure."][i]


def test_verdicts_against_observed_change():
    table = generate_traces(natural_pairs_table(), ScriptedBackend(teacher, "teacher-x"), 3,
                            SamplingParams(temperature=0.8, max_new_tokens=64))
    assert table.schema == TRACES_SCHEMA
    got = {(r["pair_id"], r["sample_index"]): r["verdict"] for r in table.to_pylist()}
    assert got == {
        ("p-up", 0): "accepted", ("p-up", 1): "wrong_direction", ("p-up", 2): "unparsed",
        ("p-down", 0): "wrong_direction", ("p-down", 1): "accepted", ("p-down", 2): "unparsed",  # no size band: any size
        ("p-same", 0): "wrong_direction", ("p-same", 1): "wrong_direction", ("p-same", 2): "unparsed",
    }
    row = table.filter(pa.compute.equal(table["trace_id"], "p-up#0")).to_pylist()[0]
    assert row["accepted"] and row["size_match"] is True and row["model_id"] == "teacher-x"
    assert row["template"] == "trace.v2"
    assert json.loads(row["sampling_params"])["n"] == 3 and json.loads(row["sampling_params"])["temperature"] == 0.8
    teacher_prompt = json.loads(row["prompt"])[1]["content"]
    step_prompt = json.loads(row["step_messages"])[1]["content"]
    assert "The observed result after the change was: Outcome: Change in HbA1c [Week 12]" in teacher_prompt
    assert "MEAN -0.9 percent (SD 0.9; n = 40)" in teacher_prompt
    assert teacher_prompt.startswith(step_prompt)  # the teacher sees the very step the operator is trained on
    assert "Result before the change (observed): Outcome: Change in HbA1c [Week 12]" in step_prompt
    assert "Before: Arm: X 10 mg [EXPERIMENTAL]; interventions: Drug: X; Group: X 10 mg; Dose: 10 mg daily" in step_prompt
    assert "After: Arm: X 20 mg [EXPERIMENTAL]; interventions: Drug: X; Group: X 20 mg; Dose: 20 mg daily" in step_prompt
    assert "-0.9" not in step_prompt  # the operator's prompt hides the answer


def test_size_band_is_checked_when_known():
    rows = natural_pairs_table().to_pylist()
    pair = pair_view(rows[0])  # up, large
    assert verdict("up", "large", pair) == ("accepted", True)
    assert verdict("up", "small", pair) == ("wrong_size", False)
    assert verdict("down", "large", pair) == ("wrong_direction", None)
    assert verdict(None, None, pair) == ("unparsed", None)
    negligible = pair_view({**rows[0], "change_band": "negligible"})  # up by < 5%
    assert negligible.size == "small"
    assert verdict("same", None, negligible) == ("accepted", None) and verdict("up", "small", negligible)[0] == "accepted"
    assert verdict("down", "small", negligible)[0] == "wrong_direction"


def test_only_train_split_and_done_pairs_skipped():
    backend = ScriptedBackend(teacher)
    sel = select_pairs(natural_pairs_table(), done_ids={"p-up"}, max_pairs=1)
    assert [p.pair_id for p in sel.todo] == ["p-down"]
    assert sel.counts() == {"pairs_to_trace": 1, "pairs_done_before": 1, "pairs_not_train": 1,
                                 "pairs_over_limit": 1, "pairs_invalid": 0, "pairs_invalid_reasons": {}}
    table = generate_traces(natural_pairs_table(), backend, 1, SamplingParams(), done_ids=["p-up", "p-down"])
    assert set(table["pair_id"].to_pylist()) == {"p-same"}
    assert all(len(call["messages_batch"]) == 1 for call in backend.calls)


def test_unreadable_pairs_are_counted_not_dropped_silently():
    rows = natural_pairs_table().to_pylist()
    rows[0]["change_direction"] = None  # not comparable
    rows[1]["target_result"] = None
    sel = select_pairs(pa.Table.from_pylist(rows))
    assert sel.pairs_invalid == {"change_direction": 1, "target_result": 1}
    assert [p.pair_id for p in sel.todo] == ["p-same"]


def test_acceptance_by_factor():
    table = generate_traces(natural_pairs_table(), ScriptedBackend(teacher), 3, SamplingParams())
    stats = acceptance_by_factor(table)
    assert stats["arm"]["traces"] == 6 and stats["arm"]["accepted"] == 2
    assert stats["arm"]["acceptance_rate"] == pytest.approx(2 / 6) and stats["arm"]["pairs_with_accepted_trace"] == 2
    assert stats["outcome"]["accepted"] == 0 and stats["outcome"]["parse_rate"] == pytest.approx(2 / 3)
