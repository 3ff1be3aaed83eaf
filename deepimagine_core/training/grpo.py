"""GRPO with verifiable rewards: TRL `GRPOTrainer` + PEFT LoRA, rewards from `training.rewards`.

Prompts come from `training.data.grpo_examples` (historical questions, asked directly or from an approximate pair's
anchor trial, answered with DECISION probabilities; natural-pair local steps answered with DIRECTION); the rewards
read the verifiable answer from the dataset columns. Training starts from the base model with a fresh LoRA, or continues an SFT adapter
(`init_adapter`), so the published GRPO adapter always loads on the base model with `PeftModel.from_pretrained`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepimagine_core.llm.backends import resolve_model
from deepimagine_core.store import Store
from deepimagine_core.training.recipes import Recipe
from deepimagine_core.training.rewards import reward_functions
from deepimagine_core.training.run import Progress, TrainResult, lora_config, reachable_rows, run_training

GRPO_COLUMNS = ("prompt", "task", "answer", "n_options", "category", "direction")


def train_grpo(
    recipe: Recipe,
    dataset: list[dict[str, Any]],
    output_dir: str | Path,
    *,
    resume: bool = True,
    progress: Progress | None = None,
    store: Store | None = None,
    init_adapter: str | Path | None = None,
    name: str = "grpo",
    data_counts: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a GRPO LoRA adapter into `output_dir/adapter` (the run folder's name must contain `grpo`, so predictors
    and reports can tell it from SFT operators), checkpointing and resuming like `train_sft`."""
    if recipe.trainer != "grpo":
        raise ValueError(f"recipe {recipe.name!r} is a {recipe.trainer} recipe, not a GRPO one")
    if "grpo" not in Path(output_dir).name:
        raise ValueError(f"a GRPO run folder's name must contain 'grpo', got {output_dir}")
    rows = [{k: r.get(k) for k in GRPO_COLUMNS} for r in _checked(dataset)]
    available = len(rows)
    # a step consumes at most one generation batch of completions, i.e. that many prompts (an overestimate is fine)
    rows = reachable_rows(rows, recipe, max(recipe.generation_batch_size, recipe.per_device_train_batch_size))
    base_model = resolve_model(recipe.model_name_or_path, store)
    init = str(init_adapter) if init_adapter else None
    funcs, weights = reward_functions(recipe.reward_weights)

    def build_trainer(arguments: dict[str, Any], callbacks: list[Any]):
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        config = GRPOConfig(
            **arguments,
            num_generations=recipe.num_generations,
            generation_batch_size=recipe.generation_batch_size,
            max_completion_length=recipe.max_completion_length,
            temperature=recipe.temperature,
            beta=recipe.beta,
            reward_weights=weights,
            use_vllm=recipe.use_vllm,
            vllm_mode=recipe.vllm_mode,
        )
        model, peft_config = (base_model, lora_config(recipe)) if init is None else (_trainable_adapter(config), None)
        return GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=config,
            train_dataset=Dataset.from_list(rows),
            peft_config=peft_config,
            callbacks=callbacks,
        )

    def _trainable_adapter(config):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(base_model, **config.model_init_kwargs)
        return PeftModel.from_pretrained(base, init, is_trainable=True)

    counts = {"prompts": len(rows)}
    for task in ("question", "step"):
        counts[f"prompts_{task}"] = sum(r["task"] == task for r in rows)
    return run_training(
        name=name,
        kind="grpo",
        recipe=recipe,
        rows=rows,
        output_dir=output_dir,
        base_model=base_model,
        build_trainer=build_trainer,
        data_counts={**counts, "examples_available": available, **(data_counts or {})},
        resume=resume,
        progress=progress,
        init_adapter=init,
    )


def _checked(dataset: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(dataset)
    if not rows:
        raise ValueError("no GRPO prompts: build them from approximate pairs and training-split historical questions")
    for i, row in enumerate(rows):
        if not isinstance(row.get("prompt"), list) or row.get("task") not in ("question", "step"):
            raise ValueError(f"GRPO prompt {i} needs a `prompt` message list and task question|step, got {row!r:.200}")
        if row["task"] == "question" and (row.get("answer") is None or not row.get("n_options")):
            raise ValueError(f"GRPO question prompt {i} has no verifiable answer (answer / n_options)")
        if row["task"] == "step" and row.get("direction") not in ("up", "down", "same"):
            direction = row.get("direction")
            raise ValueError(f"GRPO step prompt {i} has no observed direction (up|down|same), got {direction!r}")
    return rows
