"""Weekly incremental refresh from the ClinicalTrials.gov API (stopped by default: turn it on in the UI)."""

import dagster as dg

from deepimagine_dagster.defs.trials.jobs import refresh_trials

weekly_trials_refresh = dg.ScheduleDefinition(
    name="weekly_trials_refresh",
    job=refresh_trials,
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    execution_timezone="UTC",
    run_config={"resources": {"trial_source": {"config": {"source": "api"}}}},
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Incremental API refresh: only studies updated since the last finished refresh are fetched.",
)
