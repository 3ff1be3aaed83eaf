"""Asset `reasoning_traces`: teacher explanations of natural-pair transitions, each with its verdict.

Thin: the work is in `deepimagine_core.llm.traces`. Re-runs append: pairs already traced by the same model and
template are skipped, so a killed or extended run only does what is missing. GPU-tagged (op tag and pool `gpu`) so the
Docker executor can route it; `materialize` and in-process runs ignore both.
"""

import json

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.llm.backends import SamplingParams, is_tiny
from deepimagine_core.llm.prompts import template_id
from deepimagine_core.llm.traces import TracesRun, acceptance_by_factor, extend_traces
from deepimagine_core.pairs.empty import why_no_traces
from deepimagine_core.tables import NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE
from deepimagine_dagster.metadata import table_metadata
from deepimagine_dagster.resources import LLMBackendResource, StoreResource

GROUP = "llm"
GPU_TAGS = {"deepimagine/gpu": "true"}
TINY_NOTE = "Teacher is the tiny local model (random weights): these traces and verdicts are meaningless."


class TracesConfig(dg.Config):
    n_samples: int = 2  # traces per pair
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    max_pairs: int = 256  # new pairs per run (re-runs continue where this one stopped); 0 = all
    seed: int = 0


def _sample_markdown(table: pa.Table) -> str:
    if table.num_rows == 0:
        return "_(no traces)_"
    accepted = table.filter(table["accepted"])
    row = (accepted if accepted.num_rows else table).slice(0, 1).to_pylist()[0]
    prompt = json.loads(row["prompt"])[-1]["content"]
    return (
        f"**pair** `{row['pair_id']}` ({row['factor']}), model `{row['model_id']}`, template `{row['template']}`\n\n"
        f"**verdict**: {row['verdict']} (stated {row['stated_direction']}/{row['stated_size']}, "
        f"observed {row['observed_direction']}/{row['observed_size']})\n\n"
        f"**prompt**\n\n```\n{prompt[:1500]}\n```\n\n**trace**\n\n```\n{row['trace'][:1500]}\n```"
    )


def _factor_markdown(stats: dict) -> str:
    lines = ["| factor | traces | accepted | acceptance rate | parse rate | pairs | pairs with an accepted trace |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {f} | {s['traces']} | {s['accepted']} | {s['acceptance_rate']:.2f} | {s['parse_rate']:.2f} | "
              f"{s['pairs']} | {s['pairs_with_accepted_trace']} |" for f, s in stats.items()]
    return "\n".join(lines) if stats else "_(no traces)_"


def traces_metadata(st, run: TracesRun, model_id: str, tiny: bool) -> dict:
    """The asset's metadata: table stats, settings, pair counts, acceptance per factor and a sample trace."""
    new, table, counts = run.new, run.table, run.counts
    new_accepted = int(pc.sum(new["accepted"]).as_py() or 0) if new.num_rows else 0
    stats = acceptance_by_factor(table)
    metadata = {
        **table_metadata(st, REASONING_TRACES_TABLE),
        "model_id": model_id,
        "template": template_id("trace"),
        "step_template": template_id("step"),
        "sampling_params": dg.MetadataValue.json(run.params.to_dict()),
        "new_traces": new.num_rows,
        "new_accepted": new_accepted,
        "acceptance_rate_new": new_accepted / new.num_rows if new.num_rows else 0.0,
        **{k: v for k, v in counts.items() if k != "pairs_invalid_reasons"},
        "pairs_invalid_reasons": dg.MetadataValue.json(counts["pairs_invalid_reasons"]),
        "acceptance_by_factor": dg.MetadataValue.md(_factor_markdown(stats)),
        "acceptance_by_factor_json": dg.MetadataValue.json(stats),
        "sample_trace": dg.MetadataValue.md(_sample_markdown(new if new.num_rows else table)),
    }
    if why := why_no_traces(counts, new.num_rows):
        metadata["why_empty"] = why
    return {**metadata, "note": TINY_NOTE} if tiny else metadata


@dg.asset(
    deps=[NATURAL_PAIRS_TABLE],
    group_name=GROUP,
    kinds={"parquet", "pytorch"},
    op_tags=GPU_TAGS,
    pool="gpu",
)
def reasoning_traces(
    context: dg.AssetExecutionContext, config: TracesConfig, store: StoreResource, llm: LLMBackendResource
) -> dg.MaterializeResult:
    """Teacher traces for training-split natural pairs, n samples each, in the shared step format; `accepted` only
    when the stated direction (and size band, where known) matches the observed change. Table `reasoning_traces`."""
    st = store.get()
    backend = llm.get(st)
    params = SamplingParams(temperature=config.temperature, top_p=config.top_p, max_new_tokens=config.max_new_tokens,
                            seed=config.seed)
    run = extend_traces(st, backend, params, config.n_samples, config.max_pairs or None, tiny=is_tiny(backend),
                        log=context.log.info)
    if run.duplicates:
        context.log.warning(f"{run.duplicates} traces already present were not added again")
    if run.counts["pairs_invalid"]:
        context.log.warning(f"unreadable pairs skipped: {run.counts['pairs_invalid_reasons']}")
    metadata = traces_metadata(st, run, backend.model_id, is_tiny(backend))
    for line in [metadata.get("why_empty"), metadata.get("note")]:
        if line:
            context.log.warning(line)
    return dg.MaterializeResult(metadata=metadata)
