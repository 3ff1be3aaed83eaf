"""Where artefacts live: one root folder the caller names, tables as Parquet, written atomically.

Layout under the root:
    raw/<source>/...            raw layer (compressed JSON Lines of source records)
    tables/<table>.parquet      normalised and derived tables (readable with pyarrow.dataset.dataset())
    datasets/<name>/            Hugging Face dataset exports
    models/<name>/              tiny local models, adapters (PEFT folders)
    reports/                    evaluation reports (markdown, HTML, PNG, JSON, predictions/)

A write goes to a temporary file in the same folder and is renamed over the old one, so a killed write leaves the
previous version readable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: The artefact root when the user names none (the Dagster `store` resource reads $DEEPIMAGINE_HOME first).
DEFAULT_HOME = "~/.deepimagine"


@contextlib.contextmanager
def atomic_path(final: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix + ".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


class TableWriter:
    """Stream record batches into one Parquet file, published atomically on close()."""

    def __init__(self, path: Path, schema: pa.Schema, batch_rows: int = 20_000):
        self.path = Path(path)
        self.schema = schema
        self.batch_rows = batch_rows
        self.rows_written = 0
        self._pending: list[dict] = []
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")

    def add(self, rows: Iterable[dict]) -> None:
        self._pending.extend(rows)
        if len(self._pending) >= self.batch_rows:
            self._flush()

    def write_table(self, table: pa.Table) -> None:
        self._flush()
        self._writer.write_table(table.select(self.schema.names).cast(self.schema))
        self.rows_written += table.num_rows

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_pylist(self._pending, schema=self.schema))
            self.rows_written += len(self._pending)
            self._pending = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(Exception):
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


class Store:
    """The artefact root `root`; callers always name it (the Dagster `store` resource, a notebook, a CLI flag)."""

    def __init__(self, root: str | os.PathLike):
        if not root:
            raise ValueError("Store needs a root folder (e.g. Store('~/.deepimagine'))")
        self.root = Path(root).expanduser()

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def table_path(self, name: str) -> Path:
        return self.path("tables", f"{name}.parquet")

    def has_table(self, name: str) -> bool:
        return self.table_path(name).exists()

    def read_table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        path = self.table_path(name)
        if not path.exists():
            raise FileNotFoundError(
                f"table {name!r} has not been built yet (expected {path}); materialise its asset first"
            )
        return pq.read_table(path, columns=columns)

    def write_table(self, name: str, table: pa.Table, schema: pa.Schema | None = None) -> Path:
        path = self.table_path(name)
        if schema is not None:
            table = table.select(schema.names).cast(schema)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        return path

    def table_writer(self, name: str, schema: pa.Schema) -> TableWriter:
        return TableWriter(self.table_path(name), schema)
