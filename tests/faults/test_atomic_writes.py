"""A process SIGKILLed while it writes a table leaves the previous version readable, and the partial file it was
writing is never picked up (neither by Store.read_table nor by pyarrow.dataset over the tables folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from deepimagine_core.store import Store

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = pa.schema([("row", pa.int64()), ("version", pa.int64()), ("text", pa.string())])
ROWS = 200_000

CHILD_PRELUDE = """
import sys, time
import pyarrow as pa
from deepimagine_core.store import Store
SCHEMA = pa.schema([("row", pa.int64()), ("version", pa.int64()), ("text", pa.string())])
store = Store(sys.argv[1])
"""

# Streams batches through TableWriter, saying after each flushed batch; never finishes on its own in time.
CHILD_TABLE_WRITER = CHILD_PRELUDE + """
writer = store.table_writer("trials", SCHEMA)
for batch in range(10_000):
    writer.add({"row": batch * 20_000 + i, "version": 2, "text": f"partial row {i}"} for i in range(20_000))
    print(f"flushed {batch}", flush=True)
writer.close()
"""

# Publishes version after version of a large table with Store.write_table.
CHILD_WRITE_TABLE = CHILD_PRELUDE + """
rows = int(sys.argv[2])
texts = pa.array([f"text of row {i} " * 4 for i in range(rows)])
for version in range(2, 10_000):
    table = pa.table({"row": pa.array(range(rows), pa.int64()), "version": pa.array([version] * rows), "text": texts})
    store.write_table("trials", table, SCHEMA)
    print(f"published {version}", flush=True)
"""


def version_one(rows: int) -> pa.Table:
    columns = {
        "row": pa.array(range(rows), pa.int64()),
        "version": pa.array([1] * rows, pa.int64()),
        "text": pa.array([f"v1 row {i}" for i in range(rows)]),
    }
    return pa.table(columns, schema=SCHEMA)


def spawn(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", script, *args]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def partial_files(store: Store) -> list[Path]:
    return [p for p in store.path("tables").iterdir() if p.name.startswith(".trials.parquet.")]


def kill(child: subprocess.Popen) -> str:
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    return out


def test_kill_during_table_writer_leaves_previous_version(tmp_path):
    store = Store(tmp_path)
    before = version_one(1_000)
    store.write_table("trials", before, SCHEMA)
    child = spawn(CHILD_TABLE_WRITER, str(tmp_path))
    for line in child.stdout:
        if line.strip() == "flushed 3":  # four row groups are in the temporary file
            break
    kill(child)
    (partial,) = partial_files(store)
    assert partial.stat().st_size > 0 and partial.name.endswith(".tmp")
    assert store.read_table("trials").equals(before)
    assert ds.dataset(store.table_path("trials")).to_table().equals(before)
    assert ds.dataset(store.path("tables"), format="parquet").to_table().equals(before)  # dot-files are skipped
    after = version_one(10)
    store.write_table("trials", after, SCHEMA)  # the next write is not disturbed by the leftover
    assert store.read_table("trials").equals(after)


def test_kill_during_store_write_table_leaves_a_whole_version(tmp_path):
    store = Store(tmp_path)
    store.write_table("trials", version_one(ROWS), SCHEMA)
    child = spawn(CHILD_WRITE_TABLE, str(tmp_path), str(ROWS))
    assert child.stdout.readline().strip() == "published 2"
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in partial_files(store) if p.exists()):  # a write under way
        assert time.monotonic() < deadline and child.poll() is None, "the child never started another write"
        time.sleep(0.001)
    published = {1, 2} | {int(n) for n in kill(child).split()[1::2]}  # "published N" lines still in the pipe
    table = store.read_table("trials")
    versions = set(table.column("version").to_pylist())
    assert table.num_rows == ROWS and len(versions) == 1 and versions <= published, (versions, published)
    assert table.column("row").to_pylist() == list(range(ROWS))
    assert ds.dataset(store.path("tables"), format="parquet").count_rows() == ROWS
