"""The raw layer of ClinicalTrials.gov API v2 studies: pages kept as compressed JSON Lines, resumable, incremental.

`refresh_api` keeps every page as compressed JSON Lines of `RawStudy` records, so re-parsing never re-downloads:

    raw_dir/watermark.json                       per query: newest lastUpdatePostDate of its finished runs
    raw_dir/runs/<run_id>/cursor.json            query fingerprint, next page token, pages done, finished flag
    raw_dir/runs/<run_id>/page-00001.jsonl.gz    one file per page, written atomically (tmp + rename)

The cursor is saved after each page, so a killed refresh, run again, resumes its unfinished run where it stopped.
When the server refuses the saved page token (`PageTokenExpired`, whatever its text), the run pages again from its
first page: its query's date window starts at the watermark, so nothing older is asked again. A run is finished only
by a page without `nextPageToken`. A page never holds a study this run already holds (same NCT id and version), which
makes repeated pages and restarted paging harmless; duplicates across runs (the one-day incremental overlap) are
resolved downstream, newest version first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from deepimagine_core.ctgov.api import CTGovClient, CTGovError, PageTokenExpired, StudyQuery
from deepimagine_core.ctgov.json_records import iter_jsonl, study_identity
from deepimagine_core.ctgov.records import API_V2_JSON, RawStudy
from deepimagine_core.store import atomic_path


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
    repeats = empty = 0

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
        empty = empty + 1 if not page.studies and page.next_page_token is not None else 0
        if empty > client.max_retries:
            raise CTGovError(f"the server keeps sending empty pages with a next-page token ({empty} in a row)")
        if complete:  # a page cut by max_studies is asked again next time; its saved part is skipped then
            cursor.next_page_token = page.next_page_token
            cursor.finished = page.next_page_token is None  # only a page without nextPageToken is the last
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
