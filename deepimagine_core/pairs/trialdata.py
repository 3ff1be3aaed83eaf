"""Walk the normalised trial tables one trial at a time, and build the JSON contexts every pair and question shows.

The tables (``deepimagine_core.ctgov.schemas``) are columnar and large (millions of result rows at the full snapshot).
`iter_trials` sorts each table by ``nct_id`` once and yields a `Trial` holding only that trial's rows as Python dicts,
so memory stays proportional to one trial, not to the data set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.tables import (
    ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, OUTCOME_ANALYSES_TABLE, OUTCOME_GROUPS_TABLE, OUTCOME_MEASURES_TABLE,
    OUTCOME_RESULTS_TABLE, TRIALS_TABLE,
)

#: The trial tables questions and pairs are built from.
TRIAL_TABLES = (TRIALS_TABLE, ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, OUTCOME_MEASURES_TABLE, OUTCOME_GROUPS_TABLE,
                OUTCOME_RESULTS_TABLE, OUTCOME_ANALYSES_TABLE)

#: Arm types ranked by how "experimental" they are; the lower rank is the arm a question singles out.
ARM_TYPE_RANK = {"EXPERIMENTAL": 0, "OTHER": 1, None: 1, "ACTIVE_COMPARATOR": 2, "PLACEBO_COMPARATOR": 3,
                 "SHAM_COMPARATOR": 3, "NO_INTERVENTION": 3}
CONTROL_TYPES = frozenset({"PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION"})

OUTCOME_TYPE_V2 = {"PRIMARY": "primaryOutcomes", "SECONDARY": "secondaryOutcomes"}


def arm_rank(arm_type: str | None) -> int:
    return ARM_TYPE_RANK.get(arm_type, 1)


@dataclass
class Trial:
    """One trial's rows from every trial table (dicts in the schemas' column names)."""

    nct_id: str
    trial: dict[str, Any]
    arms: list[dict[str, Any]] = field(default_factory=list)
    interventions: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def arm_by_label(self) -> dict[str, dict]:
        return {a["label"]: a for a in self.arms if a.get("label")}

    @cached_property
    def groups_by_outcome(self) -> dict[int, dict[str, dict]]:
        out: dict[int, dict[str, dict]] = defaultdict(dict)
        for g in self.groups:
            out[g["outcome_index"]][g["group_id"]] = g
        return out

    @cached_property
    def results_by_group(self) -> dict[tuple[int, str], list[dict]]:
        out: dict[tuple[int, str], list[dict]] = defaultdict(list)
        for r in self.results:
            out[(r["outcome_index"], r["group_id"])].append(r)
        return out

    @cached_property
    def analyses_by_outcome(self) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = defaultdict(list)
        for a in sorted(self.analyses, key=lambda a: a["analysis_index"] or 0):
            out[a["outcome_index"]].append(a)
        return out

    @cached_property
    def interventions_by_arm(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for i in sorted(self.interventions, key=lambda i: i["intervention_index"] or 0):
            if i.get("arm_label"):
                out[i["arm_label"]].append(i)
        return out

    def arms_json(self) -> list[dict[str, Any]]:
        """The trial's arms in the ClinicalTrials.gov API v2 ``armGroups`` shape CT Open uses."""
        return [arm_json(a, self.interventions_by_arm.get(a.get("label"), []))
                for a in sorted(self.arms, key=lambda a: a["arm_index"] or 0)]


def arm_json(arm: dict[str, Any], interventions: list[dict[str, Any]]) -> dict[str, Any]:
    """One arm as an API v2 armGroup: {label, type, description, interventionNames, interventions[...]}."""
    return {
        "label": arm.get("label"),
        "type": arm.get("type"),
        "description": arm.get("description"),
        "interventionNames": list(arm.get("intervention_names") or []),
        "interventions": [
            {"type": i.get("type"), "name": i.get("name"), "description": i.get("description"),
             "otherNames": list(i.get("other_names") or [])}
            for i in interventions
        ],
    }


def endpoint_json(outcome: dict[str, Any]) -> dict[str, Any]:
    """An outcome measure as CT Open's endpoint: {measure, description, timeFrame, outcome_type}."""
    return {
        "measure": outcome.get("title"),
        "description": outcome.get("description"),
        "timeFrame": outcome.get("time_frame"),
        "outcome_type": OUTCOME_TYPE_V2.get(outcome.get("type") or "", "otherOutcomes"),
    }


def empty_table(name: str) -> pa.Table:
    return TABLES[name].empty_table()


def _sorted_offsets(table: pa.Table) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    """Sort by nct_id and map each nct_id to its (start, stop) slice."""
    if table.num_rows == 0:
        return table, {}
    table = table.sort_by([("nct_id", "ascending")])
    ids = table.column("nct_id").to_numpy(zero_copy_only=False).astype(object)
    boundaries = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(ids)]])
    return table, {ids[s]: (int(s), int(e)) for s, e in zip(starts, stops) if ids[s] is not None}


def iter_trials(tables: Mapping[str, pa.Table], nct_ids: set[str] | None = None, block: int = 256) -> Iterator[Trial]:
    """Yield one `Trial` per row of ``tables['trials']`` (optionally only ``nct_ids``), in nct_id order.

    Missing child tables are treated as empty. Rows whose nct_id is not in ``trials`` are never yielded. Rows are
    converted to Python ``block`` trials at a time (one conversion per table and block, not per trial).
    """
    trials = tables[TRIALS_TABLE]
    if nct_ids is not None:
        trials = trials.filter(pc.is_in(trials.column("nct_id"), pa.array(sorted(nct_ids), pa.string())))
    trials = trials.sort_by([("nct_id", "ascending")])
    attr = {ARM_GROUPS_TABLE: "arms", INTERVENTIONS_TABLE: "interventions", OUTCOME_MEASURES_TABLE: "outcomes",
            OUTCOME_GROUPS_TABLE: "groups", OUTCOME_RESULTS_TABLE: "results", OUTCOME_ANALYSES_TABLE: "analyses"}
    children = {}
    for name in attr:
        table = tables.get(name)
        children[name] = _sorted_offsets(table if table is not None else empty_table(name))
    for start in range(0, trials.num_rows, block):
        rows = trials.slice(start, block).to_pylist()
        ids = [r["nct_id"] for r in rows]
        blocks = {}
        for name, (table, slices) in children.items():
            spans = [slices[i] for i in ids if i in slices]
            if not spans:
                blocks[name] = ([], 0)
                continue
            lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
            blocks[name] = (table.slice(lo, hi - lo).to_pylist(), lo)
        for row in rows:
            trial = Trial(nct_id=row["nct_id"], trial=row)
            for name, (values, offset) in blocks.items():
                span = children[name][1].get(row["nct_id"])
                if span:
                    setattr(trial, attr[name], values[span[0] - offset: span[1] - offset])
            yield trial
