"""The columnar, multi-process ingest publishes the same tables as the row-dict parser it replaced, row for row, and
the same tables whatever the number of workers.

The reference is a digest per (table, column) of the tables today's row-dict code published
(`data/ingest_digests.json`, see `ingest_digests.py`). Columns owned by the result-group → arm matcher
(`ctgov.arm_match`, changed on its own) are compared between worker counts only, and columns added since the digests
were taken are compared between worker counts only too. The v2 JSON sample alone is compared on every column
against digests taken just before issue #16's session-4 CPU cuts.
"""

from __future__ import annotations

import json

import pytest

from deepimagine_core.ctgov.parse_pool import ParseSettings
from tests.core.ingest_digests import STORED, V2_JSON, ingest_digests, shared_sample

MATCHER_COLUMNS = {("outcome_groups", "arm_label"), ("outcome_groups", "arm_match_method")}


def _differences(reference: dict, got: dict, skip: set = frozenset()) -> list[str]:
    out = []
    for table, ref in reference.items():
        if table not in got:
            out.append(f"{table}: missing")
            continue
        if ref["rows"] != got[table]["rows"]:
            out.append(f"{table}: {got[table]['rows']} rows, expected {ref['rows']}")
        for column, digest in ref["columns"].items():
            if (table, column) not in skip and got[table]["columns"].get(column) != digest:
                out.append(f"{table}.{column} differs")
    return out


def _check(which: str, batch_size: int) -> None:
    stored = json.loads(STORED.read_text())[which]
    one = ingest_digests(which, parse=ParseSettings(workers=1, batch_size=batch_size))
    many = ingest_digests(which, parse=ParseSettings(workers=2, batch_size=batch_size))
    assert one == many, _differences(one, many)  # every column, matcher's included: order and content
    assert not _differences(stored, one, skip=MATCHER_COLUMNS)
    assert one["trials"]["rows"] > 0


def test_embedded_sample_same_tables_as_the_row_dict_parser_with_1_and_2_workers():
    _check("embedded", batch_size=40)  # 348 records: 9 batches, parsed by the pool several at a time


@pytest.mark.skipif(shared_sample() is None, reason="the shared 3,000-study legacy XML sample is not on this machine")
def test_shared_3000_study_sample_same_tables_as_the_row_dict_parser_with_1_and_2_workers():
    _check("shared", batch_size=128)


def test_v2_json_sample_same_tables_every_column_as_before_the_cpu_cuts_with_1_and_2_workers():
    stored = json.loads(STORED.read_text())[V2_JSON]
    one = ingest_digests(V2_JSON, parse=ParseSettings(workers=1, batch_size=40))
    many = ingest_digests(V2_JSON, parse=ParseSettings(workers=2, batch_size=40))  # 98 records: 3 batches
    assert one == many, _differences(one, many)
    assert not _differences(stored, one)  # the arm matcher's columns included
    assert one["trials"]["rows"] == 98


def test_differences_are_reported():
    ref = {"t": {"rows": 2, "columns": {"a": "x", "b": "y"}}}
    assert _differences(ref, {"t": {"rows": 3, "columns": {"a": "x", "b": "z"}}}) == ["t: 3 rows, expected 2",
                                                                                       "t.b differs"]
    assert _differences(ref, {"t": {"rows": 2, "columns": {"a": "x", "b": "z"}}}, skip={("t", "b")}) == []


def _embedded_with_a_broken_record():
    from deepimagine_core.ctgov.archives import iter_embedded_sample
    from deepimagine_core.ctgov.records import LEGACY_XML, RawStudy

    raws = list(iter_embedded_sample())
    broken = RawStudy(LEGACY_XML, "test:broken.xml", "<clinical_study><id_info>", nct_id="NCT00000001")
    return raws[:150] + [broken] + raws[150:], len(raws)


def test_one_record_failing_in_a_worker_is_quarantined_alone(tmp_path):
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.store import Store

    raws, good = _embedded_with_a_broken_record()
    summary = ingest(raws, Store(tmp_path), parse=ParseSettings(workers=2, batch_size=40))
    assert summary.studies_read == good + 1 and summary.reconciles
    assert summary.trials + summary.duplicates_dropped + summary.quarantined == good + 1
    rows = [q for q in Store(tmp_path).read_table("quarantine").to_pylist() if q["source_ref"] == "test:broken.xml"]
    assert [(q["level"], q["stage"]) for q in rows] == [("record", "parse")] and "malformed XML" in rows[0]["reason"]


def test_a_worker_process_that_dies_loses_no_record(tmp_path, caplog):
    import dataclasses
    import logging
    import os

    from deepimagine_core.ctgov.archives import iter_embedded_sample
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.ctgov.records import RawStudy
    from deepimagine_core.store import Store

    class DiesInAWorker(RawStudy):
        """The same record in this process; in a worker process, receiving it kills the worker (as a crash or an
        out-of-memory kill would), whatever the pool's start method."""

        def __reduce__(self):
            return os._exit, (3,)

    def raws():
        for i, raw in enumerate(iter_embedded_sample()):
            yield DiesInAWorker(**dataclasses.asdict(raw)) if i == 200 else raw

    expected = ingest(raws(), Store(tmp_path / "a"), parse=ParseSettings(workers=1))
    with caplog.at_level(logging.WARNING, logger="deepimagine_core.ctgov.parse_pool"):
        got = ingest(raws(), Store(tmp_path / "b"), parse=ParseSettings(workers=2, batch_size=40))
    assert "parse worker failed" in caplog.text  # the pool broke, and its batches were parsed here
    assert 'if __name__ == "__main__":' in caplog.text  # with the commonest cause named
    assert got.rows == expected.rows and got.quarantined == expected.quarantined
    assert Store(tmp_path / "b").read_table("trials").equals(Store(tmp_path / "a").read_table("trials"))


def test_a_script_without_a_main_guard_still_ingests_and_is_told_why_workers_died(tmp_path):
    """Spawned workers re-run the calling script; unguarded, each dies at start. The ingest still completes in the
    calling process, and the warning names the fix."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from deepimagine_core.ctgov.archives import iter_embedded_sample\n"
        "from deepimagine_core.ctgov.ingest import ingest\n"
        "from deepimagine_core.ctgov.parse_pool import ParseSettings\n"
        "from deepimagine_core.store import Store\n"
        f"print('trials', ingest(iter_embedded_sample(), Store({str(tmp_path / 'store')!r}),\n"
        "                        parse=ParseSettings(workers=2, batch_size=40)).trials)\n")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    from deepimagine_core.ctgov.archives import iter_embedded_sample
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.store import Store

    expected = ingest(iter_embedded_sample(), Store(tmp_path / "ref"), parse=ParseSettings(workers=1)).trials
    assert expected > 0 and done.stdout.splitlines()[-1] == f"trials {expected}"
    assert 'under `if __name__ == "__main__":`' in done.stderr


def _ignore_sigterm_and_sleep(marker: str, seconds: float) -> None:
    """A pool task that stands for a worker deaf to SIGTERM (started with SIGTERM ignored, or stuck)."""
    import os
    import signal
    import time
    from pathlib import Path

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)


def test_a_broken_pool_leaves_no_worker_and_no_spinning_thread(tmp_path):
    """One worker dies while the other ignores SIGTERM: closing the broken pool kills the survivor, so the executor's
    manager thread ends (it used to spin at 100% CPU and keep the interpreter from exiting)."""
    import os
    import signal
    import threading
    import time

    from deepimagine_core.ctgov import parse_pool

    marker = tmp_path / "deaf.pid"
    pool = parse_pool._pool(2)
    deaf = pool.submit(_ignore_sigterm_and_sleep, str(marker), 60)
    other = pool.submit(os.getpid)  # a second worker starts: the first is busy
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    deaf_pid = int(marker.read_text())
    victim = other.result(timeout=60)
    assert victim != deaf_pid
    manager, processes = pool._executor_manager_thread, list(pool._processes.values())
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(Exception):  # BrokenProcessPool
        deaf.result(timeout=60)
    parse_pool._close(pool)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (manager.is_alive() or any(p.is_alive() for p in processes)):
        time.sleep(0.1)
    assert not any(p.is_alive() for p in processes)
    assert not manager.is_alive() and manager not in threading.enumerate()
