"""GPU-job plumbing on a real Docker engine: `gpu_executor()` runs every step in its own container, and the compose
deployment validates.

The run is launched the way a deployment launches it: the run worker (`dagster job execute`) itself runs in a
container, as the image's non-root user, with the Docker socket, and starts one container per step through
dagster-docker's `docker_executor`, configured only by the DEEPIMAGINE_* variables that docker/compose.yaml sets.
`DEEPIMAGINE_GPUS=none` because this machine has no GPU; everything else is the GPU configuration. No network: the
containers run with `--network none`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from deepimagine_core.store import Store
from deepimagine_dagster.executors import STEP_LABEL

from .conftest import RUNTIME_UID, docker, host_runtime_mounts

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
STEPS = ("docker_probe_a", "docker_probe_b", "docker_probe_c")


def _docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip(f"the run-worker container needs a local unix socket engine, DOCKER_HOST={host}")
    return host[len("unix://"):]


def _step_containers(dagster_home: Path) -> tuple[str, dict[str, str]]:
    """(status of the one run, step key → id of the container the executor started for it) from the instance."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        (run,) = instance.get_runs()
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTING).records
        containers = {
            r.event_log_entry.step_key: r.event_log_entry.dagster_event.event_specific_data.metadata[
                "Docker container id"].value
            for r in records
        }
        return run.status.value, containers


def test_gpu_executor_runs_each_step_in_its_own_container(runtime_image, tmp_path):
    socket_path = _docker_socket()
    dagster_home, store_dir = tmp_path / "dagster_home", tmp_path / "store"
    for d in (dagster_home, store_dir):
        d.mkdir()
        d.chmod(0o777)  # written by the image's non-root user
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    runtime = host_runtime_mounts(REPO)
    work = [f"{dagster_home}:{dagster_home}:rw"]
    env = {
        "DAGSTER_HOME": str(dagster_home),
        "DEEPIMAGINE_HOME": str(store_dir),
        "DEEPIMAGINE_GPU_EXECUTOR": "docker",
        "DEEPIMAGINE_GPU_IMAGE": runtime_image,
        "DEEPIMAGINE_GPUS": "none",
        "DEEPIMAGINE_DOCKER_NETWORK": "none",
        "DEEPIMAGINE_DOCKER_SHM_SIZE": "64m",
        "DEEPIMAGINE_DOCKER_VOLUMES": ",".join(runtime + work),
        "DEEPIMAGINE_DOCKER_ENV_VARS": "DAGSTER_HOME,PYTHONDONTWRITEBYTECODE",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    name = f"deepimagine-test-run-worker-{uuid.uuid4().hex[:8]}"
    cmd = ["run", "--rm", "--name", name, "--network", "none", "--user", f"{RUNTIME_UID}:{RUNTIME_UID}",
           "--group-add", str(os.stat(socket_path).st_gid), "-v", f"{socket_path}:/var/run/docker.sock",
           "-v", f"{store_dir}:{store_dir}:rw", "-w", str(REPO)]
    for mount in runtime + work:
        cmd += ["-v", mount]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    cmd += [runtime_image, sys.executable, "-m", "dagster", "job", "execute", "-f",
            str(REPO / "tests" / "docker" / "smoke_defs.py"), "-d", str(REPO), "-j", "docker_smoke"]
    containers: dict[str, str] = {}
    try:
        try:
            out = docker(*cmd, timeout=150)
        except subprocess.TimeoutExpired:
            docker("rm", "-f", name)
            pytest.fail("the docker_smoke run did not finish within 150 s")
        status, containers = _step_containers(dagster_home)
        if out.returncode != 0 or status != "SUCCESS":
            pytest.fail(f"run {status}, run worker exit {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")

        # One container per step, each from the configured image, labelled, exited cleanly.
        assert sorted(containers) == sorted(STEPS)
        assert len(set(containers.values())) == len(STEPS)
        for step, container_id in containers.items():
            info = docker("inspect", "--format", "{{.Config.Image}}|{{.State.ExitCode}}|{{json .Config.Labels}}",
                          container_id)
            image, exit_code, labels = info.stdout.strip().split("|", 2)
            assert (image, exit_code) == (runtime_image, "0"), (step, info.stdout, info.stderr)
            assert all(f'"{k}":"{v}"' in labels for k, v in STEP_LABEL.items()), labels

        # Each step ran in its container (its hostname is the container's id), as non-root, and read what the
        # step before it wrote into the shared store; the host sees all of it.
        store = Store(store_dir)
        probes = {step: store.read_table(step).to_pylist()[0] for step in STEPS}
        for step, probe in probes.items():
            assert probe["in_container"] is True, probe
            assert containers[step].startswith(probe["hostname"]), (containers[step], probe)
            assert probe["uid"] == RUNTIME_UID, probe
        assert [probes[s]["upstream_rows"] for s in STEPS] == [0, 1, 1]
    finally:
        ids = set(containers.values())
        leftover = docker("ps", "-aq", "--filter", f"ancestor={runtime_image}",
                          "--filter", "label=" + "=".join(next(iter(STEP_LABEL.items()))))
        ids.update(leftover.stdout.split())
        if ids:
            docker("rm", "-f", *sorted(ids))


def _compose_command() -> list[str]:
    if shutil.which("docker") and docker("compose", "version").returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("no Docker Compose (docker compose plugin or Debian's docker-compose)")


def test_compose_file_validates():
    docker_dir = REPO / "docker"
    out = subprocess.run(
        [*_compose_command(), "--env-file", str(docker_dir / ".env.example"), "-f", str(docker_dir / "compose.yaml"),
         "config"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    services = config["services"]
    assert {"postgres", "code-location", "webserver", "daemon", "gpu"} <= set(services)
    (gpu_request,) = services["gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu_request["driver"] == "nvidia" and gpu_request["capabilities"] == ["gpu"]
    for name in ("code-location", "webserver", "daemon", "gpu"):
        assert services[name].get("user", "") not in ("root", "0", "0:0"), name
    for name in ("code-location", "daemon", "webserver"):
        env = services[name]["environment"]
        assert env["DAGSTER_POSTGRES_HOST"] == "postgres", name
        assert env["DEEPIMAGINE_GPU_EXECUTOR"] == "docker", name
