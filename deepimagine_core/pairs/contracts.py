"""Data checks of the pairs tables, as plain functions (the Dagster asset checks call them).

Each returns problems as {kind of problem: [up to 5 examples]}; an empty dict means the check passes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.pairs.approximate import FACTORS, ApproxConfig, TrialProfiles, _compare

__all__ = ["question_evidence_problems", "natural_evidence_problems", "label_balance", "approximate_factor_problems",
           "config_from_schema"]


class _Problems(dict):
    def add(self, kind: str, example: str) -> None:
        examples = self.setdefault(kind, [])
        if len(examples) < 5:
            examples.append(example)


def question_evidence_problems(table: pa.Table) -> dict[str, list[str]]:
    """Questions whose label lacks evidence: no p-value/CI behind the significance, an answer outside the options,
    a direction label without polarity, direction or group values, a "met" benefit label without polarity or
    benefit."""
    problems = _Problems()
    for row in table.to_pylist():
        qid = row.get("question_id")
        source = row.get("significance_source")
        if source == "p-value" and row.get("p_value") is None:
            problems.add("significance from a p-value that is missing", qid)
        elif source == "CI" and (row.get("ci_lower") is None or row.get("ci_upper") is None):
            problems.add("significance from a CI that is missing", qid)
        elif source == "computed" and (row.get("p_value") is None or row.get("analysis_index") is not None):
            problems.add("computed significance without its p-value, or with a posted analysis", qid)
        elif source not in ("p-value", "CI", "computed"):
            problems.add("no significance evidence", qid)
        options = row.get("options") or []
        if len(options) not in (2, 3):
            problems.add("not 2 or 3 options", qid)
        if row.get("answer") is None or not 0 <= row["answer"] < len(options):
            problems.add("answer outside the options", qid)
        if row.get("label_kind") == "direction":
            values = json.loads(row.get("group_values") or "null")
            equal_shares = (source == "computed" and not row.get("significant") and values and values.get("x")
                            and values.get("y") and values["x"].get("comparable") == values["y"].get("comparable"))
            if row.get("polarity") is None or (row.get("x_better") is None and not equal_shares):
                problems.add("direction label without polarity or direction", qid)
            if not values or values.get("x") is None or values.get("y") is None:
                problems.add("direction label without both group values", qid)
        if row.get("label_kind") == "benefit" and row.get("polarity") is None:
            problems.add("benefit label without polarity", qid)
        if row.get("label_kind") == "benefit" and row.get("answer") == 0 and row.get("x_better") is not True:
            problems.add("endpoint met without a benefit of the deciding comparison", qid)
        if row.get("analysis_index") is None and source != "computed":
            problems.add("no analysis index", qid)
        if source == "computed" and row.get("kind") == "endpoint_met":
            problems.add("endpoint met from a computed comparison", qid)
    return dict(problems)


def natural_evidence_problems(table: pa.Table) -> dict[str, list[str]]:
    """Natural pairs missing a result or a context, or with a factor they cannot have (columnar: fast at 10^6 rows)."""
    problems = _Problems()
    ids = table.column("pair_id")

    def flag(kind: str, mask) -> None:
        mask = pc.fill_null(mask, True)
        for pid in ids.filter(mask).slice(0, 5).to_pylist():
            problems.add(kind, pid)

    flag("missing observed value", pc.or_(pc.is_null(table.column("source_value")),
                                          pc.is_null(table.column("target_value"))))
    for side in ("source", "target"):
        flag(f"missing {side} context", pc.less(pc.utf8_length(table.column(f"{side}_context")), 3))
        flag(f"missing {side} result", pc.less(pc.utf8_length(table.column(f"{side}_result")), 3))
    flag("unknown factor", pc.invert(pc.is_in(table.column("factor"), pa.array(["arm", "outcome"]))))
    flag("dose-ranging pair that is not an arm pair",
         pc.and_(pc.fill_null(table.column("is_dose_ranging"), False), pc.not_equal(table.column("factor"), "arm")))
    flag("natural pair across two trials", pc.not_equal(table.column("source_nct_id"), table.column("target_nct_id")))
    return dict(problems)


def label_balance(table: pa.Table, thin_share: float = 0.05) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Answers per (kind, category), and the classes holding under ``thin_share`` of their kind's questions."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for kind, category, answer in zip(*(table.column(c).to_pylist() for c in ("kind", "category", "answer"))):
        counts[f"{kind} / {category}"][str(answer)] += 1
    balance = {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}
    thin = []
    for key, c in balance.items():
        total = sum(c.values())
        n_options = 3 if key.split(" / ")[-1].startswith("3") else 2
        for answer in map(str, range(n_options)):
            share = c.get(answer, 0) / total
            if share < thin_share:
                thin.append(f"{key}: answer {answer} is {share:.1%} of {total}")
    return balance, thin


def config_from_schema(schema: pa.Schema) -> ApproxConfig:
    """The ApproxConfig an approximate_pairs table was built with (kept in its schema metadata), else the default."""
    raw = (schema.metadata or {}).get(b"approx_config")
    if not raw:
        return ApproxConfig()
    values = json.loads(raw)
    values["design_attributes"] = tuple(values.get("design_attributes", ApproxConfig().design_attributes))
    return ApproxConfig(**values)


def approximate_factor_problems(profiles: TrialProfiles, table: pa.Table, config: ApproxConfig | None = None
                                ) -> dict[str, list[str]]:
    """Pairs that do not differ beyond tolerance in exactly their factor, recomputed from the trial profiles."""
    config = config or config_from_schema(table.schema)
    problems = _Problems()
    pos = {x: n for n, x in enumerate(profiles.ids)}
    src, tgt, factor = (table.column(c).to_pylist() for c in ("source_nct_id", "target_nct_id", "factor"))
    known = [n for n, (a, b) in enumerate(zip(src, tgt)) if a in pos and b in pos]
    for n in sorted(set(range(len(src))) - set(known)):
        problems.add("trial missing from the trial tables", f"{src[n]} → {tgt[n]}")
    if not known:
        return dict(problems)
    i = np.array([pos[src[n]] for n in known])
    j = np.array([pos[tgt[n]] for n in known])
    alike, differ, _ = _compare(profiles, i, j, config)
    for m, n in enumerate(known):
        differing = [f for f in FACTORS if differ[f][m] or not alike[f][m]]
        if differing != [factor[n]]:
            problems.add(f"{factor[n]} pair differing in {differing}", f"{src[n]} → {tgt[n]}")
    return dict(problems)
