"""Job `evaluate`: load the CT Open benchmark files and write the evaluation report (needs `historical_questions`)."""

import dagster as dg

from deepimagine_dagster.executors import gpu_executor
from deepimagine_dagster.logs import INFO_LOGS

evaluate = dg.define_asset_job(
    "evaluate",
    config=INFO_LOGS,
    selection=dg.AssetSelection.assets("ct_open_benchmark", "benchmark_registrations", "evaluation_report"),
    description="Score every predictor on every benchmark (CT Open files + the historical test split) and write "
    "$DEEPIMAGINE_HOME/reports/ (evaluation.json, report.md/html, predictions, figures).",
    executor_def=gpu_executor(),
)
