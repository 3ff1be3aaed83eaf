"""ClinicalTrials.gov API v2 client (`GET {base}/studies`) and the API's raw layer.

`CTGovClient.fetch_page` sends one polite request (rate-limited, with a User-Agent naming deepimagine) and retries,
with exponential backoff and jitter, whatever a healthy server would not do: 5xx answers, timeouts, broken
connections, truncated or malformed JSON bodies; a 429 waits for its Retry-After. A 400 saying the page token is
invalid or expired raises `PageTokenExpired`, which `refresh_api` answers by paging that run again from the start.

`refresh_api` keeps every page as compressed JSON Lines of `RawStudy` records, so re-parsing never re-downloads:

    raw_dir/watermark.json                       per query: newest lastUpdatePostDate of its finished runs
    raw_dir/runs/<run_id>/cursor.json            query fingerprint, next page token, pages done, finished flag
    raw_dir/runs/<run_id>/page-00001.jsonl.gz    one file per page, written atomically (tmp + rename)

The cursor is saved after each page, so a killed refresh, run again, resumes its unfinished run where it stopped.
A page never holds a study this run already holds (same NCT id and version), which makes repeated pages and
restarted paging harmless; duplicates across runs (the one-day incremental overlap) are resolved downstream,
newest version first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import gzip
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import tenacity

from deepimagine_core.ctgov.archives import iter_jsonl, study_identity
from deepimagine_core.ctgov.records import API_V2_JSON, RawStudy
from deepimagine_core.store import atomic_path

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
USER_AGENT = "deepimagine/0.1 (clinical-trial outcome research; ClinicalTrials.gov API v2 client; python-httpx)"
_STUDY_TYPE_CODES = {"INTERVENTIONAL": "int", "OBSERVATIONAL": "obs", "EXPANDED_ACCESS": "exp"}


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
    """The server no longer accepts the page token (HTTP 400 naming the token): page again from the start."""


# --------------------------------------------------------------------------------------------------------------- client
class CTGovClient:
    """Polite ClinicalTrials.gov API v2 client: one request at a time per `requests_per_second`, retried on faults.

    `transport` replaces the network (an `httpx.BaseTransport`, e.g. `httpx.MockTransport`) in tests.
    `backoff_initial`/`backoff_max` (seconds) shape the exponential backoff; `max_retry_after` caps a 429's wait.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        requests_per_second: float = 2.0,
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
        if status == 400 and "pageToken" in params and _says_token_invalid(response.text):
            raise PageTokenExpired(f"page token rejected: {response.text[:200]}")
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


def _says_token_invalid(body: str) -> bool:
    text = body.lower()
    return "token" in text and any(word in text for word in ("invalid", "expired", "not valid", "unknown"))


# ------------------------------------------------------------------------------------------------------------ raw layer
@dataclass
class RefreshSummary:
    run_id: str
    pages: int  # page files the run holds
    studies: int  # studies the run holds (unique NCT id + version within the run)
    retries: dict[str, int]  # reason -> retries during this call (http_429, http_503, timeout, page_token_expired ...)
    resumed: bool  # this call continued an unfinished run
    watermark: str | None  # newest lastUpdatePostDate of this query's finished runs, after this call
    finished: bool = False
    total_count: int | None = None  # the server's count for the query (first page)
    run_dir: str = ""


@dataclass
class _Cursor:
    run_id: str
    fingerprint: str
    query: dict[str, str]
    next_page_token: str | None = None
    pages_done: int = 0
    studies_seen: int = 0
    finished: bool = False
    total_count: int | None = None
    max_version: str | None = None
    token_restarts: int = 0
    started_at: str = field(default_factory=lambda: _now_iso())
    updated_at: str = ""


def refresh_api(
    client: CTGovClient,
    query: StudyQuery,
    raw_dir: Path,
    *,
    incremental: bool = True,
    max_studies: int = 0,
    progress: Callable[[RefreshSummary], None] | None = None,
) -> RefreshSummary:
    """Fetch `query` into the raw layer under `raw_dir`, resuming an unfinished run of the same query.

    incremental: ask only for studies updated since this query's watermark (newest lastUpdatePostDate of its finished
    runs) minus one day of overlap, unless `query.updated_since` is set.
    max_studies: stop this call once the run holds that many studies (0 = no limit); the run stays unfinished and
    the next call continues it. `progress` is called with the running summary after each saved page.
    """
    raw_dir = Path(raw_dir)
    watermark = read_watermark(raw_dir, query)
    if incremental and watermark and query.updated_since is None:
        query = dataclasses.replace(query, updated_since=dt.date.fromisoformat(watermark) - dt.timedelta(days=1))
    run_dir, cursor, resumed = _open_run(raw_dir, query)
    seen = _run_keys(run_dir)
    cursor.pages_done = max(cursor.pages_done, _last_page_number(run_dir))  # a page saved just before a kill counts
    cursor.studies_seen = len(seen)
    cursor.max_version = max(filter(None, [cursor.max_version, *(version for _, version in seen)]), default=None)
    retries_before = Counter(client.retries)
    extra: Counter[str] = Counter()
    repeats = 0

    def summary() -> RefreshSummary:
        made = Counter(client.retries)
        made.subtract(retries_before)
        made.update(extra)
        return RefreshSummary(
            run_id=cursor.run_id,
            pages=cursor.pages_done,
            studies=cursor.studies_seen,
            retries={k: v for k, v in sorted(made.items()) if v > 0},
            resumed=resumed,
            watermark=read_watermark(raw_dir, query),
            finished=cursor.finished,
            total_count=cursor.total_count,
            run_dir=str(run_dir),
        )

    while not cursor.finished:
        if max_studies and cursor.studies_seen >= max_studies:
            break
        token = cursor.next_page_token
        try:
            page = client.fetch_page(query, token)
        except PageTokenExpired:
            extra["page_token_expired"] += 1
            if extra["page_token_expired"] > client.max_retries:
                raise
            cursor.next_page_token = None  # page again from the start; pages already saved are not saved twice
            cursor.token_restarts += 1
            _save_cursor(run_dir, cursor)
            continue
        if page.total_count is not None:
            cursor.total_count = page.total_count
        if page.next_page_token is not None and page.next_page_token == token:
            repeats += 1  # the server answered with the page we already had (same token forward)
            extra["repeated_page"] += 1
            if repeats > client.max_retries:
                raise CTGovError(f"the server keeps repeating the page for token {token!r}")
        else:
            repeats = 0
        fresh = _fresh_studies(page.studies, seen)
        room = max_studies - cursor.studies_seen if max_studies else len(fresh)
        complete = room >= len(fresh)
        if fresh[:room]:
            _write_page(run_dir, cursor.pages_done + 1, cursor.run_id, fresh[:room])
            cursor.pages_done += 1
            for nct_id, version, _ in fresh[:room]:
                seen.add((nct_id, version))
                if version and (cursor.max_version is None or version > cursor.max_version):
                    cursor.max_version = version
            cursor.studies_seen = len(seen)
        if complete:  # a page cut by max_studies is asked again next time; its saved part is skipped then
            cursor.next_page_token = page.next_page_token
            cursor.finished = page.next_page_token is None or (not page.studies and token is not None)
        _save_cursor(run_dir, cursor)
        if cursor.finished:
            _advance_watermark(raw_dir, query, cursor)
        if progress:
            progress(summary())
    return summary()


def iter_raw_api(raw_dir: Path) -> Iterator[RawStudy]:
    """Every study of every page file of every run under `raw_dir`, runs and pages in order (oldest first)."""
    runs = Path(raw_dir) / "runs"
    if not runs.is_dir():
        return
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        for page_file in sorted(run_dir.glob("page-*.jsonl.gz")):
            with gzip.open(page_file, "rb") as stream:
                yield from iter_jsonl(stream, f"{page_file}")


def read_watermark(raw_dir: Path, query: StudyQuery | None = None) -> str | None:
    """Newest lastUpdatePostDate of the finished runs of `query`'s selection (of any query when None)."""
    marks = _read_watermarks(raw_dir)
    if query is not None:
        return marks.get(query.base_fingerprint(), {}).get("last_update_post_date")
    return max((m["last_update_post_date"] for m in marks.values()), default=None)


def _read_watermarks(raw_dir: Path) -> dict[str, dict]:
    path = Path(raw_dir) / "watermark.json"
    return json.loads(path.read_text()).get("queries", {}) if path.exists() else {}


# ---------------------------------------------------------------------------------------------------- raw-layer helpers
def _open_run(raw_dir: Path, query: StudyQuery) -> tuple[Path, _Cursor, bool]:
    """The newest unfinished run of this query (resumed), else a new run."""
    runs = raw_dir / "runs"
    fingerprint = query.fingerprint()
    if runs.is_dir():
        for run_dir in sorted((p for p in runs.iterdir() if p.is_dir()), reverse=True):
            cursor = _load_cursor(run_dir)
            if cursor and not cursor.finished and cursor.fingerprint == fingerprint:
                for stale in run_dir.glob(".*.tmp"):  # a write cut by a kill
                    stale.unlink()
                return run_dir, cursor, True
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    run_id = f"{stamp}-{fingerprint[:8]}"
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    cursor = _Cursor(run_id=run_id, fingerprint=fingerprint, query=query.params())
    _save_cursor(run_dir, cursor)
    return run_dir, cursor, False


def _load_cursor(run_dir: Path) -> _Cursor | None:
    path = run_dir / "cursor.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(_Cursor)}
    return _Cursor(**{k: v for k, v in data.items() if k in known})


def _save_cursor(run_dir: Path, cursor: _Cursor) -> None:
    cursor.updated_at = _now_iso()
    _atomic_write_bytes(run_dir / "cursor.json", json.dumps(dataclasses.asdict(cursor), indent=1).encode())


def _write_page(run_dir: Path, number: int, run_id: str, studies: list[tuple[str | None, str | None, dict]]) -> None:
    ref = f"api:{run_id}/page-{number}"
    lines = "".join(
        RawStudy(API_V2_JSON, ref, study, nct_id=nct_id, version=version).to_json() + "\n"
        for nct_id, version, study in studies
    )
    data = gzip.compress(lines.encode("utf-8"), compresslevel=6, mtime=0)  # mtime=0: same page, same bytes
    _atomic_write_bytes(run_dir / f"page-{number:05d}.jsonl.gz", data)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _study_key(study: dict) -> tuple[str, str | None]:
    nct_id, version = study_identity(study)
    if nct_id is None:  # not identifiable: key on the content so an identical copy is still recognised
        nct_id = "sha1:" + hashlib.sha1(json.dumps(study, sort_keys=True).encode()).hexdigest()
    return nct_id, version


def _fresh_studies(studies: list[dict], seen: set[tuple[str, str | None]]) -> list[tuple[str, str | None, dict]]:
    """Studies of a page not yet in the run (by NCT id and version), without repeats within the page."""
    fresh, keys = [], set()
    for study in studies:
        key = _study_key(study)
        if key in seen or key in keys:
            continue
        keys.add(key)
        fresh.append((key[0], key[1], study))
    return fresh


def _run_keys(run_dir: Path) -> set[tuple[str, str | None]]:
    keys = set()
    for page_file in sorted(run_dir.glob("page-*.jsonl.gz")):
        with gzip.open(page_file, "rb") as stream:
            for record in iter_jsonl(stream, str(page_file)):
                if record.payload is not None:
                    keys.add(_study_key(record.payload))
    return keys


def _last_page_number(run_dir: Path) -> int:
    numbers = [int(p.name[5:10]) for p in run_dir.glob("page-*.jsonl.gz") if p.name[5:10].isdigit()]
    return max(numbers, default=0)


def _advance_watermark(raw_dir: Path, query: StudyQuery, cursor: _Cursor) -> None:
    """watermark.json: {"queries": {base fingerprint: {last_update_post_date, run_id, updated_at, query}}}."""
    marks = _read_watermarks(raw_dir)
    key = query.base_fingerprint()
    current = marks.get(key, {}).get("last_update_post_date")
    newest = max(filter(None, (current, cursor.max_version)), default=None)
    if newest is None or newest == current:
        return
    base = dataclasses.replace(query, updated_since=None).params()
    marks[key] = {"last_update_post_date": newest, "run_id": cursor.run_id, "updated_at": _now_iso(), "query": base}
    _atomic_write_bytes(raw_dir / "watermark.json", json.dumps({"queries": marks}, indent=1).encode())


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
