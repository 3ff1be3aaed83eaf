"""Assets `ct_open_benchmark` and `evaluation_report`. Thin: the work is in `deepimagine_core.evaluation`."""

import dataclasses

import dagster as dg

import deepimagine_core.llm.llm_predictors  # noqa: F401  (registers the LLM predictors in the evaluation registry)
from deepimagine_core.evaluation.evaluate_store import (
    EvaluationOutcome,
    EvaluationSettings,
    LLMPredictors,
    evaluate_store,
)
from deepimagine_core.evaluation.inputs import CT_OPEN_QUESTIONS, EvaluationInputError, write_ct_open_table
from deepimagine_core.evaluation.report import markdown_table, summary_table
from deepimagine_core.llm.backends import is_tiny
from deepimagine_core.questions import CATEGORIES
from deepimagine_core.predict.benchmark_trials import benchmark_trial_rows, write_registrations
from deepimagine_core.tables import CT_OPEN_TABLE, HISTORICAL_QUESTIONS_TABLE, TRIALS_TABLE
from deepimagine_core.training.adapters import trained_predictor_options
from deepimagine_dagster.defs.trials.assets import api_settings
from deepimagine_dagster.resources import (
    ENV_CT_OPEN, CTOpenResource, LLMBackendResource, StoreResource, TrialSourceResource,
)

__all__ = ["CT_OPEN_QUESTIONS", "CT_OPEN_TABLE", "EvaluationConfig", "ct_open_benchmark", "evaluation_report"]

GROUP = "evaluation"
_DEFAULTS = EvaluationSettings()


@dg.asset(group_name=GROUP, kinds={"parquet"})
def ct_open_benchmark(context: dg.AssetExecutionContext, store: StoreResource, ct_open: CTOpenResource):
    """The CT Open questions of the files named by the `ct_open` resource ($DEEPIMAGINE_CT_OPEN: a file, a
    comma-separated list or a folder), one row per question in table `ct_open_questions`; files marked as training
    (`training_paths`) are kept with role `training`. Empty (and saying so) when no file is configured."""
    written = write_ct_open_table(store.get(), ct_open.paths, ct_open.training_paths, log=context.log.info)
    metadata = {"dagster/row_count": written.rows, "path": dg.MetadataValue.path(str(written.path))}
    if not written.per_file:
        note = (
            f"No CT Open files configured: set ${ENV_CT_OPEN} (a file, a comma-separated list or a folder) or the "
            "`ct_open` resource's `paths`. The evaluation report will score the historical test split only."
        )
        context.log.warning(note)
        metadata["note"] = dg.MetadataValue.md(note)
    else:
        header = ["file", "questions", "trials", *CATEGORIES]
        table = [[k, *(str(v.get(c, 0)) for c in header[1:])] for k, v in written.per_file.items()]
        metadata["files"] = dg.MetadataValue.md(markdown_table(header, table))
    return dg.MaterializeResult(metadata=metadata)


class EvaluationConfig(dg.Config):
    predictors: list[str] = _DEFAULTS.predictors
    trained_predictors: bool = _DEFAULTS.trained_predictors  # add the fine-tuned predictors whose adapters exist
    llm_max_questions: int = _DEFAULTS.llm_max_questions  # LLM predictors score at most this many per benchmark
    bootstrap_samples: int = _DEFAULTS.bootstrap_samples
    seed: int = _DEFAULTS.seed
    alpha: float = _DEFAULTS.alpha
    predictor_options: str = _DEFAULTS.predictor_options  # JSON {predictor: {keyword: value}}


def report_metadata(outcome: EvaluationOutcome) -> dict:
    """Tables, the report with embedded images, file paths and one weighted accuracy per benchmark and predictor."""
    files, scores_by_bench = outcome.files, outcome.results.as_json()
    tables = [f"**{bench}**\n\n" + markdown_table(*summary_table(scores)) for bench, scores in scores_by_bench.items()]
    metadata: dict = {
        "figures": dg.MetadataValue.md("\n\n".join(tables)),
        "report": dg.MetadataValue.md(files.markdown_embedded),
        "evaluation_json": dg.MetadataValue.path(str(files.evaluation_json)),
        "report_markdown": dg.MetadataValue.path(str(files.markdown)),
        "report_html": dg.MetadataValue.path(str(files.html)),
        "predictions": dg.MetadataValue.path(str(files.root / "predictions")),
        "training_questions": len(outcome.inputs.train),
        **({"nothing_evaluated": dg.MetadataValue.json(outcome.inputs.why_empty)} if outcome.inputs.why_empty else {}),
    }
    for bench, scores in scores_by_bench.items():
        for label, s in scores.items():
            metadata[f"{bench}/{label}/weighted_accuracy"] = float(s["overall"]["weighted_accuracy"])
    return metadata


class BenchmarkRegistrationsConfig(dg.Config):
    # with the trial source `api` (DEEPIMAGINE_TRIALS_SOURCE=api): fetch the registrations of the benchmark's trials
    # that the `trials` table lacks, so the pathway knows each target's population, geography and design (no results)
    fetch: bool = False


@dg.asset(group_name=GROUP, deps=[ct_open_benchmark, TRIALS_TABLE], kinds={"parquet"})
def benchmark_registrations(
    context: dg.AssetExecutionContext, config: BenchmarkRegistrationsConfig, store: StoreResource,
    trial_source: TrialSourceResource,
) -> dg.MaterializeResult:
    """Table `benchmark_registrations`: the ClinicalTrials.gov registrations of the CT Open benchmark trials that the
    `trials` table lacks, as `trials` rows (registration fields only; result sections are dropped unread). Off unless
    `fetch` is set and the trial source is `api`; the pathway reads it beside `trials`."""
    if not config.fetch:
        return dg.MaterializeResult(metadata={"fetched": 0, "note": "off: set fetch (trial source `api`) to fetch"})
    if trial_source.source != "api":
        raise dg.Failure(f"fetching benchmark registrations needs the trial source `api` "
                         f"(DEEPIMAGINE_TRIALS_SOURCE=api), not {trial_source.source!r}")
    st = store.get()
    rows, missing = benchmark_trial_rows(st, api_settings(trial_source), log=context.log.info)
    write_registrations(st, rows)
    if missing:
        context.log.warning(f"benchmark trials without a registration (their context steps are skipped): {missing}")
    return dg.MaterializeResult(metadata={"fetched": len(rows), "missing": dg.MetadataValue.json(missing),
                                          "dagster/row_count": len(rows)})


@dg.asset(
    group_name=GROUP,
    # the trained operators are optional inputs: the report uses whatever adapters are published when it runs
    deps=[HISTORICAL_QUESTIONS_TABLE, ct_open_benchmark, "sft_operators", "rl_operators", "grpo_policy",
          benchmark_registrations],
    kinds={"python"},
    op_tags={"deepimagine/gpu": "true"},
    pool="gpu",
)
def evaluation_report(
    context: dg.AssetExecutionContext, config: EvaluationConfig, store: StoreResource, llm: LLMBackendResource
):
    """Every predictor on every benchmark (each CT Open file, and the historical test split), scored with CT Open's
    official metric and trial-bootstrap intervals: reports/evaluation.json, report.md/html, figures, predictions."""
    st = store.get()
    lend = LLMPredictors(backend=lambda: llm.get(st), is_tiny=is_tiny, trained=trained_predictor_options(st))
    settings = EvaluationSettings(**{f.name: getattr(config, f.name) for f in dataclasses.fields(EvaluationSettings)})
    try:
        outcome = evaluate_store(st, settings, llm=lend, log=context.log.info)
    except EvaluationInputError as exc:
        raise dg.Failure(str(exc)) from exc
    return dg.MaterializeResult(metadata=report_metadata(outcome))
