"""An adapter's training cutoff: the latest `results_first_posted` among the trials whose data it was trained on.

Recorded beside the adapter (`training_cutoff.json`) and in its card, so the living benchmark
(`deepimagine_core.evaluation.prospective`) can score it on questions posted after that date only. Training rows carry
their trials' NCT ids in their pair or question ids (`arm|NCT01234567|...`, `natural:...`, approximate pairs name
both trials), which is what `trials_of` reads: every trial named counts as seen, anchors included.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepimagine_core.evaluation.prospective import latest_posted
from deepimagine_core.store import Store

CUTOFF_FILE = "training_cutoff.json"
CARD_FILE = "README.md"
_NCT = re.compile(r"NCT\d{8}")


def trials_of(rows: Iterable[dict[str, Any]]) -> set[str]:
    """The NCT ids named in training rows' `pair_id` / `id`."""
    return {m for row in rows for key in ("pair_id", "id") for m in _NCT.findall(str(row.get(key) or ""))}


def record_cutoff(adapter_dir: str | Path, cutoff: dt.date | None, n_trials: int) -> dict[str, Any]:
    """Write `training_cutoff.json` beside the adapter and a line in its card; returns what was recorded."""
    folder = Path(adapter_dir)
    info = {"training_cutoff": cutoff.isoformat() if cutoff else None, "trials_seen": n_trials}
    (folder / CUTOFF_FILE).write_text(json.dumps(info, indent=2))
    card = folder / CARD_FILE
    if card.is_file():
        text = re.sub(r"\n## Training cutoff\n.*?(?=\n## |\Z)", "", card.read_text(), flags=re.S)
        card.write_text(text.rstrip("\n") + f"\n\n## Training cutoff\n\nLatest results first posted among the "
                        f"{n_trials} trials it trained on: {info['training_cutoff'] or 'unknown'}. Questions posted "
                        "after that date are prospective for this adapter.\n")
    return info


def read_cutoff(adapter_dir: str | Path) -> dt.date | None:
    path = Path(adapter_dir) / CUTOFF_FILE
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get("training_cutoff")
    return dt.date.fromisoformat(value) if value else None


def record_cutoffs(store: Store, rows: list[dict[str, Any]], adapter_dirs: Iterable[str | Path]) -> dict[str, Any]:
    """The cutoff of training `rows` (from the trials table), recorded in every adapter folder given."""
    trials = trials_of(rows)
    cutoff = latest_posted(store, trials)
    info: dict[str, Any] = {}
    for folder in adapter_dirs:
        info = record_cutoff(folder, cutoff, len(trials))
    return info
