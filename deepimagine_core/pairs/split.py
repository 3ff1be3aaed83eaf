"""Temporal split of trials, and the leak checks every derived table must pass.

Each trial goes to exactly one side:

- ``benchmark`` — its NCT id is among the benchmark ids the caller passes (the trials of the CT Open files it loaded).
  Such trials never enter training, whatever their date.
- ``test`` — results first posted on or after the cutoff (default: the date that puts the latest ~15% of trials on
  this side), or no results-first-posted date at all (an undated trial cannot be shown to precede the cutoff).
- ``train`` — everything else.

Questions and pairs inherit the side of their trial(s); a pair whose two trials sit on different sides is dropped
(counted), so no pair spans sides. `find_leaks` verifies all of this on any table with nct id columns.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TRIAL_SPLITS", "SIDES", "default_cutoff", "assign_splits", "split_map", "with_benchmark_record",
           "recorded_benchmark_ids", "find_leaks", "drop_spanning", "counts_by_split"]

SIDES = ("train", "test", "benchmark")

TRIAL_SPLITS = pa.schema(
    [("nct_id", pa.string()), ("results_first_posted", pa.date32()), ("split", pa.string()), ("reason", pa.string())],
    metadata={"doc": "One row per trial: its side (train | test | benchmark) and why."},
)


DEFAULT_TEST_FRACTION = 0.15  # the latest ~15% of dated trials go to the test side


def default_cutoff(dates: Sequence[dt.date | None], test_fraction: float = DEFAULT_TEST_FRACTION) -> dt.date | None:
    """The date putting the latest ``test_fraction`` of dated trials on the test side (dates >= cutoff); None if no
    trial is dated."""
    known = np.array(sorted(d.toordinal() for d in dates if d is not None), dtype=np.int64)
    if known.size == 0:
        return None
    index = min(known.size - 1, int(np.floor(known.size * (1.0 - test_fraction))))
    return dt.date.fromordinal(int(known[index]))


def assign_splits(
    trials: pa.Table,
    cutoff: dt.date | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    benchmark_ids: Iterable[str] = (),
) -> tuple[pa.Table, dt.date | None]:
    """A ``trial_splits`` table (one row per trial) and the cutoff used."""
    ids = trials.column("nct_id").to_pylist()
    dates = trials.column("results_first_posted").to_pylist()
    if cutoff is None:
        cutoff = default_cutoff(dates, test_fraction)
    bench = set(benchmark_ids)
    rows = []
    for nct_id, date in zip(ids, dates):
        if nct_id in bench:
            side, reason = "benchmark", "in a loaded benchmark"
        elif date is None:
            side, reason = "test", "no results_first_posted date"
        elif cutoff is not None and date >= cutoff:
            side, reason = "test", f"results first posted on/after {cutoff.isoformat()}"
        else:
            side, reason = "train", f"results first posted before {cutoff.isoformat()}" if cutoff else "undated set"
        rows.append({"nct_id": nct_id, "results_first_posted": date, "split": side, "reason": reason})
    return pa.Table.from_pylist(rows, schema=TRIAL_SPLITS), cutoff


_RECORD_IDS, _RECORD_SOURCES = b"benchmark_ids", b"benchmark_sources"


def with_benchmark_record(splits: pa.Table, benchmark_ids: Iterable[str], sources: list) -> pa.Table:
    """`splits` (cast to TRIAL_SPLITS) carrying, in its schema metadata, the benchmark NCT ids it was built with and
    the fingerprint of the files they came from, so the leak checks reuse them instead of reading the files again."""
    metadata = {**(TRIAL_SPLITS.metadata or {}), _RECORD_IDS: json.dumps(sorted(set(benchmark_ids))).encode(),
                _RECORD_SOURCES: json.dumps(sources).encode()}
    return splits.select(TRIAL_SPLITS.names).cast(TRIAL_SPLITS).replace_schema_metadata(metadata)


def recorded_benchmark_ids(schema: pa.Schema, sources: list) -> set[str] | None:
    """The benchmark ids a `trial_splits` table was built with, when it was built from the files `sources` describes
    (`with_benchmark_record`); None when it records none or other files."""
    metadata = schema.metadata or {}
    if _RECORD_IDS not in metadata or json.loads(metadata.get(_RECORD_SOURCES, b"null")) != json.loads(
            json.dumps(sources)):
        return None
    return set(json.loads(metadata[_RECORD_IDS]))


def split_map(splits: pa.Table) -> dict[str, str]:
    return dict(zip(splits.column("nct_id").to_pylist(), splits.column("split").to_pylist()))


def drop_spanning(table: pa.Table, splits: Mapping[str, str], source_col: str = "source_nct_id",
                  target_col: str = "target_nct_id") -> tuple[pa.Table, int]:
    """Keep pairs whose two trials are on the same side, set ``split`` to that side; return the number dropped."""
    src = [splits.get(x, "unassigned") for x in table.column(source_col).to_pylist()]
    tgt = [splits.get(x, "unassigned") for x in table.column(target_col).to_pylist()]
    keep = pa.array([a == b for a, b in zip(src, tgt)], pa.bool_())
    side = pa.array(src, pa.string())
    idx = table.schema.get_field_index("split")
    table = table.set_column(idx, "split", side) if idx >= 0 else table.append_column("split", side)
    kept = table.filter(keep)
    return kept, table.num_rows - kept.num_rows


def find_leaks(
    splits: pa.Table,
    items: pa.Table | None = None,
    id_columns: Sequence[str] = ("nct_id",),
    benchmark_ids: Iterable[str] = (),
) -> dict[str, list[str]]:
    """Problems that would leak test or benchmark information into training; empty dict = clean.

    On ``splits`` alone: a trial listed twice (on two sides), a known side missing, a benchmark trial not on the
    benchmark side. On ``items`` (questions or pairs, with a ``split`` column and the nct id columns ``id_columns``):
    a row whose split differs from a trial's side (a pair spanning sides, a question on the wrong side), a trial
    missing from ``splits``, a benchmark trial in a train row. Each problem lists up to 5 examples.
    """
    problems: dict[str, list[str]] = {}

    def add(kind: str, example: str) -> None:
        problems.setdefault(kind, [])
        if len(problems[kind]) < 5:
            problems[kind].append(example)

    ids = splits.column("nct_id").to_pylist()
    sides = splits.column("split").to_pylist()
    side_of: dict[str, str] = {}
    for nct_id, side in zip(ids, sides):
        if nct_id in side_of and side_of[nct_id] != side:
            add("trial on two sides", f"{nct_id}: {side_of[nct_id]} and {side}")
        if side not in SIDES:
            add("unknown side", f"{nct_id}: {side!r}")
        side_of.setdefault(nct_id, side)
    bench = set(benchmark_ids)
    for nct_id in bench & set(side_of):
        if side_of[nct_id] != "benchmark":
            add("benchmark trial outside the benchmark side", f"{nct_id}: {side_of[nct_id]}")
    if items is None or items.num_rows == 0:
        return problems
    row_split = items.column("split").to_pylist()
    columns = {c: items.column(c).to_pylist() for c in id_columns}
    for i, split in enumerate(row_split):
        for c, values in columns.items():
            nct_id = values[i]
            side = side_of.get(nct_id)
            if side is None:
                add("trial missing from the split", f"row {i}: {c}={nct_id}")
            elif side != split:
                add("row on another side than its trial", f"row {i}: {c}={nct_id} is {side}, row is {split}")
            if split == "train" and (nct_id in bench or side == "benchmark"):
                add("benchmark trial in a training row", f"row {i}: {c}={nct_id}")
    return problems


def counts_by_split(table: pa.Table) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    vc = pc.value_counts(table.column("split")).to_pylist()
    return {d["values"]: d["counts"] for d in vc}
