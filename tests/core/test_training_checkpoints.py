"""Checkpoint validation and atomic publication, on hand-made folders (no model, no trainer)."""

from __future__ import annotations

import json
from pathlib import Path

from deepimagine_core.training.checkpoints import (
    ADAPTER,
    COMPLETE_MARKER,
    REQUIRED_ADAPTER_FILES,
    REQUIRED_CHECKPOINT_FILES,
    RESULT_FILE,
    is_complete_checkpoint,
    last_complete_checkpoint,
    prepare_run_dir,
    publish_dir,
    published_result,
    publishing_dir,
)


def make_checkpoint(
    root: Path, step: int, *, marker: bool = True, state_step: int | None = None, alternative: int = 0
) -> Path:
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in REQUIRED_CHECKPOINT_FILES:
        (folder / (name if isinstance(name, str) else name[alternative])).write_text("x")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step if state_step is None else state_step}))
    if marker:
        (folder / COMPLETE_MARKER).write_text(str(step))
    return folder


def test_a_checkpoint_is_complete_only_with_marker_files_and_matching_state(tmp_path):
    assert is_complete_checkpoint(make_checkpoint(tmp_path, 5))
    assert not is_complete_checkpoint(make_checkpoint(tmp_path, 6, marker=False))  # killed before the save ended
    assert not is_complete_checkpoint(make_checkpoint(tmp_path, 7, state_step=3))
    emptied = make_checkpoint(tmp_path, 8)
    (emptied / "optimizer.pt").write_text("")
    assert not is_complete_checkpoint(emptied)
    missing = make_checkpoint(tmp_path, 9)
    (missing / "adapter_model.safetensors").unlink()
    assert not is_complete_checkpoint(missing)
    fsdp = make_checkpoint(tmp_path / "fsdp", 11, alternative=1)  # optimizer.bin, as accelerate's FSDP writes it
    assert (fsdp / "optimizer.bin").is_file() and is_complete_checkpoint(fsdp)
    garbled = make_checkpoint(tmp_path, 10)
    (garbled / "trainer_state.json").write_text("{")
    assert not is_complete_checkpoint(garbled)
    assert not is_complete_checkpoint(tmp_path)  # not a checkpoint folder name
    assert last_complete_checkpoint(tmp_path).name == "checkpoint-5"
    assert last_complete_checkpoint(tmp_path / "absent") is None


def test_prepare_run_dir_resumes_same_run_and_discards_others(tmp_path):
    ckpts = tmp_path / "checkpoints"
    assert prepare_run_dir(tmp_path, "fp1", resume=True) is None
    make_checkpoint(ckpts, 3)
    make_checkpoint(ckpts, 6)
    make_checkpoint(ckpts, 9, marker=False)  # half-written by a killed run
    publishing_dir(tmp_path).mkdir()  # a publication interrupted before its rename
    resume_from = prepare_run_dir(tmp_path, "fp1", resume=True)
    assert resume_from == ckpts / "checkpoint-6"
    assert not (ckpts / "checkpoint-9").exists() and not publishing_dir(tmp_path).exists()
    # another recipe / data / base: the old checkpoints must not be mixed in
    assert prepare_run_dir(tmp_path, "fp2", resume=True) is None and list(ckpts.iterdir()) == []
    make_checkpoint(ckpts, 3)
    assert prepare_run_dir(tmp_path, "fp2", resume=False) is None and list(ckpts.iterdir()) == []


def test_publish_dir_replaces_the_old_adapter_whole(tmp_path):
    final = tmp_path / ADAPTER
    final.mkdir()
    (final / "old.txt").write_text("old")
    new = tmp_path / "staging"
    new.mkdir()
    (new / "new.txt").write_text("new")
    publish_dir(new, final)
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert not new.exists() and sorted(p.name for p in tmp_path.iterdir()) == [ADAPTER]


def test_published_result_needs_every_file_and_the_same_fingerprint(tmp_path):
    adapter = tmp_path / ADAPTER
    adapter.mkdir()
    for name in REQUIRED_ADAPTER_FILES:
        (adapter / name).write_text("x")
    (adapter / RESULT_FILE).write_text(json.dumps({"fingerprint": "abc", "global_step": 4}))
    assert published_result(tmp_path, "abc")["global_step"] == 4
    assert published_result(tmp_path, "other") is None
    (adapter / "README.md").unlink()
    assert published_result(tmp_path, "abc") is None
