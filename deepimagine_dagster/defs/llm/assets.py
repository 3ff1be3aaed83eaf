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
from deepimagine_core.llm.traces import TRACES_SCHEMA, acceptance_by_factor, merge_traces, select_pairs, trace_pairs
from deepimagine_core.pairs.empty import why_no_traces
from deepimagine_core.tables import NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE
from deepimagine_dagster.metadata import table_metadata
from deepimagine_dagster.resources import LLMBackendResource, StoreResource

GROUP = "llm"
GPU_TAGS = {"deepimagine/gpu": "true"}
TINY_NOTE = "Teacher is the tiny local model (random weights): these traces and verdicts are meaningless."
TINY_MAX_NEW_TOKENS = 32  # the tiny teacher writes noise: longer traces would only cost time
TINY_MAX_PAIRS = 64  # likewise, a tiny teacher traces a few pairs per run (the offline default stays quick)


class TracesConfig(dg.Config):
    n_samples: int = 2  # traces per pair
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    max_pairs: int = 256  # new pairs per run (re-runs continue where this one stopped); 0 = all
    seed: int = 0


def _done_pair_ids(existing: pa.Table, model_id: str) -> set[str]:
    """Pairs already traced by this model with the current template."""
    same = pc.and_(pc.equal(existing["model_id"], model_id), pc.equal(existing["template"], template_id("trace")))
    return set(existing.filter(same)["pair_id"].to_pylist())


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
    """Teacher traces for training-split natural pairs, n samples each; `accepted` only when the stated direction
    (and size band, where known) matches the observed change. Table `reasoning_traces`."""
    st = store.get()
    pairs = st.read_table(NATURAL_PAIRS_TABLE)
    existing = (st.read_table(REASONING_TRACES_TABLE) if st.has_table(REASONING_TRACES_TABLE)
                else TRACES_SCHEMA.empty_table())
    existing = existing.select(TRACES_SCHEMA.names).cast(TRACES_SCHEMA)
    backend = llm.get(st)
    max_pairs = config.max_pairs
    if is_tiny(backend) and not 0 < max_pairs <= TINY_MAX_PAIRS:
        max_pairs = TINY_MAX_PAIRS
        context.log.info(f"tiny teacher: at most {TINY_MAX_PAIRS} new pairs per run")
    selection = select_pairs(pairs, _done_pair_ids(existing, backend.model_id), max_pairs or None)
    counts = selection.counts()
    context.log.info(f"natural_pairs: {pairs.num_rows} rows; {counts}")
    if selection.pairs_invalid:
        context.log.warning(f"unreadable pairs skipped: {selection.pairs_invalid}")
    max_new_tokens = config.max_new_tokens
    if is_tiny(backend) and max_new_tokens > TINY_MAX_NEW_TOKENS:
        max_new_tokens = TINY_MAX_NEW_TOKENS
        context.log.info(f"tiny teacher: max_new_tokens capped at {TINY_MAX_NEW_TOKENS}")
    params = SamplingParams(temperature=config.temperature, top_p=config.top_p, max_new_tokens=max_new_tokens,
                            seed=config.seed)
    new = trace_pairs(selection.todo, backend, config.n_samples, params)
    context.log.info(f"{new.num_rows} new traces for {len(selection.todo)} pairs with {backend.model_id}")
    table, duplicates = merge_traces(existing, new)  # a re-run or overlapping workers never duplicate a trace
    if duplicates:
        context.log.warning(f"{duplicates} traces already present were not added again")
    st.write_table(REASONING_TRACES_TABLE, table, TRACES_SCHEMA)

    stats = acceptance_by_factor(table)
    new_accepted = int(pc.sum(new["accepted"]).as_py() or 0) if new.num_rows else 0
    metadata = {
        **table_metadata(st, REASONING_TRACES_TABLE),
        "model_id": backend.model_id,
        "template": template_id("trace"),
        "sampling_params": dg.MetadataValue.json({**params.to_dict(), "n": config.n_samples}),
        "new_traces": new.num_rows,
        "new_accepted": new_accepted,
        "acceptance_rate_new": new_accepted / new.num_rows if new.num_rows else 0.0,
        **{k: v for k, v in counts.items() if k != "pairs_invalid_reasons"},
        "pairs_invalid_reasons": dg.MetadataValue.json(counts["pairs_invalid_reasons"]),
        "acceptance_by_factor": dg.MetadataValue.md(_factor_markdown(stats)),
        "acceptance_by_factor_json": dg.MetadataValue.json(stats),
        "sample_trace": dg.MetadataValue.md(_sample_markdown(new if new.num_rows else table)),
    }
    if why_no_traces(counts, new.num_rows):
        metadata["why_empty"] = why_no_traces(counts, new.num_rows)
        context.log.info(metadata["why_empty"])
    if is_tiny(backend):
        metadata["note"] = TINY_NOTE
        context.log.warning(TINY_NOTE)
    return dg.MaterializeResult(metadata=metadata)
