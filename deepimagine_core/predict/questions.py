"""The standard questions about a planned trial, in CT Open's option sentences (`deepimagine_core.pairs.historical`).

For each primary outcome (and, optionally, each secondary one):

- for each arm X singled out against an arm Y of a more "control" type (EXPERIMENTAL < OTHER < ACTIVE_COMPARATOR <
  PLACEBO/SHAM/NO_INTERVENTION, the ordering historical questions use): "X achieved significant improvements over Y"
  (2-way explicit, `superiority`) and "Y worse than X / X worse than Y / no significant difference" (3-way explicit,
  `comparative`);
- for arms of the same rank where Y is not a placebo/sham/no-intervention arm (dose against dose, two active drugs):
  the 3-way `comparative` question, as historical questions ask it;
- "This endpoint is met." / "At least one arm listed here met this endpoint." (2-way implicit, `endpoint_met`) over the
  singled-out arms, or, for a one-arm trial or arms all of one rank, over every arm (`implicit_arms`); not asked for
  pharmacokinetic, ECG or dose-finding outcomes (as historical questions).

Every question has `answer=None`: nothing here knows a result.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from deepimagine_core.pairs.polarity import outcome_polarity
from deepimagine_core.pairs.historical import (
    ANY_ARM_MET_OPTIONS,
    ENDPOINT_MET_OPTIONS,
    comparative_options,
    superiority_options,
)
from deepimagine_core.pairs.trialdata import CONTROL_TYPES, arm_rank
from deepimagine_core.predict.design import DesignError, TrialDesign
from deepimagine_core.questions import Question

KINDS = ("superiority", "comparative", "endpoint_met")


def arm_pairs(arms: list[dict[str, Any]]) -> list[tuple[dict, dict, bool]]:
    """(X, Y, singled_out) for every pair of arms worth a question, X the less "control" arm (ties: listed first)."""
    out = []
    for i, j in combinations(range(len(arms)), 2):
        x, y = sorted((arms[i], arms[j]), key=lambda a: (arm_rank(a.get("type")), arms.index(a)))
        singled = arm_rank(x.get("type")) < arm_rank(y.get("type"))
        if singled or y.get("type") not in CONTROL_TYPES:
            out.append((x, y, singled))
    return out


def endpoint_of(outcome) -> dict[str, Any]:
    return {"measure": outcome.measure, "description": outcome.description, "timeFrame": outcome.time_frame,
            "outcome_type": f"{outcome.type}Outcomes"}


def implicit_arms(arms: list[dict[str, Any]], pairs: list[tuple[dict, dict, bool]]) -> tuple[list[str], bool, str]:
    """(arms an endpoint-met question lists, whether it lists several, label kind), as historical questions decide:
    the singled-out arms (several when more than one; "met" = a significant benefit over a comparator); else, for
    a one-arm trial or arms all of one rank, every arm (several when more than two; "met" = a significant test)."""
    singled = sorted({x["label"] for x, _, s in pairs if s})
    if singled:
        return singled, len(singled) > 1, "benefit"
    listed = sorted({a["label"] for a in arms})
    return listed, len(listed) > 2, "significance"


def design_questions(design: TrialDesign, secondary: bool = False) -> list[Question]:
    """Every standard question about `design` (primary outcomes; secondary ones too when `secondary`)."""
    arms = design.arms_json()
    pairs = arm_pairs(arms)
    singled = [(x, y) for x, y, s in pairs if s]
    meta = "single_arm" if len({x["label"] for x, _ in singled}) <= 1 else "distinguishable_arm"
    listed, several, label_kind = implicit_arms(arms, pairs)
    outcomes = [(i, o) for i, o in enumerate(design.outcomes) if o.type == "primary" or secondary]
    if not outcomes:
        raise DesignError(f"{design.source}: outcomes: no primary outcome (set type: primary, or ask for secondary "
                          "outcomes too)")
    questions: list[Question] = []
    for index, outcome in outcomes:
        endpoint = endpoint_of(outcome)
        base = {"nct_id": design.nct_id, "endpoint_key": f"outcome:{index}", "brief_title": design.title,
                "endpoint": endpoint, "arms": arms}
        n = 0

        def add(kind: str, meta_label: str, options: list[str], **extra: Any) -> None:
            nonlocal n
            questions.append(Question(**base, question_index=n, meta_label=meta_label, options=list(options),
                                      extra={"kind": kind, "source": "registration", **extra}))
            n += 1

        for x, y, is_singled in pairs:
            if is_singled:
                add("superiority", meta, superiority_options(x["label"], y["label"]),
                    arm_x=x["label"], arm_y=y["label"])
            add("comparative", meta, comparative_options(x["label"], y["label"]), arm_x=x["label"], arm_y=y["label"])
        polarity = outcome_polarity(outcome.measure, outcome.description)
        if polarity.frame == "excluded" and not polarity.rule.startswith("excluded: ambiguous_quantity"):
            continue  # pharmacokinetic, ECG or dose-finding outcome: no implicit question
        add("endpoint_met", "no_distinguishable_arm" if several else "no_arm",
            list(ANY_ARM_MET_OPTIONS if several else ENDPOINT_MET_OPTIONS), listed_arms=listed,
            label_kind=label_kind)
    return questions


def question_label(q: Question) -> str:
    """A short human label: "2-way: Drug X vs Placebo", "endpoint met: Drug X, Drug Y"."""
    kind = q.extra.get("kind")
    if kind == "endpoint_met":
        return f"endpoint met: {', '.join(q.extra.get('listed_arms') or [])}"
    ways = "2-way" if kind == "superiority" else "3-way"
    return f"{ways}: {q.extra.get('arm_x')} vs {q.extra.get('arm_y')}"


def _short(label: Any, limit: int = 24) -> str:
    label = " ".join(str(label).split())
    return label if len(label) <= limit else label[: limit - 1] + "…"


def option_names(q: Question) -> list[str]:
    """Short names of a question's options, in option order (also for historical questions, by their `kind`)."""
    kind = q.extra.get("kind")
    if kind == "superiority":
        return ["significantly better", "not significantly better"]
    if kind == "comparative":
        return [f"{_short(q.extra.get('arm_x'))} better", f"{_short(q.extra.get('arm_y'))} better",
                "no significant difference"]
    if len(q.options) == 2 and q.category == "2-way_implicit":
        return ["met", "not met"]
    return [f"option {i + 1}" for i in range(len(q.options))]
