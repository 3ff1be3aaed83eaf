"""Job `build_pairs`: split, questions, natural pairs, retrieval index, approximate pairs and the dataset export (with
their checks), from the trial tables already built (job `refresh_trials`)."""

import dagster as dg

build_pairs = dg.define_asset_job(
    "build_pairs",
    selection=dg.AssetSelection.groups("pairs"),
    description="Build historical questions, natural and approximate pairs, the retrieval index and the dataset "
    "export.",
)
