"""Parse model answers: `DECISION: (p1, p2[, p3])` (the one parser, `evaluation.scoring.parse_decision`, re-exported
here) and the counterfactual step format (DIRECTION / SIZE / RESULT / EXPLANATION), tolerant of markdown noise (bold,
code fences, headings, bullets, "Decision:", percentages, brackets).

A failure is never hidden: the result says `parsed=False` with the reason, and `ParseCounter` tallies them so every
caller can report its parse rate. An unparsed DECISION carries uniform probabilities (CT Open's rule for unparseable
outputs), flagged as such.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from deepimagine_core.evaluation.scoring import Decision, parse_decision, strip_markdown

__all__ = ["Decision", "parse_decision", "strip_markdown", "Step", "parse_step", "ParseCounter"]

_FIELD = re.compile(r"^\s*(direction|size|result|explanation)\s*[:=\-–]\s*(.*)$", re.I)

DIRECTIONS = ("up", "down", "same")
SIZES = ("small", "moderate", "large")
_DIRECTION_WORDS = {
    "up": ("up", "increase", "increases", "increased", "higher", "larger", "greater", "better", "improve", "improves",
           "improved", "↑", "+"),
    "down": ("down", "decrease", "decreases", "decreased", "lower", "smaller", "less", "worse", "reduce", "reduces",
             "reduced", "↓", "-"),
    "same": ("same", "unchanged", "no change", "similar", "equal", "stable", "none", "no difference", "="),
}
_SIZE_WORDS = {
    "small": ("small", "slight", "slightly", "minor", "minimal", "little", "negligible", "none"),
    "moderate": ("moderate", "moderately", "medium", "modest"),
    "large": ("large", "big", "substantial", "strong", "major", "marked", "considerable", "huge"),
}


@dataclass(frozen=True)
class Step:
    direction: str | None  # up | down | same
    size: str | None  # small | moderate | large
    result: str
    explanation: str
    parsed: bool  # a direction was found (the minimum a step needs)
    missing: tuple[str, ...] = field(default=())


def _match_word(value: str, table: dict[str, tuple[str, ...]]) -> str | None:
    value = value.strip().lower().strip(".!*_:;,'\"()[]")
    for key, words in table.items():  # exact first ("up|down|same" echoed back is not an answer)
        if value == key or value in words:
            return key
    if "|" in value or "/" in value:
        return None
    for key, words in table.items():
        if any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", value) for w in words if len(w) > 1):
            return key
    return None


def parse_step(text: str) -> Step:
    """The last occurrence of each step field in `text`. `parsed` needs at least a recognisable DIRECTION."""
    fields: dict[str, str] = {}
    for line in strip_markdown(text or "").splitlines():
        m = _FIELD.match(line)
        if m:
            fields[m.group(1).lower()] = m.group(2).strip()
    direction = _match_word(fields.get("direction", ""), _DIRECTION_WORDS) if "direction" in fields else None
    size = _match_word(fields.get("size", ""), _SIZE_WORDS) if "size" in fields else None
    if direction == "same" and size is None and "size" in fields:
        size = "small"
    missing = tuple(
        name
        for name, ok in (("direction", direction), ("size", size), ("result", fields.get("result")),
                         ("explanation", fields.get("explanation")))
        if not ok
    )
    result, explanation = fields.get("result", ""), fields.get("explanation", "")
    return Step(direction, size, result, explanation, direction is not None, missing)


class ParseCounter:
    """Tally of parse outcomes per kind ("decision", "step") so callers report rates instead of hiding failures."""

    def __init__(self):
        self.ok: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def add(self, kind: str, parsed: bool) -> None:
        (self.ok if parsed else self.failed)[kind] += 1

    def as_dict(self) -> dict[str, dict[str, float]]:
        kinds = sorted(set(self.ok) | set(self.failed))
        return {
            k: {"parsed": self.ok[k], "failed": self.failed[k],
                "parse_rate": self.ok[k] / max(1, self.ok[k] + self.failed[k])}
            for k in kinds
        }
