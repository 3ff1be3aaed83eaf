"""The living benchmark end to end, offline: the API stand-in serves the sample in two waves (older results first,
newer later); after each refresh the automation conditions choose what to rebuild, and we materialise exactly that."""

import datetime as dt
from collections import Counter

import dagster as dg
import pytest

from deepimagine_core.evaluation.prospective import snapshot_cards
from deepimagine_core.store import Store
from deepimagine_core.tables import BENCHMARK_HISTORY_TABLE, HISTORICAL_QUESTIONS_TABLE, PROSPECTIVE_QUESTIONS_TABLE
from deepimagine_dagster import automation
from deepimagine_dagster.definitions import base_definitions
from deepimagine_dagster.resources import (CTOpenResource, LLMBackendResource, StoreResource, TrialSourceResource,
                                           automation_from_env)
from tests.ctgov_stand_in import CTGovStandIn, results_first_posted, sample_studies, two_waves

REFRESH = ["raw_studies", "trials", "arm_groups", "interventions", "outcome_measures", "outcome_groups",
           "outcome_results", "outcome_analyses", "locations", "quarantine"]


def _requested(defs, instance, cursor):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    keys = {k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()
            if result.get_num_requested(k)}
    return keys, result.cursor


def _question_ids(store: Store, table: str) -> set[str]:
    return set(store.read_table(table, ["question_id"]).column("question_id").to_pylist())


def _materialize(defs, resources, instance, selection):
    result = dg.materialize(list(defs.assets), selection=sorted(selection), resources=resources, instance=instance)
    assert result.success
    return result


def test_conditions_cpu_eager_gpu_off_by_default():
    defs = automation.with_automation(base_definitions(), automate_gpu=False)
    graph = defs.get_repository_def().asset_graph
    labels = {k.to_user_string(): (graph.get(k).automation_condition.get_label()
                                   if graph.get(k).automation_condition else None) for k in graph.get_all_asset_keys()}
    assert all(labels[name] == "eager" for name in automation.EAGER)
    assert labels["predictor_snapshots"] == "missing, on update"
    assert all(labels[name] is None for name in automation.GPU)  # GPU assets never start by themselves
    assert all(labels[name] is None for name in REFRESH)  # the refresh itself is the schedule's / the user's
    on = automation.with_automation(base_definitions(), automate_gpu=True).get_repository_def().asset_graph
    assert all(on.get(dg.AssetKey(name)).automation_condition is not None for name in automation.GPU)
    sensor = defs.get_sensor_def(automation.SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert automation_from_env({"DEEPIMAGINE_AUTOMATION": "off", "DEEPIMAGINE_AUTOMATE_GPU": "1"}) == {
        "running": False, "automate_gpu": True}
    with pytest.raises(ValueError):
        automation_from_env({"DEEPIMAGINE_AUTOMATE_GPU": "maybe"})
    # every asset the Docker executor routes to a GPU is in automation.GPU
    tagged = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_executable
              and graph.assets_def_for_key(k).op.tags.get("deepimagine/gpu") == "true"}
    assert tagged <= set(automation.GPU)


def test_two_refreshes_build_a_prospective_history(tmp_path):
    studies = sample_studies()
    dates = sorted(results_first_posted(s) for s in studies)
    boundary = dates[int(len(dates) * 0.75)]
    older, everything = two_waves(studies, boundary)
    newer_ids = {s["protocolSection"]["identificationModule"]["nctId"] for s in everything[len(older):]}
    defs = automation.with_automation(base_definitions(), automate_gpu=False)
    store = Store(tmp_path / "home")
    with CTGovStandIn(older) as server, dg.DagsterInstance.ephemeral() as instance:
        resources = {
            "store": StoreResource(home=str(store.root)),
            "trial_source": TrialSourceResource(source="api", api_base_url=server.base_url, page_size=25,
                                                requests_per_second=0),
            "ct_open": CTOpenResource(), "llm": LLMBackendResource(model="tiny"),
        }
        before, cursor = _requested(defs, instance, None)  # the sensor's first tick, before any refresh
        assert before == set(), before
        rounds = []
        for wave in (older, everything):
            server.replace_studies(wave)
            _materialize(defs, resources, instance, REFRESH)  # job refresh_trials
            requested, cursor = _requested(defs, instance, cursor)
            rounds.append(requested)
            print("requested", sorted(requested))
            _materialize(defs, resources, instance, requested)  # what the automation sensor would launch
            again, cursor = _requested(defs, instance, cursor)
            assert again == set(), f"requested twice: {again}"
            if wave is older:
                first_prospective = _question_ids(store, PROSPECTIVE_QUESTIONS_TABLE)
                history_1 = store.read_table(BENCHMARK_HISTORY_TABLE).num_rows

        # the first round builds every CPU asset; the second rebuilds what depends on the trial tables, nothing else
        assert rounds[0] == set(automation.EAGER) | set(automation.ON_MISSING)
        assert rounds[1] == set(automation.EAGER)
        records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION))
        counts = Counter(r.asset_key.to_user_string() for r in records)
        assert counts["predictor_snapshots"] == 1 and counts["ct_open_benchmark"] == 0
        assert all(counts[name] == 2 for name in automation.EAGER)
        assert all(counts[name] == 0 for name in automation.GPU)

        # the snapshots kept the cutoff of the first wave's training side
        cards = snapshot_cards(store)
        cutoffs = {card.cutoff_date for card in cards.values()}
        assert len(cutoffs) == 1
        cutoff = cutoffs.pop()
        assert cutoff <= dt.date.fromisoformat(boundary)
        questions = store.read_table(HISTORICAL_QUESTIONS_TABLE, ["question_id", "nct_id", "results_first_posted"])
        rows = questions.to_pylist()
        after = {r["question_id"] for r in rows if r["results_first_posted"] and r["results_first_posted"] > cutoff}
        wave_2 = {r["question_id"] for r in rows if r["nct_id"] in newer_ids}
        assert wave_2, "the newer wave yields questions"
        prospective = _question_ids(store, PROSPECTIVE_QUESTIONS_TABLE)
        assert prospective == after  # exactly the questions posted after the snapshots' cutoff
        assert prospective - first_prospective == wave_2  # the second refresh added exactly the newer trials' ones
        assert first_prospective and not first_prospective & wave_2

        history = store.read_table(BENCHMARK_HISTORY_TABLE).to_pylist()
        assert len({r["refresh"] for r in history}) == 2
        per_key = Counter((r["predictor"], r["category"]) for r in history)
        first_keys = {(r["predictor"], r["category"]) for r in history[:history_1]}
        assert {p for p, _ in per_key} == set(cards)
        assert all(per_key[k] == 2 for k in first_keys)
        overall = {(r["predictor"], r["refresh_date"]): r["n"] for r in history if r["category"] == "overall"}
        for name in cards:
            n_1, n_2 = (n for (p, _), n in sorted(overall.items()) if p == name)
            assert (n_1, n_2) == (len(first_prospective), len(prospective))

        # a re-run of the same refresh replaces its rows rather than adding a third point
        _materialize(defs, resources, instance, {"benchmark_history"})
        assert store.read_table(BENCHMARK_HISTORY_TABLE).num_rows == len(history)
        assert store.path("reports", "history", "benchmark_history.png").is_file()
