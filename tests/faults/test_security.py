"""Security: CT Open pickles cannot run code, secrets given through the environment never reach logs, metadata or
artefacts, and the images run as a non-root user.

(a) A CT Open pickle whose objects carry a malicious `__reduce__` (os.system, subprocess, eval, exec, getattr
    gadgets; every pickle protocol; alone or hidden inside an otherwise valid CT Open record) is refused with
    `UnsafePickleError` by every way in: `safe_load_pickle`, `load_file`, `load_benchmarks` over a folder, the
    `DEEPIMAGINE_CT_OPEN` default and the `ct_open_benchmark` asset; the payload's marker file is never created.
(b) `refresh_trials` runs against the ClinicalTrials.gov stand-in (with faults, so the retry paths log too) and once
    against an unreachable server (so the failure path logs a stack trace) with tokens and keys set in the
    environment; no secret value appears in stdout/stderr, Python logs, the event log (materialisation metadata and
    asset check results included), the run records, the files written, the requests sent, or the GPU executors'
    config built from that environment.
(c) docker/Dockerfile.cpu and docker/Dockerfile.gpu end their final stage with a `USER` that is not root.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from deepimagine_core.evaluation.ct_open import UnsafePickleError, load_benchmarks, load_file, safe_load_pickle
from deepimagine_dagster.definitions import defs
from deepimagine_dagster.resources import ENV_CT_OPEN, default_resources
from tests.ctgov_stand_in import CTGovStandIn, FaultPlan

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------------ (a) CT Open pickles


class Gadget:
    """Unpickling this calls `func(*args)`: what a malicious pickle does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def gadgets(marker: Path) -> dict[str, object]:
    touch = f"touch {marker}"
    return {
        "os.system": Gadget(os.system, touch),
        "subprocess.check_call": Gadget(subprocess.check_call, ["touch", str(marker)]),
        "builtins.eval": Gadget(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": Gadget(exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.getattr": Gadget(getattr, Gadget(__import__, "os"), "system"),  # the start of a gadget chain
        "io.open": Gadget(io.open, str(marker), "w"),
    }


def valid_record(payload: object) -> dict:
    """An otherwise valid CT Open record (one question) carrying the payload in a field the loader keeps."""
    options = ["Arm A is better than arm B.", "Arm A is not better than arm B."]
    return {
        "nct_id": "NCT00000001",
        "endpoint_key": "{'measure': 'HbA1c'}",
        "endpoint": {"measure": "HbA1c", "timeFrame": "12 weeks"},
        "brief_title": "A trial",
        "arms": [{"label": "A"}, {"label": "B"}],
        "meta_label": "single_arm",
        "question_list_of_lists": [options],
        "answer_list_of_lists": [options[0]],
        "listed_arms": payload,
    }


def evil_pickles(tmp_path: Path, marker: Path) -> list[Path]:
    """Every gadget with every protocol, alone and hidden inside a CT Open dict or list of records."""
    paths = []
    for name, gadget in gadgets(marker).items():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            for shape, obj in (
                ("alone", gadget),
                ("in_dict", {("NCT00000001", "{'measure': 'HbA1c'}"): valid_record(gadget)}),
                ("in_list", [valid_record(None), valid_record([1, {"deep": (gadget,)}])]),
            ):
                path = tmp_path / f"{name}-p{protocol}-{shape}.pkl"
                path.write_bytes(pickle.dumps(obj, protocol=protocol))
                paths.append(path)
    return paths


def test_malicious_ct_open_pickles_are_refused_and_run_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    folder = tmp_path / "pickles"
    folder.mkdir()
    paths = evil_pickles(folder, marker)
    assert len(paths) == 6 * (pickle.HIGHEST_PROTOCOL + 1) * 3
    for path in paths:
        for load in (safe_load_pickle, load_file, load_benchmarks):
            with pytest.raises(UnsafePickleError, match="refusing to unpickle"):
                load(path)
        assert not marker.exists(), f"{path.name} ran its payload"
    with pytest.raises(UnsafePickleError):
        load_benchmarks(folder)  # a folder holding them
    monkeypatch.setenv(ENV_CT_OPEN, str(paths[0]))
    with pytest.raises(UnsafePickleError):
        load_benchmarks(default_resources()["ct_open"].paths)  # the environment default
    assert not marker.exists()


def test_a_safe_pickle_still_loads(tmp_path):
    """The refusal is about code, not about pickles: a plain CT Open pickle loads."""
    path = tmp_path / "winter.pkl"
    path.write_bytes(pickle.dumps({("NCT00000001", "{'measure': 'HbA1c'}"): valid_record(None)}))
    (question,) = load_file(path)
    assert question.nct_id == "NCT00000001" and question.answer == 0


def test_ct_open_asset_refuses_a_malicious_pickle(tmp_path):
    from deepimagine_dagster.defs.evaluation.assets import ct_open_benchmark
    from deepimagine_dagster.resources import CTOpenResource, StoreResource

    marker = tmp_path / "pwned"
    path = tmp_path / "ct_open.pkl"
    path.write_bytes(pickle.dumps([valid_record(Gadget(os.system, f"touch {marker}"))]))
    result = dg.materialize(
        [ct_open_benchmark],
        resources={"store": StoreResource(home=str(tmp_path / "home")), "ct_open": CTOpenResource(paths=str(path))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success and not marker.exists()
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "UnsafePickleError" in str(failure.event_specific_data.error)


# -------------------------------------------------------------------------------------------- (b) secrets in the env
SECRETS = {  # each value holds a distinctive core (after "SECRETx") that must not show up even in part
    "HF_TOKEN": "hf_SECRETxq7Hf9ZkT2wLm0123456789abcdef",
    "HUGGING_FACE_HUB_TOKEN": "hf_SECRETxN4vB8cXr1pQe9876543210",
    "CTGOV_API_KEY": "ctgov-SECRETxK2jD7sGh5Ry-5f1e2d3c4b5a",
    "DAGSTER_CLOUD_API_TOKEN": "user:SECRETxW9uE3tYb6Mn:0a1b2c3d4e",
    "DAGSTER_POSTGRES_PASSWORD": "pg-SECRETxP5oI8uYt2Rw-77e4",
    "DEEPIMAGINE_API_TOKEN": "di-SECRETxZ1aS4dF7gHj-4242",  # passed through to GPU containers by name
    "AWS_SECRET_ACCESS_KEY": "aws/SECRETxL6kJ3hG9fDs+abcdEFGH1234",
}


def leaks(text: str) -> list[str]:
    """Names of the secrets whose value, or its distinctive core, occurs in the text."""
    return [name for name, value in SECRETS.items() if value in text or value.split("SECRETx")[1][:12] in text]


def files_text(*roots: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("latin-1") for root in roots for p in sorted(root.rglob("*")) if p.is_file()
    )


def run_refresh(instance: dg.DagsterInstance, home: Path, base_url: str, **source) -> dg.ExecuteInProcessResult:
    run_config = {
        "resources": {
            "store": {"config": {"home": str(home)}},
            "trial_source": {"config": {"source": "api", "api_base_url": base_url, "page_size": 10,
                                        "requests_per_second": 0, "timeout_seconds": 5, **source}},
        }
    }
    job = defs.resolve_job_def("refresh_trials")
    return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)


def test_secrets_in_the_environment_never_reach_logs_metadata_or_files(tmp_path, monkeypatch, capfd, caplog):
    from deepimagine_dagster.executors import (
        GpuDockerSettings,
        docker_executor_config,
        k8s_gpu_executor_config_from_env,
    )

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEEPIMAGINE_TRIALS_SOURCE", "api")
    caplog.set_level("DEBUG")
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    plan = FaultPlan(rate=0.2, seed=4, kinds=("http_429", "http_503", "repeated_page", "expired_token"))
    with dg.DagsterInstance.local_temp(str(dagster_home)) as instance:
        with CTGovStandIn(fault_plan=plan) as server:
            ok = run_refresh(instance, tmp_path / "home", server.base_url)
            requests = json.dumps(server.request_log)
        failed = run_refresh(instance, tmp_path / "home_failed", "http://127.0.0.1:9/api/v2", max_retries=0)
        assert ok.success and sum(server.faults.values()) > 0
        assert not failed.success, "a refresh from an unreachable server fails (and logs why)"
        event_log = "\n".join(serialize_value(e) for r in (ok, failed) for e in instance.all_logs(r.run_id))
        run_records = "\n".join(serialize_value(instance.get_run_by_id(r.run_id)) for r in (ok, failed))

    captured = capfd.readouterr()
    places = {
        "stdout": captured.out,
        "stderr": captured.err,
        "python logs": "\n".join(r.getMessage() for r in caplog.records),
        "event log": event_log,
        "run records": run_records,
        "materialisations": serialize_value([e for r in (ok, failed) for e in r.get_asset_materialization_events()]),
        "files": files_text(tmp_path / "home", tmp_path / "home_failed", dagster_home),
        "requests sent": requests,
        "gpu executor config": json.dumps(docker_executor_config(GpuDockerSettings.from_env()))
        + json.dumps(k8s_gpu_executor_config_from_env()),
    }
    assert all("raw layer ready" in places[where] for where in ("stderr", "event log", "files")), "nothing captured"
    assert "ASSET_MATERIALIZATION" in places["event log"] and "ASSET_CHECK_EVALUATION" in places["event log"]
    assert "HF_TOKEN" in places["gpu executor config"], "tokens are passed to GPU steps by name"
    found = {where: leaks(text) for where, text in places.items() if leaks(text)}
    assert not found, f"secret values leaked: {found}"


# ------------------------------------------------------------------------------------------------ (c) non-root images
def final_user(dockerfile: Path) -> str | None:
    """The user the final stage of a Dockerfile runs as (None: no USER, so root)."""
    user = None
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.strip().split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            user = None  # a new stage starts as root again
        elif words[0].upper() == "USER" and len(words) > 1:
            user = words[1]
    return user


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_images_run_as_a_non_root_user(name):
    dockerfile = ROOT / "docker" / name
    if not dockerfile.exists():
        pytest.skip(f"docker/{name} does not exist yet (the docker issue writes it)")
    user = final_user(dockerfile)
    assert user is not None, f"docker/{name}: the final stage has no USER, so its containers run as root"
    assert user.split(":")[0] not in ("root", "0"), f"docker/{name}: USER {user} is root"
