"""The GraphQL calls the Dagster UI makes, as small functions: the asset graph, launching a job, following a run,
reading materialisation metadata and asset-check results. `ui` is a `DagsterDev` (anything with `.graphql`)."""

from __future__ import annotations

import json
import re
import time

METADATA_FIELDS = """
  label
  __typename
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatRepr }
  ... on TextMetadataEntry { text }
  ... on MarkdownMetadataEntry { mdStr }
  ... on PathMetadataEntry { path }
  ... on UrlMetadataEntry { url }
  ... on JsonMetadataEntry { jsonString }
  ... on BoolMetadataEntry { boolValue }
"""

TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
ASSET_JOB = "__ASSET_JOB"  # the implicit job the UI's Materialize button launches with an asset selection


class RunFailed(AssertionError):
    """A launched run ended in another state than SUCCESS (the message holds the run's error events)."""


def metadata_values(entries: list[dict]) -> dict:
    """GraphQL metadata entries → {label: python value}; entry kinds not listed above map to their type name."""
    values = {}
    for entry in entries:
        kind = entry["__typename"]
        if kind == "IntMetadataEntry":
            value = int(entry["intRepr"])
        elif kind == "FloatMetadataEntry":
            value = float(entry["floatRepr"])
        elif kind == "JsonMetadataEntry":
            value = json.loads(entry["jsonString"])
        else:
            value = next((entry[k] for k in ("text", "mdStr", "path", "url", "boolValue") if k in entry), kind)
        values[entry["label"]] = value
    return values


def repository_selector(ui) -> dict:
    """The selector of the only repository of the workspace (the location of workspace.yaml)."""
    data = ui.graphql("""{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
        ... on RepositoryLocation { repositories { name } } } } } } }""")
    selectors = [
        {"repositoryLocationName": entry["name"], "repositoryName": repo["name"]}
        for entry in data["workspaceOrError"]["locationEntries"]
        for repo in (entry["locationOrLoadError"] or {}).get("repositories", [])
    ]
    assert len(selectors) == 1, f"expected one repository in the workspace, found {selectors}"
    return selectors[0]


def job_names(ui, selector: dict) -> set[str]:
    data = ui.graphql(
        """query Jobs($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
            __typename ... on Repository { jobs { name } } ... on Error { message } } }""",
        {"selector": selector},
    )
    repo = data["repositoryOrError"]
    assert repo["__typename"] == "Repository", repo
    return {job["name"] for job in repo["jobs"]}


def asset_graph(ui) -> dict[str, dict]:
    """Every asset node as {key: {group, jobs, checks, deps, materialized}} — what the asset graph page draws."""
    data = ui.graphql("""{ assetNodes { assetKey { path } groupName jobNames dependencyKeys { path }
        assetMaterializations(limit: 1) { runId }
        assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }""")
    graph = {}
    for node in data["assetNodes"]:
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", checks
        graph["/".join(node["assetKey"]["path"])] = {
            "group": node["groupName"],
            "jobs": set(node["jobNames"]),
            "checks": {check["name"] for check in checks["checks"]},
            "deps": {"/".join(dep["path"]) for dep in node["dependencyKeys"]},
            "materialized": bool(node["assetMaterializations"]),
        }
    return graph


def missing_upstream(graph: dict[str, dict], job: str) -> list[str]:
    """Assets upstream of a job's assets, outside the job, never materialised: what must be built before it runs."""
    in_job = {key for key, node in graph.items() if job in node["jobs"]}
    missing, stack = set(), [dep for key in in_job for dep in graph[key]["deps"]]
    while stack:
        key = stack.pop()
        if key in in_job or key in missing or key not in graph or graph[key]["materialized"]:
            continue
        missing.add(key)
        stack.extend(graph[key]["deps"])
    return sorted(missing)


def launch_job(ui, selector: dict, job: str, run_config: dict | None = None, assets: list[str] | None = None) -> str:
    """The launchRun mutation of the Launchpad (with `assets`: of the Materialize button); returns the run id."""
    job_selector = {**selector, "jobName": job}
    if assets:
        job_selector["assetSelection"] = [{"path": key.split("/")} for key in assets]
    data = ui.graphql(
        """mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message }
            ... on RunConfigValidationInvalid { errors { message } } } }""",
        {"params": {"selector": job_selector, "runConfigData": run_config or {}}},
    )
    result = data["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", f"launching {job} failed: {result}"
    return result["run"]["runId"]


def run_status(ui, run_id: str) -> str:
    data = ui.graphql("query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
                      {"id": run_id})
    run = data["runOrError"]
    assert run["__typename"] == "Run", run
    return run["status"]


def wait_for_run(ui, run_id: str, timeout: float = 300.0, poll: float = 1.0) -> str:
    """Poll the run until it ends (bounded); raise `RunFailed` with its error events unless it succeeded."""
    deadline = time.monotonic() + timeout
    status = run_status(ui, run_id)
    while status not in TERMINAL_STATUSES:
        if time.monotonic() > deadline:
            raise RunFailed(f"run {run_id} still {status} after {timeout:.0f} s")
        time.sleep(poll)
        status = run_status(ui, run_id)
    if status != "SUCCESS":
        raise RunFailed(f"run {run_id} ended {status}:\n" + "\n".join(run_errors(ui, run_id)))
    return status


def run_errors(ui, run_id: str) -> list[str]:
    """The messages of a run's failure events, with the innermost Python error of each."""
    data = ui.graphql(
        """query Logs($id: ID!) { logsForRun(runId: $id, limit: 2000) { ... on EventConnection { events {
            __typename ... on MessageEvent { message }
            ... on ErrorEvent { error { message causes { message } } } } } } }""",
        {"id": run_id},
    )
    messages = []
    for event in data["logsForRun"].get("events", []):
        if event["__typename"] in {"ExecutionStepFailureEvent", "RunFailureEvent", "ResourceInitFailureEvent"}:
            error = event.get("error") or {}
            causes = [c["message"].strip() for c in error.get("causes", [])]
            messages.append(" | ".join([event["message"], (error.get("message") or "").strip(), *causes]))
    return messages


def latest_materialization(ui, key: str) -> dict:
    """The latest materialisation of an asset as {"run_id", "metadata": {label: value}, "markdown": {label: text}}
    (empty when there is none)."""
    data = ui.graphql(
        "query Asset($key: AssetKeyInput!) { assetOrError(assetKey: $key) { __typename ... on Asset {"
        " assetMaterializations(limit: 1) { runId metadataEntries {" + METADATA_FIELDS + "} } } } }",
        {"key": {"path": key.split("/")}},
    )
    asset = data["assetOrError"]
    if asset["__typename"] != "Asset" or not asset["assetMaterializations"]:
        return {}
    event = asset["assetMaterializations"][0]
    markdown = {e["label"]: e["mdStr"] for e in event["metadataEntries"] if e["__typename"] == "MarkdownMetadataEntry"}
    return {"run_id": event["runId"], "metadata": metadata_values(event["metadataEntries"]), "markdown": markdown}


def report_markdown(materialization: dict) -> tuple[str, str]:
    """(label, text) of the longest markdown metadata entry of a materialisation: the report itself."""
    entries = materialization.get("markdown") or {}
    assert entries, f"no markdown metadata in {sorted(materialization.get('metadata', {}))}"
    return max(entries.items(), key=lambda item: len(item[1]))


def report_figures(markdown: str, limit: int = 5) -> list[str]:
    """The first distinct decimal figures of a report (scores, accuracies), as written: what a reader must see."""
    figures = list(dict.fromkeys(re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", markdown)))
    return figures[:limit]


def check_results(ui, key: str) -> dict[str, dict]:
    """The latest execution of each check of an asset: {check: {"status", "run_id", "metadata"}}."""
    data = ui.graphql(
        "query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename ... on AssetNode {"
        " assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization {"
        " runId status evaluation { success metadataEntries {" + METADATA_FIELDS + "} } } } } } } } }",
        {"key": {"path": key.split("/")}},
    )
    node = data["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    results = {}
    for check in node["assetChecksOrError"]["checks"]:
        execution = check["executionForLatestMaterialization"] or {}
        evaluation = execution.get("evaluation") or {}
        results[check["name"]] = {
            "status": execution.get("status"),
            "run_id": execution.get("runId"),
            "metadata": metadata_values(evaluation.get("metadataEntries", [])),
        }
    return results
