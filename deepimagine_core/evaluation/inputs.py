"""What the evaluation runs on: the historical questions by split, and why a part is empty when it is.

A small source (one condition, one sponsor, a handful of trials) can leave nothing to train the predictors on, or
nothing to score them on. That is a normal case, not an error: the report is then written with the reasons instead of
scores, and the run succeeds.

    train, test, counts = split_historical(store.read_table("historical_questions"))
    reasons = empty_reasons(train, benchmarks, counts)
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from deepimagine_core.questions import Question

__all__ = ["split_historical", "empty_reasons"]


def split_historical(table: pa.Table) -> tuple[list[Question], list[Question], dict[str, int]]:
    """(train, test, rows per split) of a `historical_questions` table by its `split` column (or the question's
    `extra.split`); other sides (e.g. `benchmark`) are in neither list."""
    split_of = table.column("split").to_pylist() if "split" in table.column_names else [None] * table.num_rows
    train, test = [], []
    for row, split in zip(table.to_pylist(), split_of):
        q = Question.from_row(row)
        split = split or q.extra.get("split")
        (train if split == "train" else test if split == "test" else []).append(q)
    return train, test, dict(Counter(split_of))


def empty_reasons(train: list[Question], benchmarks: dict[str, list[Question]], split_counts: dict[str, int],
                  ct_open_files: int = 0) -> list[str]:
    """Why there is nothing to evaluate (empty list: there is something). `benchmarks` holds every benchmark that
    would be scored (CT Open files and the historical test split); `ct_open_files` counts the CT Open files loaded."""
    reasons = []
    total = sum(split_counts.values())
    if total == 0:
        reasons.append("no historical questions: the trial tables hold no two-group analysis with a p-value or CI to "
                       "ask about (see the skip counts of `historical_questions`)")
    elif not any(q.answer is not None for q in train):
        reasons.append(f"no training questions: 0 of the {total} historical questions are on the train side "
                       f"(questions per split: {split_counts}); the predictors have nothing to fit")
    if not any(benchmarks.values()):
        where = (f"the {ct_open_files} CT Open file(s) hold no question" if ct_open_files
                 else "no CT Open file is configured")
        reasons.append(f"nothing to score: {where} and the historical test split has 0 questions "
                       f"(questions per split: {split_counts or '{}'})")
    return reasons
