"""Natural pairs from hand-made tables: arm pairs (dose-ranging low → high), outcome pairs, change bands, caps."""

import json

import pyarrow as pa
import pytest

from deepimagine_core.pairs.natural import NaturalConfig, build_natural_pairs, change_of
from tests.core.test_pairs_fixtures import TrialTables


def dose_trial() -> TrialTables:
    t = TrialTables().trial(
        "NCT00000101",
        [("Drug A 20 mg", "EXPERIMENTAL"), ("Drug A 5 mg", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")],
        interventions=[("Drug A 20 mg", "Drug A", "DRUG", [20.0], "mg"), ("Drug A 5 mg", "Drug A", "DRUG", [5.0], "mg"),
                       ("Placebo", "Placebo", "DRUG", None, None)])
    groups = [("O1", "Drug A 20 mg", -1.5, 40), ("O2", "Drug A 5 mg", -1.0, 40), ("O3", "Placebo", -0.2, 40)]
    t.outcome("NCT00000101", 0, "Change From Baseline in HbA1c at Week 12", groups, time_frame="Week 12")
    t.outcome("NCT00000101", 1, "Change From Baseline in HbA1c at Week 24", groups, time_frame="Week 24")
    return t


def test_arm_pairs_with_dose_ranging_ordered_low_to_high():
    table, stats = build_natural_pairs(dose_trial().tables(), splits={"NCT00000101": "train"})
    rows = table.to_pylist()
    arm = [r for r in rows if r["factor"] == "arm"]
    assert len(arm) == 6 and stats["arm"] == 6  # 3 pairs of groups x 2 outcomes
    dose = [r for r in arm if r["is_dose_ranging"]]
    assert len(dose) == 2 and stats["trials_with_dose_ranging"] == 1
    for r in dose:
        assert (r["source_dose"], r["target_dose"]) == ("5 mg", "20 mg")  # low → high
        assert (r["source_value"], r["target_value"]) == (-1.0, -1.5)
        assert r["change_direction"] == "down" and r["change_band"] == "large"  # -50%
        assert r["difference"].startswith("dose: 5 mg → 20 mg")
        assert r["higher_is_better"] is False  # HbA1c
    placebo = [r for r in arm if not r["is_dose_ranging"]]
    # non-dose pairs go from the control-like arm to the experimental one
    assert all(json.loads(r["source_context"])["arm"]["label"] == "Placebo" for r in placebo)
    ctx = json.loads(dose[0]["source_context"])
    assert ctx["dose"]["values"] == [5.0] and ctx["outcome"]["unit"] == "units" and ctx["nct_id"] == "NCT00000101"
    assert json.loads(dose[0]["target_result"]) == {
        "value": -1.5, "value_raw": "-1.5", "dispersion": 1.0, "dispersion_type": "STANDARD_DEVIATION", "lower": None,
        "upper": None, "n": 40, "param_type": "MEAN", "unit": "units"}
    assert {r["split"] for r in rows} == {"train"} and all(r["source_nct_id"] == r["target_nct_id"] for r in rows)


def test_outcome_pairs_same_group_two_measures():
    table, stats = build_natural_pairs(dose_trial().tables())
    out = [r for r in table.to_pylist() if r["factor"] == "outcome"]
    assert len(out) == 3 and stats["outcome"] == 3  # one per group
    for r in out:
        s, t = json.loads(r["source_context"]), json.loads(r["target_context"])
        assert s["group"]["id"] == t["group"]["id"] and s["outcome"]["title"] != t["outcome"]["title"]
        assert r["comparable"] and r["change_direction"] == "same" and r["change_band"] == "same"
        assert r["difference"].startswith("outcome measure: 'Change From Baseline in HbA1c at Week 12' → ")
        assert not r["is_dose_ranging"] and r["split"] == "unassigned"


def test_time_points_as_classes_and_incomparable_outcomes():
    t = TrialTables().trial("NCT00000102", [("Drug A", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")])
    t.outcome("NCT00000102", 0, "CD4 Count",
              [("O1", "Drug A", [300.0, 360.0], 20), ("O2", "Placebo", [300.0, 310.0], 20)],
              classes=["Week 12", "Week 24"], unit="cells/mm3")
    t.outcome("NCT00000102", 1, "Response Rate", [("O1", "Drug A", 40.0, 20), ("O2", "Placebo", 20.0, 20)],
              unit="percentage of participants")
    rows = build_natural_pairs(t.tables())[0].to_pylist()
    time_pairs = [r for r in rows if r["factor"] == "outcome" and r["comparable"]]
    assert {r["difference"] for r in time_pairs} == {"time point of 'CD4 Count': 'Week 12' → 'Week 24'"}
    drug = next(r for r in time_pairs if json.loads(r["source_context"])["arm"]["label"] == "Drug A")
    assert drug["change_direction"] == "up" and drug["change_band"] == "moderate"
    mixed = [r for r in rows if r["factor"] == "outcome" and not r["comparable"]]
    assert mixed and all(r["change_direction"] is None and r["change_band"] is None for r in mixed)


def test_caps_bound_pairs_per_trial():
    config = NaturalConfig(max_arm_pairs_per_trial=2, max_outcome_pairs_per_trial=1)
    table, stats = build_natural_pairs(dose_trial().tables(), config=config)
    assert (stats["arm"], stats["outcome"]) == (2, 1)
    assert all(r["is_dose_ranging"] for r in table.to_pylist() if r["factor"] == "arm")  # dose-ranging first


def test_trial_without_results_gives_no_pairs():
    t = TrialTables().trial("NCT00000103", [("A", "EXPERIMENTAL"), ("B", "PLACEBO_COMPARATOR")])
    t.outcome("NCT00000103", 0, "Pain", [("O1", "A", "NA", 10), ("O2", "B", "NA", 10)])
    table, stats = build_natural_pairs(t.tables())
    assert table.num_rows == 0 and stats["pairs"] == 0


@pytest.mark.parametrize("source,target,expected", [
    (10.0, 10.0, ("same", 0.0, "same")),
    (10.0, 10.2, ("up", pytest.approx(0.02), "negligible")),
    (10.0, 9.0, ("down", pytest.approx(-0.1), "small")),
    (-1.0, -1.3, ("down", pytest.approx(-0.3), "moderate")),
    (2.0, 5.0, ("up", pytest.approx(1.5), "large")),
    (0.0, 1.0, ("up", None, "large")),
])
def test_change_bands(source, target, expected):
    assert change_of(source, target) == expected


def test_evidence_check_flags_missing_results():
    from deepimagine_core.pairs.contracts import natural_evidence_problems

    table, _ = build_natural_pairs(dose_trial().tables())
    assert natural_evidence_problems(table) == {}
    broken = table.set_column(table.schema.get_field_index("target_context"), "target_context",
                              pa.array(["{}"] + table.column("target_context").to_pylist()[1:]))
    assert list(natural_evidence_problems(broken)) == ["missing target context"]
