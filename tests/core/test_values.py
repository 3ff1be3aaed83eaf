"""Tolerant value parsers and enum mapping: known spellings, bad input, and never raising on arbitrary text."""

import datetime as dt
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepimagine_core.ctgov.enums import map_enum, map_phases, normalise_enum
from deepimagine_core.ctgov.values import (
    is_missing,
    parse_age_years,
    parse_date,
    parse_number,
    parse_number_relation,
    parse_p_value,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("12.5", 12.5), (" -3 ", -3.0), ("1,234", 1234.0), ("1,234,567.5", 1234567.5), ("0,5", 0.5), ("-0,733", -0.733),
        ("1e3", 1000.0), ("1.2 x 10^-3", 0.0012),
        ("NA", None), ("NR", None), ("N/A", None), ("", None), ("—", None), ("–", None), (None, None),
        ("<5", None), ("≤ 5", None), ("abc", None), ("45,", None), ("12,5", None), ("nan", None), ("inf", None),
        ("1_000", None), ("5 10", None),
    ],
)
def test_parse_number(raw, expected):
    assert parse_number(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("≤ 5", (5.0, "<=")), ("<5", (5.0, "<")), ("5", (5.0, "=")), (">= 2.5", (2.5, ">=")), ("=< 3", (3.0, "<=")),
        ("≥10", (10.0, ">=")), ("> 1,234", (1234.0, ">")), ("NA", None), ("< abc", None), (None, None),
    ],
)
def test_parse_number_relation(raw, expected):
    assert parse_number_relation(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("0.006", (0.006, "=")), ("<0.001", (0.001, "<")), ("< 0.0001", (0.0001, "<")), ("≤ 0.05", (0.05, "<=")),
        ("p<.0001", (0.0001, "<")), ("P = 0.03", (0.03, "=")), ("p-value: 0.04", (0.04, "=")), ("0,03", (0.03, "=")),
        ("=1.000", (1.0, "=")), (">0.999", (0.999, ">")), (">=.805", (0.805, ">=")), ("0", (0.0, "=")),
        ("1.2E-5", (1.2e-5, "=")), ("1.2 x 10^-5", (1.2e-5, "=")),
        ("NS", None), ("1.3", None), ("-0.06", None), ("<05", None), ("<-0.001", None), ("", None), (None, None),
        ("significant", None),
    ],
)
def test_parse_p_value(raw, expected):
    assert parse_p_value(raw) == expected


def test_missing_markers_are_not_failures():
    assert is_missing("NA") and is_missing(" n/a ") and is_missing(None) and is_missing("NS")
    assert not is_missing("abc") and not is_missing("1.3")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2010-10-28", dt.date(2010, 10, 28)), ("2010-10", dt.date(2010, 10, 1)),
        ("April 13, 2016", dt.date(2016, 4, 13)), ("April 2016", dt.date(2016, 4, 1)),
        ("Sept 2016", dt.date(2016, 9, 1)),
        ("2016-02-30", None), ("Smarch 2016", None), ("soon", None), ("", None), (None, None),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [("18 Years", 18.0), ("6 Months", 0.5), ("1 Year", 1.0), ("N/A", None), ("", None), ("eighteen", None)],
)
def test_parse_age_years(raw, expected):
    assert parse_age_years(raw) == expected


def test_parse_age_weeks_and_days():
    assert math.isclose(parse_age_years("2 Weeks"), 14 / 365.25)
    assert math.isclose(parse_age_years("30 Days"), 30 / 365.25)


@pytest.mark.parametrize(
    "field, raw, expected",
    [
        ("arm_type", "Placebo Comparator", "PLACEBO_COMPARATOR"),
        ("arm_type", "PLACEBO_COMPARATOR", "PLACEBO_COMPARATOR"),
        ("masking", "Double Blind (Subject, Investigator)", "DOUBLE"),
        ("masking", "Double Blind (Subject, Caregiver, Investigator, Outcomes Assessor)", "QUADRUPLE"),
        ("masking", "Single Blind (Outcomes Assessor)", "SINGLE"),
        ("masking", "Open Label", "NONE"),
        ("masking", "None (Open Label)", "NONE"),
        ("masking", "Double-Blind", "DOUBLE"),
        ("masking", "QUADRUPLE", "QUADRUPLE"),
        ("allocation", "Non-Randomized", "NON_RANDOMIZED"),
        ("allocation", "N/A", "NA"),
        ("intervention_model", "Parallel Assignment", "PARALLEL"),
        ("primary_purpose", "Basic Science", "BASIC_SCIENCE"),
        ("primary_purpose", "Educational/Counseling/Training", "ECT"),
        ("overall_status", "Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("study_type", "Observational [Patient Registry]", "OBSERVATIONAL"),
        ("enrollment_type", "Anticipated", "ESTIMATED"),
        ("sponsor_class", "U.S. Fed", "FED"),
        ("sponsor_class", "NIH", "NIH"),
        ("sponsor_class", "Industry", "INDUSTRY"),
        ("sponsor_class", "Other", "OTHER"),
        ("sex", "Both", "ALL"),
        ("intervention_type", "Dietary Supplement", "DIETARY_SUPPLEMENT"),
        ("outcome_type", "Primary", "PRIMARY"),
        ("outcome_type", "Other Pre-specified", "OTHER_PRE_SPECIFIED"),
        ("outcome_type", "Post-Hoc", "POST_HOC"),
        ("param_type", "Least Squares Mean", "LEAST_SQUARES_MEAN"),
        ("param_type", "Number", "NUMBER"),
        ("param_type", "Count of Participants", "COUNT_OF_PARTICIPANTS"),
        ("dispersion_type", "Standard Deviation", "STANDARD_DEVIATION"),
        ("dispersion_type", "95% Confidence Interval", "CONFIDENCE_95"),  # API v2 MeasureDispersionType spellings
        ("dispersion_type", "97.5% Confidence Interval", "CONFIDENCE_975"),
        ("dispersion_type", "CONFIDENCE_975", "CONFIDENCE_975"),
        ("dispersion_type", "Geometric Coefficient of Variation", "GEOMETRIC_COEFFICIENT"),
        ("dispersion_type", "Inter-Quartile Range", "INTER_QUARTILE_RANGE"),
        ("non_inferiority_type", "No", "SUPERIORITY_OR_OTHER"),
        ("non_inferiority_type", "Yes", "NON_INFERIORITY_OR_EQUIVALENCE"),
        ("non_inferiority_type", "Non-Inferiority or Equivalence (legacy)", "NON_INFERIORITY_OR_EQUIVALENCE_LEGACY"),
        ("non_inferiority_type", "Superiority", "SUPERIORITY"),
        ("ci_n_sides", "2-Sided", "TWO_SIDED"),
        ("ci_n_sides", "1-Sided", "ONE_SIDED"),
    ],
)
def test_map_enum_known(field, raw, expected):
    assert map_enum(field, raw) == (expected, True)


def test_map_enum_unknown_is_kept_upper_snake():
    assert map_enum("arm_type", "Weird Comparator!") == ("WEIRD_COMPARATOR", False)
    assert map_enum("masking", "Blindfolded") == ("BLINDFOLDED", False)
    assert map_enum("sex", None) == (None, True)
    assert normalise_enum("Other Pre-specified") == "OTHER_PRE_SPECIFIED"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Phase 1/Phase 2", (("PHASE1", "PHASE2"), True)),
        ("Phase 2/Phase 3", (("PHASE2", "PHASE3"), True)),
        ("N/A", ((), True)),
        ("Phase 0", (("EARLY_PHASE1",), True)),
        ("Early Phase 1", (("EARLY_PHASE1",), True)),
        (("PHASE1", "PHASE2"), (("PHASE1", "PHASE2"), True)),
        (("NA",), ((), True)),
        ("Phase 7", (("PHASE_7",), False)),
    ],
)
def test_map_phases(raw, expected):
    assert map_phases(raw) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_value_parsers_never_raise(text):
    x = parse_number(text)
    assert x is None or math.isfinite(x)
    bounded = parse_number_relation(text)
    assert bounded is None or (math.isfinite(bounded[0]) and bounded[1] in {"=", "<", "<=", ">", ">="})
    p = parse_p_value(text)
    assert p is None or (0.0 <= p[0] <= 1.0 and p[1] in {"=", "<", "<=", ">", ">="})
    parse_date(text)
    parse_age_years(text)
    value, _ = map_enum("masking", text)
    assert value is None or value == value.upper()


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"\s*(p\s*)?(<|<=|≤|>|>=|=)?\s*[0-9.,]{1,8}\s*", fullmatch=True))
def test_p_value_like_text_stays_in_range(text):
    p = parse_p_value(text)
    assert p is None or 0.0 <= p[0] <= 1.0
