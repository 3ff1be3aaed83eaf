"""The training runs the Dagster assets start, one function each, and the one place that chooses between training
in this process and `accelerate launch` on several (`train_adapter`).

    train_sft_operators(store, ...)   arm and outcome operators: SFT on natural pairs (accepted traces, or observed
                                      answers with `untraced_pairs: answer_only`), one adapter per family
    train_rl_operators(store, ...)    intervention and context operators: GRPO on approximate pairs, rewarded by the
                                      observed change of the retrieved pair (class-balanced, benchmark collapse)
    train_policy(store, ...)          the GRPO answer policy on historical questions (direct and from approximate pairs)

Each reads its tables from the store, builds the examples (`training.data`, `training.operator_data`), trains and
returns a `TrainingRun` (results per adapter, data counts, process count) for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepimagine_core.llm.factors import FAMILIES, RL_FAMILIES, SFT_FAMILIES, load_trials
from deepimagine_core.store import Store
from deepimagine_core.tables import (
    APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE,
)
from deepimagine_core.training import adapters
from deepimagine_core.training.cutoff import record_cutoffs
from deepimagine_core.training.recipes import Recipe, load_recipe
from deepimagine_core.training.run import Progress, TrainResult

Log = Callable[[str], None]


@dataclass
class TrainingRun:
    recipe: Recipe
    results: dict[str, TrainResult]
    data: dict[str, Any]
    processes: int
    skipped: dict[str, str] = field(default_factory=dict)  # adapter name -> why it was not trained (no examples)


def train_adapter(
    recipe: Recipe,
    rows: list[dict[str, Any]],
    output_dir: str | Path,
    *,
    name: str,
    store: Store,
    resume: bool = True,
    progress: Progress | None = None,
    log: Log | None = None,
    init_adapter: str | None = None,
    data_counts: dict[str, Any] | None = None,
) -> TrainResult:
    """One SFT or GRPO adapter: in this process, or under `accelerate launch` when the recipe asks for more than one
    process (0 = one per GPU). The only place that makes this choice. The adapter's training cutoff (latest results
    date of the trials its rows name) is recorded beside it and in its card (`training.cutoff`)."""
    result = _train_adapter(recipe, rows, output_dir, name=name, store=store, resume=resume, progress=progress,
                            log=log, init_adapter=init_adapter, data_counts=data_counts)
    result.data_counts = {**result.data_counts, **record_cutoffs(store, rows, [result.adapter_path])}
    return result


def _train_adapter(recipe: Recipe, rows: list[dict[str, Any]], output_dir: str | Path, *, name: str, store: Store,
                   resume: bool, progress: Progress | None, log: Log | None, init_adapter: str | None,
                   data_counts: dict[str, Any] | None) -> TrainResult:
    from deepimagine_core.training.distributed import accelerate_config_path, launch_training, resolve_num_processes

    processes = resolve_num_processes(recipe)
    if processes > 1:
        if log:
            log(f"{name}: accelerate launch of {processes} processes with {accelerate_config_path(recipe).name}")
        return launch_training(recipe, rows, output_dir, num_processes=processes, name=name, init_adapter=init_adapter,
                               data_counts=data_counts, resume=resume, store_root=store.root, progress=progress)
    common = dict(resume=resume, progress=progress, store=store, name=name, data_counts=data_counts)
    if recipe.trainer == "sft":
        from deepimagine_core.training.sft import train_sft

        return train_sft(recipe, rows, output_dir, **common)
    from deepimagine_core.training.grpo import train_grpo

    return train_grpo(recipe, rows, output_dir, init_adapter=init_adapter, **common)


def _describe(result: TrainResult, family: str, factors: list[str], training: str) -> None:
    from deepimagine_core.llm.prompts import template_id
    from deepimagine_core.training.card import add_operator_section

    add_operator_section(result.adapter_path, family=family, factors=factors, template=template_id("step"),
                         training=training)


def _processes(recipe: Recipe) -> int:
    from deepimagine_core.training.distributed import resolve_num_processes

    return resolve_num_processes(recipe)


def train_sft_operators(
    store: Store, recipe: str | Recipe = "sft_cpu_tiny", overrides: dict[str, Any] | None = None, *,
    resume: bool = True, progress: Progress | None = None, log: Log | None = None,
) -> TrainingRun:
    """The arm and outcome operators (`models/sft_<family>`, or one `sft_multi` with `per_factor: false`)."""
    from deepimagine_core.training.data import sft_examples
    from deepimagine_core.training.sft import operator_groups, untrained_operators

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    unknown = sorted(set(recipe.factors) - set(SFT_FAMILIES))
    if unknown:
        raise ValueError(f"SFT operators are the natural-pair families {SFT_FAMILIES}; got {unknown}")
    built = sft_examples(store.read_table(NATURAL_PAIRS_TABLE), store.read_table(REASONING_TRACES_TABLE),
                         recipe.factors, untraced=recipe.untraced_pairs)
    if log:
        log(f"SFT data ({recipe.name}): {built.summary()}")
    skipped = untrained_operators(recipe, built.rows)  # trained on training-split pairs with an accepted trace, or
    # on any with untraced_pairs: answer_only
    results = {}
    for name, (rows, counts) in operator_groups(recipe, built.rows).items():
        results[name] = train_adapter(recipe, rows, adapters.run_dir(store, name), name=name, store=store,
                                      resume=resume, progress=progress, log=log, data_counts=counts)
        _describe(results[name], name.removeprefix("sft_"), sorted({r["factor"] for r in rows}), "SFT (LoRA) on "
                  "natural pairs, the completions being accepted reasoning traces or, where a pair has none and the "
                  "recipe allows it, the observed step answer")
    return TrainingRun(recipe, results, built.summary(), _processes(recipe), skipped)


def train_rl_operators(
    store: Store, recipe: str | Recipe = "grpo_operator_cpu_tiny", overrides: dict[str, Any] | None = None, *,
    families: tuple[str, ...] = RL_FAMILIES, max_prompts: int | None = None, resume: bool = True,
    progress: Progress | None = None, log: Log | None = None,
) -> TrainingRun:
    """The intervention and context operators (`models/grpo_<family>`): GRPO on training-split approximate pairs, each
    prompt a step in the shared format, rewarded by the retrieved pair's observed change."""
    from deepimagine_core.training.operator_data import rl_operator_examples

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    trials = load_trials(store)
    approximate, questions = store.read_table(APPROXIMATE_PAIRS_TABLE), store.read_table(HISTORICAL_QUESTIONS_TABLE)
    results, data, skipped = {}, {}, {}
    for family in families:
        built = rl_operator_examples(approximate, questions, trials, family, max_prompts=max_prompts, seed=recipe.seed)
        data[family] = built.summary()
        if log:
            log(f"{family} operator data ({recipe.name}): {built.summary()}")
        name = adapters.rl_operator_name(family)
        if not built.rows:
            skipped[name] = ("0 prompts: no training-split approximate pair whose two trials have answered questions "
                             "of one category and a known, differing value of the factor")
            continue
        results[name] = train_adapter(recipe, built.rows, adapters.run_dir(store, name), name=name, store=store,
                                      resume=resume, progress=progress, log=log, data_counts=built.counts)
        _describe(results[name], family, sorted(f for f, fam in FAMILIES.items() if fam == family),
                  "GRPO (LoRA) on approximate pairs retrieved across trials, rewarded by the pair's observed change of "
                  "significance after CT Open's 3-way collapse, prompts resampled so every observed change counts "
                  "equally")
    return TrainingRun(recipe, results, data, _processes(recipe), skipped)


def resolve_init_adapter(store: Store, init_from: str) -> str | None:
    """`base` -> None; a published adapter's name -> its folder; else a folder path, which must hold an adapter."""
    if init_from == "base":
        return None
    published = adapters.published_adapters(store)
    if init_from in published:
        return str(published[init_from])
    if (Path(init_from) / "adapter_config.json").is_file():
        return init_from
    raise ValueError(f"init_from={init_from!r} is neither 'base', a published adapter ({sorted(published)}) nor an "
                     "adapter folder")


def train_policy(
    store: Store, recipe: str | Recipe = "grpo_cpu_tiny", overrides: dict[str, Any] | None = None, *,
    init_from: str = "base", natural_steps: bool = True, max_prompts: int | None = None, resume: bool = True,
    progress: Progress | None = None, log: Log | None = None,
) -> TrainingRun:
    """The GRPO answer policy (`models/grpo`) on training-split historical questions, asked directly and from
    approximate pairs' anchor trials, and (with `natural_steps`) natural-pair steps."""
    from deepimagine_core.training.data import grpo_examples

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    built = grpo_examples(store.read_table(APPROXIMATE_PAIRS_TABLE), store.read_table(HISTORICAL_QUESTIONS_TABLE),
                          store.read_table(NATURAL_PAIRS_TABLE) if natural_steps else None,
                          max_prompts=max_prompts, seed=recipe.seed)
    if log:
        log(f"GRPO data ({recipe.name}): {built.summary()}")
    name = adapters.GRPO_NAME
    if not built.rows:
        why = "0 GRPO prompts: no training-split historical question with a known answer nor natural pair with an " \
              "observed direction"
        return TrainingRun(recipe, {}, built.summary(), _processes(recipe), {name: why})
    init = resolve_init_adapter(store, init_from)
    result = train_adapter(recipe, built.rows, adapters.run_dir(store, name), name=name, store=store, resume=resume,
                           progress=progress, log=log, init_adapter=init, data_counts=built.counts)
    return TrainingRun(recipe, {name: result}, {**built.summary(), "init_from": init or "base"}, _processes(recipe))
