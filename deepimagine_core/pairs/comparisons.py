"""From a trial's posted analyses to the comparisons questions are made of, and a reason code for every one not used.

A *comparison* is one statistical analysis of an outcome between two result groups that map to two different protocol
arms, with its significance and (when polarity and both group values allow) which arm did better. An analysis of more
than two groups is used as the comparison of the two groups its description names, when it names exactly two. A
*one-arm test* is an analysis of the single group of a one-arm trial (a stated hypothesis test against a fixed value,
history or baseline). Everything else is recorded with one of the `SKIP_REASONS` codes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from deepimagine_core.pairs.polarity import Polarity, outcome_polarity
from deepimagine_core.pairs.significance import is_superiority_test, significance
from deepimagine_core.pairs.trialdata import CONTROL_TYPES, Trial, arm_rank

__all__ = ["SKIP_REASONS", "comparisons", "direction", "group_value", "is_count_outcome", "one_arm_tests"]

#: Every reason an analysis yields no question, by code (the `question_skips` table's ``reason``).
SKIP_REASONS = {
    "no_group_ids": "the analysis names no result group",
    "single_group_outcome": "the outcome has one result group (nothing to compare)",
    "within_group_analysis": "an analysis of one group in a trial with several arms (e.g. change from baseline)",
    "multi_group_no_pair": "more than two groups, and the description does not name exactly two of them",
    "unknown_group_id": "a group id of the analysis is not among the outcome's groups",
    "group_unmapped": "a result group maps to no protocol arm",
    "same_arm": "both groups map to one arm",
    "not_superiority": "a non-inferiority or equivalence analysis",
    "p_inconclusive": "the p-value bound does not decide at alpha (e.g. '<0.1')",
    "no_p_no_ci": "no p-value and no two-sided CI",
    "one_sided_ci": "a one-sided CI without a p-value",
    "ci_null_unknown": "a CI whose null value the parameter type does not tell",
    "ci_level_missing": "a CI without a stated level",
    "ci_inconclusive": "a CI whose level does not decide at alpha",
    "repeated_pair": "another analysis of the same arm pair and outcome came first",
    "direction_unknown": "its questions need a direction, and polarity or group values do not give one",
    "excluded_outcome": "a pharmacokinetic, ECG or dose-finding outcome (no 'met' or better arm)",
    "one_arm_multi_group": "an analysis of several groups (subgroups) in a one-arm trial",
}
_SIGNIFICANCE_CODES = {
    "p-value bound inconclusive at alpha": "p_inconclusive", "no p-value and no two-sided CI": "no_p_no_ci",
    "one-sided CI without p-value": "one_sided_ci", "CI without a known null value (parameter type)": "ci_null_unknown",
    "CI level not stated": "ci_level_missing", "CI level inconclusive at alpha": "ci_inconclusive",
}
_COUNT_UNIT = re.compile(r"^\s*(?:participants|subjects|patients|people|persons|eyes)\s*$", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z]+")
_HAZARD = re.compile(r"hazard|\bcox\b|\bhr\b", re.IGNORECASE)

Skip = Callable[[dict, str, str], None]  # (analysis, reason code, detail)


def _row_label(row: dict) -> str:
    return " ".join(filter(None, (row.get("class_title"), row.get("category_title"))))


def named_row(rows: list[dict], analysis: dict | None) -> dict | None:
    """The one row (class / category) of a group that the analysis' description names by its whole title ("0.5
    hours: treatment difference ...", "... of favorable response rates"), longest titles first, each place in the
    text used once; None when it names none or several."""
    if not analysis:
        return None
    text = _norm(" ".join(filter(None, (analysis.get("groups_description"), analysis.get("estimate_comment")))))
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(_norm(_row_label(row)), []).append(row)
    found = []
    for label in sorted(by_label, key=len, reverse=True):
        at = text.find(label) if len(label) > 3 else -1
        if at >= 0:
            found.append(label)
            text = text[:at] + " | " + text[at + len(label):]
    if len(found) != 1 or len(by_label[found[0]]) != 1:
        return None
    return by_label[found[0]][0]


def is_count_outcome(outcome: dict) -> bool:
    """Whether the outcome counts participants (``COUNT_OF_PARTICIPANTS``, or ``NUMBER`` in participants, subjects,
    patients, people, persons or eyes)."""
    return (outcome.get("param_type") == "COUNT_OF_PARTICIPANTS"
            or (outcome.get("param_type") == "NUMBER" and bool(_COUNT_UNIT.match(outcome.get("unit") or ""))))


def group_value(trial: Trial, outcome: dict, group: dict,
                analysis: dict | None = None) -> tuple[dict | None, str | None]:
    """The comparable value of one result group: the mean/median/..., or the share of participants for counts; of
    the class or category the analysis names when the group has several."""
    rows = trial.results_by_group.get((outcome["outcome_index"], group["group_id"]), [])
    if not rows:
        return None, "no result value for a group"
    row = rows[0] if len(rows) == 1 else named_row(rows, analysis)
    if row is None:
        return None, "several values per group (classes or categories)"
    if row.get("value") is None:
        return None, "non-numeric group value"
    n = row.get("participants_analyzed") or group.get("participants_analyzed")
    value = float(row["value"])
    is_count = is_count_outcome(outcome)
    comparable = value
    if is_count:
        if not n:
            return None, "count of participants without a denominator"
        comparable = value / n
    return {"label": group.get("arm_label"), "group_id": group["group_id"], "title": group.get("title"),
            "value": value, "spread": row.get("spread"), "n": n, "comparable": comparable,
            "comparable_kind": "share" if is_count else "value",
            "arm_match_method": group.get("arm_match_method"), "row": _row_label(row) if len(rows) > 1 else None}, None


def _norm(text: str | None) -> str:
    return f" {_NON_WORD.sub(' ', (text or '').lower()).strip()} "


def named_pair(a: dict, groups: dict[str, dict]) -> list[str] | None:
    """The two group ids a many-group analysis compares, when its description names exactly two of its groups (by
    title or arm label, longest names first, each place in the text used once); else None."""
    text = _norm(" ".join(filter(None, (a.get("groups_description"), a.get("estimate_comment")))))
    if len(text) < 4:
        return None
    names = sorted(((len(n), n, gid) for gid in dict.fromkeys(a.get("group_ids") or []) if gid in groups
                    for n in {_norm(groups[gid].get("title")), _norm(groups[gid].get("arm_label"))} if len(n) > 3),
                   reverse=True)
    found: list[str] = []
    for _, name, gid in names:
        at = text.find(name)
        if at < 0:
            continue
        text = text[:at] + " | " + text[at + len(name):]  # consumed: a shorter name inside it does not count again
        if gid not in found:
            found.append(gid)
    return found if len(found) == 2 else None


def _superiority_significance(a: dict, alpha: float, skip: Skip) -> tuple[bool | None, str]:
    """The significance of a superiority test; (None, reason) and the analysis skipped when there is none."""
    if not is_superiority_test(a.get("non_inferiority_type")):
        skip(a, "not_superiority", a.get("non_inferiority_type") or "")
        return None, "not_superiority"
    sig, source = significance(a, alpha)
    if sig is None:
        skip(a, _SIGNIFICANCE_CODES[source], source)
    return sig, source


def comparisons(trial: Trial, outcome: dict, alpha: float, skip: Skip) -> list[dict]:
    """Usable two-arm comparisons of one outcome (first analysis per arm pair); every other analysis is skipped
    with its reason code."""
    groups = trial.groups_by_outcome.get(outcome["outcome_index"], {})
    out, seen = [], set()
    for a in trial.analyses_by_outcome.get(outcome["outcome_index"], []):
        ids = list(dict.fromkeys(a.get("group_ids") or []))
        if not ids:
            skip(a, "no_group_ids", "")
            continue
        if len(groups) < 2:
            skip(a, "single_group_outcome", "")
            continue
        if len(ids) == 1:
            skip(a, "within_group_analysis", "")
            continue
        if any(g not in groups for g in ids):
            skip(a, "unknown_group_id", ", ".join(g for g in ids if g not in groups))
            continue
        pair_from = None
        if len(ids) > 2:
            ids = named_pair(a, groups)
            if ids is None:
                skip(a, "multi_group_no_pair", f"{len(a['group_ids'])} groups")
                continue
            pair_from = "groups_description"
        gs = [groups[g] for g in ids]
        arms = [trial.arm_by_label.get(g.get("arm_label") or "") for g in gs]
        if any(arm is None for arm in arms):
            skip(a, "group_unmapped", "; ".join(str(g.get("title")) for g, arm in zip(gs, arms) if arm is None))
            continue
        if arms[0]["label"] == arms[1]["label"]:
            skip(a, "same_arm", arms[0]["label"])
            continue
        sig, source = _superiority_significance(a, alpha, skip)
        if sig is None:
            continue
        order = sorted(range(2), key=lambda i: (arm_rank(arms[i].get("type")), arms[i]["arm_index"] or 0))
        (gx, ax), (gy, ay) = [(gs[i], arms[i]) for i in order]
        key = (ax["label"], ay["label"])
        if key in seen:
            skip(a, "repeated_pair", f"{key[0]} vs {key[1]}")
            continue
        seen.add(key)
        out.append({"analysis": a, "gx": gx, "gy": gy, "x": ax, "y": ay, "significant": sig, "source": source,
                    "singled_out": arm_rank(ax.get("type")) < arm_rank(ay.get("type")),
                    "head_to_head": ay.get("type") not in CONTROL_TYPES, "pair_from": pair_from})
    return out


def one_arm_tests(trial: Trial, outcome: dict, alpha: float, skip: Skip) -> list[dict]:
    """Hypothesis tests of a one-arm trial's outcome: analyses of its single group, with their significance."""
    groups = trial.groups_by_outcome.get(outcome["outcome_index"], {})
    arm = trial.arms[0]
    out = []
    for a in trial.analyses_by_outcome.get(outcome["outcome_index"], []):
        ids = list(dict.fromkeys(a.get("group_ids") or []))
        if not ids:
            skip(a, "no_group_ids", "")
            continue
        if len(ids) > 1:
            skip(a, "one_arm_multi_group", f"{len(ids)} groups")
            continue
        if ids[0] not in groups:
            skip(a, "unknown_group_id", ids[0])
            continue
        sig, source = _superiority_significance(a, alpha, skip)
        if sig is None:
            continue
        out.append({"analysis": a, "gx": groups[ids[0]], "gy": None, "x": arm, "y": None, "significant": sig,
                    "source": source, "singled_out": False, "head_to_head": False, "pair_from": None,
                    "x_better": None, "values": {"x": None, "y": None}, "why_no_direction": "one-arm test"})
    return out


def direction(trial: Trial, outcome: dict, c: dict, polarity: Polarity) -> tuple[bool | None, dict, str | None]:
    """Whether arm X did better (from both group values and the polarity), the values, and why not when None."""
    vx, why_x = group_value(trial, outcome, c["gx"], c["analysis"])
    vy, why_y = group_value(trial, outcome, c["gy"], c["analysis"])
    values = {"x": vx, "y": vy}
    if vx is None or vy is None:
        return None, values, why_x or why_y
    if polarity.higher_is_better is None:
        return None, values, "unknown polarity"
    if vx["row"] != vy["row"]:
        return None, values, "the groups' named rows differ"
    if vx["row"] and outcome_polarity(f"{outcome.get('title')} - {vx['row']}", outcome.get("description"),
                                      outcome.get("unit"), outcome.get("param_type")).higher_is_better \
            is not polarity.higher_is_better:
        return None, values, "the named category changes the polarity"  # "Clinical failure" under "Response"
    if vx["comparable"] == vy["comparable"]:
        return None, values, "equal group values"
    x_higher = vx["comparable"] > vy["comparable"]
    x_better = x_higher == polarity.higher_is_better
    if _hazard_ratio_disagrees(c["analysis"], polarity, x_better):
        return None, values, "hazard ratio and group values disagree"
    return x_better, values, None


def _hazard_ratio_disagrees(a: dict, polarity: Polarity, x_better: bool) -> bool:
    """True when a hazard ratio, read as arm X over arm Y (experimental over control), favours the other arm than
    the group values (medians of time-to-event outcomes can, when the curves cross): the direction is then unclear.
    The hazard is of the outcome's event: a bad one for survival and time-to-bad-event measures, and for proportions
    the event itself."""
    timed = polarity.frame in ("time_to", "duration") or "surviv" in polarity.rule.lower()
    if not _HAZARD.search(a.get("param_type") or "") or not (timed or polarity.frame in ("proportion", "count")):
        return False
    est, lo, hi = a.get("param_value"), a.get("ci_lower"), a.get("ci_upper")
    if est is None and lo is not None and hi is not None and lo > 0 and hi > 0:
        est = math.sqrt(lo * hi)
    if est is None or est <= 0 or est == 1:
        return False
    event_good = polarity.higher_is_better if polarity.frame in ("proportion", "count") else \
        not polarity.higher_is_better
    return ((est > 1) == event_good) != x_better
