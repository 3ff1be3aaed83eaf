"""GRPO prompts for the operators that no natural pair teaches: intervention and context (population, geography,
design), from approximate pairs retrieved across trials.

An approximate pair says trial S and trial T are alike except in one factor. Each training-split pair whose two
trials have answered historical questions gives one prompt: the step from S's question (its known answer as the
current result) to T's question of the same category, changing that factor only — built by `llm.steps.question_step`,
the very function whose output the pathway asks for the same anchor and target. The verifiable answer is the observed
change of the pair after the benchmark's collapse (`llm.steps.significance_change`: up = T's result is significant and
S's is not, down = the reverse, same otherwise), checked by the `direction_agreement` reward.

Class balance: the observed changes are mostly `same`, so a policy answering `same` everywhere would score well. The
prompts are resampled (seeded, with replacement) until every observed change present has as many prompts as the most
frequent one; the mean reward over the data is then the class-balanced accuracy. Counts before and after are reported.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from deepimagine_core.llm.factors import FAMILIES, same_value
from deepimagine_core.llm.prompts import template_id
from deepimagine_core.llm.steps import (
    NUMBER_FIELDS, STEP_TEMPLATE, question_step, result_sentence, significance_change, step_messages,
)
from deepimagine_core.questions import Question
from deepimagine_core.tables import APPROXIMATE_PAIRS_TABLE, HISTORICAL_QUESTIONS_TABLE
from deepimagine_core.training.data import (
    QUESTION_COLUMNS, TRAIN_SPLIT, BuiltData, approximate_pair_questions, as_rows, balance_classes,
)


def _answered_by_trial(questions: pa.Table | Iterable[dict[str, Any]]) -> tuple[dict[str, list[Question]], Counter]:
    by_trial: dict[str, list[Question]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    for row in as_rows(questions, HISTORICAL_QUESTIONS_TABLE, QUESTION_COLUMNS):
        if row["split"] != TRAIN_SPLIT or row["answer"] is None:
            skipped["question_not_train_or_unanswered"] += 1
            continue
        question = Question.from_row(row)  # with the numbers behind its result, as the pathway's anchors have them
        question.extra.update({k: row[k] for k in NUMBER_FIELDS if row.get(k) not in (None, "")})
        by_trial[row["nct_id"]].append(question)
    return by_trial, skipped


def rl_operator_examples(
    approximate_pairs: pa.Table | Iterable[dict[str, Any]],
    historical_questions: pa.Table | Iterable[dict[str, Any]],
    trials: Mapping[str, Mapping[str, Any]],
    family: str,
    *,
    max_prompts: int | None = None,
    seed: int = 0,
) -> BuiltData:
    """Step prompts of `family` (intervention | context) with the observed change as `direction` (GRPO columns)."""
    factors = {f for f, fam in FAMILIES.items() if fam == family}
    if not factors or family in ("arm", "outcome"):
        raise ValueError(f"{family!r} is not an approximate-pair family (intervention, context)")
    by_trial, skipped = _answered_by_trial(historical_questions)
    rows, counts = [], Counter()
    for pair, source, target in approximate_pair_questions(approximate_pairs, by_trial, skipped, factors):
        factor = pair["factor"]
        if source.category != target.category:
            skipped["no_question_of_the_same_category"] += 1
            continue
        step = question_step(source, target, factor, trials)
        if step is None:
            skipped["factor_unknown"] += 1
            continue
        if same_value(factor, step.old_value, step.new_value):
            skipped["factor_reads_the_same"] += 1
            continue
        direction = significance_change(source, target)
        rows.append({
            "id": f"approximate:{pair['pair_id']}", "source": APPROXIMATE_PAIRS_TABLE, "factor": factor,
            "family": family,
            "template": template_id(STEP_TEMPLATE), "step": step.fields(), "prompt": step_messages(step),
            "task": "step", "answer": None, "n_options": None, "category": target.category, "direction": direction,
            "observed_result": result_sentence(target),
        })
        counts[f"prompts_{factor}"] += 1
    if max_prompts is not None and len(rows) > max_prompts:
        skipped["over_max_prompts"] += len(rows) - max_prompts
        rows = random.Random(seed).sample(rows, max_prompts)
    rows, before = balance_classes(rows, "direction", seed)
    counts.update({f"observed_{k}": v for k, v in before.items()})
    counts["prompts_balanced"] = len(rows)
    return BuiltData(rows, dict(counts), dict(skipped))
