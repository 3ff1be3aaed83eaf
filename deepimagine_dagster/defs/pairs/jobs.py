"""Job `build_pairs`: split, questions, natural pairs, retrieval index, approximate pairs and the dataset export (with
their checks), from the trial tables already built (job `refresh_trials`)."""

import dagster as dg

from deepimagine_dagster.logs import INFO_LOGS

build_pairs = dg.define_asset_job(
    "build_pairs",
    config=INFO_LOGS,
    selection=dg.AssetSelection.groups("pairs"),
    description="Build historical questions, natural and approximate pairs, the retrieval index and the dataset "
    "export.",
)
