"""P5 training: tokens/s of the tiny SFT recipe (`measure_training_throughput`: TRL SFTTrainer + PEFT LoRA), against
the floor of a plain PyTorch loop measured in the same run on the same work: the same tiny model with the same LoRA
adapter, the same examples rendered by the same chat template, the same batch size, steps and torch threads.

``ratio_to_floor`` = floor tokens/s ÷ trainer tokens/s: what TRL/Trainer add per token (data collation, logging,
the checkpoint the recipe saves) on top of forward, backward and the optimiser step.
"""

from __future__ import annotations

import tempfile
import time

from bench.common import in_fresh_process

RECIPE = "sft_cpu_tiny"


def _trainer(home: str, steps: int, n_examples: int) -> dict:
    from deepimagine_core.store import Store
    from deepimagine_core.training.sft import measure_training_throughput

    return measure_training_throughput("tiny", recipe=RECIPE, max_steps=steps, n_examples=n_examples,
                                       store=Store(home))


def _floor(home: str, steps: int, n_examples: int) -> dict:
    """Forward + backward + AdamW on the LoRA model over the same tokenised examples (padded per batch)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from deepimagine_core.llm.backends import resolve_model
    from deepimagine_core.store import Store
    from deepimagine_core.training.data import synthetic_sft_examples
    from deepimagine_core.training.recipes import load_recipe
    from deepimagine_core.training.run import lora_config, torch_threads

    recipe = load_recipe(RECIPE, {"model_name_or_path": "tiny", "max_steps": steps})
    path = resolve_model("tiny", Store(home))
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(recipe.seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), lora_config(recipe))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
    texts = [tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
             for r in synthetic_sft_examples(n_examples)]
    encoded = [tok(t, truncation=True, max_length=recipe.max_length)["input_ids"] for t in texts]
    bs, pad = recipe.per_device_train_batch_size, tok.pad_token_id or 0
    tokens = 0
    with torch_threads(recipe.torch_threads):
        start = time.perf_counter()
        for step in range(steps):
            batch = [encoded[(step * bs + i) % len(encoded)] for i in range(bs)]
            width = max(map(len, batch))
            ids = torch.tensor([b + [pad] * (width - len(b)) for b in batch])
            mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch])
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            tokens += int(mask.sum())
        seconds = time.perf_counter() - start
    return {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds}


def run(quick: bool = False) -> dict:
    steps, n_examples = (4, 16) if quick else (20, 64)
    with tempfile.TemporaryDirectory(prefix="bench-p5-") as home:  # the tiny model is built here, not in ~/
        trainer = in_fresh_process(_trainer, home, steps, n_examples)
        floor = in_fresh_process(_floor, home, steps, n_examples)
    tps = trainer.get("tokens_per_second")
    if not tps:
        raise RuntimeError(f"the trainer reported no tokens/s: {trainer}")
    return {
        "recipe": RECIPE,
        "steps": trainer["steps"],
        "batch_size": trainer["batch_size"],
        "tokens": trainer["tokens"],
        "tokens_per_second": round(tps, 1),
        "train_seconds": round(trainer["train_seconds"], 2),
        "wall_seconds_incl_setup": round(trainer["wall_seconds"], 2),
        "floor_tokens": floor["tokens"],
        "floor_tokens_per_second": round(floor["tokens_per_second"], 1),
        "ratio_to_floor": round(floor["tokens_per_second"] / tps, 2),
        "peak_rss_mb": trainer["peak_rss_mb"],
        "target": "none set (reported for comparison across runs and machines)",
    }


def headline(r: dict) -> str:
    """One line for results.md."""
    return (f"{r['recipe']}, {r['steps']} steps x batch {r['batch_size']}: {r['tokens_per_second']} tok/s; "
            f"plain PyTorch loop {r['floor_tokens_per_second']} tok/s (ratio {r['ratio_to_floor']})")
