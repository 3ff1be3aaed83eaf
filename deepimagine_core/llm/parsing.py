"""Parse model answers: `DECISION: (p1, p2[, p3])` and the counterfactual step format (DIRECTION / SIZE / RESULT /
EXPLANATION), tolerant of markdown noise (bold, code fences, headings, bullets, "Decision:", percentages, brackets).

A failure is never hidden: the result says `parsed=False` with the reason, and `ParseCounter` tallies them so every
caller can report its parse rate. An unparsed DECISION carries uniform probabilities (CT Open's rule for unparseable
outputs), flagged as such.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*%?"
_DECISION = re.compile(r"decision\s*[:=]?\s*[\(\[\{<]?\s*((?:" + _NUMBER + r"\s*[,;/\s]\s*)+" + _NUMBER + r")", re.I)
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


def strip_markdown(text: str) -> str:
    """Remove formatting that models wrap answers in: code fences, bold/italics, inline code, headings, bullets, and
    a closed <think> block (the answer after it is what counts)."""
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    text = re.sub(r"```[a-zA-Z]*", "\n", text)
    text = text.replace("**", "").replace("__", "").replace("`", "")
    text = re.sub(r"^\s*(?:#+|>+|[-*•]\s|\d+[.)]\s)\s*", "", text, flags=re.M)
    return text


@dataclass(frozen=True)
class Decision:
    probabilities: list[float]  # normalised; uniform when not parsed
    parsed: bool
    error: str = ""


def parse_decision(text: str, n_options: int) -> Decision:
    """The last `DECISION:` in `text` as probabilities over `n_options` options (normalised to sum 1; numbers with
    "%" are percentages)."""
    uniform = [1.0 / n_options] * n_options
    clean = strip_markdown(text or "")
    matches = _DECISION.findall(clean)
    if not matches:
        return Decision(uniform, False, "no DECISION found")
    raw = re.findall(_NUMBER, matches[-1])
    values = [float(v.replace("%", "").strip()) * (0.01 if v.strip().endswith("%") else 1.0) for v in raw]
    if len(values) != n_options:
        return Decision(uniform, False, f"DECISION has {len(values)} numbers for {n_options} options")
    if any(v < 0 for v in values):
        return Decision(uniform, False, "negative probability")
    total = sum(values)
    if total <= 0:
        return Decision(uniform, False, "probabilities sum to 0")
    return Decision([v / total for v in values], True)


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
