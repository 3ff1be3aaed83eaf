"""The whole evaluation of a store in one call: inputs (`inputs.py`) → every predictor on every benchmark (`run.py`) →
report files under `reports/` (`report.py`). The Dagster asset `evaluation_report` is a thin wrapper around it.

    outcome = evaluate_store(store, EvaluationSettings(predictors=["majority", "logreg"]))

The LLM predictors are registered and served by the layer above (`deepimagine_core.llm`); a caller that wants them
passes `LLMPredictors` (how to make the shared backend, how to tell the tiny model, which fine-tuned predictors have
published adapters).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deepimagine_core.evaluation.inputs import EvaluationInputError, EvaluationInputs, evaluation_inputs
from deepimagine_core.evaluation.predictors import available_predictors
from deepimagine_core.evaluation.report import ReportFiles, write_report
from deepimagine_core.evaluation.run import EvaluationResults, run_predictors
from deepimagine_core.evaluation.selection import REFERENCE, default_options
from deepimagine_core.store import Store

#: The CPU predictors of a default evaluation; the reference predictor among them (added if it is not one of them).
BASELINES = tuple(dict.fromkeys(("majority", "logreg", "logreg_adapted", "mlp", "random_forest", "knn_history",
                                 "ensemble", REFERENCE.name)))
LLM_PREDICTORS = ("llm_direct", "llm_rag", "deepimagine")
TRAINED_LLM_PREDICTORS = ("deepimagine_sft", "llm_direct_grpo")  # added when their adapters are published
TINY_LLM_MAX_QUESTIONS = 48  # the tiny model's answers are noise: score it on a sample, so the default run stays quick
TINY_PATHWAY_MAX_QUESTIONS = 16  # the pathway asks 7 anchors x up to 7 steps per question: a smaller sample still


@dataclass
class EvaluationSettings:
    """The settings of one evaluation run; the Dagster `EvaluationConfig` takes its defaults from here."""

    predictors: list[str] = field(default_factory=lambda: [*BASELINES, *LLM_PREDICTORS])
    trained_predictors: bool = True  # add deepimagine_sft / llm_direct_grpo when their adapters are published
    llm_max_questions: int = 0  # LLM predictors score at most this many questions per benchmark; 0 = all
    bootstrap_samples: int = 1000
    seed: int = 0
    alpha: float = 0.05
    # JSON {predictor: {keyword: value}}, e.g. {"knn_history": {"k": 30}}; the reference predictor gets its selected
    # settings (`selection.REFERENCE.options`) unless named here
    predictor_options: str = ""


@dataclass
class LLMPredictors:
    """What the LLM layer lends an evaluation (the caller fills it; the LLM predictors must be registered)."""

    backend: Callable[[], Any]  # the one shared backend of every LLM predictor (called only when one runs)
    is_tiny: Callable[[Any], bool]  # whether that backend runs the tiny model (its answers are noise)
    # fine-tuned predictors whose adapters are published -> the keyword arguments that hand them their adapters
    trained: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class EvaluationOutcome:
    inputs: EvaluationInputs
    predictors: list[str]
    results: EvaluationResults
    files: ReportFiles


def parse_predictor_options(text: str) -> dict[str, dict[str, Any]]:
    """{predictor: keyword arguments} from the JSON text. The reference predictor (`selection.REFERENCE`) runs with
    its selected settings unless the text names it: the report calls it the reference, so it must be that model."""
    try:
        options = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise EvaluationInputError(f"predictor_options is not valid JSON: {exc}") from exc
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise EvaluationInputError(f"predictor_options must be a JSON object of objects "
                                   f'({{"predictor": {{"keyword": value}}}}), got {text!r}')
    options.setdefault(REFERENCE.name, default_options(REFERENCE.name))
    return options


def _llm_plan(settings: EvaluationSettings, predictors: list[str], options: dict, store: Store,
              llm: LLMPredictors | None) -> dict[str, int]:
    """Add the published fine-tuned predictors, give every LLM predictor the shared backend; {name: question cap}."""
    if llm is not None and settings.trained_predictors and any(p in LLM_PREDICTORS for p in predictors):
        predictors += [p for p in llm.trained if p not in predictors]
        for name, kwargs in llm.trained.items():
            options.setdefault(name, {}).update(kwargs)
    llm_names = [p for p in predictors if p in LLM_PREDICTORS or p in TRAINED_LLM_PREDICTORS]
    if not llm_names or llm is None:
        return {}
    backend = llm.backend()
    for name in llm_names:  # one backend (one loaded model) for every LLM predictor
        options.setdefault(name, {}).update(backend=backend, store=store)
    if settings.llm_max_questions or not llm.is_tiny(backend):
        return {name: settings.llm_max_questions for name in llm_names} if settings.llm_max_questions else {}
    return {name: TINY_PATHWAY_MAX_QUESTIONS if name.startswith("deepimagine") else TINY_LLM_MAX_QUESTIONS
            for name in llm_names}


def evaluate_store(store: Store, settings: EvaluationSettings, *, llm: LLMPredictors | None = None,
                   log: Callable[[str], None] = print) -> EvaluationOutcome:
    """Every predictor on every benchmark of `store`, scored with CT Open's official metric and trial-bootstrap
    intervals; writes reports/evaluation.json, report.md/html, figures, predictions. `EvaluationInputError` when the
    store lacks the inputs or the settings name something unknown."""
    inputs = evaluation_inputs(store)
    log(f"historical questions per split: {inputs.split_counts} (train fits the predictors, test is a benchmark)")
    if inputs.why_empty:  # a small source: the report says why there is nothing to score, and the run goes on
        for reason in inputs.why_empty:
            log(f"nothing evaluated: {reason}")
        results = EvaluationResults(notes=list(inputs.why_empty))
        return EvaluationOutcome(inputs, [], results, write_report(store.path("reports"), results))
    options = parse_predictor_options(settings.predictor_options)
    predictors = list(settings.predictors)
    limits = _llm_plan(settings, predictors, options, store, llm)
    unknown = [p for p in predictors if p not in available_predictors()]
    if unknown:
        raise EvaluationInputError(f"unknown predictors {unknown}; registered: {available_predictors()}")
    ct_train = inputs.ct_open_train
    log(f"evaluating {predictors} on {[(k, len(v)) for k, v in inputs.benchmarks.items()]}; training on "
        f"{len(inputs.train)} historical questions" + (f" and separately {len(ct_train)} CT Open" if ct_train else ""))
    results = run_predictors(
        inputs.benchmarks, inputs.train, predictors, extra_training={"ct_open_train": ct_train} if ct_train else None,
        predictor_kwargs=options, exclude_nct_ids=inputs.benchmark_nct_ids, n_bootstrap=settings.bootstrap_samples,
        seed=settings.seed, alpha=settings.alpha, log=log, question_limits=limits,
    )
    files = write_report(store.path("reports"), results)
    log(f"report written to {files.root}: {len(files.predictions)} prediction files, {len(files.figures)} figures")
    return EvaluationOutcome(inputs, predictors, results, files)
