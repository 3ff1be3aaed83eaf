"""Data-parallel generation: N replicas of a backend, each in its own process on its own GPUs, each answering a
contiguous share of every batch.

    backend = make_backend("vllm", "Qwen/Qwen3-8B", tensor_parallel_size=2, data_parallel_size=4)  # a ShardedBackend
    backend.generate(messages_batch, params)    # split in 4 shares, run at once, answers back in input order

This is vLLM's own recipe for offline data parallelism (one process and one `LLM` engine per replica, each seeing
only its GPUs through CUDA_VISIBLE_DEVICES), without the VLLM_DP_* coupling that only mixture-of-experts models need:
dense replicas never wait for each other. Tensor parallelism stays inside each replica (`tensor_parallel_size` GPUs
per engine), so `data_parallel_size x tensor_parallel_size` GPUs are used. Workers start on the first `generate`
(like the engines themselves) and stop with `close()`, at garbage collection, or when this process exits; a worker
that fails or dies raises here with its traceback, never a silently shorter answer list. On a host without CUDA the
replicas are CPU processes (how the tests run it with the tiny model).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import subprocess
import sys
import traceback
import weakref
from pathlib import Path
from collections.abc import Sequence
from typing import Any, TypeVar

from deepimagine_core.llm.backends import BACKENDS, Generation, Messages, SamplingParams, resolve_model

T = TypeVar("T")
_STOP = None
_JOIN_SECONDS = 30
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding deepimagine_core


def shard(items: Sequence[T], num_shards: int, index: int) -> list[T]:
    """The `index`-th of `num_shards` contiguous, nearly equal shares of `items` (sizes differ by at most one;
    concatenating the shares in order gives `items` back)."""
    if num_shards < 1 or not 0 <= index < num_shards:
        raise ValueError(f"need 0 <= index < num_shards, got index {index} of {num_shards}")
    size, extra = divmod(len(items), num_shards)
    start = index * size + min(index, extra)
    return list(items[start : start + size + (index < extra)])


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else every device torch sees (none without CUDA)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def device_groups(data_parallel_size: int, tensor_parallel_size: int, gpus: Sequence[str] | None = None) -> list:
    """CUDA_VISIBLE_DEVICES of each replica: consecutive groups of `tensor_parallel_size` GPUs (`None` per replica on
    a host without GPUs). Asking for more GPUs than there are is an error, not an oversubscribed card."""
    if data_parallel_size < 1 or tensor_parallel_size < 1:
        raise ValueError(f"parallel sizes must be >= 1, got dp={data_parallel_size}, tp={tensor_parallel_size}")
    gpus = list(visible_gpus() if gpus is None else gpus)
    if not gpus:
        return [None] * data_parallel_size
    needed = data_parallel_size * tensor_parallel_size
    if needed > len(gpus):
        raise ValueError(
            f"data_parallel_size {data_parallel_size} x tensor_parallel_size {tensor_parallel_size} = {needed} GPUs, "
            f"but only {len(gpus)} are visible ({','.join(gpus)})"
        )
    t = tensor_parallel_size
    return [",".join(gpus[i * t : (i + 1) * t]) for i in range(data_parallel_size)]


def _serve(conn) -> None:
    """A replica (run as `python -m deepimagine_core.llm.sharding FD`, GPUs already pinned by its environment):
    build the backend from the first message, then answer generate requests until told to stop."""
    kind, model, kwargs = conn.recv()
    try:
        backend = BACKENDS[kind](model, **kwargs)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent is gone
            return
        if request is _STOP:
            return
        messages_batch, params, adapter = request
        try:
            conn.send(("ok", backend.generate(messages_batch, SamplingParams(**params), adapter=adapter)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


def _shutdown(workers: list) -> None:
    for process, conn in workers:
        try:
            conn.send(_STOP)
        except (OSError, ValueError):
            pass
    for process, conn in workers:
        try:
            process.wait(_JOIN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        conn.close()
    workers.clear()


def replica_env(devices: str | None) -> dict[str, str]:
    """A replica's environment: this one, its GPUs, and the project importable from an uninstalled checkout."""
    env = dict(os.environ)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = devices
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


class ShardedBackend:
    """`data_parallel_size` replicas of backend `kind` (`vllm` on GPUs, `transformers` anywhere), one process each;
    `generate` gives each replica a contiguous share of the batch and returns every answer in input order."""

    def __init__(
        self,
        kind: str,
        model: str,
        *,
        data_parallel_size: int,
        tensor_parallel_size: int = 1,
        store=None,
        gpus: Sequence[str] | None = None,
        **backend_kwargs: Any,
    ):
        if kind not in BACKENDS:
            raise ValueError(f"unknown backend kind {kind!r}; choose one of {sorted(BACKENDS)}")
        if kind != "vllm" and tensor_parallel_size != 1:
            raise ValueError(f"tensor_parallel_size needs the vllm backend, not {kind!r}")
        self.kind = kind
        self.model_id = model  # the spec ("tiny", a hub id): traces and reports match single-process runs
        self.data_parallel_size = data_parallel_size
        self.tensor_parallel_size = tensor_parallel_size
        self.devices = device_groups(data_parallel_size, tensor_parallel_size, gpus)
        self.model_path = resolve_model(model, store)  # built once here, not raced by the replicas
        self.backend_kwargs = dict(backend_kwargs)
        if kind == "vllm":
            self.backend_kwargs["tensor_parallel_size"] = tensor_parallel_size
        self._workers: list = []
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    def _start(self) -> None:
        """One fresh interpreter per replica (`python -m deepimagine_core.llm.sharding`: no re-import of the caller's
        main module, CUDA state and env of its own), talking over a socket pair."""
        if self._workers:
            return
        for devices in self.devices:
            parent, child = multiprocessing.Pipe()
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(child.fileno())], pass_fds=[child.fileno()],
                env=replica_env(devices),
            )  # fmt: skip
            child.close()
            parent.send((self.kind, self.model_path, self.backend_kwargs))
            self._workers.append((process, parent))

    def generate(
        self, messages_batch: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[Generation]]:
        self._start()
        n = len(self._workers)
        shares = [shard(messages_batch, n, i) for i in range(n)]
        busy = [i for i in range(n) if shares[i]]
        for i in busy:
            try:
                self._workers[i][1].send((shares[i], params.to_dict(), adapter))
            except OSError:
                pass  # the replica already exited: `_receive` reports why
        answers: list[list[Generation]] = []
        failures = []
        for i in busy:  # read every replica's answer, even after a failure, so none is left mid-conversation
            status, payload = self._receive(i)
            if status == "ok" and len(payload) == len(shares[i]):
                answers += payload
            else:
                reason = payload if status != "ok" else f"{len(payload)} answers for {len(shares[i])} conversations"
                failures.append(f"replica {i} (devices {self.devices[i]}): {reason}")
        if failures:
            self.close()
            raise RuntimeError("data-parallel generation failed:\n" + "\n".join(failures))
        return answers

    def _receive(self, i: int) -> tuple[str, Any]:
        process, conn = self._workers[i]
        try:
            return conn.recv()
        except (EOFError, OSError):
            try:
                code = process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            return "error", f"the replica process died (exit code {code})"

    def close(self) -> None:
        """Stop every replica (they start again on the next `generate`)."""
        _shutdown(self._workers)

    def __enter__(self) -> ShardedBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    _serve(multiprocessing.connection.Connection(int(sys.argv[1])))
