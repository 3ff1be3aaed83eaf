"""The tiny local model: builds offline, loads with the Auto classes, has a working chat template, is reused."""

from __future__ import annotations

import json
import os

import pytest

from deepimagine_core.llm import tiny
from deepimagine_core.store import Store


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    # Same path in every llm test file: build_tiny_model reuses a complete folder, so it is built once per session.
    return tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")


def test_build_and_load_offline(tiny_model_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert tiny.is_complete(tiny_model_path)
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    cfg = model.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("qwen3", 64, 2)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (4, 2, 16)
    assert cfg.vocab_size == len(tok) <= tiny.VOCAB_SIZE
    assert tok.pad_token == tiny.PAD_TOKEN and tok.eos_token == tiny.IM_END and tok.padding_side == "left"
    manifest = json.loads((tiny_model_path / tiny.MANIFEST).read_text())
    assert "meaningless" in manifest["note"]


def test_chat_template_and_roundtrip(tiny_model_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    messages = [{"role": "system", "content": "You predict trial results."}, {"role": "user", "content": "Dose 10 mg?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou predict trial results.<|im_end|>\n"
        "<|im_start|>user\nDose 10 mg?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text  # byte-level BPE: lossless, nothing unknown
    assert tok.convert_tokens_to_ids(tiny.IM_START) in ids
    # assistant spans are marked, so TRL's assistant_only_loss can train on completions only
    full = tok.apply_chat_template(
        messages + [{"role": "assistant", "content": "DECISION: (0.6, 0.4)"}],
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    assert 0 < sum(full["assistant_masks"]) < len(full["input_ids"])


def test_reuse_and_ensure(tiny_model_path, tmp_path):
    stamp = os.path.getmtime(tiny_model_path / "model.safetensors")
    assert tiny.build_tiny_model(tiny_model_path) == tiny_model_path
    assert os.path.getmtime(tiny_model_path / "model.safetensors") == stamp  # reused, not rebuilt

    store = Store(tmp_path / "home")
    broken = store.path("models", "tiny")
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")  # an interrupted build: no manifest
    path = tiny.ensure_tiny_model(store)
    assert path == broken and tiny.is_complete(path)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left behind
