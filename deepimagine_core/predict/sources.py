"""Where a trial to predict comes from: an NCT id (trial tables, or the live API), a v2 JSON file, or a YAML draft.

    design = load_design("NCT01234567", store)                  # the `trials` tables in the store
    design = load_design("NCT01234567", store, api=ApiSettings())  # ClinicalTrials.gov API v2 (the source is `api`)
    design = load_design("my_trial.yaml", store)                # a YAML draft (`.yaml`/`.yml`), or `.json` registration
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from deepimagine_core.ctgov.api import StudyQuery
from deepimagine_core.predict.design import (
    NCT_ID,
    REGISTRATION_TABLES,
    DesignError,
    TrialDesign,
    design_from_registration,
    draft_from_text,
    load_draft,
    load_registration,
    registered_enrollment,
    validate_design,
)
from deepimagine_core.store import Store
from deepimagine_core.tables import ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, OUTCOME_MEASURES_TABLE, TRIALS_TABLE

if TYPE_CHECKING:
    from deepimagine_core.ctgov.api import CTGovClient
    from deepimagine_core.ctgov.ingest import ApiSettings

DRAFT_SUFFIXES = (".yaml", ".yml")
REGISTRATION_SUFFIXES = (".json",)
_OUTCOME_TYPES = {"PRIMARY": "primary", "SECONDARY": "secondary"}


@dataclass(frozen=True)
class IdQuery(StudyQuery):
    """A `/studies` search for given NCT ids, whatever their status or results (a planned trial has none)."""

    nct_ids: tuple[str, ...] = field(default=())
    has_results: bool = False
    study_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def params(self) -> dict[str, str]:
        params = super().params()
        params["filter.ids"] = "|".join(self.nct_ids)
        return params


def fetch_registration(nct_id: str, api: "ApiSettings", client: "CTGovClient | None" = None) -> TrialDesign:
    """The registration of one trial from ClinicalTrials.gov API v2 (through the project's polite client)."""
    from deepimagine_core.ctgov.api import CTGovClient

    own = client is None
    client = client or CTGovClient(api.base_url, requests_per_second=api.requests_per_second,
                                   timeout=api.timeout_seconds, max_retries=api.max_retries)
    try:
        page = client.fetch_page(IdQuery(nct_ids=(nct_id.upper(),), page_size=1))
    finally:
        if own:
            client.close()
    studies = [s for s in page.studies
               if str((s.get("protocolSection") or {}).get("identificationModule", {}).get("nctId", "")).upper()
               == nct_id.upper()]
    if not studies:
        raise DesignError(f"{nct_id}: ClinicalTrials.gov API ({api.base_url}) has no study with this NCT id")
    return design_from_registration(studies[0], f"ClinicalTrials.gov API: {nct_id.upper()}")


def _rows(store: Store, table: str, nct_id: str) -> list[dict[str, Any]]:
    data = store.read_table(table)
    return data.filter(pc.equal(data.column("nct_id"), pa.scalar(nct_id))).to_pylist()


def design_from_tables(store: Store, nct_id: str) -> TrialDesign:
    """A trial's design from the registration tables (`REGISTRATION_TABLES`): result tables are never opened."""
    missing = [t for t in REGISTRATION_TABLES if not store.has_table(t)]
    if missing:
        raise DesignError(f"{nct_id}: the store at {store.root} has no trial tables ({', '.join(missing)}); run job "
                          "refresh_trials first, or use the live API (trial source `api`)")
    nct_id = nct_id.upper()
    trials = _rows(store, TRIALS_TABLE, nct_id)
    if not trials:
        raise DesignError(f"{nct_id}: not in the trials table of {store.root} (set the trial source to `api` to "
                          "fetch it from ClinicalTrials.gov, or give a registration file)")
    t = trials[0]
    ivs = sorted(_rows(store, INTERVENTIONS_TABLE, nct_id), key=lambda r: r.get("intervention_index") or 0)
    arms = [{"label": a["label"], "type": a.get("type") or "OTHER", "description": a.get("description"),
             "interventions": [{"name": i["name"], "type": i.get("type") or "OTHER",
                                "description": i.get("description"), "other_names": list(i.get("other_names") or [])}
                               for i in ivs if i.get("arm_label") == a["label"] and i.get("name")]}
            for a in sorted(_rows(store, ARM_GROUPS_TABLE, nct_id), key=lambda r: r.get("arm_index") or 0)
            if a.get("label")]
    outcomes = [{"measure": o["title"], "description": o.get("description"), "time_frame": o.get("time_frame"),
                 "type": _OUTCOME_TYPES[o["type"]]}
                for o in sorted(_rows(store, OUTCOME_MEASURES_TABLE, nct_id), key=lambda r: r["outcome_index"])
                if o.get("type") in _OUTCOME_TYPES and o.get("title")]
    data = {"nct_id": nct_id, "title": t.get("brief_title") or t.get("official_title"), "arms": arms,
            "outcomes": outcomes, "conditions": t.get("conditions") or [], "phase": t.get("phases") or [],
            "enrollment": registered_enrollment(t.get("enrollment")), "countries": t.get("countries") or [],
            **{k: t.get(k) for k in ("sex", "minimum_age", "maximum_age", "healthy_volunteers",
                                     "eligibility_criteria", "allocation", "masking")}}
    where = f"trial tables: {nct_id}"
    design = validate_design(data, where)
    design.source = where
    return design


def load_design(spec: str, store: Store, api: "ApiSettings | None" = None, draft_text: str = "") -> TrialDesign:
    """The design named by `spec`: an NCT id (the live API when `api` is given, else the trial tables), a `.json`
    API v2 registration, or a `.yaml`/`.yml` draft; or, with `draft_text`, an inline YAML draft."""
    spec = (spec or "").strip()
    if draft_text.strip():
        if spec:
            raise DesignError("trial: give either a trial (NCT id or file) or an inline draft, not both")
        return draft_from_text(draft_text, "inline draft")
    if not spec:
        raise DesignError("trial: empty; give an NCT id, a v2 JSON registration file or a YAML draft file")
    if NCT_ID.match(spec):
        return fetch_registration(spec, api) if api is not None else design_from_tables(store, spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DesignError(f"trial: {spec!r} is neither an NCT id (NCT + 8 digits) nor an existing file")
    suffix = path.suffix.lower()
    if suffix in DRAFT_SUFFIXES:
        return load_draft(path)
    if suffix in REGISTRATION_SUFFIXES:
        return load_registration(path)
    raise DesignError(f"trial: {path.name}: unknown file type (use .json for a v2 registration, .yaml for a draft)")
