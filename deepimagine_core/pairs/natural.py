"""Natural counterfactual pairs: two observed results of one trial that differ in exactly one factor.

- ``factor = "arm"``: the same outcome (and the same class/category cell of it), two result groups — what changes when
  the arm changes. ``is_dose_ranging`` when both groups receive the same intervention at different parsed doses; such
  pairs are ordered low dose → high dose. Other arm pairs go from the control-like arm to the more experimental one
  (PLACEBO/SHAM/NO_INTERVENTION → ACTIVE_COMPARATOR → OTHER → EXPERIMENTAL), ties by group order.
- ``factor = "outcome"``: the same group (arm), two outcome cells — another outcome measure, or another time point or
  category of the same measure. Pairs of comparable cells (same unit and parameter type) come first.

Every pair carries both contexts and both observed results (value, dispersion, n), the change (direction and relative
size band, only when the two values are comparable) and ``difference``, the one thing that differs in plain words.
Pairs per trial are capped (`NaturalConfig`) by a deterministic priority, so a trial with 80 outcomes does not produce
thousands of near-duplicates.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from deepimagine_core.pairs.polarity import outcome_polarity
from deepimagine_core.pairs.trialdata import Trial, arm_json, arm_rank, iter_trials
from deepimagine_core.tables import TRIALS_TABLE

__all__ = ["NATURAL_PAIRS", "NaturalConfig", "build_natural_pairs", "change_of"]


@dataclass(frozen=True)
class NaturalConfig:
    max_arm_pairs_per_trial: int = 60
    max_outcome_pairs_per_trial: int = 60
    max_groups_per_cell: int = 8  # cells with more groups (subgroup tables) are skipped for arm pairs
    max_cells_per_group: int = 60  # outcome pairs consider the first cells of a group only


NATURAL_PAIRS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("factor", pa.string()),  # arm | outcome
        ("source_nct_id", pa.string()),
        ("target_nct_id", pa.string()),
        ("split", pa.string()),
        ("is_dose_ranging", pa.bool_()),
        ("difference", pa.string()),  # the one thing that differs, in plain words
        ("source_context", pa.string()),  # JSON: trial, arm, group, dose, outcome, class/category
        ("target_context", pa.string()),
        ("source_result", pa.string()),  # JSON: value, dispersion, n, ...
        ("target_result", pa.string()),
        ("source_value", pa.float64()),
        ("target_value", pa.float64()),
        ("source_n", pa.int64()),
        ("target_n", pa.int64()),
        ("comparable", pa.bool_()),  # same unit and parameter type: the change below is meaningful
        ("change_direction", pa.string()),  # up | down | same; null when not comparable
        ("change_relative", pa.float64()),  # (target - source) / |source|; null when source is 0 or not comparable
        ("change_band", pa.string()),  # same | negligible (<5%) | small (<20%) | moderate (<50%) | large
        ("higher_is_better", pa.bool_()),  # arm pairs: the outcome's polarity when known
        ("source_dose", pa.string()),
        ("target_dose", pa.string()),
    ],
    metadata={"doc": "One row per natural counterfactual pair (see deepimagine_core.pairs.natural)."},
)

_TIME_WORDS = re.compile(r"\b(?:week|wk|month|day|year|hour|visit|cycle|period)s?\s*\d+|"
                         r"\d+\s*(?:week|wk|month|day|year|hour|hr|minute|min)s?\b(?! of age| old)|\bbaseline\b|"
                         r"follow[- ]?up|\bpost[- ]?dose\b|\bpre[- ]?dose\b|\b[wdm]\d+\b", re.IGNORECASE)
_DOSE_TOKENS = re.compile(r"[\d.,/]+|\b(?:mg|mcg|µg|ug|g|kg|iu|u|ml|l|%|gy|mmol|mg/kg|mg/m2|units?|dose|daily|"
                          r"qd|bid|tid|once|twice|low|high|medium|mid)\b", re.IGNORECASE)
_PLACEBO = re.compile(r"placebo|vehicle|sham|dummy", re.IGNORECASE)


def change_of(source: float, target: float) -> tuple[str, float | None, str]:
    """(direction, relative change, band) from source to target."""
    if target == source:
        return "same", 0.0, "same"
    direction = "up" if target > source else "down"
    if source == 0:
        return direction, None, "large"
    rel = (target - source) / abs(source)
    size = abs(rel)
    band = "negligible" if size < 0.05 else "small" if size < 0.2 else "moderate" if size < 0.5 else "large"
    return direction, rel, band


def _words(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", (text or "").lower()))


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


_DOSE_KEYS = ("values", "unit", "frequency", "route", "text", "source")


def _arm_dose(trial: Trial, arm_label: str | None) -> dict | None:
    """The dose of an arm's one dosed non-placebo intervention (None when there is none, or several)."""
    dosed = [i for i in trial.interventions_by_arm.get(arm_label or "", [])
             if i.get("dose_values") and not _PLACEBO.search(i.get("name") or "")]
    return {k: dosed[0].get(f"dose_{k}") for k in _DOSE_KEYS} if len(dosed) == 1 else None


def _group_dose(group: dict) -> dict | None:
    """The dose parsed from the result group itself (its title or description)."""
    return {k: group.get(f"dose_{k}") for k in _DOSE_KEYS} if group.get("dose_values") else None


def _dose_text(dose: dict | None) -> str | None:
    if not dose:
        return None
    values = "/".join(f"{v:g}" for v in dose["values"] or [])
    return " ".join(x for x in (values, dose.get("unit"), dose.get("frequency")) if x)


def _agent(trial: Trial, group: dict) -> tuple[frozenset, str]:
    """What the group receives, ignoring dose: the non-placebo intervention names of its arm, and its title without
    dose words (used when the arm is unknown)."""
    names = frozenset((i.get("name") or "").strip().lower()
                      for i in trial.interventions_by_arm.get(group.get("arm_label") or "", [])
                      if i.get("name") and not _PLACEBO.search(i["name"]))
    title = group.get("title") or ""
    if group.get("dose_text"):
        title = title.replace(group["dose_text"], " ")
    stem = " ".join(_DOSE_TOKENS.sub(" ", title.lower()).split())
    return names, stem


def _dose_order(g1: dict, g2: dict, d1: dict | None, d2: dict | None, a1: tuple, a2: tuple) -> int:
    """-1 if (g1, g2) is a dose-ranging pair with g1 the lower dose, +1 if g2 is lower, 0 if not dose-ranging.
    ``a1``, ``a2`` are the groups' `_agent`s."""
    if not d1 or not d2 or not d1["values"] or not d2["values"]:
        return 0
    if d1["unit"] != d2["unit"] or len(d1["values"]) != len(d2["values"]) or list(d1["values"]) == list(d2["values"]):
        return 0
    (n1, s1), (n2, s2) = a1, a2
    same = (n1 and n1 == n2 and g1.get("arm_label") != g2.get("arm_label")) or (s1 and s1 == s2)
    if not same:
        return 0
    return -1 if list(d1["values"]) < list(d2["values"]) else 1


def _group_key(group: dict) -> str:
    """Identity of a group across outcomes: its arm, else its normalised title."""
    return group.get("arm_label") or " ".join((group.get("title") or "").lower().split())


def _cell_kind(title: str | None) -> str:
    return "time point" if title and _TIME_WORDS.search(title) else "category"


class _TrialPairs:
    def __init__(self, trial: Trial, config: NaturalConfig, split: str):
        self.trial, self.config, self.split = trial, config, split
        self.outcomes = {o["outcome_index"]: o for o in trial.outcomes}
        self.head = {"nct_id": trial.nct_id, "brief_title": trial.trial.get("brief_title"),
                     "conditions": trial.trial.get("conditions") or [], "phases": trial.trial.get("phases") or []}
        self._arm_cache: dict = {}  # label -> arm JSON dict; ("json", label) -> its serialised form
        self._dose_cache: dict[tuple, dict | None] = {}
        self._context_cache: dict[tuple, str] = {}
        self.cells = self._cells()

    def _cells(self) -> list[dict]:
        """Every numeric result cell: (outcome, class, category, group) with its value."""
        cells = []
        for r in self.trial.results:
            outcome = self.outcomes.get(r["outcome_index"])
            group = self.trial.groups_by_outcome.get(r["outcome_index"], {}).get(r["group_id"])
            if outcome is None or group is None or r.get("value") is None:
                continue
            cells.append({"r": r, "o": outcome, "g": group,
                          "cell": (r["outcome_index"], r["class_index"] or 0, r["category_index"] or 0)})
        cells.sort(key=lambda c: (c["cell"], c["g"].get("group_index") or 0))
        return cells

    def _arm(self, label: str | None) -> dict | None:
        if not label:
            return None
        if label not in self._arm_cache:
            arm = self.trial.arm_by_label.get(label)
            self._arm_cache[label] = arm_json(arm, self.trial.interventions_by_arm.get(label, [])) if arm else None
        return self._arm_cache[label]

    def _dose(self, c: dict) -> dict | None:
        """The group's own dose, else its arm's (cached per arm)."""
        own = _group_dose(c["g"])
        if own is not None:
            return own
        key = ("arm", c["g"].get("arm_label"))
        if key not in self._dose_cache:
            self._dose_cache[key] = _arm_dose(self.trial, c["g"].get("arm_label"))
        return self._dose_cache[key]

    def _agent(self, c: dict) -> tuple[frozenset, str]:
        key = ("agent", c["o"]["outcome_index"], c["g"]["group_id"])
        if key not in self._dose_cache:
            self._dose_cache[key] = _agent(self.trial, c["g"])
        return self._dose_cache[key]

    def _context_json(self, c: dict) -> str:
        """The context of one result cell as JSON (keys sorted); the arm's JSON is serialised once per arm."""
        key = (c["cell"], c["g"]["group_id"])
        if key not in self._context_cache:
            o, g, r = c["o"], c["g"], c["r"]
            label = g.get("arm_label")
            if ("json", label) not in self._arm_cache:
                self._arm_cache[("json", label)] = json.dumps(self._arm(label), sort_keys=True)
            fields = {**self.head, "group": {"id": g["group_id"], "title": g.get("title"),
                                             "description": g.get("description")},
                      "dose": self._dose(c), "class_title": r.get("class_title"),
                      "category_title": r.get("category_title"),
                      "outcome": {k: o.get(k) for k in ("title", "description", "time_frame", "type", "param_type",
                                                         "unit", "dispersion_type")}}
            parts = {k: json.dumps(v, sort_keys=True, default=str) for k, v in fields.items()}
            parts["arm"] = self._arm_cache[("json", label)]
            self._context_cache[key] = "{" + ", ".join(f"{json.dumps(k)}: {parts[k]}" for k in sorted(parts)) + "}"
        return self._context_cache[key]

    @staticmethod
    def _result(c: dict) -> dict:
        r, o, g = c["r"], c["o"], c["g"]
        return {"value": r["value"], "value_raw": r.get("value_raw"), "dispersion": r.get("spread"),
                "dispersion_type": o.get("dispersion_type"), "lower": r.get("lower_limit"),
                "upper": r.get("upper_limit"), "n": r.get("participants_analyzed") or g.get("participants_analyzed"),
                "param_type": o.get("param_type"), "unit": o.get("unit")}

    def _row(self, factor: str, pair_id: str, s: dict, t: dict, difference: str, dose_ranging: bool,
             ds: dict | None, dt_: dict | None, polarity: bool | None) -> dict:
        rs, rt = self._result(s), self._result(t)
        comparable = (s["o"].get("unit") or "") == (t["o"].get("unit") or "") and \
                     (s["o"].get("param_type") or "") == (t["o"].get("param_type") or "")
        direction = rel = band = None
        if comparable:
            direction, rel, band = change_of(rs["value"], rt["value"])
        return {"pair_id": pair_id, "factor": factor, "source_nct_id": self.trial.nct_id,
                "target_nct_id": self.trial.nct_id, "split": self.split, "is_dose_ranging": dose_ranging,
                "difference": difference,
                "source_context": self._context_json(s), "target_context": self._context_json(t),
                "source_result": json.dumps(rs, sort_keys=True), "target_result": json.dumps(rt, sort_keys=True),
                "source_value": rs["value"], "target_value": rt["value"], "source_n": rs["n"], "target_n": rt["n"],
                "comparable": comparable, "change_direction": direction, "change_relative": rel, "change_band": band,
                "higher_is_better": polarity, "source_dose": _dose_text(ds), "target_dose": _dose_text(dt_)}

    def arm_pairs(self) -> list[dict]:
        by_cell: dict[tuple, list[dict]] = defaultdict(list)
        for c in self.cells:
            by_cell[c["cell"]].append(c)
        candidates = []
        for cell, cs in by_cell.items():
            if len(cs) < 2 or len(cs) > self.config.max_groups_per_cell:
                continue
            for i in range(len(cs)):
                for j in range(i + 1, len(cs)):
                    a, b = cs[i], cs[j]
                    if _group_key(a["g"]) == _group_key(b["g"]):
                        continue
                    da, db = self._dose(a), self._dose(b)
                    order = _dose_order(a["g"], b["g"], da, db, self._agent(a), self._agent(b))
                    if order == 0:
                        ra = arm_rank((self.trial.arm_by_label.get(a["g"].get("arm_label") or "") or {}).get("type"))
                        rb = arm_rank((self.trial.arm_by_label.get(b["g"].get("arm_label") or "") or {}).get("type"))
                        flip = rb > ra  # the control-like (higher rank) group is the source
                    else:
                        flip = order > 0
                    s, t, ds, dt_ = (b, a, db, da) if flip else (a, b, da, db)
                    primary = s["o"].get("type") == "PRIMARY"
                    candidates.append(((order == 0, not primary, cell, i, j), s, t, ds, dt_, order != 0))
        rows = []
        best = heapq.nsmallest(self.config.max_arm_pairs_per_trial, candidates, key=lambda x: x[0])
        for _, s, t, ds, dt_, dose_ranging in best:
            o = s["o"]
            if dose_ranging:
                what = (s["g"].get("title") or "").strip()
                difference = (f"dose: {_dose_text(ds)} → {_dose_text(dt_)} "
                              f"(group {what!r} → {t['g'].get('title')!r})")
            else:
                difference = (f"arm: {s['g'].get('title')!r} → {t['g'].get('title')!r}")
            polarity = outcome_polarity(o.get("title"), o.get("description"), o.get("unit"), o.get("param_type"))
            cell = ".".join(map(str, s["cell"]))
            pair_id = f"arm|{self.trial.nct_id}|{cell}|{s['g']['group_id']}>{t['g']['group_id']}"
            rows.append(self._row("arm", pair_id, s, t, difference, dose_ranging, ds, dt_, polarity.higher_is_better))
        return rows

    def outcome_pairs(self) -> list[dict]:
        """Pairs of cells of one group, best first: comparable outcomes (same unit and parameter), then similar
        titles, then order. Outcome pairs are ranked before any cell pair is made, so only the capped ones are."""
        by_group: dict[str, list[dict]] = defaultdict(list)
        for c in self.cells:
            by_group[_group_key(c["g"])].append(c)
        by_outcome: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for key, cs in by_group.items():
            for c in cs[: self.config.max_cells_per_group]:
                by_outcome[c["cell"][0]][key].append(c)
        words = {i: _words(o.get("title")) for i, o in self.outcomes.items()}
        kind = {i: (o.get("unit"), o.get("param_type")) for i, o in self.outcomes.items()}
        present = sorted(by_outcome)
        ranked = sorted(((kind[a] != kind[b], -_jaccard(words[a], words[b]), a, b)
                         for n, a in enumerate(present) for b in present[n:]))
        rows, cap = [], self.config.max_outcome_pairs_per_trial
        for _, _, a, b in ranked:
            batch = []
            for key, sources in by_outcome[a].items():
                targets = by_outcome[b].get(key, [])
                batch += [(s["cell"], t["cell"], key, s, t) for s in sources for t in targets if s["cell"] < t["cell"]]
            for _, _, _, s, t in sorted(batch, key=lambda x: x[:3]):
                if len(rows) >= cap:
                    return rows
                rows.append(self._row("outcome", self._outcome_pair_id(s, t), s, t, self._outcome_difference(s, t),
                                      False, self._dose(s), self._dose(t), None))
        return rows

    def _outcome_pair_id(self, s: dict, t: dict) -> str:
        cell = lambda c: f"{'.'.join(map(str, c['cell']))}:{c['g']['group_id']}"  # noqa: E731
        return f"outcome|{self.trial.nct_id}|{cell(s)}>{cell(t)}"

    @staticmethod
    def _outcome_difference(s: dict, t: dict) -> str:
        so, to = s["o"], t["o"]
        if so["outcome_index"] == to["outcome_index"]:
            st = " / ".join(x for x in (s["r"].get("class_title"), s["r"].get("category_title")) if x) or "(untitled)"
            tt = " / ".join(x for x in (t["r"].get("class_title"), t["r"].get("category_title")) if x) or "(untitled)"
            return f"{_cell_kind(st + ' ' + tt)} of {so.get('title')!r}: {st!r} → {tt!r}"
        if (so.get("title") or "").strip().lower() == (to.get("title") or "").strip().lower():
            return f"time frame of {so.get('title')!r}: {so.get('time_frame')!r} → {to.get('time_frame')!r}"
        return f"outcome measure: {so.get('title')!r} → {to.get('title')!r}"


def build_natural_pairs(
    tables: Mapping[str, pa.Table], splits: Mapping[str, str] | None = None, config: NaturalConfig | None = None,
    progress: bool = False,
) -> tuple[pa.Table, dict[str, Any]]:
    """Natural pairs of both factors from the trial tables, and counts (pairs per factor, dose-ranging, capped)."""
    from tqdm.auto import tqdm

    config = config or NaturalConfig()
    splits = splits or {}
    rows: list[dict] = []
    stats = {"trials_with_arm_pairs": 0, "trials_with_outcome_pairs": 0}
    n = tables[TRIALS_TABLE].num_rows
    for trial in tqdm(iter_trials(tables), total=n, desc="natural pairs", unit="trial",
                      disable=None if progress else True,
                      mininterval=2):
        builder = _TrialPairs(trial, config, splits.get(trial.nct_id, "unassigned"))
        arm, outcome = builder.arm_pairs(), builder.outcome_pairs()
        stats["trials_with_arm_pairs"] += bool(arm)
        stats["trials_with_outcome_pairs"] += bool(outcome)
        rows += arm + outcome
    table = pa.Table.from_pylist(rows, schema=NATURAL_PAIRS)
    stats["pairs"] = table.num_rows
    stats["arm"] = sum(r["factor"] == "arm" for r in rows)
    stats["outcome"] = sum(r["factor"] == "outcome" for r in rows)
    stats["dose_ranging"] = sum(bool(r["is_dose_ranging"]) for r in rows)
    stats["trials_with_dose_ranging"] = len({r["source_nct_id"] for r in rows if r["is_dose_ranging"]})
    return table, stats
