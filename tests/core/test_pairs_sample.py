"""Questions and pairs from the embedded real sample (tables built by the shared `sample_store` fixture)."""

import pytest

from deepimagine_core.pairs.approximate import build_approximate_pairs, build_trial_index, trial_profiles
from deepimagine_core.pairs.contracts import (approximate_factor_problems, natural_evidence_problems,
                                                question_evidence_problems)
from deepimagine_core.pairs.natural import NaturalConfig, build_natural_pairs
from deepimagine_core.pairs.historical import build_questions
from deepimagine_core.pairs.split import assign_splits, find_leaks, split_map
from deepimagine_core.pairs.trialdata import TRIAL_TABLES


@pytest.mark.slow
def test_real_sample_end_to_end(sample_store):
    tables = {name: sample_store.read_table(name) for name in TRIAL_TABLES}
    splits, _ = assign_splits(tables["trials"])
    sides = split_map(splits)
    questions, skips = build_questions(tables, splits=sides)
    kinds = set(questions.column("kind").to_pylist())
    assert questions.num_rows > 300 and kinds == {"superiority", "comparative", "endpoint_met"}
    assert skips and all(count > 0 for count in skips.values())
    assert question_evidence_problems(questions) == {}
    assert find_leaks(splits, questions, ("nct_id",)) == {}

    pairs, stats = build_natural_pairs(tables, splits=sides, config=NaturalConfig(max_outcome_pairs_per_trial=10,
                                                                                   max_arm_pairs_per_trial=10))
    assert stats["arm"] > 0 and stats["outcome"] > 0 and stats["dose_ranging"] > 0
    assert natural_evidence_problems(pairs) == {}
    assert find_leaks(splits, pairs, ("source_nct_id", "target_nct_id")) == {}

    profiles = trial_profiles(tables)
    approx, counts = build_approximate_pairs(profiles, build_trial_index(profiles), sides)
    assert sum(counts[f] > 0 for f in ("intervention", "population", "geography", "design")) >= 3
    assert approximate_factor_problems(profiles, approx) == {}
    assert find_leaks(splits, approx, ("source_nct_id", "target_nct_id")) == {}
