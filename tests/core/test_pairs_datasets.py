"""Dataset export of empty tables: a tiny source gives empty pair tables, and their export must still be loadable."""

import pyarrow.parquet as pq
import pytest

from deepimagine_core.pairs.approximate import APPROXIMATE_PAIRS
from deepimagine_core.pairs.datasets import export_datasets
from deepimagine_core.store import Store


def test_export_of_an_empty_table_is_loadable_with_its_schema(tmp_path):
    store = Store(tmp_path)
    store.write_table("approximate_pairs", APPROXIMATE_PAIRS.empty_table(), APPROXIMATE_PAIRS)
    written = export_datasets(store, ["approximate_pairs"])
    info = written["approximate_pairs"]
    assert info["rows"] == 0
    folder = tmp_path / "datasets" / "approximate_pairs"
    assert pq.read_table(folder / "data" / "approximate_pairs.parquet").schema.names == APPROXIMATE_PAIRS.names
    card = (folder / "README.md").read_text()
    assert "- rows: 0" in card and "`approximate_pairs` asset's `why_empty` metadata says why" in card
    datasets = pytest.importorskip("datasets", reason="the optional `datasets` package (train extra) is not installed")
    assert info["hf_saved"]
    ds = datasets.load_from_disk(str(folder / "hf"))
    assert ds.num_rows == 0 and list(ds.features) == APPROXIMATE_PAIRS.names
