"""Contracts of `reasoning_traces`: only training-split pairs (no leak into training data), every pair still
exists, and an accepted trace always states the observed direction."""

import dagster as dg

from deepimagine_core.llm.traces import contract_violations
from deepimagine_core.tables import NATURAL_PAIRS_TABLE, REASONING_TRACES_TABLE
from deepimagine_dagster.resources import StoreResource


@dg.asset_check(
    asset=REASONING_TRACES_TABLE,
    additional_deps=[NATURAL_PAIRS_TABLE],
    description="traces exist only for current training-split natural pairs, and accepted ones match the observation",
)
def reasoning_traces_contracts(store: StoreResource) -> dg.AssetCheckResult:
    st = store.get()
    counts = contract_violations(
        st.read_table(REASONING_TRACES_TABLE, columns=["pair_id", "accepted", "direction_match"]),
        st.read_table(NATURAL_PAIRS_TABLE, columns=["pair_id", "split"]),
    )
    return dg.AssetCheckResult(passed=not any(counts.values()), metadata=counts)
