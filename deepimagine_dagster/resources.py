"""Resources shared by every domain: the artefact store, the trial source, the CT Open files, the LLM backend.

Each is configurable in the UI (Launchpad) and defaults from the environment, so tests replace them with fakes and
users point them elsewhere without code changes.
"""

from __future__ import annotations

import os

import dagster as dg

from deepimagine_core.store import ENV_HOME, Store, default_home

ENV_TRIALS_SOURCE = "DEEPIMAGINE_TRIALS_SOURCE"
ENV_CT_OPEN = "DEEPIMAGINE_CT_OPEN"


class StoreResource(dg.ConfigurableResource):
    """Root folder of every artefact (tables, datasets, models, reports). Defaults to $DEEPIMAGINE_HOME."""

    home: str = ""

    def get(self) -> Store:
        return Store(self.home or default_home())


class TrialSourceResource(dg.ConfigurableResource):
    """Where studies come from: `sample` (embedded, offline), `api` (ClinicalTrials.gov API v2) or a path to an archive
    (folder, .tar/.tar.gz/.zip of NCT*.xml or *.json, JSON array, JSON Lines, optionally .gz)."""

    source: str = "sample"
    api_base_url: str = "https://clinicaltrials.gov/api/v2"
    page_size: int = 1000
    requests_per_second: float = 2.0
    condition: str = ""
    intervention: str = ""
    timeout_seconds: float = 60.0
    max_retries: int = 8
    max_studies: int = 0  # 0 = no limit


class CTOpenResource(dg.ConfigurableResource):
    """CT Open benchmark files: a file, a comma-separated list, or a folder ($DEEPIMAGINE_CT_OPEN). Empty = none."""

    paths: str = ""
    training_paths: str = ""  # CT Open files the user marks as training data (a separately reported setting)


class LLMBackendResource(dg.ConfigurableResource):
    """The LLM inference backend: kind (transformers | vllm | auto), model (hub id, local folder, or "tiny" = the tiny
    local model built in the store on first use), device, batch size, optional default LoRA adapter folder; vLLM
    serves per-call LoRA adapters only with enable_lora. Defaults from $DEEPIMAGINE_LLM_BACKEND,
    $DEEPIMAGINE_LLM_MODEL, $DEEPIMAGINE_LLM_DEVICE."""

    kind: str = "transformers"
    model: str = "tiny"
    device: str = "cpu"
    batch_size: int = 8
    adapter_path: str = ""
    enable_lora: bool = False

    def get(self, store: Store | None = None):
        """A `deepimagine_core.llm.backends.Backend` (the model loads on first generation)."""
        from deepimagine_core.llm.backend_factory import make_backend

        return make_backend(self.kind, self.model, store=store, device=self.device, batch_size=self.batch_size,
                            adapter_path=self.adapter_path or None, enable_lora=self.enable_lora or None)


def default_resources() -> dict:
    resources = {
        "store": StoreResource(home=os.environ.get(ENV_HOME, "")),
        "trial_source": TrialSourceResource(source=os.environ.get(ENV_TRIALS_SOURCE, "sample") or "sample"),
        "ct_open": CTOpenResource(paths=os.environ.get(ENV_CT_OPEN, "")),
        "llm": LLMBackendResource(
            kind=os.environ.get("DEEPIMAGINE_LLM_BACKEND") or "transformers",
            model=os.environ.get("DEEPIMAGINE_LLM_MODEL") or "tiny",
            device=os.environ.get("DEEPIMAGINE_LLM_DEVICE") or "cpu",
        ),
    }
    return resources
