"""Legacy ClinicalTrials.gov XML (`clinical_study` with `clinical_results`) -> rows of every trial table.

Both generations of the legacy schema are read:
- before 2017: `study_design` is one "Allocation: Randomized, ..., Masking: Double Blind (...)" string; each outcome's
  `measure_list` starts with a "Number of Participants" measure (participants analysed per group), may hold
  "Number of <units> analyzed" measures, and ends with the measure itself, whose categories sit directly in
  `category_list`; dates are `firstreceived_date`, `firstreceived_results_date`, `lastchanged_date`;
- from 2017: `study_design_info` has one element per field; the outcome holds one `measure` directly, which carries
  its `analyzed_list` and a `class_list` of classes with categories; dates are `study_first_posted`,
  `results_first_posted`, `last_update_posted` (preferred when the old names are also present); analyses state
  `non_inferiority_type` instead of `non_inferiority` Yes/No.

Speed: one `etree.fromstring` per study, then one pass over each element's children into a dict (`_kids`,
`_leaves`) instead of an ElementPath `find`/`findtext` per field, which costs several times more per lookup.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from deepimagine_core.ctgov.records import LEGACY_XML, ParsedStudy, RawStudy, RecordError
from deepimagine_core.ctgov.rows import ArmMatcher, StudyRows, as_count, clean_block
from deepimagine_core.ctgov.values import is_missing, parse_age_years
from deepimagine_core.tables import (
    ARM_GROUPS_TABLE, LOCATIONS_TABLE, OUTCOME_ANALYSES_TABLE, OUTCOME_MEASURES_TABLE, OUTCOME_RESULTS_TABLE,
    TRIALS_TABLE,
)

_local = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread (lxml parsers are not thread-safe); no entities, no network, no comments."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
        )
    return parser


def _root(raw: RawStudy) -> etree._Element:
    payload = raw.payload
    if payload is None:
        raise RecordError("empty payload", nct_id=raw.nct_id)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    elif not isinstance(payload, (bytes, bytearray)):
        raise RecordError(f"payload is {type(payload).__name__}, not XML text", nct_id=raw.nct_id)
    try:
        root = etree.fromstring(payload, _parser())
    except etree.XMLSyntaxError as err:
        raise RecordError(f"malformed XML: {err}", nct_id=raw.nct_id) from None
    if root is None:
        raise RecordError("malformed XML: no root element", nct_id=raw.nct_id)
    if root.tag != "clinical_study":
        raise RecordError(f"root element <{root.tag}> is not <clinical_study>", nct_id=raw.nct_id)
    return root


def _kids(el) -> dict:
    """Children by tag (the last one wins: use it for single-valued children). One pass over the children is much
    cheaper than one ElementPath `find` per child looked up."""
    return {c.tag: c for c in el} if el is not None else {}


def _tx(kids: dict, tag: str) -> str | None:
    """Stripped text of a child, None when absent or blank."""
    el = kids.get(tag)
    if el is None:
        return None
    t = el.text
    return (t.strip() or None) if t else None


def _leaves(el) -> dict:
    """Stripped texts of the children by tag (None when blank), in one pass: for elements whose children we only
    read as text (a group, an analysis, an arm)."""
    return {c.tag: (t.strip() or None) if (t := c.text) else None for c in el}


def _texts(elements) -> list[str]:
    """Non-blank stripped texts of the elements, in order."""
    return [t for t in ((e.text or "").strip() for e in elements) if t]


_REPEATED = ("condition", "keyword", "arm_group", "intervention", "location")


def parse_legacy_xml(raw: RawStudy) -> ParsedStudy:
    """Parse one legacy XML study; RecordError when it is malformed, has no NCT id, or has no outcome measures."""
    root = _root(raw)
    top: dict = {}
    repeated: dict[str, list] = {tag: [] for tag in _REPEATED}
    for child in root:
        bucket = repeated.get(child.tag)
        if bucket is None:
            top[child.tag] = child
        else:
            bucket.append(child)
    nct_id = _tx(_kids(top.get("id_info")), "nct_id")
    if not nct_id:
        raise RecordError("no nct_id in id_info", nct_id=raw.nct_id)
    results = top.get("clinical_results")
    if results is None:
        raise RecordError("no results section (clinical_results)", nct_id=nct_id)
    outcome_list = _kids(results).get("outcome_list")
    outcomes = list(outcome_list.iterchildren("outcome")) if outcome_list is not None else []
    if not outcomes:
        raise RecordError("no outcome measures in clinical_results", nct_id=nct_id)

    s = StudyRows(nct_id)
    arms = _arm_groups(repeated["arm_group"], repeated["intervention"], s)
    _interventions(repeated["intervention"], s, arms)
    last_update = _trial(top, repeated, s, raw, n_arm_rows=len(arms))
    matcher = ArmMatcher([label for label, _ in arms])
    for index, outcome in enumerate(outcomes):
        _outcome(outcome, index, s, matcher)
    _locations(repeated["location"], s)
    return s.done(last_update)


_DESIGN_KEYS = ("allocation", "intervention_model", "masking", "primary_purpose")
_DESIGN_NAMES = {"Allocation": "allocation", "Intervention Model": "intervention_model", "Masking": "masking",
                 "Primary Purpose": "primary_purpose"}


def _study_design(top: dict, s: StudyRows) -> dict[str, str | None]:
    """allocation, intervention_model, masking, primary_purpose from either schema generation."""
    info = top.get("study_design_info")
    if info is not None:
        kids = _kids(info)
        raw = {k: _tx(kids, k) for k in _DESIGN_KEYS}
    else:
        raw = dict.fromkeys(_DESIGN_KEYS)
        for part in _design_parts(_tx(top, "study_design") or ""):
            name, _, value = part.partition(":")
            key = _DESIGN_NAMES.get(name.strip())
            if key:
                raw[key] = value.strip() or None
    return {k: s.enum(k, v) for k, v in raw.items()}


_DESIGN_SPLIT = re.compile(r",\s*(?=[A-Z][A-Za-z ]*:)")


def _design_parts(design: str) -> list[str]:
    """Split "Allocation: Randomized, Masking: Double Blind (Subject, Investigator), ..." at the commas that start a
    new "Name:" part (the commas inside "(Subject, Investigator)" belong to the value)."""
    return [p.strip() for p in _DESIGN_SPLIT.split(design) if p.strip()]


def _block(el) -> str | None:
    """The text of `<x><textblock>` (or of `<x>` itself) without its XML indentation."""
    if el is None:
        return None
    textblock = _kids(el).get("textblock")
    return clean_block(textblock.text if textblock is not None else el.text)


def _trial(top: dict, repeated: dict, s: StudyRows, raw: RawStudy, n_arm_rows: int):
    elig = _kids(top.get("eligibility"))
    enrollment = top.get("enrollment")
    sponsor = _kids(_kids(top.get("sponsors")).get("lead_sponsor"))
    min_age, max_age = _age(_tx(elig, "minimum_age")), _age(_tx(elig, "maximum_age"))
    healthy = _tx(elig, "healthy_volunteers")
    n_arms = s.integer("n_arms", _tx(top, "number_of_arms"))
    last_update = s.date("last_update_posted", _tx(top, "last_update_posted") or _tx(top, "lastchanged_date"))
    countries = top.get("location_countries")
    s.rows[TRIALS_TABLE].append({
        "nct_id": s.nct_id,
        "brief_title": _tx(top, "brief_title"),
        "official_title": _tx(top, "official_title"),
        "acronym": _tx(top, "acronym"),
        "brief_summary": _block(top.get("brief_summary")),
        "phases": s.phases(_tx(top, "phase")),
        "overall_status": s.enum("overall_status", _tx(top, "overall_status")),
        "why_stopped": _tx(top, "why_stopped"),
        "study_type": s.enum("study_type", _tx(top, "study_type")),
        **_study_design(top, s),
        "enrollment": s.integer("enrollment", _tx(top, "enrollment")),
        "enrollment_type": s.enum("enrollment_type", enrollment.get("type")) if enrollment is not None else None,
        "conditions": _texts(repeated["condition"]),
        "keywords": _texts(repeated["keyword"]),
        "start_date": s.date("start_date", _tx(top, "start_date")),
        "primary_completion_date": s.date("primary_completion_date", _tx(top, "primary_completion_date")),
        "completion_date": s.date("completion_date", _tx(top, "completion_date")),
        "study_first_posted": s.date(
            "study_first_posted", _tx(top, "study_first_posted") or _tx(top, "firstreceived_date")
        ),
        "results_first_posted": s.date(
            "results_first_posted", _tx(top, "results_first_posted") or _tx(top, "firstreceived_results_date")
        ),
        "last_update_posted": last_update,
        "lead_sponsor": _tx(sponsor, "agency"),
        "sponsor_class": s.enum("sponsor_class", _tx(sponsor, "agency_class")),
        "eligibility_criteria": _block(elig.get("criteria")),
        "sex": s.enum("sex", _tx(elig, "gender") or _tx(elig, "sex")),
        "minimum_age": min_age,
        "maximum_age": max_age,
        "minimum_age_years": parse_age_years(min_age),
        "maximum_age_years": parse_age_years(max_age),
        "healthy_volunteers": None if healthy is None else healthy.lower() not in ("no", "false"),
        "countries": _texts(countries.iterchildren("country")) if countries is not None else [],
        "n_arms": n_arms if n_arms is not None else (n_arm_rows or None),
        "source_format": LEGACY_XML,
        "source_ref": raw.source_ref,
    })
    return last_update


def _age(raw: str | None) -> str | None:
    """The raw age text, None for "N/A" (API v2 leaves the field out instead)."""
    return None if is_missing(raw) else raw


def _intervention_labels(iv) -> list[str]:
    return list(dict.fromkeys(_texts(iv.iterchildren("arm_group_label"))))


def _arm_groups(arm_els: list, iv_els: list, s: StudyRows) -> list[tuple[str, str | None]]:
    """Arm rows; returns (label, description) per arm for the intervention and result-group steps."""
    names_by_arm: dict[str, list[str]] = {}
    for iv in iv_els:
        kids = _leaves(iv)
        entry = f"{kids.get('intervention_type') or 'Other'}: {kids.get('intervention_name') or ''}"
        for label in _intervention_labels(iv):
            names_by_arm.setdefault(label, []).append(entry)
    arms = []
    for index, arm in enumerate(arm_els):
        kids = _leaves(arm)
        label, description = kids.get("arm_group_label"), kids.get("description")
        s.rows[ARM_GROUPS_TABLE].append({
            "nct_id": s.nct_id,
            "arm_index": index,
            "label": label,
            "type": s.enum("arm_type", kids.get("arm_group_type"), "arm_groups.type"),
            "description": description,
            "intervention_names": names_by_arm.get(label, []) if label else [],
        })
        arms.append((label, description))
    return arms


def _interventions(iv_els: list, s: StudyRows, arms: list[tuple[str, str | None]]) -> None:
    arm_description = {label: description for label, description in arms if label}
    ivs = [(iv, _intervention_labels(iv)) for iv in iv_els]
    per_arm: dict[str, int] = {}
    for _, labels in ivs:
        for label in labels:
            per_arm[label] = per_arm.get(label, 0) + 1
    for index, (iv, labels) in enumerate(ivs):
        kids = _leaves(iv)
        name, description = kids.get("intervention_name"), kids.get("description")
        other_names = _texts(iv.iterchildren("other_name"))
        s.add_intervention(index, kids.get("intervention_type"), name, description, other_names, labels,
                           arm_description, per_arm)


def _int_map(elements) -> dict[str, int]:
    out = {}
    for el in elements:
        value = as_count(el.get("value"))
        if value is not None:
            out[el.get("group_id")] = value
    return out


def _counts(parent_kids: dict) -> dict[str, int] | None:
    """Participants per group from an `analyzed_list` (2017+ schema): the Participants units when several."""
    analyzed_list = parent_kids.get("analyzed_list")
    if analyzed_list is None:
        return None
    chosen = None
    for analyzed in analyzed_list.iterchildren("analyzed"):
        if chosen is None or (_tx(_kids(analyzed), "units") or "").lower() == "participants":
            chosen = analyzed
    if chosen is None:
        return None
    count_list = _kids(chosen).get("count_list")
    return _int_map(count_list.iterchildren("count")) if count_list is not None else None


def _participants_measure(measure) -> bool:
    """Is this the pre-2017 leading "Number of Participants" measure?"""
    title = _kids(measure).get("title")
    return title is not None and (title.text or "").strip().lower().startswith("number of participants")


def _outcome(outcome, index: int, s: StudyRows, matcher: ArmMatcher) -> None:
    nct_id = s.nct_id
    kids = _kids(outcome)
    group_list, measure_list = kids.get("group_list"), kids.get("measure_list")
    analysis_list = kids.get("analysis_list")
    groups = []
    if group_list is not None:
        for g in group_list.iterchildren("group"):
            gk = _leaves(g)
            groups.append((g.get("group_id"), gk.get("title"), gk.get("description")))
    if measure_list is not None:
        measures = list(measure_list.iterchildren("measure"))
    else:  # 2017+ schema: the measure sits directly in the outcome
        measures = [kids["measure"]] if "measure" in kids else []
    measure = _kids(measures[-1]) if measures else {}
    participants: dict[str, int] = {}
    if len(measures) >= 2 and _participants_measure(measures[0]):
        participants = _int_map(measures[0].iter("measurement"))
    elif measures:
        participants = _counts(measure) or {}
    analyses = list(analysis_list.iterchildren("analysis")) if analysis_list is not None else []

    s.rows[OUTCOME_MEASURES_TABLE].append({
        "nct_id": nct_id,
        "outcome_index": index,
        "type": s.enum("outcome_type", _tx(kids, "type"), "outcome_measures.type"),
        "title": _tx(kids, "title"),
        "description": _tx(kids, "description"),
        "time_frame": _tx(kids, "time_frame"),
        "population": _tx(kids, "population") or _tx(measure, "population"),
        "param_type": s.enum("param_type", _tx(measure, "param"), "outcome_measures.param_type"),
        "dispersion_type": s.enum("dispersion_type", _tx(measure, "dispersion"), "outcome_measures.dispersion_type"),
        "unit": _tx(measure, "units"),
        "n_groups": len(groups),
        "n_analyses": len(analyses),
        "reporting_status": "POSTED" if measures else "NOT_POSTED",  # legacy XML has no field: an outcome without data
    })
    s.add_outcome_groups(index, groups, matcher, participants)
    if measure:
        _results(measure, index, s, participants)
    for analysis_index, analysis in enumerate(analyses):
        _analysis(analysis, index, analysis_index, s)


def _results(measure: dict, outcome_index: int, s: StudyRows, participants: dict[str, int]) -> None:
    class_list = measure.get("class_list")
    if class_list is not None:
        classes = []
        for c in class_list.iterchildren("class"):
            ck = _kids(c)
            classes.append((_tx(ck, "title"), ck.get("category_list"), _counts(ck)))
    else:
        classes = [(None, measure.get("category_list"), None)]
    rows = s.rows[OUTCOME_RESULTS_TABLE]
    nct_id = s.nct_id
    for class_index, (class_title, category_list, class_counts) in enumerate(classes):
        if category_list is None:
            continue
        counts = class_counts or participants
        for category_index, category in enumerate(category_list.iterchildren("category")):
            ck = _kids(category)
            title_el = ck.get("sub_title")
            if title_el is None:
                title_el = ck.get("title")
            category_title = (t.strip() or None) if title_el is not None and (t := title_el.text) else None
            measurement_list = ck.get("measurement_list")
            if measurement_list is None:
                continue
            for m in measurement_list.iterchildren("measurement"):
                group_id = m.get("group_id")
                value_raw, spread_raw = m.get("value"), m.get("spread")
                lower, upper = m.get("lower_limit"), m.get("upper_limit")
                rows.append({
                    "nct_id": nct_id,
                    "outcome_index": outcome_index,
                    "group_id": group_id,
                    "class_index": class_index,
                    "class_title": class_title,
                    "category_index": category_index,
                    "category_title": category_title,
                    "value": None if value_raw is None else _number(s, "value", value_raw),
                    "value_raw": value_raw,
                    "spread": None if spread_raw is None else _number(s, "spread", spread_raw),
                    "spread_raw": spread_raw,
                    "lower_limit": None if lower is None else _number(s, "lower_limit", lower),
                    "upper_limit": None if upper is None else _number(s, "upper_limit", upper),
                    "participants_analyzed": counts.get(group_id),
                })


def _number(s: StudyRows, column: str, raw: str | None) -> float | None:
    """`s.number` with the clean case first (it runs for every value of every measurement)."""
    if raw is None:
        return None
    try:
        x = float(raw)
        if x - x == 0.0 and "_" not in raw:  # finite
            return x
    except ValueError:
        pass
    return s.number(column, raw)


def _analysis(analysis, outcome_index: int, analysis_index: int, s: StudyRows) -> None:
    get = _leaves(analysis).get
    p_raw = get("p_value")
    p_value, relation = s.p_value(p_raw)
    param_raw = get("param_value")
    group_id_list = analysis[0] if len(analysis) else None  # first child by the schema's order; else look for it
    if group_id_list is not None and group_id_list.tag != "group_id_list":
        group_id_list = analysis.find("group_id_list")
    s.rows[OUTCOME_ANALYSES_TABLE].append({
        "nct_id": s.nct_id,
        "outcome_index": outcome_index,
        "analysis_index": analysis_index,
        "group_ids": _texts(group_id_list.iterchildren("group_id")) if group_id_list is not None else [],
        "groups_description": get("groups_desc"),
        "non_inferiority_type": s.enum("non_inferiority_type", get("non_inferiority_type") or get("non_inferiority")),
        "p_value": p_value,
        "p_value_raw": p_raw,
        "p_value_relation": relation,
        "p_value_comment": get("p_value_desc"),
        "method": get("method"),
        "param_type": get("param_type"),
        "param_value": _number(s, "param_value", param_raw),
        "param_value_raw": param_raw,
        "ci_pct": _number(s, "ci_pct", get("ci_percent")),
        "ci_n_sides": s.enum("ci_n_sides", get("ci_n_sides")),
        "ci_lower": _number(s, "ci_lower", get("ci_lower_limit")),
        "ci_upper": _number(s, "ci_upper", get("ci_upper_limit")),
        "estimate_comment": get("estimate_desc"),
    })


_LOCATION_TAGS = ("name", "city", "state", "zip", "country")


def _locations(location_els: list, s: StudyRows) -> None:
    rows = s.rows[LOCATIONS_TABLE]
    nct_id = s.nct_id
    for index, loc in enumerate(location_els):
        # one filtered pass over location/facility/{name, address/{city, state, zip, country}}
        get = {e.tag: (t.strip() or None) if (t := e.text) else None for e in loc.iter(_LOCATION_TAGS)}.get
        rows.append({
            "nct_id": nct_id,
            "location_index": index,
            "facility": get("name"),
            "city": get("city"),
            "state": get("state"),
            "zip": get("zip"),
            "country": get("country"),
        })
