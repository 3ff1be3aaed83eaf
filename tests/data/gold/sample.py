"""Draw the gold set's two-group comparisons from the shared legacy-XML records (deterministic).

    python tests/data/gold/sample.py [--src /work/shared/data/ctgov/legacy_xml] [--out tests/data/gold]

Reads both archives of the shared snapshot (``ctgov_legacy_xml_sample.tar.gz``, 3,000 studies, and
``ctgov_legacy_xml_rest.tar.gz``, 11,543 studies), lists every statistical analysis that names exactly two distinct
result groups of a Primary or Secondary outcome, puts each in one of 12 strata

    outcome type (primary | secondary) x measure kind (count | continuous | time_to_event) x evidence (p | ci_only)

and draws ``PER_STRATUM`` comparisons per stratum with ``random.Random(SEED)``, at most one comparison per trial
(strata drawn in a fixed order, candidates shuffled after sorting). The stratum is a rough, mechanical sorting aid
read off the XML (parameter, units, title words, method); the gold label itself is written by a person reading the
record and may say otherwise (e.g. a "count" that is really a rate).

Writes ``sample.jsonl`` (one line per drawn comparison: identifiers, stratum, source archive member) and
``records.tar.gz`` (each drawn study's XML cut down to what the project's parser needs for that comparison: the
protocol part without locations, long free text and eligibility, and the results with only the drawn outcome).
With ``--fields PATH`` it also writes, per drawn comparison, the record's fields a reader needs (outcome, groups,
arms, analysis, values; verbatim), which is what the labels were written from.
Uses only the standard library so that it never depends on the project's own rules.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

SEED = 20261206
PER_STRATUM = 11
ARCHIVES = ("ctgov_legacy_xml_sample.tar.gz", "ctgov_legacy_xml_rest.tar.gz")
STRATA = [(t, k, e) for t in ("Primary", "Secondary") for k in ("count", "continuous", "time_to_event")
          for e in ("p", "ci_only")]
# Protocol elements dropped from the stored excerpt (long or irrelevant to a two-group comparison).
_DROP_TOP = ("location", "detailed_description", "eligibility", "reference", "results_reference", "overall_official",
             "responsible_party", "sponsors", "oversight_info", "link", "overall_contact", "keyword",
             "condition_browse", "intervention_browse", "location_countries", "removed_countries", "required_header")
_DROP_RESULTS = ("participant_flow", "baseline", "reported_events", "certain_agreements", "point_of_contact",
                 "limitations_and_caveats")
_TTE = re.compile(r"\btime to\b|\bsurvival\b|time until|time-to|duration of response|\bkaplan|\bevent[- ]free\b",
                  re.IGNORECASE)
_TTE_METHOD = re.compile(r"log[- ]?rank|cox|hazard", re.IGNORECASE)
_COUNT_UNITS = re.compile(r"participant|patient|subject|people|person|% of|percent|percentage|proportion|eyes|"
                          r"responders|\bcases\b|\bevents\b", re.IGNORECASE)


def _text(el, tag: str) -> str | None:
    found = el.find(tag)
    return found.text.strip() if found is not None and found.text else None


def measure_kind(outcome, analysis) -> str:
    """A mechanical sorting aid: time_to_event | count | continuous."""
    title = " ".join(filter(None, (_text(outcome, "title"), _text(outcome, "description"))))
    measure = outcome.find("measure_list/measure[last()]")
    param = _text(measure, "param") if measure is not None else None
    units = _text(measure, "units") if measure is not None else None
    stat = " ".join(filter(None, (_text(analysis, "method"), _text(analysis, "param_type"))))
    if _TTE.search(title) or _TTE_METHOD.search(stat):
        return "time_to_event"
    if param == "Number" and units and _COUNT_UNITS.search(units):
        return "count"
    if re.search(r"odds ratio|risk (ratio|difference)|chi|fisher|cochran|mantel", stat, re.IGNORECASE):
        return "count"
    return "continuous"


def candidates(xml: bytes, nct_id: str) -> list[dict]:
    root = ET.fromstring(xml)
    out = []
    for oi, outcome in enumerate(root.findall("clinical_results/outcome_list/outcome")):
        otype = _text(outcome, "type")
        if otype not in ("Primary", "Secondary"):
            continue
        for ai, analysis in enumerate(outcome.findall("analysis_list/analysis")):
            ids = [g.text.strip() for g in analysis.findall("group_id_list/group_id") if g.text]
            if len(set(ids)) != 2 or len(ids) != 2:
                continue
            p = _text(analysis, "p_value")
            ci = _text(analysis, "ci_lower_limit") is not None and _text(analysis, "ci_upper_limit") is not None
            if p is None and not ci:
                continue
            out.append({"nct_id": nct_id, "outcome_index": oi, "analysis_index": ai, "outcome_type": otype,
                        "kind": measure_kind(outcome, analysis), "evidence": "p" if p is not None else "ci_only"})
    return out


def iter_archives(src: Path):
    for name in ARCHIVES:
        with tarfile.open(src / name, mode="r|gz") as tar:
            for member in tar:
                tar.members = []
                m = re.search(r"(NCT\d{8})\.xml$", member.name)
                if not member.isfile() or not m:
                    continue
                yield name, member.name, m.group(1), tar.extractfile(member).read()


def draw(all_candidates: list[dict]) -> list[dict]:
    rng = random.Random(SEED)
    taken: set[str] = set()
    drawn = []
    for stratum in STRATA:
        pool = sorted((c for c in all_candidates if (c["outcome_type"], c["kind"], c["evidence"]) == stratum),
                      key=lambda c: (c["nct_id"], c["outcome_index"], c["analysis_index"]))
        rng.shuffle(pool)
        n = 0
        for c in pool:
            if n == PER_STRATUM:
                break
            if c["nct_id"] in taken:
                continue
            taken.add(c["nct_id"])
            drawn.append({**c, "stratum": "/".join(stratum)})
            n += 1
    return drawn


def excerpt(xml: bytes, outcome_index: int) -> bytes:
    """The study's XML with only what the parser needs for the drawn outcome (see module docstring)."""
    root = ET.fromstring(xml)
    for tag in _DROP_TOP:
        for el in root.findall(tag):
            root.remove(el)
    results = root.find("clinical_results")
    for tag in _DROP_RESULTS:
        for el in results.findall(tag):
            results.remove(el)
    outcome_list = results.find("outcome_list")
    for i, el in enumerate(list(outcome_list)):
        if i != outcome_index:
            outcome_list.remove(el)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def fields(xml: bytes, c: dict) -> dict:
    """What a reader needs to label the comparison, copied verbatim from the record."""
    root = ET.fromstring(xml)
    outcome = root.findall("clinical_results/outcome_list/outcome")[c["outcome_index"]]
    analysis = outcome.findall("analysis_list/analysis")[c["analysis_index"]]
    groups = {g.get("group_id"): {"title": _text(g, "title"), "description": _text(g, "description")}
              for g in outcome.findall("group_list/group")}
    measures = []
    for m in outcome.findall("measure_list/measure"):
        values = []
        for cls in m.findall("class_list/class") or [m]:
            for cat in cls.findall("category_list/category"):
                for v in cat.findall("measurement_list/measurement"):
                    values.append({"class": _text(cls, "title"), "category": _text(cat, "sub_title"),
                                   **{k: v.get(k) for k in ("group_id", "value", "spread", "lower_limit",
                                                            "upper_limit")}})
        measures.append({"title": _text(m, "title"), "units": _text(m, "units"), "param": _text(m, "param"),
                         "dispersion": _text(m, "dispersion"), "values": values})
    arms = [{"label": _text(a, "arm_group_label"), "type": _text(a, "arm_group_type"),
             "description": _text(a, "description")} for a in root.findall("arm_group")]
    keys = ("groups_desc", "non_inferiority", "non_inferiority_desc", "p_value", "p_value_desc", "method",
            "method_desc", "param_type", "param_value", "dispersion_type", "dispersion_value", "ci_percent",
            "ci_n_sides", "ci_lower_limit", "ci_upper_limit", "estimate_desc")
    ids = [g.text.strip() for g in analysis.findall("group_id_list/group_id")]
    return {"brief_title": _text(root, "brief_title"), "outcome_title": _text(outcome, "title"),
            "outcome_description": _text(outcome, "description"), "time_frame": _text(outcome, "time_frame"),
            "population": _text(outcome, "population"), "groups": groups, "analysis_group_ids": ids,
            "analysis": {k: _text(analysis, k) for k in keys}, "measures": measures, "arms": arms}


def write_outputs(out: Path, drawn: list[dict], rows: dict, excerpts: dict[str, bytes], fields_path: str | None,
                  folder: str) -> None:
    """``sample.jsonl`` (the drawn lines), the reader's fields when ``fields_path`` is given, and ``records.tar.gz``
    (each excerpt as ``folder/NCT....xml``), byte-for-byte reproducible."""
    with open(out / "sample.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in drawn)
    if fields_path:
        with open(fields_path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(rows[c["nct_id"]], ensure_ascii=False, sort_keys=True) + "\n" for c in drawn)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for nct_id in sorted(excerpts):
            info = tarfile.TarInfo(f"{folder}/{nct_id}.xml")
            info.size, info.mtime, info.mode = len(excerpts[nct_id]), 0, 0o644
            tar.addfile(info, io.BytesIO(excerpts[nct_id]))
    (out / "records.tar.gz").write_bytes(gzip.compress(buf.getvalue(), mtime=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default="/work/shared/data/ctgov/legacy_xml")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--fields", default=None, help="also write the reading excerpts (JSON Lines) here")
    args = ap.parse_args()
    src, out = Path(args.src), Path(args.out)
    found, counts = [], {}
    for archive, member, nct_id, xml in iter_archives(src):
        for c in candidates(xml, nct_id):
            found.append({**c, "archive": archive, "member": member})
            key = (c["outcome_type"], c["kind"], c["evidence"])
            counts[key] = counts.get(key, 0) + 1
    drawn = draw(found)
    wanted = {c["nct_id"]: c for c in drawn}
    rows, excerpts = {}, {}
    for archive, member, nct_id, xml in iter_archives(src):
        if nct_id in wanted:
            rows[nct_id] = {**wanted[nct_id], "record": fields(xml, wanted[nct_id])}
            excerpts[nct_id] = excerpt(xml, wanted[nct_id]["outcome_index"])
    write_outputs(out, drawn, rows, excerpts, args.fields, "gold_records")
    print(json.dumps({"candidates_per_stratum": {"/".join(k): v for k, v in sorted(counts.items())},
                      "drawn_per_stratum": {"/".join(s): sum(c["stratum"] == "/".join(s) for c in drawn)
                                            for s in STRATA}, "drawn": len(drawn)}, indent=1))


if __name__ == "__main__":
    main()
