"""Approximate pairs: each factor finds the trial that differs in exactly that factor; spanning pairs are dropped."""

import pyarrow as pa
import pytest

from deepimagine_core.pairs.approximate import (FACTORS, ApproxConfig, build_approximate_pairs, build_trial_index,
                                                differing_factors_of, trial_profiles)
from deepimagine_core.pairs.contracts import approximate_factor_problems
from tests.core.test_pairs_fixtures import TrialTables

ARMS = [("Active", "EXPERIMENTAL"), ("Placebo", "PLACEBO_COMPARATOR")]


def trials() -> TrialTables:
    t = TrialTables()
    base = dict(conditions=("Type 2 Diabetes Mellitus",), countries=("United States",))
    t.trial("NCT00000201", ARMS, interventions=[("Active", "Metformin")], title="Metformin in type 2 diabetes", **base)
    t.trial("NCT00000202", ARMS, interventions=[("Active", "Sitagliptin")], title="Sitagliptin in type 2 diabetes",
            **base)
    t.trial("NCT00000203", ARMS, interventions=[("Active", "Metformin")],
            title="Metformin in polycystic ovary syndrome",
            conditions=("Polycystic Ovary Syndrome",), countries=("United States",))
    t.trial("NCT00000204", ARMS, interventions=[("Active", "Metformin")], title="Metformin in type 2 diabetes, Japan",
            conditions=("Type 2 Diabetes Mellitus",), countries=("Japan",))
    t.trial("NCT00000205", [("Active", "EXPERIMENTAL")], interventions=[("Active", "Metformin")],
            title="Metformin in type 2 diabetes, open label", phases=("PHASE2",), masking="NONE",
            allocation="NA", **base)
    t.trial("NCT00000206", ARMS, interventions=[("Active", "Atorvastatin")], title="Atorvastatin in hyperlipidaemia",
            conditions=("Hypercholesterolemia",), countries=("Germany",), phases=("PHASE4",))
    return t


@pytest.fixture(scope="module")
def built():
    tables = trials().tables()
    profiles = trial_profiles(tables)
    index = build_trial_index(profiles)
    return profiles, index


def test_each_factor_finds_its_counterfactual(built):
    profiles, index = built
    table, stats = build_approximate_pairs(profiles, index, config=ApproxConfig(k=3))
    pairs = {(r["factor"], r["source_nct_id"], r["target_nct_id"]) for r in table.to_pylist()}
    assert ("intervention", "NCT00000201", "NCT00000202") in pairs
    assert ("population", "NCT00000201", "NCT00000203") in pairs
    assert ("geography", "NCT00000201", "NCT00000204") in pairs
    assert ("design", "NCT00000201", "NCT00000205") in pairs
    assert all(stats[f] > 0 for f in FACTORS) and stats["pairs"] == table.num_rows
    assert not any("NCT00000206" in (s, t) for _, s, t in pairs)  # unlike everyone in several factors


def test_pairs_differ_in_exactly_their_factor(built):
    profiles, index = built
    table, _ = build_approximate_pairs(profiles, index)
    for row in table.to_pylist():
        assert differing_factors_of(profiles, row["source_nct_id"], row["target_nct_id"]) == [row["factor"]]
        assert row["differing_factors"] == [row["factor"]]
        assert any(a.startswith(row["factor"]) for a in row["differing_attributes"])
        assert 0 < row["similarity"] <= 1.0 + 1e-6 and row["difference"].startswith(row["factor"] + ": ")
    assert approximate_factor_problems(profiles, table) == {}
    planted = table.set_column(table.schema.get_field_index("factor"), "factor",
                               pa.array(["design"] * table.num_rows))
    assert approximate_factor_problems(profiles, planted)  # a mislabelled pair is caught


def test_spanning_pairs_are_dropped(built):
    profiles, index = built
    splits = {x: "train" for x in profiles.ids} | {"NCT00000202": "test"}
    table, stats = build_approximate_pairs(profiles, index, splits)
    assert stats["intervention_spanning_dropped"] >= 1
    for row in table.to_pylist():
        assert splits[row["source_nct_id"]] == splits[row["target_nct_id"]] == row["split"]


def test_index_from_other_trials_is_refused(built):
    profiles, _ = built
    other = build_trial_index(trial_profiles(TrialTables().trial("NCT00000299", ARMS).tables()))
    with pytest.raises(ValueError, match="ids differ"):
        build_approximate_pairs(profiles, other)
