"""CPU generation throughput of the transformers backend: all prompts batched against one request at a time.

    python -m deepimagine_core.llm.throughput [--model tiny] [--n-prompts 32] [--batch-size 32] [--max-new-tokens 32]

prints one JSON object (the bench suite calls `measure_generation_throughput` directly). Target: speedup >= 4.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from deepimagine_core.llm.backends import SamplingParams, TransformersBackend
from deepimagine_core.llm.prompts import demo_messages
from deepimagine_core.llm.tiny import TINY_MODEL_SPEC
from deepimagine_core.store import Store


def measure_generation_throughput(
    model: str = TINY_MODEL_SPEC,
    *,
    n_prompts: int = 32,
    batch_size: int = 32,
    max_new_tokens: int = 32,
    device: str = "cpu",
    store: Store | None = None,
) -> dict[str, Any]:
    """CPU tokens/s of the transformers backend: all prompts batched against one request at a time.

    Every sequence generates exactly `max_new_tokens` (EOS ignored) so both runs produce the same number of tokens.
    Returns {"batched_tokens_per_s", "sequential_tokens_per_s", "speedup", ...}; the issue's target is speedup ≥ 4.
    """
    messages = [demo_messages(i) for i in range(n_prompts)]
    params = SamplingParams(temperature=1.0, max_new_tokens=max_new_tokens, ignore_eos=True, seed=0)
    batched = TransformersBackend(model, device=device, batch_size=batch_size, store=store)
    single = TransformersBackend(model, device=device, batch_size=1, store=store)
    batched.generate(messages[:1], SamplingParams(max_new_tokens=2))  # load and warm up both
    single.generate(messages[:1], SamplingParams(max_new_tokens=2))

    def run(backend) -> tuple[float, int]:
        t0 = time.perf_counter()
        out = backend.generate(messages, params)
        return time.perf_counter() - t0, sum(g.completion_tokens for gens in out for g in gens)

    t_batched, tokens_batched = run(batched)
    t_single, tokens_single = run(single)
    result = {
        "model": model,
        "device": device,
        "n_prompts": n_prompts,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "batched_seconds": t_batched,
        "sequential_seconds": t_single,
        "batched_tokens_per_s": tokens_batched / t_batched,
        "sequential_tokens_per_s": tokens_single / t_single,
    }
    result["speedup"] = result["batched_tokens_per_s"] / result["sequential_tokens_per_s"]
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=TINY_MODEL_SPEC)
    parser.add_argument("--n-prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    result = measure_generation_throughput(args.model, n_prompts=args.n_prompts, batch_size=args.batch_size,
                                           max_new_tokens=args.max_new_tokens, device=args.device)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
