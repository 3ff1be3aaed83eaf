"""A refresh against a stand-in that fails 20% of requests in every way it can, and a refresh killed mid-way under
the same faults, end with exactly the served set of studies: 0 lost, 0 duplicated, in bounded time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepimagine_core.ctgov.api import CTGovClient, StudyQuery
from deepimagine_core.ctgov.raw_api import iter_raw_api, refresh_api
from tests.ctgov_stand_in import FAULT_KINDS, CTGovStandIn, FaultPlan

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
QUERY = StudyQuery(page_size=2)  # small pages: many requests, so every fault kind shows up
CLIENT = {"requests_per_second": 0, "timeout": 0.3, "max_retries": 8, "backoff_initial": 0.01, "backoff_max": 0.1}
BOUND_SECONDS = 90


def plan(seed: int) -> FaultPlan:
    return FaultPlan(rate=0.2, seed=seed, retry_after="0.05", stall_seconds=0.6)


def tally(raw_dir: Path, expected: set[str]) -> dict:
    records = list(iter_raw_api(raw_dir))
    ids = [r.nct_id for r in records]
    return {
        "expected": len(expected),
        "records": len(records),
        "unreadable": sum(r.error is not None for r in records),
        "lost": len(expected - set(ids)),
        "unexpected": len(set(ids) - expected),
        "duplicated": len(ids) - len(set(ids)),
    }


@pytest.mark.parametrize("seed", [11, 23])
def test_refresh_under_20_percent_faults_loses_and_duplicates_nothing(tmp_path, seed):
    with CTGovStandIn(fault_plan=plan(seed)) as server, CTGovClient(server.base_url, **CLIENT) as client:
        started = time.monotonic()
        summary = refresh_api(client, QUERY, tmp_path)
        seconds = time.monotonic() - started
        expected = server.expected_ids(QUERY.params())
        figures = {
            "seed": seed,
            "requests": server.requests,
            "faults": dict(sorted(server.faults.items())),
            "fault_rate": round(sum(server.faults.values()) / server.requests, 3),
            "pages_served": server.pages_served,
            "studies_served": server.studies_served,
            "served_ids": len(server.served_ids),
            "client_retries": summary.retries,
            "seconds": round(seconds, 2),
            **tally(tmp_path, expected),
        }
    print("\nfault figures:", json.dumps(figures))
    assert set(server.faults) == set(FAULT_KINDS), figures  # every kind was injected at least once
    assert 0.1 <= figures["fault_rate"] <= 0.3, figures
    assert summary.finished and server.served_ids == expected, figures
    assert figures["lost"] == figures["duplicated"] == figures["unexpected"] == figures["unreadable"] == 0, figures
    assert seconds < BOUND_SECONDS, figures


CHILD = """
import os, signal, sys
from pathlib import Path
from deepimagine_core.ctgov.api import CTGovClient, StudyQuery
from deepimagine_core.ctgov.raw_api import refresh_api

def progress(summary):
    if summary.pages >= int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)

client = CTGovClient(sys.argv[1], requests_per_second=0, timeout=0.3, backoff_initial=0.01, backoff_max=0.1)
refresh_api(client, StudyQuery(page_size=2), Path(sys.argv[2]), progress=progress)
"""


def test_refresh_killed_under_faults_resumes_to_the_served_set(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with CTGovStandIn(fault_plan=plan(5)) as server:
        started = time.monotonic()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, server.base_url, str(tmp_path), "15"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        killed_at = json.loads(next(tmp_path.glob("runs/*/cursor.json")).read_text())
        with CTGovClient(server.base_url, **CLIENT) as client:
            summary = refresh_api(client, QUERY, tmp_path)
        seconds = time.monotonic() - started
        expected = server.expected_ids(QUERY.params())
        figures = {"killed_after_pages": killed_at["pages_done"], "faults": dict(server.faults)}
        figures.update(tally(tmp_path, expected))
    print("\nkill figures:", json.dumps(figures))
    assert killed_at["pages_done"] >= 15 and not killed_at["finished"]
    assert summary.resumed and summary.finished and summary.run_id == killed_at["run_id"]
    assert figures["lost"] == figures["duplicated"] == figures["unexpected"] == 0, figures
    assert sum(server.faults.values()) > 0 and seconds < BOUND_SECONDS
