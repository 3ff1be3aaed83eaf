"""The code location loads, from Python and from workspace.yaml, with the contracted jobs, schedules and assets."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from deepimagine_core.ctgov.schemas import TABLES

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_load_with_contracted_names():
    from deepimagine_dagster.definitions import defs

    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {"refresh_trials", "deepimagine"} <= jobs
    assert "weekly_trials_refresh" in {s.name for s in defs.schedules}
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_studies", *TABLES} <= keys
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"trials_unique_key", "outcome_results_has_trial", "p_values_in_unit_interval",
            "quarantine_rate_under_threshold"} <= checks
    assert {"store", "trial_source", "ct_open"} <= set(defs.resources)


def test_heavy_libraries_are_not_imported_by_the_code_location():
    code = (
        "import sys, deepimagine_dagster.definitions as d; "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'vllm') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_core_never_imports_dagster():
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "deepimagine_core").rglob("*.py")
        if "import dagster" in p.read_text() or "from dagster" in p.read_text()
    ]
    assert offenders == []


def test_workspace_yaml_loads():
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with dg.instance_for_test() as instance:
        target = WorkspaceFileTarget(paths=[str(ROOT / "workspace.yaml")])
        with WorkspaceProcessContext(instance, target) as ctx:
            request = ctx.create_request_context()
            entries = request.get_code_location_entries()
            assert set(entries) == {"deepimagine"}
            entry = entries["deepimagine"]
            assert entry.load_error is None, entry.load_error
            repo = next(iter(entry.code_location.get_repositories().values()))
            assert "refresh_trials" in {job.name for job in repo.get_all_jobs()}


def test_schedule_runs_refresh_against_the_api():
    from deepimagine_dagster.definitions import defs

    schedule = next(s for s in defs.schedules if s.name == "weekly_trials_refresh")
    assert schedule.job_name == "refresh_trials"
    ctx = dg.build_schedule_context()
    run_request = next(iter(schedule.evaluate_tick(ctx).run_requests))
    assert run_request.run_config["resources"]["trial_source"]["config"]["source"] == "api"
