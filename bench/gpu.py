"""`python -m bench --gpu`: the GPU path measured on model shapes of a real size, with nothing downloaded.

For each shape (Qwen3-0.6B and Qwen3-8B, from their published configs; throughput does not depend on the weights):
1. a model folder is written from the config alone: config.json, a byte-level BPE tokenizer trained on the project's
   own text and padded with placeholder tokens to the model's vocabulary, the tiny model's chat template;
2. generation (vLLM, random "dummy" weights): the project's `VLLMBackend` on the trace workload (chat prompts of
   ~`INPUT_LEN` tokens, `OUTPUT_LEN` new tokens, end-of-sequence ignored) in tokens/s, against vLLM's own offline
   figure for the same shape in the same run (`vllm bench throughput --load-format dummy` with the same lengths);
3. training (transformers + TRL + PEFT, random-init weights saved once): SFT LoRA and GRPO steps/s through the project's
   `train_sft` / `train_grpo` with the GPU recipes (few steps, no checkpoints kept), model FLOPs utilisation
   (6 × parameters × tokens/s ÷ the card's bf16 peak), and peak GPU memory.

Every measurement runs in its own process (one CUDA context each). Without CUDA the suite prints a result that says it
was skipped and why; each part that cannot run (vLLM not installed, a shape that does not fit) says so instead of a
figure. Budget: about 10 minutes on one 80 GB card.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import in_fresh_process

INPUT_LEN, OUTPUT_LEN, N_PROMPTS = 512, 256, 256
SFT_STEPS, GRPO_STEPS = 10, 3
SHAPES: dict[str, dict[str, Any]] = {  # Qwen3-0.6B and Qwen3-8B config.json (architecture fields only)
    "qwen3-0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                       rope_theta=1_000_000, rms_norm_eps=1e-6, tie_word_embeddings=True),
    "qwen3-8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                     rope_theta=1_000_000, rms_norm_eps=1e-6, tie_word_embeddings=False),
}
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "B200": 2250.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0,
                    "L4": 121.0}  # dense bf16, SXM figures where there are several


def cuda_status() -> tuple[bool, str]:
    """(usable, reason): CUDA present and at least one device visible."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA device (torch.cuda.is_available() is False): the GPU check only runs on a GPU host"
    return True, f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"


def peak_tflops(device_name: str) -> float | None:
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in device_name), None)


def parameter_count(shape: dict[str, Any]) -> int:
    """Parameters of a Qwen3 decoder of this shape (embeddings counted once when tied)."""
    h, i, n, v = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"], shape["vocab_size"]
    q, kv = shape["num_attention_heads"] * shape["head_dim"], shape["num_key_value_heads"] * shape["head_dim"]
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h + 2 * shape["head_dim"]
    return n * per_layer + v * h * (1 if shape["tie_word_embeddings"] else 2) + h


def write_shape(name: str, folder: Path, *, weights: bool) -> Path:
    """A model folder from the config alone (and random bf16 weights when `weights`: transformers needs them)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from deepimagine_core.llm import tiny

    folder.mkdir(parents=True, exist_ok=True)
    shape = SHAPES[name]
    tok = tiny._train_tokenizer(tiny.bundled_corpus(), tiny.VOCAB_SIZE)
    tok.add_tokens([f"<|r{i}|>" for i in range(len(tok), shape["vocab_size"])])  # every generated id decodes
    tok.save_pretrained(folder)
    config = Qwen3Config(**shape, bos_token_id=tok.convert_tokens_to_ids(tiny.PAD_TOKEN),
                         eos_token_id=tok.convert_tokens_to_ids(tiny.IM_END),
                         pad_token_id=tok.convert_tokens_to_ids(tiny.PAD_TOKEN), torch_dtype="bfloat16")
    if weights:
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(folder, safe_serialization=True)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    else:
        config.save_pretrained(folder)
    return folder


def _prompts(n: int) -> list[list[dict[str, str]]]:
    """Chat prompts of about INPUT_LEN tokens (the trace workload's size), varied so no prefix cache makes it easy."""
    from deepimagine_core.llm.prompts import demo_messages

    out = []
    for i in range(n):
        messages = demo_messages(i)
        messages[-1]["content"] = (messages[-1]["content"] + f" Context {i}: " + "trial design detail " * 60)[
            : INPUT_LEN * 3]
        out.append(messages)
    return out


def _project_generation(name: str, root: str) -> dict[str, Any]:
    import torch

    from deepimagine_core.llm.backends import SamplingParams, VLLMBackend

    folder = write_shape(name, Path(root) / name, weights=False)
    backend = VLLMBackend(str(folder), max_model_len=INPUT_LEN * 4 + OUTPUT_LEN, gpu_memory_utilization=0.85)
    backend.engine_kwargs["load_format"] = "dummy"  # random weights from the config: nothing to download or read
    started = time.perf_counter()
    engine = backend.engine
    startup = time.perf_counter() - started
    params = SamplingParams(temperature=1.0, max_new_tokens=OUTPUT_LEN, n=1, ignore_eos=True)
    backend.generate(_prompts(8), params)  # warm-up
    prompts = _prompts(N_PROMPTS)
    started = time.perf_counter()
    outputs = backend.generate(prompts, params)
    seconds = time.perf_counter() - started
    completion = sum(g.completion_tokens for gens in outputs for g in gens)
    prompt_tokens = sum(gens[0].prompt_tokens for gens in outputs)
    del engine
    return {"engine_startup_s": round(startup, 1), "seconds": round(seconds, 2), "prompts": len(prompts),
            "mean_prompt_tokens": round(prompt_tokens / len(prompts)), "output_tokens": completion,
            "output_tokens_per_s": round(completion / seconds, 1),
            "total_tokens_per_s": round((completion + prompt_tokens) / seconds, 1),
            "gpu_memory_used_gb": round((torch.cuda.mem_get_info()[1] - torch.cuda.mem_get_info()[0]) / 2**30, 1)}


def _vllm_reference(name: str, root: str, input_len: int) -> dict[str, Any]:
    """vLLM's own offline throughput benchmark on the same shape and lengths (its random dataset)."""
    folder = write_shape(name, Path(root) / f"{name}-ref", weights=False)
    command = ["vllm", "bench", "throughput", "--model", str(folder), "--load-format", "dummy",
               "--input-len", str(input_len), "--output-len", str(OUTPUT_LEN), "--num-prompts", str(N_PROMPTS),
               "--max-model-len", str(INPUT_LEN * 4 + OUTPUT_LEN), "--gpu-memory-utilization", "0.85"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    text = done.stdout + done.stderr
    found = re.search(r"Throughput:\s*([\d.]+)\s*requests/s,\s*([\d.]+)\s*total tokens/s,\s*([\d.]+)\s*output", text)
    if done.returncode or not found:
        raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {text[-1500:]}")
    return {"command": " ".join(command), "requests_per_s": float(found.group(1)),
            "total_tokens_per_s": float(found.group(2)), "output_tokens_per_s": float(found.group(3))}


def _training(name: str, root: str, kind: str) -> dict[str, Any]:
    import torch

    from deepimagine_core.training.data import synthetic_pair, synthetic_sft_examples
    from deepimagine_core.training.recipes import load_recipe

    folder = write_shape(name, Path(root) / f"{name}-weights", weights=True)
    steps = SFT_STEPS if kind == "sft" else GRPO_STEPS
    common = {"model_name_or_path": str(folder), "max_steps": steps, "save_steps": steps + 1, "num_processes": 1,
              "logging_steps": 1}
    cuda = torch.cuda.is_available()  # (the CPU path exists for tests/test_bench_gpu.py on a tiny shape)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if kind == "sft":
        from deepimagine_core.training.sft import train_sft

        recipe = load_recipe("sft_gpu_qwen3_8b", {**common, "max_length": 1024})
        rows = synthetic_sft_examples(steps * recipe.per_device_train_batch_size * recipe.gradient_accumulation_steps)
        result = train_sft(recipe, rows, Path(root) / f"{name}-sft", resume=False)
    else:
        from deepimagine_core.llm.pair_text import pair_view
        from deepimagine_core.training.data import step_prompt
        from deepimagine_core.training.grpo import train_grpo

        recipe = load_recipe("grpo_operator_gpu_qwen3_8b", {**common, "max_completion_length": 128,
                                                            "use_vllm": False, "per_device_train_batch_size": 8,
                                                            "gradient_accumulation_steps": 1,
                                                            "generation_batch_size": 8, "num_generations": 4})
        rows = [{"prompt": step_prompt(pair_view(synthetic_pair(i))), "task": "step", "answer": None,
                 "n_options": None, "category": None, "direction": synthetic_pair(i)["change_direction"]}
                for i in range(64)]
        result = train_grpo(recipe, rows, Path(root) / f"{name}-grpo", resume=False)
    runtime = result.metrics.get("train_runtime_s") or 0.0
    tokens = result.metrics.get("num_tokens")
    peak = peak_tflops(torch.cuda.get_device_name(0)) if cuda else None
    flops_per_s = 6 * parameter_count(SHAPES[name]) * tokens / runtime if tokens and runtime else None
    return {"recipe": recipe.name, "steps": result.global_step, "train_runtime_s": round(runtime, 2),
            "steps_per_s": round(result.global_step / runtime, 3) if runtime else None,
            "tokens_per_s": round(tokens / runtime, 1) if tokens and runtime else None,
            "mfu": round(flops_per_s / (peak * 1e12), 4) if flops_per_s and peak else None,
            "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None}


def _part(fn, *args, timeout: float = 900) -> dict[str, Any]:
    """One measurement in its own process; a failure is reported in place of the figure, never hidden."""
    try:
        return in_fresh_process(fn, *args, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - reported as the part's result
        return {"error": f"{type(err).__name__}: {str(err)[-1500:]}"}


def run() -> dict[str, Any]:
    usable, reason = cuda_status()
    result: dict[str, Any] = {"gpu": reason, "shapes": {}}
    if not usable:
        return {**result, "skipped": reason}
    import importlib.util

    has_vllm = importlib.util.find_spec("vllm") is not None
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as root:
        for name in SHAPES:
            shape: dict[str, Any] = {"parameters": parameter_count(SHAPES[name])}
            if has_vllm:
                shape["generation"] = _part(_project_generation, name, root)
                prompt_len = shape["generation"].get("mean_prompt_tokens", INPUT_LEN)
                shape["vllm_reference"] = _part(_vllm_reference, name, root, prompt_len)
                ours, ref = shape["generation"].get("output_tokens_per_s"), shape["vllm_reference"].get(
                    "output_tokens_per_s")
                shape["generation_vs_vllm"] = round(ours / ref, 3) if ours and ref else None
            else:
                shape["generation"] = {"skipped": "vllm is not installed (it belongs to the GPU image)"}
            shape["sft"] = _part(_training, name, root, "sft")
            shape["grpo"] = _part(_training, name, root, "grpo")
            result["shapes"][name] = shape
    return result
