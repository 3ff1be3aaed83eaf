"""Metadata helpers shared by the domains: row counts, schema, a preview of a Parquet table."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from deepimagine_core.store import Store


def table_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in schema])


def markdown_preview(table: pa.Table, rows: int = 5, width: int = 60) -> str:
    """The first rows of a table as a markdown table, long cells cut."""
    head = table.slice(0, rows).to_pylist()
    names = table.schema.names
    if not head:
        return "_(empty table)_"

    def cell(v) -> str:
        text = "" if v is None else str(v)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(r[n]) for n in names) + " |" for r in head]
    return "\n".join(lines)


def table_metadata(store: Store, name: str) -> dict:
    """Row count, path, schema and preview of a table in the store (reads only the first row group for the preview)."""
    path = store.table_path(name)
    meta = pq.ParquetFile(path)
    preview = meta.read_row_group(0) if meta.num_row_groups else meta.schema_arrow.empty_table()
    return {
        "dagster/row_count": meta.metadata.num_rows,
        "path": dg.MetadataValue.path(str(path)),
        "dagster/column_schema": table_schema(meta.schema_arrow),
        "preview": dg.MetadataValue.md(markdown_preview(preview)),
    }
