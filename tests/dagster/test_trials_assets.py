"""Trial assets: called directly with resources, through materialize(), with checks; bad sources fail clearly."""

import gzip
import json

import dagster as dg
import pytest

from deepimagine_core.ctgov import archives
from deepimagine_core.ctgov.records import API_V2_JSON
from deepimagine_dagster.defs.trials import checks
from deepimagine_dagster.defs.trials.assets import raw_studies, trial_tables
from deepimagine_dagster.resources import StoreResource, TrialSourceResource


def _v2_payloads(n):
    out = []
    for raw in archives.iter_embedded_sample():
        if raw.source_format == API_V2_JSON:
            out.append(raw.payload)
        if len(out) == n:
            return out


@pytest.fixture
def small_archive(tmp_path):
    path = tmp_path / "studies.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for payload in _v2_payloads(5):
            f.write(json.dumps(payload) + "\n")
        f.write("{not json\n")
    return path


def test_raw_studies_describes_a_local_archive(tmp_path, small_archive):
    result = raw_studies(
        dg.build_asset_context(),
        store=StoreResource(home=str(tmp_path / "home")),
        trial_source=TrialSourceResource(source=str(small_archive)),
    )
    assert result.metadata["source"] == "path"
    assert result.metadata["bytes"] > 0


def test_missing_source_path_is_a_clear_error(tmp_path):
    with pytest.raises(dg.Failure, match="does-not-exist"):
        raw_studies(
            dg.build_asset_context(),
            store=StoreResource(home=str(tmp_path)),
            trial_source=TrialSourceResource(source=str(tmp_path / "does-not-exist")),
        )


def test_materialize_trials_domain_with_checks(tmp_path, small_archive):
    resources = {
        "store": StoreResource(home=str(tmp_path / "home")),
        "trial_source": TrialSourceResource(source=str(small_archive)),
    }
    all_checks = [*checks.unique_key_checks, *checks.has_trial_checks, checks.p_values_in_unit_interval,
                  checks.quarantine_rate_under_threshold]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([raw_studies, trial_tables, *all_checks], resources=resources, instance=instance,
                                raise_on_error=False)
    # the tables are built; the blocking quarantine check then fails the run (see the end)
    assert {e.step_key for e in result.get_step_failure_events()} == {"trials_quarantine_rate_under_threshold"}
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    trials_meta = mats["trials"].materialization.metadata
    assert trials_meta["dagster/row_count"].value == 5
    assert trials_meta["studies_read"].value == 6
    assert mats["quarantine"].materialization.metadata["record_level"].value == 1
    evaluations = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["trials_unique_key"] and evaluations["outcome_results_unique_key"]
    assert evaluations["p_values_in_unit_interval"]
    # the has-trial checks read `trials`, so they wait for its blocking checks: after a failure they do not run
    assert not any(name.endswith("_has_trial") for name in evaluations)
    # 1 bad record of 6 is a 17% quarantine rate: over the 5% threshold, so the check fails (and says so)
    assert evaluations["quarantine_rate_under_threshold"] is False
    assert not result.success


def test_orphan_and_out_of_range_checks_fail_on_planted_errors(tmp_path, small_archive):
    import pyarrow as pa

    from deepimagine_core.ctgov.ingest import ingest_source
    from deepimagine_core.store import Store

    store = Store(tmp_path / "home")
    ingest_source(str(small_archive), store)
    analyses = store.read_table("outcome_analyses").to_pylist()
    analyses.append({**analyses[0], "nct_id": "NCT99999999", "analysis_index": 99, "p_value": 1.5})
    from deepimagine_core.ctgov.schemas import OUTCOME_ANALYSES

    store.write_table("outcome_analyses", pa.Table.from_pylist(analyses, schema=OUTCOME_ANALYSES))
    resource = StoreResource(home=str(store.root))
    has_trial = next(c for c in checks.has_trial_checks if "outcome_analyses" in str(c.check_keys))
    assert has_trial(dg.build_asset_check_context(), store=resource).passed is False
    assert checks.p_values_in_unit_interval(dg.build_asset_check_context(), store=resource).passed is False


def test_materialize_from_the_api_stand_in_then_incremental_refresh(tmp_path):
    from tests.ctgov_stand_in import CTGovStandIn, sample_studies

    studies = sample_studies()
    home = tmp_path / "home"
    with CTGovStandIn(studies) as server, dg.DagsterInstance.ephemeral() as instance:
        resources = {
            "store": StoreResource(home=str(home)),
            "trial_source": TrialSourceResource(source="api", api_base_url=server.base_url, page_size=25,
                                                requests_per_second=0),
        }
        first = dg.materialize([raw_studies, trial_tables], resources=resources, instance=instance)
        trials = {m.asset_key.to_user_string(): m for m in first.get_asset_materialization_events()}["trials"]
        served = server.served_ids  # the studies the query selects (completed/terminated, interventional, results)
        assert len(served) > 80
        from deepimagine_core.store import Store

        built = set(Store(home).read_table("trials", ["nct_id"]).column("nct_id").to_pylist())
        quarantined = set(Store(home).read_table("quarantine", ["nct_id"]).column("nct_id").to_pylist())
        assert built | quarantined == served
        assert trials.materialization.metadata["dagster/row_count"].value == len(built)
        requests_before = server.requests
        dg.materialize([raw_studies, trial_tables], resources=resources, instance=instance)
        # incremental: the second refresh asks only for studies updated since the first; nothing is duplicated
        assert server.requests - requests_before < (len(studies) // 25) + 1
        again = Store(home).read_table("trials", ["nct_id"]).column("nct_id").to_pylist()
        assert sorted(again) == sorted(built)
