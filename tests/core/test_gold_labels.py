"""The project's historical-question labels against the gold set of `tests/data/gold/` (issue #20, item 4).

The gold set is 132 two-group comparisons from real registry records, each labelled by reading the record (see
`tests/data/gold/README.md`). The project's parser and question builder run on the same (cut-down) records; each gold
comparison is matched to the questions built from the same analysis (nct_id + analysis position; the stored records
hold only the gold outcome). Asserted where the project gives a label:

- direction: the group the project's directed questions call better agrees with the gold's better group (>= 97%);
- significance: the project's significance of that analysis agrees with the gold's (>= 97%);
- 3-way answers: the project's comparative answer names the gold's 3-way label (>= 97%);
- abstention: no directed question (superiority/comparative) where the gold says the direction cannot be told.

Coverage (share of gold comparisons the project labels at all) and other figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

GOLD_DIR = Path(__file__).resolve().parents[1] / "data" / "gold"
THRESHOLD = 0.97
MIN_COMPARED = 15  # an agreement rate over fewer compared labels says little


def _gold() -> list[dict]:
    with open(GOLD_DIR / "gold.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    return _gold()


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> list[dict]:
    """The project's historical questions built from the gold records (parser + question builder, nothing else)."""
    from deepimagine_core.ctgov.archives import iter_source
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.pairs.historical import build_questions
    from deepimagine_core.pairs.trialdata import TRIAL_TABLES
    from deepimagine_core.store import Store

    store = Store(tmp_path_factory.mktemp("gold_store"))
    summary = ingest(iter_source(GOLD_DIR / "records.tar.gz"), store)
    assert summary.trials == len(_gold()), summary.as_dict()
    table, _ = build_questions({name: store.read_table(name) for name in TRIAL_TABLES})
    return table.to_pylist()


def _labels_by_analysis(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """(nct_id, analysis_index) -> the project's labels of that analysis: kind, directed?, significant, better group id.

    Directed questions (label_kind "direction") carry one analysis; endpoint_met questions list every comparison they
    used, each with its own significance (group_values)."""
    out: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        values = json.loads(r["group_values"]) if isinstance(r["group_values"], str) else r["group_values"]
        endpoint = json.loads(r["endpoint"]) if isinstance(r["endpoint"], str) else r["endpoint"]
        if isinstance(values, list):  # one entry per comparison used
            for c in values:
                better = None
                if c.get("x_better") is not None and isinstance(c.get("x"), dict) and isinstance(c.get("y"), dict):
                    better = (c["x"] if c["x_better"] else c["y"]).get("group_id")
                out.setdefault((r["nct_id"], c["analysis_index"]), []).append(
                    {"kind": r["kind"], "directed": False, "significant": c["significant"], "better": better,
                     "measure": endpoint.get("measure"), "x_group": (c.get("x") or {}).get("group_id")
                     if isinstance(c.get("x"), dict) else None, "answer": None})
            continue
        values = values if isinstance(values, dict) else {}
        better = None
        if r["x_better"] is not None:
            better = ((values.get("x") if r["x_better"] else values.get("y")) or {}).get("group_id")
        out.setdefault((r["nct_id"], r["analysis_index"]), []).append(
            {"kind": r["kind"], "directed": r["label_kind"] == "direction", "significant": r["significant"],
             "better": better, "measure": endpoint.get("measure"), "polarity": r.get("polarity"),
             "x_group": (values.get("x") or {}).get("group_id"), "x_label": r.get("arm_x"), "answer": r["answer"],
             "x_group_arm": (values.get("x") or {}).get("label"), "y_group": (values.get("y") or {}).get("group_id"),
             "y_group_arm": (values.get("y") or {}).get("label")})
    return out


def _compare(gold: list[dict], questions: list[dict]) -> dict:
    by_analysis = _labels_by_analysis(questions)
    figures = Counter()
    disagreements: list[str] = []
    per_stratum: dict[str, Counter] = {}
    for g in gold:
        labels = by_analysis.get((g["nct_id"], g["analysis_index"]), [])
        stratum = per_stratum.setdefault(g["stratum"], Counter())
        stratum["gold"] += 1
        if not labels:
            continue
        figures["covered"] += 1
        stratum["covered"] += 1
        assert all(lb["measure"] == g["outcome_title"] for lb in labels), (g["gold_id"], labels)
        directed = [lb for lb in labels if lb["directed"]]
        figures["directed_covered"] += bool(directed)
        if g["better_group"] in ("unclear", "none"):
            if directed:
                figures["directed_where_unclear"] += 1
                disagreements.append(f"{g['gold_id']} {g['nct_id']}: directed answer where the gold direction is "
                                     f"{g['better_group']} ({g['better_reason']})")
        else:
            said = {lb["better"] for lb in directed if lb["better"]}
            if said:
                figures["direction_compared"] += 1
                if said == {g["better_group"]}:
                    figures["direction_agree"] += 1
                else:
                    disagreements.append(f"{g['gold_id']} {g['nct_id']}: direction {sorted(said)} vs gold "
                                         f"{g['better_group']} ({g['polarity']}: {g['polarity_reason']})")
        if g["significant"] in ("yes", "no"):
            said = {lb["significant"] for lb in labels}
            figures["significance_compared"] += 1
            if said == {g["significant"] == "yes"}:
                figures["significance_agree"] += 1
            else:
                disagreements.append(f"{g['gold_id']} {g['nct_id']}: significant {sorted(said)} vs gold "
                                     f"{g['significant']} ({g['significance_reason']})")
        figures["from_non_inferiority"] += g["analysis_kind"] != "superiority"
        for lb in directed:  # superiority answers against the gold label when the project's X is the gold's tested arm
            gold_sup = g["labels"]["superiority"]
            if lb["kind"] == "superiority" and lb["x_group"] == g["tested_group"] and gold_sup in ("yes", "no"):
                figures["superiority_compared"] += 1
                figures["superiority_agree"] += (lb["answer"] == 0) == (gold_sup == "yes")
            gold_3way = g["labels"]["comparative"]
            if lb["kind"] == "comparative" and gold_3way != "unclear" and gold_3way != "not_applicable":
                said_3way = ("no_significant_difference" if lb["answer"] == 2
                             else f"{lb['x_group'] if lb['answer'] == 0 else lb['y_group']}_significantly_better")
                figures["comparative_compared"] += 1
                figures["comparative_agree"] += said_3way == gold_3way
                if said_3way != gold_3way:
                    disagreements.append(f"{g['gold_id']} {g['nct_id']}: 3-way {said_3way} vs gold {gold_3way} "
                                         f"({g['label_reasons']['comparative']})")
            if lb.get("x_group_arm") is not None:  # the project's arm for each group against the reader's mapping
                for gid, arm in ((lb["x_group"], lb["x_group_arm"]), (lb["y_group"], lb["y_group_arm"])):
                    mine = next(x["arm_label"] for x in g["groups"] if x["group_id"] == gid)
                    figures["arm_compared"] += 1
                    figures["arm_agree"] += mine == arm
                    if mine != arm:
                        disagreements.append(f"{g['gold_id']} {g['nct_id']}: group {gid} mapped to arm {arm!r}, "
                                             f"gold {mine!r} (not asserted)")
    return {"figures": figures, "disagreements": disagreements, "per_stratum": per_stratum, "n": len(gold)}


def agreement(figures: Counter, kind: str) -> str:
    """"agreed/compared (share)" of one kind of label, for the printed figures."""
    n = figures[f"{kind}_compared"]
    return f"{figures[f'{kind}_agree']}/{n}" + (f" ({figures[f'{kind}_agree'] / n:.1%})" if n else "")


@pytest.fixture(scope="module")
def comparison(gold, questions) -> dict:
    result = _compare(gold, questions)
    f = result["figures"]

    def rate(k: str) -> str:
        return agreement(f, k)

    print(f"\ngold comparisons: {result['n']}; labelled by the project at all: {f['covered']} "
          f"({f['covered'] / result['n']:.1%}); with a directed question: {f['directed_covered']}")
    print(f"direction agreement {rate('direction')}; significance agreement {rate('significance')}; "
          f"superiority answer agreement {rate('superiority')}; 3-way answer agreement {rate('comparative')}; arm mapping agreement {rate('arm')}; "
          f"directed where the gold direction is unclear/equal: {f['directed_where_unclear']}; "
          f"labelled from non-inferiority/equivalence analyses: {f['from_non_inferiority']}")
    for stratum, c in sorted(result["per_stratum"].items()):
        print(f"  coverage {stratum}: {c['covered']}/{c['gold']}")
    for line in result["disagreements"]:
        print("  disagreement:", line)
    return result


def test_gold_set_is_complete_and_consistent(gold):
    """The gold file itself: size, strata, reasons, and labels that follow from the judgements (README)."""
    assert len(gold) >= 120 and len({g["gold_id"] for g in gold}) == len(gold)
    strata = Counter(g["stratum"] for g in gold)
    assert len(strata) == 12 and min(strata.values()) >= 10, strata
    for g in gold:
        ids = [x["group_id"] for x in g["groups"]]
        assert len(set(ids)) == 2 and g["better_group"] in ids + ["none", "unclear"], g["gold_id"]
        assert g["polarity"] in ("higher_better", "lower_better", "unclear") and g["polarity_reason"]
        assert g["significant"] in ("yes", "no", "unclear") and g["significance_reason"] and g["better_reason"]
        assert set(g["labels"]) == set(g["label_reasons"]) == {"superiority", "endpoint_met", "comparative"}
        assert all(g["label_reasons"].values()), g["gold_id"]
        sup = g["labels"]["superiority"]
        if g["analysis_kind"] != "superiority" or g["tested_group"] is None:
            assert sup == "not_applicable", g["gold_id"]
        elif g["significant"] == "no":
            assert sup == "no", g["gold_id"]
        elif g["significant"] == "unclear" or g["better_group"] in ("none", "unclear"):
            assert sup == "unclear", g["gold_id"]
        else:
            assert sup == ("yes" if g["better_group"] == g["tested_group"] else "no"), g["gold_id"]
        assert g["labels"]["endpoint_met"] == sup


def test_direction_agrees_where_the_project_labels(comparison):
    f = comparison["figures"]
    assert f["direction_compared"] >= MIN_COMPARED, f
    assert f["direction_agree"] / f["direction_compared"] >= THRESHOLD, comparison["disagreements"]


def test_significance_agrees_where_the_project_labels(comparison):
    f = comparison["figures"]
    assert f["significance_compared"] >= MIN_COMPARED, f
    assert f["significance_agree"] / f["significance_compared"] >= THRESHOLD, comparison["disagreements"]


def test_three_way_answers_agree_where_the_project_asks_them(comparison):
    """The 3-way (comparative) answer against the gold's 3-way label, read from the record for every two-group
    comparison: placebo ones too, since the project asks 3-way questions of every comparison (``comparative="all"``)."""
    f = comparison["figures"]
    assert f["comparative_compared"] >= MIN_COMPARED, f
    assert f["comparative_agree"] / f["comparative_compared"] >= THRESHOLD, comparison["disagreements"]


def test_no_directed_answer_where_the_gold_direction_cannot_be_told(comparison):
    assert comparison["figures"]["directed_where_unclear"] == 0, comparison["disagreements"]
