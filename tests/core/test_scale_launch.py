"""How distributed runs are launched, without starting one: the accelerate configs resolve to the launchers and plugins
they are meant for, commands, preflight errors, streamed output and failures, the rank check, recipe fields."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from deepimagine_core.training import distributed
from deepimagine_core.training.distributed import (
    ACCELERATE_DIR,
    LaunchError,
    accelerate_config_path,
    launch_command,
    parse_progress,
    preflight,
    resolve_num_processes,
    run_streaming,
)
from deepimagine_core.training.recipes import RecipeError, load_recipe


def validated_launch(argv: list[str]):
    """accelerate's own parsing and validation of `accelerate launch ARGV` (what picks the launcher)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args, _, _ = _validate_launch_command(launch_command_parser().parse_args([*argv, "-m", "x"]))
    return args


def test_ddp_cpu_config_takes_the_multi_process_launcher_where_cpu_flag_takes_the_single_one():
    # `accelerate launch --cpu --num_processes 2` validates to the simple launcher: ONE process (the bug we avoid)
    cpu_flag = validated_launch(["--cpu", "--num_processes", "2"])
    assert cpu_flag.cpu and not cpu_flag.multi_gpu
    ours = validated_launch(["--config_file", str(ACCELERATE_DIR / "ddp_cpu.yaml"), "--num_processes", "2"])
    assert ours.multi_gpu and not ours.cpu and ours.num_processes == 2 and ours.mixed_precision == "no"


def test_every_shipped_accelerate_config_loads_and_fsdp_resolves_to_an_fsdp2_plugin(monkeypatch):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    kinds = {name: load_config_from_file(str(ACCELERATE_DIR / f"{name}.yaml")).distributed_type.value
             for name in distributed.available_accelerate_configs()}
    assert kinds == {"ddp_cpu": "MULTI_GPU", "ddp_gpu": "MULTI_GPU", "fsdp2_bf16": "FSDP"}
    args = validated_launch(["--config_file", str(ACCELERATE_DIR / "fsdp2_bf16.yaml"), "--num_processes", "8",
                             "--main_process_port", "0"])
    assert args.use_fsdp and args.mixed_precision == "bf16"
    for key, value in prepare_multi_gpu_env(args).items():
        if key.startswith(("ACCELERATE_", "FSDP_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()  # what every rank builds from the launcher's environment
    assert plugin.fsdp_version == 2 and plugin.state_dict_type.name == "FULL_STATE_DICT"
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"


def test_commands_configs_and_process_counts(tmp_path):
    recipe = load_recipe("sft_cpu_tiny", {"num_processes": 2})
    assert accelerate_config_path(recipe).name == "ddp_cpu.yaml"  # no CUDA here
    assert resolve_num_processes(recipe) == 2
    assert resolve_num_processes(load_recipe("sft_gpu_qwen3_8b")) == 1  # 0 = every GPU; none here
    command = launch_command(["sft", "--recipe", "r.yaml"], num_processes=2, config_file="c.yaml")
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and "--cpu" not in command
    assert command[command.index("--num_processes") + 1] == "2"
    assert command[-5:] == ["-m", "deepimagine_core.training.cli", "sft", "--recipe", "r.yaml"]
    assert launch_command(["sft"], num_processes=1, config_file="c.yaml") == [
        sys.executable, "-m", "deepimagine_core.training.cli", "sft"]
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: MULTI_GPU\n")
    assert accelerate_config_path(load_recipe("sft_cpu_tiny", {"accelerate_config": str(own)})) == own
    with pytest.raises(LaunchError, match="no accelerate config 'zero9'.*available: \\['ddp_cpu'"):
        accelerate_config_path(load_recipe("sft_cpu_tiny", {"accelerate_config": "zero9"}))


def test_preflight_refuses_what_would_fail_or_silently_degrade():
    fsdp = load_recipe("sft_cpu_tiny", {"accelerate_config": "fsdp2_bf16"})
    with pytest.raises(LaunchError, match="fsdp2_bf16.yaml \\(FSDP\\) needs CUDA"):
        preflight(fsdp, 2, accelerate_config_path(fsdp))
    vllm = load_recipe("grpo_cpu_tiny", {"use_vllm": True})
    with pytest.raises(LaunchError, match="use_vllm needs CUDA and vllm"):
        preflight(vllm, 1, accelerate_config_path(vllm))
    grpo = load_recipe("grpo_cpu_tiny")  # 4 completions per round cannot feed 2 processes x 4 per device
    with pytest.raises(LaunchError, match="generation_batch_size 4 must be divisible by the global batch"):
        preflight(grpo, 2, accelerate_config_path(grpo))
    with pytest.raises(LaunchError, match="num_processes must be >= 1"):
        preflight(grpo, 0, accelerate_config_path(grpo))
    preflight(load_recipe("grpo_cpu_tiny", {"per_device_train_batch_size": 2, "generation_batch_size": 4}), 2,
              accelerate_config_path(grpo))


def test_recipe_fields_for_distributed_runs():
    with pytest.raises(RecipeError, match="num_processes must be >= 0"):
        load_recipe("sft_cpu_tiny", {"num_processes": -1})
    with pytest.raises(RecipeError, match="vllm_mode must be one of \\('colocate', 'server'\\)"):
        load_recipe("grpo_cpu_tiny", {"vllm_mode": "remote"})
    with pytest.raises(RecipeError, match="global batch"):
        load_recipe("grpo_cpu_tiny", {"num_processes": 2})
    grpo = load_recipe("grpo_gpu_qwen3_8b", {"vllm_mode": "server"})
    assert grpo.num_processes == 0 and grpo.use_vllm and "accelerate_config" in grpo.to_yaml()

def test_a_launched_run_rereads_the_same_recipe(tmp_path):
    # the launcher hands the child the recipe as YAML: same settings and fingerprint, so resume and reuse work
    # whether a run was trained in-process or launched
    recipe = load_recipe("sft_gpu_qwen3_8b", {"learning_rate": 3e-5, "warmup_steps": 0.03, "num_processes": 4})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    reread = load_recipe(path)
    assert reread == recipe and reread.fingerprint() == recipe.fingerprint()


def test_progress_lines_are_parsed_even_after_a_progress_bar():
    entry = {"step": 3, "loss": 1.5}
    assert parse_progress(" 50%|#####     | 2/4 " + json.dumps({"progress": entry})) == entry
    assert parse_progress(json.dumps({"progress": entry})) == entry
    assert parse_progress("{'loss': '1.5'}") is None and parse_progress('{"progress": [1]}') is None


def test_streaming_hands_lines_over_and_failures_carry_the_output_tail():
    lines, progress = [], []
    script = ("import json, sys\n"
              "print('starting')\n"
              "sys.stderr.write('10%|#\\r20%|##' + json.dumps({'progress': {'step': 1}}) + '\\n')\n")
    run_streaming([sys.executable, "-c", script], progress=progress.append, log=lines.append)
    assert lines == ["starting", "10%|#"] and progress == [{"step": 1}]
    with pytest.raises(LaunchError, match="(?s)exit code 3.*last output:\nbefore the crash"):
        run_streaming([sys.executable, "-c", "print('before the crash'); raise SystemExit(3)"], log=lines.append)
    with pytest.raises(LaunchError, match="could not start"):
        run_streaming(["/nonexistent/python"])


def test_a_launch_where_a_rank_never_finished_is_an_error(tmp_path):
    (tmp_path / "rank-0.json").write_text(json.dumps({"rank": 0, "world_size": 1}))
    (tmp_path / distributed.RESULT_FILE).write_text("{}")
    # what `accelerate launch --cpu --num_processes 2` produced: one process, in a world of one
    with pytest.raises(LaunchError, match="asked for 2 process\\(es\\) but 1 finished in world size\\(s\\) \\[1\\]"):
        distributed._collect(tmp_path, 2, ["accelerate", "launch"])
    assert distributed._collect(tmp_path, 1, ["python"]) == {}


def test_the_child_environment_finds_this_checkout():
    env = distributed.launch_env({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(":") == [str(distributed.PROJECT_ROOT), "/elsewhere"]
    assert env["PYTHONUNBUFFERED"] == "1"


def test_the_cli_reports_its_rank_and_result_like_a_launched_process(tmp_path, tmp_path_factory):
    from deepimagine_core.llm import tiny
    from deepimagine_core.training import cli
    from deepimagine_core.training.data import synthetic_sft_examples, write_jsonl

    model = tiny.build_tiny_model(tmp_path_factory.getbasetemp() / "llm_tiny_model")
    data = write_jsonl(synthetic_sft_examples(4), tmp_path / "data.jsonl")
    launch = tmp_path / "launch"
    launch.mkdir()
    code = cli.main(["sft", "--recipe", "sft_cpu_tiny", "--data", str(data), "--output-dir", str(tmp_path / "run"),
                     "--set", f"model_name_or_path={model}", "--set", "max_steps=1", "--name", "sft_arm",
                     "--data-counts", '{"pairs": 4}', "--launch-dir", str(launch)])
    assert code == 0
    assert json.loads((launch / "rank-0.json").read_text())["world_size"] == 1
    (result,) = distributed._collect(launch, 1, ["cli"]).values()
    assert result.name == "sft_arm" and result.global_step == 1
    # one step of batch 2 reaches 2 of the 4 examples (training.run.reachable_rows)
    assert result.data_counts == {"examples": 2, "examples_available": 4, "pairs": 4}
    assert cli.main(["operators", "--recipe", "grpo_cpu_tiny", "--data", str(data), "--output-dir", "x"]) == 2
