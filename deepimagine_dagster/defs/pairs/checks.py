"""Checks on the pairs domain: evidence present, no leak across sides, exactly one differing factor, label balance.

The logic lives in core (`split.find_leaks`, `contracts`); these wrappers read the tables and report.
"""

import dagster as dg
import pyarrow.parquet as pq

from deepimagine_core.pairs.approximate import trial_profiles
from deepimagine_core.pairs.contracts import (approximate_factor_problems, config_from_schema, label_balance,
                                                natural_evidence_problems, question_evidence_problems)
from deepimagine_core.evaluation.inputs import split_benchmark_ids
from deepimagine_core.pairs.split import find_leaks
from deepimagine_core.tables import (
    APPROXIMATE_PAIRS_TABLE, ARM_GROUPS_TABLE, HISTORICAL_QUESTIONS_TABLE, INTERVENTIONS_TABLE, NATURAL_PAIRS_TABLE,
    TRIALS_TABLE, TRIAL_SPLITS_TABLE,
)
from deepimagine_dagster.defs.pairs.assets import (approximate_pairs, historical_questions, natural_pairs, read_tables,
                                                   trial_splits)
from deepimagine_dagster.resources import CTOpenResource, StoreResource


def _result(problems: dict[str, list[str]], **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"problems": dg.MetadataValue.json(problems), "problem_kinds": len(problems), **metadata})


def _leak_check(store: StoreResource, ct_open: CTOpenResource, table: str, id_columns: tuple[str, ...]):
    st = store.get()
    items = st.read_table(table, columns=[*id_columns, "split"])
    problems = find_leaks(st.read_table(TRIAL_SPLITS_TABLE), items, id_columns, split_benchmark_ids(st, ct_open.paths))
    return _result(problems, rows=items.num_rows)


@dg.asset_check(asset=trial_splits,
                description="Each trial on exactly one side; benchmark trials on the benchmark side.")
def trial_splits_no_leak(store: StoreResource, ct_open: CTOpenResource) -> dg.AssetCheckResult:
    st = store.get()
    return _result(find_leaks(st.read_table(TRIAL_SPLITS_TABLE), None,
                              benchmark_ids=split_benchmark_ids(st, ct_open.paths)))


@dg.asset_check(asset=historical_questions, description="Every question on its trial's side; none trains on a "
                                                         "benchmark trial.")
def historical_questions_no_leak(store: StoreResource, ct_open: CTOpenResource) -> dg.AssetCheckResult:
    return _leak_check(store, ct_open, HISTORICAL_QUESTIONS_TABLE, ("nct_id",))


@dg.asset_check(asset=historical_questions, description="Every label has its evidence: a p-value or CI, a valid "
                                                         "answer, polarity and values for direction labels.")
def historical_questions_evidence(store: StoreResource) -> dg.AssetCheckResult:
    table = store.get().read_table(HISTORICAL_QUESTIONS_TABLE)
    return _result(question_evidence_problems(table), rows=table.num_rows)


@dg.asset_check(asset=historical_questions, description="Label balance per kind and category (reported; warns when "
                                                         "a class has under 5% of a kind's questions).")
def historical_questions_label_balance(store: StoreResource) -> dg.AssetCheckResult:
    balance, thin = label_balance(store.get().read_table(HISTORICAL_QUESTIONS_TABLE))
    return dg.AssetCheckResult(passed=not thin, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"balance": dg.MetadataValue.json(balance),
                                         "thin_classes": dg.MetadataValue.json(thin)})


@dg.asset_check(asset=natural_pairs, description="Both trials of a pair on the pair's side; none spans sides.")
def natural_pairs_no_leak(store: StoreResource, ct_open: CTOpenResource) -> dg.AssetCheckResult:
    return _leak_check(store, ct_open, NATURAL_PAIRS_TABLE, ("source_nct_id", "target_nct_id"))


@dg.asset_check(asset=natural_pairs, description="Both observed results and contexts present in every pair.")
def natural_pairs_evidence(store: StoreResource) -> dg.AssetCheckResult:
    table = store.get().read_table(NATURAL_PAIRS_TABLE)
    return _result(natural_evidence_problems(table), rows=table.num_rows)


@dg.asset_check(asset=approximate_pairs, description="Both trials of a pair on the pair's side; none spans sides.")
def approximate_pairs_no_leak(store: StoreResource, ct_open: CTOpenResource) -> dg.AssetCheckResult:
    return _leak_check(store, ct_open, APPROXIMATE_PAIRS_TABLE, ("source_nct_id", "target_nct_id"))


@dg.asset_check(asset=approximate_pairs, description="Recomputed from the trial tables: each pair differs beyond "
                                                      "tolerance in exactly its factor.")
def approximate_pairs_single_factor(store: StoreResource) -> dg.AssetCheckResult:
    st = store.get()
    profiles = trial_profiles(read_tables(st, (TRIALS_TABLE, INTERVENTIONS_TABLE, ARM_GROUPS_TABLE)))
    table = st.read_table(APPROXIMATE_PAIRS_TABLE, columns=["factor", "source_nct_id", "target_nct_id"])
    config = config_from_schema(pq.read_schema(st.table_path(APPROXIMATE_PAIRS_TABLE)))
    return _result(approximate_factor_problems(profiles, table, config), rows=table.num_rows)
