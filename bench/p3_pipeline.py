"""P3 the default job end to end (embedded sample, tiny model, CPU recipes): wall time, time inside the steps, and
Dagster's own overhead (wall minus the steps, which run one after another in-process).

Full run: the whole `deepimagine` job exactly as a new user runs it (no run config). --quick runs a reduced
selection instead: the assets of jobs `refresh_trials` and `build_pairs` (groups ``trials`` and ``pairs``), so CI
proves the measurement works within its budget; ``job`` and ``selection`` say what ran.
"""

from __future__ import annotations

import os
import tempfile
import time

from bench.common import in_fresh_process

QUICK_GROUPS = ("trials", "pairs")
TIMEOUT = 3600.0  # seconds: a run this long has failed its 180 s target anyway
#: The offline default the job is measured on, whatever the caller's environment says.
DEFAULT_ENV = {"DEEPIMAGINE_TRIALS_SOURCE": "sample", "DEEPIMAGINE_LLM_BACKEND": "transformers",
               "DEEPIMAGINE_LLM_MODEL": "tiny", "DEEPIMAGINE_LLM_DEVICE": "cpu", "DEEPIMAGINE_CT_OPEN": ""}


def _job(defs, quick: bool):
    import dagster as dg

    if not quick:
        return defs.resolve_job_def("deepimagine")
    job = dg.define_asset_job("bench_quick", selection=dg.AssetSelection.groups(*QUICK_GROUPS))
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("bench_quick")


def _step_times(instance, run_id: str) -> tuple[dict[str, float], list[str]]:
    """Seconds per step (STEP_START to STEP_SUCCESS/FAILURE) and the failed steps, from the run's event log."""
    starts, steps, failed = {}, {}, []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            steps[event.step_key] = entry.timestamp - starts[event.step_key]
            if event.event_type_value == "STEP_FAILURE":
                failed.append(event.step_key)
    return steps, failed


def _run(home: str, quick: bool) -> dict:
    os.environ.update(DEFAULT_ENV)
    os.environ["DEEPIMAGINE_HOME"] = home
    os.environ["DAGSTER_HOME"] = os.path.join(home, "dagster")
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    import dagster as dg

    from deepimagine_dagster.definitions import defs

    loaded = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        job = _job(defs, quick)
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        finished, cpu = time.perf_counter(), time.process_time() - cpu_start
        steps, failed = _step_times(instance, result.run_id)
    wall = finished - start
    in_steps = sum(steps.values())
    return {
        "job": job.name,
        "selection": f"groups {', '.join(QUICK_GROUPS)} (refresh_trials + build_pairs)" if quick
        else "all assets, default config",
        "success": result.success,
        **({} if result.success else {"error": f"job failed; failed steps: {failed or 'none reported'}"}),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "definitions_load_seconds": round(loaded - start, 2),
        "steps": len(steps),
        "steps_seconds": round(in_steps, 2),
        "dagster_overhead_seconds": round(wall - in_steps, 2),
        "dagster_overhead_share": round((wall - in_steps) / wall, 3) if wall else None,
        "slowest_steps": dict(sorted(((k, round(v, 2)) for k, v in steps.items()), key=lambda kv: -kv[1])[:8]),
    }


def run(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-p3-") as home:
        result = in_fresh_process(_run, home, quick, timeout=TIMEOUT)
    result["targets"] = "wall < 180 s on 2 cores; Dagster overhead < 20%"
    if not quick:
        result["target_met"] = bool(result["success"] and result["wall_seconds"] < 180
                                    and result["dagster_overhead_share"] < 0.2)
    return result


def headline(r: dict) -> str:
    """One line for results.md."""
    return (f"{r['job']} ({r['selection']}): {r['wall_seconds']} s wall, {r['cpu_seconds']} s CPU, "
            f"Dagster overhead {r['dagster_overhead_share']:.0%} (definitions load {r['definitions_load_seconds']} s)")
