"""Normalised Arrow schemas of the trial tables.

Every source format (API v2 JSON, legacy XML) is parsed into rows of exactly these columns, so downstream code never
knows where a study came from. Enumerations use the API v2 spelling (``PHASE2``, ``RANDOMIZED``, ``PLACEBO_COMPARATOR``);
legacy values are mapped onto it (see ``deepimagine_core.ctgov.enums``). Values that cannot be parsed stay null and
their raw text is kept beside them (``*_raw`` columns); nothing is guessed.

Keys: ``trials`` is keyed by ``nct_id``; every child table carries ``nct_id`` plus the indices listed in ``KEYS``.
"""

from __future__ import annotations

import pyarrow as pa

from deepimagine_core.tables import (
    ARM_GROUPS_TABLE, INTERVENTIONS_TABLE, LOCATIONS_TABLE, OUTCOME_ANALYSES_TABLE, OUTCOME_GROUPS_TABLE,
    OUTCOME_MEASURES_TABLE, OUTCOME_RESULTS_TABLE, QUARANTINE_TABLE, TRIALS_TABLE,
)

_str = pa.string()
_f64 = pa.float64()
_i64 = pa.int64()
_lstr = pa.list_(pa.string())
_lf64 = pa.list_(pa.float64())
_date = pa.date32()


def _schema(*fields: tuple, doc: str) -> pa.Schema:
    return pa.schema([pa.field(name, typ, nullable=True) for name, typ in fields], metadata={"doc": doc})


TRIALS = _schema(
    ("nct_id", _str),
    ("brief_title", _str),
    ("official_title", _str),
    ("acronym", _str),
    ("brief_summary", _str),
    ("phases", _lstr),  # e.g. ["PHASE1", "PHASE2"]; [] when N/A
    ("overall_status", _str),  # COMPLETED, TERMINATED, ...
    ("why_stopped", _str),
    ("study_type", _str),  # INTERVENTIONAL, OBSERVATIONAL, ...
    ("allocation", _str),  # RANDOMIZED, NON_RANDOMIZED, NA
    ("intervention_model", _str),  # PARALLEL, CROSSOVER, SINGLE_GROUP, ...
    ("masking", _str),  # NONE, SINGLE, DOUBLE, TRIPLE, QUADRUPLE
    ("primary_purpose", _str),  # TREATMENT, PREVENTION, ...
    ("enrollment", _i64),
    ("enrollment_type", _str),  # ACTUAL, ESTIMATED
    ("conditions", _lstr),
    ("keywords", _lstr),
    ("start_date", _date),
    ("primary_completion_date", _date),
    ("completion_date", _date),
    ("study_first_posted", _date),
    ("results_first_posted", _date),
    ("last_update_posted", _date),
    ("lead_sponsor", _str),
    ("sponsor_class", _str),  # INDUSTRY, NIH, FED, OTHER_GOV, OTHER, ...
    ("eligibility_criteria", _str),
    ("sex", _str),  # ALL, FEMALE, MALE
    ("minimum_age", _str),  # raw, e.g. "18 Years"
    ("maximum_age", _str),
    ("minimum_age_years", _f64),
    ("maximum_age_years", _f64),
    ("healthy_volunteers", pa.bool_()),
    ("countries", _lstr),
    ("n_arms", _i64),
    ("source_format", _str),  # "api_v2_json" | "legacy_xml"
    ("source_ref", _str),  # where the record was read: file, archive member, or API page
    doc="One row per study.",
)

ARM_GROUPS = _schema(
    ("nct_id", _str),
    ("arm_index", _i64),
    ("label", _str),
    ("type", _str),  # EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, SHAM_COMPARATOR, NO_INTERVENTION, OTHER
    ("description", _str),
    ("intervention_names", _lstr),  # "Drug: Tacrolimus"
    doc="One row per arm group of a study's protocol.",
)

# Dose columns shared by `interventions` and `outcome_groups`.
DOSE_FIELDS = (
    ("dose_values", _lf64),  # every number of the dose expression, e.g. [0.5] for "0.5 mg/kg"; null when none stated
    ("dose_unit", _str),  # normalised unit: "mg", "mg/kg", "mcg", "IU", "mL", "%", "Gy", ...
    ("dose_frequency", _str),  # normalised: QD, BID, TID, QID, QW, Q2W, Q3W, Q4W, QM, ONCE, ... when stated
    ("dose_route", _str),  # ORAL, IV, SC, IM, TOPICAL, INHALED, INTRANASAL, ... when stated
    ("dose_text", _str),  # the text span the dose was read from
    ("dose_source", _str),  # arm_label | arm_description | intervention_name | intervention_description | group_title | group_description
)

INTERVENTIONS = _schema(
    ("nct_id", _str),
    ("intervention_index", _i64),
    ("arm_label", _str),  # one row per (intervention, arm) link; null when the intervention names no arm
    ("type", _str),  # DRUG, BIOLOGICAL, DEVICE, PROCEDURE, BEHAVIORAL, ...
    ("name", _str),
    ("description", _str),
    ("other_names", _lstr),
    *DOSE_FIELDS,
    doc="One row per intervention and arm it belongs to, with the dose parsed from the most specific text stating it.",
)

OUTCOME_MEASURES = _schema(
    ("nct_id", _str),
    ("outcome_index", _i64),
    ("type", _str),  # PRIMARY, SECONDARY, OTHER_PRE_SPECIFIED, POST_HOC
    ("title", _str),
    ("description", _str),
    ("time_frame", _str),
    ("population", _str),
    ("param_type", _str),  # MEAN, MEDIAN, NUMBER, COUNT_OF_PARTICIPANTS, LEAST_SQUARES_MEAN, GEOMETRIC_MEAN, ...
    ("dispersion_type", _str),  # API v2 MeasureDispersionType: STANDARD_DEVIATION, CONFIDENCE_95, CONFIDENCE_975 ...
    ("unit", _str),
    ("n_groups", _i64),
    ("n_analyses", _i64),
    ("reporting_status", _str),  # POSTED | NOT_POSTED (data not posted: no result rows); legacy XML: by its measures
    doc="One row per outcome measure (kept when its data were not posted: it then has no result rows).",
)

OUTCOME_GROUPS = _schema(
    ("nct_id", _str),
    ("outcome_index", _i64),
    ("group_id", _str),  # as in the source: OG000 (v2) or O1 (legacy)
    ("group_index", _i64),
    ("title", _str),
    ("description", _str),
    ("arm_label", _str),  # the protocol arm this result group maps to, null when none maps
    ("arm_match_method", _str),  # exact|normalised|contained|tokens|single_arm|evidence|elimination|position (arm_match)
    ("participants_analyzed", _i64),
    *DOSE_FIELDS,
    doc="One row per result group of an outcome measure.",
)

OUTCOME_RESULTS = _schema(
    ("nct_id", _str),
    ("outcome_index", _i64),
    ("group_id", _str),
    ("class_index", _i64),
    ("class_title", _str),
    ("category_index", _i64),
    ("category_title", _str),
    ("value", _f64),
    ("value_raw", _str),
    ("spread", _f64),
    ("spread_raw", _str),
    ("lower_limit", _f64),
    ("upper_limit", _f64),
    ("participants_analyzed", _i64),
    doc="One row per outcome x group x class x category measurement.",
)

OUTCOME_ANALYSES = _schema(
    ("nct_id", _str),
    ("outcome_index", _i64),
    ("analysis_index", _i64),
    ("group_ids", _lstr),
    ("groups_description", _str),
    ("non_inferiority_type", _str),  # SUPERIORITY, SUPERIORITY_OR_OTHER, NON_INFERIORITY, EQUIVALENCE, NON_INFERIORITY_OR_EQUIVALENCE, OTHER, ...
    ("p_value", _f64),  # "<0.001" -> 0.001 with relation "<"
    ("p_value_raw", _str),
    ("p_value_relation", _str),  # "=", "<", "<=", ">", ">="
    ("p_value_comment", _str),
    ("method", _str),
    ("param_type", _str),
    ("param_value", _f64),
    ("param_value_raw", _str),
    ("ci_pct", _f64),
    ("ci_n_sides", _str),  # ONE_SIDED, TWO_SIDED
    ("ci_lower", _f64),
    ("ci_upper", _f64),
    ("estimate_comment", _str),
    doc="One row per statistical analysis of an outcome measure.",
)

LOCATIONS = _schema(
    ("nct_id", _str),
    ("location_index", _i64),
    ("facility", _str),
    ("city", _str),
    ("state", _str),
    ("zip", _str),
    ("country", _str),
    doc="One row per study site.",
)

QUARANTINE = _schema(
    ("source_ref", _str),
    ("nct_id", _str),  # null when it could not be read
    ("source_format", _str),
    ("stage", _str),  # read | parse | validate | value
    ("level", _str),  # record: the whole study was rejected; field: one value was dropped (the study is kept)
    ("reason", _str),
    doc="Records (or single values) that could not be used, with where and why. studies read = trials + record-level rows.",
)

TABLES: dict[str, pa.Schema] = {
    TRIALS_TABLE: TRIALS,
    ARM_GROUPS_TABLE: ARM_GROUPS,
    INTERVENTIONS_TABLE: INTERVENTIONS,
    OUTCOME_MEASURES_TABLE: OUTCOME_MEASURES,
    OUTCOME_GROUPS_TABLE: OUTCOME_GROUPS,
    OUTCOME_RESULTS_TABLE: OUTCOME_RESULTS,
    OUTCOME_ANALYSES_TABLE: OUTCOME_ANALYSES,
    LOCATIONS_TABLE: LOCATIONS,
    QUARANTINE_TABLE: QUARANTINE,
}

#: Unique key of each table (quarantine has none).
KEYS: dict[str, tuple[str, ...]] = {
    TRIALS_TABLE: ("nct_id",),
    ARM_GROUPS_TABLE: ("nct_id", "arm_index"),
    INTERVENTIONS_TABLE: ("nct_id", "intervention_index", "arm_label"),
    OUTCOME_MEASURES_TABLE: ("nct_id", "outcome_index"),
    OUTCOME_GROUPS_TABLE: ("nct_id", "outcome_index", "group_id"),
    OUTCOME_RESULTS_TABLE: ("nct_id", "outcome_index", "group_id", "class_index", "category_index"),
    OUTCOME_ANALYSES_TABLE: ("nct_id", "outcome_index", "analysis_index"),
    LOCATIONS_TABLE: ("nct_id", "location_index"),
}

CHILD_TABLES = tuple(name for name in TABLES if name not in (TRIALS_TABLE, QUARANTINE_TABLE))


def empty_rows() -> dict[str, list[dict]]:
    """A fresh container of rows per table, as the parsers return them."""
    return {name: [] for name in TABLES}
