"""A ClinicalTrials.gov API v2 stand-in: a real HTTP server on 127.0.0.1 that misbehaves on purpose.

`CTGovStandIn` serves `GET /api/v2/studies` from real study records (by default the embedded sample's 98 API v2
studies), sorted by NCT id, page by page with opaque page tokens. It honours `pageSize`, `pageToken`, `countTotal`,
`filter.overallStatus`, `aggFilters` (results:with|without, studyType:int obs exp), `filter.advanced`
(`AREA[LastUpdatePostDate]RANGE[<date>,MAX]` only), `query.cond` and `query.intr` (case-insensitive substring), and
answers 400 to any other parameter. Where the published OpenAPI spec of the real API says how, it behaves the same:
a 400 body is plain text; `pageSize` defaults to 10 (missing or 0) and one above 1000 is lowered to 1000, not refused;
paging ends with a page that has no `nextPageToken`. Like the real API it hands out a next-page token whenever a page
is full, so the page after the last full page may be empty.

A `FaultPlan` makes a share of requests fail: 429 with Retry-After, 500, 503, a stall past the client's timeout,
a truncated JSON body, an invalid JSON body, the previous page again, a 400 refusing the page token (plain text that
does not say why, so a client cannot rely on the wording). Faults are drawn
from a seeded generator in request order (deterministic for a sequential client), never more than `max_in_a_row` in
a row (so a client always progresses) and at most `max_faults` in all. Kinds come round-robin from seeded shuffles,
so every kind shows up once enough faults were injected.

    with CTGovStandIn(fault_plan=FaultPlan(rate=0.2, seed=7)) as server:
        client = CTGovClient(server.base_url, ...)
        ...
        server.faults, server.requests, server.served_ids

The server shuts itself down on leaving the `with` block, or after `max_lifetime` seconds whatever happens.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import gzip
import hashlib
import json
import random
import re
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deepimagine_core.ctgov.archives import SAMPLE_DIR

FAULT_KINDS = (
    "http_429",
    "http_500",
    "http_503",
    "timeout",
    "truncated_json",
    "invalid_json",
    "repeated_page",
    "expired_token",
)
KNOWN_PARAMS = {
    "format",
    "pageSize",
    "pageToken",
    "countTotal",
    "query.cond",
    "query.intr",
    "filter.overallStatus",
    "filter.advanced",
    "aggFilters",
}
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 10, 1000
_STUDY_TYPES = {"int": "INTERVENTIONAL", "obs": "OBSERVATIONAL", "exp": "EXPANDED_ACCESS"}
_UPDATED_SINCE = re.compile(r"^AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]$")


@functools.lru_cache(maxsize=1)
def _sample() -> tuple[dict, ...]:
    with gzip.open(SAMPLE_DIR / "v2_json_studies.jsonl.gz", "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def sample_studies() -> list[dict]:
    """The embedded sample's real API v2 study objects (98), loaded once: deep-copy before changing one."""
    return list(_sample())


def nct_id(study: dict) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


def last_update(study: dict) -> str:
    return study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]


def results_first_posted(study: dict) -> str | None:
    return study["protocolSection"]["statusModule"].get("resultsFirstPostDateStruct", {}).get("date")


def two_waves(studies: list[dict], boundary: str) -> tuple[list[dict], list[dict]]:
    """The same records served in two waves, for a living-benchmark test: (older, all). `older` holds the studies whose
    results were first posted on or before `boundary`; `all` adds the newer ones, each with its last-update date moved
    past every older study's (a study whose results were just posted was just updated), so an incremental refresh
    after the first wave fetches them. Records are deep copies; use `server.replace_studies(all)` between refreshes."""
    older = [copy.deepcopy(s) for s in studies if (results_first_posted(s) or "9999") <= boundary]
    newer = [copy.deepcopy(s) for s in studies if (results_first_posted(s) or "9999") > boundary]
    latest = max((last_update(s) for s in older), default=boundary)
    bumped = (datetime.date.fromisoformat(latest) + datetime.timedelta(days=7)).isoformat()
    for study in newer:
        study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = max(bumped, last_update(study))
    return older, older + newer


@dataclass
class FaultPlan:
    rate: float = 0.2  # share of requests answered with a fault
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after: str = "0.05"  # Retry-After header sent with 429 (seconds, or an HTTP date)
    stall_seconds: float = 1.0  # a "timeout" answer waits this long, then hangs up without answering
    max_in_a_row: int = 2
    max_faults: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")


class _Faults:
    """Seeded, bounded choice of the fault (or none) for each request."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.queue: list[str] = []
        self.in_a_row = 0
        self.total = 0

    def draw(self, applicable: set[str]) -> str | None:
        plan = self.plan
        roll = self.rng.random()
        capped = plan.max_faults is not None and self.total >= plan.max_faults
        if roll >= plan.rate or capped or self.in_a_row >= plan.max_in_a_row:
            self.in_a_row = 0
            return None
        for _ in range(2):
            if not self.queue:
                self.queue = list(plan.kinds)
                self.rng.shuffle(self.queue)
            for kind in self.queue:
                if kind in applicable:
                    self.queue.remove(kind)
                    self.in_a_row += 1
                    self.total += 1
                    return kind
            self.queue = []  # none of the remaining kinds applies here: start a fresh round
        self.in_a_row = 0
        return None


class CTGovStandIn:
    """The stand-in server; use as a context manager. `base_url` is what `CTGovClient` takes."""

    def __init__(self, studies: list[dict] | None = None, fault_plan: FaultPlan | None = None, max_lifetime=300.0):
        self._lock = threading.Lock()
        self._studies: list[dict] = []
        self._encoded: dict[int, str] = {}  # id(study) -> its JSON text, so a page is cheap to build
        self.replace_studies(studies if studies is not None else sample_studies())
        self.fault_plan = fault_plan
        self._faults = _Faults(fault_plan) if fault_plan else None
        self.max_lifetime = max_lifetime
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.pages_served = 0
        self.studies_served = 0  # study objects sent in good pages (a study served twice counts twice)
        self.served_ids: set[str] = set()
        self.request_log: list[dict[str, str]] = []
        self._page_before: dict[str, bytes] = {}  # next-page token -> body of the page that handed it out
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle
    def __enter__(self) -> "CTGovStandIn":
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, name="ctgov-stand-in", daemon=True).start()
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._server:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server, "the stand-in is not running (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v2"

    # -- data
    def replace_studies(self, studies: list[dict]) -> None:
        """Serve these records from now on (e.g. newer versions of some studies)."""
        encoded = {id(s): json.dumps(s) for s in studies}
        with self._lock:
            self._studies = sorted(studies, key=nct_id)
            self._encoded = encoded

    def matching(self, params: dict[str, str]) -> list[dict]:
        """The studies a query selects, in serving order; raises ValueError on a parameter the API would reject."""
        unknown = set(params) - KNOWN_PARAMS
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}")
        status_filter = params.get("filter.overallStatus")
        statuses = set(re.split(r"[|,]", status_filter)) if status_filter else None
        results, types = _agg_filters(params.get("aggFilters", ""))
        since = None
        if params.get("filter.advanced"):
            match = _UPDATED_SINCE.match(params["filter.advanced"])
            if not match:
                raise ValueError(f"filter.advanced not supported by the stand-in: {params['filter.advanced']}")
            since = match.group(1)
        cond = params.get("query.cond", "").lower()
        intr = params.get("query.intr", "").lower()
        with self._lock:
            studies = list(self._studies)
        chosen = []
        for study in studies:
            protocol = study["protocolSection"]
            if statuses and protocol["statusModule"].get("overallStatus") not in statuses:
                continue
            if types and protocol.get("designModule", {}).get("studyType") not in types:
                continue
            if results is not None and bool(study.get("hasResults")) != results:
                continue
            if since and last_update(study) < since:
                continue
            if cond and cond not in json.dumps(protocol.get("conditionsModule", {})).lower():
                continue
            if intr and intr not in json.dumps(protocol.get("armsInterventionsModule", {})).lower():
                continue
            chosen.append(study)
        return chosen

    def expected_ids(self, params: dict[str, str]) -> set[str]:
        return {nct_id(s) for s in self.matching({k: v for k, v in params.items() if k in KNOWN_PARAMS})}

    # -- one request (called by the handler)
    def answer(self, params: dict[str, str]) -> tuple[str, int, dict[str, str], bytes]:
        """(fault kind or "", status, headers, body) for a request."""
        with self._lock:
            self.requests += 1
            self.request_log.append(dict(params))
            token = params.get("pageToken")
            applicable = {"http_429", "http_500", "http_503", "timeout", "truncated_json", "invalid_json"}
            if token:
                applicable.add("expired_token")
                if token in self._page_before:
                    applicable.add("repeated_page")
            kind = self._faults.draw(applicable) if self._faults else None
            if kind:
                self.faults[kind] += 1
        if kind == "http_429":
            return kind, 429, {"Retry-After": self.fault_plan.retry_after}, b'{"message": "Too Many Requests"}'
        if kind in ("http_500", "http_503"):
            return kind, int(kind[5:]), {}, b"<html><body>upstream error</body></html>"
        if kind == "timeout":
            return kind, 0, {}, b""
        if kind == "expired_token":
            return kind, 400, {}, b"Bad Request"
        if kind == "repeated_page":
            return kind, 200, {}, self._page_before[token]
        if kind == "invalid_json":
            return kind, 200, {}, b'{"studies": [{"protocolSection": NaN, oops}'
        try:
            body, studies = self._page(params)
        except ValueError as exc:
            return "", 400, {}, str(exc).encode()
        if kind == "truncated_json":
            return kind, 200, {}, body[: len(body) // 2]
        with self._lock:
            self.pages_served += 1
            self.studies_served += len(studies)
            self.served_ids.update(nct_id(s) for s in studies)
        return "", 200, {}, body

    def _page(self, params: dict[str, str]) -> tuple[bytes, list[dict]]:
        try:
            size = int(params.get("pageSize") or 0)
        except ValueError:
            raise ValueError(f"pageSize is not a number: {params['pageSize']!r}") from None
        if size < 0:
            raise ValueError("pageSize must be 0 or more")
        size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)  # as the spec says: 0 = default, above 1000 lowered
        query = {k: v for k, v in params.items() if k not in ("pageToken", "countTotal")}
        query_hash = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:12]
        offset = _token_offset(params["pageToken"], query_hash) if params.get("pageToken") else 0
        chosen = self.matching(query)
        page = chosen[offset : offset + size]
        with self._lock:
            encoded = [self._encoded[id(s)] for s in page]
        extra = {}
        if len(page) == size:  # like the real API: a full page always hands out a token
            extra["nextPageToken"] = _make_token(offset + size, query_hash)
        if params.get("countTotal") == "true" and not params.get("pageToken"):
            extra["totalCount"] = len(chosen)
        tail = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in extra.items())
        body = ('{"studies": [' + ", ".join(encoded) + "]" + tail + "}").encode()
        if "nextPageToken" in extra:
            with self._lock:
                self._page_before[extra["nextPageToken"]] = body
        return body, page


def _agg_filters(value: str) -> tuple[bool | None, set[str] | None]:
    results, types = None, None
    for part in filter(None, value.split(",")):
        name, _, values = part.partition(":")
        if name == "results" and values in ("with", "without"):
            results = values == "with"
        elif name == "studyType" and all(v in _STUDY_TYPES for v in values.split()):
            types = {_STUDY_TYPES[v] for v in values.split()}
        else:
            raise ValueError(f"aggFilters not supported by the stand-in: {part}")
    return results, types


def _make_token(offset: int, query_hash: str) -> str:
    raw = json.dumps({"o": offset, "q": query_hash, "t": time.time_ns() % 10**6}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _token_offset(token: str, query_hash: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, token_query = int(data["o"]), data["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid pageToken: {token!r}") from exc
    if token_query != query_hash:
        raise ValueError("invalid pageToken: it belongs to another query")
    return offset


class _Handler(BaseHTTPRequestHandler):
    stand_in: CTGovStandIn

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urllib.parse.urlsplit(self.path)
        if url.path.rstrip("/") != "/api/v2/studies":
            self._send(404, {}, b'{"message": "not found"}')
            return
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        kind, status, headers, body = self.stand_in.answer(params)
        if kind == "timeout":
            time.sleep(self.stand_in.fault_plan.stall_seconds)
            self.close_connection = True
            return  # hang up without an answer; the client timed out long ago
        if kind == "truncated_json" and self.stand_in.faults[kind] % 2 == 0:
            # every other truncation lies about its length and hangs up mid-body
            self._send(status, headers, body, content_length=len(body) * 2)
            return
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes, content_length: int | None = None) -> None:
        try:
            self.send_response(status)
            kind = "application/json" if body[:1] in (b"{", b"[") else "text/plain" if status == 400 else "text/html"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(content_length if content_length is not None else len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
