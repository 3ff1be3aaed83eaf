"""Parsing in a pool of worker processes fed with batches of raw records; results come back in input order.

    for batch in parse_batches(raws, ParseSettings(workers=2)):   # ParsedBatch per `batch_size` records, in order
        batch.records    # per record: (nct_id, version, stage, reason, n field issues); stage None when it parsed
        batch.tables     # table name -> Arrow table of the batch's rows, each tagged with its record's `_seq`

Each worker parses every record of its batch on its own: a record that fails (malformed, a parser bug) is reported
with its reason and its rows rolled back, so it alone is quarantined. A worker process that dies (killed, out of
memory) loses no record either: its batches are parsed again in the calling process. With `workers=1`, or when the
input fits one batch, everything runs in the calling process (no pool is started).
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa

from deepimagine_core.ctgov.records import RawStudy, RecordError

log = logging.getLogger(__name__)
NCT_ID = re.compile(r"^NCT\d{8}$")
YOUNG = 200_000  # allocations between two collections of the youngest generation while parsing (default: 700)


@dataclass
class ParseSettings:
    """How ingest parses: `workers` processes (0 = one per core), `batch_size` records sent to a worker at a time."""

    workers: int = 0
    batch_size: int = 128

    def pool_size(self) -> int:
        return self.workers if self.workers > 0 else available_cores()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class ParsedBatch:
    first_seq: int
    records: list[tuple] = field(default_factory=list)  # (nct_id, version, stage, reason, number of field issues)
    issues: list[tuple] = field(default_factory=list)  # field issues: (seq, nct_id, stage, reason)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)  # seq -> why its rows do not fit the schema


def parse_batch(first_seq: int, raws: list[RawStudy]) -> ParsedBatch:
    """Parse a batch of records into column buffers (one record's failure rolls back its rows alone)."""
    from deepimagine_core.ctgov.columns import Buffers
    from deepimagine_core.ctgov.parse import parse_study

    out = ParsedBatch(first_seq)
    buffers = Buffers()
    with few_collections():
        for seq, raw in enumerate(raws, start=first_seq):
            mark = buffers.mark()
            try:
                if raw.error:
                    raise RecordError(raw.error, nct_id=raw.nct_id, stage="read")
                parsed = parse_study(raw, buffers)
                if not parsed.nct_id or not NCT_ID.match(parsed.nct_id):
                    raise RecordError(f"invalid nct_id {parsed.nct_id!r}", nct_id=parsed.nct_id, stage="validate")
            except RecordError as err:
                buffers.rollback(mark)
                out.records.append((err.nct_id or raw.nct_id, None, err.stage, err.reason, 0))
                continue
            except Exception as err:  # a parser bug must not lose the record or crash the run
                buffers.rollback(mark)
                out.records.append((raw.nct_id, None, "parse", f"unexpected {type(err).__name__}: {err}", 0))
                continue
            buffers.commit(seq)
            version = parsed.last_update or _parse_iso(raw.version) or dt.date.min
            out.records.append((parsed.nct_id, version, None, None, len(parsed.field_issues)))
            out.issues.extend((seq, parsed.nct_id, issue.get("stage", "value"), issue["reason"])
                              for issue in parsed.field_issues)
        out.tables, out.rejected = buffers.to_arrow()
    return out


@contextmanager
def few_collections(young: int = YOUNG):
    """Rare automatic garbage collections inside the block: parsing allocates millions of small objects without
    cycles (decoded JSON, column values) that live until their batch is converted, and the default thresholds make
    the collector traverse them again and again (measured: a third of a JSON ingest's time)."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(young, threshold[0]), max(50, threshold[1]), max(1000, threshold[2]))
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def batches(raws: Iterable[RawStudy], size: int) -> Iterator[tuple[int, list[RawStudy]]]:
    """(sequence number of the first record, records) for consecutive batches of `size` records."""
    batch: list[RawStudy] = []
    first = 0
    for raw in raws:
        batch.append(raw)
        if len(batch) >= size:
            yield first, batch
            first += len(batch)
            batch = []
    if batch:
        yield first, batch


def parse_batches(raws: Iterable[RawStudy], settings: ParseSettings | None = None) -> Iterator[ParsedBatch]:
    """Parsed batches in input order, parsed by `settings.pool_size()` worker processes (at most two batches per
    worker in flight, so memory stays flat whatever the input size). The first batch is parsed in this process, in
    the time the workers take to start (about half a second of imports each)."""
    settings = settings or ParseSettings()
    workers = settings.pool_size()
    stream = batches(raws, max(1, settings.batch_size))
    if workers <= 1:
        for first, batch in stream:
            yield parse_batch(first, batch)
        return
    pending: deque[tuple[Future | None, int, list[RawStudy]]] = deque()
    pool: ProcessPoolExecutor | None = None
    try:
        for first, batch in stream:
            if pool is None and not pending:  # the first batch waits: a one-batch input starts no pool
                pending.append((None, first, batch))
                continue
            if pool is None:  # the first batch stays here: parsed in this process while the workers start up
                pool = _pool(workers)
            pending.append((_submit(pool, first, batch), first, batch))
            while len(pending) > 2 * workers:
                yield _result(*pending.popleft())
        while pending:
            yield _result(*pending.popleft())
    finally:
        if pool is not None:
            _close(pool)


def _close(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down. A broken pool (a worker died) is not waited for, and its surviving workers are killed:
    the executor's own clean-up only sends SIGTERM, and a worker that ignores it (an ignored signal is inherited
    through spawn, e.g. from a parent started under a shell that ignores SIGTERM) left its manager thread spinning
    at 100% CPU, and the interpreter could not exit (seen in a full test run)."""
    broken = bool(getattr(pool, "_broken", False))
    if broken:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=not broken, cancel_futures=True)


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started with `spawn`: a Dagster run worker or a test process has threads, and a process
    forked from a multi-threaded parent can deadlock on a lock another thread held at the fork (seen here: a full test
    run hung in a forked parse worker). Spawned workers cost about a second of imports each, once per ingest."""
    import multiprocessing as mp

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_start_worker)


def _start_worker() -> None:
    """A parse worker only parses: the parsers imported once, then rare collections for good (between batches too:
    restoring the default thresholds after each batch made the collector traverse the batch's objects before they
    were freed), the imported objects left out of them (`gc.freeze`)."""
    import signal

    import deepimagine_core.ctgov.columns  # noqa: F401
    import deepimagine_core.ctgov.parse  # noqa: F401

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool's terminate() must work even if the parent ignores it

    gc.freeze()
    gc.set_threshold(YOUNG, 50, 1000)


SPAWN_HINT = (". Workers start with `spawn`, which re-runs the calling script in each of them: a script that ingests "
              "must do it under `if __name__ == \"__main__\":` (else every worker dies at start)")


def _submit(pool: ProcessPoolExecutor, first: int, batch: list[RawStudy]) -> Future | None:
    try:
        return pool.submit(parse_batch, first, batch)
    except BrokenProcessPool:
        return None  # parsed in this process by `_result`


def _result(future: Future | None, first: int, batch: list[RawStudy]) -> ParsedBatch:
    if future is not None:
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - a worker died (BrokenProcessPool) or could not send its result
            log.warning("parse worker failed on records %d-%d (%s: %s); parsing them in this process%s",
                        first, first + len(batch) - 1, type(exc).__name__, str(exc)[:200],
                        SPAWN_HINT if isinstance(exc, BrokenProcessPool) else "")
    return parse_batch(first, batch)


def _parse_iso(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10]) if len(value) >= 10 else dt.date.fromisoformat(value + "-01")
    except ValueError:
        return None
