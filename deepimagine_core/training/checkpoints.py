"""Checkpoints that are safe to resume from, and adapters published atomically.

Layout of one training run's folder:

    <output_dir>/run.json                    what the checkpoints belong to (recipe + data + base fingerprint)
    <output_dir>/checkpoints/checkpoint-N/   Trainer checkpoints; `.complete` is written after the Trainer finished N
    <output_dir>/adapter/                    the published adapter (README.md model card, curves, result JSON)

A checkpoint counts only if it has the `.complete` marker (written by `complete_marker_callback` after the Trainer's
save returned) and every file resuming needs; anything else is a half-written checkpoint from a killed run and is
deleted before training resumes. The adapter is assembled in a hidden folder (`publishing_dir`) and renamed into
place, so readers see the previous adapter or the new one, never a partial one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
RUN_FILE = "run.json"
COMPLETE_MARKER = ".complete"
RESULT_FILE = "training_result.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What `Trainer.train(resume_from_checkpoint=...)` reads for a LoRA run (model weights, optimiser, schedule, state);
# a tuple lists alternatives (accelerate's FSDP saves the optimiser as optimizer.bin).
REQUIRED_CHECKPOINT_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    ("optimizer.pt", "optimizer.bin"),
    "scheduler.pt",
    "trainer_state.json",
)
REQUIRED_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md", RESULT_FILE)


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_RE.match(path.name)
    return int(match.group(1)) if match else None


def is_complete_checkpoint(path: Path) -> bool:
    """True when `path` is a finished checkpoint: marker present, required files non-empty, state at the right step."""
    step = checkpoint_step(path)
    if step is None or not (path / COMPLETE_MARKER).is_file():
        return False
    def present(name: str) -> bool:
        return (path / name).is_file() and (path / name).stat().st_size > 0

    if not all(any(map(present, (n,) if isinstance(n, str) else n)) for n in REQUIRED_CHECKPOINT_FILES):
        return False
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("global_step") == step


def last_complete_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    if not checkpoints_dir.is_dir():
        return None
    found = [p for p in checkpoints_dir.iterdir() if p.is_dir() and is_complete_checkpoint(p)]
    return max(found, key=checkpoint_step) if found else None


def remove_incomplete_checkpoints(checkpoints_dir: Path) -> list[str]:
    """Delete checkpoint folders that are not complete (a killed save); returns their names."""
    removed = []
    if checkpoints_dir.is_dir():
        for path in sorted(checkpoints_dir.iterdir()):
            if path.is_dir() and checkpoint_step(path) is not None and not is_complete_checkpoint(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    return removed


def prepare_run_dir(output_dir: Path, fingerprint: str, *, resume: bool) -> Path | None:
    """Make `output_dir` ready for a run and return the checkpoint to resume from (None = start fresh).

    Checkpoints of another recipe, data set or base model (a different `fingerprint`), or all of them when
    `resume=False`, are discarded: resuming them would silently mix two runs.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints_dir = output_dir / CHECKPOINTS
    run_file = output_dir / RUN_FILE
    previous = json.loads(run_file.read_text()).get("fingerprint") if run_file.is_file() else None
    if not resume or previous != fingerprint:
        shutil.rmtree(checkpoints_dir, ignore_errors=True)
    write_json_atomic(run_file, {"fingerprint": fingerprint})
    checkpoints_dir.mkdir(exist_ok=True)
    shutil.rmtree(publishing_dir(output_dir), ignore_errors=True)
    remove_incomplete_checkpoints(checkpoints_dir)
    return last_complete_checkpoint(checkpoints_dir)


def published_result(output_dir: Path, fingerprint: str) -> dict | None:
    """The result JSON of a published adapter of this exact run (same fingerprint), else None."""
    adapter = output_dir / ADAPTER
    if not all((adapter / name).is_file() for name in REQUIRED_ADAPTER_FILES):
        return None
    result = json.loads((adapter / RESULT_FILE).read_text())
    return result if result.get("fingerprint") == fingerprint else None


def complete_marker_callback():
    """A TrainerCallback that marks each checkpoint complete once the Trainer has written all of it."""
    from transformers import TrainerCallback

    class CompleteMarker(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    _write_synced(folder / COMPLETE_MARKER, str(state.global_step))
            return control

    return CompleteMarker()


def publishing_dir(output_dir: Path) -> Path:
    """Where an adapter is assembled before `publish_dir` renames it into place (a fixed path every process of a
    distributed run agrees on; a leftover from a killed run is removed by `prepare_run_dir`)."""
    return output_dir / f".{ADAPTER}.publishing"


def publish_dir(tmp: Path, final: Path) -> None:
    """Replace `final` with the finished folder `tmp` by renames: readers see the old folder or the new, never a mix."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
