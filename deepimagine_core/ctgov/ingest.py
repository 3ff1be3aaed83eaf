"""From a trial source to the normalised tables: read, parse, quarantine, de-duplicate, publish.

    summary = ingest_source("sample", Store("/tmp/home"))          # embedded sample, offline
    summary = ingest_source("/data/ctgov_legacy_xml_sample.tar.gz", store)
    summary = ingest_source("api", store, api=ApiSettings(...))    # ClinicalTrials.gov API v2 (raw layer first)

One streaming pass parses every record and appends its rows to staging Parquet files, tagged with the record's
sequence number; memory stays flat in the number of studies. When the same NCT id appears more than once (across
inputs or refreshes), the newest version (last-update date, then the later record) wins: the publish step keeps only
the winners' rows. Every record read ends up either in `trials` or as a record-level `quarantine` row (or among the
counted duplicates), so `studies_read == trials + quarantined + duplicates_dropped` always holds.

Nothing is published (the tables of an earlier refresh stay as they were) and `SourceError` is raised, in one line
naming the source, when the source yields no study at all, or when a stream stopped early (truncated archive, cut
JSON array or JSON Lines file) unless `allow_partial` is set; then the studies read before the stop are published.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import re
import shutil
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from deepimagine_core.ctgov.api import ApiSettings, StudyQuery
from deepimagine_core.ctgov.columns import SEQ, Columns
from deepimagine_core.ctgov.parse_pool import (  # noqa: F401 (NCT_ID re-exported)
    NCT_ID,
    ParseSettings,
    few_collections,
    parse_batches,
)
from deepimagine_core.ctgov.records import RawStudy, SourceError, SourceNotFound
from deepimagine_core.ctgov.schemas import TABLES
from deepimagine_core.store import Store, TableWriter
from deepimagine_core.tables import QUARANTINE_TABLE, TRIALS_TABLE

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).parent / "sample"
NOTHING_PUBLISHED = "nothing published, the existing trial tables are unchanged"


@dataclass
class IngestSummary:
    source: str
    studies_read: int = 0
    trials: int = 0
    quarantined: int = 0  # record-level quarantine rows
    duplicates_dropped: int = 0
    field_issues: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    stopped_early: list[str] = field(default_factory=list)  # where a stream stopped (published with allow_partial)
    seconds: float = 0.0

    @property
    def quarantine_rate(self) -> float:
        return self.quarantined / self.studies_read if self.studies_read else 0.0

    @property
    def reconciles(self) -> bool:
        return self.studies_read == self.trials + self.quarantined + self.duplicates_dropped

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "studies_read": self.studies_read,
            "trials": self.trials,
            "quarantined": self.quarantined,
            "duplicates_dropped": self.duplicates_dropped,
            "field_issues": self.field_issues,
            "quarantine_rate": round(self.quarantine_rate, 6),
            "reconciles": self.reconciles,
            "rows": dict(self.rows),
            "quarantine_reasons": dict(self.quarantine_reasons),
            "stopped_early": list(self.stopped_early),
            "seconds": round(self.seconds, 3),
            "studies_per_second": round(self.studies_read / self.seconds, 1) if self.seconds else None,
        }


def describe_source(source: str) -> str:
    """A readable name of a source setting, checking that a path exists."""
    if source in ("sample", "api"):
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceNotFound(
            f"trial source path does not exist: {path} "
            "(DEEPIMAGINE_TRIALS_SOURCE must be 'sample', 'api', or a path to an archive or folder)"
        )
    return str(path.resolve())


def fetch_raw(source: str, store: Store, api: ApiSettings | None = None, progress: Callable | None = None) -> dict:
    """The raw layer. For `api`, download new pages into `raw/api` (resumable, incremental); for the embedded sample
    or a local archive, the files themselves are the raw layer, so this only checks and describes them."""
    name = describe_source(source)
    if name == "api":
        from deepimagine_core.ctgov.raw_api import refresh_api

        api = api or ApiSettings()
        query = StudyQuery(
            condition=api.condition or None, intervention=api.intervention or None, page_size=api.page_size
        )
        with api.client() as client:
            summary = refresh_api(
                client, query, store.path("raw", "api"), incremental=api.incremental, max_studies=api.max_studies,
                progress=progress,
            )
        return {"source": "api", "raw_dir": str(store.path("raw", "api")), **_as_plain(summary)}
    if name == "sample":
        files = sorted(f for f in SAMPLE_DIR.iterdir() if f.name.endswith(".gz"))
        return {"source": "sample", "files": [str(f) for f in files], "bytes": sum(f.stat().st_size for f in files)}
    path = Path(name)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    if size == 0:
        what = "an empty folder" if path.is_dir() else "an empty file"
        raise SourceError(f"trial source {name} is {what}: no studies; {NOTHING_PUBLISHED}")
    return {"source": "path", "path": name, "bytes": size}


def iter_raw(source: str, store: Store) -> Iterator[RawStudy]:
    """Every raw record of a source, in order (oldest first for the API raw layer)."""
    from deepimagine_core.ctgov import archives

    name = describe_source(source)
    if name == "sample":
        return archives.iter_embedded_sample()
    if name == "api":
        from deepimagine_core.ctgov.raw_api import iter_raw_api

        return iter_raw_api(store.path("raw", "api"))
    return archives.iter_source(Path(name))


def ingest_source(
    source: str, store: Store, *, progress: bool | None = None, allow_partial: bool = False,
    parse: ParseSettings | None = None,
) -> IngestSummary:
    """Build every trial table from a source's raw layer (call `fetch_raw` first for `api`)."""
    name = describe_source(source)
    return ingest(iter_raw(source, store), store, source=name, progress=progress, allow_partial=allow_partial,
                  parse=parse)


def ingest(
    raws: Iterable[RawStudy],
    store: Store,
    *,
    source: str = "records",
    progress: bool | None = None,
    log_every: int = 1000,
    on_progress: Callable[[int], None] | None = None,
    allow_partial: bool = False,
    parse: ParseSettings | None = None,
) -> IngestSummary:
    """Parse raw records into all tables under `store` and publish them atomically (table by table). Records are
    parsed in batches by `parse.workers` processes (default: one per core); the tables' row order is the input's,
    whatever the number of workers.

    Raises `SourceError` before publishing anything when no record read is a study, or when a stream stopped early
    and `allow_partial` is False."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    summary = IngestSummary(source=source)
    staging = store.path("tables", f".staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True, exist_ok=True)
    rejected: dict[int, str] = {}  # seq -> why its rows did not fit the schema
    writers = {name: _StagingWriter(staging / f"{name}.parquet", schema) for name, schema in TABLES.items()}
    quarantine = Columns(_staged(TABLES[QUARANTINE_TABLE]))
    winners: dict[str, tuple[dt.date, int, tuple]] = {}
    reasons: Counter[str] = Counter()
    reading = _Reading(summary, log_every, on_progress)
    try:
        raws = tqdm(raws, desc="ingest", unit="study", disable=None if progress else True, mininterval=2)
        with few_collections():  # records read here (decoded JSON) live until their batch is parsed
            for batch in parse_batches(reading.track(raws), parse):
                rejected.update(batch.rejected)
                issues = iter(batch.issues)
                for seq, (nct_id, version, stage, reason, n_issues) in enumerate(batch.records, start=batch.first_seq):
                    ref = reading.pending.popleft()  # (source_format, source_ref, nct_id as read)
                    if stage is not None:
                        reasons[_reason_key(stage, reason)] += 1
                        quarantine.add(ref[1], nct_id or ref[2], ref[0], stage, "record", str(reason)[:2000], seq)
                        continue
                    previous = winners.get(nct_id)
                    if previous is None or version >= previous[0]:
                        winners[nct_id] = (version, seq, ref)
                    if previous is not None:
                        summary.duplicates_dropped += 1
                    for _, _, issue_stage, issue_reason in itertools.islice(issues, n_issues):
                        summary.field_issues += 1
                        quarantine.add(ref[1], nct_id, ref[0], issue_stage, "field", str(issue_reason)[:2000], seq)
                for name, table in batch.tables.items():
                    writers[name].add_table(table)
                writers[QUARANTINE_TABLE].add_table(_drain(quarantine))
        summary.stopped_early = reading.stops
        _refuse_to_publish(source, summary.studies_read, reading.readable, reading.first_error, reading.stops,
                           allow_partial)
        for name in TABLES:
            if name != QUARANTINE_TABLE:
                writers[name].close()
        for nct_id, (_, seq, ref) in list(winners.items()):  # a record whose rows did not fit is quarantined whole
            if seq in rejected:
                del winners[nct_id]
                reasons[_reason_key("validate", rejected[seq])] += 1
                quarantine.add(ref[1], nct_id, ref[0], "validate", "record", str(rejected[seq])[:2000], seq)
        writers[QUARANTINE_TABLE].add_table(_drain(quarantine))
        writers[QUARANTINE_TABLE].close()
        summary.quarantined = sum(reasons.values())
        summary.quarantine_reasons = dict(reasons.most_common())
        keep = None
        if summary.duplicates_dropped or rejected:
            keep = pa.array(sorted(seq for _, seq, _ in winners.values()), pa.int64())
        for name, schema in TABLES.items():
            summary.rows[name] = _publish(writers[name], store.table_path(name), keep, name)
        summary.trials = summary.rows[TRIALS_TABLE]
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.seconds = time.perf_counter() - start
    if summary.duplicates_dropped:
        log.info("ingest: %d duplicate NCT ids dropped (newest version kept)", summary.duplicates_dropped)
    for stop in reading.stops:
        log.warning("ingest: published a partial read (allow_partial): %s", stop)
    return summary


class _Reading:
    """What ingest notes of each record as it is read (before parsing): counts, reader errors, stops, and the
    record's reference until its parsed batch comes back."""

    def __init__(self, summary: IngestSummary, log_every: int, on_progress: Callable[[int], None] | None):
        self.summary, self.log_every, self.on_progress = summary, log_every, on_progress
        self.readable = 0  # records a reader could read (the others are reader errors)
        self.first_error = ""
        self.stops: list[str] = []
        self.pending: deque[tuple] = deque()

    def track(self, raws: Iterable[RawStudy]) -> Iterator[RawStudy]:
        summary = self.summary
        for raw in raws:
            summary.studies_read += 1
            if self.on_progress and summary.studies_read % self.log_every == 0:
                self.on_progress(summary.studies_read)
            self.readable += raw.error is None
            self.first_error = self.first_error or (f"{raw.source_ref}: {raw.error}" if raw.error else "")
            if raw.stopped:
                before = summary.studies_read - 1
                self.stops.append(f"{raw.source_ref}: {raw.error} ({before} studies read before it stopped)")
            self.pending.append((raw.source_format, raw.source_ref, raw.nct_id))
            yield raw


def _drain(columns: Columns) -> pa.Table:
    """The buffered rows as one Arrow table; the buffers are emptied."""
    table = pa.Table.from_arrays(columns.arrays(), schema=columns.schema)
    columns.truncate(0)
    return table


def _refuse_to_publish(
    source: str, read: int, readable: int, first_error: str, stops: list[str], allow_partial: bool
) -> None:
    """Raise `SourceError` (one line) when the source yielded no study, or stopped early without `allow_partial`."""
    if readable == 0:
        got = "no NCT*.xml, *.json or JSON Lines records in it"
        if read:
            got = f"{read} unreadable record(s), first: {_one_line(first_error)}"
        raise SourceError(f"trial source {source} yielded no studies ({got}); {NOTHING_PUBLISHED}")
    if stops and not allow_partial:
        more = f" (and {len(stops) - 1} more stops)" if len(stops) > 1 else ""
        raise SourceError(
            f"trial source {source} stopped early at {_one_line(stops[0])}{more}; {NOTHING_PUBLISHED} "
            "(set allow_partial to publish the studies read before the stop)"
        )


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _publish(staged: _StagingWriter, final: Path, keep: pa.Array | None, name: str) -> int:
    """Publish the staged rows of winning records: the staged file itself when every record won (no duplicates,
    nothing rejected), else a filtered copy."""
    if keep is None:
        os.replace(staged.path, final)  # atomic, like TableWriter's own publish
        return staged.rows_written
    mask = pc.is_in(staged.seqs(), value_set=keep)
    writer = TableWriter(final, staged.schema)
    try:
        offset = 0
        for batch in ds.dataset(staged.path, format="parquet").to_batches(batch_size=50_000):
            keep_rows = mask.slice(offset, batch.num_rows)
            offset += batch.num_rows
            if name == QUARANTINE_TABLE:  # record-level rows of every read are kept; field issues only for winners
                keep_rows = pc.or_(keep_rows, pc.equal(batch.column("level"), "record"))
            writer.write_table(pa.Table.from_batches([batch.filter(keep_rows)]))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.rows_written


class _StagingWriter(TableWriter):
    """A staging table fed with the Arrow tables of parsed batches (with `_seq`), written without `_seq` in row
    groups of ~`batch_rows` rows; the sequence numbers stay in memory, run-length encoded (a record's rows are
    contiguous: a few bytes per record), for the publish filter."""

    def __init__(self, path: Path, schema: pa.Schema):
        super().__init__(path, schema, batch_rows=10_000)  # a small cap: memory stays flat as the input grows
        self._tables: list[pa.Table] = []
        self._rows = 0
        self._seqs: list[pa.ChunkedArray] = []

    def add_table(self, table: pa.Table) -> None:
        if table.num_rows:
            self._seqs.append(pc.run_end_encode(table.column(SEQ)))
            self._tables.append(table.drop_columns([SEQ]))
            self._rows += table.num_rows
        if self._rows >= self.batch_rows:
            self._write()

    def seqs(self) -> pa.Array:
        """The sequence number of every staged row, in order."""
        chunks = [pc.run_end_decode(chunk) for column in self._seqs for chunk in column.chunks]
        return pa.concat_arrays(chunks) if chunks else pa.array([], pa.int64())

    def _write(self) -> None:
        if self._tables:
            self.write_table(pa.concat_tables(self._tables))
            self._tables, self._rows = [], 0

    def close(self) -> None:
        self._write()
        super().close()


def _staged(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field(SEQ, pa.int64()))


def _reason_key(stage: str, reason: str) -> str:
    """Group similar reasons for the summary (numbers and quoted values folded)."""
    short = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "#", str(reason))[:120]
    return f"{stage}: {short}"


def _as_plain(obj) -> dict:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj):
        return {k: (str(v) if isinstance(v, (dt.date, Path)) else v) for k, v in asdict(obj).items()}
    return dict(obj)
