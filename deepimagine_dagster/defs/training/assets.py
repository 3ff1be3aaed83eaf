"""Checkpoint assets: the four operator families and the GRPO policy, as PEFT adapter folders (with model cards).

    sft_operators   arm and outcome operators: SFT on natural pairs        models/sft_arm, models/sft_outcome
    rl_operators    intervention and context operators: GRPO on approximate pairs, rewarded by the retrieved pair's
                    observed change (class-balanced, benchmark collapse)   models/grpo_intervention, grpo_context
    grpo_policy     the GRPO answer policy on historical questions         models/grpo

Thin: each body calls one function of `deepimagine_core.training.operators`. Config picks a
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
    APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE, TRIALS_TABLE,
)
from deepimagine_core.training.operators import TrainingRun, train_policy, train_rl_operators, train_sft_operators
from deepimagine_core.training.run import TrainResult
from deepimagine_dagster.resources import StoreResource

GROUP = "training"
GPU_TAGS = {"deepimagine/gpu": "true"}


class SFTOperatorsConfig(dg.Config):
    recipe: str = "sft_cpu_tiny"  # e.g. sft_gpu_qwen3_8b on a GPU host
    overrides: dict[str, Any] = {}  # recipe field -> value, e.g. {"max_steps": 20, "per_factor": false}
    resume: bool = True  # False discards checkpoints and retrains from scratch


class RLOperatorsConfig(dg.Config):
    recipe: str = "grpo_operator_cpu_tiny"  # e.g. grpo_operator_gpu_qwen3_8b on a GPU host
    overrides: dict[str, Any] = {}
    max_prompts: int = 0  # per family, before class balancing; 0 = every prompt
    resume: bool = True


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


def run_metadata(run: TrainingRun, overrides: dict[str, Any]) -> dict[str, Any]:
    """What every training asset reports: recipe, processes, data counts, and each adapter's result."""
    rows = sum(r.data_counts.get("examples", r.data_counts.get("prompts", 0)) or 0 for r in run.results.values())
    return {
        "recipe": run.recipe.name,
        "overrides": dg.MetadataValue.json(dict(overrides)),
        "processes": run.processes,
        "operators": dg.MetadataValue.json(sorted(run.results)),
        "skipped": dg.MetadataValue.json(run.skipped),
        "data": dg.MetadataValue.json(run.data),
        "dagster/row_count": int(rows),
        **result_metadata(run.results),
    }


def log_results(context: dg.AssetExecutionContext, run: TrainingRun) -> None:
    for name, result in run.results.items():
        context.log.info(f"{name}: step {result.global_step}, resumed from {result.resumed_from}, "
                         f"reused={result.reused}, adapter {result.adapter_path}, card {result.adapter_path}/README.md")
    for name, why in run.skipped.items():
        context.log.warning(f"{name} not trained: {why}")


def result_metadata(results: dict[str, TrainResult]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name, result in results.items():
        meta[f"{name}/adapter"] = dg.MetadataValue.path(result.adapter_path)
        meta[f"{name}/model_card"] = dg.MetadataValue.path(str(Path(result.adapter_path) / "README.md"))
        meta[f"{name}/global_step"] = result.global_step
        meta[f"{name}/resumed_from"] = result.resumed_from or "(fresh run)"
        meta[f"{name}/reused"] = result.reused
        meta[f"{name}/training_cutoff"] = str(result.data_counts.get("training_cutoff") or "unknown")  # live benchmark
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
    """The arm and outcome operators: LoRA SFT on training-split natural pairs (dose-ranging arm pairs included) with
    accepted reasoning traces, one adapter per family (`models/sft_<family>/adapter`, with its model card), or a
    single multi-factor one (`per_factor: false` → `models/sft_multi`)."""
    run = train_sft_operators(store.get(), config.recipe, config.overrides, resume=config.resume,
                              progress=progress_logger(context, "sft"), log=context.log.info)
    log_results(context, run)
    return dg.MaterializeResult(metadata=run_metadata(run, config.overrides))


@dg.asset(
    group_name=GROUP,
    deps=[APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, TRIALS_TABLE],
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
)
def rl_operators(
    context: dg.AssetExecutionContext, config: RLOperatorsConfig, store: StoreResource
) -> dg.MaterializeResult:
    """The intervention and context (population, geography, design) operators: GRPO on training-split approximate
    pairs, each prompt the step from one trial's answered question to the other's in the shared step format,
    rewarded by the pair's observed change of significance (class-balanced, CT Open's 3-way collapse).
    `models/grpo_intervention/adapter` and `models/grpo_context/adapter`, each with its model card."""
    run = train_rl_operators(store.get(), config.recipe, config.overrides, max_prompts=config.max_prompts or None,
                             resume=config.resume, progress=progress_logger(context, "grpo operator"),
                             log=context.log.info)
    log_results(context, run)
    return dg.MaterializeResult(metadata=run_metadata(run, config.overrides))


@dg.asset(
    group_name=GROUP,
    deps=[APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, sft_operators],
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
)
def grpo_policy(
    context: dg.AssetExecutionContext, config: GRPOPolicyConfig, store: StoreResource
) -> dg.MaterializeResult:
    """GRPO with verifiable rewards (format, collapsed class-balanced correctness, negative cross-entropy, direction
    agreement) on training-split historical questions, asked directly and from approximate pairs' anchor trials, and
    natural-pair steps; from the base model or an SFT adapter (`models/grpo/adapter`)."""
    run = train_policy(store.get(), config.recipe, config.overrides, init_from=config.init_from,
                       natural_steps=config.natural_steps, max_prompts=config.max_prompts or None,
                       resume=config.resume, progress=progress_logger(context, "grpo"), log=context.log.info)
    log_results(context, run)
    metadata = {"init_from": str(run.data.get("init_from", "base")), **run_metadata(run, config.overrides)}
    return dg.MaterializeResult(metadata=metadata)
