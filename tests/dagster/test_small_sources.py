"""Small sources are a normal case (a user trying one condition, one sponsor): the jobs `build_pairs`,
`generate_traces`, `train` and `evaluate` succeed on 1, 5 and 30 real trials from the embedded sample, with
empty-but-valid tables, and every empty part says why (table metadata `why_empty`, skipped operators, the report)."""

from __future__ import annotations

import gzip
import itertools
import shutil
from importlib import resources

import dagster as dg
import pyarrow.parquet as pq
import pytest

from deepimagine_core.ctgov.ingest import ingest_source
from deepimagine_core.llm import tiny
from deepimagine_core.training.adapters import published_adapters
from deepimagine_dagster.resources import CTOpenResource, LLMBackendResource, StoreResource, TrialSourceResource

JOBS = ("build_pairs", "generate_traces", "train", "evaluate")
QUICK = {  # the tiny model on a CPU, as little generation and training as still runs every code path
    "ops": {
        "reasoning_traces": {"config": {"max_pairs": 4, "n_samples": 1, "max_new_tokens": 8}},
        "sft_operators": {"config": {"overrides": {"max_steps": 2, "save_steps": 2}}},
        "sft_operators_sft_operators_beat_base": {"config": {"max_pairs_per_factor": 2, "max_new_tokens": 8}},
        "grpo_policy": {"config": {"overrides": {"max_steps": 1, "save_steps": 1}, "max_prompts": 8}},
        "rl_operators": {"config": {"overrides": {"max_steps": 1, "save_steps": 1}, "max_prompts": 8}},
        "evaluation_report": {"config": {"predictors": ["majority", "logreg", "deepimagine"],
                                         "bootstrap_samples": 20, "llm_max_questions": 4}},
    }
}


def sample_source(tmp_path, n: int):
    """The first `n` studies of the embedded API v2 sample, as a JSON Lines source."""
    sample = resources.files("deepimagine_core.ctgov") / "sample" / "v2_json_studies.jsonl.gz"
    path = tmp_path / f"studies_{n}.jsonl"
    with gzip.open(sample, "rt", encoding="utf-8") as src:
        path.write_text("".join(itertools.islice(src, n)), encoding="utf-8")
    return path


def materializations(result) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


def value(meta: dict, key: str):
    return getattr(meta.get(key), "value", meta.get(key))


@pytest.mark.parametrize("n_trials", [1, 5, 30])
def test_downstream_jobs_succeed_on_a_small_source(tmp_path, tmp_path_factory, n_trials):
    from deepimagine_dagster.definitions import defs

    store_res = StoreResource(home=str(tmp_path / "home"))
    store = store_res.get()
    summary = ingest_source(str(sample_source(tmp_path, n_trials)), store)
    assert summary.trials == n_trials
    shutil.copytree(tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model"),
                    store.path("models", "tiny"))
    jobs = {name: defs.resolve_job_def(name) for name in JOBS}
    keys = {k for job in jobs.values() for k in job.asset_layer.executable_asset_keys}
    everything = [a for a in defs.assets if set(a.keys) & keys]
    everything += [c for c in defs.asset_checks if {k.asset_key for k in c.check_keys} & keys]
    resources_ = {"store": store_res, "ct_open": CTOpenResource(paths=""), "llm": LLMBackendResource(),
                  "trial_source": TrialSourceResource()}
    meta, instance = {}, dg.DagsterInstance.ephemeral()
    for name, job in jobs.items():
        selection = dg.AssetSelection.assets(*job.asset_layer.executable_asset_keys)
        result = dg.materialize(everything, selection=selection, resources=resources_, run_config={
            "ops": {k: v for k, v in QUICK["ops"].items() if k in {n.name for n in job.graph.node_defs}}},
            instance=instance)
        assert result.success, name
        meta.update(materializations(result))

    # every table of the pairs domain is written with its schema, and says why it is empty when it is
    for table in ("historical_questions", "natural_pairs", "approximate_pairs", "reasoning_traces"):
        assert pq.read_schema(store.table_path(table)).names
        if value(meta[table], "dagster/row_count") == 0:
            assert value(meta[table], "why_empty"), table
    approx = value(meta["approximate_pairs"], "why_empty") or {}
    counts = {f: 0 for f in ("intervention", "population", "geography", "design")}
    for factor in pq.read_table(store.table_path("approximate_pairs")).column("factor").to_pylist():
        counts[factor] += 1
    assert {f for f, n in counts.items() if n == 0} == set(approx)  # each empty factor has its reason
    for name in ("historical_questions", "natural_pairs", "approximate_pairs"):
        assert (store.path("datasets", name, "data", f"{name}.parquet")).is_file()

    # an operator is trained or skipped with its reason: never a fake adapter
    sft = meta["sft_operators"]
    trained, skipped = set(value(sft, "operators")), value(sft, "skipped") or {}
    assert trained | set(skipped) == {"sft_arm", "sft_outcome"} and not trained & set(skipped)
    assert all("0 examples" in why for why in skipped.values())
    rl = meta["rl_operators"]
    rl_trained, rl_skipped = set(value(rl, "operators")), value(rl, "skipped") or {}
    assert rl_trained | set(rl_skipped) == {"grpo_intervention", "grpo_context"} and not rl_trained & set(rl_skipped)
    assert all("0 prompts" in why for why in rl_skipped.values())
    grpo = meta["grpo_policy"]
    assert ("grpo/adapter" in grpo) != bool(value(grpo, "skipped"))
    published = set(published_adapters(store))
    assert published == trained | rl_trained | ({"grpo"} if "grpo/adapter" in grpo else set())

    # the report scores something, or says why it scored nothing
    report = (store.path("reports", "report.md")).read_text()
    reasons = value(meta["evaluation_report"], "nothing_evaluated")
    if reasons:
        assert "## Nothing evaluated" in report and all(r in report for r in reasons)
    else:
        assert any(k.endswith("/weighted_accuracy") for k in meta["evaluation_report"])

    if n_trials == 1:  # one trial: nothing to pair, train on or score, and every part says so
        assert set(approx) == set(counts) and all("fewer than 2 trials" in r for r in approx.values())
        assert not trained and not published
        # its questions (computed safety comparisons of the first sample study) all fall on the test side
        assert any(r.startswith("no training questions: 0 of the 4 historical") for r in reasons), reasons

    # the closing summary gathers every reason in one place
    from deepimagine_dagster.defs.pipeline.assets import run_summary

    result = dg.materialize([run_summary], resources={"store": store_res}, instance=instance)
    summary = materializations(result)["run_summary"]["summary"].value
    for factor, why in approx.items():
        assert f"- `approximate_pairs/{factor}`: {why}" in summary
    for name, why in skipped.items():
        assert f"- `sft_operators/{name}`: {why}" in summary
    if reasons:
        assert f"- `evaluation_report`: {'; '.join(reasons)}" in summary
