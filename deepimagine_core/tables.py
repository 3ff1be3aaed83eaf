"""Table names, defined once: each is the Parquet file `<store>/tables/<name>.parquet` and the Dagster asset key."""

# Trial tables, written by deepimagine_core.ctgov.ingest (schemas in deepimagine_core.ctgov.schemas).
TRIALS_TABLE = "trials"
ARM_GROUPS_TABLE = "arm_groups"
INTERVENTIONS_TABLE = "interventions"
OUTCOME_MEASURES_TABLE = "outcome_measures"
OUTCOME_GROUPS_TABLE = "outcome_groups"
OUTCOME_RESULTS_TABLE = "outcome_results"
OUTCOME_ANALYSES_TABLE = "outcome_analyses"
LOCATIONS_TABLE = "locations"
QUARANTINE_TABLE = "quarantine"

# Derived tables.
TRIAL_SPLITS_TABLE = "trial_splits"
HISTORICAL_QUESTIONS_TABLE = "historical_questions"
QUESTION_SKIPS_TABLE = "question_skips"
NATURAL_PAIRS_TABLE = "natural_pairs"
APPROXIMATE_PAIRS_TABLE = "approximate_pairs"
REASONING_TRACES_TABLE = "reasoning_traces"
CT_OPEN_TABLE = "ct_open_questions"
BENCHMARK_REGISTRATIONS_TABLE = "benchmark_registrations"  # `trials` rows of benchmark trials, from their registrations

# The living benchmark (deepimagine_core.evaluation.prospective / history).
PROSPECTIVE_QUESTIONS_TABLE = "prospective_questions"
BENCHMARK_HISTORY_TABLE = "benchmark_history"
