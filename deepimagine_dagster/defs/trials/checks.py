"""Data contracts of the trial tables: unique keys, every child row has its trial, p-values in [0, 1], quarantine rate."""


import os

import dagster as dg

from deepimagine_core.ctgov import table_checks
from deepimagine_core.ctgov.schemas import CHILD_TABLES, KEYS
from deepimagine_core.tables import OUTCOME_ANALYSES_TABLE, QUARANTINE_TABLE, TRIALS_TABLE
from deepimagine_dagster.resources import StoreResource

ENV_MAX_QUARANTINE_RATE = "DEEPIMAGINE_MAX_QUARANTINE_RATE"
DEFAULT_MAX_QUARANTINE_RATE = 0.05


def _unique_key_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=name, name=f"{name}_unique_key", description=f"{name} is unique on {KEYS[name]}")
    def _check(store: StoreResource) -> dg.AssetCheckResult:
        dupes = table_checks.duplicate_keys(store.get().read_table(name, columns=list(KEYS[name])), KEYS[name])
        return dg.AssetCheckResult(
            passed=dupes == 0, metadata={"duplicate_keys": dupes, "key": ", ".join(KEYS[name])}
        )

    return _check


def _has_trial_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=name, name=f"{name}_has_trial", additional_deps=[TRIALS_TABLE],
        description=f"every row of {name} belongs to a study in trials",
    )
    def _check(store: StoreResource) -> dg.AssetCheckResult:
        st = store.get()
        orphans = table_checks.orphan_rows(st.read_table(name, columns=["nct_id"]),
                                           st.read_table(TRIALS_TABLE, ["nct_id"]))
        return dg.AssetCheckResult(passed=orphans == 0, metadata={"orphan_rows": orphans})

    return _check


unique_key_checks = [_unique_key_check(name) for name in KEYS]
has_trial_checks = [_has_trial_check(name) for name in CHILD_TABLES]


@dg.asset_check(asset=OUTCOME_ANALYSES_TABLE, description="every parsed p-value lies in [0, 1]")
def p_values_in_unit_interval(store: StoreResource) -> dg.AssetCheckResult:
    table = store.get().read_table(OUTCOME_ANALYSES_TABLE, columns=["p_value"])
    bad = table_checks.p_values_out_of_range(table)
    return dg.AssetCheckResult(
        passed=bad == 0,
        metadata={"out_of_range": bad, "with_p_value": table.num_rows - table.column("p_value").null_count},
    )


@dg.asset_check(
    asset=QUARANTINE_TABLE, additional_deps=[TRIALS_TABLE],
    description=f"share of studies quarantined stays under ${ENV_MAX_QUARANTINE_RATE} "
    f"(default {DEFAULT_MAX_QUARANTINE_RATE})",
)
def quarantine_rate_under_threshold(store: StoreResource) -> dg.AssetCheckResult:
    st = store.get()
    threshold = float(os.environ.get(ENV_MAX_QUARANTINE_RATE, DEFAULT_MAX_QUARANTINE_RATE))
    rate, quarantined, read = table_checks.quarantine_rate(
        st.read_table(QUARANTINE_TABLE, columns=["level"]), st.read_table(TRIALS_TABLE, columns=["nct_id"])
    )
    return dg.AssetCheckResult(
        passed=rate <= threshold,
        metadata={"quarantine_rate": rate, "threshold": threshold, "quarantined": quarantined, "studies_read": read},
    )
