"""Where GPU steps run: the one place that configures the executor of the GPU jobs.

The GPU jobs (`generate_traces`, `train`, `evaluate`) declare `executor_def=gpu_executor()`:

- `DEEPIMAGINE_GPU_EXECUTOR=docker`: every step of such a job runs in its own container of the GPU image through
  dagster-docker's `docker_executor` (GPU device requests, the artefact volume mounted at `DEEPIMAGINE_HOME`, env vars
  passed through by *name*, so a token's value never enters the run config);
- `DEEPIMAGINE_GPU_EXECUTOR=k8s`: every step is a Kubernetes Job of the same GPU image on a GPU node, through
  dagster-k8s's `k8s_job_executor` (`k8s_gpu_executor_config`; README "Scaling out to Kubernetes");
- unset or `in_process` (the default): the job runs in-process like every CPU job, so `dagster job execute`, tests
  (`materialize` ignores executors anyway) and a laptop without Docker keep working unchanged.

Everything is read from the environment of the process that loads the code location: in a deployment that is the
run worker, which is also the process that starts the step containers.

Gotcha: dagster-docker prefers the code location's own image (`--container-image`, `DAGSTER_CURRENT_IMAGE`,
`DAGSTER_CONTAINER_IMAGE`) over the executor's `image`. A code location serving GPU jobs must not declare one, or GPU
steps would start in the CPU image; docker/compose.yaml gives the run image to the run launcher instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from deepimagine_dagster.resources import ENV_HOME, home_from_env

ENV_EXECUTOR = "DEEPIMAGINE_GPU_EXECUTOR"  # docker | k8s | in_process (default)
ENV_IMAGE = "DEEPIMAGINE_GPU_IMAGE"  # image of the GPU steps
ENV_GPUS = "DEEPIMAGINE_GPUS"  # all (default) | N | device=ID[,ID...] | none
ENV_ARTEFACT_VOLUME = "DEEPIMAGINE_ARTEFACT_VOLUME"  # docker volume or host path holding DEEPIMAGINE_HOME
ENV_NETWORK = "DEEPIMAGINE_DOCKER_NETWORK"  # only when runs are not launched by DockerRunLauncher (it adds its own)
ENV_VOLUMES = "DEEPIMAGINE_DOCKER_VOLUMES"  # more mounts, comma-separated `source:target[:ro|rw]`
ENV_EXTRA_ENV_VARS = "DEEPIMAGINE_DOCKER_ENV_VARS"  # more env var names to pass through, comma-separated
ENV_SHM_SIZE = "DEEPIMAGINE_DOCKER_SHM_SIZE"  # /dev/shm of GPU containers (vLLM, NCCL and data loaders need room)
ENV_K8S_NAMESPACE = "DEEPIMAGINE_K8S_NAMESPACE"  # namespace of the GPU step Jobs (k8s)
ENV_K8S_NODE_SELECTOR = "DEEPIMAGINE_K8S_NODE_SELECTOR"  # GPU nodes, comma-separated `label=value` (k8s)

DEFAULT_GPU_IMAGE = "deepimagine-gpu:latest"
DEFAULT_SHM_SIZE = "8g"
DEFAULT_K8S_HOME = "/data/deepimagine"
GPU_POOL = "gpu"  # GPU assets declare `pool=GPU_POOL`; its limit (docker/compose.yaml) is the number of GPU slots
STEP_LABEL = {"org.deepimagine.role": "gpu-step"}  # `docker container prune --filter label=org.deepimagine.role`

# Passed to GPU containers by name when set where the run worker runs: the value is read from that environment at
# launch and never written into run config, the UI or the event log.
PASSTHROUGH_ENV_VARS = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "DAGSTER_POSTGRES_USER",
    "DAGSTER_POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_DB",
    "DAGSTER_POSTGRES_HOST",
    "DAGSTER_POSTGRES_PORT",
)
PASSTHROUGH_PREFIX = "DEEPIMAGINE_"  # every project setting (store, sources, LLM backend and model, ...)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def gpu_device_requests(gpus: str) -> list[dict]:
    """Docker device requests for `gpus`, spelled like `docker run --gpus`: `all`, a count `N`, `device=0,1` (ids or
    UUIDs), or `none`/`0` (no GPU: GPU jobs still run in containers, e.g. on a CPU host)."""
    spec = (gpus or "all").strip().lower()
    if spec in ("none", "0"):
        return []
    request: dict = {"driver": "nvidia", "capabilities": [["gpu"]]}
    if spec in ("all", "-1"):
        request["count"] = -1
    elif spec.isdigit():
        request["count"] = int(spec)
    elif spec.startswith("device="):
        ids = _split(gpus.strip()[len("device=") :])
        if not ids:
            raise ValueError(f"{ENV_GPUS}={gpus!r}: `device=` needs at least one GPU id")
        request["device_ids"] = ids
    else:
        raise ValueError(f"{ENV_GPUS}={gpus!r}: expected all, a count, device=ID[,ID...] or none")
    return [request]


def _mount(spec: str) -> str:
    parts = spec.split(":")
    well_formed = len(parts) in (2, 3) and parts[0] and parts[1].startswith("/") and parts[2:] in ([], ["ro"], ["rw"])
    if not well_formed:
        raise ValueError(f"{ENV_VOLUMES}: {spec!r} is not `source:/absolute/target[:ro|rw]`")
    return spec if len(parts) == 3 else f"{spec}:rw"


@dataclass(frozen=True)
class GpuDockerSettings:
    """Everything the Docker GPU executor needs; `from_env` reads it from the variables above."""

    image: str = DEFAULT_GPU_IMAGE
    gpus: str = "all"
    home: str = ""  # DEEPIMAGINE_HOME as seen by every container (same path everywhere)
    artefact_volume: str = ""  # mounted at `home`; empty = `home` itself as a host path
    network: str = ""
    volumes: tuple[str, ...] = ()
    env_var_names: tuple[str, ...] = ()
    shm_size: str = DEFAULT_SHM_SIZE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GpuDockerSettings:
        env = os.environ if environ is None else environ
        home = home_from_env(env)
        names = [n for n in PASSTHROUGH_ENV_VARS if n in env]
        names += sorted(n for n in env if n.startswith(PASSTHROUGH_PREFIX))
        names += [n for n in _split(env.get(ENV_EXTRA_ENV_VARS, "")) if n in env]
        return cls(
            image=env.get(ENV_IMAGE) or DEFAULT_GPU_IMAGE,
            gpus=env.get(ENV_GPUS) or "all",
            home=home,
            artefact_volume=env.get(ENV_ARTEFACT_VOLUME, ""),
            network=env.get(ENV_NETWORK, ""),
            volumes=tuple(_split(env.get(ENV_VOLUMES, ""))),
            env_var_names=tuple(dict.fromkeys(names)),
            shm_size=env.get(ENV_SHM_SIZE) or DEFAULT_SHM_SIZE,
        )


def docker_executor_config(settings: GpuDockerSettings) -> dict:
    """Config of dagster-docker's `docker_executor` for GPU steps (validated by the executor's schema)."""
    # The store path is passed as a value (absolute, the same in every container), never a secret.
    env_vars = [n for n in settings.env_var_names if n != ENV_HOME] + [f"{ENV_HOME}={settings.home}"]
    volumes = [_mount(f"{settings.artefact_volume or settings.home}:{settings.home}")]
    volumes += [_mount(v) for v in settings.volumes]
    container_kwargs: dict = {"volumes": volumes, "shm_size": settings.shm_size, "labels": dict(STEP_LABEL)}
    devices = gpu_device_requests(settings.gpus)
    if devices:
        container_kwargs["device_requests"] = devices
    config: dict = {"image": settings.image, "env_vars": env_vars, "container_kwargs": container_kwargs}
    if settings.network:
        config["networks"] = [settings.network]
    return config


def gpu_executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor of the GPU jobs, from `DEEPIMAGINE_GPU_EXECUTOR`: `docker` (a GPU container per step on this
    host), `k8s` (a Kubernetes Job per step, see `k8s_gpu_executor_config`), or in-process (unset, the default)."""
    env = os.environ if environ is None else environ
    choice = env.get(ENV_EXECUTOR, "").strip().lower().replace("-", "_")
    if choice in ("", "in_process"):
        return dg.in_process_executor
    if choice == "docker":
        from dagster_docker import docker_executor

        config = docker_executor_config(GpuDockerSettings.from_env(env))
        return docker_executor.configured(config, name="gpu_docker")
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_gpu_executor_config_from_env(env), name="gpu_k8s")
    raise ValueError(f"{ENV_EXECUTOR}={env[ENV_EXECUTOR]!r}: expected `docker`, `k8s` or `in_process`")


def k8s_gpu_executor_config(
    image: str = DEFAULT_GPU_IMAGE,
    gpus_per_step: int = 1,
    node_selector: Mapping[str, str] | None = None,
    namespace: str = "dagster",
    artefact_claim: str = "deepimagine-artefacts",
    home: str = DEFAULT_K8S_HOME,
    hf_token_secret: str = "deepimagine-hf-token",
) -> dict:
    """Config of dagster-k8s's `k8s_job_executor` for GPU steps on a cluster: each step is a Kubernetes Job of the
    same GPU image, requesting `gpus_per_step` NVIDIA GPUs on a GPU node, with the artefact store on a shared
    ReadWriteMany claim mounted at `home` and the HF token from a Secret (`env_secrets`, never a value in config)."""
    gpu = str(gpus_per_step)
    return {
        "job_namespace": namespace,
        "job_image": image,
        "image_pull_policy": "IfNotPresent",
        "env_vars": [f"{ENV_HOME}={home}", f"HF_HOME={home}/huggingface"],
        "env_secrets": [hf_token_secret],
        "volume_mounts": [
            {"name": "artefacts", "mount_path": home},
            {"name": "dshm", "mount_path": "/dev/shm"},
        ],
        "volumes": [
            {"name": "artefacts", "persistent_volume_claim": {"claim_name": artefact_claim}},
            {"name": "dshm", "empty_dir": {"medium": "Memory"}},
        ],
        "step_k8s_config": {
            "container_config": {
                "resources": {
                    "requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": gpu},
                    "limits": {"nvidia.com/gpu": gpu},
                },
            },
            "pod_spec_config": {
                "node_selector": dict(node_selector or {"nvidia.com/gpu.present": "true"}),
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    }


def k8s_gpu_executor_config_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """`k8s_gpu_executor_config` from the same variables as the Docker executor: DEEPIMAGINE_GPU_IMAGE, DEEPIMAGINE_GPUS
    (a count per step: Kubernetes schedules whole GPUs), DEEPIMAGINE_ARTEFACT_VOLUME (the claim), DEEPIMAGINE_HOME
    (its mount path), DEEPIMAGINE_K8S_NAMESPACE and DEEPIMAGINE_K8S_NODE_SELECTOR."""
    env = os.environ if environ is None else environ
    gpus = (env.get(ENV_GPUS) or "1").strip()
    if not gpus.isdigit() or int(gpus) < 1:
        raise ValueError(f"{ENV_GPUS}={gpus!r}: on Kubernetes give the number of GPUs per step (1, 2, ...)")
    selector = {}
    for pair in _split(env.get(ENV_K8S_NODE_SELECTOR, "")):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{ENV_K8S_NODE_SELECTOR}: {pair!r} is not `label=value`")
        selector[key.strip()] = value.strip()
    return k8s_gpu_executor_config(
        image=env.get(ENV_IMAGE) or DEFAULT_GPU_IMAGE,
        gpus_per_step=int(gpus),
        node_selector=selector or None,
        namespace=env.get(ENV_K8S_NAMESPACE) or "dagster",
        artefact_claim=env.get(ENV_ARTEFACT_VOLUME) or "deepimagine-artefacts",
        home=env.get(ENV_HOME) or DEFAULT_K8S_HOME,
    )
