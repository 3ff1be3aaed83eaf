"""Historical questions: CT Open-style questions whose answers are read off posted statistical analyses.

Every two-group statistical analysis of an outcome (``outcome_analyses``) whose groups map to two different protocol
arms is one *comparison*. The arm of lower rank (EXPERIMENTAL < OTHER < ACTIVE_COMPARATOR <
PLACEBO/SHAM/NO_INTERVENTION) is arm X, the other arm Y; X is *singled out* when its rank is strictly lower. From
the comparisons of one outcome we ask, in CT Open's own option sentences:

- ``superiority`` (2 options, explicit; one per singled-out comparison) — "The study arm X has achieved statistically
  significant improvements over the study arm Y ...". Right answer 0 iff the analysis is significant AND X is better.
  ``label_kind = "direction"``: it needs the outcome's polarity (`polarity.outcome_polarity`) and the group values.
- ``comparative`` (3 options, explicit; one per head-to-head comparison: Y is an active comparator, or X and Y have the
  same rank) — "Study Arm Y is statistically significantly worse than Study Arm X." / "... X ... worse than ... Y." /
  "No statistically significant difference between Study Arm X and Study Arm Y.". ``label_kind = "direction"``.
- ``endpoint_met`` (2 options, implicit; one per outcome with singled-out comparisons) — "This endpoint is met." when
  one experimental arm is compared (meta_label ``no_arm``), "At least one arm listed here met this endpoint." when
  several are (``no_distinguishable_arm``). Right answer 0 iff at least one of those comparisons is significant.
  The experimental arm's comparisons with several controls count as one arm.
  ``label_kind = "significance"``: no polarity, no values. It reads "met" as "significantly different from control";
  the column ``x_better`` says whether the direction (when known) agrees, so evaluation can measure the difference.

Direction questions demand the same evidence whatever the label: polarity known and both group values usable, even
when the analysis is not significant (where the label would not need them). Otherwise unknown polarity would drop
only significant results and bias the labels towards "not achieved".

Significance (`significance`): from the p-value, relation-aware at level ``alpha`` — "<0.05" is significant,
"=0.05" and ">0.05" are not, "<0.1" or "<=0.05" decide nothing; without a p-value, from a two-sided CI of level
≥ 1 − α that excludes the null (1 for ratios, 0 for differences), or one of level ≤ 1 − α that contains it.
Non-inferiority and equivalence analyses are not superiority results and are skipped.

Everything not used is counted by reason (`build_questions` returns the counts); nothing is guessed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from deepimagine_core.pairs.polarity import Polarity, outcome_polarity
from deepimagine_core.pairs.trialdata import CONTROL_TYPES, Trial, arm_rank, endpoint_json, iter_trials
from deepimagine_core.questions import Question, category_of
from deepimagine_core.tables import TRIALS_TABLE

__all__ = ["HISTORICAL_QUESTIONS", "build_questions", "questions_from_table", "significance", "superiority_options",
           "comparative_options", "ENDPOINT_MET_OPTIONS", "ANY_ARM_MET_OPTIONS"]

# CT Open's option sentences, verbatim (checked against the Winter 2025 records).
ENDPOINT_MET_OPTIONS = ("This endpoint is met.", "This endpoint is not met.")
ANY_ARM_MET_OPTIONS = ("At least one arm listed here met this endpoint.", "No arm listed here met this endpoint.")


def superiority_options(x: str, y: str) -> list[str]:
    return [
        f"The study arm {x} has achieved statistically significant improvements over the study arm {y} with respect to "
        f"this specific endpoint.",
        f"The study arm {x} has not achieved statistically significant improvements over the study arm {y} "
        f"with respect to this specific endpoint, either because of no statistical effect or worse effect.",
    ]


def comparative_options(x: str, y: str) -> list[str]:
    return [
        f"Study Arm {y} is statistically significantly worse than Study Arm {x}.",
        f"Study Arm {x} is statistically significantly worse than Study Arm {y}.",
        f"No statistically significant difference between Study Arm {x} and Study Arm {y}.",
    ]


_NOT_SUPERIORITY = frozenset({"NON_INFERIORITY", "EQUIVALENCE", "NON_INFERIORITY_OR_EQUIVALENCE"})
_RATIO = re.compile(r"ratio|\bhr\b|\bor\b|\brr\b|\bgmr\b|fold", re.IGNORECASE)
_LOG = re.compile(r"\blog\b", re.IGNORECASE)
_DIFFERENCE = re.compile(r"differ|\bmean\b|median|slope|change|effect size|\brd\b|\bmd\b|\bdelta\b", re.IGNORECASE)
_COUNT_UNIT = re.compile(r"^\s*(?:participants|subjects|patients|people|persons|eyes)\s*$", re.IGNORECASE)


def _p_significant(p: float, relation: str | None, alpha: float) -> bool | None:
    relation = relation or "="
    if relation == "=":
        return p < alpha
    if relation == "<":
        return True if p <= alpha else None
    if relation == "<=":
        return True if p < alpha else None
    if relation in (">", ">="):
        return False if p >= alpha else None
    return None


def _null_value(param_type: str | None) -> float | None:
    text = (param_type or "").replace("_", " ")
    if _LOG.search(text):
        return 0.0
    if _RATIO.search(text):
        return 1.0
    if _DIFFERENCE.search(text):
        return 0.0
    return None


def significance(analysis: Mapping[str, Any], alpha: float = 0.05) -> tuple[bool | None, str]:
    """Whether an analysis is statistically significant at ``alpha``, and from what (``"p-value"``, ``"CI"``), or
    None and why not."""
    p = analysis.get("p_value")
    if p is not None:
        sig = _p_significant(float(p), analysis.get("p_value_relation"), alpha)
        if sig is None:
            return None, "p-value bound inconclusive at alpha"
        return sig, "p-value"
    lo, hi = analysis.get("ci_lower"), analysis.get("ci_upper")
    if lo is None or hi is None:
        return None, "no p-value and no two-sided CI"
    if (analysis.get("ci_n_sides") or "TWO_SIDED") != "TWO_SIDED":
        return None, "one-sided CI without p-value"
    null = _null_value(analysis.get("param_type"))
    if null is None:
        return None, "CI without a known null value (parameter type)"
    pct = analysis.get("ci_pct")
    if pct is None:
        return None, "CI level not stated"
    excludes = lo > null or hi < null
    level = 100.0 * (1.0 - alpha)
    if excludes and pct >= level - 1e-9:
        return True, "CI"
    if not excludes and pct <= level + 1e-9:
        return False, "CI"
    return None, "CI level inconclusive at alpha"


HISTORICAL_QUESTIONS = pa.schema(
    [
        ("question_id", pa.string()),
        ("nct_id", pa.string()),
        ("endpoint_key", pa.string()),
        ("question_index", pa.int64()),
        ("brief_title", pa.string()),
        ("endpoint", pa.string()),  # JSON {measure, description, timeFrame, outcome_type}
        ("arms", pa.string()),  # JSON, API v2 armGroups
        ("meta_label", pa.string()),
        ("options", pa.list_(pa.string())),
        ("answer", pa.int64()),
        ("extra", pa.string()),  # JSON: kind, label_kind, arm_x, arm_y, listed_arms, question_id, split
        ("category", pa.string()),
        ("split", pa.string()),
        ("kind", pa.string()),  # superiority | comparative | endpoint_met
        ("label_kind", pa.string()),  # direction | significance
        ("results_first_posted", pa.date32()),
        ("outcome_index", pa.int64()),
        ("analysis_index", pa.int64()),  # the deciding analysis (endpoint_met: first significant, else first)
        ("analysis_indices", pa.list_(pa.int64())),
        ("arm_x", pa.string()),
        ("arm_y", pa.string()),
        ("significant", pa.bool_()),
        ("significance_source", pa.string()),  # p-value | CI
        ("x_better", pa.bool_()),  # direction from values and polarity; null when unknown
        ("p_value", pa.float64()),
        ("p_value_raw", pa.string()),
        ("p_value_relation", pa.string()),
        ("ci_pct", pa.float64()),
        ("ci_lower", pa.float64()),
        ("ci_upper", pa.float64()),
        ("param_type", pa.string()),  # the analysis' parameter (e.g. "Mean Difference (Final Values)")
        ("method", pa.string()),
        ("non_inferiority_type", pa.string()),
        ("outcome_param_type", pa.string()),
        ("unit", pa.string()),
        ("group_values", pa.string()),  # JSON {"x": {...}, "y": {...}}; endpoint_met: every comparison
        ("polarity", pa.bool_()),  # higher is better?
        ("polarity_rule", pa.string()),
    ],
    metadata={"doc": "One row per historical question (see deepimagine_core.pairs.historical)."},
)


def _group_value(trial: Trial, outcome: dict, group: dict) -> tuple[dict | None, str | None]:
    """The comparable value of one result group: the mean/median/..., or the share of participants for counts."""
    rows = trial.results_by_group.get((outcome["outcome_index"], group["group_id"]), [])
    if not rows:
        return None, "no result value for a group"
    if len(rows) > 1:
        return None, "several values per group (classes or categories)"
    row = rows[0]
    if row.get("value") is None:
        return None, "non-numeric group value"
    n = row.get("participants_analyzed") or group.get("participants_analyzed")
    value = float(row["value"])
    is_count = (outcome.get("param_type") == "COUNT_OF_PARTICIPANTS"
                or (outcome.get("param_type") == "NUMBER" and _COUNT_UNIT.match(outcome.get("unit") or "")))
    comparable = value
    if is_count:
        if not n:
            return None, "count of participants without a denominator"
        comparable = value / n
    return {"label": group.get("arm_label"), "group_id": group["group_id"], "title": group.get("title"),
            "value": value, "spread": row.get("spread"), "n": n, "comparable": comparable,
            "comparable_kind": "share" if is_count else "value"}, None


def _analysis_evidence(a: dict) -> dict:
    keys = ("p_value", "p_value_raw", "p_value_relation", "ci_pct", "ci_lower", "ci_upper", "param_type", "method",
            "non_inferiority_type")
    return {k: a.get(k) for k in keys}


def _comparisons(trial: Trial, outcome: dict, alpha: float, skips: Counter) -> list[dict]:
    """Usable two-arm comparisons of one outcome, first analysis per arm pair; every other analysis counted."""
    groups = trial.groups_by_outcome.get(outcome["outcome_index"], {})
    out, seen = [], set()
    for a in trial.analyses_by_outcome.get(outcome["outcome_index"], []):
        ids = list(a.get("group_ids") or [])
        if not ids:
            skips["analysis without group ids"] += 1
            continue
        if len(groups) < 2:
            skips["single-group outcome"] += 1
            continue
        if len(set(ids)) == 1:
            skips["single-group analysis"] += 1
            continue
        if len(set(ids)) > 2:
            skips["analysis of more than two groups"] += 1
            continue
        if any(g not in groups for g in ids):
            skips["analysis group id not among the outcome's groups"] += 1
            continue
        gs = [groups[g] for g in dict.fromkeys(ids)]
        arms = [trial.arm_by_label.get(g.get("arm_label") or "") for g in gs]
        if any(arm is None for arm in arms):
            skips["group maps to no arm"] += 1
            continue
        if arms[0]["label"] == arms[1]["label"]:
            skips["both groups map to one arm"] += 1
            continue
        if (a.get("non_inferiority_type") or "") in _NOT_SUPERIORITY:
            skips["non-inferiority or equivalence analysis"] += 1
            continue
        sig, source = significance(a, alpha)
        if sig is None:
            skips[source] += 1
            continue
        order = sorted(range(2), key=lambda i: (arm_rank(arms[i].get("type")), arms[i]["arm_index"] or 0))
        (gx, ax), (gy, ay) = [(gs[i], arms[i]) for i in order]
        key = (ax["label"], ay["label"])
        if key in seen:
            skips["repeated analysis of the same arm pair"] += 1
            continue
        seen.add(key)
        out.append({"analysis": a, "gx": gx, "gy": gy, "x": ax, "y": ay, "significant": sig, "source": source,
                    "singled_out": arm_rank(ax.get("type")) < arm_rank(ay.get("type")),
                    "head_to_head": ay.get("type") not in CONTROL_TYPES})
    return out


def _direction(trial: Trial, outcome: dict, c: dict, polarity: Polarity) -> tuple[bool | None, dict, str | None]:
    vx, why_x = _group_value(trial, outcome, c["gx"])
    vy, why_y = _group_value(trial, outcome, c["gy"])
    values = {"x": vx, "y": vy}
    if vx is None or vy is None:
        return None, values, why_x or why_y
    if polarity.higher_is_better is None:
        return None, values, "unknown polarity"
    if vx["comparable"] == vy["comparable"]:
        return None, values, "equal group values"
    x_higher = vx["comparable"] > vy["comparable"]
    return x_higher == polarity.higher_is_better, values, None


class _Builder:
    def __init__(self, alpha: float, splits: Mapping[str, str]):
        self.alpha = alpha
        self.splits = splits
        self.rows: list[dict] = []
        self.skips: Counter[str] = Counter()

    def add_trial(self, trial: Trial) -> None:
        analyses = sum(len(v) for v in trial.analyses_by_outcome.values())
        if analyses == 0:
            return
        if len(trial.arms) < 2:
            self.skips["one-arm trial"] += analyses
            return
        arms_json = json.dumps(trial.arms_json(), sort_keys=True)
        for outcome in sorted(trial.outcomes, key=lambda o: o["outcome_index"]):
            comparisons = _comparisons(trial, outcome, self.alpha, self.skips)
            if comparisons:
                self._add_outcome(trial, outcome, comparisons, arms_json)

    def _add_outcome(self, trial: Trial, outcome: dict, comparisons: list[dict], arms_json: str) -> None:
        polarity = outcome_polarity(outcome.get("title"), outcome.get("description"), outcome.get("unit"),
                                    outcome.get("param_type"))
        for c in comparisons:
            c["x_better"], c["values"], c["why_no_direction"] = _direction(trial, outcome, c, polarity)
        base = {"trial": trial, "outcome": outcome, "arms_json": arms_json, "polarity": polarity}
        index = 0
        singled = [c for c in comparisons if c["singled_out"]]
        explicit_meta = "single_arm" if len({c["x"]["label"] for c in singled}) <= 1 else "distinguishable_arm"
        head_to_head = [c for c in comparisons if c["head_to_head"]]
        for kind, selected in (("superiority", singled), ("comparative", head_to_head)):
            for c in selected:
                if c["x_better"] is None:
                    self.skips[f"{kind}: {c['why_no_direction']}"] += 1
                    continue
                x, y = c["x"]["label"], c["y"]["label"]
                if kind == "superiority":
                    options, answer = superiority_options(x, y), 0 if (c["significant"] and c["x_better"]) else 1
                else:
                    options = comparative_options(x, y)
                    answer = 2 if not c["significant"] else (0 if c["x_better"] else 1)
                self._emit(base, index, kind, "direction", explicit_meta, options, answer, [c])
                index += 1
        if singled:
            if polarity.frame == "excluded" and not polarity.rule.startswith("excluded: ambiguous_quantity"):
                self.skips["endpoint_met: pharmacokinetic, ECG or dose-finding outcome"] += 1
                return
            met = any(c["significant"] for c in singled)
            several = len({c["x"]["label"] for c in singled}) > 1  # several experimental arms, not comparisons
            meta, options = (("no_distinguishable_arm", ANY_ARM_MET_OPTIONS) if several
                             else ("no_arm", ENDPOINT_MET_OPTIONS))
            self._emit(base, index, "endpoint_met", "significance", meta, list(options), 0 if met else 1, singled)

    def _emit(self, base: dict, index: int, kind: str, label_kind: str, meta: str, options: list[str], answer: int,
              used: list[dict]) -> None:
        trial, outcome, polarity = base["trial"], base["outcome"], base["polarity"]
        deciding = next((c for c in used if c["significant"]), used[0]) if kind == "endpoint_met" else used[0]
        a = deciding["analysis"]
        endpoint_key = f"outcome:{outcome['outcome_index']}"
        question_id = f"{trial.nct_id}|{endpoint_key}|{index}"
        split = self.splits.get(trial.nct_id, "unassigned")
        listed = sorted({c["x"]["label"] for c in used}) if kind == "endpoint_met" else []
        extra = {"question_id": question_id, "split": split, "kind": kind, "label_kind": label_kind,
                 "arm_x": deciding["x"]["label"], "arm_y": deciding["y"]["label"], "listed_arms": listed,
                 "source": "historical", "alpha": self.alpha}
        # The columns of Question.to_row(), built directly: asdict() deep-copies the arms of every question (slow).
        row = {"nct_id": trial.nct_id, "endpoint_key": endpoint_key, "question_index": index,
               "brief_title": trial.trial.get("brief_title") or "",
               "endpoint": json.dumps(endpoint_json(outcome), sort_keys=True), "arms": base["arms_json"],
               "meta_label": meta, "options": options, "answer": answer,
               "extra": json.dumps(extra, sort_keys=True, default=str), "category": category_of(len(options), meta)}
        values = ({"x": deciding["values"]["x"], "y": deciding["values"]["y"]} if kind != "endpoint_met" else
                  [{"x": c["x"]["label"], "y": c["y"]["label"], "analysis_index": c["analysis"]["analysis_index"],
                    "significant": c["significant"], "x_better": c["x_better"], **c["values"]} for c in used])
        row.update(
            question_id=question_id, split=split, kind=kind, label_kind=label_kind,
            results_first_posted=trial.trial.get("results_first_posted"), outcome_index=outcome["outcome_index"],
            analysis_index=a["analysis_index"], analysis_indices=[c["analysis"]["analysis_index"] for c in used],
            arm_x=deciding["x"]["label"], arm_y=deciding["y"]["label"], significant=deciding["significant"],
            significance_source=deciding["source"], x_better=deciding["x_better"],
            outcome_param_type=outcome.get("param_type"), unit=outcome.get("unit"),
            group_values=json.dumps(values, sort_keys=True, default=str),
            polarity=polarity.higher_is_better, polarity_rule=polarity.rule, **_analysis_evidence(a))
        self.rows.append(row)


def build_questions(
    tables: Mapping[str, pa.Table], alpha: float = 0.05, splits: Mapping[str, str] | None = None,
    progress: bool = False,
) -> tuple[pa.Table, dict[str, int]]:
    """Historical questions from the trial tables, and the number of analyses/questions skipped per reason.

    ``tables`` maps table names (``trials``, ``arm_groups``, ``interventions``, ``outcome_measures``,
    ``outcome_groups``, ``outcome_results``, ``outcome_analyses``) to Arrow tables in the schemas of
    ``deepimagine_core.ctgov.schemas``. ``splits`` maps nct_id → split (see `split.assign_splits`); trials not in it
    get ``"unassigned"``.
    """
    from tqdm.auto import tqdm

    builder = _Builder(alpha, splits or {})
    n = tables[TRIALS_TABLE].num_rows
    trials = tqdm(iter_trials(tables), total=n, desc="questions", unit="trial", disable=not progress, mininterval=2)
    for trial in trials:
        builder.add_trial(trial)
    table = pa.Table.from_pylist(builder.rows, schema=HISTORICAL_QUESTIONS)
    return table, dict(builder.skips.most_common())


def questions_from_table(table: pa.Table) -> list[Question]:
    """`Question` records (what every predictor consumes) from a ``historical_questions`` table."""
    return [Question.from_row(row) for row in table.to_pylist()]


def render_question(row: Mapping[str, Any]) -> str:
    """One question with its label and evidence, as markdown (for asset metadata and hand audits)."""
    endpoint = json.loads(row["endpoint"]) if isinstance(row["endpoint"], str) else row["endpoint"]
    category = category_of(len(row["options"]), row["meta_label"])
    lines = [f"**{row['nct_id']}** · {row['kind']} ({row['label_kind']}, {category})",
             f"- endpoint: {endpoint.get('measure')} [{endpoint.get('timeFrame')}]"]
    lines += [f"- {'✔' if i == row['answer'] else ' '} {opt}" for i, opt in enumerate(row["options"])]
    lines.append(f"- evidence: analysis {row['analysis_index']}, p={row['p_value_raw']!s} "
                 f"({row['significance_source']}), "
                 f"CI {row['ci_pct']}% [{row['ci_lower']}, {row['ci_upper']}], polarity {row['polarity']} "
                 f"({row['polarity_rule']}), x_better={row['x_better']}")
    return "\n".join(lines)
