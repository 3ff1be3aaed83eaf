"""Checkpoint assets: the per-factor SFT operators and the GRPO policy, as PEFT adapter folders in the store.

Thin: data from `deepimagine_core.training.data`, training from `training.sft` / `training.grpo`. Config picks a
recipe by name (training/recipes/*.yaml) and overrides fields; the CPU default is the tiny recipe, run in-process. A
re-materialisation resumes a killed run from its last complete checkpoint, and reuses a published adapter when the
recipe, data and base are unchanged. Both assets are tagged for the GPU executor (`deepimagine/gpu`). A recipe with
`num_processes` > 1 (or 0 on a multi-GPU host) is trained by `accelerate launch` inside the step's own container
(`training.distributed`), with the same progress lines and metadata as an in-process run.
"""


import base64
from pathlib import Path
from typing import Any

import dagster as dg

from deepimagine_core.tables import (
    APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE,
)
from deepimagine_core.training import adapters
from deepimagine_core.training.cutoff import record_cutoffs
from deepimagine_core.training.data import grpo_examples, sft_examples
from deepimagine_core.training.distributed import (
    accelerate_config_path,
    launch_operators,
    launch_training,
    resolve_num_processes,
)
from deepimagine_core.training.grpo import train_grpo
from deepimagine_core.training.recipes import load_recipe
from deepimagine_core.training.run import TrainResult
from deepimagine_core.training.sft import train_operators, untrained_operators
from deepimagine_dagster.resources import StoreResource

GROUP = "training"
GPU_TAGS = {"deepimagine/gpu": "true"}


class SFTOperatorsConfig(dg.Config):
    recipe: str = "sft_cpu_tiny"  # e.g. sft_gpu_qwen3_8b on a GPU host
    overrides: dict[str, Any] = {}  # recipe field -> value, e.g. {"max_steps": 20, "per_factor": false}
    resume: bool = True  # False discards checkpoints and retrains from scratch


class GRPOPolicyConfig(dg.Config):
    recipe: str = "grpo_cpu_tiny"  # e.g. grpo_gpu_qwen3_8b on a GPU host
    overrides: dict[str, Any] = {}
    init_from: str = "base"  # base | an SFT adapter name (sft_arm, sft_multi, ...) | an adapter folder
    natural_steps: bool = True  # also train the local step on training-split natural pairs (direction reward)
    max_prompts: int = 0  # 0 = every prompt; else a seeded random sample of this size
    resume: bool = True


def progress_logger(context: dg.AssetExecutionContext, name: str):
    """Trainer log lines as compact Dagster log lines: step, loss and reward."""

    def log(entry: dict[str, Any]) -> None:
        shown = {k: entry[k] for k in ("loss", "reward", "train_runtime") if isinstance(entry.get(k), (int, float))}
        if shown:
            values = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
            context.log.info(f"{name} step {entry.get('step')}/{entry.get('max_steps')} {values}")

    return log


def curves_markdown(results: dict[str, TrainResult]) -> str:
    """Each adapter's loss/reward curves as an inline markdown image."""
    parts = []
    for name, result in results.items():
        if result.curves_path and Path(result.curves_path).is_file():
            data = base64.b64encode(Path(result.curves_path).read_bytes()).decode()
            parts.append(f"**{name}**\n\n![{name} curves](data:image/png;base64,{data})")
    return "\n\n".join(parts) or "_(no curves logged)_"


def cutoff_metadata(store, rows, results: dict[str, TrainResult]) -> dict[str, Any]:
    """Record the training cutoff (latest results_first_posted of the trials trained on) beside each adapter."""
    info = record_cutoffs(store, rows, [result.adapter_path for result in results.values()])
    return {"training_cutoff": info.get("training_cutoff") or "unknown", "trials_seen": info.get("trials_seen", 0)}


def result_metadata(results: dict[str, TrainResult]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name, result in results.items():
        meta[f"{name}/adapter"] = dg.MetadataValue.path(result.adapter_path)
        meta[f"{name}/global_step"] = result.global_step
        meta[f"{name}/resumed_from"] = result.resumed_from or "(fresh run)"
        meta[f"{name}/reused"] = result.reused
        for key in ("final_loss", "final_reward", "tokens_per_second"):
            if key in result.metrics:
                meta[f"{name}/{key}"] = float(result.metrics[key])
    meta["curves"] = dg.MetadataValue.md(curves_markdown(results))
    return meta


@dg.asset(
    group_name=GROUP,
    deps=[NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE],
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
)
def sft_operators(
    context: dg.AssetExecutionContext, config: SFTOperatorsConfig, store: StoreResource
) -> dg.MaterializeResult:
    """LoRA SFT operators on training-split natural pairs with accepted reasoning traces: one adapter per factor
    (`models/sft_<factor>/adapter`) or a single multi-factor one (`per_factor: false` → `models/sft_multi`)."""
    st = store.get()
    recipe = load_recipe(config.recipe, config.overrides)
    built = sft_examples(
        st.read_table(NATURAL_PAIRS_TABLE), st.read_table(REASONING_TRACES_TABLE), recipe.factors,
        untraced=recipe.untraced_pairs,
    )
    context.log.info(f"SFT data ({recipe.name}): {built.summary()}")
    skipped = untrained_operators(recipe, built.rows)
    for name, why in skipped.items():
        context.log.warning(f"{name} not trained: {why} (training-split natural pairs with an accepted trace, or "
                            f"any with untraced_pairs: answer_only): {built.summary()}")
    if not built.rows:
        return dg.MaterializeResult(metadata={"recipe": recipe.name, "operators": dg.MetadataValue.json([]),
                                              "skipped": dg.MetadataValue.json(skipped), "dagster/row_count": 0,
                                              "data": dg.MetadataValue.json(built.summary())})
    processes = resolve_num_processes(recipe)
    if processes > 1:
        log_launch(context, recipe, processes)
        results = launch_operators(
            recipe, built.rows, adapters.models_dir(st), num_processes=processes, resume=config.resume,
            store_root=st.root, progress=progress_logger(context, "sft"), log=context.log.debug,
        )
    else:
        results = train_operators(
            recipe, built.rows, adapters.models_dir(st), resume=config.resume, store=st,
            progress=progress_logger(context, "sft"),
        )
    for name, result in results.items():
        context.log.info(
            f"{name}: step {result.global_step}, resumed from {result.resumed_from}, reused={result.reused}, "
            f"adapter {result.adapter_path}"
        )
    return dg.MaterializeResult(
        metadata={
            "recipe": recipe.name,
            "overrides": dg.MetadataValue.json(dict(config.overrides)),
            "processes": processes,
            "operators": dg.MetadataValue.json(sorted(results)),
            "data": dg.MetadataValue.json(built.summary()),
            "skipped": dg.MetadataValue.json(skipped),
            "dagster/row_count": len(built.rows),
            **result_metadata(results),
            **cutoff_metadata(st, built.rows, results),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, sft_operators],
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
)
def grpo_policy(
    context: dg.AssetExecutionContext, config: GRPOPolicyConfig, store: StoreResource
) -> dg.MaterializeResult:
    """GRPO with verifiable rewards (format, correctness, negative cross-entropy, direction agreement) on training-split
    historical questions, asked directly and from approximate pairs' anchor trials, and natural-pair steps; from the
    base model or an SFT adapter (`models/grpo/adapter`)."""
    st = store.get()
    recipe = load_recipe(config.recipe, config.overrides)
    built = grpo_examples(
        st.read_table(APPROXIMATE_PAIRS_TABLE), st.read_table(HISTORICAL_QUESTIONS_TABLE),
        st.read_table(NATURAL_PAIRS_TABLE) if config.natural_steps else None,
        max_prompts=config.max_prompts or None, seed=recipe.seed,
    )
    context.log.info(f"GRPO data ({recipe.name}): {built.summary()}")
    if not built.rows:
        why = "0 GRPO prompts: no training-split historical question with a known answer nor natural pair with an "\
              "observed direction"
        context.log.warning(f"grpo not trained: {why}")
        return dg.MaterializeResult(metadata={"recipe": recipe.name, "skipped": dg.MetadataValue.json({"grpo": why}),
                                              "data": dg.MetadataValue.json(built.summary()), "dagster/row_count": 0})
    init_adapter = resolve_init_adapter(st, config.init_from)
    processes = resolve_num_processes(recipe)
    if processes > 1:
        log_launch(context, recipe, processes)
        result = launch_training(
            recipe, built.rows, adapters.run_dir(st, adapters.GRPO_NAME), num_processes=processes,
            name=adapters.GRPO_NAME, init_adapter=init_adapter, data_counts=built.counts, resume=config.resume,
            store_root=st.root, progress=progress_logger(context, "grpo"), log=context.log.debug,
        )
    else:
        result = train_grpo(
            recipe, built.rows, adapters.run_dir(st, adapters.GRPO_NAME), resume=config.resume, store=st,
            init_adapter=init_adapter, progress=progress_logger(context, "grpo"), data_counts=built.counts,
        )
    context.log.info(f"grpo: step {result.global_step}, reward {result.metrics.get('final_reward')}")
    return dg.MaterializeResult(
        metadata={
            "recipe": recipe.name,
            "overrides": dg.MetadataValue.json(dict(config.overrides)),
            "processes": processes,
            "init_from": str(init_adapter or "base"),
            "data": dg.MetadataValue.json(built.summary()),
            "dagster/row_count": len(built.rows),
            **result_metadata({adapters.GRPO_NAME: result}),
            **cutoff_metadata(st, built.rows, {adapters.GRPO_NAME: result}),
        }
    )


def log_launch(context: dg.AssetExecutionContext, recipe, processes: int) -> None:
    """A distributed run is about to start: say how (its output lines follow at debug level)."""
    context.log.info(
        f"{recipe.name}: accelerate launch of {processes} processes with {accelerate_config_path(recipe).name}"
    )


def resolve_init_adapter(store, init_from: str) -> str | None:
    """`base` -> None; a published adapter's name -> its folder; else a folder path, which must hold an adapter."""
    if init_from == "base":
        return None
    published = adapters.published_adapters(store)
    if init_from in published:
        return str(published[init_from])
    if (Path(init_from) / "adapter_config.json").is_file():
        return init_from
    raise dg.Failure(
        description=f"init_from={init_from!r} is neither 'base', a published adapter ({sorted(published)}) nor an "
        "adapter folder"
    )
