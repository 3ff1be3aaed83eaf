"""The deployment files in docker/ agree with each other, with Dagster's schemas and with the project (no engine).

A name that differs between compose.yaml, dagster.yaml and the executor's environment only shows up when a run
starts on a GPU host, so these checks catch it here: volumes, network, the env vars the run launcher passes on, the
`.env.example` keys, non-root images, and the GPU lock against vLLM's pins and the project's dependencies.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from deepimagine_dagster.executors import GPU_POOL, GpuDockerSettings, docker_executor_config

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def _yaml(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


def _compose_env(service: str) -> dict:
    return _yaml("compose.yaml")["services"][service]["environment"]


def _interpolate(value: str, env: dict) -> str:
    """Compose's `${VAR:-default}` / `${VAR:?error}` with the example .env (enough for these checks)."""
    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        return env.get(name) or (arg if op == ":-" else "")
    return re.sub(r"(?<!\$)\$\{(\w+)(:-|:\?)?([^}]*)\}", sub, str(value))


def _example_env() -> dict:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_dagster_yaml_is_a_valid_instance_config(monkeypatch, tmp_path):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_docker import DockerRunLauncher

    for name in ("DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_DB",
                 "DAGSTER_POSTGRES_PORT", "DEEPIMAGINE_CPU_IMAGE"):
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    (tmp_path / "dagster.yaml").write_text((DOCKER / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    assert config["concurrency"]["pools"]["granularity"] == "op"
    # dagster-postgres brings psycopg2; SQLAlchemy 2.1 would pick psycopg 3 for a bare `postgresql://`.
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"

    launcher = config["run_launcher"]
    assert launcher["class"] == "DockerRunLauncher"
    processed = process_config(DockerRunLauncher.config_type(), launcher["config"])
    assert processed.success, processed.errors
    assert DockerRunLauncher(**processed.value).image == "x"


def test_compose_dagster_yaml_and_executor_agree():
    compose = _yaml("compose.yaml")
    launcher = _yaml("dagster.yaml")["run_launcher"]["config"]
    named_volumes = {v["name"] for v in compose["volumes"].values()}
    assert launcher["network"] in {n["name"] for n in compose["networks"].values()}

    # The daemon sets the GPU pool's limit at start.
    assert f"dagster instance concurrency set {GPU_POOL} " in " ".join(compose["services"]["daemon"]["command"])

    # The run launcher passes these names from the daemon's environment: a missing one fails every run at launch.
    daemon_env = _compose_env("daemon")
    assert set(launcher["env_vars"]) <= set(daemon_env)
    for mount in launcher["container_kwargs"]["volumes"]:
        source = mount.split(":")[0]
        assert source.startswith("/") or source in named_volumes, mount

    # The GPU executor, configured by the same environment, mounts named volumes that compose creates.
    env = {k: _interpolate(v, _example_env()) for k, v in daemon_env.items()}
    config = docker_executor_config(GpuDockerSettings.from_env(env))
    for mount in config["container_kwargs"]["volumes"]:
        assert mount.split(":")[0] in named_volumes, mount
    assert "networks" not in config  # DockerRunLauncher already connects step containers to its network
    assert "HF_TOKEN" in config["env_vars"] and "DAGSTER_POSTGRES_PASSWORD" in config["env_vars"]
    assert not any(v.startswith(("HF_TOKEN=", "DAGSTER_POSTGRES_PASSWORD=")) for v in config["env_vars"])


def test_env_example_documents_every_compose_variable():
    text = (DOCKER / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert used and used <= set(_example_env()), used - set(_example_env())


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_images_run_as_a_non_root_user(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:"), users
    assert "useradd --uid 1000" in text  # the same uid everywhere keeps the shared volumes writable


def test_gpu_lock_matches_vllm_pins_and_covers_the_project():
    lines = [ln.strip() for ln in (DOCKER / "gpu" / "constraints.txt").read_text().splitlines()]
    pins = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and canonicalize_name(name) not in pins, line
            pins[canonicalize_name(name)] = Version(version)
    assert pins["vllm"] == Version("0.33.0") and pins["torch"] == Version("2.14.0")
    assert Version("5.16.1") <= pins["transformers"] < Version("5.21")  # vLLM 0.33's range
    assert {"trl", "peft", "accelerate", "datasets", "tokenizers", "dagster-postgres"} <= set(pins)

    wanted = [Requirement(ln) for ln in (DOCKER / "gpu" / "requirements.in").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    for req in wanted:  # every top-level requirement is locked at an allowed version
        assert pins[canonicalize_name(req.name)] in req.specifier, req
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted_names = {canonicalize_name(r.name) for r in wanted}
    for dep in map(Requirement, project):  # the project's own dependencies are in the image, at allowed versions
        assert canonicalize_name(dep.name) in wanted_names, dep
        assert pins[canonicalize_name(dep.name)] in dep.specifier, dep
