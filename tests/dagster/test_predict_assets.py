"""The `ask/predict_trial` asset: called directly with fake resources, and one `materialize` with an inline YAML draft
on a tmp store holding a small `historical_questions` table the test writes."""

import json

import dagster as dg
import pyarrow as pa
import pytest

from deepimagine_core.store import Store
from deepimagine_dagster.defs.predict.assets import PredictTrialConfig, predict_trial
from deepimagine_dagster.resources import LLMBackendResource, StoreResource, TrialSourceResource
from tests.core.test_eval_predictors import toy_questions

DRAFT = """
title: Drug Z for hypertension
phase: PHASE3
arms:
  - {label: Drug Z, type: EXPERIMENTAL, interventions: [{name: Drug Z, dose: 50 mg daily}]}
  - {label: Placebo, type: PLACEBO_COMPARATOR, interventions: [{name: Placebo}]}
outcomes:
  - {measure: Change in systolic blood pressure, time_frame: week 8}
"""


class FakeLLM(LLMBackendResource):
    """An `llm` resource that must never be asked for a model (the reference predictor is a CPU model)."""

    def get(self, store=None):
        return None


def write_history(store: Store) -> None:
    rows = [{**q.to_row(), "split": "train"} for q in toy_questions(60)]
    store.write_table("historical_questions", pa.Table.from_pylist(rows))


def resources(home) -> dict:
    return {"store": StoreResource(home=str(home)), "trial_source": TrialSourceResource(source="sample"),
            "llm": FakeLLM()}


def test_a_bad_draft_fails_naming_the_field(tmp_path):
    write_history(Store(tmp_path))
    config = PredictTrialConfig(draft=DRAFT.replace("type: EXPERIMENTAL", "type: EXPERIMENTL"), llm="off")
    with pytest.raises(dg.Failure, match=r"arms\[0\]\.type: unknown arm type 'EXPERIMENTL'"):
        predict_trial(dg.build_asset_context(), config=config, **resources(tmp_path))


def test_an_nct_id_missing_from_the_tables_fails_clearly(tmp_path):
    with pytest.raises(dg.Failure, match="no trial tables"):
        predict_trial(dg.build_asset_context(), config=PredictTrialConfig(trial="NCT09999999"), **resources(tmp_path))


def test_predict_trial_job_materializes_a_report_from_an_inline_draft(tmp_path):
    home = tmp_path / "home"
    write_history(Store(home))
    from deepimagine_dagster.defs.predict.jobs import predict_trial_job

    assert predict_trial_job.name == "predict_trial"
    config = {"draft": DRAFT, "predictors": ["majority", "logreg"], "llm": "off", "neighbours": 3}
    result = dg.materialize([predict_trial], resources=resources(home),
                            run_config={"ops": {"ask__predict_trial": {"config": config}}},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("ask__predict_trial")[0].metadata
    assert meta["questions"].value == 3 and meta["predictors"].value == "majority, logreg"
    report = meta["report"].value
    assert report.startswith("# Prediction report: DRAFT — Drug Z for hypertension")
    assert "| 2 | Change in systolic blood pressure | 3-way: Drug Z vs Placebo |" in report
    assert "Nearest historical trials (3)" in report
    data = json.loads((home / "reports" / "ask" / "draft-drug-z-for-hypertension" / "prediction.json").read_text())
    assert [q["kind"] for q in data["questions"]] == ["superiority", "comparative", "endpoint_met"]
    assert data["trial"]["arms"][0]["interventions"][0]["dose"] == "50 mg daily"
