"""Training assets: called directly (SFT operators, GRPO from an SFT adapter, clear failures), and the `train` assets
materialised with their check on the tiny recipes, from small tables this test writes in the producers' schemas."""

from __future__ import annotations

import json
import shutil
import time

import dagster as dg
import pyarrow as pa
import pytest

from deepimagine_core.llm import tiny
from deepimagine_core.pairs.approximate import APPROXIMATE_PAIRS
from deepimagine_core.pairs.natural import NATURAL_PAIRS
from deepimagine_core.pairs.historical import HISTORICAL_QUESTIONS
from deepimagine_core.questions import Question
from deepimagine_core.training.adapters import operator_adapters, published_adapters
from deepimagine_core.training.data import synthetic_pair
from deepimagine_dagster.defs.training.assets import (
    GRPOPolicyConfig,
    RLOperatorsConfig,
    SFTOperatorsConfig,
    grpo_policy,
    rl_operators,
    sft_operators,
)
from deepimagine_dagster.defs.training.checks import sft_operators_beat_base
from deepimagine_dagster.resources import StoreResource


def write_tables(store) -> None:
    pairs = [synthetic_pair(i, factor=f) for f in ("arm", "outcome") for i in range(3)]
    pairs += [synthetic_pair(10 + i, factor=f, split="test") for f in ("arm", "outcome") for i in range(2)]
    store.write_table("natural_pairs", pa.Table.from_pylist(
        [{n: p.get(n) for n in NATURAL_PAIRS.names} for p in pairs], schema=NATURAL_PAIRS))
    store.write_table("reasoning_traces", pa.Table.from_pylist([
        {"pair_id": "synthetic-arm-0", "trace": "Higher dose, larger effect.\nDIRECTION: down", "accepted": True},
        {"pair_id": "synthetic-arm-1", "trace": "DIRECTION: down", "accepted": False},
    ]))
    approx = [{"pair_id": f"approx-{i}-{factor}", "factor": factor, "source_nct_id": f"NCT0000000{i}",
               "target_nct_id": f"NCT0000000{i + 1}", "split": "train", "similarity": 0.9, "rank": 0,
               "differing_attributes": [f"{factor}.x"], "differing_factors": [factor],
               "difference": "countries: France → Japan"} for i in range(2) for factor in ("geography", "intervention")]
    store.write_table("approximate_pairs", pa.Table.from_pylist(approx, schema=APPROXIMATE_PAIRS))
    questions = []
    for i in range(4):
        q = Question(nct_id=f"NCT{i:08d}", endpoint_key=f"outcome:{i}", question_index=0, brief_title=f"Drug {i}",
                     endpoint={"measure": "HbA1c"},
                     arms=[{"label": "A", "type": "EXPERIMENTAL", "interventionNames": [f"Drug: D{i}"]}],
                     meta_label="single_arm", options=["met", "not met"], answer=i % 2)
        questions.append({**q.to_row(), "question_id": f"q{i}", "split": "train" if i < 3 else "test"})
    store.write_table("historical_questions", pa.Table.from_pylist(
        [{n: q.get(n) for n in HISTORICAL_QUESTIONS.names} for q in questions], schema=HISTORICAL_QUESTIONS))
    store.write_table("trials", pa.Table.from_pylist(
        [{"nct_id": f"NCT{i:08d}", "countries": [("France", "Japan")[i % 2]], "phases": ["PHASE3"]} for i in range(4)]))


@pytest.fixture
def store_res(tmp_path, tmp_path_factory):
    res = StoreResource(home=str(tmp_path / "home"))
    write_tables(res.get())
    # the session's tiny model where the recipes' model "tiny" looks for it: reused, not rebuilt
    shutil.copytree(tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model"),
                    res.get().path("models", "tiny"))
    return res


def test_assets_called_directly(store_res):
    quick = {"max_steps": 2, "save_steps": 2}
    sft = sft_operators(dg.build_asset_context(), SFTOperatorsConfig(overrides=quick), store_res)
    meta = sft.metadata
    assert meta["operators"].value == ["sft_arm", "sft_outcome"] and meta["recipe"] == "sft_cpu_tiny"
    assert meta["sft_arm/global_step"] == 2 and meta["sft_arm/resumed_from"] == "(fresh run)"
    assert meta["data"].value["examples_arm"] == 3 and meta["data"].value["examples_answer_only"] == 5
    assert meta["curves"].value.count("data:image/png;base64,") == 2
    store = store_res.get()
    assert set(published_adapters(store)) == {"sft_arm", "sft_outcome"}
    assert set(operator_adapters(store)) == {"arm", "outcome"}

    again = sft_operators(dg.build_asset_context(), SFTOperatorsConfig(overrides=quick), store_res)
    assert again.metadata["sft_arm/reused"] is True  # same recipe, data and base: nothing retrained

    grpo = grpo_policy(dg.build_asset_context(), GRPOPolicyConfig(overrides=quick, init_from="sft_arm"), store_res)
    assert "grpo" in grpo.metadata["grpo/adapter"].value and grpo.metadata["grpo/global_step"] == 2
    assert grpo.metadata["init_from"].endswith("sft_arm/adapter")
    data = grpo.metadata["data"].value
    assert {k: v for k, v in data.items() if not k.startswith(("class_", "prompts_", "examples"))} == {
        "question_2-way_explicit": 3, "approximate_geography": 2, "approximate_intervention": 2, "step_arm": 3,
        "step_outcome": 3, "skipped_question_not_train_split": 1, "skipped_natural_not_train_split": 4,
        "init_from": str(store.path("models", "sft_arm", "adapter"))}
    assert data["class_2-way_explicit:1"] == 4 and data["class_2-way_explicit:0"] == 3  # before balancing
    assert "grpo" in published_adapters(store)

    rl = rl_operators(dg.build_asset_context(), RLOperatorsConfig(overrides=quick), store_res)
    assert rl.metadata["operators"].value == ["grpo_context", "grpo_intervention"]
    assert rl.metadata["grpo_context/global_step"] == 2
    assert rl.metadata["data"].value["context"]["prompts_geography"] == 2
    assert set(operator_adapters(store)) == {"arm", "outcome", "intervention", "context"}
    card = (store.path("models", "grpo_context", "adapter") / "README.md").read_text()
    assert "The `context` counterfactual operator" in card and "design, geography, population" in card
    assert "step template `step.v2`" in card and "| prompts_geography | 2 |" in card


def test_no_examples_skips_with_the_reason_and_misconfiguration_fails_clearly(store_res):
    # no accepted trace for factor outcome: the operator is skipped and says why, no adapter is published
    skipped = sft_operators(dg.build_asset_context(),
                            SFTOperatorsConfig(overrides={"untraced_pairs": "skip", "factors": ["outcome"]}), store_res)
    assert skipped.metadata["skipped"].value == {"sft_outcome": "0 examples of factor outcome"}
    assert skipped.metadata["operators"].value == [] and skipped.metadata["dagster/row_count"] == 0
    assert "sft_outcome" not in published_adapters(store_res.get())
    with pytest.raises(ValueError, match="init_from='sft_nope'"):
        grpo_policy(dg.build_asset_context(), GRPOPolicyConfig(init_from="sft_nope"), store_res)


def test_materialize_train_assets_with_tiny_recipes(store_res):
    started = time.monotonic()
    result = dg.materialize(
        [sft_operators, rl_operators, grpo_policy, sft_operators_beat_base],
        resources={"store": store_res},
        run_config={"ops": {"sft_operators_sft_operators_beat_base": {"config": {"max_new_tokens": 16}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    sft_meta = result.asset_materializations_for_node("sft_operators")[0].metadata
    assert sft_meta["sft_arm/global_step"].value == 10 and sft_meta["sft_outcome/global_step"].value == 10
    rl_meta = result.asset_materializations_for_node("rl_operators")[0].metadata
    assert rl_meta["grpo_intervention/global_step"].value == 4 and rl_meta["grpo_context/global_step"].value == 4
    grpo_meta = result.asset_materializations_for_node("grpo_policy")[0].metadata
    assert grpo_meta["grpo/global_step"].value == 4 and "final_reward" in json.dumps(list(grpo_meta))
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "sft_operators_beat_base" and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["sft_arm/n_pairs"].value == 2 and "sft_outcome/operator_parsed" in check.metadata
    print(f"train assets materialised in {time.monotonic() - started:.1f} s")


def test_definitions_have_the_train_job_gpu_tags_and_check():
    from deepimagine_dagster.definitions import defs

    assert "train" in {job.name for job in defs.resolve_all_job_defs()}
    graph = defs.resolve_asset_graph()
    for key in ("sft_operators", "rl_operators", "grpo_policy"):
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == "training"
        assert defs.resolve_assets_def(key).op.tags["deepimagine/gpu"] == "true"
    assert "sft_operators_beat_base" in {k.name for k in graph.asset_check_keys}
    deps = {k.to_user_string() for k in graph.get(dg.AssetKey("grpo_policy")).parent_keys}
    assert deps == {"approximate_pairs", "historical_questions", "natural_pairs", "sft_operators"}
