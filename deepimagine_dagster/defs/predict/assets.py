"""Asset `predict_trial`: the standard questions about one trial the user names, answered, with a report. Thin: the
work is in `deepimagine_core.predict`."""

import dagster as dg
from pydantic import Field

from deepimagine_core.predict import DesignError, PredictSettings, ask
from deepimagine_core.tables import HISTORICAL_QUESTIONS_TABLE
from deepimagine_dagster.defs.trials.assets import api_settings
from deepimagine_dagster.resources import LLMBackendResource, StoreResource, TrialSourceResource

GROUP = "ask"


class PredictTrialConfig(dg.Config):
    trial: str = Field("", description="An NCT id (looked up in the trial tables, or fetched from ClinicalTrials.gov "
                                       "when the trial source is `api`), or a path to an API v2 JSON registration "
                                       "(results are ignored) or to a YAML draft (.yaml).")
    draft: str = Field("", description="An inline YAML draft instead of `trial`: title, conditions, phase, "
                                       "enrollment, countries, arms (label, type, interventions with name/type/dose), "
                                       "outcomes (measure, time_frame, type primary|secondary).")
    secondary_outcomes: bool = Field(False, description="Also ask about secondary outcomes.")
    neighbours: int = Field(5, description="Nearest historical trials shown per question.")
    predictors: list[str] = Field([], description="Predictor names; empty = the reference predictor.")
    llm: str = Field("auto", description="auto: add deepimagine_sft when its operators are published; off; "
                                         "deepimagine: also the pathway on the `llm` resource's base model.")


# key ask/predict_trial: its op name (ask__predict_trial) must differ from the job's name, predict_trial
@dg.asset(key_prefix=[GROUP], group_name=GROUP, deps=[HISTORICAL_QUESTIONS_TABLE], kinds={"python"})
def predict_trial(context: dg.AssetExecutionContext, config: PredictTrialConfig, store: StoreResource,
                  trial_source: TrialSourceResource, llm: LLMBackendResource) -> dg.MaterializeResult:
    """Predictions for one trial (config `trial` or `draft`): per primary outcome, endpoint met and each arm against
    each comparator in CT Open's sentences, with the nearest historical trials; report under reports/ask/<nct_id>/."""
    st = store.get()
    api = api_settings(trial_source) if trial_source.source == "api" else None
    try:
        settings = PredictSettings(secondary=config.secondary_outcomes, neighbours=config.neighbours,
                                   predictors=list(config.predictors), llm=config.llm)
        result, files = ask(config.trial, st, settings, api=api, draft_text=config.draft, backend=llm.get(st),
                            log=context.log.info)
    except (DesignError, FileNotFoundError, ValueError) as exc:
        raise dg.Failure(description=str(exc)) from exc
    return dg.MaterializeResult(metadata={
        "trial": result.design.nct_id, "title": result.design.title, "questions": len(result.questions),
        "reference_predictor": result.reference, "predictors": ", ".join(result.predictions),
        "report": dg.MetadataValue.md(files.markdown_text), "report_markdown": dg.MetadataValue.path(str(files.markdown)),
        "report_html": dg.MetadataValue.path(str(files.html)), "prediction_json": dg.MetadataValue.path(str(files.json)),
    })
