"""Training examples from the pairs and questions tables.

SFT (`sft_examples`): one conversational prompt/completion example per accepted reasoning trace of a training-split
natural pair. The prompt is the operator's local counterfactual step in the shared step format (`llm.steps`: the
factor before and after, the result before the change; the same prompt the trace was paired with and the pathway asks);
the completion is the teacher's trace, which ends in the step format (DIRECTION / SIZE / RESULT / EXPLANATION). TRL
puts the loss on the completion only.

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
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepimagine_core.llm import prompts
from deepimagine_core.llm.pair_text import PairView, pair_view
from deepimagine_core.llm.steps import STEP_TEMPLATE, step_answer, step_messages
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


def balance_classes(rows: list[dict[str, Any]], key: str, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows resampled so each value of `row[key]` has as many rows as the most frequent one (the originals kept,
    copies drawn with a seeded generator); also the counts per value before balancing."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
    before = {str(k): len(v) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}
    if len(groups) < 2:
        return list(rows), before
    target = max(len(v) for v in groups.values())
    rng = random.Random(seed)
    out = []
    for value in sorted(groups, key=str):
        group = groups[value]
        out += group + [rng.choice(group) for _ in range(target - len(group))]
    rng.shuffle(out)
    return out, before


def step_prompt(view: PairView) -> list[dict[str, str]]:
    """The operator's step prompt of a pair (the shared step format: the factor before and after, the result before
    the change; not the result after it)."""
    return step_messages(view.step)


def answer_only_completion(view: PairView) -> str:
    """The observed step answer of a pair in the step format, without reasoning."""
    return step_answer(view.direction, view.size, view.target_sentence)


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
                    "template": prompts.template_id(STEP_TEMPLATE),
                    "step": view.step.fields(),
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


def pair_questions(pair: dict[str, Any], by_trial: dict[str, list[Question]]) -> tuple[Question, Question] | None:
    """(source question, target question) of an approximate pair: the target trial's first question and the source
    trial's first one of the same category (else its first); None when either trial has no answered question."""
    targets, sources = by_trial.get(pair["target_nct_id"]), by_trial.get(pair["source_nct_id"])
    if not targets or not sources:
        return None
    target = min(targets, key=lambda q: q.key)
    sources = sorted(sources, key=lambda q: q.key)
    return next((q for q in sources if q.category == target.category), sources[0]), target


def approximate_pair_questions(approximate_pairs, by_trial: dict[str, list[Question]], skipped: Counter,
                               factors: Iterable[str] | None = None):
    """(pair, source question, target question) of each training-split approximate pair (of `factors`, if given)
    whose two trials have answered questions; the others are counted in `skipped`."""
    wanted = None if factors is None else set(factors)
    for pair in as_rows(approximate_pairs, APPROXIMATE_PAIRS_TABLE, APPROXIMATE_COLUMNS):
        if wanted is not None and pair["factor"] not in wanted:
            continue
        if pair["split"] != TRAIN_SPLIT:
            skipped["approximate_not_train_split"] += 1
            continue
        found = pair_questions(pair, by_trial)
        if found is None:
            skipped["approximate_without_questions"] += 1
            continue
        yield pair, *found


def _question_row(question: Question, prompt: list[dict[str, str]], row_id: str, source: str, factor: str | None):
    return {
        "id": row_id,
        "source": source,
        "factor": factor,
        "prompt": prompt,
        "task": "question",
        "answer": question.answer,
        "n_options": len(question.options),
        "category": question.category,
        "direction": None,
        # the class the benchmark scores: the last option is the negative one (3-way explicit: 0 and 1 collapse)
        "balance": f"{question.category}:{int(question.answer != len(question.options) - 1)}",
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

    `max_prompts` keeps a seeded random sample of that size. Then the question prompts are resampled so every
    (category, collapsed class) has as many as the largest, and the step prompts so every observed direction does:
    the mean correctness reward is then the benchmark's class-balanced accuracy averaged over categories.
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

    for pair, anchor, target in approximate_pair_questions(approximate_pairs or [], by_trial, skipped):
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
                "category": None,
                "direction": view.direction,
                "balance": f"step:{view.direction}",
            }
        )
        counts[f"step_{view.factor}"] += 1

    if max_prompts is not None and len(rows) > max_prompts:
        skipped["over_max_prompts"] += len(rows) - max_prompts
        rows = random.Random(seed).sample(rows, max_prompts)
    questions, before_q = balance_classes([r for r in rows if r["task"] == "question"], "balance", seed)
    steps, before_s = balance_classes([r for r in rows if r["task"] == "step"], "balance", seed)
    counts.update({f"class_{k}": v for k, v in {**before_q, **before_s}.items()})
    counts["prompts_balanced"] = len(questions) + len(steps)
    return BuiltData(questions + steps, dict(counts), dict(skipped))


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
