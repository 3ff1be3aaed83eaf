"""What a published adapter says about itself: loss/reward curves (PNG) and a model card (README.md).

The card is the first thing a person opens in an adapter folder: base model, what data (with counts), which recipe
(the full YAML), final metrics, and provenance (library versions, host, fingerprints, the checkpoint it resumed from).
"""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path
from typing import Any

CURVES_FILE = "curves.png"


def curve_series(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per-step series worth plotting from a Trainer's `state.log_history`: loss, reward, each reward's mean."""
    series: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            wanted = key in ("loss", "reward") or (key.startswith("rewards/") and key.endswith("/mean"))
            if wanted and isinstance(value, (int, float)):
                series.setdefault(key, []).append((int(step), float(value)))
    return series


def plot_curves(log_history: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Loss (and, for GRPO, reward) against step as a PNG; None when the history holds no step logs."""
    series = curve_series(log_history)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [["loss"], ["reward"] + sorted(k for k in series if k.startswith("rewards/"))]
    panels = [[k for k in keys if k in series] for keys in panels]
    panels = [keys for keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, keys in zip(axes[0], panels):
        for key in keys:
            steps, values = zip(*series[key])
            ax.plot(steps, values, marker="o", markersize=2, label=key.removeprefix("rewards/").removesuffix("/mean"))
        ax.set_xlabel("step")
        ax.set_ylabel("loss" if keys == ["loss"] else "reward")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "datasets", "accelerate"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def model_card(
    *,
    title: str,
    kind: str,
    base_model: str,
    init_adapter: str | None,
    recipe_yaml: str,
    data_counts: dict[str, Any],
    metrics: dict[str, Any],
    provenance: dict[str, Any],
) -> str:
    """README.md text of an adapter folder (Hugging Face card front matter + readable sections)."""
    counts = "\n".join(f"| {k} | {v} |" for k, v in data_counts.items()) or "| (none) | |"
    metric_rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in metrics.items()) or "| (none) | |"
    prov = "\n".join(f"- {k}: {v}" for k, v in provenance.items())
    init = f"\nTraining started from the adapter `{init_adapter}`.\n" if init_adapter else ""
    return f"""---
base_model: {base_model}
library_name: peft
tags: [deepimagine, {kind}, lora, clinical-trials]
---

# {title}

A LoRA adapter trained by DeepImagine ({kind.upper()}) on `{base_model}`. Load it with
`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base_model}"), "<this folder>")`.
{init}
## Data

| what | count |
|---|---|
{counts}

## Metrics

| metric | value |
|---|---|
{metric_rows}

![training curves]({CURVES_FILE})

## Recipe

```yaml
{recipe_yaml.strip()}
```

## Provenance

{prov}
- written: {dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
"""


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


OPERATOR_MARKER = "## Operator"


def add_operator_section(adapter_dir: str | Path, *, family: str, factors: list[str], template: str,
                         training: str) -> None:
    """Say in a published operator's card what it does: its family, the factors whose pathway steps it takes, the
    step template it was trained on and how. Idempotent; the card is replaced atomically."""
    readme = Path(adapter_dir) / "README.md"
    text = readme.read_text(encoding="utf-8")
    if OPERATOR_MARKER in text:
        return
    section = (f"{OPERATOR_MARKER}\n\nThe `{family}` counterfactual operator of the imagination pathway: it takes the "
               f"steps that change {', '.join(factors)} (step template `{template}`: the factor before and after and "
               f"the current result in; DIRECTION / SIZE / RESULT / EXPLANATION out). Trained by {training}.\n\n")
    text = text.replace("## Data\n", section + "## Data\n", 1)
    tmp = readme.with_name(".README.md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(readme)
