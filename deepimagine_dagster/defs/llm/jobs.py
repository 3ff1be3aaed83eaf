"""Job `generate_traces`: teacher traces for the training-split natural pairs (a GPU job on a GPU host)."""

import dagster as dg

from deepimagine_core.tables import REASONING_TRACES_TABLE
from deepimagine_dagster.executors import gpu_executor
from deepimagine_dagster.logs import INFO_LOGS

generate_traces = dg.define_asset_job(
    "generate_traces",
    config=INFO_LOGS,
    selection=dg.AssetSelection.assets(REASONING_TRACES_TABLE),
    description="Reasoning traces for training-split natural pairs, verified against the observed change.",
    tags={"deepimagine/gpu": "true"},
    executor_def=gpu_executor(),
)
