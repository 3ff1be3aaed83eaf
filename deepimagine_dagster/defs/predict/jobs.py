"""Job `predict_trial`: predictions and a report for the trial named in the asset's config (Launchpad)."""

import dagster as dg

predict_trial_job = dg.define_asset_job(
    "predict_trial",
    selection=dg.AssetSelection.assets(["ask", "predict_trial"]),
    description="Ask about a planned trial: set ops.ask__predict_trial.config.trial to an NCT id, a v2 JSON registration "
    "or a YAML draft (or `draft` to inline YAML); report under $DEEPIMAGINE_HOME/reports/ask/<nct_id>/.",
)
