"""Training recipes: every setting of an SFT or GRPO run in one dataclass, stored as YAML beside this module.

Field names follow TRL / transformers (`learning_rate`, `lr_scheduler_type`, `per_device_train_batch_size`, ...) so a
recipe reads like a TRL config file; the LoRA fields map to `peft.LoraConfig`. `load_recipe("sft_cpu_tiny",
{"max_steps": 5})` finds `recipes/sft_cpu_tiny.yaml` (or takes a path), applies the overrides, checks every key and
type, and returns a `Recipe`. Unknown keys are an error, never silently ignored: a typo in a learning-rate key must not
train with the default.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).parent / "recipes"
TRAINERS = ("sft", "grpo")
NATURAL_FACTORS = ("arm", "outcome")
UNTRACED_PAIRS = ("skip", "answer_only")
VLLM_MODES = ("colocate", "server")


class RecipeError(ValueError):
    """A recipe file or override that cannot be used (unknown key, wrong type, inconsistent values)."""


def _opt(default: Any, help: str, *, only: str | None = None):
    """A recipe field with a default (mutable ones copied per recipe), its help text, and the trainer it is for."""
    metadata = {"help": help} if only is None else {"help": help, "only": only}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Recipe:
    """One training run's settings. `trainer` says which entry point (`train_sft` / `train_grpo`) it is for."""

    name: str = field(metadata={"help": "Recipe name (file stem); recorded in model cards."})
    trainer: str = field(metadata={"help": "`sft` or `grpo`."})
    model_name_or_path: str = field(
        metadata={"help": "Hub id or local folder of the base model; `tiny` = the project's tiny local model."}
    )
    # LoRA (peft.LoraConfig)
    lora_r: int = _opt(16, "LoRA rank.")
    lora_alpha: int = _opt(32, "LoRA scaling alpha.")
    lora_dropout: float = _opt(0.05, "LoRA dropout.")
    lora_target_modules: list[str] = _opt(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], "Module names LoRA adapts."
    )
    # Optimisation (TRL / transformers TrainingArguments names)
    learning_rate: float = _opt(5e-5, "Peak learning rate.")
    lr_scheduler_type: str = _opt("cosine", "transformers scheduler name.")
    warmup_steps: float = _opt(0.0, "Warm-up steps (a value < 1 is a ratio of all steps).")
    weight_decay: float = _opt(0.0, "AdamW weight decay.")
    num_train_epochs: float = _opt(1.0, "Epochs (ignored when max_steps > 0).")
    max_steps: int = _opt(-1, "Total optimiser steps; -1 = derive from epochs.")
    per_device_train_batch_size: int = _opt(1, "Examples per device per micro-step.")
    gradient_accumulation_steps: int = _opt(1, "Micro-steps per optimiser step.")
    max_length: int = _opt(2048, "Longest tokenised example (longer ones truncated).", only="sft")
    seed: int = _opt(42, "Seed for data order, LoRA init and sampling.")
    bf16: bool = _opt(False, "bf16 mixed precision (GPU recipes); always off on CPU.")
    gradient_checkpointing: bool = _opt(False, "Trade compute for memory.")
    torch_threads: int = _opt(
        0,
        "CPU threads for torch during the run; 0 = torch's default. Tiny models train fastest with 1 (their "
        "matrices are too small for threads to pay off, and a shared machine oversubscribes).",
    )
    save_steps: int = _opt(50, "Checkpoint every N steps (the resume point after a kill).")
    save_total_limit: int = _opt(3, "Complete checkpoints kept on disk.")
    logging_steps: int = _opt(1, "Log loss/reward every N steps (curves use these).")
    # Distributed runs (training.distributed): the global batch is per_device x num_processes x accumulation
    num_processes: int = _opt(
        1,
        "Training processes, one per GPU (gloo CPU processes on a host without CUDA); > 1 runs under "
        "`accelerate launch` (training.distributed.launch_training); 0 = one per visible GPU (1 without CUDA).",
    )
    accelerate_config: str = _opt(
        "",
        "accelerate config of a launched run: a name in training/accelerate/ (ddp_cpu, ddp_gpu, fsdp2_bf16) or a "
        "YAML path; empty = ddp_gpu with CUDA, ddp_cpu without.",
    )
    # What SFT trains on
    per_factor: bool = _opt(True, "One adapter per factor, else one multi-factor adapter.", only="sft")
    factors: list[str] = _opt(list(NATURAL_FACTORS), "Factors of natural pairs to train on.", only="sft")
    untraced_pairs: str = _opt(
        "skip",
        "Training pairs without an accepted trace are `skip`ped, or trained `answer_only` (the observed step "
        "answer, no reasoning; for the tiny model, whose traces are rarely accepted).",
        only="sft",
    )
    # GRPO
    num_generations: int = _opt(8, "Completions sampled per prompt (>= 2).", only="grpo")
    generation_batch_size: int = _opt(8, "Completions per generation round (multiple of num_generations).", only="grpo")
    max_completion_length: int = _opt(512, "Longest sampled completion.", only="grpo")
    temperature: float = _opt(1.0, "Sampling temperature.", only="grpo")
    beta: float = _opt(0.0, "KL coefficient (0 = no reference model).", only="grpo")
    reward_weights: dict[str, float] = _opt(
        {"format": 0.2, "correctness": 1.0, "neg_cross_entropy": 0.5, "direction_agreement": 1.0},
        "Reward name (training.rewards.REWARDS) -> weight.",
        only="grpo",
    )
    use_vllm: bool = _opt(False, "Generate with vLLM (GPU image only).", only="grpo")
    vllm_mode: str = _opt(
        "colocate",
        "With vLLM: `colocate` (an engine inside every training process) or `server` (`trl vllm-serve` on other "
        "GPUs of the host, at TRL's default port 8000).",
        only="grpo",
    )

    def __post_init__(self) -> None:
        _check_types(self)
        problems = []
        if self.trainer not in TRAINERS:
            problems.append(f"trainer must be one of {TRAINERS}, got {self.trainer!r}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            problems.append("set max_steps > 0 or num_train_epochs > 0")
        if self.untraced_pairs not in UNTRACED_PAIRS:
            problems.append(f"untraced_pairs must be one of {UNTRACED_PAIRS}, got {self.untraced_pairs!r}")
        if self.torch_threads < 0:
            problems.append("torch_threads must be >= 0")
        if self.save_steps <= 0:
            problems.append("save_steps must be > 0")
        if self.num_processes < 0:
            problems.append("num_processes must be >= 0 (0 = one per visible GPU)")
        unknown = set(self.factors) - set(NATURAL_FACTORS)
        if unknown:
            problems.append(f"factors {sorted(unknown)} have no natural pairs; choose from {NATURAL_FACTORS}")
        if self.trainer == "grpo":
            from deepimagine_core.training.rewards import REWARDS

            if self.num_generations < 2:
                problems.append("num_generations must be >= 2 (GRPO compares completions of one prompt)")
            elif self.generation_batch_size % self.num_generations:
                problems.append(
                    f"generation_batch_size {self.generation_batch_size} must be divisible by "
                    f"num_generations {self.num_generations}"
                )
            bad = set(self.reward_weights) - set(REWARDS)
            if bad:
                problems.append(f"unknown rewards {sorted(bad)}; known: {sorted(REWARDS)}")
            if not self.reward_weights:
                problems.append("reward_weights is empty")
            if self.vllm_mode not in VLLM_MODES:
                problems.append(f"vllm_mode must be one of {VLLM_MODES}, got {self.vllm_mode!r}")
            if self.num_processes > 0:
                problems += world_size_problems(self, self.num_processes)
        if problems:
            raise RecipeError(f"recipe {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The settings this recipe's trainer uses (the other trainer's fields left out), as YAML."""
        used = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get("only", self.trainer) == self.trainer
        }
        return yaml.safe_dump(used, sort_keys=False)

    def fingerprint(self) -> str:
        """Hash of every setting: a checkpoint is only resumed by a run of the same recipe."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def world_size_problems(recipe: Recipe, num_processes: int) -> list[str]:
    """What stops `recipe` from running on `num_processes` processes (TRL's GRPO check, made early and clear)."""
    global_batch = recipe.per_device_train_batch_size * num_processes
    if recipe.trainer == "grpo" and recipe.generation_batch_size % global_batch:
        return [
            f"generation_batch_size {recipe.generation_batch_size} must be divisible by the global batch "
            f"per_device_train_batch_size x processes = {recipe.per_device_train_batch_size} x {num_processes}"
        ]
    return []


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe by name (`recipes/<name>.yaml`) or path, apply `overrides`, validate, and return it.

    Override values may be strings (from a command line or the Dagster launchpad); they are parsed as YAML scalars or
    lists ("1e-4" -> 0.0001, "[q_proj, v_proj]" -> list) before type checking.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise RecipeError(f"no recipe {str(name_or_path)!r} (looked for {path}); available: {available_recipes()}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of field: value")
    data.setdefault("name", path.stem)
    for key, value in (overrides or {}).items():
        data[key] = _parse_override(key, value)
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{path}: unknown recipe keys {unknown}; known keys: {sorted(known)}")
    missing = sorted(
        f.name
        for f in dataclasses.fields(Recipe)
        if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise RecipeError(f"{path}: missing required recipe keys {missing}")
    return Recipe(**data)


_HINTS = typing.get_type_hints(Recipe)
_STRING_FIELDS = {name for name, hint in _HINTS.items() if hint is str}


def _parse_override(key: str, value: Any) -> Any:
    """A string override parsed as YAML (numbers, booleans, lists), except for string fields."""
    return yaml.safe_load(value) if isinstance(value, str) and key not in _STRING_FIELDS else value


def _as_float(value: Any) -> Any:
    """Numbers YAML 1.1 leaves as strings ("1e-4") or reads as ints, as floats; anything else unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_types(recipe: Recipe) -> None:
    """Coerce numbers to floats where a float is expected and reject any other mismatch with a clear message."""
    for f in dataclasses.fields(recipe):
        hint = _HINTS[f.name]
        if hint is float:
            setattr(recipe, f.name, _as_float(getattr(recipe, f.name)))
        value = getattr(recipe, f.name)
        if not _matches(value, hint):
            raise RecipeError(
                f"recipe {getattr(recipe, 'name', '?')!r}: {f.name} must be {_type_name(hint)}, got {value!r}"
            )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        return isinstance(value, dict) and all(_matches(k, key_t) and _matches(v, val_t) for k, v in value.items())
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)
