"""Features of a question that should transfer from historical trials to new ones.

A bag of words over whole trials learns drug names, which say nothing about a new trial (GUIDE §5). What transfers is
the kind of endpoint (HbA1c, LDL, percent change, week N → more often significant; death, surgery, event rates,
cognition, symptoms → less), the arms compared (experimental vs placebo, vs an active comparator, dose against dose),
the number of arms, proportion-type and pharmacokinetic endpoints, and the question's own pattern. So:

- `endpoint_text`: the endpoint's measure, description and time frame, with the trial's own intervention and arm
  names masked as `drugname`;
- `structured`: a flat dict of categorical and numeric features (category, arm-type pair, endpoint kinds, time frame
  in weeks, ...) for a `DictVectorizer`.

Only the question's design is read: never `answer`, and never the answer-bearing CT Open fields in `extra`
(`list_of_tuples`, `no_arm_label`).

`positive_target` turns every category into one binary task, "a significant result / the endpoint is met": the answer
is not the question's negative option (the "not achieved" / "not met" / "no significant difference" sentence).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from deepimagine_core.pairs.computed import SAFETY_WORDS
from deepimagine_core.questions import Question, normalise_words

# ---- per-question memo (opt-in) -------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, int], tuple[Question, Any]] | None = None


@contextmanager
def cached() -> Iterator[None]:
    """Within this block every per-question feature (structured dict, masked texts, negative option) is computed once
    per question object and reused (a cross-validation fold fits many candidates on the same questions). The values
    depend on the question alone — never on answers or on other questions — so sharing them leaks nothing. The memo
    is dropped when the outermost block ends; callers must not mutate what it returns."""
    global _CACHE
    outermost = _CACHE is None
    if outermost:
        _CACHE = {}
    try:
        yield
    finally:
        if outermost:
            _CACHE = None


def memo(kind: str, question: Question, compute: Callable[[Question], Any]) -> Any:
    if _CACHE is None:
        return compute(question)
    hit = _CACHE.get((kind, id(question)))
    if hit is not None and hit[0] is question:  # the question is held, so its id is not reused
        return hit[1]
    value = compute(question)
    _CACHE[(kind, id(question))] = (question, value)
    return value


def shared(kind: str, settings: Any, questions: Sequence[Question], compute: Callable[[], Any], keep: Any = None) -> Any:
    """`compute()` once per (kind, settings, the same question objects in the same order) within a `cached()` block
    — e.g. feature matrices fitted on one fold's training questions, shared by every candidate fitted there; outside
    a block it just computes. `compute` may depend only on `settings` and `questions` (and on `keep`, an object the
    entry holds so that an id in `settings` stays unique)."""
    if _CACHE is None:
        return compute()
    key = (kind, repr(settings), tuple(map(id, questions)))
    hit = _CACHE.get(key)  # type: ignore[arg-type]
    if hit is None:
        hit = ((list(questions), keep), compute())  # holding the questions keeps their ids unique
        _CACHE[key] = hit  # type: ignore[index]
    return hit[1]

# ---- the negative ("nothing significant") option of a question ---------------------------------------------------

_NEGATIVE_OPTION = re.compile(
    r"\bnot\s+(?:achieved|met|been\s+met|reached|significant)|\bno\s+(?:statistically\s+)?significant|"
    r"\bno\s+arm\b|\bnone\s+of\b|\bnot\s+statistically",
    re.IGNORECASE,
)


def negative_option(question: Question) -> int:
    """Index of the option saying "no significant result / not met"; the last option when no sentence says so
    (CT Open puts it last in every template)."""
    return memo("negative_option", question, _negative_option)


def _negative_option(question: Question) -> int:
    hits = [i for i, o in enumerate(question.options) if _NEGATIVE_OPTION.search(o)]
    return hits[0] if len(hits) == 1 else len(question.options) - 1


def positive_target(question: Question) -> int:
    """1 when the answer is a significant / met result, 0 when it is the negative option."""
    if question.answer is None:
        raise ValueError(f"question {question.key} has no answer")
    return int(question.answer != negative_option(question))


# ---- the arms a question compares ---------------------------------------------------------------------------------

_PLACEBO = re.compile(r"placebo|sham|vehicle|dummy", re.IGNORECASE)
_USUAL_CARE = re.compile(r"standard|usual|routine|conventional|no treatment|no intervention|control|observation", re.I)


def compared_arms(question: Question) -> list[dict[str, Any]]:
    """The protocol arms named in the question, in the order the negative option names them (A then B), matched
    longest label first so "Placebo" does not match inside "Placebo + X"."""
    text = question.options[negative_option(question)]
    arms = [a for a in question.arms if isinstance(a, dict) and a.get("label")]
    found: list[tuple[int, dict]] = []
    taken = [False] * len(text)
    low = text.lower()
    for arm in sorted(arms, key=lambda a: -len(a["label"])):
        label = arm["label"].lower()
        start = low.find(label)
        while start >= 0 and any(taken[start : start + len(label)]):
            start = low.find(label, start + 1)
        if start >= 0:
            taken[start : start + len(label)] = [True] * len(label)
            found.append((start, arm))
    return [arm for _, arm in sorted(found, key=lambda x: x[0])]


def _arm_kind(arm: dict[str, Any]) -> str:
    kind = str(arm.get("type") or "OTHER").upper()
    words = " ".join([str(arm.get("label") or "")] + [str(i.get("name") or "") for i in _interventions(arm)])
    if kind in ("OTHER", "", "NONE") and _PLACEBO.search(words):  # untyped arms named as placebo/sham
        return "PLACEBO_COMPARATOR"
    return kind


def _interventions(arm: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in arm.get("interventions") or [] if isinstance(i, dict)]


def _intervention_names(arm: dict[str, Any]) -> set[str]:
    names = {str(i.get("name") or "").lower().strip() for i in _interventions(arm)}
    names |= {str(n).split(":", 1)[-1].lower().strip() for n in arm.get("interventionNames") or []}
    return {n for n in names if n and not _PLACEBO.search(n)}


# ---- masking trial-specific names ---------------------------------------------------------------------------------

_GENERIC = frozenset(
    """placebo group arm arms dose doses high low medium mid control standard care usual treatment therapy drug drugs
    active comparator experimental cohort part phase period study oral tablet tablets capsule capsules injection
    infusion daily once twice weekly day days week weeks month months plus and with the of for in to or vs versus mg
    kg ml mcg μg iu regimen sequence combination matching saline vehicle sham no intervention other single multiple
    subcutaneous intravenous topical gel cream solution patients participants subjects healthy""".split()
)
_TOKEN = re.compile(r"[a-z][a-z0-9\-]{2,}")


def trial_names(question: Question) -> set[str]:
    """Lower-case tokens of this trial's intervention names, other names and arm labels, minus generic words."""
    return memo("trial_names", question, _trial_names)


def _trial_names(question: Question) -> set[str]:
    texts: list[str] = []
    for arm in question.arms:
        if not isinstance(arm, dict):
            continue
        texts.append(str(arm.get("label") or ""))
        texts.extend(str(n) for n in arm.get("interventionNames") or [])
        for iv in _interventions(arm):
            texts.append(str(iv.get("name") or ""))
            texts.extend(str(n) for n in iv.get("otherNames") or [])
    tokens = {t for text in texts for t in _TOKEN.findall(text.lower())}
    return {t for t in tokens if t not in _GENERIC}


def mask_names(text: str, names: set[str]) -> str:
    if not names:
        return text
    return _TOKEN.sub(lambda m: "drugname" if m.group(0) in names else m.group(0), text.lower())


def endpoint_text(question: Question) -> str:
    """The endpoint's measure, description and time frame, lower-cased, with this trial's names masked."""
    return memo("endpoint_text", question, _endpoint_text)


def _endpoint_text(question: Question) -> str:
    ep = question.endpoint or {}
    text = " . ".join(str(ep.get(k) or "") for k in ("measure", "description", "timeFrame"))
    return mask_names(text, trial_names(question))


# ---- endpoint kinds -----------------------------------------------------------------------------------------------

#: Endpoint kinds as patterns over `normalise_words` text (a leading space marks a word start).
ENDPOINT_KINDS: dict[str, re.Pattern] = {
    name: re.compile(pattern)
    for name, pattern in {
        "glycaemic": r"hba1c| a1c |glycated|glycosylated|glucose|glycemic|glycaemic|insulin sensitivity",
        "lipid": r" ldl| hdl|cholesterol|triglycerid|lipoprotein|apolipoprotein| lipid",
        "blood_pressure": r"blood pressure|systolic|diastolic| sbp | dbp ",
        "body_weight": r"body weight|weight loss| bmi |body mass| waist",
        "percent_change": r"percent(age)? change|% change|percent reduction|relative change",
        "change_from_baseline": r"change from baseline| change in |mean change|reduction in|improvement in",
        "pharmacokinetic": r"pharmacokinetic| cmax | tmax | auc|area under the|half life| t1/2|clearance|"
        r"plasma concentration|serum concentration| trough|bioavailab| cmin |volume of distribution",
        "immunogenicity": r"antibod| titer| titre|seroconver|seroprotect| gmt |geometric mean|immunogenic",
        "biomarker": r"serum|plasma| level|concentration|biomarker| count | cells|hemoglobin|haemoglobin| egfr|creatinine",
        "mortality": r"death|mortality| died| surviv| fatal",
        "time_to_event": r"time to |progression free|event free|disease free|overall survival|hazard",
        "event_rate": r"incidence|occurrence|number of events|number of episodes| rate of |frequency of|hospitali|"
        r"relapse|recurrence|exacerbation|admission",
        "surgery": r" surg| operat| revision|reoperation|transplant| implant",
        "cognition": r"cognit| memory| mmse| adas|dementia|neuropsych",
        "symptom_score": r"symptom| score| scale|questionnaire| index |inventory| rating|quality of life| qol ",
        "pain": r" pain|analges| vas | nrs |opioid consumption",
        "mental_health": r"depress|anxiety| mood|hamd|madrs|psychiatric| sleep",
        "safety": SAFETY_WORDS,
        "response": r"respon|remission| cure|eradication|clearance of|success|resolution|healing|improved",
        "proportion": r"percentage of|proportion of|number of participants|number of patients|number of subjects|"
        r"percent of|% of participants|% of patients|participants with|participants who|participants achieving|"
        r" rate |responder",
        "infection": r"infection|viral load| hiv |bacter|virolog",
        "imaging": r" mri | ct |ultrasound|bone mineral density| bmd | lesion|imaging|echocardiograph|ejection",
        "function": r"function| fev1| walk|exercise|mobility|strength|range of motion|activities of daily",
        "adherence": r"adherence|compliance|satisfaction|acceptab|feasib|preference|usability",
        "oncology": r"tumou?r|cancer|progression|objective response|complete response| orr | pfs ",
    }.items()
}

_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(hour|hr|day|week|wk|month|year|yr)s?\b|\b(hour|day|week|month|year)\s*(\d+(?:\.\d+)?)", re.I)
_WEEKS = {"hour": 1 / 168, "hr": 1 / 168, "day": 1 / 7, "week": 1.0, "wk": 1.0, "month": 4.345, "year": 52.18, "yr": 52.18}


def time_frame_weeks(text: str) -> float | None:
    """The longest duration stated in a time frame, in weeks ("Baseline, Week 12" -> 12; "6 months" -> 26.1)."""
    best = None
    for m in _TIME.finditer(text or ""):
        number, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        weeks = float(number) * _WEEKS[unit.lower()]
        best = weeks if best is None else max(best, weeks)
    return best


def structured_features(question: Question) -> dict[str, Any]:
    """Categorical (string) and numeric features of one question's design (do not mutate the dict)."""
    return memo("structured", question, _structured_features)


def _structured_features(question: Question) -> dict[str, Any]:
    ep = question.endpoint or {}
    measure = normalise_words(str(ep.get("measure") or ""))
    full = normalise_words(" ".join(str(ep.get(k) or "") for k in ("measure", "description", "timeFrame")))
    n_arms = len(question.arms)
    f: dict[str, Any] = {
        "category": question.category,
        "meta_label": question.meta_label,
        "outcome_type": str(ep.get("outcome_type") or "unknown"),
        "n_arms": str(min(n_arms, 5)),
        "log_n_arms": math.log1p(n_arms),
    }
    weeks = time_frame_weeks(str(ep.get("timeFrame") or ""))
    f["time_frame"] = "none" if weeks is None else ("<=1w" if weeks <= 1 else "<=12w" if weeks <= 12 else "<=52w" if weeks <= 52 else ">52w")
    f["log_weeks"] = 0.0 if weeks is None else math.log1p(weeks)
    for name, pattern in ENDPOINT_KINDS.items():
        if pattern.search(measure):
            f[f"measure_is={name}"] = 1.0
        elif pattern.search(full):
            f[f"endpoint_mentions={name}"] = 1.0
    f["has_description"] = float(bool(ep.get("description")))

    arms = compared_arms(question) if question.category.endswith("explicit") else []
    if len(arms) >= 2:
        a, b = arms[0], arms[1]
        ka, kb = _arm_kind(a), _arm_kind(b)
        f["arm_pair"] = f"{ka}>{kb}"
        f["arm_a"], f["arm_b"] = ka, kb
        names_a, names_b = _intervention_names(a), _intervention_names(b)
        f["same_intervention"] = float(bool(names_a & names_b))  # dose against dose, or add-on designs
        f["b_is_usual_care"] = float(bool(_USUAL_CARE.search(str(b.get("label") or ""))))
        f["a_is_combination"] = float(len(_interventions(a)) > 1 or bool(re.search(r"\+|\bplus\b|combin", str(a.get("label") or ""), re.I)))
        for iv in _interventions(a):
            f[f"a_intervention={str(iv.get('type') or 'OTHER').upper()}"] = 1.0
    elif question.category.endswith("explicit"):
        f["arm_pair"] = "unmatched"
    else:
        listed = [x for x in question.extra.get("listed_arms") or [] if isinstance(x, dict)]
        f["n_listed_arms"] = float(len(listed))
        f["arm_pair"] = "implicit"
        kinds = {_arm_kind(a) for a in (listed or question.arms)}
        for kind in kinds:
            f[f"trial_has={kind}"] = 1.0
    for arm in question.arms:
        for iv in _interventions(arm) if isinstance(arm, dict) else []:
            f[f"trial_intervention={str(iv.get('type') or 'OTHER').upper()}"] = 1.0
    return f


def endpoint_texts(questions: Sequence[Question]) -> list[str]:
    return [endpoint_text(q) for q in questions]


def title_texts(questions: Sequence[Question]) -> list[str]:
    """Brief titles with this trial's names masked (the condition and the design words stay)."""
    return [memo("title_text", q, lambda q: mask_names(q.brief_title or "", trial_names(q))) for q in questions]


def arms_texts(questions: Sequence[Question]) -> list[str]:
    """Descriptions of the compared arms (explicit questions: "armx ... army ..."; implicit: every arm), masked."""
    return [memo("arms_text", q, _arms_text) for q in questions]


def _arms_text(q: Question) -> str:
    arms = compared_arms(q) if q.category.endswith("explicit") else []
    if len(arms) >= 2:
        text = f"armx {arms[0].get('description') or ''} army {arms[1].get('description') or ''}"
    else:
        text = " ".join(str(a.get("description") or "") for a in q.arms if isinstance(a, dict))
    return mask_names(text, trial_names(q))


#: Text blocks a pipeline may use, by name.
TEXT_BLOCKS = {"endpoint": endpoint_texts, "title": title_texts, "arms": arms_texts}


#: Feature sets: "full" = every structured feature (also intervention classes of arm X and of the trial);
#: "endpoint" = those describing the endpoint alone (plus the category); "design" = endpoint + the arm types of X
#: and Y and the arm counts. Which set a model uses is chosen by time-ordered cross-validation on historical
#: questions (`selection`), never on a CT Open file.
_ENDPOINT = ("category", "outcome_type", "time_frame", "log_weeks", "measure_is=", "endpoint_mentions=", "has_description")
FEATURE_SETS: dict[str, tuple[str, ...] | None] = {
    "full": None,
    "endpoint": _ENDPOINT,
    "design": _ENDPOINT + ("arm_pair", "arm_a", "arm_b", "same_intervention", "b_is_usual_care", "a_is_combination",
                           "n_arms", "log_n_arms", "n_listed_arms"),
}


def structured_dicts(questions: Sequence[Question], feature_set: str = "full") -> list[dict[str, Any]]:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; choose from {sorted(FEATURE_SETS)}")
    prefixes = FEATURE_SETS[feature_set]
    dicts = [structured_features(q) for q in questions]
    if prefixes is None:
        return dicts
    return [{k: v for k, v in d.items() if k.startswith(prefixes)} for d in dicts]


def retrieval_text(question: Question) -> str:
    """What the nearest-neighbour predictor compares: endpoint wording plus the design, names masked."""
    return memo("retrieval_text", question, _retrieval_text)


def _retrieval_text(question: Question) -> str:
    f = structured_features(question)
    design = f"{f['category']} {f.get('arm_pair', '')} {f['outcome_type']}".replace(">", " vs ").lower()
    return f"{endpoint_text(question)} . {design}"
