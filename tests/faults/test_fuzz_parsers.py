"""Fuzzing of both study parsers and of the dose and p-value parsers with mutated REAL records (hypothesis).

Each record of the embedded sample (98 API v2 JSON studies, 250 legacy XML studies) is mutated the way registries and
broken exports damage records: elements and keys dropped, duplicated, shuffled and renamed; values replaced with junk
("NA", "<0.001", "1,234", "∞", 1e400, very long or odd unicode text), with values of the wrong type or with nested
junk; the text cut short or spliced with raw junk (JSON and XML), an external entity declared (XML). Every mutated
record goes through `parse_study` (which may only return rows or raise `RecordError`) and then, all together, through
`ingest` into a fresh store: each one must end up in `trials` or as a record-level `quarantine` row with a reason, and
every table must keep its schema and its data contracts.

The number of mutated records is `DEEPIMAGINE_FUZZ_EXAMPLES` (default 300, seeded so CI runs the same cases; set it,
e.g. to 10000, for a full randomised run:
`DEEPIMAGINE_FUZZ_EXAMPLES=10000 python -m pytest -s tests/faults/test_fuzz_parsers.py`).
The dose and p-value parsers get as many examples each. Figures are printed as `fuzz figures: {...}`.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
import time
import traceback
import zlib
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from deepimagine_core.ctgov import archives, contracts
from deepimagine_core.ctgov.doses import Dose, dose_for, parse_dose
from deepimagine_core.ctgov.ingest import NCT_ID, ingest
from deepimagine_core.ctgov.parse import parse_study
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, ParsedStudy, RawStudy, RecordError
from deepimagine_core.ctgov.rows import dose_columns
from deepimagine_core.ctgov.schemas import CHILD_TABLES, DOSE_FIELDS, KEYS, TABLES
from deepimagine_core.ctgov.values import parse_number, parse_number_relation, parse_p_value
from deepimagine_core.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1800)]

EXAMPLES = int(os.environ.get("DEEPIMAGINE_FUZZ_EXAMPLES", "300"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="DEEPIMAGINE_FUZZ_EXAMPLES" not in os.environ,  # CI: the same cases every run
    suppress_health_check=list(HealthCheck),
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no example database, no patch files
)
RELATIONS = {"=", "<", "<=", ">", ">="}
SECRET_FILE_LINE = "root:x:0:0"  # a line of /etc/passwd: must never reach a table through an XML entity

# Junk registries really contain, plus values that break naive code (overflow, NaN, control text, huge strings).
JUNK_TEXT = [
    "NA", "N/A", "NR", "na", "--", "—", "<0.001", "< .05", "≤ 5", "≥ 0.05", "p<.0001", "1,234", "12,5", "0,03",
    "", " ", "\t\n", "∞", "-∞", "inf", "-inf", "NaN", "nan", "1e400", "-1e400", "1e-400", "9" * 400,
    "0x1F", "1_000", "1.2.3", "-0", "+5", "5-", "2016-02-30", "April 31, 2016", "13/45/2020", "-5 Years",
    "18 Years", "Ωμέγα 漢字 🧪", "\u202eevil", "\ufeffBOM", "Z̸̢͉a̵l̷g̶o", "<b>tag</b>", "&amp;", "]]>",
    "' OR 1=1 --",
    "%s%n", "../../etc/passwd", "NCT", "NCT1234", "null", "None", "true", "[]", "{}", "x" * 20_000,
]
JUNK_NUMBERS = [0, -1, 1, 2**63, -(2**63) - 1, 2**80, 1e308, 1e-320, -0.0, 0.5, 12.0, float("inf"),
                float("-inf"), float("nan"), True, False]
# Keys and tags the parsers read: mutations aimed at them reach the code paths that matter.
JSON_KEYS = [
    "protocolSection", "identificationModule", "nctId", "statusModule", "lastUpdatePostDateStruct", "date",
    "designModule", "phases", "enrollmentInfo", "count", "armsInterventionsModule", "armGroups", "interventions",
    "label", "armGroupLabels", "name", "resultsSection", "outcomeMeasuresModule", "outcomeMeasures", "groups", "id",
    "title", "denoms", "counts", "groupId", "value", "classes", "categories", "measurements", "spread",
    "lowerLimit", "upperLimit", "analyses", "pValue", "groupIds", "paramValue", "ciPctValue", "ciLowerLimit",
    "contactsLocationsModule", "locations", "country", "eligibilityModule", "minimumAge", "healthyVolunteers",
]
XML_TAGS = [
    "id_info", "nct_id", "clinical_results", "outcome_list", "outcome", "measure", "measure_list", "analyzed_list",
    "count_list", "count", "class_list", "class", "category_list", "category", "measurement_list", "measurement",
    "group_list", "group", "analysis_list", "analysis", "p_value", "param_value", "ci_lower_limit", "arm_group",
    "arm_group_label", "intervention", "intervention_name", "enrollment", "last_update_posted", "lastchanged_date",
    "study_design_info", "study_design", "phase", "eligibility", "minimum_age", "location", "country", "title",
]
XML_ATTRIBUTES = ["value", "spread", "lower_limit", "upper_limit", "group_id", "type"]

# Numbers as registries and broken exports write them, and numbers no int64 or float64 column can hold.
NUMBER_JUNK = ["1e30", "1e300", "1e400", "-1e400", "9" * 30, "9" * 400, "-1", "-0", "0.5", "1,234", "12,5", "NaN",
               "inf", "∞", "<0.001", "≥ 5", "NA", "", "1_000", "0x10", " 7 ", "٣", "1.5.2", "10^999"]
xml_safe_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
junk_text = st.one_of(st.sampled_from(JUNK_TEXT), st.text(max_size=40))
junk_scalar = st.one_of(
    junk_text, st.sampled_from(JUNK_NUMBERS), st.integers(-(2**90), 2**90), st.floats(), st.none(), st.booleans()
)
number_junk = st.one_of(st.sampled_from(NUMBER_JUNK), st.sampled_from(JUNK_NUMBERS), st.integers(-(2**90), 2**90),
                        st.floats())
nested_junk = st.recursive(
    junk_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(JSON_KEYS + ["x"]), inner, max_size=3),
    max_leaves=8,
)


# ------------------------------------------------------------------------------------------------------- real records
@functools.lru_cache(maxsize=1)
def real_json_studies() -> tuple[dict, ...]:
    records = archives.iter_source(archives.SAMPLE_DIR / "v2_json_studies.jsonl.gz")
    return tuple(r.payload for r in records if isinstance(r.payload, dict))


@functools.lru_cache(maxsize=1)
def real_xml_studies() -> tuple[tuple[str, str], ...]:
    records = archives.iter_source(archives.SAMPLE_DIR / "legacy_xml_sample.tar.gz")
    return tuple((r.nct_id, r.payload.decode("utf-8")) for r in records if isinstance(r.payload, bytes) and r.nct_id)


@functools.lru_cache(maxsize=1)
def real_short_texts() -> tuple[str, ...]:
    """Arm labels and descriptions, intervention names and descriptions, result-group titles: dose-bearing texts."""
    texts = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("label", "name", "title", "description") and isinstance(value, str):
                    texts.add(value[:600])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for study in real_json_studies():
        walk(study)
    return tuple(sorted(texts))


@functools.lru_cache(maxsize=1)
def real_p_values() -> tuple[str, ...]:
    found = set()
    for study in real_json_studies():
        for outcome in study.get("resultsSection", {}).get("outcomeMeasuresModule", {}).get("outcomeMeasures", []):
            found.update(str(a["pValue"]) for a in outcome.get("analyses", []) if "pValue" in a)
    return tuple(sorted(found))


class Fuzzed:
    """Hands out unique valid NCT ids and source refs, so every mutated record can be traced through `ingest`."""

    def __init__(self):
        self.count = 0

    def new_id(self) -> tuple[str, str]:
        self.count += 1
        return f"NCT9{self.count:07d}", f"fuzz:{self.count}"


# --------------------------------------------------------------------------------------------------- JSON mutations
def _json_nodes(root) -> list[tuple[dict | list, str | int, str]]:
    """Every (container, key, path) of a JSON tree, in a stable order."""
    nodes, stack = [], [(root, "")]
    while stack:
        container, path = stack.pop()
        for key, value in list(container.items() if isinstance(container, dict) else enumerate(container)):
            where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
            nodes.append((container, key, where))
            if isinstance(value, (dict, list)):
                stack.append((value, where))
    return nodes


def _pick(draw, items: list, path):
    """One item, drawn by index from the items ordered by a hash of their path: hypothesis favours the first index,
    which in document order would nearly always be the root's first child."""
    ordered = sorted(items, key=lambda item: zlib.crc32(path(item).encode()))
    return ordered[draw(st.integers(0, len(ordered) - 1), label="index")]


def _numeric(value) -> bool:
    """A number, or text that reads as one."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and parse_number(value) is not None)


def _retype(value):
    """A value of another JSON type than `value` (objects become lists or text, text becomes a number ...)."""
    if isinstance(value, dict):
        return [list(value.values())[:1]] if value else "{}"
    if isinstance(value, list):
        return {"0": value[0]} if value else json.dumps(value)
    if isinstance(value, str):
        return [value]
    return {"value": value}


def mutate_json_tree(draw, study: dict, log: list[str]) -> None:
    """Apply 1-4 structural or value mutations to a study object, in place; say what was done in `log`."""
    for _ in range(draw(st.integers(1, 4), label="n_ops")):
        nodes = _json_nodes(study)
        aim = draw(st.sampled_from(["anywhere", "parsed key", "module", "number"]), label="aim")
        if aim == "number":  # a count, value, limit ... replaced with a number-like junk value
            numeric = [n for n in nodes if _numeric(n[0][n[1]])]
            if numeric:
                container, key, path = _pick(draw, numeric, lambda n: n[2])
                container[key] = draw(number_junk, label="number junk")
                log.append(f"number {path} -> {_short(container[key])}")
                continue
        if aim == "parsed key":
            nodes = [n for n in nodes if n[1] in JSON_KEYS] or nodes
        elif aim == "module":  # modules and their direct fields (below protocolSection, resultsSection ...)
            nodes = [n for n in nodes if 2 <= n[2].count(".") + n[2].count("[") <= 3] or nodes
        container, key, path = _pick(draw, nodes, lambda n: n[2])
        op = draw(st.sampled_from(["drop", "duplicate", "shuffle", "junk", "retype", "nested", "rekey"]), label="op")
        value = container[key]
        if op == "drop":
            del container[key]
        elif op == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))
        elif op == "duplicate":  # the value also under a sibling key (a key holding what another should)
            container[draw(st.sampled_from(sorted(container)), label="sibling")] = copy.deepcopy(value)
        elif op == "shuffle":
            target = value if isinstance(value, (dict, list)) and value else container
            items = list(target.items()) if isinstance(target, dict) else list(target)
            order = draw(st.permutations(range(len(items))), label="order")
            shuffled = [items[i] for i in order]
            if isinstance(target, dict):
                target.clear()
                target.update(shuffled)
            else:
                target[:] = shuffled
        elif op == "junk":
            container[key] = draw(junk_scalar, label="junk")
        elif op == "retype":
            container[key] = _retype(value)
        elif op == "nested":
            container[key] = draw(nested_junk, label="nested junk")
        elif op == "rekey" and isinstance(container, dict):
            container[draw(st.sampled_from(JSON_KEYS), label="new key")] = container.pop(key)
        else:
            continue  # renaming a list item means nothing
        log.append(f"{op} {path}" + (f" -> {_short(container[key])}" if op in ("junk", "retype", "nested") else ""))


def mutate_text(draw, text: str, raw_junk, log: list[str]) -> str:
    """Cut the text short or splice junk into it (or leave it whole)."""
    op = draw(st.sampled_from(["whole", "truncate", "splice"]), label="text op")
    if op == "truncate":
        at = draw(st.integers(1, max(1, len(text) - 1)), label="cut at")
        log.append(f"truncate at {at} of {len(text)} chars")
        return text[:at]
    if op == "splice":
        at = draw(st.integers(0, len(text)), label="splice at")
        junk = draw(raw_junk, label="spliced")
        log.append(f"splice {_short(junk)} at {at}: ...{text[max(0, at - 30):at]!r}")
        return text[:at] + junk + text[at:]
    return text


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} chars)"


@dataclass
class Case:
    """The record(s) made from one real record, and what was done to it (reported with a finding)."""

    real: str
    ops: list[str]
    records: list[RawStudy] = field(repr=False)


@st.composite
def mutated_json_records(draw, fuzzed: Fuzzed) -> Case:
    """One mutated API v2 study, handed over as the raw layer holds it (a dict), as JSON text, or as a JSON Lines
    line read by the archive reader (which may yield an error record, or two records from a spliced newline)."""
    original = draw(st.sampled_from(real_json_studies()), label="real study")
    nct_id, ref = fuzzed.new_id()
    old = original["protocolSection"]["identificationModule"]["nctId"]
    study = json.loads(json.dumps(original).replace(old, nct_id))
    log: list[str] = []
    mutate_json_tree(draw, study, log)
    channel = draw(st.sampled_from(["dict", "text", "jsonl"]), label="channel")
    log.append(f"as {channel}")
    if channel == "dict":
        ident = archives.study_identity(study)
        return Case(old, log, [RawStudy(API_V2_JSON, ref, study, nct_id=ident[0], version=ident[1])])
    text = mutate_text(draw, json.dumps(study, ensure_ascii=draw(st.booleans())), junk_text, log)
    if channel == "text":
        return Case(old, log, [RawStudy(API_V2_JSON, ref, text, nct_id=nct_id)])
    return Case(old, log, list(archives.iter_jsonl(io.BytesIO(text.encode("utf-8", "surrogatepass")), ref)))


# ---------------------------------------------------------------------------------------------------- XML mutations
def mutate_xml_tree(draw, root: etree._Element, log: list[str]) -> None:
    """Apply 1-4 element, text or attribute mutations to a legacy study, in place; say what was done in `log`."""
    for _ in range(draw(st.integers(1, 4), label="n_ops")):
        elements = list(root.iter(tag=etree.Element))
        aim = draw(st.sampled_from(["anywhere", "parsed tag", "number"]), label="aim")
        if aim == "number":  # a numeric text or attribute (counts, values, limits) replaced with number-like junk
            numeric = [(e, a) for e in elements for a in [None, *e.attrib]
                       if _numeric(e.text if a is None else e.get(a))]
            if numeric:
                el, attribute = _pick(draw, numeric, lambda n: f"{root.getroottree().getpath(n[0])}@{n[1]}")
                junk = str(draw(number_junk, label="number junk"))
                el.text = junk if attribute is None else el.text
                if attribute is not None:
                    el.set(attribute, junk)
                where = root.getroottree().getpath(el) + (f"/@{attribute}" if attribute else "")
                log.append(f"number {where} -> {junk!r}")
                continue
        if aim == "parsed tag":
            elements = [e for e in elements if e.tag in XML_TAGS] or elements
        el = _pick(draw, elements, root.getroottree().getpath)
        parent = el.getparent()
        where = root.getroottree().getpath(el)
        op = draw(
            st.sampled_from(["drop", "duplicate", "shuffle", "text", "attribute", "nested", "retag"]), label="op"
        )
        if op == "drop" and parent is not None:
            parent.remove(el)
        elif op == "duplicate" and parent is not None:
            parent.insert(parent.index(el) + 1, copy.deepcopy(el))
        elif op == "shuffle" and len(el):
            children = list(el)
            order = draw(st.permutations(range(len(children))), label="order")
            for child in children:
                el.remove(child)
            el.extend(children[i] for i in order)
        elif op == "text":
            el.text = draw(st.one_of(st.sampled_from(JUNK_TEXT), xml_safe_text), label="junk text")
        elif op == "attribute":
            name = draw(st.sampled_from(sorted(el.attrib) or XML_ATTRIBUTES), label="attribute")
            if draw(st.booleans(), label="delete attribute") and name in el.attrib:
                del el.attrib[name]
            else:
                el.set(name, draw(st.one_of(st.sampled_from(JUNK_TEXT), xml_safe_text), label="junk value"))
        elif op == "nested":
            junk = etree.SubElement(el, draw(st.sampled_from(XML_TAGS), label="junk tag"))
            for tag in draw(st.lists(st.sampled_from(XML_TAGS), max_size=3), label="junk children"):
                etree.SubElement(junk, tag).text = draw(xml_safe_text, label="junk child text")
        elif op == "retag":
            el.tag = draw(st.sampled_from(XML_TAGS), label="new tag")
        else:
            continue  # the root cannot be dropped or duplicated, nor a leaf shuffled
        log.append(f"{op} {where}" + (f" -> {_short(el.text)}" if op == "text" else "")
                   + (f" -> {_short(dict(el.attrib))}" if op == "attribute" else ""))


def _with_external_entity(text: str) -> str:
    """Declare an external entity reading /etc/passwd and use it as the brief title (XXE)."""
    body = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    decl = '<!DOCTYPE clinical_study [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return decl + body.replace("<brief_title>", "<brief_title>&xxe;", 1)


@st.composite
def mutated_xml_records(draw, fuzzed: Fuzzed) -> Case:
    """One mutated legacy XML study as the archive readers hand it over (its text)."""
    old, text = draw(st.sampled_from(real_xml_studies()), label="real study")
    nct_id, ref = fuzzed.new_id()
    text = text.replace(old, nct_id)
    log: list[str] = []
    if draw(st.booleans(), label="mutate the tree"):
        root = etree.fromstring(text.encode("utf-8"))
        mutate_xml_tree(draw, root, log)
        text = etree.tostring(root, encoding="unicode")
    if draw(st.integers(0, 9), label="entity") == 0:
        text = _with_external_entity(text)
        log.append("external entity in brief_title")
    raw_junk = st.one_of(junk_text, st.sampled_from(["<", "&", "\x00", "<!--", "<a>", "&xxe;"]))
    text = mutate_text(draw, text, raw_junk, log)
    return Case(old, log, [RawStudy(LEGACY_XML, ref, text, nct_id=nct_id)])


# ------------------------------------------------------------------------------------------------------- the checks
class Finding(AssertionError):
    """A record the parsers got wrong: `kind` groups findings with the same cause (no NCT ids, no positions)."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def _where(exc: BaseException) -> str:
    """file:line (function) of the innermost project frame of a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    frame = ([f for f in frames if "deepimagine_core" in f.filename] or frames)[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} ({frame.name})"


def check_parse(raw: RawStudy) -> ParsedStudy | None:
    """Parse one record as `ingest` does: rows that fit every table's schema and contracts, or a RecordError with a
    reason (None is returned); anything else raises `Finding`."""
    if raw.error is not None:
        if not str(raw.error).strip():
            raise Finding("reader error record without a reason")
        return None
    try:
        parsed = parse_study(raw)
    except RecordError as err:
        if not str(err.reason).strip():
            raise Finding(f"{raw.source_format}: RecordError without a reason") from err
        return None
    except Exception as err:  # noqa: BLE001 - any other exception is a parser crash
        raise Finding(f"{raw.source_format} parser crash: {type(err).__name__} at {_where(err)}", str(err)) from err
    for name, rows in parsed.rows.items():
        schema = TABLES[name]
        if name == "quarantine" and rows:
            raise Finding("parser returned quarantine rows")
        for row in rows:
            if set(row) != set(schema.names):
                raise Finding(f"{name} row columns differ from the schema", str(set(row) ^ set(schema.names)))
            if row.get("nct_id", parsed.nct_id) != parsed.nct_id:
                raise Finding(f"{name} row of another study")
        if name in KEYS:
            keys = [tuple(row[k] for k in KEYS[name]) for row in rows]
            if len(set(keys)) != len(keys):
                raise Finding(f"{raw.source_format}: duplicate {name} keys {KEYS[name]}")
        try:
            table = pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as err:  # what TableWriter would raise
            raise Finding(f"{raw.source_format}: {name} rows do not fit the schema ({type(err).__name__})",
                          str(err)) from err
        for column, typ in zip(schema.names, schema.types):
            values = table.column(column)
            if pa.types.is_list(typ):
                values, typ = pc.list_flatten(values), typ.value_type
            if pa.types.is_floating(typ) and pc.all(pc.is_finite(values.drop_null())).as_py() is False:
                raise Finding(f"{raw.source_format}: non-finite {name}.{column}")
        if name == "outcome_analyses" and (
            contracts.p_values_out_of_range(table)
            or not set(table.column("p_value_relation").drop_null().to_pylist()) <= RELATIONS
        ):
            raise Finding(f"{raw.source_format}: p-value out of [0, 1] or unknown relation")
    if not all(str(issue.get("reason", "")).strip() for issue in parsed.field_issues):
        raise Finding(f"{raw.source_format}: field issue without a reason")
    return parsed


class Findings:
    """Findings grouped by kind, each with its count and the case with the fewest mutations."""

    def __init__(self):
        self.by_kind: dict[str, list] = {}  # kind -> [count, case, detail]

    def add(self, finding: Finding, case: Case) -> None:
        entry = self.by_kind.setdefault(finding.kind, [0, case, str(finding)])
        entry[0] += 1
        if len(" ".join(case.ops)) < len(" ".join(entry[1].ops)):
            entry[1], entry[2] = case, str(finding)

    @property
    def count(self) -> int:
        return sum(entry[0] for entry in self.by_kind.values())

    def report(self) -> str:
        return "\n".join(
            f"{count:5d} x {kind}\n        e.g. real record {case.real} after {case.ops}\n        {detail[:300]}"
            for kind, (count, case, detail) in sorted(self.by_kind.items(), key=lambda kv: -kv[1][0])
        )


def check_dose(dose: Dose | None, text: str | None) -> None:
    if dose is None:
        return
    assert dose.values and all(math.isfinite(x) and x >= 0 for x in dose.values), (text, dose)
    assert dose.unit and dose.text and dose.text in text, (text, dose)
    assert all(v is None or (isinstance(v, str) and v) for v in (dose.frequency, dose.route)), (text, dose)
    row = dose_columns(dose, "arm_label")
    pa.Table.from_pylist([row], schema=pa.schema([pa.field(n, t) for n, t in DOSE_FIELDS]))


def check_tables(store: Store, records: list[RawStudy], parsed: dict[str, str | None], summary) -> dict:
    """Every record is in trials, or quarantined at record level with a reason, or a counted duplicate; every table
    has its schema and holds to its contracts (unique keys, no orphans, p-values in [0, 1], no entity expanded)."""
    tables = {name: store.read_table(name) for name in TABLES}
    for name, table in tables.items():
        assert table.schema.equals(TABLES[name], check_metadata=False), name
    trials, quarantine = tables["trials"], tables["quarantine"]
    refs = [r.source_ref for r in records]
    assert len(set(refs)) == len(refs)
    in_trials = set(trials.column("source_ref").to_pylist())
    record_level = quarantine.filter(pc.equal(quarantine.column("level"), "record"))
    in_quarantine = set(record_level.column("source_ref").to_pylist())
    assert not in_trials & in_quarantine
    assert record_level.num_rows == len(in_quarantine), "one record-level row per quarantined record"
    assert all(str(reason).strip() for reason in quarantine.column("reason").to_pylist())
    trial_ids = set(trials.column("nct_id").to_pylist())
    missing = [ref for ref in refs if ref not in in_trials and ref not in in_quarantine]
    assert all(parsed.get(ref) in trial_ids for ref in missing), "a record is in neither trials nor quarantine"
    assert len(missing) == summary.duplicates_dropped and summary.reconciles, summary.as_dict()
    assert all(NCT_ID.match(n) for n in trial_ids)
    for name, key in KEYS.items():
        assert contracts.duplicate_keys(tables[name], key) == 0, (name, key)
    for name in CHILD_TABLES:
        assert contracts.orphan_rows(tables[name], trials) == 0, name
    assert contracts.p_values_out_of_range(tables["outcome_analyses"]) == 0
    for table in tables.values():
        for column in table.column_names:
            if pa.types.is_string(table.schema.field(column).type):
                assert not any(SECRET_FILE_LINE in v for v in table.column(column).drop_null().to_pylist()), column
    return {"trials": trials.num_rows, "quarantined": len(in_quarantine), "duplicates_dropped": len(missing),
            "field_issues": summary.field_issues}


# -------------------------------------------------------------------------------------------------------- the tests
def fuzz_records(strategy, examples: int, store: Store) -> dict:
    """Run `examples` mutated records through the checks (collecting findings instead of stopping at the first),
    then the sound ones through `ingest`; the figures, with every finding grouped by kind."""
    findings = Findings()
    records: list[RawStudy] = []
    parsed: dict[str, str | None] = {}
    figures = {"mutated_records": 0, "raw_records": 0}
    started = time.perf_counter()

    @settings(SETTINGS, max_examples=examples)
    @given(strategy)
    def run(case: Case) -> None:
        figures["mutated_records"] += 1
        for raw in case.records:
            figures["raw_records"] += 1
            try:
                result = check_parse(raw)
            except Finding as finding:
                findings.add(finding, case)
                continue
            parsed[raw.source_ref] = result.nct_id if result else None
            records.append(raw)

    run()
    figures["parse_seconds"] = round(time.perf_counter() - started, 1)
    summary = ingest(records, store, source="fuzz", allow_partial=True)  # cut records are the point here
    figures.update(check_tables(store, records, parsed, summary))
    figures.update(findings=findings.count, ingest_seconds=round(summary.seconds, 1),
                   top_reasons=dict(list(summary.quarantine_reasons.items())[:6]))
    print("\nfuzz figures:", json.dumps(figures, ensure_ascii=False))
    broke = f"{findings.count} of {figures['raw_records']} records broke a parser:\n"
    assert not findings.by_kind, broke + findings.report()
    assert figures["trials"] > 0 and figures["quarantined"] > 0, figures
    return figures


def test_v2_json_parser_survives_mutated_real_records(tmp_path):
    fuzz_records(mutated_json_records(Fuzzed()), EXAMPLES // 2, Store(tmp_path))


def test_legacy_xml_parser_survives_mutated_real_records(tmp_path):
    fuzz_records(mutated_xml_records(Fuzzed()), EXAMPLES - EXAMPLES // 2, Store(tmp_path))


# Hazards the fuzzing found, each on one real record, so every run checks them whatever the seed.
def _json_hazard(change):
    def make() -> RawStudy:
        study = copy.deepcopy(next(s for s in real_json_studies() if _has_results_shape(s)))
        change(study["protocolSection"], study["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0])
        return RawStudy(API_V2_JSON, "hazard", study, nct_id=study["protocolSection"]["identificationModule"]["nctId"])
    return make


def _has_results_shape(study: dict) -> bool:
    outcomes = study.get("resultsSection", {}).get("outcomeMeasuresModule", {}).get("outcomeMeasures", [])
    return bool(outcomes and all(outcomes[0].get(k) for k in ("denoms", "groups", "classes")))


def _xml_hazard(change):
    def make() -> RawStudy:
        nct_id, text = real_xml_studies()[0]  # old schema: a "Number of Participants" measure first
        root = etree.fromstring(text.encode("utf-8"))
        change(root, root.find("clinical_results/outcome_list/outcome"))
        return RawStudy(LEGACY_XML, "hazard", etree.tostring(root, encoding="unicode"), nct_id=nct_id)
    return make


def _set(mapping: dict, key: str, value) -> None:
    mapping[key] = value


def _duplicate(parent: etree._Element, child: etree._Element) -> None:
    parent.insert(parent.index(child) + 1, copy.deepcopy(child))


HAZARDS = {
    "json enrollment beyond int64": _json_hazard(
        lambda p, o: _set(p["designModule"]["enrollmentInfo"], "count", "1e30")),
    "json participants 1e300": _json_hazard(lambda p, o: _set(o["denoms"][0]["counts"][0], "value", "1e300")),
    "json participants inf": _json_hazard(lambda p, o: _set(o["denoms"][0]["counts"][0], "value", "inf")),
    "json statusModule is text": _json_hazard(lambda p, o: _set(p, "statusModule", "x")),
    "json designModule is a number": _json_hazard(lambda p, o: _set(p, "designModule", 7)),
    "json designInfo is text": _json_hazard(lambda p, o: _set(p["designModule"], "designInfo", "x")),
    "json enrollmentInfo is a list": _json_hazard(lambda p, o: _set(p["designModule"], "enrollmentInfo", [80])),
    "json eligibilityModule is a list": _json_hazard(lambda p, o: _set(p, "eligibilityModule", ["x"])),
    "json leadSponsor is a bool": _json_hazard(
        lambda p, o: _set(p["sponsorCollaboratorsModule"], "leadSponsor", True)),
    "json result group twice": _json_hazard(lambda p, o: o["groups"].append(copy.deepcopy(o["groups"][0]))),
    "json measurement twice": _json_hazard(lambda p, o: o["classes"][0]["categories"][0]["measurements"].append(
        copy.deepcopy(o["classes"][0]["categories"][0]["measurements"][0]))),
    "xml enrollment beyond int64": _xml_hazard(lambda r, o: setattr(r.find("enrollment"), "text", "1e30")),
    "xml participants 1e300": _xml_hazard(lambda r, o: o.find(".//measurement").set("value", "1e300")),
    "xml participants inf": _xml_hazard(lambda r, o: o.find(".//measurement").set("value", "inf")),
    "xml result group twice": _xml_hazard(lambda r, o: _duplicate(o.find("group_list"), o.find("group_list/group"))),
    "xml measurement twice": _xml_hazard(lambda r, o: _duplicate(
        o.findall(".//measurement_list")[-1], o.findall(".//measurement_list")[-1].find("measurement"))),
}


@pytest.mark.parametrize("hazard", sorted(HAZARDS))
def test_parsers_on_known_hazards(hazard, tmp_path):
    """Each is used or quarantined with a reason; none crashes a parser or `ingest`, none breaks a table contract."""
    raw = HAZARDS[hazard]()
    parsed = check_parse(raw)
    summary = ingest([raw], Store(tmp_path), source="hazard", allow_partial=True)
    check_tables(Store(tmp_path), [raw], {raw.source_ref: parsed.nct_id if parsed else None}, summary)


dose_like = st.from_regex(
    r"\A[A-Za-z ]{0,12}(?:\d{1,5}|\d{1,3}(?:,\d{3})+|\d*\.\d{1,4}|9{300,400})"
    r"(?:[eE][-+]?\d{1,4}|\s?[x×]\s?10\^?-?\d{1,4})?"
    r"(?:\s?(?:-|/|to|or)\s?\d{1,4})?\s?(?:mg|mcg|µg|g|IU|U|mL|%|Gy|mg/kg|mg/m2|cells|vp|million cells)"
    r"(?:/day|/kg| per day| BID| q2w| IV| orally| once daily)?[ .;,A-Za-z]{0,12}\Z"
)


@st.composite
def mutated_short_text(draw) -> str:
    text = draw(st.sampled_from(real_short_texts()), label="real text")
    for _ in range(draw(st.integers(0, 3), label="n_ops")):
        at = draw(st.integers(0, len(text)), label="at")
        op = draw(st.sampled_from(["insert", "delete", "repeat"]), label="op")
        if op == "insert":
            text = text[:at] + draw(st.one_of(junk_text, dose_like), label="inserted") + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20), label="n") :]
        else:
            text = text[:at] + text[at : at + 30] * draw(st.integers(2, 50), label="times") + text[at + 30 :]
    return text


@SETTINGS
@given(text=st.one_of(mutated_short_text(), dose_like, junk_text), name=st.one_of(st.none(), junk_text,
       st.sampled_from(["Mirabegron", "Placebo", "Drug", "mg"])))
@example(text="Avanafil 1E400 mg", name=None)  # overflows float64
@example(text="9" * 400 + " mg", name="Drug")
@example(text="Drug 5 mg " + "1-" * 3000 + "1 mg", name="Drug")  # a long run of values: no catastrophic backtracking
def test_dose_parser_never_fails_on_junk(text, name):
    """A dose is None or finite non-negative values with a unit, read from a span of the text, fitting the schema."""
    started = time.perf_counter()
    check_dose(parse_dose(text), text)
    check_dose(dose_for(name, text), text)
    assert time.perf_counter() - started < 5, f"dose parsing took {time.perf_counter() - started:.1f}s: {text[:200]!r}"


p_like = st.from_regex(
    r"\A\s{0,2}(?:[pP](?:-value)?\s?)?(?:<=|>=|=<|=>|==|<<|>>|[<>=≤≥≦≧])?\s{0,2}[-+−]?\d{0,4}[.,]?\d{0,6}"
    r"(?:[eE][-+]?\d{1,4}|\s?[x×]\s?10\^?-?\d{1,3})?\s{0,2}\Z"
)


@SETTINGS
@given(text=st.one_of(p_like, st.sampled_from(real_p_values()), junk_text), p=st.floats(0, 1))
@example(text="<1e-400", p=0.0)
@example(text="p = 1e400", p=1.0)
@example(text="≤ .05", p=5e-324)
def test_p_value_and_number_parsers_never_fail_on_junk(text, p):
    """A p-value is None or a finite value in [0, 1] with a known relation; a clean p-value reads back exactly."""
    for parsed in (parse_p_value(text), parse_number_relation(text)):
        assert parsed is None or (math.isfinite(parsed[0]) and parsed[1] in RELATIONS), (text, parsed)
    pv = parse_p_value(text)
    assert pv is None or 0.0 <= pv[0] <= 1.0, (text, pv)
    x = parse_number(text)
    assert x is None or math.isfinite(x), (text, x)
    # What a clean p-value says must come back exactly.
    assert parse_p_value(repr(p)) == (p, "=")
    assert parse_p_value(f"< {p!r}") == (p, "<")
    assert parse_p_value(f"p≤{p!r}") == (p, "<=")
