"""Kill a training run (SIGKILL, in a subprocess through the CLI) after a checkpoint exists, plant a half-written
checkpoint, re-run: it resumes from the last COMPLETE checkpoint and ends at the same total step count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepimagine_core.llm import tiny
from deepimagine_core.training.checkpoints import COMPLETE_MARKER, last_complete_checkpoint
from deepimagine_core.training.data import synthetic_sft_examples, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
MAX_STEPS = 12


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    return tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")


def cli(data: Path, out: Path, model: Path) -> list[str]:
    return [
        sys.executable, "-m", "deepimagine_core.training.cli", "sft", "--recipe", "sft_cpu_tiny",
        "--data", str(data), "--output-dir", str(out), "--name", "sft_arm",
        "--set", f"model_name_or_path={model}", "--set", f"max_steps={MAX_STEPS}", "--set", "save_steps=3",
        "--set", "per_device_train_batch_size=1",
    ]


def wait_for_complete_checkpoint(proc: subprocess.Popen, checkpoints: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(checkpoints.glob(f"checkpoint-*/{COMPLETE_MARKER}")):
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited (code {proc.returncode}) before any checkpoint was complete")
        time.sleep(0.02)
    raise AssertionError("no complete checkpoint appeared in time")


@pytest.mark.slow
@pytest.mark.faults
def test_killed_run_resumes_from_last_complete_checkpoint(tiny_model_path, tmp_path):
    data = write_jsonl(synthetic_sft_examples(16), tmp_path / "sft.jsonl")
    out = tmp_path / "sft_arm"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cli(data, out, tiny_model_path), cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            wait_for_complete_checkpoint(proc, out / "checkpoints")
            proc.kill()  # SIGKILL: no cleanup, no final save
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -9, (tmp_path / "first.log").read_text()[-2000:]
    assert not (out / "adapter").exists(), "the killed run must not have published an adapter"
    resume_point = last_complete_checkpoint(out / "checkpoints")
    assert resume_point is not None and int(resume_point.name.split("-")[1]) < MAX_STEPS

    # A half-written checkpoint beyond the resume point (killed mid-save): it must be ignored and removed.
    half = out / "checkpoints" / f"checkpoint-{MAX_STEPS - 1}"
    half.mkdir(exist_ok=True)
    (half / "adapter_config.json").write_text("{}")

    rerun = subprocess.run(cli(data, out, tiny_model_path), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert result["global_step"] == MAX_STEPS
    assert result["resumed_from"] == str(resume_point)
    assert not half.exists()
    published = json.loads((out / "adapter" / "training_result.json").read_text())
    assert published["global_step"] == MAX_STEPS and published["resumed_from"] == str(resume_point)
    assert f"resumed from: {resume_point}" in (out / "adapter" / "README.md").read_text()
    steps_logged = [e["step"] for e in published["log_history"] if "loss" in e]
    assert steps_logged == list(range(1, MAX_STEPS + 1))  # the history before the kill was restored, not redone

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_path), out / "adapter")
