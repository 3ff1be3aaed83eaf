"""The living benchmark: predictor snapshots with a training cutoff, the questions posted after it, and the history of
their scores across refreshes. Thin: the work is in deepimagine_core.evaluation.prospective / history.

historical_questions → predictor_snapshots (fitted once; retrain by materialising it)
historical_questions, predictor_snapshots, published adapters → prospective_questions → benchmark_history
(snapshots always; the fine-tuned LLM predictors when `trained_predictors` is set: that runs the model)
Automation (deepimagine_dagster/automation.py) keeps the last two up to date after every refresh of the trial tables.
"""

import datetime as dt
import functools

import dagster as dg

import deepimagine_core.llm.llm_predictors  # noqa: F401  (registers the LLM predictors in the evaluation registry)
from deepimagine_core.evaluation.evaluate_store import TINY_LLM_MAX_QUESTIONS, parse_predictor_options
from deepimagine_core.evaluation.history import Contender, update_history
from deepimagine_core.evaluation.predictors import make_predictor
from deepimagine_core.evaluation.prospective import (PROSPECTIVE_QUESTIONS, SNAPSHOT_PREDICTORS, snapshots_dir,
                                                     train_snapshots, training_rows, write_prospective_questions)
from deepimagine_core.llm.backends import is_tiny
from deepimagine_core.questions import Question
from deepimagine_core.tables import (BENCHMARK_HISTORY_TABLE, HISTORICAL_QUESTIONS_TABLE, PROSPECTIVE_QUESTIONS_TABLE,
                                     TRIALS_TABLE)
from deepimagine_core.training.adapters import trained_predictor_options
from deepimagine_core.training.cutoff import read_cutoff
from deepimagine_dagster.metadata import table_metadata
from deepimagine_dagster.resources import LLMBackendResource, StoreResource

GROUP = "live"


class SnapshotsConfig(dg.Config):
    predictors: list[str] = list(SNAPSHOT_PREDICTORS)  # CPU predictors (evaluation registry names)
    predictor_options: str = ""  # JSON {predictor: {keyword: value}}


class HistoryConfig(dg.Config):
    bootstrap_samples: int = 1000
    seed: int = 0
    # also score the fine-tuned LLM predictors (deepimagine_sft, llm_direct_grpo) whose adapters recorded a cutoff:
    # this runs the `llm` resource's model (GPU work), so it is off by default and in automation
    trained_predictors: bool = False
    llm_max_questions: int = 0  # LLM predictors score at most this many prospective questions; 0 = all (tiny: 48)


def trained_cutoffs(store) -> dict[str, dt.date]:
    """Each fine-tuned predictor with published adapters -> its training cutoff: the latest one its adapters recorded
    (training/cutoff.py); left out when one of its adapters recorded none (what it saw is unknown)."""
    found = {}
    for name, options in trained_predictor_options(store).items():
        folders = list(options["adapters"].values()) if "adapters" in options else [options["adapter"]]
        cutoffs = [read_cutoff(folder) for folder in folders]
        if cutoffs and None not in cutoffs:
            found[name] = max(cutoffs)
    return found


def trained_contenders(store, llm: LLMBackendResource, max_questions: int) -> dict[str, Contender]:
    """The fine-tuned LLM predictors as history contenders: one shared backend, fitted on the training questions."""
    cutoffs, options = trained_cutoffs(store), trained_predictor_options(store)
    if not cutoffs:
        return {}
    backend = llm.get(store)  # the model itself loads on the first generation

    def ready(name: str):
        predictor = make_predictor(name, backend=backend, store=store, **options[name])
        rows = training_rows(store.read_table(HISTORICAL_QUESTIONS_TABLE)).to_pylist()
        predictor.fit([Question.from_row(r) for r in rows])
        return predictor

    cap = max_questions or (TINY_LLM_MAX_QUESTIONS if is_tiny(backend) else 0)
    return {name: Contender(cutoff, functools.partial(ready, name), cap) for name, cutoff in cutoffs.items()}


def latest_refresh(context: dg.AssetExecutionContext, store) -> tuple[str, dt.datetime]:
    """The refresh being scored: the run that last materialised `trials` (else the trials table's write time)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(TRIALS_TABLE))
    if event is not None:
        return event.run_id, dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc)
    written = dt.datetime.fromtimestamp(store.table_path(TRIALS_TABLE).stat().st_mtime, dt.timezone.utc)
    return f"trials@{written.isoformat(timespec='seconds')}", written


@dg.asset(group_name=GROUP, deps=[HISTORICAL_QUESTIONS_TABLE], kinds={"python"})
def predictor_snapshots(context: dg.AssetExecutionContext, config: SnapshotsConfig,
                        store: StoreResource) -> dg.MaterializeResult:
    """CPU predictors fitted on the training side of the historical questions and frozen under
    models/predictors/<name>/ with a card recording their training cutoff (latest results_first_posted seen). Built
    once by automation; materialise it by hand to retrain (which starts a new prospective series)."""
    st = store.get()
    cards, skipped = train_snapshots(st, config.predictors, parse_predictor_options(config.predictor_options),
                                     log=context.log.info)
    first = next(iter(cards.values()), None)
    return dg.MaterializeResult(metadata={
        "training_cutoff": dg.MetadataValue.json({name: card.cutoff for name, card in cards.items()}),
        "n_questions": first.n_questions if first else 0, "n_trials": first.n_trials if first else 0,
        "path": dg.MetadataValue.path(str(snapshots_dir(st))),
        **({"why_empty": dg.MetadataValue.json(skipped)} if skipped else {})})


@dg.asset(group_name=GROUP, kinds={"parquet"},
          deps=[HISTORICAL_QUESTIONS_TABLE, predictor_snapshots, "sft_operators", "rl_operators", "grpo_policy"])
def prospective_questions(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    """The historical questions of trials whose results were first posted after a predictor's (or adapter's)
    training cutoff: questions it has never seen. One copy per distinct cutoff, with the predictors sharing it."""
    st = store.get()
    table = write_prospective_questions(st, trained_cutoffs(st))
    per_cutoff = {}
    for row in table.select(["cutoff", "predictors", "nct_id"]).to_pylist():
        entry = per_cutoff.setdefault(str(row["cutoff"]), {"predictors": row["predictors"], "questions": 0})
        entry["questions"] += 1
    context.log.info(f"prospective questions per cutoff: {per_cutoff}")
    return dg.MaterializeResult(metadata={
        **table_metadata(st, PROSPECTIVE_QUESTIONS_TABLE), "per_cutoff": dg.MetadataValue.json(per_cutoff),
        "columns": ", ".join(PROSPECTIVE_QUESTIONS.names[-2:]) + " (added to the historical question columns)"})


@dg.asset(group_name=GROUP, deps=[prospective_questions, predictor_snapshots], kinds={"parquet"})
def benchmark_history(context: dg.AssetExecutionContext, config: HistoryConfig, store: StoreResource,
                      llm: LLMBackendResource) -> dg.MaterializeResult:
    """Every predictor snapshot scored (official metric, trial-bootstrap CI) on the questions posted after its own
    cutoff, appended to table `benchmark_history` once per refresh (a re-run replaces that refresh's rows), with the
    plot of the whole history (reports/history/benchmark_history.png). With `trained_predictors`, the fine-tuned LLM
    predictors too, each on the questions after its adapters' cutoff."""
    st = store.get()
    refresh, when = latest_refresh(context, st)
    extra = trained_contenders(st, llm, config.llm_max_questions) if config.trained_predictors else {}
    outcome = update_history(st, refresh, when, extra=extra, n_bootstrap=config.bootstrap_samples, seed=config.seed,
                             log=context.log.info)
    return dg.MaterializeResult(metadata={
        **table_metadata(st, BENCHMARK_HISTORY_TABLE), "refresh": refresh, "refresh_date": when.isoformat(),
        "refreshes": len(set(outcome.table.column("refresh").to_pylist())),
        "report": dg.MetadataValue.md(outcome.markdown),
        **({"figure": dg.MetadataValue.path(str(outcome.figure))} if outcome.figure else {})})
