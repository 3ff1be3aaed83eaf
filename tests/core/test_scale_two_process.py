"""The tiny SFT recipe on two CPU processes under `accelerate launch` (gloo DDP), against the same run in one process:
the same adapter tensors, both ranks finished in a world of two, and the data really split between them."""

from __future__ import annotations

import json

import pytest

from deepimagine_core.llm import tiny
from deepimagine_core.training.data import synthetic_sft_examples
from deepimagine_core.training.distributed import LAUNCH_DIR, launch_operators
from deepimagine_core.training.recipes import load_recipe
from deepimagine_core.training.sft import train_operators

pytestmark = pytest.mark.timeout(300)


def adapter_shapes(adapter_dir) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(f"{adapter_dir}/adapter_model.safetensors", "pt") as f:
        return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}


def test_two_processes_train_the_same_adapter_as_one(tmp_path, tmp_path_factory):
    model = tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")
    quick = {"model_name_or_path": str(model), "max_steps": 2, "save_steps": 2, "factors": ["arm"]}
    examples = synthetic_sft_examples(4)  # what 2 steps of 2 reach: both runs train on every example

    single = train_operators(load_recipe("sft_cpu_tiny", quick), examples, tmp_path / "one")["sft_arm"]
    progress = []
    double = launch_operators(
        load_recipe("sft_cpu_tiny", {**quick, "num_processes": 2}), examples, tmp_path / "two",
        progress=progress.append, log=lambda line: None,
    )["sft_arm"]

    assert double.global_step == single.global_step == 2 and not double.reused
    assert adapter_shapes(double.adapter_path) == adapter_shapes(single.adapter_path)  # same keys, same shapes
    ranks = [json.loads((tmp_path / "two" / LAUNCH_DIR / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"], r["backend"]) for r in ranks] == [(0, 2, "gloo"), (1, 2, "gloo")]
    assert "- processes: 2" in open(f"{double.adapter_path}/README.md").read()
    # DDP split the data: each step saw 2 x the per-device batch, so the same steps covered twice the epochs
    assert double.log_history[-1]["epoch"] == pytest.approx(2 * single.log_history[-1]["epoch"])
    assert [p["step"] for p in progress if "loss" in p] == [1, 2]  # trainer progress streamed from rank 0
    assert double.data_counts == single.data_counts  # same card data as the in-process operators
