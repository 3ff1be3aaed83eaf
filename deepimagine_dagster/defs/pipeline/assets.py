"""Asset `run_summary`: the last step of the main job, a short account of what the run left in the store (tables and
row counts, adapters, the report's path and headline figures), logged to the console and shown in the UI.

Thin: the work is in `deepimagine_core.summary`.
"""

import dagster as dg

from deepimagine_core.summary import summarize_store
from deepimagine_core.training.adapters import published_adapters
from deepimagine_dagster.resources import StoreResource

GROUP = "pipeline"


#: every other asset of the `deepimagine` job is upstream of these, so the summary is the job's last step
#: (tests/dagster/test_readable_runs.py checks it; a new leaf asset goes here)
LAST_BEFORE_SUMMARY = ["evaluation_report", "pair_datasets", "benchmark_history", "question_skips", "locations",
                       "quarantine"]


@dg.asset(group_name=GROUP, deps=LAST_BEFORE_SUMMARY, kinds={"python"})
def run_summary(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """Tables and their row counts, published adapters, the evaluation report's path and headline figures."""
    st = store.get()
    summary = summarize_store(st, published_adapters(st))
    context.log.info("run summary\n" + summary.text())
    metadata = {"summary": dg.MetadataValue.md(summary.markdown()), "store": dg.MetadataValue.path(str(st.root)),
                "tables": dg.MetadataValue.json(summary.tables), "adapters": dg.MetadataValue.json(summary.adapters)}
    if summary.report:
        metadata["report"] = dg.MetadataValue.path(str(summary.report))
    return dg.MaterializeResult(metadata=metadata)
