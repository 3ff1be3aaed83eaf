"""ClinicalTrials.gov API v2 client and raw layer against a real HTTP server on 127.0.0.1 (tests/ctgov_stand_in.py)."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deepimagine_core.ctgov import api, raw_api
from deepimagine_core.ctgov.api import CTGovClient, CTGovError, PageTokenExpired, StudyQuery, TransientError
from deepimagine_core.ctgov.raw_api import iter_raw_api, read_watermark, refresh_api
from tests.ctgov_stand_in import CTGovStandIn, FaultPlan, last_update, nct_id

ROOT = Path(__file__).resolve().parents[2]


def fast_client(url: str, **kw) -> CTGovClient:
    kw = {"requests_per_second": 0, "timeout": 5, "backoff_initial": 0.01, "backoff_max": 0.05, **kw}
    return CTGovClient(url, **kw)


def raw_ids(raw_dir: Path) -> list[str]:
    records = list(iter_raw_api(raw_dir))
    assert all(r.error is None and r.payload for r in records)
    return [r.nct_id for r in records]


def page_files(raw_dir: Path) -> list[str]:
    return sorted(p.name for p in raw_dir.glob("runs/*/page-*.jsonl.gz"))


# -------------------------------------------------------------------------------------------------------- query params
def test_query_maps_to_api_v2_params():
    query = StudyQuery(condition="asthma", intervention="budesonide", updated_since=dt.date(2024, 3, 1), page_size=500)
    assert query.params() == {
        "format": "json",
        "pageSize": "500",
        "query.cond": "asthma",
        "query.intr": "budesonide",
        "filter.overallStatus": "COMPLETED|TERMINATED",
        "aggFilters": "results:with,studyType:int",
        "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2024-03-01,MAX]",
    }
    assert query.page_params(None)["countTotal"] == "true"
    assert query.page_params("tok")["pageToken"] == "tok" and "countTotal" not in query.page_params("tok")
    assert StudyQuery(study_types=("INTERVENTIONAL", "OBSERVATIONAL")).params()["aggFilters"].endswith("int obs")
    with pytest.raises(ValueError, match="unknown study types"):
        StudyQuery(study_types=("CASE_REPORT",)).params()


# ------------------------------------------------------------------------------------------------------------- paging
def test_paging_and_params_sent(tmp_path):
    query = StudyQuery(page_size=7)
    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        summary = refresh_api(client, query, tmp_path)
        expected = server.expected_ids(query.params())
        log = server.request_log
    ids = raw_ids(tmp_path)
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert 80 < len(expected) < 98  # completed/terminated interventional studies of the sample
    assert summary.finished and summary.studies == len(expected) and summary.total_count == len(expected)
    assert summary.pages == math.ceil(len(expected) / 7) == len(page_files(tmp_path))
    assert summary.watermark == max(last_update(s) for s in server.matching(query.params()))
    assert log[0]["countTotal"] == "true" and "pageToken" not in log[0]
    assert all("pageToken" in r and "countTotal" not in r for r in log[1:])
    assert all(r["pageSize"] == "7" and r["filter.overallStatus"] == "COMPLETED|TERMINATED" for r in log)
    assert all(r["aggFilters"] == "results:with,studyType:int" and r["format"] == "json" for r in log)
    first = next(iter_raw_api(tmp_path))
    assert first.source_format == "api_v2_json" and first.source_ref == f"api:{summary.run_id}/page-1"
    assert first.version == last_update(first.payload)


def test_condition_and_intervention_filters(tmp_path):
    query = StudyQuery(condition="cancer", page_size=50)
    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        refresh_api(client, query, tmp_path / "cond")
        refresh_api(client, StudyQuery(intervention="placebo", page_size=50), tmp_path / "intr")
        cond_expected = server.expected_ids(query.params())
        intr_expected = server.expected_ids(StudyQuery(intervention="placebo").params())
        assert server.request_log[0]["query.cond"] == "cancer" and server.request_log[-1]["query.intr"] == "placebo"
    assert 0 < len(cond_expected) < 90 and 0 < len(intr_expected) < 90
    assert set(raw_ids(tmp_path / "cond")) == cond_expected
    assert set(raw_ids(tmp_path / "intr")) == intr_expected


def test_incremental_run_fetches_only_newer_studies(tmp_path):
    query = StudyQuery(page_size=20)
    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        first = refresh_api(client, query, tmp_path)
        studies = copy.deepcopy(server.matching({}))
        bumped = {nct_id(s) for s in studies[:3]}
        for s in studies[:3]:
            s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2026-11-20"
        server.replace_studies(studies)
        before = len(server.request_log)
        second = refresh_api(client, query, tmp_path)
        sent = server.request_log[before]
        expected = server.expected_ids(sent)
    overlap_from = (dt.date.fromisoformat(first.watermark) - dt.timedelta(days=1)).isoformat()
    assert sent["filter.advanced"] == f"AREA[LastUpdatePostDate]RANGE[{overlap_from},MAX]"
    assert second.run_id != first.run_id and not second.resumed and second.finished
    assert bumped <= expected and len(expected) <= 6  # the bumped studies plus the one-day overlap
    ids = raw_ids(tmp_path)
    assert ids[: first.studies] == raw_ids(Path(first.run_dir).parent.parent)[: first.studies]
    assert sorted(ids[first.studies :]) == sorted(expected)
    assert second.watermark == read_watermark(tmp_path, query) == read_watermark(tmp_path) == "2026-11-20"
    newest = {r.nct_id: r.version for r in iter_raw_api(tmp_path)}  # later runs come later: newest wins
    assert all(newest[n] == "2026-11-20" for n in bumped)


def test_empty_page_after_a_full_last_page_ends_the_run(tmp_path):
    """Like the real API, the stand-in hands out a token with every full page; the page after it is empty."""
    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        n = len(server.expected_ids(StudyQuery().params()))
        query = StudyQuery(page_size=max(size for size in range(2, n) if n % size == 0))
        summary = refresh_api(client, query, tmp_path)
        assert len(server.request_log) == n // query.page_size + 1
    assert summary.finished and summary.pages == n // query.page_size and len(set(raw_ids(tmp_path))) == n


# ------------------------------------------------------------------------------------------------------------- retries
def test_retry_on_500_and_429_with_retry_after_honoured(tmp_path):
    plan = FaultPlan(rate=1.0, kinds=("http_500",), max_faults=2)
    with CTGovStandIn(fault_plan=plan) as server, fast_client(server.base_url) as client:
        summary = refresh_api(client, StudyQuery(page_size=50), tmp_path / "a")
        assert summary.retries == {"http_500": 2} and server.faults == {"http_500": 2}
    plan = FaultPlan(rate=1.0, kinds=("http_429",), max_faults=1, retry_after="0.6")
    with CTGovStandIn(fault_plan=plan) as server, fast_client(server.base_url) as client:
        started = time.monotonic()
        page = client.fetch_page(StudyQuery(page_size=5))
        waited = time.monotonic() - started
        assert len(page.studies) == 5 and client.retries == {"http_429": 1}
    assert 0.6 <= waited < 3, waited  # backoff alone would have waited ~0.01 s


def test_retry_after_parsing():
    assert api._parse_retry_after("3") == 3.0 and api._parse_retry_after("0.25") == 0.25
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    assert 25 < api._parse_retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 30
    assert api._parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert api._parse_retry_after("soon") is None and api._parse_retry_after(None) is None


def test_give_up_after_max_retries_and_no_retry_on_client_errors():
    calls = []

    def always(status: int, body: str):
        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            return httpx.Response(status, text=body)

        return httpx.MockTransport(handler)

    client = fast_client("http://ctgov.invalid/api/v2", max_retries=2, transport=always(503, "busy"))
    with pytest.raises(TransientError, match="http_503"):
        client.fetch_page(StudyQuery())
    assert len(calls) == 3 and client.retries == {"http_503": 2}
    assert "deepimagine" in calls[0].headers["User-Agent"]
    calls.clear()
    client = fast_client("http://ctgov.invalid/api/v2", transport=always(400, '{"message": "pageToken expired"}'))
    with pytest.raises(PageTokenExpired):
        client.fetch_page(StudyQuery(), "old-token")
    with pytest.raises(CTGovError, match="HTTP 400") as info:
        client.fetch_page(StudyQuery())  # no token sent: a plain bad request, not retried
    assert not isinstance(info.value, (PageTokenExpired, TransientError)) and len(calls) == 2


def test_polite_rate_limit():
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"studies": []}))
    client = CTGovClient("http://ctgov.invalid/api/v2", requests_per_second=20, transport=transport)
    started = time.monotonic()
    for _ in range(6):
        client.fetch_page(StudyQuery())
    assert time.monotonic() - started >= 5 / 20


def test_expired_token_and_repeated_page_lose_and_duplicate_nothing(tmp_path):
    for kind in ("expired_token", "repeated_page"):
        plan = FaultPlan(rate=0.5, kinds=(kind,), seed=4, max_faults=2)
        with CTGovStandIn(fault_plan=plan) as server, fast_client(server.base_url) as client:
            summary = refresh_api(client, StudyQuery(page_size=10), tmp_path / kind)
            expected = server.expected_ids(StudyQuery().params())
            assert server.faults[kind] == 2
        ids = raw_ids(tmp_path / kind)
        assert sorted(ids) == sorted(expected), kind
        assert summary.retries == {"page_token_expired" if kind == "expired_token" else kind: 2}
        numbers = [int(name[5:10]) for name in page_files(tmp_path / kind)]
        assert numbers == list(range(1, len(numbers) + 1))


# -------------------------------------------------------------------------------------------------------------- resume
class Stop(Exception):
    pass


def test_max_studies_stops_and_the_next_call_continues(tmp_path):
    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        first = refresh_api(client, StudyQuery(page_size=7), tmp_path, max_studies=10)
        second = refresh_api(client, StudyQuery(page_size=7), tmp_path)
        expected = server.expected_ids(StudyQuery().params())
    assert first.studies == 10 and not first.finished and first.watermark is None
    assert second.resumed and second.run_id == first.run_id and second.finished
    assert sorted(raw_ids(tmp_path)) == sorted(expected)


def test_resume_after_a_kill_between_page_file_and_cursor(tmp_path):
    """A page saved whose cursor was not: the re-run re-asks that page, writes nothing twice, loses nothing."""
    saved = {}

    def progress(summary):
        cursor = Path(summary.run_dir) / "cursor.json"
        saved[summary.pages] = cursor.read_text()
        if summary.pages == 3:
            raise Stop

    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        with pytest.raises(Stop):
            refresh_api(client, StudyQuery(page_size=9), tmp_path, progress=progress)
        run_dir = next(tmp_path.glob("runs/*"))
        (run_dir / "cursor.json").write_text(saved[2])  # as if killed before the 3rd cursor save
        page3 = (run_dir / "page-00003.jsonl.gz").read_bytes()
        (run_dir / ".page-00004.jsonl.gz.x1.tmp").write_bytes(b"partial")  # a write cut by the kill
        summary = refresh_api(client, StudyQuery(page_size=9), tmp_path)
        expected = server.expected_ids(StudyQuery().params())
    assert summary.resumed and summary.finished
    assert (run_dir / "page-00003.jsonl.gz").read_bytes() == page3
    assert not list(run_dir.glob(".*.tmp"))
    ids = raw_ids(tmp_path)
    assert sorted(ids) == sorted(expected)
    assert page_files(tmp_path) == [f"page-{i:05d}.jsonl.gz" for i in range(1, summary.pages + 1)]


CHILD = """
import os, signal, sys
from pathlib import Path
from deepimagine_core.ctgov.api import CTGovClient, StudyQuery
from deepimagine_core.ctgov.raw_api import refresh_api

def progress(summary):
    if summary.pages == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)

client = CTGovClient(sys.argv[1], requests_per_second=0, timeout=5, backoff_initial=0.01, backoff_max=0.05)
refresh_api(client, StudyQuery(page_size=8), Path(sys.argv[2]), progress=progress)
"""


def run_killed_child(url: str, raw_dir: Path, kill_after_pages: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-c", CHILD, url, str(raw_dir), str(kill_after_pages)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_resume_after_sigkill(tmp_path):
    with CTGovStandIn() as server:
        child = run_killed_child(server.base_url, tmp_path, kill_after_pages=4)
        assert child.returncode == -signal.SIGKILL, child.stderr
        cursor = json.loads(next(tmp_path.glob("runs/*/cursor.json")).read_text())
        assert cursor["pages_done"] == 4 and not cursor["finished"] and cursor["next_page_token"]
        assert len(server.request_log) == 4
        with fast_client(server.base_url) as client:
            summary = refresh_api(client, StudyQuery(page_size=8), tmp_path)
        expected = server.expected_ids(StudyQuery().params())
        after_kill = server.request_log[4:]
    assert summary.resumed and summary.finished and summary.run_id == cursor["run_id"]
    assert all("pageToken" in r for r in after_kill)  # no page fetched again
    assert len(after_kill) == summary.pages - 4 + (len(expected) % 8 == 0)
    ids = raw_ids(tmp_path)
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
    assert len(page_files(tmp_path)) == summary.pages == math.ceil(len(expected) / 8)
    for name in page_files(tmp_path):  # every page file is whole
        with gzip.open(next(tmp_path.glob(f"runs/*/{name}")), "rt") as fh:
            assert all(json.loads(line)["payload"] for line in fh)


def test_a_changed_query_starts_its_own_run(tmp_path):
    with CTGovStandIn() as server, fast_client(server.base_url) as client:
        with pytest.raises(Stop):
            refresh_api(client, StudyQuery(page_size=9), tmp_path, progress=lambda s: (_ for _ in ()).throw(Stop()))
        other = refresh_api(client, StudyQuery(page_size=9, condition="cancer"), tmp_path)
        resumed = refresh_api(client, StudyQuery(page_size=9), tmp_path)
    assert not other.resumed and resumed.resumed and other.run_id != resumed.run_id
    assert len(raw_api._read_watermarks(tmp_path)) == 2  # one watermark per selection
    assert list(iter_raw_api(tmp_path / "missing")) == []
