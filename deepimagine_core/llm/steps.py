"""The one local counterfactual step format, shared by the reasoning traces, the operators' training data and the
imagination pathway (template `step`, whose id every row and trajectory records).

    input   the factor, its value before and after, the current result (as a result sentence: a question's option
            sentence, or a measured value) plus the numbers behind it where known, and whether that result was
            observed or imagined by an earlier step;
    output  DIRECTION / SIZE / RESULT / EXPLANATION, where RESULT is the new result in the same form as the input's.

Three sources build a `StepInput`, and nothing else renders one:
- a natural pair (`natural_step`: same trial, another arm or another outcome; measured values);
- two questions with a known answer, an approximate pair's source and target trials, or the pathway's anchor and its
  target (`question_step`: option sentences, factor values from `llm.factors.configuration_of`);
- the pathway's later steps, whose current result is the one imagined by the step before (`StepInput.imagined`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepimagine_core.llm.factors import configuration_of
from deepimagine_core.llm.prompts import clip, load_template, template_id
from deepimagine_core.questions import Question
from deepimagine_core.tables import HISTORICAL_QUESTIONS_TABLE

STEP_TEMPLATE = "step"
TRACE_TEMPLATE = "trace"
NO_NUMBERS = "(not reported)"
MAX_VALUE_CHARS = 500


@dataclass(frozen=True)
class StepInput:
    """Everything a step prompt shows; `fields()` is what trajectories and training rows store beside the prompt."""

    factor: str
    old_value: str
    new_value: str
    current_result: str
    numbers: str = ""
    observed: bool = True

    def fields(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "template": template_id(STEP_TEMPLATE)}

    def imagined(self, factor: str, old_value: str, new_value: str, result: str) -> StepInput:
        """The next step of a path: its current result is this step's imagined one (no numbers known any more)."""
        return StepInput(factor, old_value, new_value, result, "", observed=False)


def _values(step: StepInput) -> dict[str, str]:
    return {
        "factor": step.factor,
        "old_value": clip(step.old_value, MAX_VALUE_CHARS),
        "new_value": clip(step.new_value, MAX_VALUE_CHARS),
        "current_result": clip(step.current_result, 600),
        "numbers": clip(step.numbers, 300) or NO_NUMBERS,
        "result_status": "observed" if step.observed else "imagined",
    }


def step_messages(step: StepInput) -> list[dict[str, str]]:
    """The operator's prompt for one step (what SFT and GRPO train on and what the pathway asks)."""
    return load_template(STEP_TEMPLATE).render(**_values(step))


def trace_messages(step: StepInput, observed_result: str) -> list[dict[str, str]]:
    """The teacher's prompt: the very same step, then the observed result and the request to explain it."""
    user = step_messages(step)[-1]["content"]
    return load_template(TRACE_TEMPLATE).render(step=user, observed_result=clip(observed_result, 600))


def step_answer(direction: str, size: str | None, result: str, explanation: str | None = None) -> str:
    """A step's output in the format the prompt asks for."""
    lines = [f"DIRECTION: {direction}"]
    if size:
        lines.append(f"SIZE: {size}")
    lines.append(f"RESULT: {clip(result, 600)}")
    if explanation:
        lines.append(f"EXPLANATION: {explanation}")
    return "\n".join(lines)


# ---- questions: option sentences, and the significance change the benchmark scores -----------------------------


def result_sentence(q: Question) -> str:
    """The known answer of a question as its option sentence."""
    if q.answer is None:
        raise ValueError(f"question {q.key} has no known answer; it cannot start a step")
    return clip(q.options[q.answer], 600)


NUMBER_FIELDS = ("p_value", "p_value_raw", "param_type", "ci_lower", "ci_upper")  # `historical_questions` columns


def result_numbers(q: Question) -> str:
    """The numbers behind a question's known result where its record carries them (in `extra`: the p-value as
    posted, the analysis' parameter and its confidence interval), e.g. "p = 0.003 (Mean Difference), CI -1.2 to -0.4".
    """
    x = q.extra
    p = x.get("p_value_raw") or (f"{x['p_value']:g}" if isinstance(x.get("p_value"), (int, float)) else None)
    parts = [f"p {p}" if p and str(p)[:1] in "<>=≤≥" else f"p = {p}"] if p else []
    if x.get("param_type"):
        parts[-1:] = [f"{parts[-1]} ({x['param_type']})"] if parts else [str(x["param_type"])]
    if isinstance(x.get("ci_lower"), (int, float)) and isinstance(x.get("ci_upper"), (int, float)):
        parts.append(f"CI {x['ci_lower']:g} to {x['ci_upper']:g}")
    return ", ".join(parts)


def with_numbers(questions: list[Question], numbers: dict[tuple, dict]) -> list[Question]:
    """`questions` with the numbers of their records (`numbers`: question key -> NUMBER_FIELDS values) in `extra`."""
    import dataclasses

    return [dataclasses.replace(q, extra={**q.extra, **numbers[q.key]}) if q.key in numbers else q for q in questions]


def load_result_numbers(store) -> dict[tuple, dict[str, Any]]:
    """Question key -> the numbers behind its known result (p-value, parameter, CI), from `historical_questions`."""
    if store is None or not store.has_table(HISTORICAL_QUESTIONS_TABLE):
        return {}
    table = store.read_table(HISTORICAL_QUESTIONS_TABLE)
    fields = [c for c in NUMBER_FIELDS if c in table.column_names]
    if not fields:
        return {}
    out = {}
    for row in table.select(["nct_id", "endpoint_key", "question_index", *fields]).to_pylist():
        values = {k: row[k] for k in fields if row[k] not in (None, "")}
        if values:
            out[(row["nct_id"], row["endpoint_key"], row["question_index"])] = values
    return out


def significant(q: Question) -> bool:
    """The known answer after the benchmark's collapse: a significant result / endpoint met (every option but the
    last: in 3-way explicit questions options 0 and 1 are a significant difference either way, option 2 none; in
    2-way questions option 0 is the significant one)."""
    if q.answer is None:
        raise ValueError(f"question {q.key} has no known answer")
    return q.answer != len(q.options) - 1


def significance_change(source: Question, target: Question) -> str:
    """The verifiable observed change between two answered questions: up (becomes significant), down, or same."""
    a, b = significant(source), significant(target)
    return "same" if a == b else ("up" if b else "down")


def question_step(
    source: Question,
    target: Question,
    factor: str,
    trials: Mapping[str, Mapping[str, Any]] | None = None,
) -> StepInput | None:
    """The step from an answered `source` question to `target`, changing `factor` only; None when the factor's value
    is unknown on either side. The pathway's first step and an approximate pair's training example are this."""
    trials = trials or {}
    before = configuration_of(source, trials.get(source.nct_id)).get(factor)
    after = configuration_of(target, trials.get(target.nct_id)).get(factor)
    if before is None or after is None:
        return None
    return StepInput(factor, before, after, result_sentence(source), result_numbers(source), observed=True)
