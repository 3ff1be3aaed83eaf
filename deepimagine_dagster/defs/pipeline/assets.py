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


#: metadata entries in which an asset says why it (or a part of it) is empty or was skipped
REASON_ENTRIES = ("why_empty", "skipped", "nothing_evaluated")


def empty_parts(context: dg.AssetExecutionContext, keys) -> dict[str, str]:
    """{"asset[/part]": reason} from the latest materialisation of each of `keys` (a small source leaves parts empty)."""
    parts: dict[str, str] = {}
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        event = context.instance.get_latest_materialization_event(key)
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        for entry in REASON_ENTRIES:
            value = getattr(metadata.get(entry), "value", None)
            if isinstance(value, dict):
                parts.update({f"{key.to_user_string()}/{k}": str(v) for k, v in value.items()})
            elif value:
                parts[key.to_user_string()] = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return parts


@dg.asset(group_name=GROUP, deps=LAST_BEFORE_SUMMARY, kinds={"python"})
def run_summary(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """Tables and their row counts, published adapters, the evaluation report's path and headline figures, and why
    any part is empty or was skipped."""
    st = store.get()
    summary = summarize_store(st, published_adapters(st), empty_parts(context, context.instance.get_asset_keys()))
    context.log.info("run summary\n" + summary.text())
    metadata = {"summary": dg.MetadataValue.md(summary.markdown()), "store": dg.MetadataValue.path(str(st.root)),
                "tables": dg.MetadataValue.json(summary.tables), "adapters": dg.MetadataValue.json(summary.adapters)}
    if summary.report:
        metadata["report"] = dg.MetadataValue.path(str(summary.report))
    return dg.MaterializeResult(metadata=metadata)
