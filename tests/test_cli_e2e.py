"""End to end through the CLI, as a user runs it: `dagster job execute` in a subprocess on the embedded default."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _dagster(job: str, home: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEEPIMAGINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **(extra_env or {})}
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    env.pop("DEEPIMAGINE_TRIALS_SOURCE", None)
    cmd = [sys.executable, "-m", "dagster", "job", "execute", "-m", "deepimagine_dagster.definitions", "-j", job]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1100)


@pytest.mark.slow
def test_refresh_trials_from_the_cli_on_the_embedded_sample(tmp_path):
    proc = _dagster("refresh_trials", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " - INFO - " in proc.stderr and " - DEBUG - " not in proc.stdout + proc.stderr  # INFO by default
    trials = ds.dataset(tmp_path / "tables" / "trials.parquet").to_table()
    assert trials.num_rows >= 340
    for name in ("arm_groups", "interventions", "outcome_measures", "outcome_groups", "outcome_results",
                 "outcome_analyses", "locations", "quarantine"):
        assert (tmp_path / "tables" / f"{name}.parquet").exists(), name


@pytest.mark.slow
def test_main_job_runs_the_whole_graph_offline(tmp_path):
    """The README's main command: every asset on the embedded sample with the tiny model and CPU recipes."""
    import json

    proc = _dagster("deepimagine", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    console = proc.stdout + proc.stderr  # readable: INFO lines, no bars, no library warnings, a closing summary
    assert " - DEBUG - " not in console and "it/s]" not in console and "is_gradient_checkpointing" not in console
    assert "run summary" in console and "weighted accuracy" in console.split("run summary", 1)[1]
    assert len(console.splitlines()) < 200, len(console.splitlines())
    for name in ("trials", "historical_questions", "natural_pairs", "approximate_pairs", "reasoning_traces"):
        assert ds.dataset(tmp_path / "tables" / f"{name}.parquet").count_rows() > 0, name
    for adapter in ("sft_arm", "sft_outcome", "grpo"):
        assert (tmp_path / "models" / adapter / "adapter" / "adapter_model.safetensors").is_file(), adapter
        assert (tmp_path / "models" / adapter / "adapter" / "README.md").is_file(), adapter
    report = json.loads((tmp_path / "reports" / "evaluation.json").read_text())
    predictors = set(report["historical_test"])
    assert {"majority", "logreg", "random_forest", "knn_history", "llm_direct", "llm_rag", "deepimagine"} <= predictors
    assert {"deepimagine_sft", "llm_direct_grpo"} <= predictors
    assert list((tmp_path / "reports" / "trajectories").rglob("*.jsonl"))
    assert "meaningless" in (tmp_path / "reports" / "report.md").read_text()
