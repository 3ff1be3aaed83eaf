"""Fidelity to the published ClinicalTrials.gov API v2 spec (not to the stand-in): rate, page tokens, end of paging,
enum spellings, reportingStatus; and the stand-in following the spec where it says how (plain-text 400, pageSize)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time

import httpx
import pytest

from deepimagine_core.ctgov.api import (
    DEFAULT_REQUESTS_PER_SECOND,
    ApiSettings,
    CTGovClient,
    CTGovError,
    PageTokenExpired,
    StudyQuery,
)
from deepimagine_core.ctgov.enums import ENUMS, map_enum
from deepimagine_core.ctgov.parse import parse_study
from deepimagine_core.ctgov.raw_api import iter_raw_api, read_watermark, refresh_api
from deepimagine_core.ctgov.records import API_V2_JSON, LEGACY_XML, RawStudy
from tests.ctgov_stand_in import CTGovStandIn, nct_id, sample_studies

# MeasureDispersionType and ReportingStatus as the API v2 OpenAPI spec lists them
SPEC_DISPERSION = {"NA", "STANDARD_DEVIATION", "STANDARD_ERROR", "INTER_QUARTILE_RANGE", "FULL_RANGE", "CONFIDENCE_80",
                   "CONFIDENCE_90", "CONFIDENCE_95", "CONFIDENCE_975", "CONFIDENCE_99", "CONFIDENCE_OTHER",
                   "GEOMETRIC_COEFFICIENT"}


def fast(transport: httpx.BaseTransport, **kw) -> CTGovClient:
    kw = {"requests_per_second": 0, "timeout": 5, "backoff_initial": 0.01, "backoff_max": 0.05, **kw}
    return CTGovClient("http://ctgov.invalid/api/v2", transport=transport, **kw)


def through(server: CTGovStandIn, reject: list[str]) -> httpx.MockTransport:
    """The stand-in's answers without a socket; while `reject` holds bodies, a request with a page token gets a 400
    with the next body (plain text), as a server that no longer knows the token would answer."""
    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if reject and "pageToken" in params:
            server.request_log.append({**params, "rejected": "yes"})
            return httpx.Response(400, text=reject.pop(0), headers={"Content-Type": "text/plain"})
        _, status, headers, body = server.answer(params)
        return httpx.Response(status, headers=headers, content=body)

    return httpx.MockTransport(handler)


# ---------------------------------------------------------------------------------------------------------------- rate
def test_default_rate_is_at_most_50_requests_a_minute():
    from deepimagine_dagster.resources import TrialSourceResource

    assert DEFAULT_REQUESTS_PER_SECOND * 60 <= 50
    assert ApiSettings().requests_per_second * 60 <= 50 and TrialSourceResource().requests_per_second * 60 <= 50
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"studies": []}))
    client = CTGovClient("http://ctgov.invalid/api/v2", transport=transport)  # the default rate
    started = time.monotonic()
    for _ in range(3):
        client.fetch_page(StudyQuery())
    assert time.monotonic() - started >= 2 * 60 / 50 - 0.01  # 3 requests span at least 2 intervals of 1.2 s


# --------------------------------------------------------------------------------------------------------- page tokens
@pytest.mark.parametrize("body", ["Bad Request", "", "<html><body>400</body></html>", '{"error": "whatever"}'])
def test_a_refused_page_token_is_page_token_expired_whatever_the_text(body):
    client = fast(httpx.MockTransport(lambda request: httpx.Response(400, text=body)))
    with pytest.raises(PageTokenExpired, match="HTTP 400"):
        client.fetch_page(StudyQuery(), "a-token")
    with pytest.raises(CTGovError, match="HTTP 400") as info:
        client.fetch_page(StudyQuery())  # the same refusal without a token is a plain client error
    assert not isinstance(info.value, PageTokenExpired)


def test_a_resumed_run_whose_token_is_refused_pages_again_from_the_watermark(tmp_path):
    studies = sample_studies()
    server = CTGovStandIn(studies)
    reject: list[str] = []
    with fast(through(server, reject)) as client:
        first = refresh_api(client, StudyQuery(page_size=25), tmp_path)
        watermark = read_watermark(tmp_path, StudyQuery())
        assert first.finished and watermark == first.watermark
        newer_date = (dt.date.fromisoformat(watermark) + dt.timedelta(days=30)).isoformat()
        updated = {}
        for study in studies[:10]:
            new = copy.deepcopy(study)
            new["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = newer_date
            updated[nct_id(new)] = new
        server.replace_studies([updated.get(nct_id(s), s) for s in studies])
        since = (dt.date.fromisoformat(watermark) - dt.timedelta(days=1)).isoformat()
        window = f"AREA[LastUpdatePostDate]RANGE[{since},MAX]"
        expected = server.expected_ids({**StudyQuery().params(), "filter.advanced": window})
        assert len(expected & set(updated)) >= 6 and len(expected) < len(server.served_ids)  # a narrower window

        stopped = refresh_api(client, StudyQuery(page_size=3), tmp_path, max_studies=3)  # a run left unfinished
        assert not stopped.finished
        server.request_log.clear()
        reject.append("Bad Request")  # the saved token is refused, in words that do not name it
        resumed = refresh_api(client, StudyQuery(page_size=3), tmp_path)
    assert resumed.resumed and resumed.finished and resumed.run_id == stopped.run_id
    assert resumed.retries.get("page_token_expired") == 1
    refused, again = server.request_log[0], server.request_log[1]
    assert refused["rejected"] == "yes" and "pageToken" in refused
    assert "pageToken" not in again and again["filter.advanced"] == window
    in_run = [r.nct_id for r in iter_raw_api(tmp_path) if stopped.run_id in r.source_ref]
    assert sorted(in_run) == sorted(expected)  # nothing lost, nothing twice, nothing from before the window


# ------------------------------------------------------------------------------------------------------ end of paging
def test_paging_ends_only_when_next_page_token_is_absent(tmp_path):
    studies = sample_studies()[:4]
    pages = {None: (studies[:2], "t1"), "t1": ([], "t2"), "t2": (studies[2:], None)}
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("pageToken")
        sent.append(token)
        page, nxt = pages[token]
        return httpx.Response(200, json={"studies": page, **({"nextPageToken": nxt} if nxt else {})})

    with fast(httpx.MockTransport(handler)) as client:
        summary = refresh_api(client, StudyQuery(page_size=2), tmp_path)
    assert sent == [None, "t1", "t2"]  # an empty page with a token is not the end
    assert summary.finished and summary.studies == 4
    assert sorted(r.nct_id for r in iter_raw_api(tmp_path)) == sorted(nct_id(s) for s in studies)


def test_endless_empty_pages_with_tokens_fail_instead_of_looping(tmp_path):
    count = iter(range(10**6))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"studies": [], "nextPageToken": f"t{next(count)}"})

    with fast(httpx.MockTransport(handler), max_retries=3) as client:
        with pytest.raises(CTGovError, match="empty pages"):
            refresh_api(client, StudyQuery(), tmp_path)


# ------------------------------------------------------------------------------------------------------------ stand-in
def _tiny_study(i: int) -> dict:
    return {
        "protocolSection": {
            "identificationModule": {"nctId": f"NCT{i:08d}"},
            "statusModule": {"overallStatus": "COMPLETED", "lastUpdatePostDateStruct": {"date": "2020-01-01"}},
            "designModule": {"studyType": "INTERVENTIONAL"},
        },
        "hasResults": True,
    }


def test_stand_in_lowers_a_page_size_above_1000_and_answers_400_in_plain_text():
    with CTGovStandIn([_tiny_study(i) for i in range(1, 1102)]) as server:
        big = httpx.get(f"{server.base_url}/studies", params={"pageSize": "5000"})
        default = httpx.get(f"{server.base_url}/studies")
        bad = httpx.get(f"{server.base_url}/studies", params={"pageSize": "-1"})
        unknown = httpx.get(f"{server.base_url}/studies", params={"nonsense": "1"})
    assert big.status_code == 200 and len(big.json()["studies"]) == 1000 and big.json()["nextPageToken"]
    assert len(default.json()["studies"]) == 10
    for answer in (bad, unknown):
        assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/plain")
        with pytest.raises(json.JSONDecodeError):
            json.loads(answer.text)


# --------------------------------------------------------------------------------------------------------------- enums
def test_dispersion_types_are_the_spec_values():
    assert set(ENUMS["dispersion_type"].values()) == SPEC_DISPERSION
    assert set(ENUMS["reporting_status"].values()) == {"POSTED", "NOT_POSTED"}
    for raw, value in [("95% Confidence Interval", "CONFIDENCE_95"), ("97.5% Confidence Interval", "CONFIDENCE_975"),
                       ("CONFIDENCE_975", "CONFIDENCE_975"), ("90 % confidence interval", "CONFIDENCE_90"),
                       ("84% Confidence Interval", "CONFIDENCE_OTHER"), ("Geometric Coefficient of Variation",
                       "GEOMETRIC_COEFFICIENT"), ("GEOMETRIC_COEFFICIENT", "GEOMETRIC_COEFFICIENT")]:
        assert map_enum("dispersion_type", raw) == (value, True), raw
    for old in ("CONFIDENCE_INTERVAL_95", "CONFIDENCE_INTERVAL_97_5", "CONFIDENCE_INTERVAL_975"):
        assert map_enum("dispersion_type", old) == (old, False)  # not in the spec: unknown (and reported as such)


def test_sample_outcome_dispersion_types_are_all_spec_values(sample_store):
    values = set(sample_store.read_table("outcome_measures", ["dispersion_type"]).column(0).to_pylist()) - {None}
    assert values and values <= SPEC_DISPERSION, values - SPEC_DISPERSION


# ---------------------------------------------------------------------------------------------------- reportingStatus
def test_outcomes_not_posted_carry_that_status():
    def outcomes_of(study: dict) -> list[dict]:
        return study["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]

    study = next(s for s in sample_studies() if any(o.get("reportingStatus") == "NOT_POSTED" for o in outcomes_of(s)))
    outcomes = outcomes_of(study)
    parsed = parse_study(RawStudy(API_V2_JSON, "test", study))
    statuses = [row["reporting_status"] for row in parsed.rows["outcome_measures"]]
    assert statuses == [o.get("reportingStatus") for o in outcomes] and "NOT_POSTED" in statuses
    not_posted = {i for i, status in enumerate(statuses) if status == "NOT_POSTED"}
    assert not any(r["outcome_index"] in not_posted for r in parsed.rows["outcome_results"])


def test_legacy_outcome_without_data_is_not_posted():
    xml = """<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info><brief_title>t</brief_title>
      <overall_status>Completed</overall_status><study_type>Interventional</study_type>
      <clinical_results><outcome_list>
        <outcome><type>Primary</type><title>With data</title><measure><title>With data</title><units>mm</units>
          <param>Mean</param><class_list><class><category_list><category><measurement_list>
          <measurement group_id="O1" value="1.5"/></measurement_list></category></category_list></class></class_list>
          </measure></outcome>
        <outcome><type>Secondary</type><title>No data posted</title><time_frame>2 days</time_frame></outcome>
      </outcome_list></clinical_results></clinical_study>"""
    parsed = parse_study(RawStudy(LEGACY_XML, "test", xml))
    assert [row["reporting_status"] for row in parsed.rows["outcome_measures"]] == ["POSTED", "NOT_POSTED"]

