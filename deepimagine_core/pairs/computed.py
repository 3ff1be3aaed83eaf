"""Comparisons computed from posted counts: the label source of safety endpoints, which rarely carry a posted analysis.

A *computed comparison* is made only where the record posts no statistical analysis of the outcome at all, and only
for a **safety outcome** (its title speaks of adverse events, safety, tolerability, side effects, toxicity, dose-
limiting or treatment-emergent events) **reported as a count of participants** (``COUNT_OF_PARTICIPANTS``, or
``NUMBER`` in participants / subjects / patients), with exactly one value per result group (one class, one
category), a whole number between 0 and the group's participants analysed — and not when the record leaves unclear
what the one value counts: a title that lists several counts ("Adverse Events, Serious Adverse Events and
Discontinuations"), or a title or description that says it counts events ("Number of unsolicited AEs") though the
unit says participants. For each two result groups that map to two different protocol arms (an arm with several
groups is left out: subgroups are not the arm) and that can be independent samples, the two-sided Fisher exact test of
the 2 x 2 table (participants with / without the event per group) is significant when p < ``alpha``. Fisher's test is
for independent samples: in a crossover or single-group design (``trials.intervention_model``), where a group is
often a treatment period of the same people, two groups whose participants analysed add up to more than the trial's
actual enrollment share participants and get no question (nor does a crossover without a known actual enrollment).
Parallel designs are not checked: their groups are the randomised arms, and where their analysed counts exceed the
enrollment the records read show a wrong or partial enrollment figure more often than shared participants. Which arm did better is read as for posted analyses
(`comparisons.direction`: the shares and the outcome's polarity).

Equal shares in the two groups (p = 1) answer "no difference" whichever arm would be better, so their questions are
kept though ``x_better`` is null (the outcome's polarity is still required, as for every directed question).
Computed comparisons give the explicit questions only (superiority and 3-way comparative): no trial states a
hypothesis about its safety counts, so "endpoint met" is not defined for them. Their questions say
``significance_source = "computed"``, carry the Fisher p-value, and have no ``analysis_index`` (no posted analysis).
"""

from __future__ import annotations

import re
from itertools import combinations

from deepimagine_core.pairs.comparisons import group_value, is_count_outcome
from deepimagine_core.pairs.trialdata import CONTROL_TYPES, Trial, arm_rank
from deepimagine_core.questions import normalise_words

__all__ = ["COMPUTED_METHOD", "COMPUTED_SCOPES", "SAFETY_WORDS", "check_computed_scope", "computed_comparisons",
           "counts_one_thing", "is_safety_outcome", "may_be_independent"]

#: Which outcomes get computed comparisons: "safety" (the rule above) or "none" (posted analyses only, the rule
#: before 2026-12-07).
COMPUTED_SCOPES = ("safety", "none")
#: Designs whose result groups may be the same participants in several treatment periods.
_WITHIN_DESIGNS = frozenset({"CROSSOVER", "SINGLE_GROUP"})
COMPUTED_METHOD = "Fisher exact test, two-sided (computed from the posted counts; no analysis was posted)"
#: Safety wording, over `questions.normalise_words` text (a leading space marks a word start); `evaluation.features`
#: uses the same words for its "safety" endpoint kind.
SAFETY_WORDS = r"adverse|safety|tolerab|side effect|toxicit|dose limiting|treatment emergent| teae"
_SAFETY = re.compile(SAFETY_WORDS)
_COUNTED = r"(?:adverse (?:events?|experiences?|reactions?|effects?)|aes?|saes?|teaes?|deaths?|discontinuations?|" \
           r"withdrawals?|toxicit(?:y|ies)|side effects?)"
# "Adverse Events, Serious Adverse Events and Discontinuations ...", "AEs (...) and SAEs": several counts, one value
_SEVERAL_COUNTS = re.compile(rf"\b{_COUNTED}\b(?:\s*\([^)]*\))?\s*(?:,|\band\b|\bor\b|&|/)\s*(?:[\w-]+\s+){{0,3}}"
                             rf"(?:serious\b|severe\b|{_COUNTED}\b)")
# "Number of unsolicited AEs", "number of adverse events": events counted, not participants
_EVENTS_COUNTED = re.compile(r"\bnumber of (?:(?!participants|subjects|patients|people|persons)[\w-]+\s+){0,2}"
                             r"(?:adverse (?:events?|experiences?|reactions?)|aes|saes|teaes|events|episodes)\b")


def check_computed_scope(scope: str) -> str:
    """``scope`` if it is one of `COMPUTED_SCOPES`, else a ValueError naming them."""
    if scope not in COMPUTED_SCOPES:
        raise ValueError(f"computed must be one of {', '.join(COMPUTED_SCOPES)}, not {scope!r}")
    return scope


def is_safety_outcome(outcome: dict) -> bool:
    """Whether the outcome's title speaks of safety (`SAFETY_WORDS`)."""
    return bool(_SAFETY.search(normalise_words(outcome.get("title") or "")))


def counts_one_thing(outcome: dict) -> bool:
    """False when the title lists several counts, or the title or description says it counts events."""
    title, description = (outcome.get("title") or "").lower(), (outcome.get("description") or "").lower()
    return not (_SEVERAL_COUNTS.search(title) or _EVENTS_COUNTED.search(title) or _EVENTS_COUNTED.search(description))


def may_be_independent(trial_row: dict, n_x: int, n_y: int) -> bool:
    """Whether two groups of `n_x` and `n_y` participants analysed can be independent samples of the trial (`trials`
    row): in a crossover or single-group design, when they fit in its actual enrollment (without one: a single-group
    design yes, a crossover no); any other design, yes (module docstring)."""
    model = str(trial_row.get("intervention_model") or "").upper()
    if model not in _WITHIN_DESIGNS:
        return True
    enrolled = trial_row.get("enrollment")
    if enrolled and str(trial_row.get("enrollment_type") or "ACTUAL").upper() == "ACTUAL":
        return n_x + n_y <= enrolled
    return model != "CROSSOVER"


def _count(trial: Trial, outcome: dict, group: dict) -> tuple[int, int] | None:
    """(participants with the event, participants analysed) of one group, when the record gives both plainly: one
    value (`comparisons.group_value`, no analysis to name a row), a whole number within the group's denominator."""
    found, _ = group_value(trial, outcome, group)
    if found is None:
        return None
    value, n = found["value"], found["n"]
    if not n or value != int(value) or not 0 <= value <= n:
        return None
    return int(value), int(n)


def computed_comparisons(trial: Trial, outcome: dict, alpha: float) -> list[dict]:
    """The computed comparisons of one outcome (module docstring), in the shape `comparisons.comparisons` returns;
    [] when the outcome does not qualify."""
    index = outcome["outcome_index"]
    if (trial.analyses_by_outcome.get(index) or not is_count_outcome(outcome) or not is_safety_outcome(outcome)
            or not counts_one_thing(outcome)):
        return []
    groups = list(trial.groups_by_outcome.get(index, {}).values())
    arms = [trial.arm_by_label.get(g.get("arm_label") or "") for g in groups]
    per_arm: dict[str, int] = {}
    for arm in arms:
        if arm is not None:
            per_arm[arm["label"]] = per_arm.get(arm["label"], 0) + 1
    usable = [(g, arm, count) for g, arm in zip(groups, arms)
              if arm is not None and per_arm[arm["label"]] == 1 and (count := _count(trial, outcome, g)) is not None]
    if len(usable) < 2:
        return []
    from scipy.stats import fisher_exact

    out = []
    for pair in combinations(usable, 2):
        (gx, ax, (ex, nx)), (gy, ay, (ey, ny)) = sorted(
            pair, key=lambda u: (arm_rank(u[1].get("type")), u[1].get("arm_index") or 0))
        if not may_be_independent(trial.trial, nx, ny):
            continue
        p = float(fisher_exact([[ex, nx - ex], [ey, ny - ey]], alternative="two-sided")[1])
        analysis = {"outcome_index": index, "analysis_index": None, "group_ids": [gx["group_id"], gy["group_id"]],
                    "p_value": p, "p_value_raw": f"{p:.3g}", "p_value_relation": "=", "method": COMPUTED_METHOD,
                    "param_type": None, "non_inferiority_type": None, "ci_pct": None, "ci_lower": None,
                    "ci_upper": None}
        out.append({"analysis": analysis, "gx": gx, "gy": gy, "x": ax, "y": ay, "significant": p < alpha,
                    "source": "computed", "singled_out": arm_rank(ax.get("type")) < arm_rank(ay.get("type")),
                    "head_to_head": ay.get("type") not in CONTROL_TYPES, "pair_from": None})
    return out
