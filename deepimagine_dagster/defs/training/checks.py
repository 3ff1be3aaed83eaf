"""Checks on the trained operators: each SFT operator should beat its base model on held-out natural pairs.

Direction accuracy of the local step on test-split natural pairs of the operator's factor(s), base model against
base + adapter (greedy, parsed with the [llm] step parser). Not better → a WARN (the tiny model is never better; a
real run that is not better deserves a look, not a blocked pipeline).
"""


import dagster as dg

from deepimagine_core.llm.backends import resolve_model
from deepimagine_core.tables import NATURAL_PAIRS_TABLE
from deepimagine_core.training import adapters
from deepimagine_core.training.data import eval_examples
from deepimagine_core.training.evaluate import compare_with_base
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
    st = store.get()
    pairs = st.read_table(NATURAL_PAIRS_TABLE)
    published = {n: p for n, p in adapters.published_adapters(st).items() if n.startswith("sft_")}
    if not published:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description="no published SFT operator to evaluate"
        )
    operators, base_models = {}, set()
    for name, folder in published.items():
        result = adapters.adapter_result(folder)
        base_models.add(result["base_model"])
        factor = name.removeprefix("sft_")
        factors = ("arm", "outcome") if factor == "multi" else (factor,)
        examples = [e for f in factors for e in eval_examples(pairs, f, limit=config.max_pairs_per_factor)]
        operators[name] = (str(folder), examples)
        context.log.info(f"{name}: {len(examples)} held-out pairs")
    if len(base_models) != 1:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN,
            description=f"operators were trained on different base models {sorted(base_models)}; retrain them together",
        )
    report = compare_with_base(resolve_model(base_models.pop(), st), operators, max_new_tokens=config.max_new_tokens)
    not_better = sorted(name for name, r in report.items() if not r["better"])
    metadata = {}
    for name, r in report.items():
        metadata[f"{name}/n_pairs"] = r["base"]["n"]
        metadata[f"{name}/operator_parsed"] = r["operator"]["parsed"]
        if r["better"] is not None:
            metadata[f"{name}/base_accuracy"] = float(r["base"]["accuracy"])
            metadata[f"{name}/operator_accuracy"] = float(r["operator"]["accuracy"])
    description = (
        "every operator beats its base model" if not not_better
        else f"not better than the base model (or no held-out pairs): {', '.join(not_better)}"
    )
    return dg.AssetCheckResult(
        passed=not not_better, severity=dg.AssetCheckSeverity.WARN, description=description, metadata=metadata
    )

