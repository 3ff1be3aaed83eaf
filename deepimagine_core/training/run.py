"""The part of a training run that SFT and GRPO share: resume, train, publish.

    run_training(...)   1. an adapter already published by an identical run (same recipe, data, base) is reused;
                        2. otherwise the run folder is prepared and the last complete checkpoint found;
                        3. the trainer (built by the caller: SFTTrainer or GRPOTrainer) trains, resuming from it;
                        4. the adapter, its curves, result JSON and model card are assembled in a hidden folder and
                           renamed into `<output_dir>/adapter`.

Every step that writes is done by the main process only, with barriers around it, so the same code runs in one
process or under `accelerate launch` with several.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepimagine_core.quiet import quiet_third_party
from deepimagine_core.training import card
from deepimagine_core.training.checkpoints import (
    ADAPTER,
    CHECKPOINTS,
    RESULT_FILE,
    complete_marker_callback,
    last_complete_checkpoint,
    prepare_run_dir,
    publish_dir,
    published_result,
    publishing_dir,
    write_json_atomic,
)
from deepimagine_core.training.recipes import Recipe

Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a run produced. `reused` = nothing was trained: an identical run had already published this adapter."""

    name: str
    kind: str
    adapter_path: str
    base_model: str
    global_step: int
    resumed_from: str | None
    reused: bool
    metrics: dict[str, Any]
    data_counts: dict[str, Any]
    curves_path: str | None
    fingerprint: str
    log_history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def reachable_rows(rows: list[dict[str, Any]], recipe: Recipe, rows_per_step: int) -> list[dict[str, Any]]:
    """When `max_steps` bounds a run, keep only as many rows as it can reach (a seeded, order-preserving sample).

    The tiny CPU recipes run 10 steps over tens of thousands of pairs: tokenising them all would take minutes for
    rows no step ever sees. Without `max_steps`, every row is kept (epochs decide)."""
    if recipe.max_steps <= 0:
        return rows
    needed = recipe.max_steps * max(1, rows_per_step) * max(1, recipe.gradient_accumulation_steps)
    needed *= max(1, getattr(recipe, "num_processes", 1) or 1)
    if len(rows) <= needed:
        return rows
    import random

    keep = sorted(random.Random(recipe.seed).sample(range(len(rows)), needed))
    return [rows[i] for i in keep]


def rows_fingerprint(rows: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def lora_config(recipe: Recipe):
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.lora_target_modules),
        task_type="CAUSAL_LM",
    )


def trainer_arguments(recipe: Recipe, checkpoints_dir: Path) -> dict[str, Any]:
    """TrainingArguments fields shared by SFTConfig and GRPOConfig. On a machine without CUDA: CPU, no bf16."""
    import torch

    use_cpu = not torch.cuda.is_available()
    bf16 = recipe.bf16 and not use_cpu
    return dict(
        output_dir=str(checkpoints_dir),
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type,
        warmup_steps=recipe.warmup_steps,
        weight_decay=recipe.weight_decay,
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        activation_checkpointing=recipe.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        seed=recipe.seed,
        data_seed=recipe.seed,
        use_cpu=use_cpu,
        bf16=bf16,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        logging_steps=recipe.logging_steps,
        report_to="none",
        dataloader_num_workers=0,
        model_init_kwargs={"dtype": "bfloat16" if bf16 else "float32"},
    )


def progress_callback(progress: Progress):
    """A TrainerCallback that hands every log line (with step and max_steps) to `progress`."""
    from transformers import TrainerCallback

    class ProgressLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                progress({"step": state.global_step, "max_steps": state.max_steps, **logs})
            return control

    return ProgressLog()


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with `n` torch CPU threads (0 = leave as is), restoring the previous number after."""
    import torch

    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_training(
    *,
    name: str,
    kind: str,
    recipe: Recipe,
    rows: list[dict[str, Any]],
    output_dir: str | Path,
    base_model: str,
    build_trainer: Callable[[dict[str, Any], list[Any]], Any],
    data_counts: dict[str, Any],
    resume: bool = True,
    progress: Progress | None = None,
    init_adapter: str | None = None,
) -> TrainResult:
    """Train (or resume, or reuse) one adapter; `build_trainer(trainer_arguments, callbacks)` makes the TRL trainer."""
    from accelerate import PartialState

    quiet_third_party()
    output_dir = Path(output_dir)
    fingerprint = hashlib.sha256(
        json.dumps([recipe.fingerprint(), rows_fingerprint(rows), base_model, _adapter_identity(init_adapter)]).encode()
    ).hexdigest()[:16]
    existing = published_result(output_dir, fingerprint)
    if existing is not None:
        return TrainResult.from_dict({**existing, "reused": True})

    state = PartialState()
    resume_from = prepare_run_dir(output_dir, fingerprint, resume=resume) if state.is_main_process else None
    state.wait_for_everyone()
    if not state.is_main_process:
        resume_from = last_complete_checkpoint(output_dir / CHECKPOINTS) if resume else None

    callbacks = [complete_marker_callback()] + ([progress_callback(progress)] if progress else [])
    with torch_threads(recipe.torch_threads):
        trainer = build_trainer(trainer_arguments(recipe, output_dir / CHECKPOINTS), callbacks)
        if progress:  # each log line goes to `progress`: the trainer's own bar and printed dicts would repeat it
            from transformers.trainer_callback import PrinterCallback, ProgressCallback

            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    history = list(trainer.state.log_history)

    staging = publishing_dir(output_dir)
    trainer.save_model(str(staging))  # every process calls it (sharded setups gather weights); the main one writes
    result = TrainResult(
        name=name,
        kind=kind,
        adapter_path=str(output_dir / ADAPTER),
        base_model=base_model,
        global_step=int(trainer.state.global_step),
        resumed_from=str(resume_from) if resume_from else None,
        reused=False,
        metrics=_final_metrics(history, output.metrics, resumed=resume_from is not None),
        data_counts=data_counts,
        curves_path=None,
        fingerprint=fingerprint,
        log_history=history,
    )
    if state.is_main_process:
        curves = card.plot_curves(history, staging / card.CURVES_FILE, f"{name} ({recipe.name})")
        result.curves_path = str(output_dir / ADAPTER / card.CURVES_FILE) if curves else None
        write_json_atomic(staging / RESULT_FILE, result.to_dict())
        (staging / "README.md").write_text(
            card.model_card(
                title=f"DeepImagine {name}",
                kind=kind,
                base_model=base_model,
                init_adapter=init_adapter,
                recipe_yaml=recipe.to_yaml(),
                data_counts=data_counts,
                metrics=result.metrics,
                provenance={
                    "recipe": recipe.name,
                    "recipe fingerprint": recipe.fingerprint(),
                    "data fingerprint": rows_fingerprint(rows),
                    "run fingerprint": fingerprint,
                    "resumed from": result.resumed_from or "(fresh run)",
                    "global step": result.global_step,
                    "processes": state.num_processes,
                    "host": socket.gethostname(),
                    **card.library_versions(),
                },
            )
        )
        publish_dir(staging, output_dir / ADAPTER)
    state.wait_for_everyone()
    return result


def _adapter_identity(adapter: str | None) -> str | None:
    """Path and content hash of the adapter a run starts from: retraining that adapter invalidates this run."""
    if adapter is None:
        return None
    weights = Path(adapter) / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"initial adapter {adapter} has no adapter_model.safetensors")
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{adapter}@{digest.hexdigest()[:16]}"


def _final_metrics(history: list[dict[str, Any]], train_metrics: dict[str, Any], *, resumed: bool) -> dict[str, Any]:
    """Last logged loss / reward, the run's mean loss and runtime, and tokens/s when this process trained every step
    (a resumed run's token counter includes steps trained before the kill)."""

    def last(key: str) -> float | None:
        values = [h[key] for h in history if isinstance(h.get(key), (int, float)) and "step" in h]
        return float(values[-1]) if values else None

    metrics: dict[str, Any] = {
        "final_loss": last("loss"),
        "train_loss": train_metrics.get("train_loss"),
        "train_runtime_s": train_metrics.get("train_runtime"),
    }
    if last("reward") is not None:
        metrics["final_reward"] = last("reward")
        for entry in history:
            for key in entry:
                if key.startswith("rewards/") and key.endswith("/mean"):
                    metrics[f"final_{key.removeprefix('rewards/').removesuffix('/mean')}"] = last(key)
    tokens = last("num_tokens")
    runtime = train_metrics.get("train_runtime")
    if tokens is not None and not resumed:
        metrics["num_tokens"] = int(tokens)
        if runtime:
            metrics["tokens_per_second"] = tokens / runtime
    return {k: v for k, v in metrics.items() if v is not None}
