"""Resources shared by every domain: the artefact store, the trial source, the CT Open files, the LLM backend.

Each is configurable in the UI (Launchpad) and defaults from the environment, so tests replace them with fakes and
users point them elsewhere without code changes. This module (with `executors.py` for the run worker) is the one
place that reads the `DEEPIMAGINE_*` variables; fields default to core's settings (`store.DEFAULT_HOME`,
`llm.backends.BackendSettings`), and core functions receive a `Store` and settings as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from deepimagine_core.ctgov.api import ApiSettings
from deepimagine_core.ctgov.parse_pool import ParseSettings
from deepimagine_core.llm.backends import BackendSettings
from deepimagine_core.store import DEFAULT_HOME, Store

ENV_HOME = "DEEPIMAGINE_HOME"
ENV_TRIALS_SOURCE = "DEEPIMAGINE_TRIALS_SOURCE"
ENV_CT_OPEN = "DEEPIMAGINE_CT_OPEN"
ENV_MAX_QUARANTINE_RATE = "DEEPIMAGINE_MAX_QUARANTINE_RATE"
DEFAULT_MAX_QUARANTINE_RATE = 0.05
ENV_LLM_BACKEND = "DEEPIMAGINE_LLM_BACKEND"  # transformers | vllm | auto
ENV_LLM_MODEL = "DEEPIMAGINE_LLM_MODEL"  # hub id, local folder, or "tiny"
ENV_LLM_DEVICE = "DEEPIMAGINE_LLM_DEVICE"
ENV_VLLM_TENSOR_PARALLEL = "DEEPIMAGINE_VLLM_TENSOR_PARALLEL_SIZE"  # GPUs per vLLM engine (default 1)
ENV_VLLM_DATA_PARALLEL = "DEEPIMAGINE_VLLM_DATA_PARALLEL_SIZE"  # vLLM engines, one process each (default 1)

ENV_AUTOMATION = "DEEPIMAGINE_AUTOMATION"  # on (default) | off: the automation sensor starts stopped
ENV_AUTOMATE_GPU = "DEEPIMAGINE_AUTOMATE_GPU"  # 1 | true | on: GPU assets (traces, training, LLM report) automated too

_LLM, _API, _PARSE = BackendSettings(), ApiSettings(), ParseSettings()  # core's defaults


def home_from_env(environ: Mapping[str, str] | None = None) -> str:
    """$DEEPIMAGINE_HOME, else `store.DEFAULT_HOME` (~/.deepimagine), as an absolute path."""
    env = os.environ if environ is None else environ
    return os.path.abspath(os.path.expanduser(env.get(ENV_HOME) or DEFAULT_HOME))


def automation_from_env(environ: Mapping[str, str] | None = None) -> dict[str, bool]:
    """{running, automate_gpu} for `automation.with_automation`: $DEEPIMAGINE_AUTOMATION (default on) and
    $DEEPIMAGINE_AUTOMATE_GPU (default off)."""
    env = os.environ if environ is None else environ

    def flag(name: str, default: bool) -> bool:
        value = env.get(name, "").strip().lower()
        if not value:
            return default
        if value not in ("1", "true", "on", "yes", "0", "false", "off", "no"):
            raise ValueError(f"{name}={value!r}: expected on or off")
        return value in ("1", "true", "on", "yes")

    return {"running": flag(ENV_AUTOMATION, True), "automate_gpu": flag(ENV_AUTOMATE_GPU, False)}


def _env_size(name: str) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: expected a whole number >= 1")
    return int(value)


class StoreResource(dg.ConfigurableResource):
    """Root folder of every artefact (tables, datasets, models, reports). Defaults to $DEEPIMAGINE_HOME."""

    home: str = ""

    def get(self) -> Store:
        return Store(self.home or home_from_env())


class TrialSourceResource(dg.ConfigurableResource):
    """Where studies come from: `sample` (embedded, offline), `api` (ClinicalTrials.gov API v2) or a path to an archive
    (folder, .tar/.tar.gz/.zip of NCT*.xml or *.json, JSON array, JSON Lines, optionally .gz).

    A source that yields no study fails the refresh and publishes nothing. So does one whose stream stopped early
    (truncated archive, cut JSON array / JSON Lines) unless `allow_partial` is set: then the studies read before the
    stop are published (the stop is logged as a warning and kept in `quarantine`).

    `workers`: processes that parse the records (0 = one per core); the tables are the same whatever the number."""

    source: str = "sample"
    allow_partial: bool = False
    workers: int = _PARSE.workers
    max_quarantine_rate: float = DEFAULT_MAX_QUARANTINE_RATE  # above it the (blocking) quarantine check fails
    api_base_url: str = _API.base_url
    page_size: int = _API.page_size
    requests_per_second: float = _API.requests_per_second
    condition: str = _API.condition
    intervention: str = _API.intervention
    timeout_seconds: float = _API.timeout_seconds
    max_retries: int = _API.max_retries
    max_studies: int = _API.max_studies  # 0 = no limit

    def parse_settings(self) -> ParseSettings:
        return ParseSettings(workers=self.workers)


class CTOpenResource(dg.ConfigurableResource):
    """CT Open benchmark files: a file, a comma-separated list, or a folder ($DEEPIMAGINE_CT_OPEN). Empty = none."""

    paths: str = ""
    training_paths: str = ""  # CT Open files the user marks as training data (a separately reported setting)


class LLMBackendResource(dg.ConfigurableResource):
    """The LLM inference backend: kind (transformers | vllm | auto), model (hub id, local folder, or "tiny" = the tiny
    local model built in the store on first use), device, batch size, optional default LoRA adapter folder; vLLM
    serves per-call LoRA adapters only with enable_lora. Defaults from $DEEPIMAGINE_LLM_BACKEND,
    $DEEPIMAGINE_LLM_MODEL, $DEEPIMAGINE_LLM_DEVICE."""

    kind: str = _LLM.kind
    model: str = _LLM.model
    device: str = _LLM.device
    batch_size: int = _LLM.batch_size
    adapter_path: str = ""
    enable_lora: bool = False
    vllm_tensor_parallel_size: int = _LLM.vllm_tensor_parallel_size  # $DEEPIMAGINE_VLLM_TENSOR_PARALLEL_SIZE
    vllm_data_parallel_size: int = _LLM.vllm_data_parallel_size  # $DEEPIMAGINE_VLLM_DATA_PARALLEL_SIZE

    def get(self, store: Store | None = None):
        """A `deepimagine_core.llm.backends.Backend` (the model loads on first generation)."""
        from deepimagine_core.llm.backend_factory import make_backend

        return make_backend(self.kind, self.model, store=store, device=self.device, batch_size=self.batch_size,
                            adapter_path=self.adapter_path or None, enable_lora=self.enable_lora or None,
                            vllm_tensor_parallel_size=self.vllm_tensor_parallel_size,
                            vllm_data_parallel_size=self.vllm_data_parallel_size)


def default_resources() -> dict:
    resources = {
        "store": StoreResource(home=os.environ.get(ENV_HOME, "")),
        "trial_source": TrialSourceResource(
            source=os.environ.get(ENV_TRIALS_SOURCE, "sample") or "sample",
            max_quarantine_rate=float(os.environ.get(ENV_MAX_QUARANTINE_RATE) or DEFAULT_MAX_QUARANTINE_RATE),
        ),
        "ct_open": CTOpenResource(paths=os.environ.get(ENV_CT_OPEN, "")),
        "llm": LLMBackendResource(
            kind=os.environ.get(ENV_LLM_BACKEND) or _LLM.kind,
            model=os.environ.get(ENV_LLM_MODEL) or _LLM.model,
            device=os.environ.get(ENV_LLM_DEVICE) or _LLM.device,
            vllm_tensor_parallel_size=_env_size(ENV_VLLM_TENSOR_PARALLEL),
            vllm_data_parallel_size=_env_size(ENV_VLLM_DATA_PARALLEL),
        ),
    }
    return resources
