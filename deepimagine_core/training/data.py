"""Training examples from the pairs and questions tables.

SFT (`sft_examples`): one conversational prompt/completion example per accepted reasoning trace of a training-split
natural pair. The prompt is the operator's local counterfactual step (`llm.traces.pair_step_messages`: configuration
C with its observed result, the one change, configuration C', worded exactly as the trace it is paired with); the
completion is the teacher's trace, which ends in the step format (DIRECTION / SIZE / RESULT / EXPLANATION). TRL puts
the loss on the completion only.

GRPO (`grpo_examples`): prompts whose answer can be checked, with that answer in dataset columns for the rewards
(`training.rewards`): training-split historical questions asked directly, and asked from an approximate pair's
anchor trial one factor away (both answered with DECISION; columns `answer`, `n_options`), and natural pairs as
local steps (answered with DIRECTION; column `direction`).

Pair rows are read with the [llm] team's `pair_view` (natural_pairs columns: pair_id, factor, split, source/target
context and result, difference, change_direction, ...). Rows that cannot be used (test split, no accepted trace,
no observed direction, no answer) are skipped and counted by reason in `BuiltData.skipped`, never dropped silently.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepimagine_core.llm import prompts
from deepimagine_core.llm.traces import PairView, pair_view, trace_prompts
from deepimagine_core.questions import Question
from deepimagine_core.tables import (
    APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE, NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE,
)

TRAIN_SPLIT = "train"
PAIR_COLUMNS = ("pair_id", "factor", "split")  # the rest is read (under its accepted names) by `pair_view`
TRACE_COLUMNS = ("pair_id", "trace", "accepted")
APPROXIMATE_COLUMNS = ("pair_id", "factor", "split", "source_nct_id", "target_nct_id", "difference")
QUESTION_COLUMNS = ("nct_id", "endpoint_key", "question_index", "meta_label", "options", "answer", "split")


@dataclass
class BuiltData:
    """Examples plus how many came from where and why other rows were left out."""

    rows: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {"examples": len(self.rows), **self.counts, **{f"skipped_{k}": v for k, v in self.skipped.items()}}


def as_rows(table: pa.Table | Iterable[dict[str, Any]], name: str, columns: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of a table (Arrow or dicts), after checking it has `columns` (a clear error names the missing ones)."""
    rows = table.to_pylist() if isinstance(table, pa.Table) else list(table)
    present = set(table.schema.names) if isinstance(table, pa.Table) else set(rows[0]) if rows else set(columns)
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"table {name!r} lacks columns {missing} needed for training (has {sorted(present)})")
    return rows


def step_prompt(view: PairView) -> list[dict[str, str]]:
    """The operator's step prompt of a pair (C with its observed result, the change, C'; not the result of C')."""
    return trace_prompts(view)[1]


def answer_only_completion(view: PairView) -> str:
    """The observed step answer of a pair in the step format, without reasoning."""
    lines = [f"DIRECTION: {view.direction}"]
    if view.size:
        lines.append(f"SIZE: {view.size}")
    lines.append(f"RESULT: {view.target_result}")
    return "\n".join(lines)


def _view(row: dict[str, Any], skipped: Counter, prefix: str = "") -> PairView | None:
    try:
        return pair_view(row)
    except ValueError as err:
        skipped[f"{prefix}invalid ({str(err).split(' lacks ', 1)[-1]})"] += 1
        return None


def sft_examples(
    natural_pairs: pa.Table | Iterable[dict[str, Any]],
    traces: pa.Table | Iterable[dict[str, Any]],
    factors: Iterable[str] = ("arm", "outcome"),
    *,
    untraced: str = "skip",
) -> BuiltData:
    """SFT examples of `factors`: training-split natural pairs joined with their accepted traces (one example each).

    A pair without an accepted trace is skipped (`untraced="skip"`) or, with `untraced="answer_only"`, trained on its
    observed step answer (`answer_only_completion`) and counted as `examples_answer_only`.
    """
    pairs = as_rows(natural_pairs, NATURAL_PAIRS_TABLE, PAIR_COLUMNS)
    accepted: dict[str, list[str]] = {}
    for trace in as_rows(traces, REASONING_TRACES_TABLE, TRACE_COLUMNS):
        if trace["accepted"] and (trace["trace"] or "").strip():
            accepted.setdefault(str(trace["pair_id"]), []).append(trace["trace"].strip())
    wanted = set(factors)
    rows, counts, skipped = [], Counter(), Counter()
    for pair in pairs:
        if pair["factor"] not in wanted:
            skipped["other_factor"] += 1
            continue
        if pair["split"] != TRAIN_SPLIT:
            skipped["not_train_split"] += 1
            continue
        completions = accepted.get(str(pair["pair_id"]), [])
        if not completions and untraced != "answer_only":
            skipped["no_accepted_trace"] += 1
            continue
        view = _view(pair, skipped)
        if view is None:
            continue
        if not completions:
            completions = [answer_only_completion(view)]
            counts["examples_answer_only"] += 1
        prompt = step_prompt(view)
        for text in completions:
            rows.append(
                {
                    "pair_id": view.pair_id,
                    "factor": view.factor,
                    "prompt": prompt,
                    "completion": [{"role": "assistant", "content": text}],
                }
            )
            counts[f"examples_{view.factor}"] += 1
        counts["pairs"] += 1
    return BuiltData(rows, dict(counts), dict(skipped))


def transfer_prompt(target: Question, anchor: Question, factor: str, difference: str) -> list[dict[str, str]]:
    """The pathway's final question for `target`, from an anchor trial with a known result that differs from it in
    one factor (an approximate pair): the imagining of that one step is left to the model."""
    path = [
        f"Start: historical trial {anchor.nct_id} (observed result): {prompts.known_result(anchor)}",
        f"Step 1 ({factor}: {prompts.clip(difference, 300)}): the only change; imagine how it moves the result.",
    ]
    return prompts.answer_messages(target, path)


def _question_row(question: Question, prompt: list[dict[str, str]], row_id: str, source: str, factor: str | None):
    return {
        "id": row_id,
        "source": source,
        "factor": factor,
        "prompt": prompt,
        "task": "question",
        "answer": question.answer,
        "n_options": len(question.options),
        "direction": None,
    }


def grpo_examples(
    approximate_pairs: pa.Table | Iterable[dict[str, Any]] | None,
    historical_questions: pa.Table | Iterable[dict[str, Any]] | None,
    natural_pairs: pa.Table | Iterable[dict[str, Any]] | None = None,
    *,
    max_prompts: int | None = None,
    seed: int = 0,
) -> BuiltData:
    """GRPO prompts with verifiable answers, all from the training split:

    - each historical question, asked directly (`direct_messages`; reward target: its answer);
    - each approximate pair (source trial S → target trial T, one factor apart): a question of T asked from S's
      known result and the one change (`transfer_prompt`; reward target: T's answer). S's question is one of the same
      category when there is one;
    - each natural pair, if given: the local step (reward target: the observed direction of change).

    `max_prompts` keeps a seeded random sample of that size.
    """
    rows, counts, skipped = [], Counter(), Counter()
    by_trial: dict[str, list[Question]] = {}
    for row in as_rows(historical_questions or [], HISTORICAL_QUESTIONS_TABLE, QUESTION_COLUMNS):
        if row["split"] != TRAIN_SPLIT:
            skipped["question_not_train_split"] += 1
            continue
        question = Question.from_row(row)
        if question.answer is None:
            skipped["question_no_answer"] += 1
            continue
        by_trial.setdefault(question.nct_id, []).append(question)
        row_id = "question:" + ":".join(map(str, question.key))
        rows.append(
            _question_row(question, prompts.direct_messages(question), row_id, HISTORICAL_QUESTIONS_TABLE, None))
        counts[f"question_{question.category}"] += 1

    for pair in as_rows(approximate_pairs or [], APPROXIMATE_PAIRS_TABLE, APPROXIMATE_COLUMNS):
        if pair["split"] != TRAIN_SPLIT:
            skipped["approximate_not_train_split"] += 1
            continue
        targets, anchors = by_trial.get(pair["target_nct_id"]), by_trial.get(pair["source_nct_id"])
        if not targets or not anchors:
            skipped["approximate_without_questions"] += 1
            continue
        target = min(targets, key=lambda q: q.key)
        anchor = next((q for q in anchors if q.category == target.category), anchors[0])
        prompt = transfer_prompt(target, anchor, pair["factor"], pair["difference"] or "")
        row_id = f"approximate:{pair['pair_id']}"
        rows.append(_question_row(target, prompt, row_id, APPROXIMATE_PAIRS_TABLE, pair["factor"]))
        counts[f"approximate_{pair['factor']}"] += 1

    for pair in as_rows(natural_pairs or [], NATURAL_PAIRS_TABLE, PAIR_COLUMNS):
        if pair["split"] != TRAIN_SPLIT:
            skipped["natural_not_train_split"] += 1
            continue
        view = _view(pair, skipped, prefix="natural_")
        if view is None:
            continue
        rows.append(
            {
                "id": f"natural:{view.pair_id}",
                "source": NATURAL_PAIRS_TABLE,
                "factor": view.factor,
                "prompt": step_prompt(view),
                "task": "step",
                "answer": None,
                "n_options": None,
                "direction": view.direction,
            }
        )
        counts[f"step_{view.factor}"] += 1

    if max_prompts is not None and len(rows) > max_prompts:
        skipped["over_max_prompts"] += len(rows) - max_prompts
        rows = random.Random(seed).sample(rows, max_prompts)
    return BuiltData(rows, dict(counts), dict(skipped))


def eval_examples(
    natural_pairs: pa.Table | Iterable[dict[str, Any]], factor: str, *, split: str = "test", limit: int | None = None
) -> list[dict[str, Any]]:
    """Step prompts with the observed direction, for comparing an operator with its base on held-out pairs."""
    examples, skipped = [], Counter()
    for pair in as_rows(natural_pairs, NATURAL_PAIRS_TABLE, PAIR_COLUMNS):
        if pair["factor"] == factor and pair["split"] == split and (view := _view(pair, skipped)) is not None:
            examples.append({"pair_id": view.pair_id, "prompt": step_prompt(view), "direction": view.direction})
    return examples[:limit] if limit is not None else examples


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Examples as JSON Lines (the CLI's `--data`), written to a temporary file and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Examples from a JSON Lines file; a malformed line is an error naming its line number."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not a JSON object ({exc})") from exc
    return rows


def synthetic_pair(i: int, *, split: str = TRAIN_SPLIT, factor: str = "arm") -> dict[str, Any]:
    """A deterministic natural pair in the `natural_pairs` columns (throughput runs and tests): for `arm`, a dose
    change of drug X; for `outcome`, a later time point of the same measure."""
    low, high = 5 * (i % 7 + 1), 10 * (i % 7 + 1)
    week = 4 + i % 20

    def context(dose: int, at_week: int) -> str:
        return json.dumps({"arm": f"drug X {dose} mg once daily", "outcome": f"HbA1c change, week {at_week}"})

    if factor == "arm":
        change, source, target = f"dose of drug X {low} mg → {high} mg", context(low, week), context(high, week)
    else:
        change, source, target = f"week {week} → week {week + 8}", context(low, week), context(low, week + 8)
    return {
        "pair_id": f"synthetic-{factor}-{i}",
        "factor": factor,
        "split": split,
        "difference": change,
        "source_context": source,
        "target_context": target,
        "source_result": json.dumps({"value": -0.3 - 0.01 * (i % 9), "dispersion": 0.1, "n": 40 + i % 11}),
        "target_result": json.dumps({"value": -0.5 - 0.01 * (i % 9), "dispersion": 0.1, "n": 40 + i % 13}),
        "change_direction": ("down", "up", "same")[i % 3],
        "change_band": ("moderate", "large", "same")[i % 3],
    }


def synthetic_sft_examples(n: int) -> list[dict[str, Any]]:
    """Deterministic step examples in the real prompt and answer format (for throughput measurements only)."""
    rows = []
    for i in range(n):
        view = pair_view(synthetic_pair(i))
        trace = (
            "A higher dose of drug X usually lowers HbA1c further, so the difference from placebo grows.\n"
            f"{answer_only_completion(view)}\nEXPLANATION: more drug exposure strengthens the glucose-lowering effect."
        )
        rows.append(
            {"pair_id": view.pair_id, "factor": view.factor, "prompt": step_prompt(view),
             "completion": [{"role": "assistant", "content": trace}]}
        )
    return rows
