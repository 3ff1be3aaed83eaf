"""Legacy XML parser on real records (tests/fixtures/ctgov/legacy_xml, see its README) and on broken variants."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from lxml import etree

from deepimagine_core.ctgov.parse import parse_study
from deepimagine_core.ctgov.parse_legacy_xml import parse_legacy_xml
from deepimagine_core.ctgov.records import LEGACY_XML, RawStudy, RecordError
from deepimagine_core.ctgov.schemas import TABLES

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ctgov" / "legacy_xml"
ALL = sorted(p.stem for p in FIXTURES.glob("NCT*.xml"))


def _bytes(nct_id: str) -> bytes:
    return (FIXTURES / f"{nct_id}.xml").read_bytes()


def _parse(payload, ref="test"):
    return parse_study(RawStudy(LEGACY_XML, ref, payload))


def _reasons(parsed) -> list[str]:
    return [issue["reason"] for issue in parsed.field_issues]


@pytest.mark.parametrize("nct_id", ALL)
def test_rows_have_exactly_the_schema_columns(nct_id):
    parsed = _parse(_bytes(nct_id), ref=f"fixtures/{nct_id}.xml")
    assert parsed.nct_id == nct_id
    assert set(parsed.rows) == set(TABLES)
    assert parsed.rows["quarantine"] == []
    for name, rows in parsed.rows.items():
        for row in rows:
            assert set(row) == set(TABLES[name].names), name
            if name != "quarantine":
                assert row["nct_id"] == nct_id
        pa.Table.from_pylist(rows, schema=TABLES[name])  # types fit the schema
    trial = parsed.rows["trials"][0]
    assert trial["source_format"] == LEGACY_XML and trial["source_ref"] == f"fixtures/{nct_id}.xml"
    assert parsed.last_update == trial["last_update_posted"]


def test_str_and_bytes_payloads_parse_the_same():
    raw = _bytes("NCT00703261")
    assert _parse(raw).rows == _parse(raw.decode("utf-8")).rows


def test_dose_ranging_atorvastatin_record():
    parsed = _parse(_bytes("NCT00703261"))
    assert {name: len(rows) for name, rows in parsed.rows.items()} == {
        "trials": 1, "arm_groups": 2, "interventions": 4, "outcome_measures": 2, "outcome_groups": 3,
        "outcome_results": 3, "outcome_analyses": 4, "locations": 0, "quarantine": 0,
    }
    assert parsed.field_issues == []
    trial = parsed.rows["trials"][0]
    assert trial["phases"] == ["PHASE1"]
    assert (trial["allocation"], trial["intervention_model"], trial["masking"], trial["primary_purpose"]) == (
        "RANDOMIZED", "PARALLEL", "DOUBLE", "TREATMENT")
    assert (trial["overall_status"], trial["study_type"], trial["sponsor_class"], trial["sex"]) == (
        "COMPLETED", "INTERVENTIONAL", "INDUSTRY", "ALL")
    assert trial["last_update_posted"] == dt.date(2015, 10, 8)  # lastchanged_date
    assert trial["results_first_posted"] == dt.date(2011, 10, 25)  # firstreceived_results_date
    assert trial["study_first_posted"] == dt.date(2008, 6, 19)
    assert trial["start_date"] == dt.date(2008, 8, 1)  # "August 2008": first of the month
    assert (trial["enrollment"], trial["enrollment_type"], trial["n_arms"]) == (83, "ACTUAL", 2)
    assert (trial["minimum_age_years"], trial["maximum_age_years"], trial["healthy_volunteers"]) == (30.0, 80.0, False)
    assert trial["eligibility_criteria"].startswith("Inclusion Criteria:\n\n-  Male or Female ages 30 to 80")

    arms = parsed.rows["arm_groups"]
    assert [a["label"] for a in arms] == ["10 mg Atorvastatin", "80 mg Atorvastatin"]
    assert arms[0]["type"] == "ACTIVE_COMPARATOR"
    assert arms[0]["intervention_names"] == ["Drug: atorvastatin", "Drug: placebo"]

    atorva = {r["arm_label"]: r for r in parsed.rows["interventions"] if r["name"] == "atorvastatin"}
    assert atorva["10 mg Atorvastatin"]["dose_values"] == [10.0]
    assert atorva["80 mg Atorvastatin"]["dose_values"] == [80.0]
    assert atorva["80 mg Atorvastatin"]["dose_unit"] == "mg"
    assert atorva["80 mg Atorvastatin"]["dose_source"] == "arm_label"
    assert atorva["80 mg Atorvastatin"]["other_names"] == ["Lipitor"]

    groups = parsed.rows["outcome_groups"]
    first = [g for g in groups if g["outcome_index"] == 0]
    assert [(g["group_id"], g["arm_label"], g["participants_analyzed"]) for g in first] == [
        ("O1", "10 mg Atorvastatin", 33), ("O2", "80 mg Atorvastatin", 34)]
    assert first[1]["dose_values"] == [80.0] and first[1]["dose_source"] == "group_title"
    naive = [g for g in groups if g["outcome_index"] == 1][0]
    assert naive["title"] == "Statin-Naive Participants" and naive["arm_label"] is None  # ambiguous: unmapped

    measure = parsed.rows["outcome_measures"][0]
    assert (measure["type"], measure["param_type"], measure["dispersion_type"], measure["unit"]) == (
        "PRIMARY", "GEOMETRIC_MEAN", "CONFIDENCE_90", "Percent reduction")
    assert (measure["n_groups"], measure["n_analyses"]) == (2, 3)
    result = parsed.rows["outcome_results"][1]
    assert (result["group_id"], result["value"], result["value_raw"]) == ("O2", 5.8, "5.8")
    assert (result["lower_limit"], result["upper_limit"], result["participants_analyzed"]) == (2.0, 9.5, 34)

    analyses = parsed.rows["outcome_analyses"]
    assert [(a["outcome_index"], a["analysis_index"], a["p_value"]) for a in analyses] == [
        (0, 0, 0.006), (0, 1, 0.277), (0, 2, 0.088), (1, 0, 0.195)]
    ci = analyses[2]
    assert ci["group_ids"] == ["O1", "O2"] and ci["p_value_relation"] == "=" and ci["p_value_raw"] == "0.088"
    assert (ci["ci_pct"], ci["ci_n_sides"], ci["ci_lower"], ci["ci_upper"]) == (90.0, "TWO_SIDED", -1.0, 9.6)
    assert (ci["param_type"], ci["param_value"], ci["method"]) == ("Percent Reduction", 4.5, "cLDA")
    assert ci["non_inferiority_type"] == "SUPERIORITY_OR_OTHER"  # <non_inferiority>No


def test_p_value_below_threshold_and_two_phases():
    parsed = _parse(_bytes("NCT00818246"))
    trial = parsed.rows["trials"][0]
    assert trial["phases"] == ["PHASE2", "PHASE3"]
    assert trial["masking"] == "SINGLE" and trial["allocation"] is None  # the record states no allocation
    assert trial["countries"] == ["Canada"]
    p = [(a["p_value_raw"], a["p_value"], a["p_value_relation"]) for a in parsed.rows["outcome_analyses"]]
    assert ("<0.001", 0.001, "<") in p and ("<0.0001", 0.0001, "<") in p
    # a split-face group naming both arms is not forced onto one of them
    assert parsed.rows["outcome_groups"][0]["arm_label"] is None


def test_non_inferiority_yes():
    parsed = _parse(_bytes("NCT00624221"))
    (analysis,) = parsed.rows["outcome_analyses"]
    assert analysis["non_inferiority_type"] == "NON_INFERIORITY_OR_EQUIVALENCE"
    assert (analysis["p_value"], analysis["p_value_raw"]) == (0.1, "0.10")
    trial = parsed.rows["trials"][0]
    assert trial["phases"] == []  # N/A
    assert (trial["minimum_age"], trial["maximum_age"], trial["maximum_age_years"]) == ("21 Years", None, None)  # N/A
    assert {r["arm_label"] for r in parsed.rows["interventions"]} == {"1", "2"}


def test_na_values_stay_null_with_raw_kept_and_no_issue():
    parsed = _parse(_bytes("NCT01197898"))
    na = [r for r in parsed.rows["outcome_results"] if r["value_raw"] == "NA"]
    assert na and all(r["value"] is None for r in na)
    assert parsed.field_issues == []
    assert parsed.rows["trials"][0]["masking"] == "TRIPLE"


def test_out_of_range_p_value_is_a_field_issue_not_a_rejection():
    parsed = _parse(_bytes("NCT00975923"))
    by_raw = {a["p_value_raw"]: a for a in parsed.rows["outcome_analyses"]}
    assert (by_raw["<.05"]["p_value"], by_raw["<.05"]["p_value_relation"]) == (0.05, "<")
    assert by_raw["<05"]["p_value"] is None and by_raw["<05"]["p_value_relation"] is None
    assert _reasons(parsed) == ["p_value out of range '<05'"]
    assert parsed.field_issues[0]["stage"] == "value"


def test_unparsable_limits_are_field_issues_and_doses_come_from_arm_labels():
    parsed = _parse(_bytes("NCT00374803"))
    assert sorted(set(_reasons(parsed))) == ["unparsable lower_limit '45,'", "unparsable upper_limit '45,'"]
    assert len(parsed.rows["outcome_measures"]) == 5
    doses = {r["arm_label"]: r for r in parsed.rows["interventions"]}
    twice = doses["Mycophenolic Acid (Myfortic) 720 mg twice daily"]
    assert (twice["dose_values"], twice["dose_unit"], twice["dose_frequency"]) == ([720.0], "mg", "BID")


# --- bad input ---------------------------------------------------------------------------------------------------


def _edit(nct_id: str, edit) -> bytes:
    root = etree.fromstring(_bytes(nct_id))
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"<clinical_study><id_info><nct_id>NCT0", "malformed XML"),
        (_bytes("NCT00703261")[:5000], "malformed XML"),
        (b"", "malformed XML"),
        (b"<other_root/>", "root element <other_root> is not <clinical_study>"),
        (None, "empty payload"),
        (_edit("NCT00703261", lambda r: r.remove(r.find("clinical_results"))), "no results section"),
        (_edit("NCT00703261", lambda r: r.find("id_info").remove(r.find("id_info/nct_id"))), "no nct_id"),
        (_edit("NCT00703261", lambda r: r.find("clinical_results/outcome_list").clear()), "no outcome measures"),
    ],
)
def test_record_level_failures_raise_record_error(payload, reason):
    with pytest.raises(RecordError) as err:
        parse_legacy_xml(RawStudy(LEGACY_XML, "test:bad.xml", payload, nct_id="NCT00703261"))
    assert reason in err.value.reason
    assert err.value.stage == "parse"
    assert err.value.nct_id == "NCT00703261"


def test_bad_values_and_unknown_enums_become_field_issues():
    text = _bytes("NCT00703261").decode("utf-8")
    text = text.replace('value="1.4" lower_limit="-2.6"', 'value="abc" lower_limit="NR"')
    text = text.replace('value="5.8" lower_limit="2.0"', 'value="≤ 5" lower_limit="2.0"')
    text = text.replace('value="2.3"', 'value="1,234"')
    text = text.replace("<p_value>0.277</p_value>", "<p_value>1.3</p_value>")
    text = text.replace("<p_value>0.195</p_value>", "<p_value>NS</p_value>")
    text = text.replace("<arm_group_type>Active Comparator", "<arm_group_type>Weird Comparator", 1)
    text = text.replace("<phase>Phase 1</phase>", "<phase>Phase 7</phase>")
    text = text.replace("Masking: Double Blind (Subject, Investigator)", "Masking: Blindfolded")
    text = text.replace("<gender>Both</gender>", "<gender>Everyone</gender>")
    parsed = _parse(text)
    reasons = _reasons(parsed)
    assert "unparsable value 'abc'" in reasons
    assert "unparsable value '≤ 5'" in reasons  # a bound is not a value
    assert "p_value out of range '1.3'" in reasons
    assert "unknown arm_groups.type value 'Weird Comparator'" in reasons
    assert "unknown phases value 'Phase 7'" in reasons
    assert "unknown masking value 'Blindfolded'" in reasons
    assert "unknown sex value 'Everyone'" in reasons
    assert not any("NR" in r or "NS" in r for r in reasons)  # "not available" markers are not failures
    assert all(issue["stage"] == "value" for issue in parsed.field_issues)

    results = parsed.rows["outcome_results"]
    assert (results[0]["value"], results[0]["value_raw"], results[0]["lower_limit"]) == (None, "abc", None)
    assert (results[1]["value"], results[1]["value_raw"]) == (None, "≤ 5")
    assert (results[2]["value"], results[2]["value_raw"]) == (1234.0, "1,234")
    p = {a["p_value_raw"]: a["p_value"] for a in parsed.rows["outcome_analyses"]}
    assert p["1.3"] is None and p["NS"] is None and p["0.006"] == 0.006
    trial = parsed.rows["trials"][0]
    assert (trial["phases"], trial["masking"], trial["sex"]) == (["PHASE_7"], "BLINDFOLDED", "EVERYONE")
    assert parsed.rows["arm_groups"][0]["type"] == "WEIRD_COMPARATOR"


# The 2017+ legacy schema (study_design_info, the measure directly in the outcome with analyzed_list and class_list,
# new date names). No real record of that generation is in the fixtures; this minimal document follows its structure.
SCHEMA_2017 = b"""<?xml version="1.0" encoding="UTF-8"?>
<clinical_study>
  <id_info><nct_id>NCT09999999</nct_id></id_info>
  <brief_title>Structure test</brief_title>
  <overall_status>Completed</overall_status>
  <phase>Phase 2</phase>
  <study_type>Interventional</study_type>
  <study_design_info>
    <allocation>Randomized</allocation>
    <intervention_model>Parallel Assignment</intervention_model>
    <primary_purpose>Treatment</primary_purpose>
    <masking>Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)</masking>
  </study_design_info>
  <arm_group><arm_group_label>Drug 10 mg</arm_group_label><arm_group_type>Experimental</arm_group_type></arm_group>
  <arm_group><arm_group_label>Placebo</arm_group_label><arm_group_type>Placebo Comparator</arm_group_type></arm_group>
  <lastchanged_date>October 24, 2014</lastchanged_date>
  <firstreceived_results_date>June 28, 2013</firstreceived_results_date>
  <results_first_posted type="Estimate">October 27, 2014</results_first_posted>
  <last_update_posted type="Estimate">January 23, 2015</last_update_posted>
  <clinical_results>
    <outcome_list>
      <outcome>
        <type>Primary</type>
        <title>Responders</title>
        <group_list>
          <group group_id="O1"><title>Drug 10 mg</title></group>
          <group group_id="O2"><title>Placebo</title></group>
        </group_list>
        <measure>
          <title>Responders</title>
          <units>Participants</units>
          <param>Count of Participants</param>
          <analyzed_list>
            <analyzed><units>eyes</units><scope>Measure</scope>
              <count_list><count group_id="O1" value="80"/><count group_id="O2" value="78"/></count_list></analyzed>
            <analyzed><units>Participants</units><scope>Measure</scope>
              <count_list><count group_id="O1" value="40"/><count group_id="O2" value="39"/></count_list></analyzed>
          </analyzed_list>
          <class_list>
            <class>
              <title>Week 12</title>
              <category_list>
                <category><title>Yes</title><measurement_list>
                  <measurement group_id="O1" value="30"/><measurement group_id="O2" value="12"/>
                </measurement_list></category>
                <category><title>No</title><measurement_list>
                  <measurement group_id="O1" value="10"/><measurement group_id="O2" value="27"/>
                </measurement_list></category>
              </category_list>
            </class>
          </class_list>
        </measure>
        <analysis_list>
          <analysis>
            <group_id_list><group_id>O1</group_id><group_id>O2</group_id></group_id_list>
            <non_inferiority_type>Superiority</non_inferiority_type>
            <p_value>&lt;0.001</p_value>
            <method>Fisher Exact</method>
          </analysis>
        </analysis_list>
      </outcome>
    </outcome_list>
  </clinical_results>
</clinical_study>
"""


def test_2017_schema_structure():
    parsed = _parse(SCHEMA_2017)
    trial = parsed.rows["trials"][0]
    assert (trial["allocation"], trial["intervention_model"], trial["masking"]) == (
        "RANDOMIZED", "PARALLEL", "QUADRUPLE")
    assert trial["last_update_posted"] == dt.date(2015, 1, 23)  # the new name wins over lastchanged_date
    assert trial["results_first_posted"] == dt.date(2014, 10, 27)
    assert [(g["arm_label"], g["participants_analyzed"]) for g in parsed.rows["outcome_groups"]] == [
        ("Drug 10 mg", 40), ("Placebo", 39)]  # the Participants units, not the eyes
    results = parsed.rows["outcome_results"]
    assert [(r["class_title"], r["category_title"], r["group_id"], r["value"]) for r in results] == [
        ("Week 12", "Yes", "O1", 30.0), ("Week 12", "Yes", "O2", 12.0),
        ("Week 12", "No", "O1", 10.0), ("Week 12", "No", "O2", 27.0)]
    assert parsed.rows["outcome_measures"][0]["param_type"] == "COUNT_OF_PARTICIPANTS"
    (analysis,) = parsed.rows["outcome_analyses"]
    assert (analysis["non_inferiority_type"], analysis["p_value"], analysis["p_value_relation"]) == (
        "SUPERIORITY", 0.001, "<")
    assert parsed.field_issues == []


# ------------------------------------------------------------------------- sections no table reads are not parsed
def _rows_with_and_without_the_cut(payload: bytes, monkeypatch) -> tuple[dict, dict]:
    from deepimagine_core.ctgov import parse_legacy_xml as module

    with_cut = _parse(payload).rows
    monkeypatch.setattr(module, "_UNREAD", ())
    whole = _parse(payload).rows
    monkeypatch.undo()
    return with_cut, whole


@pytest.mark.parametrize("nct_id", ALL)
def test_unread_results_sections_are_cut_before_parsing_and_the_rows_are_the_same(nct_id, monkeypatch):
    from deepimagine_core.ctgov.parse_legacy_xml import _without_unread

    data = _bytes(nct_id)
    cut = _without_unread(data)
    assert len(cut) < len(data)
    for tag in (b"participant_flow", b"baseline", b"reported_events"):
        assert b"<%s>" % tag not in cut and b"</%s>" % tag not in cut
    assert b"<outcome_list>" in cut and b"<clinical_results>" in cut
    with_cut, whole = _rows_with_and_without_the_cut(data, monkeypatch)
    assert with_cut == whole


def test_a_section_tag_inside_a_comment_or_cdata_is_not_cut_from(monkeypatch):
    from deepimagine_core.ctgov.parse_legacy_xml import _without_unread

    data = _bytes(ALL[0])
    cdata = b"<brief_summary><textblock><![CDATA[ <baseline> ]]></textblock></brief_summary>"
    for trap in (b"<!-- <baseline> -->", cdata):
        doctored = data.replace(b"<brief_title>", trap + b"<brief_title>", 1)
        cut = _without_unread(doctored)
        assert trap in cut and b"<participant_flow>" not in cut and b"<reported_events>" not in cut
        with_cut, whole = _rows_with_and_without_the_cut(doctored, monkeypatch)
        assert with_cut == whole


def test_a_cut_that_would_not_remove_one_whole_element_falls_back_to_the_whole_document(monkeypatch):
    data = _bytes(ALL[0])
    nested = data.replace(b"<baseline>", b"<baseline><baseline></baseline>", 1)  # the first end tag is the inner one
    with_cut, whole = _rows_with_and_without_the_cut(nested, monkeypatch)
    assert with_cut == whole
    malformed = data.replace(b"<brief_title>", b"<brief_title><oops>", 1)  # outside the cut sections
    with pytest.raises(RecordError, match="malformed XML"):
        _parse(malformed)


def test_damage_inside_an_unread_section_no_longer_rejects_the_study():
    """What the cut changes: a study whose only damage is inside a section no table reads (here an unclosed element
    in the adverse events) parses; its rows are those of the undamaged study."""
    data = _bytes(ALL[0])
    damaged = data.replace(b"<reported_events>", b"<reported_events><unclosed>", 1)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(damaged)
    assert _parse(damaged).rows == _parse(data).rows
