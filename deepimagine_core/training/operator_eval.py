"""Is a trained operator better than its base model? Direction accuracy on held-out (test-split) natural pairs.

Each pair's local step prompt is answered greedily by the base model and by the base with the operator's adapter;
the DIRECTION is parsed with the [llm] parser and compared with the observed direction. Unparsed answers count as
wrong and are reported (`parsed`), so a model that never answers in format cannot look good.
"""

from __future__ import annotations

from typing import Any

from deepimagine_core.llm.backends import SamplingParams, TransformersBackend, cuda_available
from deepimagine_core.llm.parsing import parse_step
from deepimagine_core.tables import NATURAL_PAIRS_TABLE


def direction_accuracy(
    backend: TransformersBackend,
    examples: list[dict[str, Any]],
    *,
    adapter: str | None = None,
    max_new_tokens: int = 96,
) -> dict[str, Any]:
    """Accuracy, parse rate and count of `examples` (rows of `training.data.eval_examples`) for one model."""
    if not examples:
        return {"n": 0, "accuracy": None, "parsed": 0}
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, n=1)
    outputs = backend.generate([e["prompt"] for e in examples], params, adapter=adapter)
    steps = [parse_step(generations[0].text) for generations in outputs]
    correct = sum(step.direction == e["direction"] for step, e in zip(steps, examples))
    return {"n": len(examples), "accuracy": correct / len(examples), "parsed": sum(s.parsed for s in steps)}


def compare_with_base(
    base_model: str,
    operators: dict[str, tuple[str, list[dict[str, Any]]]],
    *,
    max_new_tokens: int = 96,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """For each operator name -> (adapter folder, its held-out examples): base and operator direction accuracy and
    `better` (strictly higher; None when there is nothing to compare on). Runs on CUDA when there is one."""
    backend = TransformersBackend(base_model, device="cuda" if cuda_available() else "cpu", batch_size=batch_size)
    report = {}
    for name, (adapter, examples) in operators.items():
        base = direction_accuracy(backend, examples, max_new_tokens=max_new_tokens)
        tuned = direction_accuracy(backend, examples, adapter=adapter, max_new_tokens=max_new_tokens)
        better = None if not examples else tuned["accuracy"] > base["accuracy"]
        report[name] = {"base": base, "operator": tuned, "better": better}
    return report


def published_operators_vs_base(store, *, max_pairs_per_factor: int = 32, max_new_tokens: int = 96) -> dict[str, Any]:
    """Every published SFT operator against its base model on test-split natural pairs of its factor(s):
    {"passed", "description", "metadata"} for a check to report (not better = not passed; the tiny model never is)."""
    from deepimagine_core.llm.backends import resolve_model
    from deepimagine_core.training import adapters
    from deepimagine_core.training.data import eval_examples

    pairs = store.read_table(NATURAL_PAIRS_TABLE)
    published = {n: p for n, p in adapters.published_adapters(store).items() if n.startswith("sft_")}
    if not published:
        return {"passed": False, "description": "no published SFT operator to evaluate", "metadata": {}}
    operators, base_models = {}, set()
    for name, folder in published.items():
        base_models.add(adapters.adapter_result(folder)["base_model"])
        factor = name.removeprefix("sft_")
        factors = ("arm", "outcome") if factor == "multi" else (factor,)
        examples = [e for f in factors for e in eval_examples(pairs, f, limit=max_pairs_per_factor)]
        operators[name] = (str(folder), examples)
    if len(base_models) != 1:
        return {"passed": False, "metadata": {},
                "description": f"operators were trained on different base models {sorted(base_models)}; retrain them"}
    report = compare_with_base(resolve_model(base_models.pop(), store), operators, max_new_tokens=max_new_tokens)
    not_better = sorted(name for name, r in report.items() if not r["better"])
    metadata: dict[str, Any] = {}
    for name, r in report.items():
        metadata[f"{name}/n_pairs"] = r["base"]["n"]
        metadata[f"{name}/operator_parsed"] = r["operator"]["parsed"]
        if r["better"] is not None:
            metadata[f"{name}/base_accuracy"] = float(r["base"]["accuracy"])
            metadata[f"{name}/operator_accuracy"] = float(r["operator"]["accuracy"])
    description = ("every operator beats its base model" if not not_better
                   else f"not better than the base model (or no held-out pairs): {', '.join(not_better)}")
    return {"passed": not not_better, "description": description, "metadata": metadata}
