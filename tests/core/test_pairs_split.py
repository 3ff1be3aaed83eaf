"""Temporal split, benchmark side, dropping spanning pairs, and the leak finder failing on planted leaks."""

import datetime as dt
import json

import pyarrow as pa

from deepimagine_core.evaluation.ct_open import benchmark_nct_ids
from deepimagine_core.pairs.split import (TRIAL_SPLITS, assign_splits, default_cutoff, drop_spanning,
                                          find_leaks, split_map)


def trials_table(n=20) -> pa.Table:
    dates = [dt.date(2010, 1, 1) + dt.timedelta(days=30 * i) for i in range(n)] + [None]
    return pa.table({"nct_id": [f"NCT{i:08d}" for i in range(n + 1)], "results_first_posted": dates})


def test_default_cutoff_puts_latest_15_percent_on_test():
    trials = trials_table()
    table, cutoff = assign_splits(trials, benchmark_ids={"NCT00000002"})
    sides = split_map(table)
    expected = dt.date(2010, 1, 1) + dt.timedelta(days=30 * 17)  # the 18th of 20 dated trials
    assert cutoff == default_cutoff(trials.column("results_first_posted").to_pylist()) == expected
    assert [sides[f"NCT{i:08d}"] for i in (16, 17, 18, 19)] == ["train", "test", "test", "test"]
    assert sides["NCT00000020"] == "test"  # undated: cannot be shown to precede the cutoff
    assert sides["NCT00000002"] == "benchmark"  # whatever its date
    assert table.schema == TRIAL_SPLITS and find_leaks(table, benchmark_ids={"NCT00000002"}) == {}


def test_explicit_cutoff_and_no_dates():
    table, cutoff = assign_splits(trials_table(), cutoff=dt.date(2011, 1, 1))
    assert cutoff == dt.date(2011, 1, 1) and list(split_map(table).values()).count("train") == 13
    assert default_cutoff([None, None]) is None


def test_find_leaks_catches_planted_leaks():
    splits, _ = assign_splits(trials_table(), benchmark_ids={"NCT00000002"})
    clean = pa.table({"source_nct_id": ["NCT00000001", "NCT00000018"], "target_nct_id": ["NCT00000003", "NCT00000019"],
                      "split": ["train", "test"]})
    assert find_leaks(splits, clean, ("source_nct_id", "target_nct_id")) == {}
    spanning = pa.table({"source_nct_id": ["NCT00000001"], "target_nct_id": ["NCT00000019"], "split": ["train"]})
    assert "row on another side than its trial" in find_leaks(splits, spanning, ("source_nct_id", "target_nct_id"))
    bench = pa.table({"nct_id": ["NCT00000002"], "split": ["train"]})
    assert "benchmark trial in a training row" in find_leaks(splits, bench, ("nct_id",), {"NCT00000002"})
    twice = pa.concat_tables([splits, pa.table({"nct_id": ["NCT00000001"], "results_first_posted": [None],
                                                "split": ["test"], "reason": ["planted"]}, schema=TRIAL_SPLITS)])
    assert "trial on two sides" in find_leaks(twice)
    wrong_side = splits.set_column(2, "split", pa.array(["train"] * splits.num_rows))
    assert "benchmark trial outside the benchmark side" in find_leaks(wrong_side, benchmark_ids={"NCT00000002"})
    missing = pa.table({"nct_id": ["NCT99999999"], "split": ["train"]})
    assert "trial missing from the split" in find_leaks(splits, missing)


def test_drop_spanning_sets_split_and_counts():
    sides = {"A": "train", "B": "train", "C": "test"}
    pairs = pa.table({"source_nct_id": ["A", "A", "C"], "target_nct_id": ["B", "C", "C"], "split": ["?", "?", "?"]})
    kept, dropped = drop_spanning(pairs, sides)
    assert dropped == 1 and kept.column("split").to_pylist() == ["train", "test"]


def test_benchmark_ids_from_jsonl_files(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text("\n".join(json.dumps({"nct_id": n, "endpoint_key": "e"}) for n in ("NCT00000002", "NCT00000005")))
    assert benchmark_nct_ids(str(path)) == {"NCT00000002", "NCT00000005"}
    assert benchmark_nct_ids("") == set()


def test_benchmark_ids_recorded_with_their_sources_are_reused_only_for_the_same_files(tmp_path):
    from deepimagine_core.evaluation.ct_open import source_fingerprint
    from deepimagine_core.evaluation.inputs import split_benchmark_ids
    from deepimagine_core.pairs.split import recorded_benchmark_ids, with_benchmark_record
    from deepimagine_core.store import Store

    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps({"nct_id": "NCT00000002", "endpoint_key": "e"}) + "\n")
    table, _ = assign_splits(trials_table(), benchmark_ids={"NCT00000002"})
    recorded = with_benchmark_record(table, {"NCT00000002"}, source_fingerprint(str(path)))
    assert recorded.to_pylist() == table.to_pylist()
    assert recorded.schema.metadata[b"doc"] == TRIAL_SPLITS.metadata[b"doc"]
    assert recorded_benchmark_ids(recorded.schema, source_fingerprint(str(path))) == {"NCT00000002"}
    assert recorded_benchmark_ids(table.schema, source_fingerprint(str(path))) is None  # nothing recorded
    store = Store(tmp_path / "home")
    store.write_table("trial_splits", recorded)
    path.write_text(json.dumps({"nct_id": "NCT00000002", "endpoint_key": "e"}) + "\n"  # the file changed: re-read
                    + json.dumps({"nct_id": "NCT00000007", "endpoint_key": "e"}) + "\n")
    assert recorded_benchmark_ids(store.read_table("trial_splits").schema, source_fingerprint(str(path))) is None
    assert split_benchmark_ids(store, str(path)) == {"NCT00000002", "NCT00000007"}
    assert split_benchmark_ids(Store(tmp_path / "empty"), "") == set()
