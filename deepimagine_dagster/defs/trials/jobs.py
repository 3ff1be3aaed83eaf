"""Job `refresh_trials`: the raw layer and every trial table (with their checks)."""

import dagster as dg

from deepimagine_dagster.logs import INFO_LOGS

refresh_trials = dg.define_asset_job(
    "refresh_trials",
    config=INFO_LOGS,
    selection=dg.AssetSelection.groups("trials"),
    description="Fetch or read the trial source and rebuild the normalised trial tables.",
)
