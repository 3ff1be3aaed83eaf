"""ClinicalTrials.gov API v2 study JSON -> rows of every trial table (the same columns as the legacy XML parser).

The payload is the study object (`protocolSection`, `resultsSection`, ...) as a dict, or its JSON text. Participants
analysed come from the measure's `denoms` (the "Participants" units when several), overridden per class by a class's
own `denoms`. Countries are the distinct countries of the locations, sorted (as legacy `location_countries` are).
"""

from __future__ import annotations

import json
from typing import Any

from deepimagine_core.ctgov.records import API_V2_JSON, ParsedStudy, RawStudy, RecordError
from deepimagine_core.ctgov.arm_match import ArmMatcher
from deepimagine_core.ctgov.rows import StudyRows, as_count, clean_text
from deepimagine_core.ctgov.values import parse_age_years
from deepimagine_core.tables import (
    ARM_GROUPS_TABLE, LOCATIONS_TABLE, OUTCOME_ANALYSES_TABLE, OUTCOME_MEASURES_TABLE, OUTCOME_RESULTS_TABLE,
    TRIALS_TABLE,
)


def _study(raw: RawStudy) -> dict[str, Any]:
    payload = raw.payload
    if payload is None:
        raise RecordError("empty payload", nct_id=raw.nct_id)
    if isinstance(payload, (bytes, bytearray)):
        payload = payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as err:
            raise RecordError(f"malformed JSON: {err}", nct_id=raw.nct_id) from None
    if not isinstance(payload, dict):
        raise RecordError(f"study is a JSON {type(payload).__name__}, not an object", nct_id=raw.nct_id)
    if not isinstance(payload.get("protocolSection"), dict):
        raise RecordError("not an API v2 study: no protocolSection", nct_id=raw.nct_id)
    return payload


def _d(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... with None for anything missing or of the wrong shape."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(obj: Any) -> list:
    return obj if isinstance(obj, list) else []


def _str(x: Any) -> str | None:
    """A JSON scalar as clean text (numbers included: some exports type values as numbers)."""
    if type(x) is str:  # the common case first: called millions of times per ingest
        return x.strip() or None
    if x is None or isinstance(x, (dict, list)):
        return None
    if isinstance(x, bool):
        return str(x).lower()
    return clean_text(str(x))


def _fields(obj: dict, keys: tuple[str, ...]) -> list[str | None]:
    """`_str` of obj[key] for every key (None when absent), in one comprehension instead of a call per field."""
    return [(v.strip() or None) if type(v) is str else (None if v is None else _str(v)) for v in map(obj.get, keys)]


def _strs(items: Any) -> list[str]:
    return [t for t in (_str(x) for x in _list(items)) if t]


def parse_v2_json(raw: RawStudy, buffers=None) -> ParsedStudy:
    """Parse one API v2 study into `buffers` (`ctgov.columns.Buffers`, fresh ones when None); RecordError when it is
    malformed, has no NCT id, or has no posted outcomes."""
    study = _study(raw)
    protocol = study["protocolSection"]
    nct_id = _str(_d(protocol, "identificationModule", "nctId"))
    if not nct_id:
        raise RecordError("no nctId in identificationModule", nct_id=raw.nct_id)
    results = study.get("resultsSection")
    if not isinstance(results, dict):
        raise RecordError("no results section (resultsSection)", nct_id=nct_id)
    outcomes = [o for o in _list(_d(results, "outcomeMeasuresModule", "outcomeMeasures")) if isinstance(o, dict)]
    if not outcomes:
        raise RecordError("no outcome measures in resultsSection", nct_id=nct_id)

    s = StudyRows(nct_id, buffers)
    arms = _arm_groups(protocol, s)
    _interventions(protocol, s, arms)
    last_update = _trial(protocol, s, raw, len(arms))
    matcher = s.arm_matcher([label for label, _ in arms])
    for index, outcome in enumerate(outcomes):
        _outcome(outcome, index, s, matcher)
    _locations(protocol, s)
    return s.done(last_update)


def _trial(protocol: dict, s: StudyRows, raw: RawStudy, n_arms: int):
    ident = protocol.get("identificationModule") or {}
    status = protocol.get("statusModule") or {}
    design = protocol.get("designModule") or {}
    info = design.get("designInfo") or {}
    enrollment = design.get("enrollmentInfo") or {}
    elig = protocol.get("eligibilityModule") or {}
    sponsor = _d(protocol, "sponsorCollaboratorsModule", "leadSponsor") or {}
    min_age, max_age = _str(elig.get("minimumAge")), _str(elig.get("maximumAge"))
    healthy = elig.get("healthyVolunteers")
    locations = _list(_d(protocol, "contactsLocationsModule", "locations"))
    countries = sorted({c for c in (_str(_d(loc, "country")) for loc in locations) if c})
    phases = _strs(design.get("phases"))
    last_update = s.date("last_update_posted", _str(_d(status, "lastUpdatePostDateStruct", "date")))
    s.t[TRIALS_TABLE].add(  # in schema order (schemas.TRIALS)
        s.nct_id,
        _str(ident.get("briefTitle")),
        _str(ident.get("officialTitle")),
        _str(ident.get("acronym")),
        _str(_d(protocol, "descriptionModule", "briefSummary")),
        s.phases(tuple(phases)) if phases else [],
        s.enum("overall_status", _str(status.get("overallStatus"))),
        _str(status.get("whyStopped")),
        s.enum("study_type", _str(design.get("studyType"))),
        s.enum("allocation", _str(info.get("allocation"))),
        s.enum("intervention_model", _str(info.get("interventionModel"))),
        s.enum("masking", _str(_d(info, "maskingInfo", "masking"))),
        s.enum("primary_purpose", _str(info.get("primaryPurpose"))),
        s.integer("enrollment", _str(enrollment.get("count"))),
        s.enum("enrollment_type", _str(enrollment.get("type"))),
        _strs(_d(protocol, "conditionsModule", "conditions")),
        _strs(_d(protocol, "conditionsModule", "keywords")),
        s.date("start_date", _str(_d(status, "startDateStruct", "date"))),
        s.date("primary_completion_date", _str(_d(status, "primaryCompletionDateStruct", "date"))),
        s.date("completion_date", _str(_d(status, "completionDateStruct", "date"))),
        s.date("study_first_posted", _str(_d(status, "studyFirstPostDateStruct", "date"))),
        s.date("results_first_posted", _str(_d(status, "resultsFirstPostDateStruct", "date"))),
        last_update,
        _str(sponsor.get("name")),  # lead_sponsor
        s.enum("sponsor_class", _str(sponsor.get("class"))),
        _str(elig.get("eligibilityCriteria")),
        s.enum("sex", _str(elig.get("sex"))),
        min_age,
        max_age,
        parse_age_years(min_age),
        parse_age_years(max_age),
        healthy if isinstance(healthy, bool) else None,  # healthy_volunteers
        countries,
        n_arms or None,
        API_V2_JSON,
        raw.source_ref,
    )
    return last_update


def _arm_groups(protocol: dict, s: StudyRows) -> list[tuple[str, str | None]]:
    arms = []
    for index, arm in enumerate(_list(_d(protocol, "armsInterventionsModule", "armGroups"))):
        arm = arm if isinstance(arm, dict) else {}
        label, description = _str(arm.get("label")), _str(arm.get("description"))
        arm_type = s.enum("arm_type", _str(arm.get("type")), "arm_groups.type")
        s.t[ARM_GROUPS_TABLE].add(s.nct_id, index, label, arm_type, description, _strs(arm.get("interventionNames")))
        arms.append((label, description))
    return arms


def _interventions(protocol: dict, s: StudyRows, arms: list[tuple[str, str | None]]) -> None:
    arm_description = {label: description for label, description in arms if label}
    ivs = []
    per_arm: dict[str, int] = {}
    for iv in _list(_d(protocol, "armsInterventionsModule", "interventions")):
        iv = iv if isinstance(iv, dict) else {}
        labels = list(dict.fromkeys(_strs(iv.get("armGroupLabels"))))
        ivs.append((iv, labels))
        for label in labels:
            per_arm[label] = per_arm.get(label, 0) + 1
    for index, (iv, labels) in enumerate(ivs):
        name, description = _str(iv.get("name")), _str(iv.get("description"))
        other_names = _strs(iv.get("otherNames"))
        s.add_intervention(index, _str(iv.get("type")), name, description, other_names, labels, arm_description,
                           per_arm)


def _denoms(parent: dict) -> dict[str, int] | None:
    """Participants per group from `denoms` (the "Participants" units when several); None when there are none."""
    chosen = None
    for denom in _list(parent.get("denoms")):
        if isinstance(denom, dict) and (chosen is None or (_str(denom.get("units")) or "").lower() == "participants"):
            chosen = denom
    if chosen is None:
        return None
    out = {}
    for count in _list(chosen.get("counts")):
        value = as_count(count.get("value")) if isinstance(count, dict) else None
        if value is not None:
            out[count.get("groupId")] = value
    return out


_OUTCOME_FIELDS = ("type", "title", "description", "timeFrame", "populationDescription", "paramType",
                   "dispersionType", "unitOfMeasure", "reportingStatus")
_GROUP_FIELDS = ("id", "title", "description")


def _outcome(outcome: dict, index: int, s: StudyRows, matcher: ArmMatcher) -> None:
    groups = [tuple(_fields(g, _GROUP_FIELDS)) for g in _list(outcome.get("groups")) if isinstance(g, dict)]
    analyses = [a for a in _list(outcome.get("analyses")) if isinstance(a, dict)]
    participants = (_denoms(outcome) if "denoms" in outcome else None) or {}
    kind, title, description, time_frame, population, param_type, dispersion, unit, status = _fields(
        outcome, _OUTCOME_FIELDS)
    s.t[OUTCOME_MEASURES_TABLE].add(
        s.nct_id,
        index,
        s.enum("outcome_type", kind, "outcome_measures.type"),
        title,
        description,
        time_frame,
        population,
        s.enum("param_type", param_type, "outcome_measures.param_type"),
        s.enum("dispersion_type", dispersion, "outcome_measures.dispersion_type"),
        unit,
        len(groups),
        len(analyses),
        s.enum("reporting_status", status, "outcome_measures.reporting_status")
        or ("POSTED" if _list(outcome.get("classes")) else "NOT_POSTED"),
    )
    s.add_outcome_groups(index, groups, matcher, participants)
    _results(outcome, index, s, participants)
    for analysis_index, analysis in enumerate(analyses):
        _analysis(analysis, index, analysis_index, s)


def _results(outcome: dict, outcome_index: int, s: StudyRows, participants: dict[str, int]) -> None:
    """One `outcome_results` row per measurement: the innermost loop of a JSON ingest, so the common case (values are
    strings, spread and limits absent, the value a clean float) is handled inline, the rest by `_str`/`s.number`."""
    add, nct_id, number = s.t[OUTCOME_RESULTS_TABLE].add, s.nct_id, s.number
    for class_index, cls in enumerate(_list(outcome.get("classes"))):
        if not isinstance(cls, dict):
            continue
        counts = (_denoms(cls) if "denoms" in cls else None) or participants
        class_title = _str(cls.get("title"))
        for category_index, category in enumerate(_list(cls.get("categories"))):
            if not isinstance(category, dict):
                continue
            category_title = _str(category.get("title"))
            for m in _list(category.get("measurements")):
                if not isinstance(m, dict):
                    continue
                get = m.get
                group_id, value_raw = get("groupId"), get("value")
                group_id = (group_id.strip() or None) if type(group_id) is str else _str(group_id)
                value_raw = (value_raw.strip() or None) if type(value_raw) is str else _str(value_raw)
                value = None
                if value_raw is not None:
                    if "_" not in value_raw:  # `StudyRows.number`'s clean case, without the call
                        try:
                            value = float(value_raw)
                        except ValueError:
                            pass
                        else:
                            if value - value != 0.0:  # not finite
                                value = None
                    if value is None:
                        value = number("value", value_raw)
                spread_raw, lower, upper = get("spread"), get("lowerLimit"), get("upperLimit")
                if spread_raw is not None:
                    spread_raw = _str(spread_raw)
                if lower is not None:
                    lower = _str(lower)
                if upper is not None:
                    upper = _str(upper)
                add(nct_id, outcome_index, group_id, class_index, class_title, category_index, category_title,
                    value, value_raw,
                    None if spread_raw is None else number("spread", spread_raw), spread_raw,
                    None if lower is None else number("lower_limit", lower),
                    None if upper is None else number("upper_limit", upper), counts.get(group_id))


_ANALYSIS_FIELDS = ("pValue", "paramValue", "groupDescription", "nonInferiorityType", "pValueComment",
                    "statisticalMethod", "paramType", "ciPctValue", "ciNumSides", "ciLowerLimit", "ciUpperLimit",
                    "estimateComment")


def _analysis(analysis: dict, outcome_index: int, analysis_index: int, s: StudyRows) -> None:
    (p_raw, param_raw, group_description, non_inferiority, p_comment, method, param_type, ci_pct, ci_sides, ci_lower,
     ci_upper, estimate_comment) = _fields(analysis, _ANALYSIS_FIELDS)
    p_value, relation = s.p_value(p_raw)
    s.t[OUTCOME_ANALYSES_TABLE].add(
        s.nct_id,
        outcome_index,
        analysis_index,
        _strs(analysis.get("groupIds")),
        group_description,
        s.enum("non_inferiority_type", non_inferiority),
        p_value,
        p_raw,
        relation,
        p_comment,
        method,
        param_type,
        s.number("param_value", param_raw),
        param_raw,
        s.number("ci_pct", ci_pct),
        s.enum("ci_n_sides", ci_sides),
        s.number("ci_lower", ci_lower),
        s.number("ci_upper", ci_upper),
        estimate_comment,
    )


_LOCATION_FIELDS = ("facility", "city", "state", "zip", "country")


def _locations(protocol: dict, s: StudyRows) -> None:
    add, nct_id = s.t[LOCATIONS_TABLE].add, s.nct_id
    for index, loc in enumerate(_list(_d(protocol, "contactsLocationsModule", "locations"))):
        add(nct_id, index, *(_fields(loc, _LOCATION_FIELDS) if isinstance(loc, dict) else (None,) * 5))
