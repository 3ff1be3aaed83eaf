"""Legacy XML outcomes (`clinical_results/outcome_list/outcome`) -> outcome_measures, outcome_groups, outcome_results
and outcome_analyses columns; and the one-pass child maps both legacy modules read elements with.

Speed: each element's children are read once into a dict (`kids`, `leaves`) instead of an ElementPath
`find`/`findtext` per field, which costs several times more per lookup; values go straight into their columns.
"""

from __future__ import annotations

from deepimagine_core.ctgov.arm_match import ArmMatcher
from deepimagine_core.ctgov.rows import StudyRows, as_count
from deepimagine_core.tables import OUTCOME_ANALYSES_TABLE, OUTCOME_MEASURES_TABLE, OUTCOME_RESULTS_TABLE


def kids(el) -> dict:
    """Children by tag (the last one wins: use it for single-valued children)."""
    return {c.tag: c for c in el} if el is not None else {}


def tx(children: dict, tag: str) -> str | None:
    """Stripped text of a child, None when absent or blank."""
    el = children.get(tag)
    if el is None:
        return None
    t = el.text
    return (t.strip() or None) if t else None


def leaves(el) -> dict:
    """Stripped texts of the children by tag (None when blank), in one pass: for elements whose children are only
    read as text (a group, an analysis, an arm)."""
    return {c.tag: (t.strip() or None) if (t := c.text) else None for c in el}


def _last(el, tag: str):
    """The last child with this tag, None when there is none (as `kids(el).get(tag)`, without a proxy per child)."""
    found = None
    for found in el.iterchildren(tag):
        pass
    return found


def _last_text(el, tag: str) -> str | None:
    """Stripped text of the last child with this tag, None when absent or blank (`tx(kids(el), tag)`)."""
    child = _last(el, tag)
    t = child.text if child is not None else None
    return (t.strip() or None) if t else None


def texts(elements) -> list[str]:
    """Non-blank stripped texts of the elements, in order."""
    return [t for t in ((e.text or "").strip() for e in elements) if t]


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
        if chosen is None or (_last_text(analyzed, "units") or "").lower() == "participants":
            chosen = analyzed
    if chosen is None:
        return None
    count_list = _last(chosen, "count_list")
    return _int_map(count_list.iterchildren("count")) if count_list is not None else None


def _participants_measure(measure) -> bool:
    """Is this the pre-2017 leading "Number of Participants" measure?"""
    return (_last_text(measure, "title") or "").lower().startswith("number of participants")


def outcome(el, index: int, s: StudyRows, matcher: ArmMatcher) -> None:
    """The rows of one `outcome` element (pre-2017: a `measure_list`; 2017+: one `measure`)."""
    children = kids(el)
    group_list, measure_list = children.get("group_list"), children.get("measure_list")
    analysis_list = children.get("analysis_list")
    groups = []
    if group_list is not None:
        for g in group_list:  # as iterchildren("group"), cheaper (`_results`)
            if g.tag != "group":
                continue
            gk = leaves(g)
            groups.append((g.get(b"group_id"), gk.get("title"), gk.get("description")))
    if measure_list is not None:
        measures = list(measure_list.iterchildren("measure"))
    else:  # 2017+ schema: the measure sits directly in the outcome
        measures = [children["measure"]] if "measure" in children else []
    measure = kids(measures[-1]) if measures else {}
    participants: dict[str, int] = {}
    if len(measures) >= 2 and _participants_measure(measures[0]):
        participants = _int_map(measures[0].iter("measurement"))
    elif measures:
        participants = _counts(measure) or {}
    analyses = list(analysis_list.iterchildren("analysis")) if analysis_list is not None else []

    s.t[OUTCOME_MEASURES_TABLE].add(
        s.nct_id,
        index,
        s.enum("outcome_type", tx(children, "type"), "outcome_measures.type"),
        tx(children, "title"),
        tx(children, "description"),
        tx(children, "time_frame"),
        tx(children, "population") or tx(measure, "population"),
        s.enum("param_type", tx(measure, "param"), "outcome_measures.param_type"),
        s.enum("dispersion_type", tx(measure, "dispersion"), "outcome_measures.dispersion_type"),
        tx(measure, "units"),
        len(groups),
        len(analyses),
        "POSTED" if measures else "NOT_POSTED",  # reporting_status: legacy XML has no field, an outcome without data
    )
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
            ck = kids(c)
            classes.append((tx(ck, "title"), ck.get("category_list"), _counts(ck)))
    else:
        classes = [(None, measure.get("category_list"), None)]
    (a_nct, a_outcome, a_group, a_class, a_class_title, a_category, a_category_title, a_value, a_value_raw, a_spread,
     a_spread_raw, a_lower, a_upper, a_participants) = s.t[OUTCOME_RESULTS_TABLE].appenders()
    nct_id, number = s.nct_id, s.number
    for class_index, (class_title, category_list, class_counts) in enumerate(classes):
        if category_list is None:
            continue
        counts = class_counts or participants
        # the children filtered by tag here rather than by lxml's iterchildren(tag): the same elements (a comment's or
        # entity's tag is a function), and on lists of a few children a quarter of the instructions (measured)
        category_index = -1
        for category in category_list:
            if category.tag != "category":
                continue
            category_index += 1
            ck = kids(category)
            title_el = ck.get("sub_title")
            if title_el is None:
                title_el = ck.get("title")
            category_title = (t.strip() or None) if title_el is not None and (t := title_el.text) else None
            measurement_list = ck.get("measurement_list")
            if measurement_list is None:
                continue
            for m in measurement_list:
                if m.tag != "measurement":
                    continue
                get = m.get  # bytes names: lxml skips encoding the name on every call (a fifth of a read's cost)
                group_id = get(b"group_id")
                value_raw, spread_raw = get(b"value"), get(b"spread")
                lower, upper = get(b"lower_limit"), get(b"upper_limit")
                a_nct(nct_id)
                a_outcome(outcome_index)
                a_group(group_id)
                a_class(class_index)
                a_class_title(class_title)
                a_category(category_index)
                a_category_title(category_title)
                a_value_raw(value_raw)
                a_spread_raw(spread_raw)
                a_value(None if value_raw is None else number("value", value_raw))
                a_spread(None if spread_raw is None else number("spread", spread_raw))
                a_lower(None if lower is None else number("lower_limit", lower))
                a_upper(None if upper is None else number("upper_limit", upper))
                a_participants(counts.get(group_id))


def _analysis(analysis, outcome_index: int, analysis_index: int, s: StudyRows) -> None:
    get = leaves(analysis).get
    p_raw = get("p_value")
    p_value, relation = s.p_value(p_raw)
    param_raw = get("param_value")
    group_id_list = analysis[0] if len(analysis) else None  # first child by the schema's order; else look for it
    if group_id_list is not None and group_id_list.tag != "group_id_list":
        group_id_list = analysis.find("group_id_list")
    s.t[OUTCOME_ANALYSES_TABLE].add(
        s.nct_id,
        outcome_index,
        analysis_index,
        texts(group_id_list.iterchildren("group_id")) if group_id_list is not None else [],  # group_ids
        get("groups_desc"),
        s.enum("non_inferiority_type", get("non_inferiority_type") or get("non_inferiority")),
        p_value,
        p_raw,
        relation,
        get("p_value_desc"),  # p_value_comment
        get("method"),
        get("param_type"),
        s.number("param_value", param_raw),
        param_raw,
        s.number("ci_pct", get("ci_percent")),
        s.enum("ci_n_sides", get("ci_n_sides")),
        s.number("ci_lower", get("ci_lower_limit")),
        s.number("ci_upper", get("ci_upper_limit")),
        get("estimate_desc"),  # estimate_comment
    )
