"""Hand-made trial tables for the pairs tests (no shared data, no network). Holds no tests itself.

`TrialTables` collects rows in the schemas of ``deepimagine_core.ctgov.schemas``; unspecified columns stay null.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from deepimagine_core.ctgov.schemas import TABLES


class TrialTables:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {name: [] for name in TABLES}

    def trial(self, nct_id: str, arms: list[tuple[str, str]], *, posted: dt.date | None = dt.date(2012, 1, 1),
              title: str | None = None, conditions: tuple[str, ...] = ("Type 2 Diabetes",),
              interventions: list[tuple] = (), countries: tuple[str, ...] = ("United States",),
              phases: tuple[str, ...] = ("PHASE3",), **fields) -> "TrialTables":
        """A trial with arms [(label, type)] and interventions [(arm_label, name, type, dose_values, dose_unit)]."""
        self.rows["trials"].append({
            "nct_id": nct_id, "brief_title": title or f"Study {nct_id}", "results_first_posted": posted,
            "conditions": list(conditions), "countries": list(countries), "phases": list(phases),
            "n_arms": len(arms), "study_type": "INTERVENTIONAL", "allocation": "RANDOMIZED", "masking": "DOUBLE",
            "intervention_model": "PARALLEL", "primary_purpose": "TREATMENT", "sex": "ALL",
            "minimum_age_years": 18.0, "maximum_age_years": 75.0, "healthy_volunteers": False,
            "eligibility_criteria": f"Adults with {', '.join(conditions)}.", "enrollment": 100, **fields,
        })
        for i, (label, arm_type) in enumerate(arms):
            names = [f"Drug: {iv[1]}" for iv in interventions if iv[0] == label]
            self.rows["arm_groups"].append({"nct_id": nct_id, "arm_index": i, "label": label, "type": arm_type,
                                            "description": f"Participants receive {label}.",
                                            "intervention_names": names})
        for i, iv in enumerate(interventions):
            arm_label, name, iv_type, dose_values, dose_unit = (list(iv) + [None] * 5)[:5]
            self.rows["interventions"].append({
                "nct_id": nct_id, "intervention_index": i, "arm_label": arm_label, "type": iv_type or "DRUG",
                "name": name, "description": f"{name} tablets", "other_names": [],
                "dose_values": dose_values, "dose_unit": dose_unit})
        return self

    def outcome(self, nct_id: str, index: int, title: str, groups: list[tuple], *, analyses: list[dict] = (),
                param_type: str = "MEAN", unit: str = "units", otype: str = "PRIMARY", description: str | None = None,
                time_frame: str = "Week 12", classes: list[str] | None = None) -> "TrialTables":
        """groups: [(group_id, arm_label, value, n)], or [(group_id, arm_label, [value per class], n)] with
        ``classes``."""
        self.rows["outcome_measures"].append({
            "nct_id": nct_id, "outcome_index": index, "type": otype, "title": title, "description": description,
            "time_frame": time_frame, "param_type": param_type, "dispersion_type": "STANDARD_DEVIATION", "unit": unit,
            "n_groups": len(groups), "n_analyses": len(analyses)})
        for gi, (gid, arm_label, value, n) in enumerate(groups):
            self.rows["outcome_groups"].append({
                "nct_id": nct_id, "outcome_index": index, "group_id": gid, "group_index": gi,
                "title": arm_label or f"Group {gid}", "arm_label": arm_label,
                "arm_match_method": "exact" if arm_label else None, "participants_analyzed": n})
            values = value if classes else [value]
            for ci, v in enumerate(values):
                self.rows["outcome_results"].append({
                    "nct_id": nct_id, "outcome_index": index, "group_id": gid, "class_index": ci,
                    "class_title": classes[ci] if classes else None, "category_index": 0,
                    "value": v if isinstance(v, (int, float)) else None, "value_raw": str(v),
                    "spread": 1.0, "participants_analyzed": n})
        for ai, a in enumerate(analyses):
            self.rows["outcome_analyses"].append({"nct_id": nct_id, "outcome_index": index, "analysis_index": ai, **a})
        return self

    def tables(self) -> dict[str, pa.Table]:
        return {name: pa.Table.from_pylist(rows, schema=TABLES[name]) for name, rows in self.rows.items()}


def analysis(group_ids=("O1", "O2"), p=None, raw=None, rel="=", **fields) -> dict:
    if raw is None and p is not None:
        raw = f"{p}"
    return {"group_ids": list(group_ids), "p_value": p, "p_value_raw": raw,
            "p_value_relation": rel if p is not None else None, "non_inferiority_type": "SUPERIORITY", **fields}


def two_arm_trial(t: TrialTables, nct_id: str, *, title: str = "Change From Baseline in HbA1c", values=(-1.0, -0.2),
                  ana: dict | None = None, arms=(("Drug A", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")),
                  **trial_fields) -> TrialTables:
    """A two-arm trial with one outcome (groups O1 → first arm, O2 → second arm) and one analysis."""
    t.trial(nct_id, list(arms), interventions=[(arms[0][0], "Drug A"), (arms[1][0], "Placebo")], **trial_fields)
    groups = [("O1", arms[0][0], values[0], 50), ("O2", arms[1][0], values[1], 50)]
    return t.outcome(nct_id, 0, title, groups, analyses=[ana or analysis(p=0.01)])
