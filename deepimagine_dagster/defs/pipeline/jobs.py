"""Job `deepimagine`: materialise every asset (trial tables → pairs → traces → operators → evaluation report).

On the offline default (embedded sample, tiny local model, CPU recipes) it runs in-process on a laptop; it is the
README's main command.
"""

import dagster as dg

from deepimagine_dagster.logs import INFO_LOGS

deepimagine = dg.define_asset_job(
    "deepimagine",
    config=INFO_LOGS,
    # every asset but `ask/predict_trial`, which answers a question the user asks (job `predict_trial`)
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ask"),
    description="The whole DeepImagine graph on the configured defaults (offline: embedded sample + tiny model).",
)
