"""Answer the standard questions about one trial design and write the prediction report.

    design = load_design("NCT01234567", store)
    result = predict_trial(design, store, PredictSettings())
    files = write_prediction_report(store, result)          # reports/ask/<nct_id>/report.{md,html,json}

Predictors learn from the store's `historical_questions` (every answered question, all splits) minus the target
trial's own questions, so a trial from the store is predicted as if its results were unknown. The reference predictor
is `reference_predictor()`; the LLM pathway (`deepimagine_sft`) joins when its operators are published in the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deepimagine_core.predict.design import TrialDesign
from deepimagine_core.predict.questions import design_questions, option_names
from deepimagine_core.questions import Question
from deepimagine_core.store import Store
from deepimagine_core.tables import HISTORICAL_QUESTIONS_TABLE

HISTORY_TABLE = HISTORICAL_QUESTIONS_TABLE
LLM_MODES = ("auto", "off", "deepimagine")
NEIGHBOUR_CANDIDATES = 60  # hits searched per question before keeping the best one per trial


def reference_predictor() -> tuple[str, dict[str, Any]]:
    """The project's reference predictor (`evaluation.selection.REFERENCE`) as (name, options), set up for one trial:
    an adapted predictor answers from its calibrated scores, because one trial's questions are not a sample of a
    shifted benchmark to adapt to (what it does anyway below `min_target` questions per category)."""
    from deepimagine_core.evaluation.predictors import ADAPTED_SUFFIX
    from deepimagine_core.evaluation.selection import REFERENCE, default_options

    options = default_options(REFERENCE.name)
    if REFERENCE.name.endswith(ADAPTED_SUFFIX):
        options["method"] = "calibrated"
    return REFERENCE.name, options


@dataclass
class PredictSettings:
    secondary: bool = False  # ask about secondary outcomes too
    neighbours: int = 5  # nearest historical trials shown per question
    predictors: list[str] = field(default_factory=list)  # empty = the reference predictor
    llm: str = "auto"  # auto: deepimagine_sft when its operators are published; off; deepimagine: also the base model
    predictor_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        if self.llm not in LLM_MODES:
            raise ValueError(f"llm: {self.llm!r} is not one of {', '.join(LLM_MODES)}")
        if self.neighbours < 0:
            raise ValueError(f"neighbours: must be >= 0, got {self.neighbours}")


@dataclass
class PredictionResult:
    design: TrialDesign
    questions: list[Question]
    predictions: dict[str, list[Any]]  # predictor -> Prediction per question
    neighbours: list[list[dict[str, Any]]]  # per question: nearest historical trials with their known result
    predictors: dict[str, dict[str, Any]]  # predictor -> description (settings, notes)
    training: dict[str, Any]
    reference: str


def load_history(store: Store, exclude_nct_id: str) -> tuple[list[Question], list[dict[str, Any]], int]:
    """Answered historical questions (and their rows) except those of `exclude_nct_id`; and how many were excluded."""
    if not store.has_table(HISTORY_TABLE):
        raise FileNotFoundError(
            f"no historical questions in the store at {store.root} (table {HISTORY_TABLE!r}): build them first, "
            "e.g. `dagster job execute -m deepimagine_dagster.definitions -j refresh_trials` then `-j build_pairs`"
        )
    rows = [r for r in store.read_table(HISTORY_TABLE).to_pylist() if r.get("answer") is not None]
    kept = [r for r in rows if r["nct_id"].upper() != exclude_nct_id.upper()]
    if not kept:
        raise ValueError(f"table {HISTORY_TABLE!r} has no answered questions besides {exclude_nct_id}'s")
    from deepimagine_core.evaluation.weighting import question_with_date

    # dated: the reference weighs training questions by recency (`half_life`); undated ones would all count as newest
    return [question_with_date(r) for r in kept], kept, len(rows) - len(kept)


def predictor_names(store: Store, settings: PredictSettings) -> list[str]:
    names = list(settings.predictors) or [reference_predictor()[0]]
    if settings.llm == "deepimagine" and "deepimagine" not in names:
        names.append("deepimagine")
    if settings.llm in ("auto", "deepimagine"):
        from deepimagine_core.training.adapters import trained_predictor_options

        if "deepimagine_sft" in trained_predictor_options(store) and "deepimagine_sft" not in names:
            names.append("deepimagine_sft")
    return names


def _llm_kwargs(name: str, design: TrialDesign, store: Store, backend: Any) -> dict[str, Any]:
    import deepimagine_core.llm.llm_predictors  # noqa: F401  (registers the LLM predictors)

    if not name.startswith(("deepimagine", "llm_")):
        return {}
    kwargs: dict[str, Any] = {"store": store}
    if backend is not None:
        kwargs["backend"] = backend
    if name.startswith("deepimagine"):
        from deepimagine_core.llm.factors import load_trials
        from deepimagine_core.training.adapters import trained_predictor_options

        kwargs["trials"] = {**load_trials(store), design.nct_id: design.trial_row()}  # the target's own context
        kwargs.update(trained_predictor_options(store).get(name, {}))  # deepimagine_sft: the operators' adapters
    return kwargs


def nearest_trials(questions: list[Question], history: list[Question], rows: list[dict[str, Any]],
                   k: int) -> list[list[dict[str, Any]]]:
    """Per question, the k most similar historical trials (best-matching question of each) with its known result."""
    if k == 0 or not questions:
        return [[] for _ in questions]
    from deepimagine_core.evaluation.features import retrieval_text
    from deepimagine_core.evaluation.predictors import default_text_index

    index = default_text_index().fit([str(i) for i in range(len(history))], [retrieval_text(q) for q in history])
    out = []
    for q, hits in zip(questions, index.search([retrieval_text(q) for q in questions], NEIGHBOUR_CANDIDATES)):
        best: dict[str, dict[str, Any]] = {}
        # questions of the same kind first (their known result answers the same question), then any
        for same_kind in (True, False):
            for hid, score in hits:
                row = rows[int(hid)]
                if (row.get("kind") == q.extra.get("kind")) == same_kind and row["nct_id"] not in best and len(best) < k:
                    best[row["nct_id"]] = _known_result(row, score)
        out.append(sorted(best.values(), key=lambda n: -n["similarity"]))
    return out


def _known_result(row: dict[str, Any], score: float) -> dict[str, Any]:
    endpoint = json.loads(row["endpoint"]) if isinstance(row["endpoint"], str) else row["endpoint"]
    return {"nct_id": row["nct_id"], "url": f"https://clinicaltrials.gov/study/{row['nct_id']}",
            "brief_title": row.get("brief_title"), "similarity": round(float(score), 3),
            "endpoint": endpoint.get("measure"), "kind": row.get("kind"), "arm_x": row.get("arm_x"),
            "arm_y": row.get("arm_y"), "known_result": option_names(Question.from_row(row))[row["answer"]],
            "known_result_text": row["options"][row["answer"]],
            "p_value": row.get("p_value_raw"), "results_first_posted": str(row.get("results_first_posted") or "")}


def predict_trial(design: TrialDesign, store: Store, settings: PredictSettings | None = None, *, backend: Any = None,
                  log: Callable[[str], None] = print) -> PredictionResult:
    """Questions about `design`, answered by each predictor trained on the store's history (target excluded)."""
    from deepimagine_core.evaluation.predictors import make_predictor

    settings = settings or PredictSettings()
    questions = design_questions(design, secondary=settings.secondary)
    history, rows, excluded = load_history(store, design.nct_id)
    log(f"{design.nct_id}: {len(questions)} questions; training on {len(history)} historical questions "
        f"({excluded} of the target trial itself left out)")
    predictions, described = {}, {}
    reference, reference_options = reference_predictor()
    for name in predictor_names(store, settings):
        kwargs = {**(reference_options if name == reference else {}), **_llm_kwargs(name, design, store, backend),
                  **settings.predictor_kwargs.get(name, {})}
        try:
            predictor = make_predictor(name, **kwargs)
            predictor.fit(history)
            predictions[name] = predictor.predict(questions)
        except Exception as exc:
            raise RuntimeError(f"predictor {name!r} failed: {type(exc).__name__}: {exc}") from exc
        describe = getattr(predictor, "describe", None)
        described[name] = json.loads(json.dumps(describe() if callable(describe) else {}, default=str))
        log(f"{name}: answered {len(questions)} questions")
    neighbours = nearest_trials(questions, history, rows, settings.neighbours)
    training = {"table": HISTORY_TABLE, "n_questions": len(history), "n_trials": len({q.nct_id for q in history}),
                "n_target_questions_left_out": excluded}
    return PredictionResult(design, questions, predictions, neighbours, described, training, reference=reference)
