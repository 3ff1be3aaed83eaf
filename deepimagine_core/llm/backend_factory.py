"""Which backend to build: `make_backend(kind, model, ...)` (transformers, vLLM, or replicas of either) and
`backend_from_env`, the default one shared by the process. Apart from `backends.py` so that the backends and their
data-parallel wrapper (`sharding.py`, which imports the backends) do not import each other.
"""

from __future__ import annotations

import os

from deepimagine_core.llm.backends import BACKENDS, TINY_MODEL_SPEC, Backend, vllm_available
from deepimagine_core.llm.sharding import ShardedBackend
from deepimagine_core.store import Store

ENV_TENSOR_PARALLEL = "DEEPIMAGINE_VLLM_TENSOR_PARALLEL_SIZE"  # GPUs per vLLM engine (default 1)
ENV_DATA_PARALLEL = "DEEPIMAGINE_VLLM_DATA_PARALLEL_SIZE"  # vLLM engines, one process each (default 1)


def _env_size(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: expected a whole number >= 1")
    return int(value)


def make_backend(kind: str, model: str, **kw) -> Backend:
    """`kind` = transformers | vllm | auto (vLLM when it is installed and CUDA is present, else transformers).

    `tensor_parallel_size` (vLLM: GPUs per engine) and `data_parallel_size` (replicas, one process each, see
    `llm.sharding`) default for vLLM to $DEEPIMAGINE_VLLM_TENSOR_PARALLEL_SIZE / $DEEPIMAGINE_VLLM_DATA_PARALLEL_SIZE;
    `data_parallel_size` > 1 returns a `ShardedBackend` (also with transformers, e.g. CPU processes)."""
    if kind == "auto":
        kind = "vllm" if vllm_available() else "transformers"
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend kind {kind!r}; choose one of {sorted(BACKENDS)} or 'auto'")
    data_parallel = kw.pop("data_parallel_size", None)
    if kind == "vllm":
        kw.pop("device", None)
        kw.pop("batch_size", None)  # vLLM schedules its own batches
        if kw.get("tensor_parallel_size") is None:
            kw["tensor_parallel_size"] = _env_size(ENV_TENSOR_PARALLEL) or 1
        data_parallel = data_parallel or _env_size(ENV_DATA_PARALLEL)
    else:
        kw.pop("enable_lora", None)  # transformers loads any adapter on demand
    if (data_parallel or 1) > 1:
        return ShardedBackend(kind, model, data_parallel_size=data_parallel, **kw)
    return BACKENDS[kind](model, **kw)


ENV_BACKEND = "DEEPIMAGINE_LLM_BACKEND"  # transformers | vllm | auto
ENV_MODEL = "DEEPIMAGINE_LLM_MODEL"  # hub id, local folder, or "tiny"
ENV_DEVICE = "DEEPIMAGINE_LLM_DEVICE"


_SHARED: dict[tuple, Backend] = {}


def backend_from_env(store: Store | None = None, **kw) -> Backend:
    """The default backend: $DEEPIMAGINE_LLM_BACKEND (transformers), $DEEPIMAGINE_LLM_MODEL (tiny),
    $DEEPIMAGINE_LLM_DEVICE (cpu); keyword arguments override. One backend per distinct setting is shared by the
    process, so several predictors do not load the same model (or start several vLLM engines) twice."""
    kind = kw.pop("kind", None) or os.environ.get(ENV_BACKEND) or "transformers"
    model = kw.pop("model", None) or os.environ.get(ENV_MODEL) or TINY_MODEL_SPEC
    kw.setdefault("device", os.environ.get(ENV_DEVICE) or "cpu")
    store = store or Store()
    key = (kind, model, str(store.root), tuple(sorted((k, repr(v)) for k, v in kw.items())))
    if key not in _SHARED:
        _SHARED[key] = make_backend(kind, model, store=store, **kw)
    return _SHARED[key]


