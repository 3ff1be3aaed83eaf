"""The project's computed safety labels against the gold set of `tests/data/gold_computed/`.

The gold set is every pair of result groups of 60 safety outcomes reported as counts of participants without a posted
statistical analysis, each pair labelled by reading the record: which protocol arm each group is, whether the counted
thing is a harm, whether the pair can be told at all, and the two-sided Fisher exact test of the posted counts (see
`tests/data/gold_computed/README.md`). The project's parser and question builder (``computed="safety"``) run on the
same cut-down records; each gold pair is matched to the computed questions of the same outcome and the same two result
groups (nct_id, outcome_index in the cut record, which holds only the gold outcome, group ids from ``group_values``).
Asserted where the project gives a label:

- 3-way answers: the group the project's comparative answer calls significantly better (or none) is the gold's (>= 97%
  over at least 15 compared labels); superiority answers are compared the same way (printed, and >= 97% when 15+);
- abstention: no directed question (superiority/comparative) on a pair the gold says cannot be told.

Coverage (share of tellable gold pairs the project labels at all) and the other figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.core.test_gold_labels import agreement

GOLD_DIR = Path(__file__).resolve().parents[1] / "data" / "gold_computed"
THRESHOLD = 0.97
MIN_COMPARED = 15  # an agreement rate over fewer compared labels says little
ALPHA = 0.05
DIRECTED = ("superiority", "comparative")


def _read(name: str) -> list[dict]:
    with open(GOLD_DIR / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def gold() -> list[dict]:
    return _read("gold.jsonl")


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict:
    """The project's trial tables from the gold records (its parser, nothing else)."""
    from deepimagine_core.ctgov.archives import iter_source
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.pairs.trialdata import TRIAL_TABLES
    from deepimagine_core.store import Store

    store = Store(tmp_path_factory.mktemp("gold_computed_store"))
    summary = ingest(iter_source(GOLD_DIR / "records.tar.gz"), store)
    assert summary.trials == len(_read("sample.jsonl")), summary.as_dict()
    return {name: store.read_table(name) for name in TRIAL_TABLES}


@pytest.fixture(scope="module")
def questions(tables) -> list[dict]:
    """The project's computed questions on the gold records."""
    from deepimagine_core.pairs.historical import build_questions

    table, _ = build_questions(tables, computed="safety")
    return [r for r in table.to_pylist() if r["significance_source"] == "computed"]


def _loads(value):
    return json.loads(value) if isinstance(value, str) else value


def _by_pair(rows: list[dict]) -> dict[tuple, list[dict]]:
    """(nct_id, outcome_index, {group ids}) -> the project's computed questions of that pair."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        values = _loads(r["group_values"]) or {}
        x, y = (values.get("x") or {}).get("group_id"), (values.get("y") or {}).get("group_id")
        out.setdefault((r["nct_id"], r["outcome_index"], frozenset((x, y))), []).append(
            {"kind": r["kind"], "answer": r["answer"], "x_group": x, "y_group": y, "arms": {x: r["arm_x"], y: r["arm_y"]}})
    return out


def _gold_winner(g: dict) -> str | None:
    """The group the gold calls significantly better, None for no significant difference."""
    return {"x_better": g["x"]["group_id"], "y_better": g["y"]["group_id"]}.get(g["label"])


def compare(gold: list[dict], rows: list[dict]) -> dict:
    by_pair = _by_pair(rows)
    figures, disagreements = Counter(), []
    matched: set[tuple] = set()
    for g in gold:
        key = (g["nct_id"], g["outcome_index"], frozenset((g["x"]["group_id"], g["y"]["group_id"])))
        labels = by_pair.get(key, [])
        matched.add(key)
        figures["gold_tellable"] += g["tellable"]
        directed = [lb for lb in labels if lb["kind"] in DIRECTED]
        if not g["tellable"]:
            if directed:
                figures["directed_where_untellable"] += 1
                disagreements.append(f"{g['gold_id']} {g['nct_id']}: directed question where the gold cannot tell "
                                     f"({g['untellable_reason']})")
            continue
        figures["covered"] += bool(labels)
        winner = _gold_winner(g)
        gold_arms = {g["x"]["group_id"]: g["x"]["arm_label"], g["y"]["group_id"]: g["y"]["arm_label"]}
        for lb in directed:
            figures["arm_compared"] += 1  # the arms the question names vs the reader's mapping (not asserted)
            figures["arm_agree"] += lb["arms"] == gold_arms
            if lb["arms"] != gold_arms:
                disagreements.append(f"{g['gold_id']} {g['nct_id']}: {lb['kind']} names arms {lb['arms']}, gold "
                                     f"{gold_arms} (not asserted)")
            figures["x_compared"] += 1
            figures["x_agree"] += lb["x_group"] == g["x"]["group_id"]
            if lb["kind"] == "comparative":
                said = {0: lb["x_group"], 1: lb["y_group"]}.get(lb["answer"])
                figures["comparative_compared"] += 1
                figures["comparative_agree"] += said == winner
                if said != winner:
                    disagreements.append(f"{g['gold_id']} {g['nct_id']}: 3-way says {said or 'no difference'} "
                                         f"significantly better, gold {winner or 'no difference'} ({g['reason']})")
            else:
                figures["superiority_compared"] += 1
                agree = (lb["answer"] == 0) == (winner == lb["x_group"])
                figures["superiority_agree"] += agree
                if not agree:
                    disagreements.append(f"{g['gold_id']} {g['nct_id']}: superiority answer {lb['answer']} with X "
                                         f"{lb['x_group']}, gold {g['label']} ({g['reason']})")
    figures["questions_off_gold"] = sum(len(v) for k, v in by_pair.items() if k not in matched)
    return {"figures": figures, "disagreements": disagreements, "n": len(gold)}


@pytest.fixture(scope="module")
def comparison(gold, questions) -> dict:
    result = compare(gold, questions)
    f = result["figures"]

    def rate(k: str) -> str:
        return agreement(f, k)

    print(f"\ngold pairs: {result['n']} ({f['gold_tellable']} tellable); tellable pairs labelled by the project: "
          f"{f['covered']} ({f['covered'] / max(f['gold_tellable'], 1):.1%}); computed questions: {len(questions)}, "
          f"of pairs not in the gold: {f['questions_off_gold']}")
    print(f"3-way answer agreement {rate('comparative')}; superiority answer agreement {rate('superiority')}; "
          f"X arm agreement {rate('x')}, arm naming agreement {rate('arm')} (not asserted); directed where the gold cannot tell: "
          f"{f['directed_where_untellable']}")
    for line in result["disagreements"]:
        print("  disagreement:", line)
    return result


def test_gold_file_is_complete_and_consistent(gold):
    """The gold file itself: one row per pair of result groups of each drawn outcome, labels that follow from the
    counts (Fisher p recomputed), reasons present."""
    from scipy.stats import fisher_exact

    sample = _read("sample.jsonl")
    assert len(sample) >= 40 and len({s["nct_id"] for s in sample}) == len(sample)
    assert len({g["gold_id"] for g in gold}) == len(gold) >= 200
    pairs = Counter(g["nct_id"] for g in gold)
    assert set(pairs) == {s["nct_id"] for s in sample}
    for g in gold:
        x, y = g["x"], g["y"]
        assert g["outcome_index"] == 0 and x["group_id"] != y["group_id"], g["gold_id"]
        assert 0 <= x["count"] <= x["n"] and 0 <= y["count"] <= y["n"], g["gold_id"]
        p = fisher_exact([[x["count"], x["n"] - x["count"]], [y["count"], y["n"] - y["count"]]])[1]
        assert g["fisher_p"] == pytest.approx(p, rel=1e-5, abs=1e-12), g["gold_id"]
        assert g["significant"] == (p < ALPHA) and g["reason"] and g["counted_reason"], g["gold_id"]
        assert g["tellable"] == (g["untellable_reason"] is None), g["gold_id"]
        if not g["tellable"]:
            assert g["label"] == "untellable" and g["superiority"] is None, g["gold_id"]
            continue
        assert x["arm_label"] and y["arm_label"] and x["arm_label"] != y["arm_label"], g["gold_id"]
        assert g["counted"] == "harm", g["gold_id"]  # every drawn outcome counts a harm: the smaller share is better
        if not g["significant"]:
            assert g["label"] == "no_difference" and g["superiority"] == "no", g["gold_id"]
        else:
            x_smaller = x["count"] / x["n"] < y["count"] / y["n"]
            assert g["label"] == ("x_better" if x_smaller else "y_better"), g["gold_id"]
            assert g["superiority"] == ("yes" if x_smaller else "no"), g["gold_id"]
    labels = Counter(g["label"] for g in gold)
    assert labels["x_better"] + labels["y_better"] >= 15, labels  # direction is tested, not only "no difference"


def test_records_ingest(tables):
    """The cut records hold one trial per drawn outcome and only the drawn outcome, without posted analyses."""
    measures = tables["outcome_measures"].to_pylist()
    assert len(measures) == len(_read("sample.jsonl")) and {m["outcome_index"] for m in measures} == {0}
    assert tables["outcome_analyses"].num_rows == 0


def test_three_way_answers_agree_where_the_project_labels(comparison):
    f = comparison["figures"]
    assert f["comparative_compared"] >= MIN_COMPARED, f
    assert f["comparative_agree"] / f["comparative_compared"] >= THRESHOLD, comparison["disagreements"]


def test_superiority_answers_agree_where_the_project_labels(comparison):
    f = comparison["figures"]
    if f["superiority_compared"] < MIN_COMPARED:
        pytest.skip(f"only {f['superiority_compared']} superiority answers on gold pairs")
    assert f["superiority_agree"] / f["superiority_compared"] >= THRESHOLD, comparison["disagreements"]


def test_no_directed_answer_where_the_gold_cannot_tell(comparison):
    assert comparison["figures"]["directed_where_untellable"] == 0, comparison["disagreements"]
