"""P3 the default job end to end (embedded sample, tiny model, CPU recipes): wall time, time inside the steps, and
Dagster's own overhead (wall minus the steps, which run one after another in-process)."""

from __future__ import annotations

import os
import tempfile
import time

from bench.common import in_fresh_process


def _run(home: str) -> dict:
    os.environ["DEEPIMAGINE_HOME"] = home
    os.environ["DAGSTER_HOME"] = os.path.join(home, "dagster")
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    start = time.perf_counter()
    import dagster as dg

    from deepimagine_dagster.definitions import defs

    loaded = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("deepimagine").execute_in_process(instance=instance, raise_on_error=False)
        finished = time.perf_counter()
        starts, steps = {}, {}
        for entry in instance.all_logs(result.run_id):
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
                steps[event.step_key] = entry.timestamp - starts[event.step_key]
    wall = finished - start
    in_steps = sum(steps.values())
    return {
        "success": result.success,
        "wall_seconds": round(wall, 2),
        "definitions_load_seconds": round(loaded - start, 2),
        "steps_seconds": round(in_steps, 2),
        "dagster_overhead_seconds": round(wall - in_steps, 2),
        "dagster_overhead_share": round((wall - in_steps) / wall, 3) if wall else None,
        "slowest_steps": dict(sorted(((k, round(v, 2)) for k, v in steps.items()), key=lambda kv: -kv[1])[:8]),
    }


def run(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as home:
        result = in_fresh_process(_run, home)
    result["targets"] = "wall < 180 s on 2 cores; Dagster overhead < 20%"
    return result
