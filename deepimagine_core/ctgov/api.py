"""ClinicalTrials.gov API v2 client (`GET {base}/studies`), as the published OpenAPI spec describes the API.

`CTGovClient.fetch_page` sends one polite request (rate-limited, by default to 50 requests a minute, the limit
reported for the API; with a User-Agent naming deepimagine) and retries, with exponential backoff and jitter, whatever
a healthy server would not do: 5xx answers, timeouts, broken connections, truncated or malformed JSON bodies; a 429
waits for its Retry-After. A client error (4xx but 429) to a request that carries a page token raises
`PageTokenExpired` whatever its text (the API answers in plain text, and its wording is not part of the spec):
`raw_api.refresh_api` answers it by paging that run again from its first page. Paging ends only when a page has no
`nextPageToken`.

The raw layer that keeps the pages (resumable, incremental) is `deepimagine_core.ctgov.raw_api`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import tenacity

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
DEFAULT_REQUESTS_PER_SECOND = 50 / 60  # the API's reported limit is about 50 requests a minute per client
MAX_PAGE_SIZE = 1000  # the API lowers a larger pageSize to this
USER_AGENT = "deepimagine/0.1 (clinical-trial outcome research; ClinicalTrials.gov API v2 client; python-httpx)"
_STUDY_TYPE_CODES = {"INTERVENTIONAL": "int", "OBSERVATIONAL": "obs", "EXPANDED_ACCESS": "exp"}


@dataclass
class ApiSettings:
    """How to reach ClinicalTrials.gov API v2 when the source is `api`."""

    base_url: str = DEFAULT_BASE_URL
    page_size: int = MAX_PAGE_SIZE
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    timeout_seconds: float = 60.0
    max_retries: int = 8
    condition: str = ""
    intervention: str = ""
    incremental: bool = True
    max_studies: int = 0

    def client(self, transport: httpx.BaseTransport | None = None) -> "CTGovClient":
        return CTGovClient(self.base_url, requests_per_second=self.requests_per_second, timeout=self.timeout_seconds,
                           max_retries=self.max_retries, transport=transport)


# ---------------------------------------------------------------------------------------------------------------- query
@dataclass(frozen=True)
class StudyQuery:
    """Server-side filters of a `/studies` search (defaults: completed or terminated interventional trials with
    results)."""

    has_results: bool = True
    study_types: tuple[str, ...] = ("INTERVENTIONAL",)
    statuses: tuple[str, ...] = ("COMPLETED", "TERMINATED")
    condition: str | None = None
    intervention: str | None = None
    updated_since: dt.date | None = None  # -> filter.advanced=AREA[LastUpdatePostDate]RANGE[<date>,MAX]
    page_size: int = 1000

    def params(self) -> dict[str, str]:
        """The API v2 query parameters shared by every page of this search (no pageToken, no countTotal)."""
        params = {"format": "json", "pageSize": str(self.page_size)}
        if self.condition:
            params["query.cond"] = self.condition
        if self.intervention:
            params["query.intr"] = self.intervention
        if self.statuses:
            params["filter.overallStatus"] = "|".join(self.statuses)
        agg = []
        if self.has_results:
            agg.append("results:with")
        if self.study_types:
            unknown = [t for t in self.study_types if t.upper() not in _STUDY_TYPE_CODES]
            if unknown:
                raise ValueError(f"unknown study types {unknown}; known: {sorted(_STUDY_TYPE_CODES)}")
            agg.append("studyType:" + " ".join(_STUDY_TYPE_CODES[t.upper()] for t in self.study_types))
        if agg:
            params["aggFilters"] = ",".join(agg)
        if self.updated_since:
            params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{self.updated_since.isoformat()},MAX]"
        return params

    def page_params(self, page_token: str | None) -> dict[str, str]:
        params = self.params()
        if page_token:
            params["pageToken"] = page_token
        else:
            params["countTotal"] = "true"
        return params

    def fingerprint(self) -> str:
        """Identity of the exact search (a run resumes only the same one: page tokens belong to it)."""
        return _digest(self.params())

    def base_fingerprint(self) -> str:
        """Identity of the selection whatever the date window and page size: the key of its watermark."""
        params = dataclasses.replace(self, updated_since=None).params()
        params.pop("pageSize")
        return _digest(params)


def _digest(params: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Page:
    studies: list[dict]
    next_page_token: str | None
    total_count: int | None = None


# --------------------------------------------------------------------------------------------------------------- errors
class CTGovError(Exception):
    """The API answered in a way retrying cannot fix (or retries ran out)."""


class TransientError(CTGovError):
    """A failure worth retrying; `reason` names it in the retry counters."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.retry_after = retry_after


class PageTokenExpired(CTGovError):
    """The server refused a request carrying a page token (a 4xx but 429, whatever its text): page again from the
    start. Were the refusal about something else, the request without a token fails again, as a `CTGovError`."""


# --------------------------------------------------------------------------------------------------------------- client
class CTGovClient:
    """Polite ClinicalTrials.gov API v2 client: one request at a time per `requests_per_second`, retried on faults.

    `transport` replaces the network (an `httpx.BaseTransport`, e.g. `httpx.MockTransport`) in tests.
    `backoff_initial`/`backoff_max` (seconds) shape the exponential backoff; `max_retry_after` caps a 429's wait.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        timeout: float = 60,
        max_retries: int = 8,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        max_retry_after: float = 300.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.min_interval = 1.0 / requests_per_second if requests_per_second and requests_per_second > 0 else 0.0
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.retries: Counter[str] = Counter()  # reason -> retries made, over the client's life
        self.requests = 0
        self._backoff = tenacity.wait_exponential_jitter(
            initial=backoff_initial, max=backoff_max, jitter=backoff_initial
        )
        self._next_slot = 0.0
        self._lock = threading.Lock()
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CTGovClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch_page(self, query: StudyQuery, page_token: str | None = None) -> Page:
        """One page of `query`, retried on transient faults up to `max_retries` times."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(TransientError),
            before_sleep=self._count_retry,
            reraise=True,
        )
        return retrying(self._get_page, query.page_params(page_token))

    # -- one attempt
    def _get_page(self, params: dict[str, str]) -> Page:
        self._throttle()
        self.requests += 1
        try:
            response = self._http.get(f"{self.base_url}/studies", params=params)
        except httpx.TimeoutException as exc:
            raise TransientError("timeout", f"no answer within the timeout ({exc!r})") from exc
        except httpx.TransportError as exc:  # refused, reset, body cut short of its Content-Length ...
            raise TransientError("connection", repr(exc)) from exc
        except httpx.DecodingError as exc:  # a body its Content-Encoding cannot decode
            raise TransientError("malformed_json", repr(exc)) from exc
        status = response.status_code
        if status == 429:
            raise TransientError("http_429", "rate limited", _parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransientError(f"http_{status}", response.text[:200])
        if 400 <= status < 500 and "pageToken" in params:  # whatever the text: the retry without a token tells
            raise PageTokenExpired(f"page token rejected (HTTP {status}): {response.text[:200]}")
        if status != 200:
            raise CTGovError(f"HTTP {status} from {response.url}: {response.text[:500]}")
        return _parse_page(response.content)

    def _throttle(self) -> None:
        """Minimum interval between requests (retries included), shared by threads using this client."""
        with self._lock:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + self.min_interval
        if wait > 0:
            time.sleep(wait)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return self._backoff(state)

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.retries[exc.reason if isinstance(exc, TransientError) else "other"] += 1


def _parse_page(body: bytes) -> Page:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TransientError("malformed_json", f"{exc} ({len(body)} bytes)") from exc
    studies = data.get("studies") if isinstance(data, dict) else None
    if not isinstance(studies, list) or not all(isinstance(s, dict) for s in studies):
        raise TransientError("malformed_json", "the body has no list of study objects under 'studies'")
    token = data.get("nextPageToken")
    total = data.get("totalCount")
    return Page(studies, token if isinstance(token, str) and token else None, total if isinstance(total, int) else None)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
