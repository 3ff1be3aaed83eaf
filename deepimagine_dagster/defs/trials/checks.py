"""Data contracts of the trial tables: unique keys, every child row has its trial, p-values in [0, 1], quarantine rate.

Every check is blocking: in a run that also builds on the trial tables (pairs, questions ...), a failed contract stops
the downstream assets instead of letting them build on bad tables. A failure is logged as an ERROR with its figures.
"""


import dagster as dg

from deepimagine_core.ctgov import contracts
from deepimagine_core.ctgov.schemas import CHILD_TABLES, KEYS
from deepimagine_core.tables import OUTCOME_ANALYSES_TABLE, QUARANTINE_TABLE, TRIALS_TABLE
from deepimagine_dagster.resources import StoreResource, TrialSourceResource


def _result(context, check: str, passed: bool, what: str, metadata: dict) -> dg.AssetCheckResult:
    """The check's result; a failure is an ERROR line naming the check and its figures (not a DEBUG event only)."""
    figures = ", ".join(f"{k}={v}" for k, v in metadata.items())
    if not passed:
        context.log.error(f"check {check} failed: {what} ({figures})")
    return dg.AssetCheckResult(passed=passed, description=what, metadata=metadata)


def _unique_key_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=name, name=f"{name}_unique_key", blocking=True, description=f"{name} is unique on {KEYS[name]}"
    )
    def _check(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
        dupes = contracts.duplicate_keys(store.get().read_table(name, columns=list(KEYS[name])), KEYS[name])
        what = f"{dupes} key values of {name} occur more than once"
        metadata = {"duplicate_keys": dupes, "key": ", ".join(KEYS[name])}
        return _result(context, f"{name}_unique_key", dupes == 0, what, metadata)

    return _check


def _has_trial_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=name, name=f"{name}_has_trial", additional_deps=[TRIALS_TABLE], blocking=True,
        description=f"every row of {name} belongs to a study in trials",
    )
    def _check(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
        st = store.get()
        orphans = contracts.orphan_rows(
            st.read_table(name, columns=["nct_id"]), st.read_table(TRIALS_TABLE, ["nct_id"])
        )
        what = f"{orphans} rows of {name} have no trial"
        return _result(context, f"{name}_has_trial", orphans == 0, what, {"orphan_rows": orphans})

    return _check


unique_key_checks = [_unique_key_check(name) for name in KEYS]
has_trial_checks = [_has_trial_check(name) for name in CHILD_TABLES]


@dg.asset_check(asset=OUTCOME_ANALYSES_TABLE, blocking=True, description="every parsed p-value lies in [0, 1]")
def p_values_in_unit_interval(context: dg.AssetCheckExecutionContext, store: StoreResource) -> dg.AssetCheckResult:
    table = store.get().read_table(OUTCOME_ANALYSES_TABLE, columns=["p_value"])
    bad = contracts.p_values_out_of_range(table)
    with_p = table.num_rows - table.column("p_value").null_count
    metadata = {"out_of_range": bad, "with_p_value": with_p}
    return _result(context, "p_values_in_unit_interval", bad == 0, f"{bad} p-values outside [0, 1]", metadata)


@dg.asset_check(
    asset=TRIALS_TABLE, additional_deps=[QUARANTINE_TABLE], blocking=True,
    description="share of studies quarantined stays under the trial source's max_quarantine_rate "
    "($DEEPIMAGINE_MAX_QUARANTINE_RATE, default 0.05); on `trials`, so that what builds on trials waits for it",
)
def quarantine_rate_under_threshold(
    context: dg.AssetCheckExecutionContext, store: StoreResource, trial_source: TrialSourceResource
) -> dg.AssetCheckResult:
    st = store.get()
    threshold = trial_source.max_quarantine_rate
    rate, quarantined, read = contracts.quarantine_rate(
        st.read_table(QUARANTINE_TABLE, columns=["level"]), st.read_table(TRIALS_TABLE, columns=["nct_id"])
    )
    what = f"{quarantined} of {read} studies quarantined: rate {rate:.4f} against the threshold {threshold}"
    metadata = {"quarantine_rate": rate, "threshold": threshold, "quarantined": quarantined, "studies_read": read}
    return _result(context, "quarantine_rate_under_threshold", rate <= threshold, what, metadata)
