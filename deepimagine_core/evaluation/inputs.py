"""What an evaluation scores and trains on, read from the store: the `ct_open_questions` table (the CT Open files,
loaded once by `write_ct_open_table`) and the `historical_questions` split (train fits, test is one more benchmark);
and the benchmark NCT ids the leak checks compare against (`split_benchmark_ids`, recorded by `trial_splits`)."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deepimagine_core.evaluation.ct_open import benchmark_nct_ids, load_benchmarks, source_fingerprint
from deepimagine_core.evaluation.features import positive_target
from deepimagine_core.evaluation.weighting import question_with_date
from deepimagine_core.pairs.split import recorded_benchmark_ids
from deepimagine_core.questions import CATEGORIES, Question
from deepimagine_core.store import Store
from deepimagine_core.tables import CT_OPEN_TABLE, HISTORICAL_QUESTIONS_TABLE, TRIAL_SPLITS_TABLE

HISTORICAL_TEST = "historical_test"  # the benchmark name of the historical test split

#: One row per CT Open question (Question.to_row() plus the file's benchmark name and its role).
CT_OPEN_QUESTIONS = pa.schema(
    [
        ("benchmark", pa.string()),
        ("role", pa.string()),  # benchmark | training (files the user marks as training data)
        ("nct_id", pa.string()),
        ("endpoint_key", pa.string()),
        ("question_index", pa.int64()),
        ("brief_title", pa.string()),
        ("endpoint", pa.string()),
        ("arms", pa.string()),
        ("meta_label", pa.string()),
        ("options", pa.list_(pa.string())),
        ("answer", pa.int64()),
        ("extra", pa.string()),
        ("category", pa.string()),
    ],
    metadata={"doc": "CT Open questions loaded from the configured files (never copied into the project)."},
)

Spec = str | os.PathLike | Sequence[str | os.PathLike] | None


class EvaluationInputError(ValueError):
    """The store does not hold what an evaluation needs (said in words a user can act on)."""


@dataclass
class CTOpenTable:
    path: Path
    rows: int
    per_file: dict[str, dict[str, int]]  # "<role>:<benchmark>" -> {questions, trials, <category>: n}


def category_counts(questions: Sequence[Question]) -> dict[str, int]:
    counts = Counter(q.category for q in questions)
    return {c: counts[c] for c in CATEGORIES if counts[c]}


def write_ct_open_table(store: Store, paths: Spec, training_paths: Spec = None,
                        log: Callable[[str], None] = print) -> CTOpenTable:
    """Read the CT Open files once into table `ct_open_questions`: `paths` as role `benchmark`, `training_paths` (files
    the user marks as training data) as role `training`. Empty (zero rows) when no file is named."""
    rows, per_file = [], {}
    for role, spec in (("benchmark", paths), ("training", training_paths)):
        for name, questions in load_benchmarks(spec or []).items():
            per_file[f"{role}:{name}"] = {"questions": len(questions), "trials": len({q.nct_id for q in questions}),
                                          **category_counts(questions)}
            log(f"CT Open {role} file {name!r}: {per_file[f'{role}:{name}']}")
            rows.extend({**q.to_row(), "benchmark": name, "role": role} for q in questions)
    path = store.write_table(CT_OPEN_TABLE, pa.Table.from_pylist(rows, schema=CT_OPEN_QUESTIONS))
    return CTOpenTable(path, len(rows), per_file)


def split_benchmark_ids(store: Store, paths: Spec) -> set[str]:
    """The benchmark NCT ids of the CT Open files `paths` names: those `trial_splits` recorded when it read the same
    files (unchanged since), else read from the files."""
    if store.has_table(TRIAL_SPLITS_TABLE):
        recorded = recorded_benchmark_ids(pq.read_schema(store.table_path(TRIAL_SPLITS_TABLE)),
                                          source_fingerprint(paths))
        if recorded is not None:
            return recorded
    return benchmark_nct_ids(paths)


def ct_open_from_table(store: Store) -> tuple[dict[str, list[Question]], list[Question]]:
    """({benchmark: questions}, CT Open training questions) from `ct_open_questions` (({}, []) when not built)."""
    benchmarks: dict[str, list[Question]] = defaultdict(list)
    training: list[Question] = []
    if not store.has_table(CT_OPEN_TABLE):
        return {}, []
    for row in store.read_table(CT_OPEN_TABLE).to_pylist():
        q = Question.from_row(row)
        (benchmarks[row["benchmark"]] if row["role"] == "benchmark" else training).append(q)
    return dict(benchmarks), training


def historical_split(store: Store) -> tuple[list[Question], list[Question], dict[str, int]]:
    """(train, test, counts per split) of `historical_questions` by its `split` column (other sides, e.g.
    `benchmark`, are not used); `EvaluationInputError` when the table is absent (empty is fine: see `empty_reasons`)."""
    if not store.has_table(HISTORICAL_QUESTIONS_TABLE):
        raise EvaluationInputError(
            "no historical questions: table `historical_questions` has not been built "
            f"(expected {store.table_path(HISTORICAL_QUESTIONS_TABLE)}); materialise it first (job build_pairs)"
        )
    table = store.read_table(HISTORICAL_QUESTIONS_TABLE)
    split_of = table.column("split").to_pylist() if "split" in table.column_names else [None] * table.num_rows
    train, test = [], []
    for row, split in zip(table.to_pylist(), split_of):
        q = question_with_date(row)  # dated: recency weights and the adaptation's time holdout read the date
        split = split or q.extra.get("split")
        (train if split == "train" else test if split == "test" else []).append(q)
    return train, test, dict(Counter(split_of))


def empty_reasons(train: list[Question], benchmarks: dict[str, list[Question]], split_counts: dict[str, int],
                  ct_open_files: int = 0) -> list[str]:
    """Why there is nothing to evaluate (empty list: there is something). A small source (one condition, a handful of
    trials) can leave nothing to fit or to score: a normal case, reported in words instead of failing the run.
    `benchmarks` holds every benchmark that would be scored; `ct_open_files` counts the CT Open files loaded."""
    reasons = []
    total = sum(split_counts.values())
    if total == 0:
        reasons.append("no historical questions: the trial tables hold no two-group analysis with a p-value or CI to "
                       "ask about (see the skip counts of `historical_questions`)")
    elif not any(q.answer is not None for q in train):
        reasons.append(f"no training questions: 0 of the {total} historical questions are on the train side "
                       f"(questions per split: {split_counts}); the predictors have nothing to fit")
    elif len(sides := {positive_target(q) for q in train if q.answer is not None}) < 2:
        n = sum(q.answer is not None for q in train)
        reasons.append(f"one-sided training questions: all {n} training questions have a "
                       f"{'positive' if sides.pop() else 'negative'} answer (significant / better / met); the "
                       f"predictors cannot learn a decision from one class")
    if not any(benchmarks.values()):
        where = (f"the {ct_open_files} CT Open file(s) hold no question" if ct_open_files
                 else "no CT Open file is configured")
        reasons.append(f"nothing to score: {where} and the historical test split has 0 questions "
                       f"(questions per split: {split_counts or '{}'})")
    return reasons


@dataclass
class EvaluationInputs:
    benchmarks: dict[str, list[Question]]  # CT Open files, then `historical_test`
    train: list[Question]  # historical training split
    ct_open_train: list[Question] = field(default_factory=list)  # CT Open files marked as training
    split_counts: dict[str, int] = field(default_factory=dict)
    why_empty: list[str] = field(default_factory=list)  # why nothing can be evaluated (empty_reasons); [] = something

    @property
    def benchmark_nct_ids(self) -> set[str]:
        """Trials of the CT Open benchmarks: dropped from every training setting."""
        return {q.nct_id for name, qs in self.benchmarks.items() if name != HISTORICAL_TEST for q in qs}


def evaluation_inputs(store: Store) -> EvaluationInputs:
    """Benchmarks and training questions from the store (`ct_open_questions`, `historical_questions`)."""
    train, test, split_counts = historical_split(store)
    benchmarks, ct_train = ct_open_from_table(store)
    why_empty = empty_reasons(train, {**benchmarks, HISTORICAL_TEST: test}, split_counts, len(benchmarks))
    if test:
        benchmarks[HISTORICAL_TEST] = test
    return EvaluationInputs(benchmarks, train, ct_train, split_counts, why_empty)
