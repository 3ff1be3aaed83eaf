"""A trial configuration seen as one text per experimental factor, and which factors differ between two of them.

The imagination pathway changes one factor at a time from an anchor's configuration to the target's; this module says
what each factor's value is for a `Question` (plus, when known, its row of the `trials` table) and whether two values
match. A factor unknown on either side cannot be changed toward, so the pathway skips it and says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deepimagine_core.llm.prompts import clip
from deepimagine_core.questions import Question

FACTORS = ("intervention", "arm", "outcome", "population", "geography", "design")
DEFAULT_ORDER = FACTORS
LABELS = {
    "intervention": "Interventions",
    "arm": "Arms",
    "outcome": "Outcome",
    "population": "Population",
    "geography": "Geography",
    "design": "Design",
}
Configuration = dict[str, str | None]


def _interventions(q: Question) -> list[str]:
    names: list[str] = []
    for arm in q.arms:
        listed = arm.get("interventionNames") or [
            f"{i.get('type', '')}: {i.get('name', '')}".strip(": ") for i in arm.get("interventions") or []
        ]
        names += [str(n) for n in listed if n]
    return sorted(set(names), key=str.lower)


def _field(q: Question, trial: Mapping[str, Any] | None, name: str):
    """A trial attribute from the `trials` row, else from the question's `extra` (historical questions carry some)."""
    if trial is not None and trial.get(name) not in (None, "", []):
        return trial[name]
    return q.extra.get(name)


def _join(values) -> str:
    if values is None:
        return ""
    if isinstance(values, (list, tuple)):
        return ", ".join(str(v) for v in values if v not in (None, ""))
    return str(values)


def configuration_of(q: Question, trial: Mapping[str, Any] | None = None) -> Configuration:
    """Each factor's value as text, or None when the source does not say (e.g. CT Open records carry no eligibility
    or countries unless the trial is in the `trials` table)."""
    interventions = _interventions(q)
    arm_types = [str(a.get("type") or "UNKNOWN") for a in q.arms]
    ep = q.endpoint or {}
    outcome = clip(" ".join(x for x in (ep.get("measure") or "", f"[{ep['timeFrame']}]" if ep.get("timeFrame") else "")
                            if x), 300)

    population_parts = []
    if conditions := _join(_field(q, trial, "conditions")):
        population_parts.append(f"conditions: {conditions}")
    sex, lo, hi = _field(q, trial, "sex"), _field(q, trial, "minimum_age"), _field(q, trial, "maximum_age")
    if sex or lo or hi:
        population_parts.append(f"sex {sex or 'ALL'}, age {lo or 'any'} to {hi or 'any'}")
    if _field(q, trial, "healthy_volunteers"):
        population_parts.append("healthy volunteers")
    if criteria := _field(q, trial, "eligibility_criteria"):
        population_parts.append(f"eligibility: {clip(criteria, 300)}")

    design_parts = []
    for name in ("phases", "allocation", "masking", "intervention_model", "primary_purpose"):
        if value := _join(_field(q, trial, name)):
            design_parts.append(f"{name.replace('_', ' ')} {value}")
    if (enrollment := _field(q, trial, "enrollment")) not in (None, ""):
        design_parts.append(f"enrollment {enrollment}")

    return {
        "intervention": "; ".join(interventions) or None,
        "arm": f"{len(q.arms)} arms: " + ", ".join(arm_types) if q.arms else None,
        "outcome": outcome or None,
        "population": "; ".join(population_parts) or None,
        "geography": _join(_field(q, trial, "countries")) or None,
        "design": "; ".join(design_parts) or None,
    }


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9%.]+", " ", text.lower()).strip()


def same_value(factor: str, a: str, b: str) -> bool:
    """Whether two values of a factor match (case, punctuation and order of listed items ignored)."""
    if factor in ("intervention", "geography"):
        split = re.compile(r"[;,]")
        return {_norm(x) for x in split.split(a) if x.strip()} == {_norm(x) for x in split.split(b) if x.strip()}
    return _norm(a) == _norm(b)


def plan_changes(
    source: Configuration, target: Configuration, order: tuple[str, ...] | list[str] = DEFAULT_ORDER
) -> tuple[list[str], list[dict[str, str]]]:
    """The factors to change, in `order`, and the skipped ones with their reason ("same" or "unknown")."""
    unknown = [f for f in order if f not in FACTORS]
    if unknown:
        raise ValueError(f"unknown factors {unknown}; known: {FACTORS}")
    changes, skipped = [], []
    for factor in order:
        a, b = source.get(factor), target.get(factor)
        if a is None or b is None:
            skipped.append({"factor": factor, "reason": "unknown"})
        elif same_value(factor, a, b):
            skipped.append({"factor": factor, "reason": "same"})
        else:
            changes.append(factor)
    return changes, skipped


def describe_configuration(config: Configuration) -> str:
    lines = [f"{LABELS[f]}: {config[f]}" for f in FACTORS if config.get(f)]
    return "\n".join(lines) or "(nothing known)"
