"""Through the real webserver's GraphQL API, as the UI does: the asset graph, a launched `refresh_trials` run, its
materialisation metadata and asset-check results; then `evaluate` and the report once that job exists."""

from __future__ import annotations

import pytest

from deepimagine_core.ctgov.schemas import TABLES
from tests.ui import REPORT_ASSET, SAMPLE_STUDIES, ui_queries

pytestmark = pytest.mark.ui



def test_asset_graph_lists_every_asset_and_check_of_the_definitions(ui, repository):
    from deepimagine_dagster.definitions import defs

    expected = defs.resolve_asset_graph()
    graph = ui_queries.asset_graph(ui)

    assert set(graph) == {key.to_user_string() for key in expected.get_all_asset_keys()}
    served_checks = {(key, check) for key, node in graph.items() for check in node["checks"]}
    assert served_checks == {(c.asset_key.to_user_string(), c.name) for c in expected.asset_check_keys}
    assert {"refresh_trials", "deepimagine"} <= ui_queries.job_names(ui, repository)
    for name in ["raw_studies", *TABLES]:
        assert graph[name]["group"] == "trials"
        assert "refresh_trials" in graph[name]["jobs"]
    assert graph["trials"]["deps"] == {"raw_studies"}


def test_refresh_trials_materialises_every_trial_table_with_row_counts(ui, refresh_run):
    tables = {name: ui_queries.latest_materialization(ui, name) for name in TABLES}

    for name, event in tables.items():
        assert event.get("run_id") == refresh_run, f"{name} was not materialised by run {refresh_run}"
        assert event["metadata"]["dagster/row_count"] >= 0
        assert event["metadata"]["path"].endswith(f"tables/{name}.parquet")
    trials = tables["trials"]["metadata"]
    assert trials["studies_read"] == SAMPLE_STUDIES
    assert trials["dagster/row_count"] == trials["studies_read"] - trials["quarantined"] - trials["duplicates_dropped"]
    assert trials["dagster/row_count"] > 300
    for child in ("arm_groups", "interventions", "outcome_measures", "outcome_results", "outcome_analyses"):
        assert tables[child]["metadata"]["dagster/row_count"] > trials["dagster/row_count"], child
    assert "nct_id" in trials["preview"]
    raw = ui_queries.latest_materialization(ui, "raw_studies")
    assert raw.get("run_id") == refresh_run


def test_refresh_trials_runs_and_passes_every_asset_check(ui, refresh_run):
    results = {name: ui_queries.check_results(ui, name) for name in TABLES}

    assert sum(len(checks) for checks in results.values()) >= len(TABLES)
    for name, checks in results.items():
        for check, result in checks.items():
            assert result["run_id"] == refresh_run, f"{name}.{check} did not run in {refresh_run}"
            assert result["status"] == "SUCCEEDED", f"{name}.{check}: {result}"
    assert results["trials"]["trials_unique_key"]["metadata"]["duplicate_keys"] == 0
    assert results["outcome_results"]["outcome_results_has_trial"]["metadata"]["orphan_rows"] == 0
    p_values = results["outcome_analyses"]["p_values_in_unit_interval"]["metadata"]
    assert p_values["out_of_range"] == 0 and p_values["with_p_value"] > 0
    rate = results["trials"]["quarantine_rate_under_threshold"]["metadata"]
    assert rate["quarantine_rate"] <= rate["threshold"]


def test_evaluate_materialises_the_report_with_markdown(ui, evaluate_run):
    report = ui_queries.latest_materialization(ui, REPORT_ASSET)

    assert report.get("run_id") == evaluate_run, f"{REPORT_ASSET} was not materialised by run {evaluate_run}"
    label, markdown = ui_queries.report_markdown(report)
    assert markdown.strip(), f"{REPORT_ASSET}'s markdown metadata '{label}' is empty"
    assert ui_queries.report_figures(markdown), f"no figures in the report:\n{markdown[:1000]}"
