"""P4 CPU generation: tokens/s of the tiny model, all prompts batched against one request at a time (the peer
measured in the same run), through the project's transformers backend (`measure_generation_throughput`)."""

from __future__ import annotations

import tempfile

from bench.common import in_fresh_process

TARGET_SPEEDUP = 4.0


def _measure(home: str, n_prompts: int, max_new_tokens: int) -> dict:
    from deepimagine_core.llm.throughput import measure_generation_throughput
    from deepimagine_core.store import Store

    return measure_generation_throughput("tiny", n_prompts=n_prompts, batch_size=n_prompts,
                                         max_new_tokens=max_new_tokens, store=Store(home))


def run(quick: bool = False) -> dict:
    n_prompts, max_new_tokens = (8, 8) if quick else (32, 32)
    with tempfile.TemporaryDirectory(prefix="bench-p4-") as home:  # the tiny model is built here, not in ~/
        result = in_fresh_process(_measure, home, n_prompts, max_new_tokens)
    for key in ("batched_seconds", "sequential_seconds", "batched_tokens_per_s", "sequential_tokens_per_s"):
        result[key] = round(result[key], 2)
    result["speedup"] = round(result["speedup"], 2)
    result["target"] = f"speedup >= {TARGET_SPEEDUP:g}"
    # the target is set for the full batch of 32; --quick's 8 short prompts are not judged
    result["target_met"] = None if quick else result["speedup"] >= TARGET_SPEEDUP
    return result


def headline(r: dict) -> str:
    """One line for results.md."""
    return (f"{r['n_prompts']} prompts x {r['max_new_tokens']} tokens: batched {r['batched_tokens_per_s']} tok/s, "
            f"one at a time {r['sequential_tokens_per_s']} tok/s, speedup {r['speedup']}")
