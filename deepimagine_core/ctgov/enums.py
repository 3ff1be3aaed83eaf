"""Enumerated values in the ClinicalTrials.gov API v2 spelling, whatever the source format.

Legacy XML writes "Placebo Comparator", "Phase 1/Phase 2", "Double Blind (Subject, Investigator)", "U.S. Fed";
API v2 writes PLACEBO_COMPARATOR, ["PHASE1", "PHASE2"], DOUBLE, FED. `map_enum(field, raw)` maps either onto the v2
spelling and says whether the value was known. An unknown value is never dropped and never crashes a parse: it is
kept upper-snake-cased (`normalise_enum`) and the parser records a field issue "unknown <field> value '<raw>'".
"""

from __future__ import annotations

import re
from functools import lru_cache

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def normalise_enum(raw: str) -> str:
    """Upper snake case: "Other Pre-specified" -> "OTHER_PRE_SPECIFIED", "U.S. Fed" -> "U_S_FED"."""
    return _NON_ALNUM.sub("_", raw).strip("_").upper()


def _known(*values: str, **aliases: str) -> dict[str, str]:
    """Canonical values (mapped to themselves) plus legacy aliases, keyed by their normalised spelling."""
    table = {v: v for v in values}
    table.update(aliases)
    return table


# field -> {normalised raw spelling -> API v2 value}
ENUMS: dict[str, dict[str, str]] = {
    "overall_status": _known(
        "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING", "RECRUITING",
        "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
        UNKNOWN_STATUS="UNKNOWN",
    ),
    "study_type": _known(
        "INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS",
        OBSERVATIONAL_PATIENT_REGISTRY="OBSERVATIONAL",
    ),
    "allocation": _known("RANDOMIZED", "NON_RANDOMIZED", "NA", N_A="NA", RANDOMISED="RANDOMIZED"),
    "intervention_model": _known(
        "SINGLE_GROUP", "PARALLEL", "CROSSOVER", "FACTORIAL", "SEQUENTIAL",
        SINGLE_GROUP_ASSIGNMENT="SINGLE_GROUP", PARALLEL_ASSIGNMENT="PARALLEL", CROSSOVER_ASSIGNMENT="CROSSOVER",
        FACTORIAL_ASSIGNMENT="FACTORIAL", SEQUENTIAL_ASSIGNMENT="SEQUENTIAL",
    ),
    "masking": _known(
        "NONE", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE",
        OPEN_LABEL="NONE", NONE_OPEN_LABEL="NONE", SINGLE_BLIND="SINGLE", DOUBLE_BLIND="DOUBLE",
    ),
    "primary_purpose": _known(
        "TREATMENT", "PREVENTION", "DIAGNOSTIC", "ECT", "SUPPORTIVE_CARE", "SCREENING", "HEALTH_SERVICES_RESEARCH",
        "BASIC_SCIENCE", "DEVICE_FEASIBILITY", "OTHER",
        EDUCATIONAL_COUNSELING_TRAINING="ECT",
    ),
    "enrollment_type": _known("ACTUAL", "ESTIMATED", ANTICIPATED="ESTIMATED"),
    "sponsor_class": _known(
        "NIH", "FED", "OTHER_GOV", "INDIV", "INDUSTRY", "NETWORK", "AMBIG", "OTHER", "UNKNOWN",
        U_S_FED="FED", US_FED="FED",
    ),
    "sex": _known("ALL", "FEMALE", "MALE", BOTH="ALL"),
    "arm_type": _known(
        "EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION", "OTHER",
    ),
    "intervention_type": _known(
        "BEHAVIORAL", "BIOLOGICAL", "COMBINATION_PRODUCT", "DEVICE", "DIAGNOSTIC_TEST", "DIETARY_SUPPLEMENT", "DRUG",
        "GENETIC", "PROCEDURE", "RADIATION", "OTHER",
        PROCEDURE_SURGERY="PROCEDURE", BEHAVIOURAL="BEHAVIORAL",
    ),
    "outcome_type": _known("PRIMARY", "SECONDARY", "OTHER_PRE_SPECIFIED", "POST_HOC", OTHER="OTHER_PRE_SPECIFIED"),
    "param_type": _known(
        "GEOMETRIC_MEAN", "GEOMETRIC_LEAST_SQUARES_MEAN", "LEAST_SQUARES_MEAN", "LOG_MEAN", "MEAN", "MEDIAN",
        "NUMBER", "COUNT_OF_PARTICIPANTS", "COUNT_OF_UNITS",
    ),
    # MeasureDispersionType of the API v2 spec; legacy display labels ("Geometric Coefficient of Variation", "Other
    # Confidence Interval Level") map onto it, and "<pct>% Confidence Interval" through `_confidence` below
    "dispersion_type": _known(
        "NA", "STANDARD_DEVIATION", "STANDARD_ERROR", "INTER_QUARTILE_RANGE", "FULL_RANGE", "CONFIDENCE_80",
        "CONFIDENCE_90", "CONFIDENCE_95", "CONFIDENCE_975", "CONFIDENCE_99", "CONFIDENCE_OTHER",
        "GEOMETRIC_COEFFICIENT",
        GEOMETRIC_COEFFICIENT_OF_VARIATION="GEOMETRIC_COEFFICIENT", INTERQUARTILE_RANGE="INTER_QUARTILE_RANGE",
        STANDARD_ERROR_OF_MEAN="STANDARD_ERROR", OTHER_CONFIDENCE_INTERVAL_LEVEL="CONFIDENCE_OTHER",
        OTHER_CONFIDENCE_INTERVAL="CONFIDENCE_OTHER",
    ),
    "reporting_status": _known("POSTED", "NOT_POSTED"),  # ReportingStatus of an outcome measure
    "non_inferiority_type": _known(
        "SUPERIORITY", "NON_INFERIORITY", "EQUIVALENCE", "OTHER", "NON_INFERIORITY_OR_EQUIVALENCE",
        "SUPERIORITY_OR_OTHER", "NON_INFERIORITY_OR_EQUIVALENCE_LEGACY", "SUPERIORITY_OR_OTHER_LEGACY",
        # legacy <non_inferiority>Yes|No</non_inferiority> (before <non_inferiority_type> existed)
        NO="SUPERIORITY_OR_OTHER", YES="NON_INFERIORITY_OR_EQUIVALENCE",
    ),
    "ci_n_sides": _known("ONE_SIDED", "TWO_SIDED", **{"1_SIDED": "ONE_SIDED", "2_SIDED": "TWO_SIDED"}),
}

# "95% Confidence Interval" (legacy XML, and some v2 JSON as served); the v2 enum values (CONFIDENCE_95) are in ENUMS
_CI = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*%?\s*CONFIDENCE[\s_]*INTERVAL\s*$", re.IGNORECASE)
_CI_LEVELS = {80.0: "CONFIDENCE_80", 90.0: "CONFIDENCE_90", 95.0: "CONFIDENCE_95", 97.5: "CONFIDENCE_975",
              99.0: "CONFIDENCE_99"}
_MASK_PARTIES = re.compile(r"\(([^)]*)\)")
_MASK_BY_COUNT = {1: "SINGLE", 2: "DOUBLE", 3: "TRIPLE", 4: "QUADRUPLE"}
_PHASES = {"0": "EARLY_PHASE1", "EARLY_1": "EARLY_PHASE1", "1": "PHASE1", "2": "PHASE2", "3": "PHASE3", "4": "PHASE4"}
_PHASE_TOKEN = re.compile(r"(early[\s_]*)?phase[\s_]*([0-4])|\b(n/?a)\b", re.IGNORECASE)


@lru_cache(maxsize=4096)
def map_enum(field: str, raw: str | None) -> tuple[str | None, bool]:
    """(API v2 value, known). None/blank -> (None, True); an unknown value -> (normalise_enum(raw), False)."""
    if raw is None or not raw.strip():
        return None, True
    key = normalise_enum(raw)
    if field == "dispersion_type":
        m = _CI.match(raw)
        if m:  # a level the spec has no value for (e.g. 84%) is CONFIDENCE_OTHER, as the spec defines it
            return _CI_LEVELS.get(float(m.group(1).replace(",", ".")), "CONFIDENCE_OTHER"), True
    elif field == "masking":
        return _masking(raw, key)
    value = ENUMS[field].get(key)
    return (value, True) if value is not None else (key, False)


def _masking(raw: str, key: str) -> tuple[str, bool]:
    """Masking by the number of masked roles when they are listed, as the v2 values are defined (SINGLE..QUADRUPLE =
    one to four masked roles), so legacy "Double Blind (Subject, Caregiver, Investigator)" is TRIPLE; else by the
    word: "Double-Blind" -> DOUBLE, "Open Label" -> NONE."""
    m = _MASK_PARTIES.search(raw)
    if m and not key.startswith(("NONE", "OPEN")):
        parties = [p for p in m.group(1).split(",") if p.strip()]
        if parties and len(parties) in _MASK_BY_COUNT:
            return _MASK_BY_COUNT[len(parties)], True
    key = _NON_ALNUM.sub("_", raw.split("(")[0]).strip("_").upper() if m else key
    value = ENUMS["masking"].get(key)
    return (value, True) if value is not None else (normalise_enum(raw), False)


@lru_cache(maxsize=256)
def map_phases(raw: str | tuple[str, ...] | None) -> tuple[tuple[str, ...], bool]:
    """Phases as a tuple of v2 values: "Phase 1/Phase 2" -> ("PHASE1", "PHASE2"); "N/A" or ["NA"] -> ();
    "Phase 0" / "Early Phase 1" -> ("EARLY_PHASE1",). The flag is False when some part was not understood."""
    if raw is None:
        return (), True
    parts = (raw,) if isinstance(raw, str) else raw
    phases: list[str] = []
    known = True
    for part in parts:
        key = normalise_enum(part)
        if not key or key in ("NA", "N_A"):
            continue
        if key in ("EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"):
            phases.append(key)
            continue
        matches = list(_PHASE_TOKEN.finditer(part))
        if not matches or _PHASE_TOKEN.sub("", part).strip(" /,&-") != "":
            phases.append(key)
            known = False
            continue
        for m in matches:
            if m.group(3):
                continue
            phases.append(_PHASES["EARLY_1" if m.group(1) else m.group(2)])
    return tuple(dict.fromkeys(phases)), known
