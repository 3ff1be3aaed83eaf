"""Job `train`: the SFT operators and the GRPO policy (with their checks). On a CPU it runs in-process with the tiny
recipes; on a GPU host the Docker executor runs the assets tagged `deepimagine/gpu` in GPU containers."""

import dagster as dg

from deepimagine_dagster.executors import gpu_executor
from deepimagine_dagster.logs import INFO_LOGS

train = dg.define_asset_job(
    "train",
    config=INFO_LOGS,
    selection=dg.AssetSelection.groups("training"),
    description="Fine-tune the per-factor counterfactual operators (SFT + LoRA) and the GRPO policy.",
    executor_def=gpu_executor(),
)
