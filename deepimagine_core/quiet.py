"""Readable runs: third-party progress bars and known third-party warnings kept off a pipeline run's console.

`quiet_third_party()` is called when the Dagster code location loads (before any heavy library is imported) and when
training starts (accelerate workers load no code location). A notebook user who never calls it keeps every bar.

- Progress bars of Hugging Face libraries (dataset preparation, "Writing model shards", ...) are switched off: they
  measure sub-second steps and, written to a log or the UI's captured stderr, turn into walls of carriage returns.
  The project's own long loops show a tqdm bar on an interactive terminal only (`disable=None`: off when stderr is not
  a TTY) and log their counts at INFO.
- Known deprecation warnings raised inside third-party code, which a user can do nothing about, are ignored by a
  filter that names the warning's category, message and module, so any other warning still shows.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["KNOWN_THIRD_PARTY_WARNINGS", "quiet_third_party"]

PROGRESS_BAR_ENV = ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS")

#: (category, message regex, module regex) of warnings raised inside libraries, not by our calls.
KNOWN_THIRD_PARTY_WARNINGS = (
    # transformers 5 renamed the property; TRL/PEFT still read the old name on every training step
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated", r"transformers\.modeling_utils"),
)


def quiet_third_party() -> None:
    for name in PROGRESS_BAR_ENV:
        os.environ.setdefault(name, "1")  # a user who sets them keeps their choice
    for category, message, module in KNOWN_THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
