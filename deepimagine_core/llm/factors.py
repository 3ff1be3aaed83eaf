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
from deepimagine_core.tables import BENCHMARK_REGISTRATIONS_TABLE, TRIALS_TABLE

FACTORS = ("intervention", "arm", "outcome", "population", "geography", "design")
DEFAULT_ORDER = FACTORS
# operator families: one adapter each. arm and outcome are learnt from natural pairs (SFT); intervention and context
# (population, geography, design) from approximate pairs across trials (GRPO on the observed change).
FAMILIES = {"intervention": "intervention", "arm": "arm", "outcome": "outcome", "population": "context",
            "geography": "context", "design": "context"}
OPERATOR_FAMILIES = ("arm", "outcome", "intervention", "context")
SFT_FAMILIES = ("arm", "outcome")
RL_FAMILIES = ("intervention", "context")
TRIAL_COLUMNS = (
    "nct_id", "conditions", "sex", "minimum_age", "maximum_age", "healthy_volunteers", "eligibility_criteria",
    "countries", "phases", "allocation", "masking", "intervention_model", "primary_purpose", "enrollment",
)
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


def _arms(q: Question) -> str | None:
    """Each arm's label and type, the compared ones first when known (their interventions and doses are the
    intervention factor's value; labels often carry the dose, as in dose-ranging arms)."""
    if not q.arms:
        return None
    compared = [q.extra.get("arm_x"), q.extra.get("arm_y")]
    arms = sorted(q.arms, key=lambda a: compared.index(a.get("label")) if a.get("label") in compared else 2)
    parts = [f"{clip(a.get('label') or '?', 100)} [{a.get('type') or 'UNKNOWN'}]" for a in arms]
    return f"{len(q.arms)} arms: " + "; ".join(parts)


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
        "arm": _arms(q),
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


def factor_adapters(families: Mapping[str, str]) -> dict[str, str]:
    """family -> adapter folder (`arm`, `outcome`, `intervention`, `context`) as factor -> adapter folder: each factor
    uses its own family's operator (population, geography and design share the context one)."""
    unknown = sorted(set(families) - set(OPERATOR_FAMILIES))
    if unknown:
        raise ValueError(f"unknown operator families {unknown}; known: {OPERATOR_FAMILIES}")
    return {factor: str(families[family]) for factor, family in FAMILIES.items() if family in families}


def load_trials(store) -> dict[str, dict[str, Any]]:
    """nct_id → the `trials` columns the factors use, from a `Store`: table `trials`, then the fetched registrations
    of benchmark trials it lacks (`benchmark_registrations`); {} when neither is built."""
    out: dict[str, dict[str, Any]] = {}
    for name in (BENCHMARK_REGISTRATIONS_TABLE, TRIALS_TABLE):  # the trials table wins
        if store is not None and store.has_table(name):
            table = store.read_table(name)
            columns = [c for c in TRIAL_COLUMNS if c in table.column_names]
            out.update({row["nct_id"]: row for row in table.select(columns).to_pylist()})
    return out

