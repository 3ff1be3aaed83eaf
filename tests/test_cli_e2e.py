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
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.mark.slow
def test_refresh_trials_from_the_cli_on_the_embedded_sample(tmp_path):
    proc = _dagster("refresh_trials", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    trials = ds.dataset(tmp_path / "tables" / "trials.parquet").to_table()
    assert trials.num_rows >= 340
    for name in ("arm_groups", "interventions", "outcome_measures", "outcome_groups", "outcome_results",
                 "outcome_analyses", "locations", "quarantine"):
        assert (tmp_path / "tables" / f"{name}.parquet").exists(), name
