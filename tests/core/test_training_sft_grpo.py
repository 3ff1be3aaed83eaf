"""SFT and GRPO on the tiny model (CPU, seconds): loadable adapters with model cards and curves, reuse, throughput."""

from __future__ import annotations

import json

import pytest

from deepimagine_core.llm import tiny
from deepimagine_core.training.checkpoints import RESULT_FILE
from deepimagine_core.training.data import synthetic_pair, synthetic_sft_examples
from deepimagine_core.training.grpo import train_grpo
from deepimagine_core.training.recipes import load_recipe
from deepimagine_core.training.sft import measure_training_throughput, train_operators, train_sft


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    # The llm tests build the same folder; build_tiny_model reuses a complete one, so it is built once per session.
    return tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")


@pytest.fixture(scope="module")
def sft_run(tiny_model_path, tmp_path_factory):
    recipe = load_recipe("sft_cpu_tiny", {"model_name_or_path": str(tiny_model_path)})
    logs = []
    result = train_sft(recipe, synthetic_sft_examples(12), tmp_path_factory.mktemp("sft") / "sft_arm",
                       name="sft_arm", progress=logs.append)
    return recipe, result, logs


def load_adapter(base, adapter):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)


def test_sft_publishes_a_loadable_adapter_with_card_and_curves(sft_run, tiny_model_path):
    recipe, result, logs = sft_run
    assert result.global_step == recipe.max_steps and result.resumed_from is None and not result.reused
    adapter = load_adapter(tiny_model_path, result.adapter_path)
    assert adapter.peft_config["default"].r == recipe.lora_r
    card = open(f"{result.adapter_path}/README.md").read()
    for expected in (f"base_model: {tiny_model_path}", "| examples | 12 |", "final_loss", "sft_cpu_tiny",
                     "lora_r: 8", "torch:", "resumed from: (fresh run)", "![training curves](curves.png)"):
        assert expected in card, expected
    assert open(result.curves_path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert [entry["step"] for entry in logs if "loss" in entry] == list(range(1, recipe.max_steps + 1))
    assert result.metrics["final_loss"] > 0 and result.metrics["tokens_per_second"] > 0
    saved = json.loads(open(f"{result.adapter_path}/{RESULT_FILE}").read())
    assert saved["fingerprint"] == result.fingerprint and saved["global_step"] == recipe.max_steps


def test_an_identical_rerun_reuses_the_published_adapter(sft_run):
    recipe, result, _ = sft_run
    again = train_sft(recipe, synthetic_sft_examples(12), result.adapter_path.rsplit("/adapter", 1)[0], name="sft_arm")
    assert again.reused and again.global_step == result.global_step and again.adapter_path == result.adapter_path


def test_train_operators_per_factor_or_multi(tiny_model_path, tmp_path):
    examples = synthetic_sft_examples(4) + [dict(e, factor="outcome") for e in synthetic_sft_examples(2)]
    quick = {"model_name_or_path": str(tiny_model_path), "max_steps": 1, "save_steps": 1}
    multi = train_operators(load_recipe("sft_cpu_tiny", {**quick, "per_factor": False}), examples, tmp_path)
    assert list(multi) == ["sft_multi"] and multi["sft_multi"].data_counts["examples_available"] == 6
    assert multi["sft_multi"].data_counts["examples"] == 2  # one step of batch 2 reaches only 2 of them
    only_arm = train_operators(load_recipe("sft_cpu_tiny", {**quick, "factors": ["arm"]}), examples, tmp_path)
    assert list(only_arm) == ["sft_arm"] and only_arm["sft_arm"].data_counts["examples_arm"] == 4
    assert (tmp_path / "sft_arm" / "adapter" / "adapter_model.safetensors").is_file()


def test_sft_rejects_wrong_recipe_and_bad_examples(tiny_model_path, tmp_path):
    with pytest.raises(ValueError, match="not an SFT one"):
        train_sft(load_recipe("grpo_cpu_tiny"), synthetic_sft_examples(1), tmp_path)
    sft = load_recipe("sft_cpu_tiny", {"model_name_or_path": str(tiny_model_path)})
    with pytest.raises(ValueError, match="no SFT examples"):
        train_sft(sft, [], tmp_path)
    with pytest.raises(ValueError, match="needs `prompt` and `completion`"):
        train_sft(sft, [{"prompt": "text"}], tmp_path)


def grpo_rows() -> list[dict]:
    from deepimagine_core.training.data import grpo_examples
    from tests.core.test_training_data import approximate_pair, question_row

    questions = [question_row(i, "train", i % 2) for i in range(3)]
    approx = [approximate_pair("ap0", "NCT00000001", "NCT00000002")]
    return grpo_examples(approx, questions, [synthetic_pair(i) for i in range(2)]).rows


def test_grpo_continues_an_sft_adapter_and_publishes_under_grpo(sft_run, tiny_model_path, tmp_path):
    _, sft_result, _ = sft_run
    recipe = load_recipe("grpo_cpu_tiny", {"model_name_or_path": str(tiny_model_path), "max_steps": 2})
    result = train_grpo(recipe, grpo_rows(), tmp_path / "grpo", init_adapter=sft_result.adapter_path)
    assert "grpo" in result.adapter_path and result.global_step == 2
    assert {"final_reward", "final_format_reward", "final_neg_cross_entropy_reward"} <= set(result.metrics)
    # 4 question prompts, 3 of the significant class and 1 not: resampled to 3 + 3 (class balance); 2 steps, up and down
    assert result.data_counts["prompts_question"] == 6 and result.data_counts["prompts_step"] == 2
    card = open(f"{result.adapter_path}/README.md").read()
    assert f"Training started from the adapter `{sft_result.adapter_path}`" in card and "num_generations: 4" in card
    load_adapter(tiny_model_path, result.adapter_path)  # loads on the base model, like the SFT operators


def test_grpo_checks_its_inputs(tiny_model_path, tmp_path):
    recipe = load_recipe("grpo_cpu_tiny", {"model_name_or_path": str(tiny_model_path)})
    with pytest.raises(ValueError, match="name must contain 'grpo'"):
        train_grpo(recipe, grpo_rows(), tmp_path / "policy")
    row = dict(grpo_rows()[0], answer=None)  # a question row
    with pytest.raises(ValueError, match="no verifiable answer"):
        train_grpo(recipe, [row], tmp_path / "grpo")
    with pytest.raises(ValueError, match="not a GRPO one"):
        train_grpo(load_recipe("sft_cpu_tiny"), grpo_rows(), tmp_path / "grpo")


def test_measure_training_throughput_reports_tokens_per_second(tiny_model_path):
    figures = measure_training_throughput(str(tiny_model_path), max_steps=3, n_examples=8)
    assert figures["steps"] == 3 and figures["tokens"] > 0 and figures["tokens_per_second"] > 0
    assert figures["recipe"] == "sft_cpu_tiny"
