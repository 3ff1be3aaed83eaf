"""Inference backends: transformers with the tiny model (shapes, left padding, sampling, adapters), the vLLM contract
with a fake engine, backend selection, and the throughput measurement."""

from __future__ import annotations

import sys
import types

import pytest

from deepimagine_core.llm import backends, tiny
from deepimagine_core.llm.backend_factory import make_backend
from deepimagine_core.llm.backends import Generation, SamplingParams, TransformersBackend, VLLMBackend
from deepimagine_core.llm.prompts import demo_messages


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    return tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")


@pytest.fixture(scope="module")
def backend(tiny_model_path):
    return TransformersBackend(str(tiny_model_path), batch_size=4)


def _conversations(n):
    # different lengths, so a batch needs padding
    return [[{"role": "user", "content": "Dose " + "ten milligrams " * (1 + 3 * i)}] for i in range(n)]


def test_batched_shapes_counts_and_finish(backend):
    convs = _conversations(3)
    out = backend.generate(convs, SamplingParams(n=2, max_new_tokens=6, temperature=1.0, seed=1))
    assert [len(g) for g in out] == [2, 2, 2]
    lengths = [out[i][0].prompt_tokens for i in range(3)]
    assert lengths[0] < lengths[1] < lengths[2]  # unpadded prompt lengths, not the padded batch width
    _, tok = backend._load()
    assert lengths[0] == len(tok(backend.render(convs[0]), add_special_tokens=False)["input_ids"])
    for gens in out:
        for g in gens:
            assert isinstance(g, Generation) and isinstance(g.text, str)
            assert 1 <= g.completion_tokens <= 6
            assert g.finish_reason in {"stop", "length"}
            assert g.finish_reason == "stop" or g.completion_tokens == 6


def test_left_padding_batched_equals_one_at_a_time(backend, tiny_model_path):
    convs = _conversations(3)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8, ignore_eos=True)
    batched = backend.generate(convs, greedy)
    single = TransformersBackend(str(tiny_model_path), batch_size=1).generate(convs, greedy)
    assert backend._tokenizer.padding_side == "left"
    assert [g[0].text for g in batched] == [g[0].text for g in single]
    assert all(g[0].completion_tokens == 8 and g[0].finish_reason == "length" for g in batched)


def test_seed_makes_sampling_reproducible(backend):
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=6, n=2, seed=7)
    first = backend.generate(_conversations(2), params)
    assert backend.generate(_conversations(2), params) == first


def test_adapter_is_loaded_and_switched(backend, tiny_model_path, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8, ignore_eos=True)
    conv = _conversations(1)
    fresh = TransformersBackend(str(tiny_model_path), batch_size=2)
    plain = fresh.generate(conv, greedy)[0][0].text
    adapted = fresh.generate(conv, greedy, adapter=str(tmp_path / "adapter"))[0][0].text
    assert adapted != plain  # the (non-zero) LoRA changed the output
    assert fresh.generate(conv, greedy)[0][0].text == plain  # and the base model is back without it
    default = TransformersBackend(str(tiny_model_path), adapter_path=str(tmp_path / "adapter"))
    assert default.generate(conv, greedy)[0][0].text == adapted


def test_tiny_spec_resolves_to_store_model(tmp_path):
    from deepimagine_core.store import Store

    store = Store(tmp_path)
    b = make_backend("transformers", "tiny", store=store, batch_size=2)
    assert b.model_id == "tiny" and b.model_path == str(store.path("models", "tiny"))
    assert backends.is_tiny(b)
    with pytest.raises(ValueError, match="unknown backend kind"):
        make_backend("onnx", "tiny", store=store)


def test_sampling_params_validate():
    with pytest.raises(ValueError):
        SamplingParams(n=0)
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)


# ---- vLLM contract: a fake `vllm` module and engine stand in for the GPU-only package ------------------------------


class _FakeEngine:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []

    def chat(self, messages, sampling_params, use_tqdm=True, lora_request=None, chat_template_kwargs=None):
        self.calls.append({"messages": messages, "sampling": sampling_params, "lora": lora_request})
        outs = []
        for conv in messages:
            completions = [
                types.SimpleNamespace(text=f"reply {i} to {conv[-1]['content']}", token_ids=[1, 2, 3],
                                      finish_reason="length" if i else "stop")
                for i in range(sampling_params.n)
            ]
            outs.append(types.SimpleNamespace(prompt_token_ids=[5] * len(conv[-1]["content"]), outputs=completions))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = _FakeEngine
    module.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: types.SimpleNamespace(name=name, id=lora_id, path=path)
    for name, mod in {"vllm": module, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return module


def test_vllm_contract_with_fake_engine(fake_vllm):
    b = VLLMBackend("org/model", enable_lora=True, max_model_len=4096)
    params = SamplingParams(n=2, temperature=0.5, top_p=0.9, max_new_tokens=12, seed=3)
    out = b.generate([[{"role": "user", "content": "abc"}], [{"role": "user", "content": "hello"}]], params)
    engine = b.engine
    assert engine.kwargs["model"] == "org/model" and engine.kwargs["enable_lora"] and engine.kwargs["max_model_len"] == 4096
    sampling = engine.calls[0]["sampling"]
    assert (sampling.n, sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.seed) == (2, 0.5, 0.9, 12, 3)
    assert engine.calls[0]["lora"] is None
    assert [[g.text for g in gens] for gens in out] == [["reply 0 to abc", "reply 1 to abc"],
                                                       ["reply 0 to hello", "reply 1 to hello"]]
    assert out[1][0] == Generation("reply 0 to hello", 5, 3, "stop") and out[1][1].finish_reason == "length"

    b.generate([[{"role": "user", "content": "x"}]], params, adapter="/adapters/arm")
    b.generate([[{"role": "user", "content": "x"}]], params, adapter="/adapters/outcome")
    b.generate([[{"role": "user", "content": "x"}]], params, adapter="/adapters/arm")
    loras = [c["lora"] for c in engine.calls[1:]]
    assert [(r.id, r.path) for r in loras] == [(1, "/adapters/arm"), (2, "/adapters/outcome"), (1, "/adapters/arm")]


def test_vllm_injected_engine_and_lora_guard(fake_vllm):
    engine = _FakeEngine()
    b = make_backend("vllm", "org/model", engine=engine, device="cpu", batch_size=4)
    b.generate([[{"role": "user", "content": "q"}]], SamplingParams())
    assert b.engine is engine and len(engine.calls) == 1
    with pytest.raises(ValueError, match="enable_lora"):
        b.generate([[{"role": "user", "content": "q"}]], SamplingParams(), adapter="/a")


@pytest.mark.gpu
def test_vllm_real_engine_on_gpu(tiny_model_path):
    pytest.importorskip("vllm")
    if not backends.cuda_available():
        pytest.skip("no CUDA device")
    b = VLLMBackend(str(tiny_model_path), gpu_memory_utilization=0.3, max_model_len=2048)
    out = b.generate([demo_messages(0), demo_messages(1)], SamplingParams(n=2, max_new_tokens=8))
    assert [len(g) for g in out] == [2, 2] and all(g.completion_tokens >= 1 for gens in out for g in gens)


def test_measure_generation_throughput_reports_both_modes(tiny_model_path):
    from deepimagine_core.llm.throughput import measure_generation_throughput

    result = measure_generation_throughput(str(tiny_model_path), n_prompts=4, batch_size=4, max_new_tokens=2)
    assert result["batched_tokens_per_s"] > 0 and result["sequential_tokens_per_s"] > 0
    assert result["speedup"] == pytest.approx(result["batched_tokens_per_s"] / result["sequential_tokens_per_s"])
