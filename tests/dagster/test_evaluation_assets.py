"""Evaluation assets: called directly with fake resources, and one `materialize` of the `evaluate` selection on a tmp
Store holding a small `historical_questions` table the test writes."""

import json

import dagster as dg
import pyarrow as pa
import pytest

from deepimagine_core.evaluation.inputs import EvaluationInputError
from deepimagine_core.store import Store
from deepimagine_dagster.defs.evaluation.assets import CT_OPEN_TABLE, EvaluationConfig, ct_open_benchmark, evaluation_report
from deepimagine_dagster.resources import CTOpenResource, LLMBackendResource, StoreResource
from tests.core.test_eval_ct_open import SUPERIORITY, make_record, three_way_record, write_jsonl
from tests.core.test_eval_predictors import toy_questions


def write_history(store: Store) -> None:
    rows = [{**q.to_row(), "split": "train"} for q in toy_questions(120)]
    rows += [{**q.to_row(), "split": "test"} for q in toy_questions(24, start=7000)]
    store.write_table("historical_questions", pa.Table.from_pylist(rows))


def ct_open_file(tmp_path):
    path = tmp_path / "toy_winter.jsonl"
    write_jsonl(path, [make_record("NCT90000001"), make_record("NCT90000002", "All-cause mortality",
                       answer_list_of_lists=[make_record()["question_list_of_lists"][0][1]]), three_way_record("NCT90000003")])
    return path


def test_ct_open_benchmark_without_files_is_empty_and_says_so(tmp_path):
    store = StoreResource(home=str(tmp_path))
    result = ct_open_benchmark(dg.build_asset_context(), store=store, ct_open=CTOpenResource(paths=""))
    assert result.metadata["dagster/row_count"] == 0
    assert "No CT Open files configured" in result.metadata["note"].value
    assert Store(tmp_path).read_table(CT_OPEN_TABLE).num_rows == 0


def test_ct_open_benchmark_loads_configured_files(tmp_path):
    path = ct_open_file(tmp_path)
    store = StoreResource(home=str(tmp_path / "home"))
    result = ct_open_benchmark(dg.build_asset_context(), store=store, ct_open=CTOpenResource(paths=str(path)))
    assert result.metadata["dagster/row_count"] == 4
    assert "| benchmark:toy_winter | 4 | 3 | 2 | 0 | 2 | 0 |" in result.metadata["files"].value
    table = Store(tmp_path / "home").read_table(CT_OPEN_TABLE)
    assert set(table.column("benchmark").to_pylist()) == {"toy_winter"}


def test_evaluation_report_without_historical_questions_fails_clearly(tmp_path):
    with pytest.raises(dg.Failure, match="no historical questions"):
        evaluation_report(dg.build_asset_context(), config=EvaluationConfig(), store=StoreResource(home=str(tmp_path)),
                          llm=LLMBackendResource())


def test_evaluate_materializes_report_json_and_predictions(tmp_path):
    home = tmp_path / "home"
    write_history(Store(home))
    config = {"predictors": ["majority", "logreg", "knn_history"], "bootstrap_samples": 30,
              "predictor_options": json.dumps({"logreg": {"min_df": 2}, "knn_history": {"k": 10}})}
    training = tmp_path / "toy_train.jsonl"  # a CT Open file the user marks as training: a separate setting
    write_jsonl(training, [make_record(f"NCT8000000{i}", "Change in HbA1c" if i % 2 else "All-cause mortality",
                                       answer_list_of_lists=[SUPERIORITY[i % 2 == 0]]) for i in range(6)])
    ct_open = CTOpenResource(paths=str(ct_open_file(tmp_path)), training_paths=str(training))
    result = dg.materialize(
        [ct_open_benchmark, evaluation_report],
        resources={"store": StoreResource(home=str(home)), "ct_open": ct_open, "llm": LLMBackendResource()},
        run_config={"ops": {"evaluation_report": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    data = json.loads((home / "reports" / "evaluation.json").read_text())
    assert set(data) == {"toy_winter", "historical_test"}
    assert set(data["toy_winter"]) == {"majority", "logreg", "knn_history", "majority@ct_open_train",
                                       "logreg@ct_open_train", "knn_history@ct_open_train"}
    assert data["toy_winter"]["logreg@ct_open_train"]["training"]["n_questions"] == 6
    assert data["toy_winter"]["logreg"]["n_questions"] == 4
    assert (home / "reports" / "predictions" / "toy_winter" / "knn_history.jsonl").exists()
    meta = result.asset_materializations_for_node("evaluation_report")[0].metadata
    assert "| logreg |" in meta["figures"].value and "data:image/png;base64," in meta["report"].value
    assert meta["historical_test/logreg/weighted_accuracy"].value > 0.8


def test_the_reference_predictor_runs_with_its_selected_settings_unless_configured(tmp_path):
    from deepimagine_core.evaluation.evaluate_store import BASELINES, parse_predictor_options
    from deepimagine_core.evaluation.selection import REFERENCE

    assert REFERENCE.name in BASELINES and REFERENCE.name in EvaluationConfig().predictors
    assert parse_predictor_options("") == {REFERENCE.name: REFERENCE.options}
    assert parse_predictor_options(json.dumps({REFERENCE.name: {}})) == {REFERENCE.name: {}}  # the user's word wins
    with pytest.raises(EvaluationInputError, match="JSON object of objects"):
        parse_predictor_options('{"logreg": 3}')
    home = tmp_path / "home"
    write_history(Store(home))
    config = EvaluationConfig(predictors=[REFERENCE.name], bootstrap_samples=10)
    evaluation_report(dg.build_asset_context(), config=config, store=StoreResource(home=str(home)),
                      llm=LLMBackendResource())
    described = json.loads((home / "reports" / "evaluation.json").read_text())["historical_test"][REFERENCE.name]
    # an ensemble reports each member's settings; another predictor its own
    expected = REFERENCE.options.get("member_options") or {None: REFERENCE.options}
    for member, opts in expected.items():
        got = described["predictor"][member] if member else described["predictor"]
        assert opts and {k: got.get(k) for k in opts} == opts


def test_evaluate_job_is_defined():
    from deepimagine_dagster.definitions import defs

    job = defs.resolve_job_def("evaluate")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "ct_open_benchmark", "benchmark_registrations", "evaluation_report"}


class ScriptedLLM(LLMBackendResource):
    """The llm resource, answering every prompt with a fixed DECISION (no model)."""

    def get(self, store=None):
        from tests.scripted_backend import ScriptedBackend

        return ScriptedBackend(lambda messages, i: "reasoning... DECISION: (0.7, 0.3)", model_id="scripted")


def test_report_scores_llm_predictors_beside_baselines_with_a_question_cap(tmp_path):
    home = tmp_path / "home"
    write_history(Store(home))
    config = {"predictors": ["majority", "llm_direct", "llm_rag"], "bootstrap_samples": 20, "llm_max_questions": 3}
    result = dg.materialize(
        [ct_open_benchmark, evaluation_report],
        resources={"store": StoreResource(home=str(home)), "ct_open": CTOpenResource(paths=str(ct_open_file(tmp_path))),
                   "llm": ScriptedLLM()},
        run_config={"ops": {"evaluation_report": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    data = json.loads((home / "reports" / "evaluation.json").read_text())
    bench = data["toy_winter"]
    assert {"majority", "llm_direct", "llm_rag"} <= set(bench)
    assert bench["majority"]["n_questions"] == 4 and bench["llm_direct"]["n_questions"] == 3
    lines = [json.loads(line) for line in
             (home / "reports" / "predictions" / "toy_winter" / "llm_direct.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    two_way = [line for line in lines if len(line["probabilities"]) == 2]
    assert two_way and all(line["probabilities"] == [0.7, 0.3] for line in two_way)
    # a 3-option question answered with 2 probabilities is unparseable: uniform, and counted
    assert bench["llm_direct"]["n_unparsed"] == len(lines) - len(two_way)
    # no adapters are published in this store, so no fine-tuned predictor is added
    assert not any("sft" in name or "grpo" in name for name in bench)
