"""The pairs domain in Dagster: assets called directly, one materialisation with checks, and leak checks failing on
planted leaks. Trial tables are hand-made (tests.core.test_pairs_fixtures), written into a temporary Store."""

import datetime as dt
import json
from collections import Counter

import dagster as dg
import pyarrow as pa
import pytest

from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.store import Store
from deepimagine_dagster.defs.pairs import assets as pa_assets
from deepimagine_dagster.defs.pairs import checks as pa_checks
from deepimagine_dagster.defs.pairs.jobs import build_pairs
from deepimagine_dagster.resources import CTOpenResource, StoreResource
from tests.core.test_pairs_approximate import trials as approximate_trials
from tests.core.test_pairs_fixtures import analysis, two_arm_trial

BENCHMARK_ID = "NCT00000204"


def write_store(root) -> Store:
    """Six related trials (approximate pairs), each with a two-arm outcome and analysis (questions, natural pairs),
    posted on different dates so the split has both sides."""
    t = approximate_trials()
    for n, row in enumerate(t.rows["trials"]):
        row["results_first_posted"] = dt.date(2010 + n, 1, 1)
        arms = [a["label"] for a in t.rows["arm_groups"] if a["nct_id"] == row["nct_id"]]
        if len(arms) == 2:
            t.outcome(row["nct_id"], 0, "Change From Baseline in HbA1c", [("O1", arms[0], -1.0 - n / 10, 30),
                                                                          ("O2", arms[1], -0.2, 30)],
                      analyses=[analysis(p=0.01 if n % 2 else 0.3)])
            t.outcome(row["nct_id"], 1, "Percentage of Participants With Response", [("O1", arms[0], 12, 30),
                                                                                     ("O2", arms[1], 6, 30)],
                      param_type="COUNT_OF_PARTICIPANTS", unit="participants", analyses=[analysis(p=0.04)])
    two_arm_trial(t, "NCT00000301", posted=dt.date(2009, 6, 1))
    store = Store(root)
    for name, table in t.tables().items():
        store.write_table(name, table, TABLES[name])
    return store


@pytest.fixture
def env(tmp_path):
    store = write_store(tmp_path / "home")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"nct_id": BENCHMARK_ID, "endpoint_key": "own test record"}) + "\n")
    return store, {"store": StoreResource(home=str(store.root)), "ct_open": CTOpenResource(paths=str(bench))}


ASSETS = [pa_assets.trial_splits, pa_assets.historical_questions, pa_assets.question_skips, pa_assets.natural_pairs,
          pa_assets.retrieval_index, pa_assets.approximate_pairs, pa_assets.pair_datasets]
CHECKS = [pa_checks.trial_splits_no_leak, pa_checks.historical_questions_no_leak,
          pa_checks.historical_questions_evidence, pa_checks.historical_questions_label_balance,
          pa_checks.natural_pairs_no_leak, pa_checks.natural_pairs_evidence, pa_checks.approximate_pairs_no_leak,
          pa_checks.approximate_pairs_single_factor]


def test_assets_called_directly(env):
    store, res = env
    ctx = dg.build_asset_context()
    result = pa_assets.trial_splits(ctx, config=pa_assets.SplitConfig(), **res)
    sides = dict(zip(*(store.read_table("trial_splits").column(c).to_pylist() for c in ("nct_id", "split"))))
    assert sides[BENCHMARK_ID] == "benchmark" and sides["NCT00000206"] == "test" and sides["NCT00000301"] == "train"
    assert result.metadata["benchmark_ids_loaded"] == 1
    result = pa_assets.historical_questions(dg.build_asset_context(), config=pa_assets.QuestionsConfig(alpha=0.05),
                                            store=res["store"])
    questions = store.read_table("historical_questions")
    assert questions.num_rows > 0 and "label_balance" in result.metadata
    assert {"superiority", "endpoint_met"} <= set(questions.column("kind").to_pylist())
    assert set(questions.column("split").to_pylist()) <= {"train", "test", "benchmark"}
    assert result.metadata["comparative"] == "all" and result.metadata["computed"] == "safety"
    evidence = Counter(questions.column("significance_source").to_pylist())  # these tables have no safety counts
    assert evidence and all(f"| {k} | {v} |" in result.metadata["by_evidence"].md_str for k, v in evidence.items())
    with pytest.raises(dg.DagsterInvalidConfigError, match="comparative not in enum type ComparativeScope got placebo"):
        dg.materialize([pa_assets.historical_questions], resources={"store": res["store"]},
                       run_config={"ops": {"historical_questions": {"config": {"comparative": "placebo"}}}})
    with pytest.raises(dg.DagsterInvalidConfigError, match="computed not in enum type ComputedScope got all"):
        dg.materialize([pa_assets.historical_questions], resources={"store": res["store"]},
                       run_config={"ops": {"historical_questions": {"config": {"computed": "all"}}}})
    assert store.read_table("historical_questions").equals(questions)  # a bad setting replaces nothing
    store.write_table("outcome_analyses", pa.concat_tables([store.read_table("outcome_analyses"), pa.Table.from_pylist(
        [{"nct_id": "NCT00000301", "outcome_index": 0, "analysis_index": 1, "group_ids": ["O1", "O2"],
          "p_value_raw": "<0.1", "p_value": 0.1, "p_value_relation": "<"}], schema=TABLES["outcome_analyses"])]))
    result = pa_assets.question_skips(dg.build_asset_context(), config=pa_assets.QuestionsConfig(), store=res["store"])
    skips = store.read_table("question_skips").to_pylist()
    assert [(r["nct_id"], r["analysis_index"], r["reason"]) for r in skips] == [("NCT00000301", 1, "p_inconclusive")]
    assert "p_inconclusive" in result.metadata["counts_by_reason"].value
    pa_assets.natural_pairs(dg.build_asset_context(), config=pa_assets.NaturalPairsConfig(), store=res["store"])
    assert set(store.read_table("natural_pairs").column("factor").to_pylist()) == {"arm", "outcome"}
    pa_assets.retrieval_index(dg.build_asset_context(), store=res["store"])
    assert (store.path("indexes", "trials") / "meta.json").exists()
    result = pa_assets.approximate_pairs(dg.build_asset_context(), config=pa_assets.ApproximatePairsConfig(),
                                         store=res["store"])
    assert "counts" in result.metadata
    pa_assets.pair_datasets(dg.build_asset_context(), store=res["store"])
    card = (store.path("datasets", "historical_questions") / "README.md").read_text()
    assert "## Fields" in card and "## Licence" in card and f"rows: {questions.num_rows}" in card
    assert (store.path("datasets", "natural_pairs") / "data" / "natural_pairs.parquet").exists()


def test_materialize_domain_with_checks_then_plant_leaks(env):
    store, res = env
    result = dg.materialize([*ASSETS, *CHECKS], resources=res, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {c.check_key.name for c in CHECKS}
    failed = [name for name, e in evaluations.items() if not e.passed and name != "historical_questions_label_balance"]
    assert failed == [], {n: evaluations[n].metadata for n in failed}
    assert (store.path("datasets", "approximate_pairs") / "README.md").exists()

    # plant a leak: a benchmark trial's question relabelled as training data
    questions = store.read_table("historical_questions")
    split = [("train" if n == BENCHMARK_ID else s) for n, s in zip(questions.column("nct_id").to_pylist(),
                                                                  questions.column("split").to_pylist())]
    assert BENCHMARK_ID in questions.column("nct_id").to_pylist()
    store.write_table("historical_questions", questions.set_column(questions.schema.get_field_index("split"), "split",
                                                                   pa.array(split)))
    check = pa_checks.historical_questions_no_leak(**res)
    assert not check.passed and "benchmark trial in a training row" in check.metadata["problems"].value

    # plant a spanning pair: a natural pair whose target trial is moved to the other side
    pairs = store.read_table("natural_pairs")
    targets = pairs.column("target_nct_id").to_pylist()
    targets[0] = next(n for n, s in zip(*(store.read_table("trial_splits").column(c).to_pylist()
                                          for c in ("nct_id", "split"))) if s != pairs.column("split")[0].as_py())
    store.write_table("natural_pairs", pairs.set_column(pairs.schema.get_field_index("target_nct_id"),
                                                        "target_nct_id", pa.array(targets)))
    assert not pa_checks.natural_pairs_no_leak(**res).passed

    # plant a trial on two sides
    splits = store.read_table("trial_splits")
    store.write_table("trial_splits", pa.concat_tables([splits, splits.slice(0, 1).set_column(
        2, "split", pa.array(["train" if splits.column("split")[0].as_py() != "train" else "test"]))]))
    assert not pa_checks.trial_splits_no_leak(**res).passed


def test_build_pairs_job_selects_the_domain():
    from deepimagine_dagster.definitions import defs

    job = defs.resolve_job_def("build_pairs")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"trial_splits", "historical_questions", "question_skips", "natural_pairs", "retrieval_index",
                    "approximate_pairs", "pair_datasets"}
    assert build_pairs.name == "build_pairs"
