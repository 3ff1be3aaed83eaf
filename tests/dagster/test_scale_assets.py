"""Scaling out in Dagster: the training assets hand a multi-process recipe to the distributed launcher and report the
same metadata as an in-process run; the project's real GPU jobs load and resolve with the Kubernetes executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from deepimagine_core.store import Store
from deepimagine_core.training.grpo import train_grpo
from deepimagine_core.training.sft import train_sft
from deepimagine_dagster.defs.training import assets
from deepimagine_dagster.defs.training.assets import SFTOperatorsConfig
from tests.dagster.test_training_assets import store_res  # noqa: F401 (fixture: tables and the tiny model)

QUICK = {"max_steps": 1, "save_steps": 1, "factors": ["arm"]}


@pytest.fixture
def fake_launcher(monkeypatch):
    """The distributed launcher replaced by the in-process trainers (the real launch is tests/core/test_scale_*)."""
    from deepimagine_core.training import distributed

    calls = []

    def training(recipe, rows, output_dir, *, num_processes, name, init_adapter, data_counts, resume, store_root,
                 progress, **kw):
        calls.append((name, num_processes, recipe.num_processes))
        common = dict(resume=resume, store=Store(store_root), name=name, data_counts=data_counts, progress=progress)
        if recipe.trainer == "sft":
            return train_sft(recipe, rows, output_dir, **common)
        return train_grpo(recipe, rows, output_dir, init_adapter=init_adapter, **common)

    monkeypatch.setattr(distributed, "launch_training", training)
    return calls


def test_multi_process_recipes_are_launched_and_report_the_same_metadata(store_res, fake_launcher):  # noqa: F811
    in_process = assets.sft_operators(dg.build_asset_context(), SFTOperatorsConfig(overrides=QUICK), store_res)
    assert fake_launcher == [] and in_process.metadata["processes"] == 1

    two = {**QUICK, "num_processes": 2}
    grpo_two = {"max_steps": 1, "save_steps": 1, "num_processes": 2, "per_device_train_batch_size": 2,
                "generation_batch_size": 4}
    result = dg.materialize(
        [assets.sft_operators, assets.grpo_policy],
        resources={"store": store_res},
        run_config={"ops": {"sft_operators": {"config": {"overrides": two}},
                            "grpo_policy": {"config": {"overrides": grpo_two, "init_from": "sft_arm"}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert fake_launcher == [("sft_arm", 2, 2), ("grpo", 2, 2)]
    launched = result.asset_materializations_for_node("sft_operators")[0].metadata
    assert launched["processes"].value == 2
    assert set(launched) == set(in_process.metadata)  # the same metadata, whichever way it was trained
    assert launched["sft_arm/global_step"].value == 1 and launched["sft_arm/reused"].value is False
    grpo = result.asset_materializations_for_node("grpo_policy")[0].metadata
    assert grpo["processes"].value == 2 and grpo["init_from"].text.endswith("sft_arm/adapter")


K8S_CHECK = textwrap.dedent(
    """
    import json
    import dagster as dg
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor
    from dagster_k8s.job import UserDefinedDagsterK8sConfig
    from deepimagine_dagster.definitions import defs
    from deepimagine_dagster.executors import k8s_gpu_executor_config_from_env

    config = k8s_gpu_executor_config_from_env()
    resolved = process_config(k8s_job_executor.config_schema.config_type, config)
    assert resolved.success, resolved.errors
    step = UserDefinedDagsterK8sConfig.from_dict(config["step_k8s_config"])
    report = {"config": resolved.value, "step_limits": step.container_config["resources"]["limits"],
              "node_selector": step.pod_spec_config["node_selector"], "jobs": {}}
    for job in defs.resolve_all_job_defs():
        dg.validate_run_config(job)  # the configured executor's config resolves inside the job's run config
        gpu_steps = sorted(n.name for n in job.graph.node_dict.values()
                           if n.definition.tags.get("deepimagine/gpu") == "true")
        report["jobs"][job.name] = {"executor": job.executor_def.name, "gpu_steps": gpu_steps}
    print(json.dumps(report, default=str))
    """
)


@pytest.mark.timeout(180)
def test_the_gpu_jobs_resolve_with_the_kubernetes_executor(tmp_path):
    env = {**os.environ, "DEEPIMAGINE_GPU_EXECUTOR": "k8s",
           "DEEPIMAGINE_GPU_IMAGE": "registry.example/deepimagine-gpu:1",
           "DEEPIMAGINE_GPUS": "8", "DEEPIMAGINE_K8S_NODE_SELECTOR": "nvidia.com/gpu.product=H100",
           "DEEPIMAGINE_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", K8S_CHECK], env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("train", "generate_traces", "evaluate"):
        assert report["jobs"][name]["executor"] == "gpu_k8s", name
    assert set(report["jobs"]["train"]["gpu_steps"]) >= {"sft_operators", "grpo_policy"}
    assert "reasoning_traces" in report["jobs"]["generate_traces"]["gpu_steps"]
    assert report["jobs"]["refresh_trials"]["executor"] == "in_process"  # CPU jobs stay where they were
    assert report["config"]["job_image"] == "registry.example/deepimagine-gpu:1"
    assert report["step_limits"] == {"nvidia.com/gpu": "8"}  # a step gets all 8 GPUs: the launcher uses them all
    assert report["node_selector"] == {"nvidia.com/gpu.product": "H100"}
