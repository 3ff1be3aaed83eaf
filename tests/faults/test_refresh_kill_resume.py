"""The refresh run, killed mid-way as a user's process can be, resumes on the next run and ends with the same tables.

As a user runs it: `dagster job execute -m deepimagine_dagster.definitions -j refresh_trials -c config.yaml` in its own
process group, with DEEPIMAGINE_TRIALS_SOURCE=api, DEEPIMAGINE_HOME and DAGSTER_HOME in temp folders, the trial source
pointed at the ClinicalTrials.gov stand-in (94 matching real studies, 5 per page, 20% faults). The stand-in holds the
page after the 8th good one, so the kill lands mid-way every time; the whole process group is SIGKILLed, the same
command runs again, and its tables must equal, row for row, those of an uninterrupted run into another home (all
columns but `source_ref`, which names the raw run and page a row was read from).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from deepimagine_core.ctgov.api import StudyQuery
from deepimagine_core.ctgov.raw_api import iter_raw_api
from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.store import Store
from deepimagine_dagster.definitions import defs
from tests.ctgov_stand_in import CTGovStandIn, FaultPlan

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
PAGE_SIZE = 5
HOLD_AFTER_PAGES = 8
# No stalls (the client's backoff starts at 1 s, so every fault kind that backs off is kept to a few).
PLAN = FaultPlan(rate=0.2, seed=9, kinds=("http_429", "http_503", "truncated_json", "repeated_page", "expired_token"),
                 max_faults=8)


class HeldStandIn(CTGovStandIn):
    """Serves `hold_after` good pages, then holds every request until `release()`: a run is certainly mid-way."""

    def __init__(self, hold_after: int, **kwargs):
        super().__init__(**kwargs)
        self.hold_after = hold_after
        self.holding = threading.Event()
        self._released = threading.Event()

    def answer(self, params):
        if not self._released.is_set() and self.pages_served >= self.hold_after:
            self.holding.set()
            self._released.wait(timeout=300)
        return super().answer(params)

    def release(self) -> None:
        self._released.set()


def source_config(base_url: str) -> dict:
    return {"source": "api", "api_base_url": base_url, "page_size": PAGE_SIZE, "requests_per_second": 0,
            "timeout_seconds": 10}


def start_refresh(home: Path, config: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEEPIMAGINE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "DEEPIMAGINE_TRIALS_SOURCE": "api",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "dagster", "job", "execute", "-m", "deepimagine_dagster.definitions",
               "-j", "refresh_trials", "-c", str(config)]
    with open(log, "w") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group, killed as a whole


def page_files(home: Path) -> list[Path]:
    return sorted(home.glob("raw/api/runs/*/page-*.jsonl.gz"))


def table_rows(store: Store, name: str) -> list[str]:
    """A table's rows without `source_ref`, as sorted JSON lines (list columns included)."""
    rows = store.read_table(name).drop_columns(
        [c for c in ("source_ref",) if c in TABLES[name].names]
    ).to_pylist()
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def test_killed_refresh_resumes_to_the_tables_of_an_uninterrupted_run(tmp_path):
    home, reference = tmp_path / "home", tmp_path / "reference"
    started = time.monotonic()
    with HeldStandIn(HOLD_AFTER_PAGES, fault_plan=PLAN, max_lifetime=600) as server:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"resources": {"trial_source": {"config": source_config(server.base_url)}}}))

        # 1. Start the refresh, wait until it is mid-way (pages saved, the next one held), kill its process group.
        first = start_refresh(home, config, tmp_path / "first.log")
        while not (server.holding.is_set() and page_files(home)):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() - started < 240, "the refresh never got mid-way"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        killed_pages = len(page_files(home))
        (cursor_file,) = home.glob("raw/api/runs/*/cursor.json")
        killed_cursor = json.loads(cursor_file.read_text())
        assert not killed_cursor["finished"] and not home.joinpath("tables", "trials.parquet").exists()
        server.release()

        # 2. The same command again: it resumes the killed run and finishes.
        second = start_refresh(home, config, tmp_path / "second.log")
        assert second.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-5000:]
        second_log = (tmp_path / "second.log").read_text()
        # exit status 0 above is the run's success (RUN_SUCCESS is a DEBUG event, off the INFO console); the
        # ingest line shows that this resumed run published the tables
        assert "trial_tables - ingest:" in second_log and "studies read" in second_log, second_log[-3000:]
        expected = server.expected_ids(StudyQuery(page_size=PAGE_SIZE).params())
        figures = {
            "killed_after_pages": killed_pages,
            "faults_injected": dict(sorted(server.faults.items())),
            "requests": server.requests,
            "pages_served": server.pages_served,
            "studies_served": server.studies_served,
            "distinct_studies_served": len(server.served_ids),
            "expected": len(expected),
        }

    # 3. An uninterrupted run into another home, from a stand-in without faults.
    with CTGovStandIn() as clean:
        run_config = {"resources": {"store": {"config": {"home": str(reference)}},
                                    "trial_source": {"config": source_config(clean.base_url)}}}
        result = defs.resolve_job_def("refresh_trials").execute_in_process(
            run_config=run_config, instance=dg.DagsterInstance.ephemeral()
        )
        assert result.success

    store, reference_store = Store(home), Store(reference)
    raw_ids = [r.nct_id for r in iter_raw_api(home / "raw" / "api")]
    trial_ids = store.read_table("trials").column("nct_id").to_pylist()
    (run_dir,) = (home / "raw" / "api" / "runs").iterdir()
    figures.update(
        resumed_same_run=run_dir.name == killed_cursor["run_id"],
        raw_records=len(raw_ids),
        trials=len(trial_ids),
        lost=len(expected - set(trial_ids)),
        duplicated=len(raw_ids) - len(set(raw_ids)) + len(trial_ids) - len(set(trial_ids)),
        unexpected=len(set(trial_ids) - expected),
        seconds=round(time.monotonic() - started, 1),
    )
    print("\nkill-resume figures:", json.dumps(figures))
    assert figures["resumed_same_run"] and json.loads((run_dir / "cursor.json").read_text())["finished"]
    assert 0 < killed_pages < figures["expected"] / PAGE_SIZE, figures
    assert set(raw_ids) == expected and figures["lost"] == figures["duplicated"] == figures["unexpected"] == 0, figures
    for name in TABLES:
        assert table_rows(store, name) == table_rows(reference_store, name), f"table {name} differs"
    assert sum(server.faults.values()) > 0, figures
