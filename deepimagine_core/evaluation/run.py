"""Run predictors on benchmarks: fit each predictor on each training setting, predict every benchmark, score it the
official way (`scoring.evaluate`). The files and the rendered report are `report.py`'s job.

    results = run_predictors(benchmarks, train, ["majority", "logreg"])

Predictors train on the historical training questions; CT Open files the user marks as training are a separate
setting, reported under `<predictor>@<setting>`. Training questions of trials that appear in an evaluated CT Open
benchmark are dropped (and counted) so a benchmark trial never leaks into training.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deepimagine_core.evaluation.predictors import Prediction, make_predictor
from deepimagine_core.evaluation.scoring import evaluate
from deepimagine_core.questions import Question

HISTORICAL_SETTING = "historical"


@dataclass
class BenchmarkRun:
    """One predictor on one benchmark: its predictions and official figures."""

    questions: list[Question]
    predictions: list[Prediction]
    scores: dict[str, Any]


@dataclass
class EvaluationResults:
    runs: dict[str, dict[str, BenchmarkRun]] = field(default_factory=dict)  # benchmark -> predictor -> run
    training: dict[str, dict[str, Any]] = field(default_factory=dict)  # setting -> {n_questions, n_dropped, ...}
    notes: list[str] = field(default_factory=list)  # why a part is empty (evaluation.inputs.empty_reasons)

    def as_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {b: {p: run.scores for p, run in preds.items()} for b, preds in self.runs.items()}


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]+", "_", name) or "unnamed"


def run_predictors(
    benchmarks: dict[str, list[Question]],
    train: Sequence[Question],
    predictors: Sequence[str],
    *,
    extra_training: dict[str, Sequence[Question]] | None = None,
    predictor_kwargs: dict[str, dict[str, Any]] | None = None,
    exclude_nct_ids: set[str] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    log: Callable[[str], None] = print,
    question_limits: dict[str, int] | None = None,
) -> EvaluationResults:
    """Fit each predictor on each training setting and score it on every benchmark.

    `question_limits` caps costly predictors (LLMs on a CPU): predictor name -> at most that many questions per
    benchmark, a seeded sample that is the same for every capped predictor; its `n_questions` says how many were scored.

    `train` is the historical training split (setting "historical"); `extra_training` maps further setting names
    (e.g. "ct_open_train") to their questions. Questions whose trial is in `exclude_nct_ids` are dropped from every
    training set. Errors are raised with the predictor's name, never turned into a zero score.
    """
    if not benchmarks or not any(benchmarks.values()):
        raise ValueError("no benchmark questions to evaluate")
    if not predictors:
        raise ValueError("no predictors named")
    exclude = exclude_nct_ids or set()
    settings = {HISTORICAL_SETTING: list(train), **{k: list(v) for k, v in (extra_training or {}).items()}}
    results = EvaluationResults(runs={name: {} for name in benchmarks if benchmarks[name]})
    for setting, questions in settings.items():
        kept = [q for q in questions if q.nct_id not in exclude and q.answer is not None]
        results.training[setting] = {
            "n_questions": len(kept),
            "n_trials": len({q.nct_id for q in kept}),
            "n_dropped_benchmark_trials": sum(1 for q in questions if q.nct_id in exclude),
            "n_dropped_unanswered": sum(1 for q in questions if q.nct_id not in exclude and q.answer is None),
        }
        log(f"training setting {setting!r}: {len(kept)} questions ({results.training[setting]})")
        if not kept:
            raise ValueError(f"training setting {setting!r} has no usable questions")
        for name in predictors:
            label = name if setting == HISTORICAL_SETTING else f"{name}@{setting}"
            started = time.monotonic()
            try:
                predictor = make_predictor(name, **(predictor_kwargs or {}).get(name, {}))
                predictor.fit(kept)
            except Exception as exc:
                raise RuntimeError(f"predictor {label!r} failed to train: {type(exc).__name__}: {exc}") from exc
            log(f"{label}: trained on {len(kept)} questions in {time.monotonic() - started:.1f}s")
            for bench, questions_b in benchmarks.items():
                if not questions_b:
                    continue
                limit = (question_limits or {}).get(name)
                if limit and len(questions_b) > limit:
                    questions_b = sample_questions(questions_b, limit, seed)
                    log(f"{label} on {bench}: scored on a seeded sample of {limit} questions")
                started = time.monotonic()
                try:
                    predictions = predictor.predict(list(questions_b))
                except Exception as exc:
                    raise RuntimeError(f"predictor {label!r} failed on {bench!r}: {type(exc).__name__}: {exc}") from exc
                scores = evaluate(questions_b, predictions, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha)
                scores["training"] = {"setting": setting, **results.training[setting]}
                if callable(getattr(predictor, "describe", None)):  # provenance (model, adapter, parse counts, note)
                    scores["predictor"] = json.loads(json.dumps(predictor.describe(), default=str))
                results.runs[bench][label] = BenchmarkRun(list(questions_b), predictions, scores)
                o = scores["overall"]
                log(
                    f"{label} on {bench}: weighted accuracy {o['weighted_accuracy']:.3f} "
                    f"{fmt_interval(scores['intervals']['weighted_accuracy'])}, macro-F1 {o['macro_f1']:.3f}, "
                    f"cross-entropy {o['cross_entropy']:.3f}, {scores['n_unparsed']} unparsed "
                    f"({len(questions_b)} questions, {time.monotonic() - started:.1f}s)"
                )
    return results


def sample_questions(questions: Sequence[Question], n: int, seed: int) -> list[Question]:
    """A seeded sample of n questions in their original order (the same sample for the same inputs)."""
    import random

    keep = sorted(random.Random(seed).sample(range(len(questions)), n))
    return [questions[i] for i in keep]



def fmt_interval(interval: list[float] | None) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "[n/a]"

