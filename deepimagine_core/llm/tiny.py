"""The tiny local model: a 2-layer Qwen3 with a BPE tokenizer trained here, on project text, with no download.

Tests and the offline default run every LLM step (generation, traces, SFT, GRPO, the imagination pathway) with it, so
the whole graph works on a CPU in seconds. Its weights are random: its predictions are meaningless by design.

The folder is a normal Hugging Face checkpoint, loadable offline with
`AutoModelForCausalLM.from_pretrained(path)` and `AutoTokenizer.from_pretrained(path)`, and it has a Qwen-style chat
template (`<|im_start|>role\\n...<|im_end|>`) so `apply_chat_template` works. It is built in a temporary folder beside
the target and renamed into place, so a killed build never leaves a half model that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

TINY_MODEL_SPEC = "tiny"
TEMPLATES_DIR = Path(__file__).parent / "templates"
MANIFEST = "deepimagine_tiny.json"  # written last: its presence marks a complete folder
TINY_VERSION = "tiny-qwen3-v1"
VOCAB_SIZE = 4096  # ~3.4 characters per token on prompts (512 gives 1.7: twice the tokens, 4x the attention)

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END]

# Qwen-style chat template. The `{% generation %}` block marks assistant text so TRL's `assistant_only_loss` works.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{%- else %}{{- message['content'] + '<|im_end|>' }}{%- endif %}"
    "{{- '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

MODEL_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
)


def bundled_corpus() -> list[str]:
    """Project text the tokenizer learns from: the bundled corpus (trial titles, arms, outcomes from the embedded
    sample, answer-format sentences) plus every prompt template shipped in `llm/templates/`."""
    texts: list[str] = []
    folder = TEMPLATES_DIR
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith((".txt", ".md", ".jinja")):
            texts.extend(line for line in entry.read_text(encoding="utf-8").splitlines() if line.strip())
    if not texts:
        raise RuntimeError(f"no tokenizer corpus found in {folder} (package data missing?)")
    return texts


def is_complete(path: str | os.PathLike) -> bool:
    """True when `path` holds a finished tiny-model build (the manifest is written last)."""
    return (Path(path) / MANIFEST).is_file()


def _train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (every string encodes; nothing maps to unknown), wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START],
        padding_side="left",
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _write_model(folder: Path, seed: int, texts: list[str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    tokenizer = _train_tokenizer(texts, VOCAB_SIZE)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        **MODEL_CONFIG,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, bos_token_id=pad_id, do_sample=True, temperature=1.0
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    manifest = {
        "version": TINY_VERSION,
        "seed": seed,
        "vocab_size": len(tokenizer),
        "corpus_lines": len(texts),
        "note": "random weights: predictions of this model are meaningless (for tests and the offline default)",
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def build_tiny_model(path: str | os.PathLike, *, seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Build the tiny Qwen3 model and tokenizer into `path` and return it; reuse `path` if a complete build is there.

    `corpus` adds texts to the bundled project corpus the tokenizer is trained on. The build happens in a hidden
    temporary folder beside `path` and is renamed into place; an incomplete folder at `path` is replaced.
    """
    path = Path(path)
    if is_complete(path):
        return path
    texts = bundled_corpus() + [t for t in (corpus or []) if t and t.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        _write_model(tmp, seed, texts)
        if path.exists() and not is_complete(path):
            shutil.rmtree(path)  # a leftover from an older, interrupted layout
        with contextlib.suppress(OSError):
            os.rename(tmp, path)  # fails only if another process published first
        if not is_complete(path):
            raise RuntimeError(f"could not publish the tiny model to {path}")
        return path
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_tiny_model(store, *, seed: int = 0) -> Path:
    """The tiny model of a `Store`, at `store.path("models", "tiny")`, built on first use."""
    return build_tiny_model(store.path("models", TINY_MODEL_SPEC), seed=seed)
