"""Approximate counterfactual pairs: two trials alike in everything except one factor.

Factors without a natural source inside one trial — ``intervention``, ``population``, ``geography``, ``design`` —
are paired across trials. For each factor and each trial:

1. candidates: the trial's top-``candidates`` neighbours in a `TextIndex` *view* that leaves that factor's own
   fields out (e.g. for ``intervention``: conditions, eligibility and design tokens, not the interventions), so the
   neighbours are alike in the other factors by text;
2. filter, vectorised over all (trial, candidate) arrays at once: the factor must *differ* and every other factor
   must be *alike*, by the structured attributes below within the tolerances of `ApproxConfig`;
3. keep the best ``k`` per trial by similarity.

Attributes per factor (a factor is *alike* when every attribute is within tolerance, *different* when at least one
attribute is clearly different; the gap between the two thresholds is neither, and such candidates are rejected):
- intervention: the word set of the non-placebo intervention names (Jaccard);
- population: the word set of the conditions (Jaccard), sex, minimum and maximum age (years), healthy volunteers;
- geography: the set of countries (Jaccard);
- design: phase, allocation, masking (open / blinded), comparator (placebo / active / none / single); primary purpose
  is reported among the differing attributes but does not count (``design_attributes``).

Every pair lists ``differing_attributes`` (every attribute not identical, e.g. ``design.phase``) and
``differing_factors`` (factors beyond tolerance: always exactly ``[factor]``). There is no all-pairs step: the cost is
one sparse top-k search per factor plus O(N·candidates) array work.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from deepimagine_core.pairs.retrieval import TextIndex
from deepimagine_core.tables import ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, TRIALS_TABLE

__all__ = ["FACTORS", "VIEWS", "ApproxConfig", "APPROXIMATE_PAIRS", "TrialProfiles", "trial_profiles",
           "build_trial_index", "build_approximate_pairs", "differing_factors_of", "render_pair"]

FACTORS = ("intervention", "population", "geography", "design")

#: The index fields each factor's candidates are retrieved with: everything except the factor's own text.
VIEWS: dict[str, tuple[str, ...]] = {
    "intervention": ("conditions", "eligibility", "design"),
    "population": ("interventions", "design"),
    "geography": ("title", "conditions", "interventions", "eligibility", "design"),
    "design": ("title", "conditions", "interventions", "eligibility"),
}


@dataclass(frozen=True)
class ApproxConfig:
    k: int = 5  # pairs kept per trial and factor
    candidates: int = 30  # neighbours retrieved per trial and factor
    min_similarity: float = 0.1  # cosine in the factor's view
    intervention_alike: float = 0.5  # Jaccard of intervention words at least this: same intervention
    intervention_differ: float = 0.0  # at most this: a different intervention
    condition_alike: float = 0.5
    condition_differ: float = 0.2
    age_tolerance_years: float = 10.0  # min and max age within this: same age range
    geography_alike: float = 0.5  # Jaccard of countries
    geography_differ: float = 0.0
    design_attributes: tuple[str, ...] = ("phase", "allocation", "masking", "comparator")  # purpose: reported only
    eligibility_chars: int = 1500  # eligibility text indexed per trial
    field_weights: dict[str, float] = field(default_factory=lambda: {
        "title": 1.0, "conditions": 1.0, "interventions": 1.0, "eligibility": 0.7, "design": 0.3})


APPROXIMATE_PAIRS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("factor", pa.string()),
        ("source_nct_id", pa.string()),
        ("target_nct_id", pa.string()),
        ("split", pa.string()),
        ("similarity", pa.float32()),  # cosine in the factor's view
        ("rank", pa.int32()),  # 0 = the source's nearest accepted neighbour for this factor
        ("differing_attributes", pa.list_(pa.string())),
        ("differing_factors", pa.list_(pa.string())),
        ("difference", pa.string()),  # the factor's value in the source → in the target, in plain words
    ],
    metadata={"doc": "One row per approximate pair (see deepimagine_core.pairs.approximate)."},
)

_WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
_GENERIC = frozenset("""placebo placebos tablet tablets capsule capsules injection injections drug drugs oral solution
dose doses dosing low high standard vehicle sham control controls usual care group arm treatment treatments therapy
and with plus the for matching matched comparator active mg mcg sodium hydrochloride extended release film coated
intravenous subcutaneous topical cream gel infusion regimen arms study""".split())
_CONDITION_GENERIC = frozenset(
    "disease diseases disorder disorders syndrome type chronic acute patients the and of with".split())
_PLACEBO = re.compile(r"placebo|vehicle|sham", re.IGNORECASE)


def _words(texts, generic) -> set[str]:
    return {w for t in texts if t for w in _WORD.findall(t.lower()) if w not in generic}


@dataclass
class TrialProfiles:
    """Per-trial attributes in arrays aligned with ``ids`` (what the vectorised filters compare)."""

    ids: list[str]
    docs: list[dict[str, str]]  # index fields per trial
    sets: dict[str, sp.csr_matrix]  # "intervention" | "conditions" | "countries" -> binary trials x vocabulary
    codes: dict[str, np.ndarray]  # categorical attributes as integer codes
    ages: np.ndarray  # [n, 2] min and max age in years (0 / 120 when open)
    labels: dict[str, list[str]]  # readable values for the `difference` text


def _binary(rows: list[set[str]]) -> sp.csr_matrix:
    vocab: dict[str, int] = {}
    indptr, indices = [0], []
    for s in rows:
        indices.extend(vocab.setdefault(w, len(vocab)) for w in sorted(s))
        indptr.append(len(indices))
    data = np.ones(len(indices), np.float32)
    return sp.csr_matrix((data, np.array(indices, np.int64), np.array(indptr, np.int64)),
                         shape=(len(rows), max(len(vocab), 1)))


def _codes(values: list) -> np.ndarray:
    table: dict = {}
    return np.array([table.setdefault(v, len(table)) for v in values], np.int64)


def trial_profiles(tables: Mapping[str, pa.Table], eligibility_chars: int = 1500) -> TrialProfiles:
    """Attributes and index documents of every trial in ``tables['trials']``."""
    trials = tables[TRIALS_TABLE].to_pylist()
    names: dict[str, list[str]] = defaultdict(list)
    descriptions: dict[str, list[str]] = defaultdict(list)
    iv = tables.get(INTERVENTIONS_TABLE)
    if iv is not None and iv.num_rows:
        for nct_id, name, desc in zip(*(iv.column(c).to_pylist() for c in ("nct_id", "name", "description"))):
            if name and not _PLACEBO.search(name) and name not in names[nct_id]:
                names[nct_id].append(name)
                descriptions[nct_id].append((desc or "")[:200])
    arm_types: dict[str, set] = defaultdict(set)
    ag = tables.get(ARM_GROUPS_TABLE)
    if ag is not None and ag.num_rows:
        for nct_id, arm_type in zip(ag.column("nct_id").to_pylist(), ag.column("type").to_pylist()):
            arm_types[nct_id].add(arm_type)
    ids, docs, iv_sets, cond_sets, country_sets = [], [], [], [], []
    cat: dict[str, list] = defaultdict(list)
    ages = np.zeros((len(trials), 2), np.float64)
    labels: dict[str, list[str]] = defaultdict(list)
    for n, t in enumerate(trials):
        nct_id = t["nct_id"]
        ids.append(nct_id)
        phase = "|".join(sorted(t.get("phases") or [])) or "NA"
        masking = "open" if (t.get("masking") or "NONE") == "NONE" else "blinded"
        types = arm_types.get(nct_id, set())
        comparator = ("placebo" if types & {"PLACEBO_COMPARATOR", "SHAM_COMPARATOR"} else "active"
                      if "ACTIVE_COMPARATOR" in types else "none" if "NO_INTERVENTION" in types else
                      "single" if (t.get("n_arms") or len(types)) <= 1 else "other")
        design = {"phase": phase, "allocation": t.get("allocation") or "NA", "masking": masking,
                  "purpose": t.get("primary_purpose") or "NA", "comparator": comparator}
        for key, value in design.items():
            cat[f"design.{key}"].append(value)
        cat["population.sex"].append(t.get("sex") or "ALL")
        cat["population.healthy_volunteers"].append(bool(t.get("healthy_volunteers")))
        ages[n] = (t.get("minimum_age_years") or 0.0, t.get("maximum_age_years") or 120.0)
        conditions = list(t.get("conditions") or [])
        countries = list(t.get("countries") or [])
        iv_sets.append(_words(names.get(nct_id, []), _GENERIC))
        cond_sets.append(_words(conditions, _CONDITION_GENERIC))
        country_sets.append({c.lower() for c in countries})
        labels["intervention"].append(", ".join(names.get(nct_id, [])) or "(none named)")
        labels["population"].append(f"{'; '.join(conditions) or '(no condition)'}, sex {t.get('sex') or 'ALL'}, "
                                    f"ages {t.get('minimum_age') or 'any'}–{t.get('maximum_age') or 'any'}"
                                    f"{', healthy volunteers' if t.get('healthy_volunteers') else ''}")
        labels["geography"].append(", ".join(countries) or "(no country)")
        labels["design"].append(", ".join(f"{k} {v}" for k, v in design.items()))
        docs.append({
            "title": t.get("brief_title") or "",
            "conditions": " ".join(conditions + list(t.get("keywords") or [])),
            "interventions": " ".join(names.get(nct_id, []) + descriptions.get(nct_id, [])),
            "eligibility": (t.get("eligibility_criteria") or "")[:eligibility_chars],
            "design": " ".join(f"{k}_{v}".replace("|", "_") for k, v in design.items())
                      + f" sex_{t.get('sex') or 'ALL'} healthy_{bool(t.get('healthy_volunteers'))}",
        })
    return TrialProfiles(ids=ids, docs=docs,
                         sets={"intervention": _binary(iv_sets), "conditions": _binary(cond_sets),
                               "countries": _binary(country_sets)},
                         codes={k: _codes(v) for k, v in cat.items()}, ages=ages, labels=dict(labels))


def build_trial_index(profiles: TrialProfiles, config: ApproxConfig | None = None, **index_options) -> TextIndex:
    """The trial `TextIndex` over the profile documents (fields: title, conditions, interventions, eligibility,
    design)."""
    config = config or ApproxConfig()
    return TextIndex(field_weights=config.field_weights, **index_options).fit(profiles.ids, profiles.docs)


def _jaccard(m: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jaccard of the row sets i[x], j[x], and whether both sets are non-empty."""
    sizes = np.diff(m.indptr).astype(np.float64)
    inter = np.asarray(m[i].multiply(m[j]).sum(axis=1)).ravel()
    union = sizes[i] + sizes[j] - inter
    jac = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    return jac, (sizes[i] > 0) & (sizes[j] > 0)


def _compare(p: TrialProfiles, i: np.ndarray, j: np.ndarray, c: ApproxConfig) -> tuple[dict, dict, dict]:
    """Per candidate pair: alike[factor], differ[factor] (bool arrays) and strict differences per attribute."""
    alike, differ, strict = {}, {}, {}
    jac, known = _jaccard(p.sets["intervention"], i, j)
    alike["intervention"] = jac >= c.intervention_alike
    differ["intervention"] = known & (jac <= c.intervention_differ)
    strict["intervention.names"] = jac < 1.0
    cj, cknown = _jaccard(p.sets["conditions"], i, j)
    sex_diff = p.codes["population.sex"][i] != p.codes["population.sex"][j]
    healthy_diff = p.codes["population.healthy_volunteers"][i] != p.codes["population.healthy_volunteers"][j]
    age_gap = np.abs(p.ages[i] - p.ages[j]).max(axis=1)
    alike["population"] = (cj >= c.condition_alike) & ~sex_diff & ~healthy_diff & (age_gap <= c.age_tolerance_years)
    age_diff = age_gap > c.age_tolerance_years
    differ["population"] = (cknown & (cj <= c.condition_differ)) | sex_diff | healthy_diff | age_diff
    strict.update({"population.conditions": cj < 1.0, "population.sex": sex_diff, "population.age": age_gap > 0,
                   "population.healthy_volunteers": healthy_diff})
    gj, gknown = _jaccard(p.sets["countries"], i, j)
    alike["geography"] = gj >= c.geography_alike
    differ["geography"] = gknown & (gj <= c.geography_differ)
    strict["geography.countries"] = gj < 1.0
    design_diff = {key: p.codes[key][i] != p.codes[key][j] for key in p.codes if key.startswith("design.")}
    any_design = np.logical_or.reduce([design_diff[f"design.{a}"] for a in c.design_attributes])
    alike["design"] = ~any_design
    differ["design"] = any_design
    strict.update(design_diff)
    return alike, differ, strict


def build_approximate_pairs(
    profiles: TrialProfiles, index: TextIndex, splits: Mapping[str, str] | None = None,
    config: ApproxConfig | None = None, factors: tuple[str, ...] = FACTORS, log=None,
) -> tuple[pa.Table, dict[str, int]]:
    """Approximate pairs for ``factors`` (see the module docstring), and counts per factor. ``index`` must have been
    fitted on ``profiles`` (same ids, same order): see `build_trial_index`. Pairs whose trials are on different
    sides of ``splits`` are dropped and counted (``spanning_dropped``)."""
    config = config or ApproxConfig()
    if list(index.ids) != list(profiles.ids):
        raise ValueError("the index was not built from these trial profiles (ids differ); rebuild the index")
    splits = splits or {}
    side = np.array([splits.get(x, "unassigned") for x in profiles.ids], dtype=object)
    ids = np.array(profiles.ids, dtype=object)
    batches, stats = [], {}
    for factor in factors:
        cols, scores = index.neighbours(config.candidates, fields=VIEWS[factor])
        n, kk = cols.shape
        i = np.repeat(np.arange(n), kk)
        j = cols.ravel()
        sim = scores.ravel()
        ok = (j >= 0) & (sim >= config.min_similarity)
        i, j, sim = i[ok], j[ok], sim[ok]
        alike, differ, strict = _compare(profiles, i, j, config)
        accept = differ[factor].copy()
        for other in FACTORS:
            if other != factor:
                accept &= alike[other]
        same_side = side[i] == side[j]
        stats[f"{factor}_spanning_dropped"] = int((accept & ~same_side).sum())
        accept &= same_side
        i, j, sim = i[accept], j[accept], sim[accept]
        strict = {key: value[accept] for key, value in strict.items()}
        # rank within each source (candidates arrive best first per row): keep the first k
        first = np.r_[True, i[1:] != i[:-1]] if i.size else np.zeros(0, bool)
        group_start = np.maximum.accumulate(np.where(first, np.arange(i.size), 0)) if i.size else np.zeros(0, int)
        rank = np.arange(i.size) - group_start
        keep = rank < config.k
        i, j, sim, rank = i[keep], j[keep], sim[keep], rank[keep]
        strict = {key: value[keep] for key, value in strict.items()}
        names = sorted(strict)
        differing = [[name for name in names if strict[name][x]] for x in range(i.size)]
        labels = profiles.labels[factor]
        batches.append(pa.table({
            "pair_id": [f"{factor}|{ids[a]}>{ids[b]}" for a, b in zip(i, j)],
            "factor": [factor] * i.size,
            "source_nct_id": ids[i].tolist(),
            "target_nct_id": ids[j].tolist(),
            "split": side[i].tolist(),
            "similarity": sim.astype(np.float32),
            "rank": rank.astype(np.int32),
            "differing_attributes": differing,
            "differing_factors": [[factor]] * i.size,
            "difference": [f"{factor}: {labels[a]} → {labels[b]}" for a, b in zip(i, j)],
        }, schema=APPROXIMATE_PAIRS))
        stats[factor] = int(i.size)
        stats[f"{factor}_sources"] = int(np.unique(i).size)
        if log:
            log(f"approximate pairs: {factor}: {i.size} pairs from {np.unique(i).size} trials")
    table = pa.concat_tables(batches) if batches else APPROXIMATE_PAIRS.empty_table()
    stats["pairs"] = table.num_rows
    return table, stats


def differing_factors_of(profiles: TrialProfiles, source: str, target: str, config: ApproxConfig | None = None
                         ) -> list[str]:
    """The factors in which two trials differ beyond tolerance (for audits and tests)."""
    config = config or ApproxConfig()
    pos = {x: n for n, x in enumerate(profiles.ids)}
    i, j = np.array([pos[source]]), np.array([pos[target]])
    alike, differ, _ = _compare(profiles, i, j, config)
    return [f for f in FACTORS if differ[f][0] or not alike[f][0]]


def render_pair(row: Mapping) -> str:
    """One approximate pair as a markdown line (asset metadata)."""
    return (f"- **{row['factor']}** {row['source_nct_id']} → {row['target_nct_id']} (similarity "
            f"{row['similarity']:.2f}; differs in {', '.join(row['differing_attributes'])}): {row['difference']}")
