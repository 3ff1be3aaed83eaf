"""Training on several processes: `accelerate launch` of the training CLI, built and run from one function.

    launch_training(recipe, rows, output_dir)      SFT or GRPO adapter on `recipe.num_processes` processes
    launch_operators(recipe, examples, models_dir) the per-factor SFT operators, likewise
    launch_command(...)                            the command line itself (for a shell, a docs page, a test)

The launcher writes the recipe (with every override already applied) and the examples into
`<output_dir>/.launch/`, starts `python -m accelerate.commands.launch --config_file <accelerate config>
--num_processes N -m deepimagine_core.training.cli ...`, streams its output line by line (trainer progress lines go to
`progress`, the same callback the in-process trainers take, every other line to `log`), and returns the same
`TrainResult`s as `train_sft` / `train_operators` / `train_grpo`. It fails with a `LaunchError` naming the command,
the exit code and the last lines of output, and also when fewer ranks reported finishing than were asked for. After
a launch, `.launch/` keeps its record: `recipe.yaml`, one `rank-<i>.json` per process, the main one's `result.json`.

Why the accelerate configs say `distributed_type: MULTI_GPU` even for CPU runs: `accelerate launch --cpu` (or a
config with `use_cpu: true`) always takes accelerate's *simple* launcher, which starts ONE process whatever
`--num_processes` says (multi-CPU there means MPI with `--mpirun_hostfile`). The MULTI_GPU launcher is torchrun under
the hood; on a host without CUDA its processes fall back to the gloo backend (`init_process_state` below and
transformers' `use_cpu`), which is what `accelerate/ddp_cpu.yaml` relies on and the two-process CPU test checks.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from deepimagine_core.training.checkpoints import write_json_atomic
from deepimagine_core.training.data import write_jsonl
from deepimagine_core.training.recipes import Recipe, world_size_problems
from deepimagine_core.training.run import Progress, TrainResult

ACCELERATE_DIR = Path(__file__).parent / "accelerate"
CLI_MODULE = "deepimagine_core.training.cli"
LAUNCH_DIR = ".launch"
RESULT_FILE = "result.json"
PROGRESS_KEY = "progress"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding deepimagine_core (an uninstalled checkout)
_TAIL_LINES = 40


class LaunchError(RuntimeError):
    """A distributed run that could not start, failed, or did not run on every process it asked for."""


def available_accelerate_configs() -> list[str]:
    return sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml"))


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def accelerate_config_path(recipe: Recipe) -> Path:
    """The recipe's accelerate config: a name in training/accelerate/ or a YAML path; empty = DDP for this host."""
    name = recipe.accelerate_config or ("ddp_gpu" if cuda_device_count() else "ddp_cpu")
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = ACCELERATE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise LaunchError(
            f"recipe {recipe.name!r}: no accelerate config {name!r} (looked for {path}); "
            f"available: {available_accelerate_configs()}"
        )
    return path


def resolve_num_processes(recipe: Recipe) -> int:
    """`recipe.num_processes`, with 0 meaning one process per visible GPU (1 on a host without CUDA)."""
    return recipe.num_processes or max(cuda_device_count(), 1)


def init_process_state():
    """accelerate's process state for this process, on CPU (gloo) when there is no CUDA. Called first by the CLI:
    a bare `PartialState()` on a CUDA-less host under torchrun reports a single process, so every rank would think
    it is the main one until the trainer re-initialises the state."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def report_finished(launch_dir: str | Path, results: Mapping[str, TrainResult]) -> None:
    """Every process writes `rank-<i>.json`; the main one first writes `result.json` (name -> TrainResult)."""
    state = init_process_state()
    folder = Path(launch_dir)
    if state.is_main_process:
        write_json_atomic(folder / RESULT_FILE, {name: r.to_dict() for name, r in results.items()})
    write_json_atomic(
        folder / f"rank-{state.process_index}.json",
        {"rank": state.process_index, "world_size": state.num_processes, "device": str(state.device),
         "backend": state.backend},
    )


def preflight(recipe: Recipe, num_processes: int, config_file: Path) -> None:
    """Clear errors before N processes start: impossible batch sizes, more processes than GPUs, a sharded
    (FSDP / DeepSpeed) config on a host without CUDA (accelerate would silently fall back to DDP), vLLM missing."""
    if num_processes < 1:
        raise LaunchError(f"num_processes must be >= 1, got {num_processes}")
    problems = world_size_problems(recipe, num_processes)
    gpus = cuda_device_count()
    if gpus and num_processes > gpus:
        problems.append(f"{num_processes} processes but only {gpus} visible GPU(s); one process per GPU")
    kind = str((yaml.safe_load(config_file.read_text()) or {}).get("distributed_type", "NO"))
    if not gpus and kind in ("FSDP", "DEEPSPEED") and num_processes > 1:
        problems.append(f"{config_file.name} ({kind}) needs CUDA; use accelerate_config: ddp_cpu on this host")
    if recipe.trainer == "grpo" and recipe.use_vllm:
        import importlib.util

        if not gpus or importlib.util.find_spec("vllm") is None:
            problems.append("use_vllm needs CUDA and vllm (the GPU image); set use_vllm: false on this host")
    if problems:
        raise LaunchError(f"recipe {recipe.name!r} on {num_processes} process(es): " + "; ".join(problems))


def launch_command(
    cli_args: list[str], *, num_processes: int, config_file: str | Path, main_process_port: int = 0
) -> list[str]:
    """`accelerate launch` of the training CLI with `cli_args` (one process: the CLI itself, no launcher).
    Port 0 lets accelerate pick a free port, so several launches on one host do not collide."""
    if num_processes == 1:
        return [sys.executable, "-m", CLI_MODULE, *cli_args]
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(config_file),
        "--num_processes", str(num_processes),
        "--num_machines", "1",
        "--main_process_port", str(main_process_port),
        "-m", CLI_MODULE, *cli_args,
    ]  # fmt: skip


def launch_training(
    recipe: Recipe,
    rows: list[dict[str, Any]],
    output_dir: str | Path,
    *,
    num_processes: int | None = None,
    name: str | None = None,
    init_adapter: str | Path | None = None,
    data_counts: Mapping[str, Any] | None = None,
    resume: bool = True,
    store_root: str | Path | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train `recipe` (SFT or GRPO) on `rows` into `output_dir/adapter` with `num_processes` processes (default
    `recipe.num_processes`, 0 = one per GPU), exactly as `train_sft` / `train_grpo` would in one process."""
    extra = ["--name", name or recipe.trainer]
    if init_adapter:
        extra += ["--init-adapter", str(init_adapter)]
    if data_counts:
        extra += ["--data-counts", json.dumps(dict(data_counts), default=str)]
    results = _launch(recipe.trainer, recipe, rows, output_dir, extra, num_processes=num_processes, resume=resume,
                      store_root=store_root, progress=progress, log=log)
    (result,) = results.values()
    return result


def launch_operators(
    recipe: Recipe,
    examples: list[dict[str, Any]],
    models_dir: str | Path,
    *,
    num_processes: int | None = None,
    resume: bool = True,
    store_root: str | Path | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, TrainResult]:
    """`train_operators` on several processes: every operator of the recipe, one after the other, in one launch."""
    if recipe.trainer != "sft":
        raise ValueError(f"recipe {recipe.name!r} is a {recipe.trainer} recipe, not an SFT one")
    return _launch("operators", recipe, examples, models_dir, [], num_processes=num_processes, resume=resume,
                   store_root=store_root, progress=progress, log=log)


def _launch(
    mode: str,
    recipe: Recipe,
    rows: list[dict[str, Any]],
    output_dir: str | Path,
    extra: list[str],
    *,
    num_processes: int | None,
    resume: bool,
    store_root: str | Path | None,
    progress: Progress | None,
    log: Callable[[str], None] | None,
) -> dict[str, TrainResult]:
    n = resolve_num_processes(recipe) if num_processes is None else num_processes
    config_file = accelerate_config_path(recipe)
    preflight(recipe, n, config_file)
    output_dir = Path(output_dir)
    launch_dir = output_dir / LAUNCH_DIR
    shutil.rmtree(launch_dir, ignore_errors=True)  # a previous launch's markers must not count for this one
    launch_dir.mkdir(parents=True)
    recipe_file = launch_dir / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    data_file = write_jsonl(rows, launch_dir / "data.jsonl")
    cli_args = [mode, "--recipe", str(recipe_file), "--data", str(data_file), "--output-dir", str(output_dir),
                "--launch-dir", str(launch_dir), *extra]
    if not resume:
        cli_args.append("--no-resume")
    if store_root:
        cli_args += ["--store", str(store_root)]
    command = launch_command(cli_args, num_processes=n, config_file=config_file)
    run_streaming(command, env=launch_env(), progress=progress, log=log)
    results = _collect(launch_dir, n, command)
    data_file.unlink()  # the recipe, rank reports and result stay as the record of the last launch
    return results


def launch_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: this one, unbuffered output, and the project importable from an uninstalled checkout."""
    env = dict(os.environ if environ is None else environ)
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def parse_progress(line: str) -> dict[str, Any] | None:
    """The trainer progress entry of a CLI output line (`{"progress": {...}}`, possibly after the unterminated
    progress bar that shares stderr with it), else None."""
    start = line.find('{"' + PROGRESS_KEY + '"')
    if start < 0:
        return None
    try:
        entry, _ = json.JSONDecoder().raw_decode(line, start)
    except ValueError:
        return None
    return entry.get(PROGRESS_KEY) if isinstance(entry, dict) and isinstance(entry.get(PROGRESS_KEY), dict) else None


def run_streaming(
    command: list[str],
    *,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """Run `command` with stdout and stderr merged, handing each line to `progress` (trainer progress) or `log`
    (anything else; default: this process's stderr). Raises `LaunchError` with the output's tail on failure; if this
    process is interrupted, the whole process group of the launch is stopped, never left training on its own."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            command, env=dict(env) if env is not None else None, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", bufsize=1, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise LaunchError(f"could not start {' '.join(command)}: {exc}") from exc
    try:
        for raw in proc.stdout:
            for line in raw.rstrip("\n").split("\r"):  # tqdm redraws with \r: keep only real lines
                if not line.strip():
                    continue
                entry = parse_progress(line)
                if entry is not None:
                    if progress is not None:
                        progress(entry)
                    continue
                tail.append(line)
                log(line)
        code = proc.wait()
    except BaseException:
        _stop_group(proc)
        raise
    if code != 0:
        raise LaunchError(
            f"training launch failed with exit code {code}: {' '.join(command)}\nlast output:\n" + "\n".join(tail)
        )


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the launch's process group (launcher and every rank), SIGKILL whatever is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _collect(launch_dir: Path, num_processes: int, command: list[str]) -> dict[str, TrainResult]:
    """The main process's results, after checking that every rank of a `num_processes` world finished."""
    ranks = sorted(launch_dir.glob("rank-*.json"))
    worlds = {json.loads(p.read_text())["world_size"] for p in ranks}
    if len(ranks) != num_processes or worlds != {num_processes}:
        raise LaunchError(
            f"asked for {num_processes} process(es) but {len(ranks)} finished in world size(s) {sorted(worlds)}: "
            f"{' '.join(command)}"
        )
    result_file = launch_dir / RESULT_FILE
    if not result_file.is_file():
        raise LaunchError(f"the main process wrote no {RESULT_FILE}: {' '.join(command)}")
    return {name: TrainResult.from_dict(data) for name, data in json.loads(result_file.read_text()).items()}
