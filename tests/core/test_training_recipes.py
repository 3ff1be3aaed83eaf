"""Recipes: every shipped YAML loads, overrides apply with types checked, bad keys and values are rejected clearly."""

from __future__ import annotations

import pytest

from deepimagine_core.training.recipes import Recipe, RecipeError, available_recipes, load_recipe


def test_shipped_recipes_load_and_match_the_paper():
    assert {"sft_gpu_qwen3_8b", "sft_cpu_tiny", "grpo_gpu_qwen3_8b", "grpo_cpu_tiny"} <= set(available_recipes())
    gpu = load_recipe("sft_gpu_qwen3_8b")
    assert gpu.trainer == "sft" and "Qwen3-8B" in gpu.model_name_or_path
    assert (gpu.lora_r, gpu.lora_alpha, gpu.learning_rate, gpu.lr_scheduler_type) == (32, 64, 5e-5, "cosine")
    assert (gpu.num_train_epochs, gpu.max_steps, gpu.bf16, gpu.per_factor) == (1.0, -1, True, True)
    tiny = load_recipe("sft_cpu_tiny")
    assert tiny.model_name_or_path == "tiny" and tiny.bf16 is False and 10 <= tiny.max_steps <= 20
    grpo = load_recipe("grpo_cpu_tiny")
    assert grpo.trainer == "grpo" and grpo.generation_batch_size % grpo.num_generations == 0
    assert set(grpo.reward_weights) == {"format", "correctness", "neg_cross_entropy", "direction_agreement"}
    assert load_recipe("grpo_gpu_qwen3_8b").use_vllm is True


def test_overrides_are_parsed_and_type_checked():
    recipe = load_recipe(
        "sft_cpu_tiny",
        {"max_steps": "7", "learning_rate": "1e-4", "lora_target_modules": "[q_proj, v_proj]", "per_factor": False,
         "model_name_or_path": "123"},
    )
    assert recipe.max_steps == 7 and recipe.learning_rate == pytest.approx(1e-4)
    assert recipe.lora_target_modules == ["q_proj", "v_proj"] and recipe.per_factor is False
    assert recipe.model_name_or_path == "123"  # string fields stay strings, never YAML-parsed into numbers
    assert load_recipe("sft_cpu_tiny", {"learning_rate": 1}).learning_rate == 1.0  # int accepted for a float


def test_yaml_shows_only_the_fields_its_trainer_uses():
    sft_yaml, grpo_yaml = load_recipe("sft_cpu_tiny").to_yaml(), load_recipe("grpo_cpu_tiny").to_yaml()
    assert "max_length" in sft_yaml and "num_generations" not in sft_yaml
    assert "num_generations" in grpo_yaml and "untraced_pairs" not in grpo_yaml


def test_fingerprint_changes_with_any_setting():
    a = load_recipe("sft_cpu_tiny")
    assert a.fingerprint() == load_recipe("sft_cpu_tiny").fingerprint()
    assert a.fingerprint() != load_recipe("sft_cpu_tiny", {"seed": 7}).fingerprint()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"learning_rte": 0.1}, "unknown recipe keys ['learning_rte']"),
        ({"max_steps": "many"}, "max_steps must be int"),
        ({"lora_target_modules": "q_proj"}, "lora_target_modules must be"),
        ({"trainer": "ppo"}, "trainer must be one of"),
        ({"factors": "[arm, population]"}, "have no natural pairs"),
        ({"untraced_pairs": "guess"}, "untraced_pairs must be one of"),
        ({"max_steps": -1, "num_train_epochs": 0}, "max_steps > 0 or num_train_epochs > 0"),
    ],
)
def test_bad_sft_overrides_are_rejected(overrides, message):
    with pytest.raises(RecipeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_recipe("sft_cpu_tiny", overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_generations": 3, "generation_batch_size": 4}, "must be divisible by num_generations"),
        ({"num_generations": 1}, "num_generations must be >= 2"),
        ({"reward_weights": {"format": 1.0, "vibes": 2.0}}, "unknown rewards"),
        ({"reward_weights": {}}, "reward_weights is empty"),
    ],
)
def test_bad_grpo_overrides_are_rejected(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("grpo_cpu_tiny", overrides)


def test_recipe_files_by_path_and_their_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("trainer: sft\nmodel_name_or_path: some/model\nmax_steps: 3\n")
    recipe = load_recipe(path)
    assert (recipe.name, recipe.max_steps) == ("mine", 3)
    with pytest.raises(RecipeError, match="no recipe 'nope'"):
        load_recipe("nope")
    (tmp_path / "bad.yaml").write_text("trainer: sft\n")
    with pytest.raises(RecipeError, match="missing required recipe keys \\['model_name_or_path'\\]"):
        load_recipe(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- trainer\n")
    with pytest.raises(RecipeError, match="YAML mapping"):
        load_recipe(tmp_path / "list.yaml")


def test_constructing_a_recipe_directly_is_validated_too():
    with pytest.raises(RecipeError, match="save_steps must be > 0"):
        Recipe(name="x", trainer="sft", model_name_or_path="m", save_steps=0)


def test_reachable_rows_keeps_only_what_max_steps_can_reach():
    import dataclasses

    from deepimagine_core.training.recipes import load_recipe
    from deepimagine_core.training.run import reachable_rows

    recipe = load_recipe("sft_cpu_tiny")
    rows = [{"i": i} for i in range(10_000)]
    kept = reachable_rows(rows, recipe, recipe.per_device_train_batch_size)
    expected = recipe.max_steps * recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps
    assert len(kept) == expected * max(1, recipe.num_processes)
    assert [r["i"] for r in kept] == sorted(r["i"] for r in kept)  # order preserved
    assert kept == reachable_rows(rows, recipe, recipe.per_device_train_batch_size)  # deterministic
    unbounded = dataclasses.replace(recipe, max_steps=-1)
    assert reachable_rows(rows, unbounded, 2) is rows
