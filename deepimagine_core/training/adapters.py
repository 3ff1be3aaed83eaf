"""Where trained adapters live in a store, and which ones are published.

    models/sft_<factor>/adapter/    per-factor SFT operators (sft_arm, sft_outcome), or models/sft_multi/adapter/
    models/grpo/adapter/            the GRPO policy

Predictors (the [llm] pathway and the [eval] report) use `operator_adapters` for `PathwayConfig.adapters` and
`published_adapters` to list every trained model; names contain `sft` or `grpo`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
            if (run.name.startswith("sft_") or run.name == GRPO_NAME) and all(
                (adapter / f).is_file() for f in REQUIRED_ADAPTER_FILES
            ):
                found[run.name] = adapter
    return found


def operator_adapters(store: Store, factors: tuple[str, ...] = ("arm", "outcome")) -> dict[str, str]:
    """factor -> adapter folder for the pathway: a factor's own operator, else the multi-factor one if published."""
    published = published_adapters(store)
    chosen = {}
    for factor in factors:
        adapter = published.get(operator_name(factor)) or published.get(operator_name(MULTI_FACTOR))
        if adapter is not None:
            chosen[factor] = str(adapter)
    return chosen


def adapter_result(adapter: str | Path) -> dict[str, Any]:
    """The training result JSON a published adapter carries (base model, steps, metrics, data counts)."""
    return json.loads((Path(adapter) / RESULT_FILE).read_text())
