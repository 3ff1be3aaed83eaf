"""The one question record every predictor sees, whether it comes from CT Open or from historical results.

CT Open stores one record per (trial, endpoint) with several questions; we flatten to one `Question` per question.
`historical_questions` rows (built by `deepimagine_core.pairs.historical`) convert to the same record, so a predictor
is written once: question in, probabilities over its options out.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

IMPLICIT_META_LABELS = frozenset({"no_arm", "no_distinguishable_arm"})
CATEGORIES = ("2-way_explicit", "2-way_implicit", "3-way_explicit", "3-way_implicit")


_WORD = re.compile(r"[a-z0-9%/]+")


def normalise_words(text: str) -> str:
    """Lower-case words separated by single spaces and padded with one, so word patterns (endpoint kinds, safety
    wording) can match whole-word prefixes with a plain leading space (much faster than `\\b` alternations on long
    descriptions)."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def category_of(n_options: int, meta_label: str) -> str:
    """CT Open's category: `{2,3}-way_{implicit,explicit}` by option count and meta_label."""
    side = "implicit" if meta_label in IMPLICIT_META_LABELS else "explicit"
    return f"{n_options}-way_{side}"


@dataclass
class Question:
    nct_id: str
    endpoint_key: str  # identifies the endpoint within the trial (CT Open's own key string, or "outcome:<index>")
    question_index: int  # position of the question within its (trial, endpoint) record
    brief_title: str
    endpoint: dict[str, Any]  # {measure, description, timeFrame, outcome_type}
    arms: list[dict[str, Any]]  # API v2 armGroups: {label, type, description, interventionNames, interventions}
    meta_label: str  # single_arm | distinguishable_arm | no_arm | no_distinguishable_arm
    options: list[str]
    answer: int | None = None  # index into options; None when unknown (a prediction-only question)
    extra: dict[str, Any] = field(default_factory=dict)  # source-specific fields (evidence, split, question_id ...)

    @property
    def category(self) -> str:
        return category_of(len(self.options), self.meta_label)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.nct_id, self.endpoint_key, self.question_index)

    def to_row(self) -> dict[str, Any]:
        """Flat row with JSON strings for nested fields (for Parquet)."""
        row = asdict(self)
        row["endpoint"] = json.dumps(self.endpoint, sort_keys=True)
        row["arms"] = json.dumps(self.arms, sort_keys=True)
        row["extra"] = json.dumps(self.extra, sort_keys=True, default=str)
        row["category"] = self.category
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Question":
        def load(v, default):
            if v is None:
                return default
            return json.loads(v) if isinstance(v, str) else v

        return cls(
            nct_id=row["nct_id"],
            endpoint_key=str(row["endpoint_key"]),
            question_index=int(row["question_index"]),
            brief_title=row.get("brief_title") or "",
            endpoint=load(row.get("endpoint"), {}),
            arms=load(row.get("arms"), []),
            meta_label=row["meta_label"],
            options=list(row["options"]),
            answer=None if row.get("answer") is None else int(row["answer"]),
            extra=load(row.get("extra"), {}),
        )
