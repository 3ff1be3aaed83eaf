"""Supervised fine-tuning of the counterfactual operators: TRL `SFTTrainer` + PEFT LoRA.

Examples are conversational prompt/completion pairs (`training.data.sft_examples`): the prompt is the local
counterfactual step, the completion an accepted reasoning trace, so the loss falls on the completion only.
`train_operators` trains one adapter per factor (the default) or one multi-factor adapter, as the recipe says.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepimagine_core.llm.backends import resolve_model
from deepimagine_core.store import Store
from deepimagine_core.training.recipes import Recipe
from deepimagine_core.training.run import Progress, TrainResult, lora_config, reachable_rows, run_training

MULTI_FACTOR = "multi"


def operator_name(factor: str) -> str:
    """Adapter name of a factor's operator (`sft_arm`), or of the multi-factor one (`sft_multi`)."""
    return f"sft_{factor}"


def train_sft(
    recipe: Recipe,
    dataset: list[dict[str, Any]],
    output_dir: str | Path,
    *,
    resume: bool = True,
    progress: Progress | None = None,
    store: Store | None = None,
    name: str = "sft",
    data_counts: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train one LoRA adapter on `dataset` (rows with `prompt` and `completion` message lists) into
    `output_dir/adapter`, checkpointing under `output_dir/checkpoints` and resuming from the last complete one."""
    if recipe.trainer != "sft":
        raise ValueError(f"recipe {recipe.name!r} is a {recipe.trainer} recipe, not an SFT one")
    rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in _checked(dataset)]
    available = len(rows)
    rows = reachable_rows(rows, recipe, recipe.per_device_train_batch_size)
    base_model = resolve_model(recipe.model_name_or_path, store)

    def build_trainer(arguments: dict[str, Any], callbacks: list[Any]):
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**arguments, max_length=recipe.max_length, completion_only_loss=True, packing=False)
        return SFTTrainer(
            model=base_model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            peft_config=lora_config(recipe),
            callbacks=callbacks,
        )

    return run_training(
        name=name,
        kind="sft",
        recipe=recipe,
        rows=rows,
        output_dir=output_dir,
        base_model=base_model,
        build_trainer=build_trainer,
        data_counts={"examples": len(rows), "examples_available": available, **(data_counts or {})},
        resume=resume,
        progress=progress,
    )


def operator_groups(recipe: Recipe, examples: list[dict[str, Any]]) -> dict[str, tuple[list[dict], dict[str, Any]]]:
    """Adapter name -> (its examples, its data counts): one per factor of `recipe.factors` (per_factor), or one
    multi-factor group. Factors without examples are left out."""
    wanted = [e for e in examples if e.get("factor") in recipe.factors]
    if recipe.per_factor:
        groups = {f: [e for e in wanted if e["factor"] == f] for f in recipe.factors}
    else:
        groups = {MULTI_FACTOR: wanted}
    out = {}
    for factor, rows in groups.items():
        if rows:
            counts = {f"examples_{f}": n for f, n in sorted(Counter(e["factor"] for e in rows).items())}
            out[operator_name(factor)] = (rows, {**counts, "pairs": len({e.get("pair_id") for e in rows})})
    return out


def train_operators(
    recipe: Recipe,
    examples: list[dict[str, Any]],
    models_dir: str | Path,
    *,
    resume: bool = True,
    progress: Progress | None = None,
    store: Store | None = None,
) -> dict[str, TrainResult]:
    """The SFT operators of `recipe.factors` (see `operator_groups`) under `models_dir/<name>/`, in this process."""
    return {
        name: train_sft(recipe, rows, Path(models_dir) / name, resume=resume, progress=progress, store=store,
                        name=name, data_counts=counts)
        for name, (rows, counts) in operator_groups(recipe, examples).items()
    }


def untrained_operators(recipe: Recipe, examples: list[dict[str, Any]]) -> dict[str, str]:
    """The operators `train_operators` leaves out for want of examples, each with the reason (a small source can have
    no training-split pair of a factor: that operator is skipped and said so, never trained on nothing)."""
    counts = Counter(e.get("factor") for e in examples if e.get("factor") in recipe.factors)
    if not recipe.per_factor:
        return {} if counts else {operator_name(MULTI_FACTOR): f"0 examples of factors {', '.join(recipe.factors)}"}
    return {operator_name(f): f"0 examples of factor {f}" for f in recipe.factors if not counts[f]}


def measure_training_throughput(
    model: str = "tiny",
    *,
    recipe: str = "sft_cpu_tiny",
    max_steps: int = 10,
    n_examples: int = 64,
    output_dir: str | Path | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """CPU (or GPU) training tokens/s of an SFT recipe on synthetic step examples, for the benchmark suite.

    Runs `max_steps` fresh steps (no resume, no reuse) and returns tokens/s as the trainer counts tokens (prompt and
    completion tokens of every example it trained on), the wall time, and the settings used.
    """
    import tempfile

    from deepimagine_core.training.data import synthetic_sft_examples
    from deepimagine_core.training.recipes import load_recipe

    chosen = load_recipe(recipe, {"model_name_or_path": model, "max_steps": max_steps, "save_steps": max_steps})
    rows = synthetic_sft_examples(n_examples)
    with tempfile.TemporaryDirectory(prefix="deepimagine-throughput-") as tmp:
        started = time.perf_counter()
        result = train_sft(chosen, rows, Path(output_dir or tmp) / "throughput", resume=False, store=store)
        wall = time.perf_counter() - started
    return {
        "recipe": chosen.name,
        "model": model,
        "steps": result.global_step,
        "tokens": result.metrics.get("num_tokens"),
        "train_seconds": result.metrics.get("train_runtime_s"),
        "wall_seconds": wall,
        "tokens_per_second": result.metrics.get("tokens_per_second"),
        "batch_size": chosen.per_device_train_batch_size,
        "max_length": chosen.max_length,
    }


def _checked(dataset: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(dataset)
    if not rows:
        raise ValueError("no SFT examples: build them from training-split natural pairs with accepted traces first")
    for i, row in enumerate(rows):
        if not isinstance(row.get("prompt"), list) or not isinstance(row.get("completion"), list):
            raise ValueError(f"SFT example {i} needs `prompt` and `completion` message lists, got keys {sorted(row)}")
    return rows
