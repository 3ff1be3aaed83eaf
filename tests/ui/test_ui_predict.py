"""Ask about a planned trial from the UI: job `predict_trial` launched through the real webserver's GraphQL API with
the Launchpad's run config (an NCT id of the embedded sample, then an inline YAML draft), and a bad draft whose run
fails naming the field."""

from __future__ import annotations

import pytest

from tests.ui import ui_queries

pytestmark = pytest.mark.ui

ASSET = "ask/predict_trial"
OP = "ask__predict_trial"
DRAFT = """title: Drug X in type 2 diabetes
arms:
  - {label: Drug X 10 mg, type: EXPERIMENTAL, interventions: [{name: Drug X, dose: 10 mg once daily}]}
  - {label: Placebo, type: PLACEBO_COMPARATOR}
outcomes:
  - {measure: Change from baseline in HbA1c at week 24, time_frame: week 24}
"""


@pytest.fixture(scope="module")
def questions_ready(ui, repository, refresh_run) -> None:
    """What `predict_trial` reads (historical questions), materialised as a user would with the Materialize button."""
    upstream = ui_queries.missing_upstream(ui_queries.asset_graph(ui), "predict_trial")
    if upstream:
        run_id = ui_queries.launch_job(ui, repository, ui_queries.ASSET_JOB, assets=upstream)
        ui_queries.wait_for_run(ui, run_id)


def _launch(ui, repository, config: dict) -> str:
    return ui_queries.launch_job(ui, repository, "predict_trial", run_config={"ops": {OP: {"config": config}}})


def test_predict_trial_from_the_launchpad_with_an_nct_id_and_a_draft(ui, repository, questions_ready):
    graph = ui_queries.asset_graph(ui)
    assert graph[ASSET]["group"] == "ask" and "predict_trial" in graph[ASSET]["jobs"]
    assert "deepimagine" not in graph[ASSET]["jobs"]  # the main job never asks a question nobody asked
    for config, title in (({"trial": "NCT00106392"}, "NCT00106392 — A Safety and Efficacy Study of Prograf"),
                          ({"draft": DRAFT}, "DRAFT — Drug X in type 2 diabetes")):
        run_id = _launch(ui, repository, {**config, "llm": "off"})
        ui_queries.wait_for_run(ui, run_id)
        event = ui_queries.latest_materialization(ui, ASSET)
        assert event["run_id"] == run_id
        label, report = ui_queries.report_markdown(event)
        assert label == "report" and report.startswith(f"# Prediction report: {title}")
        assert "Nearest historical trials (5)" in report and "https://clinicaltrials.gov/study/NCT" in report
        assert event["metadata"]["questions"] == 3


def test_a_bad_draft_fails_its_run_naming_the_field(ui, repository, questions_ready):
    run_id = _launch(ui, repository, {"draft": DRAFT.replace("type: PLACEBO_COMPARATOR", "type: placebo arm")})
    with pytest.raises(ui_queries.RunFailed, match=r"arms\[1\]\.type: unknown arm type 'placebo arm'"):
        ui_queries.wait_for_run(ui, run_id)
