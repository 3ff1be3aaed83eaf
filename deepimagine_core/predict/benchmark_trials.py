"""The registrations of a benchmark's trials, fetched from ClinicalTrials.gov API v2, as `trials` rows for the
imagination pathway (population, geography and design of each target).

Leakage: only the registration is read. Each study goes through `predict.design.design_from_registration`, which keeps
`protocolSection` alone (results, annotations, documents and derived fields are dropped unread), and the row is its
`TrialDesign.trial_row()`. `write_registrations` stores them as table `benchmark_registrations`, which the pathway
reads beside `trials` (`llm.factors.load_trials`).

    rows, missing = fetch_trial_rows(["NCT01234567", ...], ApiSettings())
    rows = benchmark_trial_rows(store, ApiSettings())   # every CT Open benchmark trial not in the `trials` table
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from deepimagine_core.predict.design import DesignError, design_from_registration
from deepimagine_core.predict.sources import IdQuery
from deepimagine_core.store import Store
from deepimagine_core.tables import BENCHMARK_REGISTRATIONS_TABLE, CT_OPEN_TABLE, TRIALS_TABLE

if TYPE_CHECKING:
    from deepimagine_core.ctgov.api import ApiSettings, CTGovClient

IDS_PER_REQUEST = 50  # NCT ids per /studies search (filter.ids): a short URL, few requests


def _nct_id(study: dict[str, Any]) -> str:
    return str((study.get("protocolSection") or {}).get("identificationModule", {}).get("nctId", "")).upper()


def fetch_trial_rows(
    nct_ids: Iterable[str], api: ApiSettings, client: CTGovClient | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(nct_id -> `trials` row from its registration, nct_id -> why it has none) for `nct_ids`."""
    wanted = sorted({i.strip().upper() for i in nct_ids if i and i.strip()})
    own = client is None
    client = client or api.client()
    rows: dict[str, dict[str, Any]] = {}
    missing: dict[str, str] = {}
    try:
        for start in range(0, len(wanted), IDS_PER_REQUEST):
            chunk = tuple(wanted[start : start + IDS_PER_REQUEST])
            token = None
            while True:
                page = client.fetch_page(IdQuery(nct_ids=chunk, page_size=len(chunk)), token)
                for study in page.studies:
                    nct = _nct_id(study)
                    if nct in chunk:
                        try:
                            rows[nct] = design_from_registration(study, f"ClinicalTrials.gov API: {nct}").trial_row()
                        except DesignError as err:
                            missing[nct] = f"registration not usable: {err}"
                token = page.next_page_token
                if not token:
                    break
            if log:
                log(f"benchmark registrations: {len(rows)} of {min(start + len(chunk), len(wanted))} fetched")
    finally:
        if own:
            client.close()
    for nct in wanted:
        if nct not in rows and nct not in missing:
            missing[nct] = "no study with this NCT id in the API"
    return rows, missing


def benchmark_trial_rows(
    store: Store, api: ApiSettings, client: CTGovClient | None = None, log: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Registration rows of the CT Open benchmark trials (table `ct_open_questions`, role `benchmark`) that the
    `trials` table does not hold; ({}, {}) when there is no benchmark."""
    if not store.has_table(CT_OPEN_TABLE):
        return {}, {}
    table = store.read_table(CT_OPEN_TABLE).select(["nct_id", "role"]).to_pylist()
    known = set(store.read_table(TRIALS_TABLE).column("nct_id").to_pylist()) if store.has_table(TRIALS_TABLE) else set()
    wanted = {r["nct_id"].upper() for r in table if r["role"] == "benchmark"} - {k.upper() for k in known}
    return fetch_trial_rows(wanted, api, client, log) if wanted else ({}, {})


def write_registrations(store: Store, rows: dict[str, dict[str, Any]]) -> None:
    """The fetched rows as table `benchmark_registrations` (replacing the last fetch)."""
    import pyarrow as pa

    store.write_table(BENCHMARK_REGISTRATIONS_TABLE, pa.Table.from_pylist(list(rows.values())) if rows else
                      pa.table({"nct_id": pa.array([], pa.string())}))
