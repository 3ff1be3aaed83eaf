"""Dose parsing from arm labels, intervention names/descriptions and result-group titles (all texts seen in real
records); what states no dose stays None."""

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deepimagine_core.ctgov.doses import dose_for, parse_dose


@pytest.mark.parametrize(
    "text, values, unit, frequency, route",
    [
        ("Avanafil 100 mg", (100.0,), "mg", None, None),
        ("0.5 mg/kg IV q2w", (0.5,), "mg/kg", "Q2W", "IV"),
        ("10 mg twice daily", (10.0,), "mg", "BID", None),
        ("1x10^9 cells", (1e9,), "cells", None, None),
        ("3 x 10⁹ vp", (3e9,), "vp", None, None),
        ("10^8 PFU", (1e8,), "PFU", None, None),
        ("5-10 mg", (5.0, 10.0), "mg", None, None),
        ("2.5 mg/5 mg", (2.5, 5.0), "mg", None, None),
        ("Fluticasone Furoate/ Vilanterol 200/25 mcg", (200.0, 25.0), "mcg", None, None),
        ("Aclidinium 400 μg bid", (400.0,), "mcg", "BID", None),
        ("ciclesonide nasal aerosol 37mcg", (37.0,), "mcg", None, None),
        ("Part B: 750 µg romiplostim SC Q2W", (750.0,), "mcg", "Q2W", "SC"),
        ("Evolocumab 140 mg Q2W", (140.0,), "mg", "Q2W", None),
        ("Zalutumumab 8 mg/kg", (8.0,), "mg/kg", None, None),
        ("JNJ-26866138 1.0 mg/m2", (1.0,), "mg/m2", None, None),
        ("50 mg/m^2 IV over one hour", (50.0,), "mg/m2", None, "IV"),
        ("5 mg/m² weekly", (5.0,), "mg/m2", "QW", None),
        ("rFVIII-FS, biw (30 IU/kg + 40 IU/kg)", (30.0, 40.0), "IU/kg", "BIW", None),
        ("Benzathine penicillin G intramuscular 2.4 million units", (2.4e6,), "U", None, "IM"),
        ("Inflexal V 0.5 mL x 1", (0.5,), "mL", None, None),
        ("bimatoprost ophthalmic solution 0.03%", (0.03,), "%", None, "OPHTHALMIC"),
        ("45 Gy in 25 fractions", (45.0,), "Gy", None, None),
        ("Sevelamer Carbonate 4.8 g/day", (4.8,), "g/day", None, None),
        ("Levetiracetam 1000 mg/day to 2000 mg/day group", (1000.0, 2000.0), "mg/day", None, None),
        ("Potassium chloride 20 mEq orally once daily", (20.0,), "mEq", "QD", "ORAL"),
        ("Gadobutrol 0.1 mmol/kg BW", (0.1,), "mmol/kg", None, None),
        ("Octreotide 30 mg Every 21 Days", (30.0,), "mg", None, None),
        ("Denosumab 60 mg every 6 months", (60.0,), "mg", None, None),
        ("Rabeprazole 40 mg tablet taken orally once daily after breakfast", (40.0,), "mg", "QD", "ORAL"),
        ("MEDI-528 at a dose of 100 mg administered as a subcutaneous injection every 2 weeks",
         (100.0,), "mg", "Q2W", "SC"),
        ("GSK573719 500mcg", (500.0,), "mcg", None, None),
        ("BIA 2-093 800 mg", (800.0,), "mg", None, None),
        ("Arm IV: 10 mg", (10.0,), "mg", None, None),
        ("Thymoglobulin 1.5 mg/kg/dose x 4 doses, Tacrolimus 0.1 mg/kg/day", (1.5,), "mg/kg/dose", None, None),
    ],
)
def test_parse_dose(text, values, unit, frequency, route):
    dose = parse_dose(text)
    assert dose is not None, text
    assert dose.values == values
    assert dose.unit == unit
    assert dose.frequency == frequency
    assert dose.route == route
    assert dose.text in text


@pytest.mark.parametrize(
    "text",
    [
        "Duloxetine 40", "Dose Level 2", "Fluarix 12-35 months Group", "healthy elderly subjects aged 65-80 year",
        "rF-GM (10^8)", "Placebo", "Group 10", "Arm 1", "Low dose APD421", "1e999 mg", "", None,
        "zolpidem 1.75/placebo/zolpidem 3.5", "4 tablets and 1 capsule taken twice a day for 28 days",
    ],
)
def test_no_dose_is_none(text):
    assert parse_dose(text) is None


def test_range_of_frequencies_is_not_guessed():
    dose = parse_dose("Oral, 10-60 mg per day, 2-4 times per day, 6 months")
    assert dose.values == (10.0, 60.0) and dose.unit == "mg/day" and dose.route == "ORAL"
    assert dose.frequency is None


def test_frequency_and_route_only_near_the_dose():
    text = "Matching tablets given orally. " + "Background text without numbers. " * 5 + "Drug X 5 mg"
    dose = parse_dose(text)
    assert dose.values == (5.0,) and dose.route is None


@pytest.mark.parametrize(
    "name, text, values",
    [
        ("Mirabegron", "Solifenacin 5 mg + Mirabegron 25 mg", (25.0,)),
        ("Solifenacin", "9 mg Solifenacin + 0.4 mg Tamsulosin", (9.0,)),
        ("Tamsulosin", "9 mg Solifenacin + 0.4 mg Tamsulosin", (0.4,)),
        ("Drug B", "Drug A 10 mg + Drug B 5 mg", (5.0,)),
        ("Mirabegron", "Solifenacin 10 mg and Mirabegron 50 mg", (50.0,)),
        ("atorvastatin calcium", "10 mg Atorvastatin", (10.0,)),
        ("Cediranib", "FOLFOX + Cediranib 30 mg", (30.0,)),
    ],
)
def test_dose_for_picks_the_named_drug(name, text, values):
    assert dose_for(name, text).values == values


def test_dose_for_order_of_texts_and_aliases():
    assert dose_for("Placebo", "10 mg Atorvastatin") is None
    assert dose_for("FOLFOX", "FOLFOX + Cediranib 30 mg") is None
    dose = dose_for("LY2189265", "Arm A", "Dulaglutide 1.5 mg weekly", aliases=["dulaglutide"])
    assert dose.values == (1.5,) and dose.frequency == "QW"
    assert dose_for("Drug", "Drug 1 mg", "Drug 2 mg").values == (1.0,)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_dose_parsers_never_raise_on_arbitrary_text(text):
    dose = parse_dose(text)
    if dose is not None:
        assert dose.values and all(math.isfinite(v) for v in dose.values)
        assert dose.text in text
    dose_for(text[:5], text)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[A-Za-z ]{0,8}[0-9.,x^ ]{1,10} ?(mg|mcg|µg|mL|IU|U|%|mg/kg|cells|vp)(/day)? ?(bid|qd|IV|po)?",
                     fullmatch=True))
def test_dose_like_text_never_raises(text):
    dose = parse_dose(text)
    assert dose is None or all(math.isfinite(v) for v in dose.values)


_FRAGMENTS = ["Phase ", "Stage ", "IV", "iv", "Iv", "PO", "po", "Po", "SC", "sc", "Sc", "IM", "im", "b.i.d", "BID", "Q2W",
              "q 2 wk", "every", " other ", "week", "once", "Once daily", "twice", "2x", "day", "as needed", "p.r.n.",
              "orally", "sub-cutaneous", "S.C.", "i.v.", "eye drops", "x", ".", "-", "/", " ", " ", "10 mg", "μ", "ſ"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=12))
@example(["given ", "IV", " daily"])
@example(["Phase ", "IV", " ", "iv"])
@example(["10 mg", " ", "Po", " ", "PO", " ", "Sc", " ", "IM", " ", "im"])
@example(["B.I.D.", " ", "Q2W", " ", "P.R.N.", " ", "Once daily"])
def test_frequency_and_route_superset_prefilter_finds_what_the_pattern_alone_finds(parts):
    """`_first_named` searches an ASCII text first with a lower-case superset pattern: it must name exactly what the
    case-insensitive pattern alone names, case-sensitive parts ("IV", "PO") and look-behinds ("Phase IV") included."""
    from deepimagine_core.ctgov import doses

    text = "".join(parts)
    for regex, superset, table in ((doses._FREQ_RE, doses._FREQ_SUPERSET, doses._FREQUENCIES),
                                   (doses._ROUTE_RE, doses._ROUTE_SUPERSET, doses._ROUTES)):
        m = regex.search(text)
        assert doses._first_named(regex, superset, table, text) == (None if m is None else table[int(m.lastgroup[1:])][1])
