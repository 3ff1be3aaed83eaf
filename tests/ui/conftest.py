"""Fixtures of the UI tests: one real `dagster dev` for this package's tests (stopped when they are done, not at the end
of the whole session), the runs launched through it, and a headless Chromium.

Every UI test is marked `ui`. Artefacts (server log, screenshots) go to `test-artifacts/ui/` at the repository root
(git-ignored); the server log's tail is attached to the report of any failing UI test.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.ui import ui_queries
from tests.ui.webserver import DagsterDev

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = ROOT / "workspace.yaml"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
SCREENSHOTS = ROOT / "docs" / "screenshots"
ENV_UPDATE_SCREENSHOTS = "DEEPIMAGINE_UPDATE_SCREENSHOTS"  # =1: copy this run's screenshots into docs/screenshots
README_SCREENSHOTS = {"asset-lineage", "asset-graph-trials", "asset-trials", "asset-report"}  # shown in README.md

RUN_TIMEOUT = 300.0

_server: DagsterDev | None = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing UI test, attach the tail of the dagster dev log (the full log stays in test-artifacts/ui)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _server is not None and "ui" in item.keywords:
        report.sections.append((f"dagster dev log (tail; full log: {_server.log_path})", _server.log_tail(80)))


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def ui(tmp_path_factory, artifacts):
    """The real webserver + daemon for workspace.yaml on 127.0.0.1, with temporary DAGSTER_HOME and DEEPIMAGINE_HOME."""
    global _server
    tmp = tmp_path_factory.mktemp("ui")
    server = DagsterDev(WORKSPACE, tmp / "dagster_home", tmp / "deepimagine_home", artifacts / "dagster-dev.log")
    _server = server
    started = time.monotonic()
    try:
        server.start(timeout=180.0)
        print(f"dagster dev up at {server.url} in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        code = server.stop(timeout=30.0)
        print(f"dagster dev stopped (exit code {code})")


@pytest.fixture(scope="package")
def repository(ui) -> dict:
    return ui_queries.repository_selector(ui)


def _run(ui, repository, job: str, assets: list[str] | None = None) -> str:
    """Launch (as the Launchpad, or the Materialize button with `assets`) and wait for SUCCESS; returns the run id."""
    started = time.monotonic()
    run_id = ui_queries.launch_job(ui, repository, job, assets=assets)
    ui_queries.wait_for_run(ui, run_id, timeout=RUN_TIMEOUT)
    print(f"{job} {assets or ''} run {run_id} succeeded in {time.monotonic() - started:.1f} s")
    return run_id


@pytest.fixture(scope="package")
def refresh_run(ui, repository) -> str:
    """`refresh_trials` launched on the embedded sample and finished with SUCCESS; its run id."""
    return _run(ui, repository, "refresh_trials")


@pytest.fixture(scope="package")
def evaluate_run(ui, repository, refresh_run) -> str:
    """`evaluate` finished with SUCCESS, after materialising (as a user would, with the Materialize button) whatever
    it needs upstream that the refresh did not build; skips while the job does not exist."""
    if "evaluate" not in ui_queries.job_names(ui, repository):
        pytest.skip("no `evaluate` job in the code location yet (it comes with the evaluation domain)")
    upstream = ui_queries.missing_upstream(ui_queries.asset_graph(ui), "evaluate")
    if upstream:
        _run(ui, repository, ui_queries.ASSET_JOB, assets=upstream)
    return _run(ui, repository, "evaluate")


@pytest.fixture(scope="package")
def browser(tmp_path_factory):
    """Headless Debian Chromium (Selenium + Debian's chromedriver); skips, with the reason, if it cannot start."""
    from tests.ui.browser import BrowserUnavailable, start_chromium

    try:
        driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    except BrowserUnavailable as exc:
        pytest.skip(f"browser part skipped: {exc}")
    yield driver
    driver.quit()


@pytest.fixture(scope="package")
def screenshot(artifacts):
    """save(driver, name): a PNG in test-artifacts/ui/; the README's are also copied to docs/screenshots/ when
    $DEEPIMAGINE_UPDATE_SCREENSHOTS=1."""

    def save(driver, name: str) -> Path:
        path = artifacts / f"{name}.png"
        assert driver.save_screenshot(str(path)), f"could not save {path}"
        if os.environ.get(ENV_UPDATE_SCREENSHOTS) == "1" and name in README_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)
        return path

    return save
