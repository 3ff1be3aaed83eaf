"""A scripted backend for tests of anything that calls an LLM (traces, pathway, predictors, assets).

`ScriptedBackend(respond)` answers each conversation with `respond(messages, sample_index)` and records every call,
so tests check prompts, batching and adapter routing without a model.
"""

from __future__ import annotations

from collections.abc import Callable

from deepimagine_core.llm.backends import Generation, Messages, SamplingParams


class ScriptedBackend:
    def __init__(self, respond: Callable[[Messages, int], str], model_id: str = "scripted"):
        self.respond = respond
        self.model_id = model_id
        self.calls: list[dict] = []  # {"messages_batch", "params", "adapter"} per generate() call

    def generate(
        self, messages_batch: list[Messages], params: SamplingParams, adapter: str | None = None
    ) -> list[list[Generation]]:
        self.calls.append({"messages_batch": messages_batch, "params": params, "adapter": adapter})
        out = []
        for messages in messages_batch:
            prompt_tokens = sum(len(m["content"].split()) for m in messages)
            gens = []
            for i in range(params.n):
                text = self.respond(messages, i)
                gens.append(Generation(text, prompt_tokens, len(text.split()), "stop"))
            out.append(gens)
        return out
