"""API v2 JSON parser on real records (tests/fixtures/ctgov/v2_json, see its README) and on broken variants of them."""

import copy
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from deepimagine_core.ctgov.parse import parse_study
from deepimagine_core.ctgov.parse_v2_json import parse_v2_json
from deepimagine_core.ctgov.records import API_V2_JSON, RawStudy, RecordError
from deepimagine_core.ctgov.schemas import TABLES

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ctgov" / "v2_json"
ALL = sorted(p.stem for p in FIXTURES.glob("NCT*.json"))


def _text(nct_id: str) -> str:
    return (FIXTURES / f"{nct_id}.json").read_text(encoding="utf-8")


def _study(nct_id: str) -> dict:
    return json.loads(_text(nct_id))


def _parse(payload, ref="test"):
    return parse_study(RawStudy(API_V2_JSON, ref, payload))


def _counts(parsed) -> dict:
    return {name: len(rows) for name, rows in parsed.rows.items() if name != "quarantine"}


@pytest.mark.parametrize("nct_id", ALL)
def test_rows_have_exactly_the_schema_columns(nct_id):
    parsed = _parse(_study(nct_id), ref=f"fixtures/{nct_id}.json")
    assert parsed.nct_id == nct_id
    for name, rows in parsed.rows.items():
        for row in rows:
            assert set(row) == set(TABLES[name].names), name
        pa.Table.from_pylist(rows, schema=TABLES[name])
    assert parsed.rows["trials"][0]["source_format"] == API_V2_JSON
    assert parsed.field_issues == []


def test_dict_text_and_bytes_payloads_parse_the_same():
    text = _text("NCT00790751")
    assert _parse(json.loads(text)).rows == _parse(text).rows == _parse(text.encode("utf-8")).rows


def test_dose_ranging_avanafil():
    parsed = _parse(_study("NCT00790751"))
    assert _counts(parsed) == {
        "trials": 1, "arm_groups": 4, "interventions": 4, "outcome_measures": 3, "outcome_groups": 12,
        "outcome_results": 12, "outcome_analyses": 0, "locations": 41,
    }
    trial = parsed.rows["trials"][0]
    assert (trial["phases"], trial["masking"], trial["sex"], trial["sponsor_class"]) == (
        ["PHASE3"], "DOUBLE", "MALE", "INDUSTRY")
    assert trial["countries"] == ["United States"]
    assert trial["last_update_posted"] == parsed.last_update == dt.date(2012, 7, 11)
    assert trial["results_first_posted"] == dt.date(2012, 6, 28)
    avanafil = {r["arm_label"]: r["dose_values"] for r in parsed.rows["interventions"] if r["name"] == "avanafil"}
    assert avanafil == {"avanafil 50 mg": [50.0], "avanafil 100 mg": [100.0], "avanafil 200 mg": [200.0]}
    first = [g for g in parsed.rows["outcome_groups"] if g["outcome_index"] == 0]
    rows = [(g["group_id"], g["title"], g["arm_label"], g["dose_values"], g["participants_analyzed"]) for g in first]
    assert rows == [
        ("OG000", "Placebo", "placebo", None, 155),
        ("OG001", "Avanafil 50 mg", "avanafil 50 mg", [50.0], 154),
        ("OG002", "Avanafil 100 mg", "avanafil 100 mg", [100.0], 157),
        ("OG003", "Avanafil 200 mg", "avanafil 200 mg", [200.0], 156),
    ]


def test_multi_outcome_with_p_values_and_cis():
    parsed = _parse(_study("NCT00738400"))
    assert _counts(parsed)["outcome_measures"] == 7
    assert _counts(parsed)["outcome_analyses"] == 6
    first = parsed.rows["outcome_analyses"][0]
    assert (first["p_value"], first["p_value_raw"], first["p_value_relation"]) == (0.0001, "<0.0001", "<")
    assert (first["ci_pct"], first["ci_lower"], first["ci_upper"]) == (95.0, -9.03, -4.49)
    assert first["group_ids"] == ["OG000", "OG001"]
    exact = [a for a in parsed.rows["outcome_analyses"] if a["p_value_raw"] == "0.0004"][0]
    assert (exact["p_value"], exact["p_value_relation"], exact["method"]) == (0.0004, "=", "Mantel Haenszel")
    vardenafil = [r for r in parsed.rows["interventions"] if r["name"].startswith("Vardenafil")][0]
    assert (vardenafil["dose_values"], vardenafil["dose_unit"], vardenafil["dose_source"]) == (
        [10.0], "mg", "arm_description")


def test_p_value_below_0001_and_above():
    parsed = _parse(_study("NCT04984993"))
    p = [(a["p_value_raw"], a["p_value"], a["p_value_relation"]) for a in parsed.rows["outcome_analyses"]]
    assert p.count(("<0.001", 0.001, "<")) == 4
    assert ("0.890", 0.89, "=") in p and (">0.999", 0.999, ">") in p
    assert len(p) == 7
    assert parsed.rows["trials"][0]["countries"] == ["Bulgaria", "Georgia", "Poland", "United States"]  # sorted


def test_ci_only_analyses():
    parsed = _parse(_study("NCT01254396"))
    analyses = parsed.rows["outcome_analyses"]
    assert len(analyses) == 3 and all(a["p_value"] is None and a["p_value_raw"] is None for a in analyses)
    first = analyses[0]
    assert (first["ci_pct"], first["ci_n_sides"], first["ci_lower"], first["ci_upper"]) == (
        90.0, "TWO_SIDED", 32.4, 52.76)
    assert (first["param_type"], first["param_value"]) == ("Ratio of Adjusted Means", 41.35)
    assert first["non_inferiority_type"] == "SUPERIORITY_OR_OTHER_LEGACY"
    groups = parsed.rows["outcome_groups"][:2]
    assert [g["arm_label"] for g in groups] == [
        "Sildenafil ODT tablet 50 mg, Fasted", "Sildenafil ODT tablet 50 mg, Fed"]


def test_outcome_without_posted_measurements_is_kept():
    parsed = _parse(_study("NCT04326231"))
    assert _counts(parsed)["outcome_measures"] == 1 and _counts(parsed)["outcome_results"] == 0
    (group,) = parsed.rows["outcome_groups"]
    assert group["participants_analyzed"] == 0
    assert group["arm_label"] == "Cognoa ASD Therapeutic Device"  # the single group of a single-arm study


# --- bad input ---------------------------------------------------------------------------------------------------


def _without(nct_id: str, *path: str) -> dict:
    study = _study(nct_id)
    parent = study
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return study


@pytest.mark.parametrize(
    "payload, reason",
    [
        (_text("NCT00790751")[:4000], "malformed JSON"),
        ("", "malformed JSON"),
        ("[1, 2]", "not an object"),
        ({"hello": "world"}, "no protocolSection"),
        (None, "empty payload"),
        (_without("NCT00790751", "resultsSection"), "no results section"),
        (_without("NCT00790751", "protocolSection", "identificationModule", "nctId"), "no nctId"),
        (_without("NCT00790751", "resultsSection", "outcomeMeasuresModule"), "no outcome measures"),
    ],
)
def test_record_level_failures_raise_record_error(payload, reason):
    with pytest.raises(RecordError) as err:
        parse_v2_json(RawStudy(API_V2_JSON, "test:bad", payload, nct_id="NCT00790751"))
    assert reason in err.value.reason
    assert err.value.stage == "parse"
    assert err.value.nct_id == "NCT00790751"


def test_bad_values_and_unknown_enums_become_field_issues():
    study = _study("NCT00738400")
    mutated = copy.deepcopy(study)
    outcome = mutated["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0]
    measurements = outcome["classes"][0]["categories"][0]["measurements"]
    measurements[0]["value"] = "NR"
    measurements[1]["value"] = "1,234"
    outcome["analyses"][0]["pValue"] = "1.3"
    outcome["analyses"][0]["ciLowerLimit"] = "abc"
    mutated["protocolSection"]["designModule"]["phases"] = ["PHASE9"]
    mutated["protocolSection"]["armsInterventionsModule"]["armGroups"][0]["type"] = "SOMETHING_NEW"
    mutated["protocolSection"]["statusModule"]["startDateStruct"]["date"] = "someday"
    parsed = _parse(mutated)
    reasons = [issue["reason"] for issue in parsed.field_issues]
    assert sorted(reasons) == sorted([
        "p_value out of range '1.3'", "unparsable ci_lower 'abc'", "unknown phases value 'PHASE9'",
        "unknown arm_groups.type value 'SOMETHING_NEW'", "unparsable start_date 'someday'",
    ])
    results = parsed.rows["outcome_results"]
    assert (results[0]["value"], results[0]["value_raw"]) == (None, "NR")
    assert (results[1]["value"], results[1]["value_raw"]) == (1234.0, "1,234")
    analysis = parsed.rows["outcome_analyses"][0]
    assert (analysis["p_value"], analysis["p_value_raw"], analysis["ci_lower"]) == (None, "1.3", None)
    assert parsed.rows["trials"][0]["phases"] == ["PHASE9"]
    assert parsed.rows["arm_groups"][0]["type"] == "SOMETHING_NEW"
    assert _counts(parsed) == _counts(_parse(study))  # nothing else changed, nothing lost
