"""The LLM predictors in the evaluation interface (`fit(train)`, `predict(questions) -> list[Prediction]`):

- `llm_direct`: the question alone (direct prompt).
- `llm_rag`: the question with k retrieved historical questions and their known results.
- `deepimagine`: the stepwise imagination pathway from k anchors (trajectories in `Prediction.trajectory`).

Each works with any backend and model (default `BackendSettings`: transformers + the tiny local model of `store`, see
`backend_factory.shared_backend`). `deepimagine` takes the operators' LoRA folders per family
(`adapters={"arm": ".../adapter", "context": ...}`), so the trained operators become a predictor with its own name
(`deepimagine_sft`); the caller passes them in (`training.adapters.trained_predictor_options`). With the tiny model the
predictions are meaningless (random weights); `note` says so for the report.

Importing this module registers the three names in `deepimagine_core.evaluation.predictors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deepimagine_core.evaluation.predictors import Prediction, register_predictor
from deepimagine_core.llm.backend_factory import shared_backend
from deepimagine_core.llm.backends import Backend, SamplingParams, is_tiny
from deepimagine_core.llm.factors import DEFAULT_ORDER, FACTORS, OPERATOR_FAMILIES, factor_adapters, load_trials
from deepimagine_core.llm.parsing import ParseCounter, parse_decision
from deepimagine_core.llm.pathway import DEFAULT_K, IndexAnchorRetriever, PathwayConfig, run_pathway, trajectory_steps
from deepimagine_core.llm.prompts import direct_messages, rag_messages, template_id
from deepimagine_core.llm.steps import load_result_numbers, with_numbers
from deepimagine_core.questions import Question
from deepimagine_core.store import Store

TINY_NOTE = "tiny local model with random weights: its predictions and scores are meaningless (tests/offline default)"
TINY_MAX_NEW_TOKENS = 16


class _LLMPredictor:
    """Shared parts: a lazily built backend, answer parameters, parse counts, the tiny-model note."""

    name = "llm"
    template = "direct"

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        predictor_name: str | None = None,
        store: Store | None = None,
        params: SamplingParams | None = None,
        adapter: str | None = None,
        **backend_kw: Any,
    ):
        if predictor_name:
            self.name = predictor_name
        self.store = store
        self._backend = backend
        self.backend_kw = backend_kw
        self._params = params
        self.adapter = adapter
        self.counter = ParseCounter()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = shared_backend(self.store, **self.backend_kw)
        return self._backend

    @property
    def params(self) -> SamplingParams:
        """Greedy answers; with the tiny model, short ones (its text is noise, so long outputs only cost time)."""
        if self._params is None:
            self._params = SamplingParams(temperature=0.0, max_new_tokens=TINY_MAX_NEW_TOKENS if is_tiny(
                self.backend) else 256)
        return self._params

    @property
    def note(self) -> str:
        return TINY_NOTE if is_tiny(self.backend) else ""

    def describe(self) -> dict[str, Any]:
        """Provenance for the report: model, adapter, template, parse counts."""
        return {
            "model_id": self.backend.model_id,
            "adapter": self.adapter,
            "template": template_id(self.template),
            "sampling_params": self.params.to_dict(),
            "parse": self.counter.as_dict(),
            "note": self.note,
        }

    def _answer(self, questions: Sequence[Question], messages: list[list[dict[str, str]]]) -> list[Prediction]:
        outputs = self.backend.generate(messages, self.params, adapter=self.adapter) if messages else []
        preds = []
        for q, gens in zip(questions, outputs):
            decision = parse_decision(gens[0].text, len(q.options))
            self.counter.add("decision", decision.parsed)
            preds.append(Prediction(decision.probabilities, decision.parsed, gens[0].text))
        return preds


class LLMDirectPredictor(_LLMPredictor):
    name = "llm_direct"
    template = "direct"

    def fit(self, train: list[Question]) -> None:
        """Nothing to fit: the model is used as it is."""

    def predict(self, questions: list[Question]) -> list[Prediction]:
        return self._answer(questions, [direct_messages(q) for q in questions])


class LLMRagPredictor(_LLMPredictor):
    """Direct prompt plus the k most similar training questions with their known results."""

    name = "llm_rag"
    template = "rag"

    def __init__(self, backend: Backend | None = None, *, k: int = 3, index: Any = None, **kw: Any):
        super().__init__(backend, **kw)
        self.k = k
        self.index = index
        self.retriever: IndexAnchorRetriever | None = None

    def fit(self, train: list[Question]) -> None:
        self.retriever = IndexAnchorRetriever(train, index=self.index)

    def predict(self, questions: list[Question]) -> list[Prediction]:
        if self.retriever is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        anchors = self.retriever.retrieve_many(questions, self.k)
        return self._answer(questions, [rag_messages(q, a) for q, a in zip(questions, anchors)])


def _step_adapters(adapters: Mapping[str, str] | None) -> dict[str, str]:
    """Family (arm, outcome, intervention, context) or factor -> folder, as factor -> folder (factor keys win)."""
    adapters = dict(adapters or {})
    families = {k: v for k, v in adapters.items() if k in OPERATOR_FAMILIES}
    factors = {k: str(v) for k, v in adapters.items() if k not in OPERATOR_FAMILIES}
    if unknown := sorted(set(factors) - set(FACTORS)):
        raise ValueError(f"unknown factors or families {unknown}; known: {OPERATOR_FAMILIES} and {FACTORS}")
    return {**factor_adapters(families), **factors}


class DeepImaginePredictor(_LLMPredictor):
    """The stepwise imagination pathway from k anchors (7 by default). `adapters` maps an operator family (arm,
    outcome, intervention, context) or a single factor to its LoRA folder; each factor's step uses its own."""

    name = "deepimagine"
    template = "answer"

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        k: int = DEFAULT_K,
        order: Sequence[str] = DEFAULT_ORDER,
        adapters: Mapping[str, str] | None = None,
        step_params: SamplingParams | None = None,
        aggregate: str = "mean",
        index: Any = None,
        trials: Mapping[str, Mapping[str, Any]] | None = None,
        **kw: Any,
    ):
        super().__init__(backend, **kw)
        PathwayConfig(k=k, order=tuple(order), aggregate=aggregate)  # validate now, not at predict time
        self.k, self.order, self.adapters, self.aggregate = k, tuple(order), _step_adapters(adapters), aggregate
        self._step_params = step_params
        self.index = index
        self.trials = trials
        self.retriever: IndexAnchorRetriever | None = None

    def config(self) -> PathwayConfig:
        if self._step_params is None:
            self._step_params = SamplingParams(temperature=0.0, max_new_tokens=TINY_MAX_NEW_TOKENS if is_tiny(
                self.backend) else 160)
        return PathwayConfig(k=self.k, order=self.order, step_params=self._step_params, answer_params=self.params,
                             adapters=self.adapters, answer_adapter=self.adapter, aggregate=self.aggregate)

    def fit(self, train: list[Question]) -> None:
        """Anchors = the answered training questions, with the numbers behind their results where the store's
        `historical_questions` table has them; targets' context from the store's `trials` (unless given)."""
        self.retriever = IndexAnchorRetriever(with_numbers(train, load_result_numbers(self.store)), index=self.index)
        if self.trials is None:
            self.trials = load_trials(self.store)

    def predict(self, questions: list[Question]) -> list[Prediction]:
        if self.retriever is None:
            raise RuntimeError(f"{self.name}: predict before fit")
        results = run_pathway(questions, self.retriever, self.backend, self.config(), self.trials, self.counter)
        return [Prediction(r.probabilities, r.parsed, r.text, trajectory_steps(r.trajectories)) for r in results]

    def describe(self) -> dict[str, Any]:
        config = self.config()
        return {**super().describe(), "k": config.k, "order": list(config.order), "adapters": config.adapters,
                "aggregate": config.aggregate, "step_params": config.step_params.to_dict()}


register_predictor("llm_direct", LLMDirectPredictor)
register_predictor("llm_rag", LLMRagPredictor)
register_predictor("deepimagine", DeepImaginePredictor)


# ---- fine-tuned variants: the pathway with the four operator families, and the GRPO policy ------------------------
# The adapters are passed in by the caller (`training.adapters.trained_predictor_options` lists the published ones):
# this layer never reads the training layer's folders.


def deepimagine_sft(backend: Backend | None = None, *, adapters: Mapping[str, str] | None = None, **kw: Any):
    """`deepimagine` whose local steps use the trained operators: `adapters` maps a family (arm, outcome,
    intervention, context) or a factor to its adapter folder."""
    if not adapters:
        raise ValueError("deepimagine_sft needs the operators' adapter folders (materialise sft_operators and "
                         "rl_operators; training.adapters.trained_predictor_options lists them)")
    return DeepImaginePredictor(backend, adapters=adapters, predictor_name="deepimagine_sft", **kw)


def llm_direct_grpo(backend: Backend | None = None, *, adapter: str | None = None, **kw: Any):
    """`llm_direct` answering with the GRPO policy adapter (`grpo_policy`), passed in by the caller."""
    if not adapter:
        raise ValueError("llm_direct_grpo needs the GRPO policy's adapter folder (materialise grpo_policy first)")
    return LLMDirectPredictor(backend, adapter=str(adapter), predictor_name="llm_direct_grpo", **kw)


register_predictor("deepimagine_sft", deepimagine_sft)
register_predictor("llm_direct_grpo", llm_direct_grpo)
