"""In a real browser (headless Debian Chromium via Selenium): the asset graph page, a table asset's page after the
refresh, and the evaluation report's page once it exists. Each page is waited for, checked for what a user must see,
and saved as a screenshot in test-artifacts/ui/ (README copies: DEEPIMAGINE_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import time

import pytest

from deepimagine_core.ctgov.schemas import TABLES
from tests.ui import REPORT_ASSET, SAMPLE_STUDIES, ui_queries
from tests.ui.browser import (
    loaded_images, open_and_wait, open_graph_whole, reset_viewport, scroll_to_top, set_viewport, wait_for_element,
    wait_for_texts,
)

pytestmark = pytest.mark.ui

TRIAL_ASSETS = ["raw_studies", *TABLES]
REPORT_VIEWPORT = (1600, 1300)


def test_lineage_page_shows_every_group_of_the_graph(ui, browser, refresh_run, screenshot):
    groups = {node["group"] for node in ui_queries.asset_graph(ui).values()}
    # Several groups are drawn collapsed (one box per group); a single group is drawn asset by asset.
    expected = sorted(groups) if len(groups) > 1 else TRIAL_ASSETS

    try:
        text = open_graph_whole(browser, f"{ui.url}/asset-groups", ["Global asset lineage", *expected])
        screenshot(browser, "asset-lineage")
    finally:
        reset_viewport(browser)
    assert "Materialize all" in text


def test_trials_group_graph_shows_every_trial_asset_materialised(ui, browser, repository, refresh_run, screenshot):
    location = repository["repositoryLocationName"]

    try:
        text = open_graph_whole(browser, f"{ui.url}/locations/{location}/asset-groups/trials", TRIAL_ASSETS)
        screenshot(browser, "asset-graph-trials")
    finally:
        reset_viewport(browser)
    assert text.count("Materialized") >= len(TRIAL_ASSETS)  # every node's footer after the refresh run
    assert "Passed" in text  # the checks summary on the table nodes


def test_table_asset_page_shows_row_count_schema_and_checks(ui, browser, refresh_run, screenshot):
    rows = ui_queries.latest_materialization(ui, "trials")["metadata"]["dagster/row_count"]

    text = open_and_wait(browser, f"{ui.url}/assets/trials", ["trials", "Row count", str(rows), "nct_id"])
    screenshot(browser, "asset-trials")
    assert "refresh_trials" in text  # the jobs that materialise it
    assert "studies_read" in text and str(SAMPLE_STUDIES) in text

    text = open_and_wait(browser, f"{ui.url}/assets/trials?view=checks", ["trials_unique_key", "Passed"])
    screenshot(browser, "asset-trials-checks")
    # both contracts of the table are listed; the page opens on the first (the blocking quarantine-rate check, which
    # sits on `trials` so that it stops downstream assets) and shows its figures
    assert "quarantine_rate_under_threshold" in text
    assert "studies_read" in text and "threshold" in text and "0.05" in text


def test_report_page_shows_the_report_figures(ui, browser, evaluate_run, screenshot):
    from selenium.webdriver.common.by import By

    label, markdown = ui_queries.report_markdown(ui_queries.latest_materialization(ui, REPORT_ASSET))
    figures, images = ui_queries.report_figures(markdown), markdown.count("![")
    assert figures, f"no figures in the report:\n{markdown[:1000]}"

    set_viewport(browser, *REPORT_VIEWPORT)
    try:
        open_and_wait(browser, f"{ui.url}/assets/{REPORT_ASSET}", [REPORT_ASSET, "Metadata"])
        row = wait_for_element(browser, f"//tr[td[normalize-space(.)='{label}']]")  # the report's metadata row
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", row)
        links = row.find_elements(By.XPATH, ".//a[contains(., 'Show Markdown')]")
        scope = "[role=dialog]" if links else "tr"  # long markdown opens in a dialog; short markdown shows inline
        if links:
            links[0].click()
        try:
            wait_for_texts(browser, figures, timeout=30.0)  # fails listing the figures that are not on the page
            deadline = time.monotonic() + 30
            while loaded_images(browser, scope) < images and time.monotonic() < deadline:
                time.sleep(0.5)
            assert loaded_images(browser, scope) >= images, f"{images} report images, fewer drawn on the page"
        finally:
            scroll_to_top(browser, scope)
            screenshot(browser, "asset-report")
    finally:
        reset_viewport(browser)
