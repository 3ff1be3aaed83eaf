"""Draw the computed-label gold set's safety outcomes from the shared legacy-XML records (deterministic).

    python tests/data/gold_computed/sample.py [--src /work/shared/data/ctgov/legacy_xml] [--out DIR] [--fields PATH]

Reads both archives of the shared snapshot (``ctgov_legacy_xml_sample.tar.gz`` and ``ctgov_legacy_xml_rest.tar.gz``)
and lists every outcome that

- is Primary or Secondary, of a study with >= 2 protocol arm groups (``arm_group``);
- has a title mentioning safety, adverse events, side effects, toxicity, tolerability or treatment-emergent;
- has no posted statistical analysis (no ``analysis_list/analysis``);
- has one outcome measure (besides the legacy "Number of Participants" measure that carries the analysed counts)
  whose param is "Number" or "Count of Participants" and whose unit is participants / subjects / patients;
- has >= 2 result groups and exactly one measurement per group (one class, one category).

Each candidate goes into one of 4 strata, outcome type (Primary | Secondary) x result groups (2 | 3+), and
``PER_STRATUM`` outcomes are drawn per stratum with ``random.Random(SEED)``, at most one outcome per trial (strata in
a fixed order, candidates shuffled after sorting). Then, with the same generator, ``PER_ENRICHED`` more per stratum
among the candidates where some pair of groups differs at p < 0.05 by a mechanical two-sided Fisher test of the posted
counts (a sorting aid only: without it almost every drawn pair is alike and direction goes untested).

Writes ``sample.jsonl`` (one line per drawn outcome) and ``records.tar.gz`` (each drawn study's XML cut down exactly
as the gold set of ``tests/data/gold`` cuts it: protocol part without locations, long free text and eligibility, and
the results with only the drawn outcome). With ``--fields PATH`` it also writes, per drawn outcome, the record's fields
a reader needs (outcome, groups, arms, measures; verbatim), which is what the labels were written from.
Standard library only (the record cutting and archive reading are the gold set's, loaded from its script), so that it
never depends on the project's own rules.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

SEED = 20261207
PER_STRATUM = 10
STRATA = [(t, g) for t in ("Primary", "Secondary") for g in ("2", "3+")]
# Enrichment, drawn after STRATA (so the first 40 stay as they were): candidates where some pair of groups differs at
# p < 0.05 by the sorting aid ``fisher_p`` are rare (most safety counts are alike), yet they are what tests direction.
PER_ENRICHED = 5
ENRICHED = [(t, g, "p<0.05") for t in ("Primary", "Secondary") for g in ("2", "3+")]
SAFETY = re.compile(r"safety|adverse|side[- ]?effect|toxicit|tolerab|treatment[- ]emergent", re.IGNORECASE)
PARTICIPANT_UNITS = re.compile(r"^(number of )?(participants?|subjects?|patients?)$", re.IGNORECASE)
ANALYSED = "Number of Participants"  # the legacy XML's first measure: participants analysed per group

_spec = importlib.util.spec_from_file_location("gold_sample", Path(__file__).resolve().parents[1] / "gold" / "sample.py")
gold_sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gold_sample)
_text = gold_sample._text


def outcome_measures(outcome) -> tuple[object | None, list]:
    """(the analysed-counts measure or None, the outcome's own measures)."""
    measures = outcome.findall("measure_list/measure")
    if measures and _text(measures[0], "title") == ANALYSED and len(measures) > 1:
        return measures[0], measures[1:]
    return None, measures


def measurements(measure) -> list[tuple[str | None, str | None, dict]]:
    """(class title, category sub-title, measurement attributes) of every measurement of a measure."""
    out = []
    for cls in measure.findall("class_list/class") or [measure]:
        for cat in cls.findall("category_list/category"):
            for v in cat.findall("measurement_list/measurement"):
                out.append((_text(cls, "title"), _text(cat, "sub_title"), dict(v.attrib)))
    return out


def fisher_p(a: int, n1: int, b: int, n2: int) -> float:
    """Two-sided Fisher exact p of a/n1 vs b/n2 (sum of the tables no more likely than the one seen)."""
    k, n = a + b, n1 + n2

    def prob(x: int) -> float:
        return math.comb(n1, x) * math.comb(n2, k - x) / math.comb(n, k)

    seen = prob(a)
    probs = [prob(x) for x in range(max(0, k - n2), min(k, n1) + 1)]
    return min(1.0, sum(q for q in probs if q <= seen * (1 + 1e-7)))


def min_pair_p(outcome, values: list) -> float | None:
    """The smallest Fisher p over pairs of groups (None when a count or its denominator is not a whole number)."""
    analysed, _ = outcome_measures(outcome)
    try:
        n = {v.get("group_id"): int(v.get("value")) for _, _, v in measurements(analysed)} if analysed else {}
        k = {v.get("group_id"): int(v.get("value")) for _, _, v in values}
    except (TypeError, ValueError):
        return None
    if set(k) - set(n) or any(k[g] > n[g] for g in k):
        return None
    ids = sorted(k)
    return min(fisher_p(k[a], n[a], k[b], n[b]) for i, a in enumerate(ids) for b in ids[i + 1:])


def candidates(xml: bytes, nct_id: str) -> list[dict]:
    root = ET.fromstring(xml)
    if len(root.findall("arm_group")) < 2:
        return []
    out = []
    for oi, outcome in enumerate(root.findall("clinical_results/outcome_list/outcome")):
        otype, title = _text(outcome, "type"), _text(outcome, "title") or ""
        if otype not in ("Primary", "Secondary") or not SAFETY.search(title):
            continue
        if outcome.findall("analysis_list/analysis"):
            continue
        _, own = outcome_measures(outcome)
        if len(own) != 1:
            continue
        m = own[0]
        if _text(m, "param") not in ("Number", "Count of Participants"):
            continue
        if not PARTICIPANT_UNITS.match(_text(m, "units") or ""):
            continue
        groups = [g.get("group_id") for g in outcome.findall("group_list/group")]
        values = measurements(m)
        cells = {(c, k) for c, k, _ in values}
        ids = [v.get("group_id") for _, _, v in values]
        if len(groups) < 2 or len(cells) != 1 or sorted(ids) != sorted(groups) or len(set(ids)) != len(ids):
            continue
        p = min_pair_p(outcome, values)
        out.append({"nct_id": nct_id, "outcome_index": oi, "outcome_type": otype,
                    "n_groups": "2" if len(groups) == 2 else "3+", "some_pair_p_lt_05": p is not None and p < 0.05})
    return out


def draw(all_candidates: list[dict]) -> list[dict]:
    rng = random.Random(SEED)
    taken: set[str] = set()
    drawn = []
    for stratum in STRATA + ENRICHED:
        pool = sorted((c for c in all_candidates if (c["outcome_type"], c["n_groups"]) == stratum[:2]
                       and (len(stratum) == 2 or c["some_pair_p_lt_05"])),
                      key=lambda c: (c["nct_id"], c["outcome_index"]))
        rng.shuffle(pool)
        n = 0
        for c in pool:
            if n == (PER_STRATUM if len(stratum) == 2 else PER_ENRICHED):
                break
            if c["nct_id"] in taken:
                continue
            taken.add(c["nct_id"])
            drawn.append({**c, "stratum": "/".join(stratum)})
            n += 1
    return drawn


def fields(xml: bytes, c: dict) -> dict:
    """What a reader needs to label the outcome's group pairs, copied verbatim from the record."""
    root = ET.fromstring(xml)
    outcome = root.findall("clinical_results/outcome_list/outcome")[c["outcome_index"]]
    groups = {g.get("group_id"): {"title": _text(g, "title"), "description": _text(g, "description")}
              for g in outcome.findall("group_list/group")}
    analysed, own = outcome_measures(outcome)
    measures = [{"title": _text(m, "title"), "description": _text(m, "description"), "units": _text(m, "units"),
                 "param": _text(m, "param"), "values": [{"class": k, "category": s, **v} for k, s, v in measurements(m)]}
                for m in ([analysed] if analysed is not None else []) + own]
    arms = [{"label": _text(a, "arm_group_label"), "type": _text(a, "arm_group_type"),
             "description": _text(a, "description")} for a in root.findall("arm_group")]
    return {"brief_title": _text(root, "brief_title"), "outcome_title": _text(outcome, "title"),
            "outcome_description": _text(outcome, "description"), "time_frame": _text(outcome, "time_frame"),
            "population": _text(outcome, "population"), "groups": groups, "measures": measures, "arms": arms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default="/work/shared/data/ctgov/legacy_xml")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--fields", default=None, help="also write the reading excerpts (JSON Lines) here")
    args = ap.parse_args()
    src, out = Path(args.src), Path(args.out)
    found, counts = [], {}
    for archive, member, nct_id, xml in gold_sample.iter_archives(src):
        for c in candidates(xml, nct_id):
            found.append({**c, "archive": archive, "member": member})
            key = "/".join((c["outcome_type"], c["n_groups"]))
            counts[key] = counts.get(key, 0) + 1
            if c["some_pair_p_lt_05"]:
                counts[key + "/p<0.05"] = counts.get(key + "/p<0.05", 0) + 1
    drawn = draw(found)
    wanted = {c["nct_id"]: c for c in drawn}
    rows, excerpts = {}, {}
    for _, _, nct_id, xml in gold_sample.iter_archives(src):
        if nct_id in wanted:
            rows[nct_id] = {**wanted[nct_id], "record": fields(xml, wanted[nct_id])}
            excerpts[nct_id] = gold_sample.excerpt(xml, wanted[nct_id]["outcome_index"])
    gold_sample.write_outputs(out, drawn, rows, excerpts, args.fields, "gold_computed_records")
    print(json.dumps({"candidates_per_stratum": dict(sorted(counts.items())),
                      "drawn_per_stratum": {"/".join(s): sum(c["stratum"] == "/".join(s) for c in drawn)
                                            for s in STRATA + ENRICHED}, "drawn": len(drawn)}, indent=1))


if __name__ == "__main__":
    main()
