"""The `reasoning_traces` asset: called directly with a scripted teacher (verdicts, metadata, re-runs skip done
pairs), and materialised end to end with the tiny local model; the LLM resource and job are in the definitions."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pyarrow as pa

from deepimagine_core.llm import tiny
from tests.scripted_backend import ScriptedBackend
from deepimagine_core.pairs.natural import NATURAL_PAIRS
from deepimagine_core.store import Store
from deepimagine_dagster.defs.llm.assets import TracesConfig, reasoning_traces
from deepimagine_dagster.defs.llm.checks import reasoning_traces_contracts
from deepimagine_dagster.resources import LLMBackendResource, StoreResource


def write_natural_pairs(store: Store) -> None:
    """A tiny `natural_pairs` table in the pairs team's schema."""
    def context(dose):
        return json.dumps({"nct_id": "NCT00000001", "brief_title": "Drug X in diabetes",
                           "arm": {"label": f"X {dose} mg", "type": "EXPERIMENTAL"},
                           "outcome": {"title": "HbA1c change", "time_frame": "Week 12", "unit": "percent"}})

    rows = []
    for i, (factor, split, direction) in enumerate(
        [("arm", "train", "up"), ("arm", "train", "down"), ("outcome", "train", "up"), ("arm", "test", "up")]
    ):
        rows.append({
            "pair_id": f"pair-{i}", "factor": factor, "split": split,
            "source_nct_id": "NCT00000001", "target_nct_id": "NCT00000001", "difference": "dose: 10 mg → 20 mg",
            "source_context": context(10), "target_context": context(20),
            "source_result": json.dumps({"value": -0.5, "n": 40}), "target_result": json.dumps({"value": -0.9, "n": 41}),
            "comparable": True, "change_direction": direction, "change_band": None,
        })
    store.write_table("natural_pairs", pa.Table.from_pylist(rows, schema=NATURAL_PAIRS))


class ScriptedLLM(LLMBackendResource):
    """The LLM resource with a teacher that always says "up"."""

    def get(self, store=None):
        return ScriptedBackend(lambda m, i: "Reasoning.\nDIRECTION: up\nSIZE: moderate\nRESULT: r\nEXPLANATION: e",
                               "scripted-teacher")


def test_asset_direct_call_and_rerun_skips_done_pairs(tmp_path):
    store_res = StoreResource(home=str(tmp_path))
    store = store_res.get()
    write_natural_pairs(store)
    context = dg.build_asset_context()
    result = reasoning_traces(context, TracesConfig(n_samples=2, max_pairs=2), store_res, ScriptedLLM())
    meta = result.metadata
    assert meta["new_traces"] == 4 and meta["pairs_to_trace"] == 2 and meta["pairs_over_limit"] == 1
    assert meta["pairs_not_train"] == 1 and meta["new_accepted"] == 2  # "up" is right for pair-0, wrong for pair-1
    assert "| arm | 4 | 2 | 0.50 |" in meta["acceptance_by_factor"].value
    assert "pair-0" in meta["sample_trace"].value and "note" not in meta  # not the tiny model

    again = reasoning_traces(context, TracesConfig(n_samples=2), store_res, ScriptedLLM())
    assert again.metadata["pairs_done_before"] == 2 and again.metadata["new_traces"] == 2  # only pair-2 is new
    table = store.read_table("reasoning_traces")
    assert table.num_rows == 6 and sorted(set(table["pair_id"].to_pylist())) == ["pair-0", "pair-1", "pair-2"]


def test_materialize_with_tiny_model(tmp_path, tmp_path_factory):
    store_res = StoreResource(home=str(tmp_path))
    write_natural_pairs(store_res.get())
    # the session's tiny model (shared by the llm tests) placed where model="tiny" looks for it: reused, not rebuilt
    shutil.copytree(tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model"), tmp_path / "models" / "tiny")
    result = dg.materialize(
        [reasoning_traces],
        resources={"store": store_res, "llm": LLMBackendResource(model="tiny", batch_size=8)},
        run_config={"ops": {"reasoning_traces": {"config": {"n_samples": 2, "max_new_tokens": 8}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.asset_materializations_for_node("reasoning_traces")[0].metadata
    assert meta["new_traces"].value == 6 and "meaningless" in meta["note"].value
    table = store_res.get().read_table("reasoning_traces")
    assert set(table["model_id"].to_pylist()) == {"tiny"}
    assert set(table["verdict"].to_pylist()) <= {"accepted", "wrong_direction", "wrong_size", "unparsed"}
    assert tiny.is_complete(tmp_path / "models" / "tiny")


def test_definitions_have_llm_resource_job_and_gpu_tags():
    from deepimagine_dagster.definitions import defs

    assert isinstance(defs.resources["llm"], LLMBackendResource)
    job = defs.resolve_job_def("generate_traces")
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey("reasoning_traces")}
    spec = reasoning_traces.specs_by_key[dg.AssetKey("reasoning_traces")]
    assert dg.AssetKey("natural_pairs") in {d.asset_key for d in spec.deps}
    assert reasoning_traces.op.tags.get("deepimagine/gpu") == "true" and reasoning_traces.op.pool == "gpu"


def test_contract_check_catches_a_leak(tmp_path):
    store_res = StoreResource(home=str(tmp_path))
    store = store_res.get()
    write_natural_pairs(store)
    reasoning_traces(dg.build_asset_context(), TracesConfig(n_samples=1), store_res, ScriptedLLM())
    assert reasoning_traces_contracts(store_res).passed
    pairs = store.read_table("natural_pairs").to_pylist()
    pairs[0]["split"] = "test"  # the split moved: pair-0's traces would now leak test data into training
    store.write_table("natural_pairs", pa.Table.from_pylist(pairs, schema=NATURAL_PAIRS))
    result = reasoning_traces_contracts(store_res)
    assert not result.passed and result.metadata["traces_of_non_train_pairs"].value == 1
