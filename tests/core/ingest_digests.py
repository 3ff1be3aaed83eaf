"""Per-column digests of the trial tables an ingest publishes: the reference `test_ingest_equivalence.py` compares
today's output against (stored in `data/ingest_digests.json`, computed from the row-dict parser before the columnar,
multi-process ingest replaced it; the v2 JSON sample's, every column, from the columnar parser before issue #16's
session-4 CPU cuts).

    python -m tests.core.ingest_digests            # recompute and print (does not overwrite the stored file)
    python -m tests.core.ingest_digests --write    # overwrite the stored file (only when a change is intended)
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

STORED = Path(__file__).parent / "data" / "ingest_digests.json"
SHARED_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "ctgov" / "legacy_xml" / \
    "ctgov_legacy_xml_sample.tar.gz"
SHARED = Path("/work/shared/data/ctgov/legacy_xml/ctgov_legacy_xml_sample.tar.gz")
V2_JSON = "v2_json"  # every column, the matcher's included, as the columnar v2 JSON parser of 2026-12-06 made them


def shared_sample() -> Path | None:
    """The shared 3,000-study legacy XML sample, when this machine has it."""
    for path in (SHARED_SAMPLE, SHARED):
        if path.exists():
            return path
    return None


def column_digests(tables_dir: Path) -> dict[str, dict]:
    """{table: {"rows": n, "columns": {column: sha256 of the column's values in row order}}}."""
    import pyarrow.parquet as pq

    out = {}
    for path in sorted(Path(tables_dir).glob("*.parquet")):
        table = pq.read_table(path)
        out[path.stem] = {
            "rows": table.num_rows,
            "columns": {name: hashlib.sha256(repr(table.column(name).to_pylist()).encode()).hexdigest()[:20]
                        for name in table.column_names},
        }
    return out


def ingest_digests(which: str, **ingest_kwargs) -> dict[str, dict]:
    """Digests of the tables ingested from `which`: the "embedded" sample, the "shared" 3,000-study sample, or the
    embedded sample's "v2_json" studies alone."""
    from deepimagine_core.ctgov.archives import (
        SAMPLE_DIR,
        iter_embedded_sample,
        iter_source,
    )
    from deepimagine_core.ctgov.ingest import ingest
    from deepimagine_core.store import Store

    if which == "embedded":
        raws = iter_embedded_sample()
    elif which == V2_JSON:
        raws = iter_source(SAMPLE_DIR / "v2_json_studies.jsonl.gz", label="sample:v2_json_studies.jsonl.gz")
    else:
        raws = iter_source(shared_sample(), label="shared:ctgov_legacy_xml_sample.tar.gz")
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        ingest(raws, store, source=which, progress=False, **ingest_kwargs)
        return column_digests(store.path("tables"))


if __name__ == "__main__":
    result = {"embedded": ingest_digests("embedded"), V2_JSON: ingest_digests(V2_JSON)}
    if shared_sample():
        result["shared"] = ingest_digests("shared")
    text = json.dumps(result, indent=1, sort_keys=True)
    if "--write" in sys.argv:
        STORED.write_text(text + "\n")
    print(text)
