"""Which backend to build: `make_backend(kind, model, ...)` (transformers, vLLM, or replicas of either) and
`shared_backend`, the default one shared by the process. Apart from `backends.py` so that the backends and their
data-parallel wrapper (`sharding.py`, which imports the backends) do not import each other.
"""

from __future__ import annotations

from deepimagine_core.llm.backends import BACKENDS, Backend, BackendSettings, vllm_available
from deepimagine_core.llm.sharding import ShardedBackend
from deepimagine_core.store import Store


def make_backend(
    kind: str, model: str, *, vllm_tensor_parallel_size: int | None = None, vllm_data_parallel_size: int | None = None,
    **kw,
) -> Backend:
    """`kind` = transformers | vllm | auto (vLLM when it is installed and CUDA is present, else transformers).

    `tensor_parallel_size` (vLLM: GPUs per engine) and `data_parallel_size` (replicas, one process each, see
    `llm.sharding`) default for vLLM to `vllm_tensor_parallel_size` / `vllm_data_parallel_size` (the `llm` resource's
    settings); `data_parallel_size` > 1 returns a `ShardedBackend` (also with transformers, e.g. CPU processes)."""
    if kind == "auto":
        kind = "vllm" if vllm_available() else "transformers"
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend kind {kind!r}; choose one of {sorted(BACKENDS)} or 'auto'")
    data_parallel = kw.pop("data_parallel_size", None)
    if kind == "vllm":
        kw.pop("device", None)
        kw.pop("batch_size", None)  # vLLM schedules its own batches
        if kw.get("tensor_parallel_size") is None:
            kw["tensor_parallel_size"] = vllm_tensor_parallel_size or 1
        data_parallel = data_parallel or vllm_data_parallel_size
    else:
        kw.pop("enable_lora", None)  # transformers loads any adapter on demand
    if (data_parallel or 1) > 1:
        return ShardedBackend(kind, model, data_parallel_size=data_parallel, **kw)
    return BACKENDS[kind](model, **kw)


_SHARED: dict[tuple, Backend] = {}


def shared_backend(store: Store | None = None, **kw) -> Backend:
    """The default backend (`BackendSettings`: transformers, the tiny model of `store`, cpu); keyword arguments
    override. One backend per distinct setting is shared by the process, so several predictors do not load the same
    model (or start several vLLM engines) twice."""
    defaults = BackendSettings()
    kind = kw.pop("kind", None) or defaults.kind
    model = kw.pop("model", None) or defaults.model
    kw.setdefault("device", defaults.device)
    key = (kind, model, str(store.root) if store else None, tuple(sorted((k, repr(v)) for k, v in kw.items())))
    if key not in _SHARED:
        _SHARED[key] = make_backend(kind, model, store=store, **kw)
    return _SHARED[key]
