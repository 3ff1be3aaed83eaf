"""The GPU check (`python -m bench --gpu`): skips cleanly without CUDA, and the parts that need no GPU are right
(parameter counts of the Qwen3 shapes against transformers, the model folder built from the config alone)."""

from __future__ import annotations

import json

import pytest

from bench import gpu


def test_skips_with_a_reason_without_cuda(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA: the check would really run")
    from bench.__main__ import main

    assert main(["--gpu", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu-results.json").read_text())
    assert result["skipped"].startswith("no CUDA device") and result["shapes"] == {}
    assert '"skipped"' in capsys.readouterr().out


@pytest.mark.parametrize("name, billions", [("qwen3-0.6b", 0.6), ("qwen3-8b", 8.2)])
def test_parameter_counts_match_transformers(name, billions):
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(Qwen3Config(**gpu.SHAPES[name]))
    assert gpu.parameter_count(gpu.SHAPES[name]) == sum(p.numel() for p in model.parameters())
    assert gpu.parameter_count(gpu.SHAPES[name]) / 1e9 == pytest.approx(billions, abs=0.25)


def test_shape_folder_from_the_config_alone(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    folder = gpu.write_shape("qwen3-0.6b", tmp_path / "shape", weights=False)
    config, tok = AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert config.hidden_size == 1024 and config.num_hidden_layers == 28
    assert len(tok) == config.vocab_size == 151936 and tok.decode([151935]) == "<|r151935|>"
    assert not list(folder.glob("*.safetensors"))  # no weights: vLLM loads dummy ones
    text = tok.apply_chat_template(gpu._prompts(1)[0], tokenize=False, add_generation_prompt=True)
    assert 200 < len(tok(text)["input_ids"]) < 2 * gpu.INPUT_LEN


@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_training_part_runs_on_a_tiny_shape(kind, tmp_path, monkeypatch):
    """The training measurement's code path end to end on a tiny shape (on CPU here: no MFU, no GPU memory)."""
    tiny_shape = dict(gpu.SHAPES["qwen3-0.6b"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=4352)
    monkeypatch.setitem(gpu.SHAPES, "tiny-test", tiny_shape)
    monkeypatch.setattr(gpu, "SFT_STEPS", 1)
    monkeypatch.setattr(gpu, "GRPO_STEPS", 1)
    result = gpu._training("tiny-test", str(tmp_path), kind)
    assert result["steps"] == 1 and result["steps_per_s"] > 0
    assert result["recipe"] == {"sft": "sft_gpu_qwen3_8b", "grpo": "grpo_operator_gpu_qwen3_8b"}[kind]
    if kind == "sft":
        assert result["tokens_per_s"] > 0
