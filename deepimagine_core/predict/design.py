"""A planned trial's design — what a user asks about — read from a YAML draft, a ClinicalTrials.gov API v2 registration,
the trial tables, or the API itself. Results are never part of a design.

    design = load_design("NCT01234567", store)            # trial tables (or api=ApiSettings(...) for the live API)
    design = load_design("registration.json", store)      # API v2 study JSON: resultsSection is removed before parsing
    design = load_design("draft.yaml", store)             # a small YAML draft (see `TrialDesign` for the fields)

A draft is validated field by field (pydantic): `DesignError` names each bad field, e.g.
``draft.yaml: arms[1].type: unknown arm type 'placebo arm' (use one of EXPERIMENTAL, ACTIVE_COMPARATOR, ...)``.

Leakage: from a v2 study only `protocolSection` is kept (`strip_results`); from the tables only `trials`, `arm_groups`,
`interventions` and `outcome_measures` (measure wording and type) are read, never result groups, values or analyses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deepimagine_core.ctgov.enums import ENUMS, map_enum, map_phases
from deepimagine_core.tables import ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, OUTCOME_MEASURES_TABLE, TRIALS_TABLE

NCT_ID = re.compile(r"^NCT\d{8}$", re.IGNORECASE)
#: The only part of an API v2 study a design is read from; everything else (resultsSection, annotationSection,
#: documentSection, derivedSection, hasResults) is dropped unread.
REGISTRATION_SECTION = "protocolSection"
#: The trial tables a design is read from (registration fields only).
REGISTRATION_TABLES = (TRIALS_TABLE, ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, OUTCOME_MEASURES_TABLE)


class DesignError(ValueError):
    """Input that is not a usable trial design; the message names the source and each bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _enum(field: str, value: Any, default: str | None = None) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    mapped, known = map_enum(field, str(value))
    if not known:
        choices = ", ".join(sorted(set(ENUMS[field].values())))
        raise ValueError(f"unknown {field.replace('_', ' ')} {value!r} (use one of {choices})")
    return mapped


class InterventionDraft(_Strict):
    name: str = Field(min_length=1)
    type: str = "DRUG"
    dose: str | None = None  # free text: "10 mg once daily"
    description: str | None = None
    other_names: list[str] = Field(default_factory=list)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str | None:
        return _enum("intervention_type", v, "OTHER")


class ArmDraft(_Strict):
    label: str = Field(min_length=1)
    type: str = Field(description="EXPERIMENTAL | ACTIVE_COMPARATOR | PLACEBO_COMPARATOR | SHAM_COMPARATOR | "
                                  "NO_INTERVENTION | OTHER")
    description: str | None = None
    interventions: list[InterventionDraft] = Field(default_factory=list)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str | None:
        if v is None or not str(v).strip():
            raise ValueError("an arm type is required (e.g. EXPERIMENTAL, PLACEBO_COMPARATOR)")
        return _enum("arm_type", v)


class OutcomeDraft(_Strict):
    measure: str = Field(min_length=1)
    description: str | None = None
    time_frame: str | None = None
    type: Literal["primary", "secondary"] = "primary"

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str:
        return str(v or "primary").strip().lower()


class TrialDesign(_Strict):
    """A trial as registered or drafted: what a prediction may read. No results field exists here."""

    nct_id: str = "DRAFT"
    title: str = Field(min_length=1)
    conditions: list[str] = Field(default_factory=list)
    phase: list[str] = Field(default_factory=list)  # API v2 values: PHASE2, PHASE3 ... ("Phase 2/Phase 3" accepted)
    enrollment: int | None = Field(default=None, ge=1)
    countries: list[str] = Field(default_factory=list)
    arms: list[ArmDraft] = Field(min_length=1)
    outcomes: list[OutcomeDraft] = Field(min_length=1)
    # optional context the imagination pathway uses (population, design)
    sex: str | None = None
    minimum_age: str | None = None
    maximum_age: str | None = None
    healthy_volunteers: bool | None = None
    eligibility_criteria: str | None = None
    allocation: str | None = None
    masking: str | None = None
    source: str = Field(default="draft", exclude=True)  # where the design was read from (for the report)

    @field_validator("conditions", "countries", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else (v or [])

    @field_validator("phase", mode="before")
    @classmethod
    def _phase(cls, v: Any) -> list[str]:
        if v is None or v == "" or v == []:
            return []
        raw = tuple(str(p) for p in v) if isinstance(v, (list, tuple)) else (str(v),)
        phases, known = map_phases(raw if len(raw) > 1 else raw[0])
        if not known:
            raise ValueError(f"unknown phase {v!r} (use e.g. PHASE2, 'Phase 2/Phase 3', NA)")
        return list(phases)

    @field_validator("sex", "allocation", "masking", mode="before")
    @classmethod
    def _enums(cls, v: Any, info) -> str | None:
        return _enum(info.field_name, v)

    @model_validator(mode="after")
    def _unique_labels(self) -> "TrialDesign":
        seen: set[str] = set()
        for i, arm in enumerate(self.arms):
            if arm.label in seen:
                raise ValueError(f"arms[{i}].label: {arm.label!r} is used by another arm; arm labels must be unique")
            seen.add(arm.label)
        return self

    # ---- the shapes questions and predictors use ------------------------------------------------------------------
    def arms_json(self) -> list[dict[str, Any]]:
        """The arms as API v2 armGroups (CT Open's `arms`); a dose goes into its intervention's description."""
        out = []
        for arm in self.arms:
            ivs = [{"type": iv.type, "name": iv.name, "otherNames": list(iv.other_names),
                    "description": "; ".join(t for t in (iv.dose, iv.description) if t) or None}
                   for iv in arm.interventions]
            description = arm.description or "; ".join(
                " ".join(t for t in (iv.name, iv.dose) if t) for iv in arm.interventions) or None
            out.append({"label": arm.label, "type": arm.type, "description": description,
                        "interventionNames": [f"{_title(iv.type)}: {iv.name}" for iv in arm.interventions],
                        "interventions": ivs})
        return out

    def trial_row(self) -> dict[str, Any]:
        """The `trials` columns the imagination pathway reads for a target (population, geography, design)."""
        return {"nct_id": self.nct_id, "brief_title": self.title, "conditions": list(self.conditions),
                "phases": list(self.phase), "enrollment": self.enrollment, "countries": list(self.countries),
                "sex": self.sex, "minimum_age": self.minimum_age, "maximum_age": self.maximum_age,
                "healthy_volunteers": self.healthy_volunteers, "eligibility_criteria": self.eligibility_criteria,
                "allocation": self.allocation, "masking": self.masking}


def _title(intervention_type: str) -> str:
    return intervention_type.replace("_", " ").title()


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate_design(data: Any, where: str) -> TrialDesign:
    """A `TrialDesign` from a dict, or `DesignError` listing every bad field as `path: problem`."""
    if not isinstance(data, dict):
        raise DesignError(f"{where}: a trial draft is a mapping of fields (title, arms, outcomes ...), "
                          f"not a {type(data).__name__}")
    try:
        return TrialDesign.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (check its spelling; see deepimagine_core.predict.design.TrialDesign)"
            problems.append(f"{_field_path(err['loc'])}: {msg}")
        raise DesignError(f"{where}: invalid trial design:\n  - " + "\n  - ".join(problems)) from None


def load_draft(path: str | Path) -> TrialDesign:
    """A YAML draft file → `TrialDesign` (validated)."""
    path = Path(path)
    return draft_from_text(path.read_text(encoding="utf-8"), str(path))


def draft_from_text(text: str, where: str = "draft") -> TrialDesign:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DesignError(f"{where}: not valid YAML ({exc})") from None
    design = validate_design(data, where)
    design.source = where
    return design


# ---- API v2 registrations -------------------------------------------------------------------------------------------


def registered_enrollment(count: Any) -> int | None:
    """A registry's enrollment as a design's: a positive whole number, else unknown (0 or missing is no size)."""
    try:
        return int(count) if count is not None and int(count) >= 1 else None
    except (TypeError, ValueError):
        return None


def strip_results(study: dict[str, Any]) -> dict[str, Any]:
    """Only the registration (`protocolSection`) of an API v2 study; results and every other section are dropped."""
    if not isinstance(study, dict) or not isinstance(study.get(REGISTRATION_SECTION), dict):
        raise DesignError("not a ClinicalTrials.gov API v2 study: no protocolSection")
    return {REGISTRATION_SECTION: study[REGISTRATION_SECTION]}


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _items(obj: Any) -> list[dict]:
    return [x for x in obj if isinstance(x, dict)] if isinstance(obj, list) else []


def design_from_registration(study: dict[str, Any], where: str = "registration") -> TrialDesign:
    """An API v2 study (results, if present, are stripped first and never read) → `TrialDesign`."""
    protocol = strip_results(study)[REGISTRATION_SECTION]
    arms_module = protocol.get("armsInterventionsModule") or {}
    by_arm: dict[str, list[dict]] = {}
    for iv in _items(arms_module.get("interventions")):
        for label in iv.get("armGroupLabels") or []:
            if not iv.get("name"):
                continue
            by_arm.setdefault(label, []).append({"name": iv.get("name"), "type": iv.get("type"),
                                                 "description": iv.get("description"),
                                                 "other_names": iv.get("otherNames") or []})
    arms = [{"label": a.get("label"), "type": a.get("type") or "OTHER", "description": a.get("description"),
             "interventions": by_arm.get(a.get("label"), [])} for a in _items(arms_module.get("armGroups"))
            if a.get("label")]
    outcomes = [{"measure": o.get("measure"), "description": o.get("description"), "time_frame": o.get("timeFrame"),
                 "type": kind}
                for kind, key in (("primary", "primaryOutcomes"), ("secondary", "secondaryOutcomes"))
                for o in _items(_get(protocol, "outcomesModule", key)) if o.get("measure")]
    elig = protocol.get("eligibilityModule") or {}
    locations = _items(_get(protocol, "contactsLocationsModule", "locations"))
    data = {
        "nct_id": _get(protocol, "identificationModule", "nctId") or "DRAFT",
        "title": (_get(protocol, "identificationModule", "briefTitle")
                  or _get(protocol, "identificationModule", "officialTitle")),
        "conditions": _get(protocol, "conditionsModule", "conditions") or [],
        "phase": [p for p in _get(protocol, "designModule", "phases") or [] if p != "NA"],
        "enrollment": registered_enrollment(_get(protocol, "designModule", "enrollmentInfo", "count")),
        "countries": sorted({c for c in (loc.get("country") for loc in locations) if c}),
        "arms": arms, "outcomes": outcomes,
        "sex": elig.get("sex"), "minimum_age": elig.get("minimumAge"), "maximum_age": elig.get("maximumAge"),
        "healthy_volunteers": elig.get("healthyVolunteers"), "eligibility_criteria": elig.get("eligibilityCriteria"),
        "allocation": _get(protocol, "designModule", "designInfo", "allocation"),
        "masking": _get(protocol, "designModule", "designInfo", "maskingInfo", "masking"),
    }
    design = validate_design(data, where)
    design.source = where
    return design


def load_registration(path: str | Path) -> TrialDesign:
    """A file holding one API v2 study as JSON (or a `{"studies": [study]}` page) → `TrialDesign`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DesignError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("studies"), list):
        if len(data["studies"]) != 1:
            raise DesignError(f"{path}: a page of {len(data['studies'])} studies; give one study")
        data = data["studies"][0]
    return design_from_registration(data, str(path))
