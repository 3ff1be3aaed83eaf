"""Versioned prompt templates and the functions that render them into chat messages.

Templates live in `deepimagine_core/llm/templates/<name>.<version>.txt` (package data) with a `[system]` and a
`[user]` section and `$name` placeholders (string.Template, so the literal parentheses of `DECISION: (...)` need no
escaping). Every output that came from a prompt stores `template_id(name)` (e.g. "step.v1") beside it, so a changed
wording never mixes silently with old results: bump the version in `VERSIONS` and add the new file.

Prompts:
- `direct`: predict a `Question` (answer `DECISION: (p1, p2[, p3])`).
- `rag`: the same with k retrieved anchor trials and their known results.
- `step`, `trace`: the local counterfactual step and the teacher's explanation of an observed one; both are rendered
  by `llm.steps` from one `StepInput` (the format traces, operator training data and the pathway share).
- `answer`: the pathway's last call — the imagined path from an anchor, then `DECISION` for the target question.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from deepimagine_core.questions import Question

TEMPLATES_DIR = Path(__file__).parent / "templates"
VERSIONS = {"system": "v1", "direct": "v1", "rag": "v1", "step": "v2", "trace": "v2", "answer": "v1"}
MAX_FIELD_CHARS = 400  # long free text (arm descriptions, eligibility) is cut to keep prompts small


def template_id(name: str) -> str:
    """The version string stored with every output of template `name`, e.g. "step.v1"."""
    return f"{name}.{VERSIONS[name]}"


@dataclass(frozen=True)
class Template:
    name: str
    version: str
    system: string.Template
    user: string.Template

    def render(self, **values: Any) -> list[dict[str, str]]:
        """Chat messages; a missing placeholder raises KeyError naming it (never a silently blank prompt)."""
        values.setdefault("system", system_text())
        return [
            {"role": "system", "content": self.system.substitute(values).strip()},
            {"role": "user", "content": self.user.substitute(values).strip()},
        ]


@cache
def system_text() -> str:
    return (TEMPLATES_DIR / f"system.{VERSIONS['system']}.txt").read_text(encoding="utf-8").strip()


@cache
def load_template(name: str) -> Template:
    path = TEMPLATES_DIR / f"{name}.{VERSIONS[name]}.txt"
    text = path.read_text(encoding="utf-8")
    if "[system]" not in text or "[user]" not in text:
        raise ValueError(f"template {path} needs a [system] and a [user] section")
    system, user = text.split("[system]", 1)[1].split("[user]", 1)
    return Template(name, VERSIONS[name], string.Template(system.strip()), string.Template(user.strip()))


def clip(text: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """One line of at most `limit` characters (whitespace collapsed)."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_arm(arm: dict[str, Any]) -> str:
    names = arm.get("interventionNames") or [
        f"{i.get('type', '')}: {i.get('name', '')}".strip(": ") for i in arm.get("interventions") or []
    ]
    parts = [f"- {arm.get('label', '?')} [{arm.get('type') or 'unknown type'}]"]
    if names:
        parts.append(f"interventions: {', '.join(map(str, names))}")
    if arm.get("description"):
        parts.append(clip(arm["description"], 240))
    return "; ".join(parts)


def describe_question(q: Question) -> str:
    """The trial as the model sees it: title, endpoint, arms."""
    ep = q.endpoint or {}
    lines = [f"Trial: {clip(q.brief_title)}", f"Endpoint: {clip(ep.get('measure'))}"]
    if ep.get("description"):
        lines.append(f"Endpoint description: {clip(ep['description'])}")
    if ep.get("timeFrame"):
        lines.append(f"Time frame: {clip(ep['timeFrame'], 120)}")
    lines.append("Arms:")
    lines += [describe_arm(a) for a in q.arms] or ["- (none listed)"]
    return "\n".join(lines)


def describe_options(q: Question) -> str:
    return "\n".join(f"Option {i + 1}: {clip(o, 600)}" for i, o in enumerate(q.options))


def decision_example(n_options: int) -> str:
    return ", ".join(f"p{i + 1}" for i in range(n_options))


def known_result(q: Question) -> str:
    """The answer option of a question with a known result, as a sentence."""
    if q.answer is None:
        raise ValueError(f"question {q.key} has no known answer; it cannot be an anchor")
    return clip(q.options[q.answer], 600)


def direct_messages(q: Question) -> list[dict[str, str]]:
    return load_template("direct").render(
        trial=describe_question(q), options=describe_options(q), decision_example=decision_example(len(q.options))
    )


def rag_messages(q: Question, anchors: list[Question]) -> list[dict[str, str]]:
    blocks = [
        f"[{i + 1}] {describe_question(a)}\nKnown result: {known_result(a)}" for i, a in enumerate(anchors)
    ] or ["(none found)"]
    return load_template("rag").render(
        trial=describe_question(q),
        options=describe_options(q),
        anchors="\n\n".join(blocks),
        decision_example=decision_example(len(q.options)),
    )


def answer_messages(q: Question, path: list[str]) -> list[dict[str, str]]:
    """The pathway's final question: `path` holds one line per step (the anchor's known result first)."""
    return load_template("answer").render(
        trial=describe_question(q),
        path="\n".join(path),
        options=describe_options(q),
        decision_example=decision_example(len(q.options)),
    )


def demo_messages(i: int) -> list[dict[str, str]]:
    """A small, fixed prompt for throughput measurements (varied lengths, like a real batch)."""
    q = Question(
        nct_id=f"NCT{i:08d}",
        endpoint_key="outcome:0",
        question_index=0,
        brief_title=f"Dose {10 * (i + 1)} mg of drug X versus placebo in type 2 diabetes" + " (extension)" * (i % 3),
        endpoint={"measure": "Change from baseline in HbA1c", "timeFrame": f"Week {4 * (i % 6 + 1)}"},
        arms=[
            {"label": "Drug X", "type": "EXPERIMENTAL", "interventionNames": [f"Drug: X {10 * (i + 1)} mg"]},
            {"label": "Placebo", "type": "PLACEBO_COMPARATOR", "interventionNames": ["Drug: placebo"]},
        ],
        meta_label="single_arm",
        options=[
            "The study arm Drug X has achieved statistically significant improvements over the study arm Placebo.",
            "The study arm Drug X has not achieved statistically significant improvements over the study arm Placebo.",
        ],
    )
    return direct_messages(q)
