"""Job `refresh_trials`: the raw layer and every trial table (with their checks)."""

import dagster as dg

refresh_trials = dg.define_asset_job(
    "refresh_trials",
    selection=dg.AssetSelection.groups("trials"),
    description="Fetch or read the trial source and rebuild the normalised trial tables.",
)
