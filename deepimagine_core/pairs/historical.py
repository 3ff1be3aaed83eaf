"""Historical questions: CT Open-style questions whose answers are read off posted statistical analyses.

This docstring is the one place every label is defined (the README's "Labels" table repeats it).

**Comparisons** (`comparisons`): a statistical analysis of one outcome between two result groups that map to two
different protocol arms (``outcome_groups.arm_label``, mapped by `deepimagine_core.ctgov.arm_match`; the method is
kept in ``arm_match_methods``), significant or not at ``alpha`` (`significance`), a superiority test (every
non-inferiority / equivalence spelling is left out), first analysis per arm pair. An analysis of more than two groups
counts as the comparison of the two groups its description names, when it names exactly two. The arm of lower rank
(EXPERIMENTAL < OTHER < ACTIVE_COMPARATOR < PLACEBO / SHAM / NO_INTERVENTION) is arm X, the other arm Y; X is
*singled out* when its rank is strictly lower. X is *better* (``x_better``) when its value (for counts of participants,
its share) is higher and higher is better for this outcome (``polarity``, `polarity.outcome_polarity`), or lower and
lower is better; unknown when the polarity or either value is unknown.

| kind | options (CT Open's sentences) | answer 0 when | label_kind |
|---|---|---|---|
| ``superiority`` (2-way explicit; one per singled-out comparison) | "The study arm X has achieved statistically significant improvements over the study arm Y ..." / "... has not achieved ..." | significant AND X better | direction |
| ``comparative`` (3-way explicit; one per comparison — with ``comparative="head_to_head"`` only where Y is an active comparator, or X and Y are of one rank) | "Study Arm Y is statistically significantly worse than Study Arm X." / "Study Arm X ... worse than ... Y." / "No statistically significant difference ..." | 0: significant and X better; 1: significant and Y better; 2: not significant | direction |
| ``endpoint_met`` (2-way implicit; one per outcome with singled-out comparisons) | "This endpoint is met." (one experimental arm, ``no_arm``) / "At least one arm listed here met this endpoint." (several, ``no_distinguishable_arm``) | at least one comparison shows a significant BENEFIT of X over its comparator; a significant harm is "not met" | benefit |
| ``endpoint_met`` (all arms of one rank, e.g. dose-ranging without control) | as above, the arms of the comparisons listed | at least one comparison is significant (one of the arms beat the other) | significance |
| ``endpoint_met`` (one-arm trial with a stated hypothesis test) | "This endpoint is met." | the test of the single group is significant | significance |

**Computed comparisons** (`pairs.computed`, ``computed="safety"``, the default): a safety outcome counted in
participants with no posted analysis at all gets, for each two groups mapped to two arms, the two-sided Fisher exact
test of the posted counts in place of an analysis (``significance_source`` "computed"); it yields the ``superiority``
and ``comparative`` questions above, never ``endpoint_met``; equal shares (p = 1) keep their "not / no difference"
questions though no arm is better (``x_better`` null; polarity still required).

Direction and benefit labels demand the same evidence whatever the answer: polarity known and both group values usable,
even when the analysis is not significant (where the answer would not need them), so that unknown polarity never
drops only significant results. A one-arm test has no comparator value: its "met" reads significance only (a
significant harm in a one-arm test would count as met; such tests are rare and the column ``label_kind`` says so).
Outcomes that are pharmacokinetic, ECG or dose-finding get no implicit question.

Every analysis that yields no question is a `question_skips` row with a reason code (`comparisons.SKIP_REASONS`);
`build_questions` also returns counts per reason, and per question kind skipped (e.g. "superiority: unknown polarity").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from deepimagine_core.pairs.comparisons import (
    SKIP_REASONS,
    comparisons,
    direction,
    group_value,
    one_arm_tests,
)
from deepimagine_core.pairs.computed import check_computed_scope, computed_comparisons
from deepimagine_core.pairs.polarity import outcome_polarity
from deepimagine_core.pairs.significance import significance
from deepimagine_core.pairs.trialdata import Trial, arm_rank, endpoint_json, iter_trials
from deepimagine_core.questions import Question, category_of
from deepimagine_core.tables import TRIALS_TABLE

__all__ = [
    "ANY_ARM_MET_OPTIONS",
    "ENDPOINT_MET_OPTIONS",
    "HISTORICAL_QUESTIONS",
    "QUESTION_SKIPS",
    "SKIP_REASONS",
    "build_question_tables",
    "build_questions",
    "comparative_options",
    "questions_from_table",
    "significance",
    "superiority_options",
]
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
        ("label_kind", pa.string()),  # direction | benefit | significance (module docstring)
        ("results_first_posted", pa.date32()),
        ("outcome_index", pa.int64()),
        ("analysis_index", pa.int64()),  # the deciding analysis (endpoint_met: first that meets it, else first); null
        # for computed comparisons
        ("analysis_indices", pa.list_(pa.int64())),
        ("arm_x", pa.string()),
        ("arm_y", pa.string()),
        ("significant", pa.bool_()),
        ("significance_source", pa.string()),  # p-value | CI | computed (pairs.computed: Fisher, no posted analysis)
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
        ("arm_match_methods", pa.list_(pa.string())),  # how the compared groups were mapped to arms (ctgov.arm_match)
    ],
    metadata={"doc": "One row per historical question (see deepimagine_core.pairs.historical)."},
)


QUESTION_SKIPS = pa.schema(
    [
        ("nct_id", pa.string()),
        ("outcome_index", pa.int64()),
        ("analysis_index", pa.int64()),
        ("reason", pa.string()),  # a code of comparisons.SKIP_REASONS
        ("detail", pa.string()),
    ],
    metadata={"doc": "One row per posted analysis that yields no historical question, with the reason."},
)


def _analysis_evidence(a: dict) -> dict:
    keys = ("p_value", "p_value_raw", "p_value_relation", "ci_pct", "ci_lower", "ci_upper", "param_type", "method",
            "non_inferiority_type")
    return {k: a.get(k) for k in keys}


def _key(a: dict) -> tuple[int, int]:
    return a["outcome_index"], a["analysis_index"]


COMPARATIVE_SCOPES = ("all", "head_to_head")


def check_comparative_scope(scope: str) -> str:
    """``scope`` if it is one of `COMPARATIVE_SCOPES`, else a ValueError naming them."""
    if scope not in COMPARATIVE_SCOPES:
        raise ValueError(f"comparative must be one of {', '.join(COMPARATIVE_SCOPES)}, not {scope!r}")
    return scope


class _Builder:
    def __init__(self, alpha: float, splits: Mapping[str, str], comparative: str = "all", computed: str = "safety"):
        self.alpha = alpha
        self.comparative = check_comparative_scope(comparative)
        self.computed = check_computed_scope(computed)
        self.splits = splits
        self.rows: list[dict] = []
        self.skip_rows: list[dict] = []
        self.counts: Counter[str] = Counter()
        self.reasons: dict[tuple[int, int], tuple[str, str]] = {}
        self.used: set[tuple[int, int]] = set()

    def _skip(self, a: dict, code: str, detail: str) -> None:
        self.reasons.setdefault(_key(a), (code, detail))

    def add_trial(self, trial: Trial) -> None:
        if not trial.analyses and (self.computed == "none" or len(trial.arms) < 2):
            return
        self.reasons, self.used = {}, set()
        arms_json = json.dumps(trial.arms_json(), sort_keys=True)
        one_rank = len(trial.arms) >= 2 and len({arm_rank(a.get("type")) for a in trial.arms}) == 1
        for outcome in sorted(trial.outcomes, key=lambda o: o["outcome_index"]):
            if len(trial.arms) == 1:
                tests = one_arm_tests(trial, outcome, self.alpha, self._skip)
                if tests:
                    self._add_outcome(trial, outcome, tests, arms_json, one_arm=True)
                continue
            found = comparisons(trial, outcome, self.alpha, self._skip)
            if found:
                self._add_outcome(trial, outcome, found, arms_json, one_rank=one_rank)
            elif self.computed == "safety" and (found := computed_comparisons(trial, outcome, self.alpha)):
                self._add_outcome(trial, outcome, found, arms_json, computed=True)
        for a in sorted(trial.analyses, key=_key):
            if _key(a) not in self.used:
                code, detail = self.reasons.get(_key(a), ("direction_unknown", ""))
                self.counts[code] += 1
                self.skip_rows.append({"nct_id": trial.nct_id, "outcome_index": a["outcome_index"],
                                       "analysis_index": a["analysis_index"], "reason": code, "detail": detail})

    def _add_outcome(self, trial: Trial, outcome: dict, found: list[dict], arms_json: str, *, one_arm: bool = False,
                     one_rank: bool = False, computed: bool = False) -> None:
        polarity = outcome_polarity(outcome.get("title"), outcome.get("description"), outcome.get("unit"),
                                    outcome.get("param_type"))
        base = {"trial": trial, "outcome": outcome, "arms_json": arms_json, "polarity": polarity, "index": 0}
        if not one_arm:
            for c in found:
                c["x_better"], c["values"], c["why_no_direction"] = direction(trial, outcome, c, polarity)
        singled = [c for c in found if c["singled_out"]]
        explicit_meta = "single_arm" if len({c["x"]["label"] for c in singled}) <= 1 else "distinguishable_arm"
        three_way = [] if one_arm else [c for c in found if self.comparative == "all" or c["head_to_head"]]
        for kind, selected in (("superiority", singled), ("comparative", three_way)):
            for c in selected:
                # equal shares of a computed test (p = 1) are "no difference" whichever arm is better: kept
                equal = computed and c["why_no_direction"] == "equal group values" and not c["significant"]
                if c["x_better"] is None and not equal:
                    self.counts[f"{'computed ' if computed else ''}{kind}: {c['why_no_direction']}"] += 1
                    self._skip(c["analysis"], "direction_unknown", c["why_no_direction"])
                    continue
                x, y = c["x"]["label"], c["y"]["label"]
                if kind == "superiority":
                    options, answer = superiority_options(x, y), 0 if (c["significant"] and c["x_better"]) else 1
                else:
                    options = comparative_options(x, y)
                    answer = 2 if not c["significant"] else (0 if c["x_better"] else 1)
                self._emit(base, kind, "direction", explicit_meta, options, answer, [c])
        if computed:
            return  # no trial states a hypothesis about its safety counts: no "endpoint met" (pairs.computed)
        if polarity.frame == "excluded" and not polarity.rule.startswith("excluded: ambiguous_quantity"):
            self.counts["endpoint_met: pharmacokinetic, ECG or dose-finding outcome"] += 1
            for c in found:  # the more telling reason than an unknown direction
                self.reasons[_key(c["analysis"])] = ("excluded_outcome", polarity.rule)
            return
        if singled:
            known = [c for c in singled if c["x_better"] is not None]
            if not known:
                self.counts["endpoint_met: direction unknown"] += 1
                return
            self._implicit(base, known, "benefit", lambda c: c["significant"] and c["x_better"],
                           listed=sorted({c["x"]["label"] for c in known}))
        elif one_arm or one_rank:
            listed = sorted({c[s]["label"] for c in found for s in ("x", "y") if c[s] is not None})
            self._implicit(base, found, "significance", lambda c: c["significant"], listed=listed)

    def _implicit(self, base: dict, used: list[dict], label_kind: str, meets, listed: list[str]) -> None:
        """One endpoint_met question over the comparisons ``used``: met when any of them ``meets``."""
        several = len(listed) > (1 if label_kind == "benefit" else 2)
        meta, options = (("no_distinguishable_arm", ANY_ARM_MET_OPTIONS) if several
                         else ("no_arm", ENDPOINT_MET_OPTIONS))
        deciding = next((c for c in used if meets(c)), used[0])
        self._emit(base, "endpoint_met", label_kind, meta, list(options), 0 if any(map(meets, used)) else 1, used,
                   deciding=deciding, listed=listed if several else [])

    def _emit(self, base: dict, kind: str, label_kind: str, meta: str, options: list[str], answer: int,
              used: list[dict], deciding: dict | None = None, listed: list[str] = ()) -> None:
        trial, outcome, polarity = base["trial"], base["outcome"], base["polarity"]
        index = base["index"]
        base["index"] += 1
        deciding = deciding or used[0]
        a = deciding["analysis"]
        self.used.update(_key(c["analysis"]) for c in used)
        endpoint_key = f"outcome:{outcome['outcome_index']}"
        question_id = f"{trial.nct_id}|{endpoint_key}|{index}"
        split = self.splits.get(trial.nct_id, "unassigned")
        arm_y = deciding["y"]["label"] if deciding["y"] is not None else None
        extra = {"question_id": question_id, "split": split, "kind": kind, "label_kind": label_kind,
                 "arm_x": deciding["x"]["label"], "arm_y": arm_y, "listed_arms": list(listed),
                 "source": "historical", "alpha": self.alpha}
        # The columns of Question.to_row(), built directly: asdict() deep-copies the arms of every question (slow).
        row = {"nct_id": trial.nct_id, "endpoint_key": endpoint_key, "question_index": index,
               "brief_title": trial.trial.get("brief_title") or "",
               "endpoint": json.dumps(endpoint_json(outcome), sort_keys=True), "arms": base["arms_json"],
               "meta_label": meta, "options": options, "answer": answer,
               "extra": json.dumps(extra, sort_keys=True, default=str), "category": category_of(len(options), meta)}
        if kind != "endpoint_met":
            values: Any = {"x": deciding["values"]["x"], "y": deciding["values"]["y"]}
        else:
            values = [{"x": c["x"]["label"], "y": c["y"]["label"] if c["y"] is not None else None,
                       "analysis_index": c["analysis"]["analysis_index"], "significant": c["significant"],
                       "x_better": c["x_better"], **(c["values"] if c["y"] is not None else
                                                     {"x": group_value(trial, outcome, c["gx"])[0], "y": None})}
                      for c in used]
        methods = sorted({g.get("arm_match_method") or "unknown" for c in used for g in (c["gx"], c["gy"]) if g})
        row.update(
            question_id=question_id, split=split, kind=kind, label_kind=label_kind,
            results_first_posted=trial.trial.get("results_first_posted"), outcome_index=outcome["outcome_index"],
            analysis_index=a["analysis_index"], analysis_indices=[c["analysis"]["analysis_index"] for c in used],
            arm_x=deciding["x"]["label"], arm_y=arm_y, significant=deciding["significant"],
            significance_source=deciding["source"], x_better=deciding["x_better"],
            outcome_param_type=outcome.get("param_type"), unit=outcome.get("unit"),
            group_values=json.dumps(values, sort_keys=True, default=str),
            polarity=polarity.higher_is_better, polarity_rule=polarity.rule, arm_match_methods=methods,
            **_analysis_evidence(a))
        self.rows.append(row)


def build_question_tables(
    tables: Mapping[str, pa.Table], alpha: float = 0.05, splits: Mapping[str, str] | None = None,
    progress: bool = False, comparative: str = "all", computed: str = "safety",
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """``historical_questions`` and ``question_skips`` from the trial tables, and the counts per skip reason.

    ``tables`` maps table names (``trials``, ``arm_groups``, ``interventions``, ``outcome_measures``,
    ``outcome_groups``, ``outcome_results``, ``outcome_analyses``) to Arrow tables in the schemas of
    ``deepimagine_core.ctgov.schemas``. ``splits`` maps nct_id → split (see `split.assign_splits`); trials not in it
    get ``"unassigned"``. ``comparative`` says which comparisons get a 3-way question (`COMPARATIVE_SCOPES`): every
    one (``"all"``, as CT Open asks 3-way questions against placebo too), or head-to-head ones only (the rule before
    2026-12-07). ``computed`` says whether safety counts without a posted analysis get computed comparisons
    (`pairs.computed.COMPUTED_SCOPES`: ``"safety"``, or ``"none"``, the rule before 2026-12-07).
    """
    from tqdm.auto import tqdm

    builder = _Builder(alpha, splits or {}, comparative, computed)
    n = tables[TRIALS_TABLE].num_rows
    trials = tqdm(iter_trials(tables), total=n, desc="questions", unit="trial", disable=None if progress else True,
                  mininterval=2)
    for trial in trials:
        builder.add_trial(trial)
    questions = pa.Table.from_pylist(builder.rows, schema=HISTORICAL_QUESTIONS)
    skips = pa.Table.from_pylist(builder.skip_rows, schema=QUESTION_SKIPS)
    return questions, skips, dict(builder.counts.most_common())


def build_questions(
    tables: Mapping[str, pa.Table], alpha: float = 0.05, splits: Mapping[str, str] | None = None,
    progress: bool = False, comparative: str = "all", computed: str = "safety",
) -> tuple[pa.Table, dict[str, int]]:
    """Historical questions and the counts per skip reason (`build_question_tables` without the skips table)."""
    questions, _, counts = build_question_tables(tables, alpha, splits, progress, comparative, computed)
    return questions, counts


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
