"""Fine-tuning the counterfactual operators (SFT + LoRA) and the policy (GRPO with verifiable rewards).

    recipes.py      Recipe dataclass + YAML recipes (recipes/*.yaml), `load_recipe(name, overrides)`
    data.py         SFT examples (natural pairs + accepted traces), GRPO prompts (approximate pairs + questions)
    rewards.py      reward functions `(completions, **columns) -> list[float | None]` and their registry
    sft.py          `train_sft`, `train_operators` (one adapter per factor), `measure_training_throughput`
    grpo.py         `train_grpo`
    run.py          what both share: resume from the last complete checkpoint, train, publish atomically
    checkpoints.py  checkpoint validation, run folders, atomic publication
    card.py         model cards and loss/reward curves
    adapters.py     where adapters live in a store; the published ones (for predictors)
    operator_eval.py  operator vs base model: direction accuracy on held-out natural pairs
    operator_data.py  GRPO step prompts of the intervention and context operators (approximate pairs)
    operators.py    the training runs the assets start, and the one in-process vs distributed branch
    cli.py          `python -m deepimagine_core.training.cli {sft,grpo}` (also under accelerate launch / torchrun)

torch, transformers, trl, peft, datasets and accelerate are imported inside functions only.
"""
