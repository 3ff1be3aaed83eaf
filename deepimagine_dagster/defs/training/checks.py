"""Checks on the trained operators: each SFT operator should beat its base model on held-out natural pairs.

Direction accuracy of the local step on test-split natural pairs of the operator's factor(s), base model against
base + adapter (greedy, parsed with the [llm] step parser). Not better → a WARN (the tiny model is never better; a
real run that is not better deserves a look, not a blocked pipeline).
"""


import dagster as dg

from deepimagine_core.training.operator_eval import published_operators_vs_base
from deepimagine_dagster.defs.training.assets import sft_operators
from deepimagine_dagster.resources import StoreResource


class OperatorCheckConfig(dg.Config):
    max_pairs_per_factor: int = 32  # held-out pairs evaluated per factor (generation is the cost)
    max_new_tokens: int = 96


@dg.asset_check(asset=sft_operators, blocking=False)
def sft_operators_beat_base(
    context: dg.AssetCheckExecutionContext, config: OperatorCheckConfig, store: StoreResource
) -> dg.AssetCheckResult:
    """Each published SFT operator's direction accuracy on test-split natural pairs beats its base model's."""
    report = published_operators_vs_base(store.get(), max_pairs_per_factor=config.max_pairs_per_factor,
                                         max_new_tokens=config.max_new_tokens)
    context.log.info(report["description"])
    return dg.AssetCheckResult(passed=report["passed"], severity=dg.AssetCheckSeverity.WARN,
                               description=report["description"], metadata=report["metadata"])
