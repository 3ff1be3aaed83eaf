"""Command line for the training entry points, in one process or under `accelerate launch`:

    python -m deepimagine_core.training.cli sft  --recipe sft_cpu_tiny  --data sft.jsonl  --output-dir runs/sft_arm
    python -m deepimagine_core.training.cli grpo --recipe grpo_cpu_tiny --data grpo.jsonl --output-dir runs/grpo \\
        [--init-adapter runs/sft_arm/adapter]
    python -m deepimagine_core.training.cli operators --recipe sft_cpu_tiny --data steps.jsonl --output-dir models
    accelerate launch --config_file deepimagine_core/training/accelerate/ddp_cpu.yaml --num_processes 2 \\
        -m deepimagine_core.training.cli sft --recipe ... --data ... --output-dir ...

`sft` trains one adapter into `--output-dir/adapter`; `operators` trains the recipe's per-factor operators (or the
multi-factor one) into `--output-dir/sft_<factor>/adapter`, exactly as `train_operators`. `--data` is a JSON Lines
file of examples as `training.data` builds them (`write_jsonl`). `--set key=value` overrides a recipe field
(repeatable; values parsed as YAML). The main process prints the result (without the log history) as one JSON line
at the end. A re-run resumes from the last complete checkpoint in `--output-dir`. `--launch-dir` is for
`training.distributed`: every process writes `rank-<i>.json` there when it finishes, the main one `result.json`.
(`accelerate launch --cpu` starts ONE process whatever --num_processes says; see training.distributed.)
"""

from __future__ import annotations

import argparse
import json
import sys

from deepimagine_core.store import DEFAULT_HOME, Store
from deepimagine_core.training.data import read_jsonl
from deepimagine_core.training.recipes import RecipeError, load_recipe


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set expects key=value, got {pair!r}")
        overrides[key.strip()] = value
    return overrides


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepimagine-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("trainer", choices=["sft", "grpo", "operators"])
    parser.add_argument("--recipe", required=True, help="recipe name (training/recipes/*.yaml) or YAML path")
    parser.add_argument("--data", required=True, help="JSON Lines file of training examples")
    parser.add_argument("--output-dir", required=True, help="run folder (checkpoints/, adapter/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--name", default=None, help="adapter name for the model card (default: the trainer)")
    parser.add_argument("--init-adapter", default=None, help="GRPO: continue this SFT adapter instead of a new LoRA")
    parser.add_argument("--no-resume", action="store_true", help="discard existing checkpoints and start fresh")
    parser.add_argument("--store", default=DEFAULT_HOME, help=f"artefact root for the `tiny` model ({DEFAULT_HOME})")
    parser.add_argument("--data-counts", default=None, help="JSON object of data counts for the model card")
    parser.add_argument("--launch-dir", default=None, help="where each process reports it finished (distributed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if recipe.trainer != {"operators": "sft"}.get(args.trainer, args.trainer):
        print(f"error: recipe {recipe.name!r} is for {recipe.trainer}, not {args.trainer}", file=sys.stderr)
        return 2
    from deepimagine_core.training.distributed import init_process_state, report_finished

    state = init_process_state()  # before anything asks `is_main_process`: every rank agrees from the start
    rows = read_jsonl(args.data)
    common = dict(resume=not args.no_resume, store=Store(args.store), progress=_print)
    counts = json.loads(args.data_counts) if args.data_counts else None
    if args.trainer == "operators":
        from deepimagine_core.training.sft import train_operators

        results = train_operators(recipe, rows, args.output_dir, **common)
    elif args.trainer == "sft":
        from deepimagine_core.training.sft import train_sft

        name = args.name or "sft"
        results = {name: train_sft(recipe, rows, args.output_dir, name=name, data_counts=counts, **common)}
    else:
        from deepimagine_core.training.grpo import train_grpo

        name = args.name or "grpo"
        results = {name: train_grpo(recipe, rows, args.output_dir, init_adapter=args.init_adapter, name=name,
                                    data_counts=counts, **common)}
    if state.is_main_process:
        for result in results.values():
            summary = {k: v for k, v in result.to_dict().items() if k != "log_history"}
            print(json.dumps(summary, default=str), flush=True)
    if args.launch_dir:
        report_finished(args.launch_dir, results)
    return 0


def _print(log: dict) -> None:
    print(json.dumps({"progress": log}, default=str), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
