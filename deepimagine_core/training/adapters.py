"""Where trained adapters live in a store, and which ones are published.

    models/sft_<family>/adapter/    the SFT operators of natural-pair factors (sft_arm, sft_outcome; or sft_multi)
    models/grpo_<family>/adapter/   the GRPO operators of approximate-pair factors (grpo_intervention, grpo_context)
    models/grpo/adapter/            the GRPO answer policy

The Dagster layer hands `trained_predictor_options(store)` to the evaluation: the operator folders per family for
`deepimagine_sft` and the policy for `llm_direct_grpo` (the llm layer never looks into this folder itself).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepimagine_core.llm.factors import OPERATOR_FAMILIES, RL_FAMILIES
from deepimagine_core.store import Store
from deepimagine_core.training.checkpoints import ADAPTER, REQUIRED_ADAPTER_FILES, RESULT_FILE
from deepimagine_core.training.sft import MULTI_FACTOR, operator_name

GRPO_NAME = "grpo"


def models_dir(store: Store) -> Path:
    return store.path("models")


def run_dir(store: Store, name: str) -> Path:
    """The run folder of adapter `name` (`sft_arm`, `sft_multi`, `grpo`): checkpoints/ and adapter/ inside."""
    return models_dir(store) / name


def published_adapters(store: Store) -> dict[str, Path]:
    """Every complete published adapter in the store: name -> adapter folder."""
    root = models_dir(store)
    found = {}
    if root.is_dir():
        for run in sorted(root.iterdir()):
            adapter = run / ADAPTER
            if run.name.startswith(("sft_", GRPO_NAME)) and all(
                (adapter / f).is_file() for f in REQUIRED_ADAPTER_FILES
            ):
                found[run.name] = adapter
    return found


def rl_operator_name(family: str) -> str:
    """Run folder of an approximate-pair family's GRPO operator (`grpo_intervention`, `grpo_context`)."""
    if family not in RL_FAMILIES:
        raise ValueError(f"{family!r} is not a GRPO operator family; those are {RL_FAMILIES}")
    return f"{GRPO_NAME}_{family}"


def operator_adapters(store: Store, families: tuple[str, ...] = OPERATOR_FAMILIES) -> dict[str, str]:
    """family -> adapter folder of every published operator: a family's own one, else (arm, outcome) the
    multi-factor SFT operator if published."""
    published = published_adapters(store)
    chosen = {}
    for family in families:
        own = rl_operator_name(family) if family in RL_FAMILIES else operator_name(family)
        adapter = published.get(own) or (None if family in RL_FAMILIES else published.get(operator_name(MULTI_FACTOR)))
        if adapter is not None:
            chosen[family] = str(adapter)
    return chosen


def trained_predictor_options(store: Store) -> dict[str, dict[str, Any]]:
    """The fine-tuned predictors whose adapters are published, with the keyword arguments that give them their
    adapters: `deepimagine_sft` (the operators, per family) and `llm_direct_grpo` (the policy)."""
    options: dict[str, dict[str, Any]] = {}
    if operators := operator_adapters(store):
        options["deepimagine_sft"] = {"adapters": operators}
    if policy := published_adapters(store).get(GRPO_NAME):
        options["llm_direct_grpo"] = {"adapter": str(policy)}
    return options


def adapter_result(adapter: str | Path) -> dict[str, Any]:
    """The training result JSON a published adapter carries (base model, steps, metrics, data counts)."""
    return json.loads((Path(adapter) / RESULT_FILE).read_text())
