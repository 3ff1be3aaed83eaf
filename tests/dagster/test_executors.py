"""The GPU executor configuration (deepimagine_dagster/executors.py), without any engine or cluster.

The Docker config is validated by dagster-docker's own schema and by docker-py's HostConfig (which builds the device
requests the engine receives); the Kubernetes config by dagster-k8s's schema and by building the step's Kubernetes
Job object the executor would submit. A real engine runs the Docker executor in tests/docker/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster._config import process_config

from deepimagine_dagster import executors
from deepimagine_dagster.executors import (
    GpuDockerSettings,
    docker_executor_config,
    gpu_device_requests,
    gpu_executor,
    k8s_gpu_executor_config,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_test_value_that_must_never_appear"


@pytest.mark.parametrize("value", [None, "", "in_process", "In-Process"])
def test_default_is_the_in_process_executor(value):
    env = {} if value is None else {executors.ENV_EXECUTOR: value}
    assert gpu_executor(env) is dg.in_process_executor


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(ValueError, match="DEEPIMAGINE_GPU_EXECUTOR='kubernetes'"):
        gpu_executor({executors.ENV_EXECUTOR: "kubernetes"})


def test_in_process_gpu_job_runs_unchanged():
    @dg.asset
    def tiny() -> int:
        return 1

    job = dg.define_asset_job("tiny_job", executor_def=gpu_executor({}))
    defs = dg.Definitions(assets=[tiny], jobs=[job])
    result = defs.resolve_job_def("tiny_job").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success and result.output_for_node("tiny") == 1


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("all", [{"driver": "nvidia", "capabilities": [["gpu"]], "count": -1}]),
        ("2", [{"driver": "nvidia", "capabilities": [["gpu"]], "count": 2}]),
        ("device=0, GPU-3f2a", [{"driver": "nvidia", "capabilities": [["gpu"]], "device_ids": ["0", "GPU-3f2a"]}]),
        ("none", []),
        ("0", []),
    ],
)
def test_gpu_device_requests(spec, expected):
    assert gpu_device_requests(spec) == expected


@pytest.mark.parametrize("spec", ["many", "device=", "-2"])
def test_bad_gpu_spec_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="DEEPIMAGINE_GPUS"):
        gpu_device_requests(spec)


def _docker_env(tmp_path, **extra) -> dict:
    return {
        executors.ENV_EXECUTOR: "docker",
        executors.ENV_IMAGE: "deepimagine-gpu:test",
        "DEEPIMAGINE_HOME": str(tmp_path / "store"),
        "DEEPIMAGINE_LLM_MODEL": "Qwen/Qwen3-8B",
        "HF_TOKEN": TOKEN,
        "DAGSTER_POSTGRES_PASSWORD": "pg-secret",
        "UNRELATED_SECRET": "x",
        **extra,
    }


def test_docker_config_passes_names_mounts_the_store_and_requests_gpus(tmp_path):
    env = _docker_env(tmp_path, DEEPIMAGINE_DOCKER_VOLUMES="hf-cache:/cache:ro, /models:/models")
    config = docker_executor_config(GpuDockerSettings.from_env(env))
    home = str(tmp_path / "store")

    assert config["image"] == "deepimagine-gpu:test"
    assert {"HF_TOKEN", "DAGSTER_POSTGRES_PASSWORD", "DEEPIMAGINE_LLM_MODEL", "DEEPIMAGINE_GPU_EXECUTOR"} <= set(
        config["env_vars"])
    assert f"DEEPIMAGINE_HOME={home}" in config["env_vars"]
    assert "UNRELATED_SECRET" not in config["env_vars"]
    serialized = json.dumps(config)
    assert TOKEN not in serialized and "pg-secret" not in serialized  # names only, never values

    kwargs = config["container_kwargs"]
    assert kwargs["volumes"] == [f"{home}:{home}:rw", "hf-cache:/cache:ro", "/models:/models:rw"]
    assert kwargs["device_requests"] == [{"driver": "nvidia", "capabilities": [["gpu"]], "count": -1}]
    assert "networks" not in config

    # dagster-docker accepts it, and docker-py turns it into the engine's HostConfig (device requests included).
    assert process_config(gpu_executor(env).config_schema.config_type, {}).success
    from dagster_docker import docker_executor

    assert process_config(docker_executor.config_schema.config_type, config).success
    import docker

    host = docker.types.HostConfig(version="1.41", binds=kwargs["volumes"], shm_size=kwargs["shm_size"],
                                   device_requests=kwargs["device_requests"])
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]],
                                       "Options": {}}]


def test_docker_config_uses_a_named_volume_and_network_when_given(tmp_path):
    env = _docker_env(tmp_path, DEEPIMAGINE_HOME="/data/deepimagine", DEEPIMAGINE_DOCKER_NETWORK="deepimagine",
                      DEEPIMAGINE_ARTEFACT_VOLUME="deepimagine-artefacts", DEEPIMAGINE_GPUS="1")
    config = docker_executor_config(GpuDockerSettings.from_env(env))
    assert config["container_kwargs"]["volumes"] == ["deepimagine-artefacts:/data/deepimagine:rw"]
    assert config["networks"] == ["deepimagine"]
    assert config["container_kwargs"]["device_requests"][0]["count"] == 1


def test_bad_extra_volume_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="DEEPIMAGINE_DOCKER_VOLUMES"):
        docker_executor_config(GpuDockerSettings.from_env(_docker_env(tmp_path, DEEPIMAGINE_DOCKER_VOLUMES="relative")))


def test_a_job_with_the_docker_gpu_executor_resolves(tmp_path):
    @dg.asset
    def gpu_thing() -> None:
        return None

    job = dg.define_asset_job("gpu_thing_job", executor_def=gpu_executor(_docker_env(tmp_path)))
    job_def = dg.Definitions(assets=[gpu_thing], jobs=[job]).resolve_job_def("gpu_thing_job")
    assert job_def.executor_def.name == "gpu_docker"
    dg.validate_run_config(job_def)


def test_k8s_config_validates_and_builds_a_gpu_step_job():
    from dagster_k8s import k8s_job_executor
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    config = k8s_gpu_executor_config(image="registry.example/deepimagine-gpu:1", gpus_per_step=2,
                                     node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"})
    processed = process_config(k8s_job_executor.config_schema.config_type, config)
    assert processed.success, processed.errors

    @dg.asset
    def gpu_thing() -> None:
        return None

    job = dg.define_asset_job("k8s_gpu_job", executor_def=k8s_job_executor.configured(config, name="gpu_k8s"))
    dg.validate_run_config(dg.Definitions(assets=[gpu_thing], jobs=[job]).resolve_job_def("k8s_gpu_job"))

    # The Kubernetes Job the executor would submit for a step (same construction as dagster-k8s's step handler).
    cfg = processed.value
    context = K8sContainerContext(
        env_secrets=cfg["env_secrets"], env_vars=cfg["env_vars"], volume_mounts=cfg["volume_mounts"],
        volumes=cfg["volumes"], namespace=cfg["job_namespace"], image_pull_policy=cfg["image_pull_policy"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(cfg["step_k8s_config"]),
    )
    helm_run_launcher = SimpleNamespace(job_image=None, dagster_home="/opt/dagster/dagster_home",  # K8sRunLauncher's
                                        instance_config_map="dagster-instance", postgres_password_secret="dagster-pg")
    k8s_job = construct_dagster_k8s_job(context.get_k8s_job_config(cfg["job_image"], helm_run_launcher),
                                        args=["dagster", "api", "execute_step"], job_name="dagster-step-test",
                                        user_defined_k8s_config=context.run_k8s_config)
    pod = k8s_job.spec.template.spec
    (container,) = pod.containers
    assert container.image == "registry.example/deepimagine-gpu:1"
    assert container.resources.limits == {"nvidia.com/gpu": "2"}
    assert container.resources.requests["nvidia.com/gpu"] == "2"
    assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert pod.tolerations[0].key == "nvidia.com/gpu"
    assert {m.mount_path for m in container.volume_mounts} >= {"/data/deepimagine", "/dev/shm"}
    assert {v.persistent_volume_claim.claim_name for v in pod.volumes if v.persistent_volume_claim} == {
        "deepimagine-artefacts"}
    assert [e.secret_ref.name for e in container.env_from if e.secret_ref] == ["deepimagine-hf-token"]


def test_k8s_executor_from_the_same_environment():
    env = {executors.ENV_EXECUTOR: "k8s", executors.ENV_IMAGE: "registry.example/deepimagine-gpu:1",
           executors.ENV_GPUS: "4", executors.ENV_K8S_NODE_SELECTOR: "pool=h100, zone=a",
           executors.ENV_ARTEFACT_VOLUME: "shared-rwx", "HF_TOKEN": TOKEN}

    @dg.asset
    def gpu_thing() -> None:
        return None

    job = dg.define_asset_job("k8s_env_job", executor_def=gpu_executor(env))
    job_def = dg.Definitions(assets=[gpu_thing], jobs=[job]).resolve_job_def("k8s_env_job")
    assert job_def.executor_def.name == "gpu_k8s"
    dg.validate_run_config(job_def)
    config = executors.k8s_gpu_executor_config_from_env(env)
    assert config["step_k8s_config"]["pod_spec_config"]["node_selector"] == {"pool": "h100", "zone": "a"}
    assert config["step_k8s_config"]["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert config["volumes"][0]["persistent_volume_claim"]["claim_name"] == "shared-rwx"
    assert TOKEN not in json.dumps(config)
    for bad in ({executors.ENV_GPUS: "all"}, {executors.ENV_K8S_NODE_SELECTOR: "no-value"}):
        with pytest.raises(ValueError, match="DEEPIMAGINE_"):
            executors.k8s_gpu_executor_config_from_env(bad)


GPU_JOBS = {  # job name → module defining it
    "generate_traces": "deepimagine_dagster.defs.llm.jobs",
    "train": "deepimagine_dagster.defs.training.jobs",
    "evaluate": "deepimagine_dagster.defs.evaluation.jobs",
}


def test_gpu_jobs_use_the_gpu_executor(tmp_path):
    """Loaded in a fresh process with the Docker executor switched on: every GPU job runs its steps in containers,
    every other job keeps the default executor."""
    code = (
        "import json, deepimagine_dagster.definitions as d; "
        "print(json.dumps({j.name: j.executor_def.name for j in d.defs.resolve_all_job_defs()}))"
    )
    env = {**os.environ, **_docker_env(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    executors_by_job = json.loads(out.stdout.strip().splitlines()[-1])
    assert {name: executors_by_job.get(name) for name in GPU_JOBS} == {name: "gpu_docker" for name in GPU_JOBS}
    assert all(executors_by_job[name] != "gpu_docker" for name in {"refresh_trials", "deepimagine"})
