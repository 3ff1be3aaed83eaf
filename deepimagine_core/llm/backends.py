"""Inference backends behind one interface: batched chat generation with sampling parameters → texts and token counts.

    backend.generate(messages_batch, params, adapter=None) -> list[list[Generation]]   # n samples per conversation

- `TransformersBackend`: CPU or GPU, batched `model.generate` with LEFT padding; loads PEFT LoRA adapters by path.
- `VLLMBackend`: the offline `vllm.LLM` engine (GPU image only; imported lazily); LoRA through `LoRARequest`.

A model is a hub id or a local folder; the spec "tiny" means the tiny local model of the store (built on first use).
`adapter` selects a LoRA adapter folder for one call (the per-factor operators of the training team); None uses the
backend's default adapter, if any.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from tqdm.auto import tqdm

from deepimagine_core.llm.tiny import TINY_MODEL_SPEC, ensure_tiny_model, is_complete
from deepimagine_core.store import Store

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings shared by every backend. temperature 0 means greedy decoding."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    n: int = 1
    seed: int | None = 0
    ignore_eos: bool = False  # generate exactly max_new_tokens (throughput measurements)

    def __post_init__(self):
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1, got n={self.n}, max_new_tokens={self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence) or "length" (hit max_new_tokens)


class Backend(Protocol):
    model_id: str

    def generate(
        self, messages_batch: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[Generation]]: ...


def is_tiny_model(path: str) -> bool:
    """Whether a model folder is a tiny-model build (it carries the tiny manifest)."""
    return is_complete(path)


def resolve_model(model: str, store: Store | None = None) -> str:
    """A hub id or folder as given; "tiny" becomes the store's tiny model folder (built if missing)."""
    if model == TINY_MODEL_SPEC:
        if store is None:
            raise ValueError('the "tiny" model lives in a store: pass store=Store(root)')
        return str(ensure_tiny_model(store))
    return model


class TransformersBackend:
    """transformers `generate` in batches of `batch_size` sequences (each conversation repeated n times), left-padded,
    prompts of similar length batched together."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        batch_size: int = 8,
        adapter_path: str | None = None,
        *,
        store: Store | None = None,
        dtype: str = "auto",
        chat_template_kwargs: dict[str, Any] | None = None,
        torch_threads: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = model
        self.model_path = resolve_model(model, store)
        self.device = device
        self.batch_size = batch_size
        self.adapter_path = adapter_path
        self.dtype = dtype
        self.chat_template_kwargs = chat_template_kwargs or {}
        # The tiny model's ops are too small to gain from threads, and on a shared CPU extra threads spin and wait
        # (measured here: 32 step prompts took 1.6 s on 1 thread, 20 s on 2 under load): one thread by default.
        self.is_tiny = is_tiny_model(self.model_path)
        self.torch_threads = torch_threads or (1 if self.is_tiny else None)
        self._model = None
        self._tokenizer = None
        self._adapters: dict[str, str] = {}  # adapter folder -> PEFT adapter name

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.model_path)
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
            model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).to(self.device)
            model.eval()
            self._tokenizer, self._model = tok, model
        return self._model, self._tokenizer

    def _activate(self, adapter: str):
        """Make `adapter` (a PEFT folder) the active LoRA, loading it on first use."""
        from peft import PeftModel

        model = self._model

        adapter = os.fspath(adapter)
        if adapter not in self._adapters:
            name = f"a{len(self._adapters)}"
            if isinstance(model, PeftModel):
                model.load_adapter(adapter, adapter_name=name)
            else:
                model = self._model = PeftModel.from_pretrained(model, adapter, adapter_name=name)
                model.eval()
            self._adapters[adapter] = name
        model.set_adapter(self._adapters[adapter])
        return model

    def render(self, messages: Messages) -> str:
        """The prompt text the model sees (chat template with the assistant turn opened)."""
        _, tok = self._load()
        if not tok.chat_template:
            raise ValueError(f"model {self.model_id!r} has no chat template; use a chat/instruct model")
        return tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )

    def generate(
        self, messages_batch: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[Generation]]:
        import torch

        threads = torch.get_num_threads()
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        try:
            return self._generate(messages_batch, params, adapter)
        finally:
            torch.set_num_threads(threads)

    def _generate(
        self, messages_batch: list[Messages], params: SamplingParams, adapter: str | None
    ) -> list[list[Generation]]:
        import contextlib

        import torch

        model, tok = self._load()
        adapter = adapter or self.adapter_path
        if adapter:
            model = self._activate(adapter)
        base_only = adapter is None and self._adapters  # adapters loaded, but this call wants the base model
        prompts = [self.render(m) for m in messages_batch]
        flat = [p for p in prompts for _ in range(params.n)]
        ids = tok(flat, add_special_tokens=False)["input_ids"]
        # longest first, so each batch holds prompts of similar length (little padding); original order restored below
        order = sorted(range(len(flat)), key=lambda i: -len(ids[i]))
        eos_ids = _eos_ids(model, tok)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        results: list[Generation | None] = [None] * len(flat)
        batches = range(0, len(order), self.batch_size)
        for start in tqdm(batches, desc="generate", unit="batch", leave=False,
                          disable=True if len(batches) < 4 else None):
            chunk = order[start : start + self.batch_size]
            enc = tok.pad({"input_ids": [ids[i] for i in chunk]}, padding=True, return_tensors="pt").to(self.device)
            kwargs: dict[str, Any] = dict(max_new_tokens=params.max_new_tokens, pad_token_id=tok.pad_token_id)
            if params.temperature > 0:
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if params.ignore_eos:
                kwargs.update(min_new_tokens=params.max_new_tokens)
            else:
                kwargs.update(eos_token_id=eos_ids)
            ctx = model.disable_adapter() if base_only else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                out = model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            for i, row in zip(chunk, new):
                results[i] = _to_generation(row, len(ids[i]), eos_ids, tok, params)
        return [results[i * params.n : (i + 1) * params.n] for i in range(len(messages_batch))]


def _eos_ids(model, tok) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else [ids] if ids is not None else []
    if tok.eos_token_id is not None and tok.eos_token_id not in ids:
        ids.append(tok.eos_token_id)
    return ids


def _to_generation(row: list[int], prompt_tokens: int, eos_ids: list[int], tok, params: SamplingParams) -> Generation:
    """Cut a generated row at its first end-of-sequence token (padding follows it in a batch)."""
    stop = None if params.ignore_eos else next((i for i, t in enumerate(row) if t in eos_ids), None)
    kept = row if stop is None else row[:stop]
    text = tok.decode(kept, skip_special_tokens=True)
    n = len(kept) + (1 if stop is not None else 0)
    return Generation(text, prompt_tokens, n, "stop" if stop is not None else "length")


class VLLMBackend:
    """vLLM's offline engine (`vllm.LLM.chat`). vllm is imported only when the engine is built, so this module
    loads without it; tests inject a fake `engine`. LoRA adapters need `enable_lora=True`. `tensor_parallel_size`
    GPUs per engine; data parallelism (several engines) is `make_backend(..., data_parallel_size=N)`, which runs N of
    these in their own processes (`llm.sharding.ShardedBackend`, vLLM's offline data-parallel pattern)."""

    def __init__(
        self,
        model: str,
        *,
        adapter_path: str | None = None,
        enable_lora: bool | None = None,
        max_lora_rank: int = 64,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        store: Store | None = None,
        engine: Any = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ):
        self.model_id = model
        self.model_path = resolve_model(model, store)
        self.is_tiny = is_tiny_model(self.model_path)
        self.adapter_path = adapter_path
        self.enable_lora = bool(adapter_path) if enable_lora is None else enable_lora
        self.engine_kwargs = dict(
            model=self.model_path,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            enable_lora=self.enable_lora,
            **({"max_lora_rank": max_lora_rank} if self.enable_lora else {}),
            **({"max_model_len": max_model_len} if max_model_len else {}),
        )
        self.chat_template_kwargs = chat_template_kwargs or {}
        self._engine = engine
        self._lora_ids: dict[str, int] = {}

    @property
    def engine(self):
        if self._engine is None:
            from vllm import LLM

            self._engine = LLM(**self.engine_kwargs)
        return self._engine

    def _lora_request(self, adapter: str | None):
        if not adapter:
            return None
        if not self.enable_lora:
            raise ValueError("this VLLMBackend was built without enable_lora=True; it cannot apply an adapter")
        from vllm.lora.request import LoRARequest

        adapter = os.fspath(adapter)
        lora_id = self._lora_ids.setdefault(adapter, len(self._lora_ids) + 1)
        return LoRARequest(f"adapter{lora_id}", lora_id, adapter)

    def generate(
        self, messages_batch: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[Generation]]:
        from vllm import SamplingParams as VSamplingParams

        sampling = VSamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            ignore_eos=params.ignore_eos,
        )
        outputs = self.engine.chat(
            messages_batch,
            sampling,
            use_tqdm=True,
            lora_request=self._lora_request(adapter or self.adapter_path),
            chat_template_kwargs=self.chat_template_kwargs or None,
        )
        if len(outputs) != len(messages_batch):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(messages_batch)} conversations")
        return [
            [
                Generation(
                    text=c.text,
                    prompt_tokens=len(o.prompt_token_ids or []),
                    completion_tokens=len(c.token_ids),
                    finish_reason="length" if c.finish_reason == "length" else "stop",
                )
                for c in o.outputs
            ]
            for o in outputs
        ]


BACKENDS = {"transformers": TransformersBackend, "vllm": VLLMBackend}


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None and cuda_available()


@dataclass(frozen=True)
class BackendSettings:
    """The default LLM backend; the Dagster `llm` resource takes its defaults from here."""

    kind: str = "transformers"  # transformers | vllm | auto
    model: str = TINY_MODEL_SPEC  # hub id, local folder, or "tiny"
    device: str = "cpu"
    batch_size: int = 8
    vllm_tensor_parallel_size: int = 1  # GPUs per vLLM engine
    vllm_data_parallel_size: int = 1  # vLLM engines, one process each


def is_tiny(backend: Backend) -> bool:
    """True when the backend runs the tiny local model (by spec or by folder), whose outputs are meaningless."""
    return bool(getattr(backend, "is_tiny", False)) or getattr(backend, "model_id", "") == TINY_MODEL_SPEC
