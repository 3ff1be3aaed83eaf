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

Speed: the sections no table reads (participant flow, baseline, adverse events, planned outcomes: 40% of the bytes)
are cut from the document before it is parsed (`_without_unread`; the whole document is parsed when the copy does not, so
only a study whose sole damage lies inside those sections is read where it used to be rejected); one
`etree.fromstring` per study, then one pass over each element's children into a dict (`kids`, `leaves`)
instead of an ElementPath `find`/`findtext` per field; values go straight into their table's column buffers
(`StudyRows.t`). Outcomes are read by `parse_legacy_outcomes`.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from deepimagine_core.ctgov.parse_legacy_outcomes import kids as _kids
from deepimagine_core.ctgov.parse_legacy_outcomes import leaves as _leaves
from deepimagine_core.ctgov.parse_legacy_outcomes import outcome as _outcome
from deepimagine_core.ctgov.parse_legacy_outcomes import texts as _texts
from deepimagine_core.ctgov.parse_legacy_outcomes import tx as _tx
from deepimagine_core.ctgov.records import LEGACY_XML, ParsedStudy, RawStudy, RecordError
from deepimagine_core.ctgov.rows import StudyRows, clean_block
from deepimagine_core.ctgov.values import is_missing, parse_age_years
from deepimagine_core.tables import ARM_GROUPS_TABLE, LOCATIONS_TABLE, TRIALS_TABLE

_local = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread (lxml parsers are not thread-safe); no entities, no network, no comments. The bytes are
    read as UTF-8 whatever the declaration says (bytes that are not UTF-8 are malformed); whitespace between elements
    is dropped as it is parsed (every value read is stripped, so the output is the same, and the tree is smaller)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True, remove_blank_text=True,
            encoding="utf-8",
        )
    return parser


def _root(raw: RawStudy) -> etree._Element:
    payload = raw.payload
    if payload is None:
        raise RecordError("empty payload", nct_id=raw.nct_id)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    elif not isinstance(payload, (bytes, bytearray)):
        raise RecordError(f"payload is {type(payload).__name__}, not XML", nct_id=raw.nct_id)
    try:
        root = _parse(payload)
    except etree.XMLSyntaxError as err:
        raise RecordError(f"malformed XML: {err}", nct_id=raw.nct_id) from None
    if root is None:
        raise RecordError("malformed XML: no root element", nct_id=raw.nct_id)
    if root.tag != "clinical_study":
        raise RecordError(f"root element <{root.tag}> is not <clinical_study>", nct_id=raw.nct_id)
    return root


def _parse(payload: bytes) -> etree._Element:
    """The document without the sections no table reads (`_UNREAD`: 40% of a study's bytes, so that much
    less to parse and free); the whole document when that copy does not parse (its errors are the document's)."""
    cut = _without_unread(payload)
    if cut is not payload:
        try:
            return etree.fromstring(cut, _parser())
        except etree.XMLSyntaxError:
            pass
    return etree.fromstring(payload, _parser())


def _tags(*names: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((b"<%s>" % name, b"</%s>" % name) for name in names)


# Elements no table reads, in document order, each with the elements no table reads either that may follow it
# directly (cut with it when they do): the protocol's planned outcome measures (the posted ones are read from the
# results), the results sections of participant flow, baseline characteristics and adverse events (a third of a
# study's bytes), and the agreements and contact after them.
_UNREAD = (
    (_tags(b"primary_outcome")[0], _tags(b"primary_outcome", b"secondary_outcome", b"other_outcome")),
    (_tags(b"participant_flow")[0], ()),
    (_tags(b"baseline")[0], ()),
    (_tags(b"reported_events")[0], _tags(b"certain_agreements", b"limitations_and_caveats", b"point_of_contact")),
)
_SPACE = re.compile(rb"\s*")


def _without_unread(data: bytes) -> bytes:
    """`data` with each `_UNREAD` element (from its start tag to the first end tag after it) and the unread elements
    right after it cut out, when no comment, CDATA section or processing instruction overlaps the cut; `data` itself
    when there is nothing to cut. A cut that does not remove exactly whole elements leaves an unmatched end tag
    behind, so the copy does not parse (see `_parse`)."""
    spans = None
    parts, pos = [], 0
    for (start_tag, end_tag), followers in _UNREAD:
        start = data.find(start_tag, pos)
        end = data.find(end_tag, start) if start >= 0 else -1
        if end < 0:
            continue
        end += len(end_tag)
        while followers:  # the unread elements that follow directly (whitespace between them)
            after = _SPACE.match(data, end).end()
            for follower_start, follower_end in followers:
                if data.startswith(follower_start, after):
                    found = data.find(follower_end, after)
                    if found >= 0:
                        end = found + len(follower_end)
                        break
            else:
                break
        if spans is None:
            spans = _markup_spans(data)
        if spans is None or any(a < end and start < b for a, b in spans):
            continue
        parts.append(data[pos:start])
        pos = end
    if not parts:
        return data
    parts.append(data[pos:])
    return b"".join(parts)


def _markup_starts(data: bytes) -> list[int]:
    """Where "<!" and "<?" start, in order: "!" and "?" are rare in a study, and bytes.find finds them far faster
    than a pattern scanning for every "<"."""
    starts = []
    for mark in (b"!", b"?"):
        i = data.find(mark, 1)
        while i >= 0:
            if data[i - 1] == 60:  # "<"
                starts.append(i - 1)
            i = data.find(mark, i + 1)
    return sorted(starts)


def _markup_spans(data: bytes) -> list[tuple[int, int]] | None:
    """(start, end) of every comment, CDATA section, declaration and processing instruction; None when one is not
    closed."""
    spans: list[tuple[int, int]] = []
    for start in _markup_starts(data):
        if spans and start < spans[-1][1]:
            continue  # inside the previous one
        head = data[start:start + 4]
        if head == b"<!--":
            close = b"-->"
        else:
            close = b"]]>" if head.startswith(b"<![") else b"?>" if head[1:2] == b"?" else b">"
        end = data.find(close, start + 2)
        if end < 0:
            return None
        spans.append((start, end + len(close)))
    return spans


_REPEATED = ("condition", "keyword", "arm_group", "intervention", "location")


def parse_legacy_xml(raw: RawStudy, buffers=None) -> ParsedStudy:
    """Parse one legacy XML study into `buffers` (`ctgov.columns.Buffers`, fresh ones when None); RecordError when
    it is malformed, has no NCT id, or has no outcome measures."""
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

    s = StudyRows(nct_id, buffers)
    arms = _arm_groups(repeated["arm_group"], repeated["intervention"], s)
    _interventions(repeated["intervention"], s, arms)
    last_update = _trial(top, repeated, s, raw, n_arm_rows=len(arms))
    matcher = s.arm_matcher([label for label, _ in arms])
    for index, outcome in enumerate(outcomes):
        _outcome(outcome, index, s, matcher)
    _locations(repeated["location"], s)
    return s.done(last_update)


_DESIGN_KEYS = ("allocation", "intervention_model", "masking", "primary_purpose")
_DESIGN_NAMES = {"Allocation": "allocation", "Intervention Model": "intervention_model", "Masking": "masking",
                 "Primary Purpose": "primary_purpose"}


def _study_design(top: dict, s: StudyRows) -> list[str | None]:
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
    return [s.enum(k, v) for k, v in raw.items()]


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
    s.t[TRIALS_TABLE].add(  # in schema order (schemas.TRIALS)
        s.nct_id,
        _tx(top, "brief_title"),
        _tx(top, "official_title"),
        _tx(top, "acronym"),
        _block(top.get("brief_summary")),
        s.phases(_tx(top, "phase")),
        s.enum("overall_status", _tx(top, "overall_status")),
        _tx(top, "why_stopped"),
        s.enum("study_type", _tx(top, "study_type")),
        *_study_design(top, s),  # allocation, intervention_model, masking, primary_purpose
        s.integer("enrollment", _tx(top, "enrollment")),
        s.enum("enrollment_type", enrollment.get("type")) if enrollment is not None else None,
        _texts(repeated["condition"]),
        _texts(repeated["keyword"]),
        s.date("start_date", _tx(top, "start_date")),
        s.date("primary_completion_date", _tx(top, "primary_completion_date")),
        s.date("completion_date", _tx(top, "completion_date")),
        s.date("study_first_posted", _tx(top, "study_first_posted") or _tx(top, "firstreceived_date")),
        s.date("results_first_posted", _tx(top, "results_first_posted") or _tx(top, "firstreceived_results_date")),
        last_update,
        _tx(sponsor, "agency"),  # lead_sponsor
        s.enum("sponsor_class", _tx(sponsor, "agency_class")),
        _block(elig.get("criteria")),  # eligibility_criteria
        s.enum("sex", _tx(elig, "gender") or _tx(elig, "sex")),
        min_age,
        max_age,
        parse_age_years(min_age),
        parse_age_years(max_age),
        None if healthy is None else healthy.lower() not in ("no", "false"),  # healthy_volunteers
        _texts(countries.iterchildren("country")) if countries is not None else [],
        n_arms if n_arms is not None else (n_arm_rows or None),
        LEGACY_XML,
        raw.source_ref,
    )
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
        arm_type = s.enum("arm_type", kids.get("arm_group_type"), "arm_groups.type")
        s.t[ARM_GROUPS_TABLE].add(s.nct_id, index, label, arm_type, description,
                                  names_by_arm.get(label, []) if label else [])
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


_LOCATION_TAGS = frozenset(("name", "city", "state", "zip", "country"))


def _locations(location_els: list, s: StudyRows) -> None:
    add = s.t[LOCATIONS_TABLE].add
    nct_id = s.nct_id
    for index, loc in enumerate(location_els):
        # one pass over location/facility/{name, address/{city, state, zip, country}}, the last of each tag kept: every
        # descendant, filtered here (measured: a quarter fewer instructions than lxml's `iter(tags)`, which matches
        # the same elements: no comment, entity or namespaced tag is in the set)
        found = {}
        for e in loc.iter():
            tag = e.tag
            if tag in _LOCATION_TAGS:
                t = e.text
                found[tag] = (t.strip() or None) if t else None
        get = found.get
        add(nct_id, index, get("name"), get("city"), get("state"), get("zip"), get("country"))
